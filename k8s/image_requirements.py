"""Print the image's requirements: the project's dependencies and the extras a stage pod needs.

One list, read by `k8s/Dockerfile` (what the image installs) and by
`scripts/test-containers.sh` (which wheels an offline build needs). Versions come from
`constraints.txt`, passed to pip next to this list.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

IMAGE_EXTRAS = ("kfp", "export")
"""Kubeflow components (kfp) and the export stage (onnx, onnxruntime)."""


def image_requirements(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project["optional-dependencies"]
    return [*project["dependencies"], *(req for extra in IMAGE_EXTRAS for req in extras[extra])]


if __name__ == "__main__":
    print(
        "\n".join(image_requirements(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")))
    )
