"""The ZenML stack's Kubernetes orchestrator from `k8s/orchestrator.yaml`.

    python -m pipelines.k8s_stack [k8s/orchestrator.yaml]

prints the file as the `--key=value` arguments of `zenml orchestrator register|update`,
one per line, which is how `k8s/setup-stack.sh` applies it. The CLI takes nothing but
such arguments (no config file option); it parses a JSON value into a nested field
(`pod_settings`, `pod_failure_policy`, ...) and a plain string into a scalar one.

`default_settings` is what ZenML makes of that configuration when it compiles a run: the
`KubernetesOrchestratorSettings` fields set on the component (`Compiler.
_get_default_settings`), the base layer under the run config's settings. The offline
preview (`pipelines.k8s_manifests`) starts from it, so it shows what the stack applies.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zenml.integrations.kubernetes.flavors import (
    KubernetesOrchestratorConfig,
    KubernetesOrchestratorSettings,
)

from pipelines.k8s_defaults import ORCHESTRATOR_FILE
from trainer.config import read_config_document

CLUSTER_KEYS = frozenset({"kubernetes_context", "kubernetes_namespace"})
"""Which cluster and namespace: `k8s/setup-stack.sh` sets them (KUBE_CONTEXT, NAMESPACE)."""


def orchestrator_config(document: dict[str, Any]) -> KubernetesOrchestratorConfig:
    """`document` validated as the orchestrator's configuration. Unknown keys are errors
    (ZenML's config would keep them as extras and ignore them), and so are the cluster
    keys, which the set-up script owns."""
    unknown = sorted(set(document) - set(KubernetesOrchestratorConfig.model_fields))
    if unknown:
        raise ValueError(
            f"not fields of ZenML's KubernetesOrchestratorConfig: {', '.join(unknown)}"
        )
    cluster = sorted(CLUSTER_KEYS & set(document))
    if cluster:
        raise ValueError(
            f"{', '.join(cluster)}: set by k8s/setup-stack.sh (KUBE_CONTEXT, NAMESPACE), "
            "not in the orchestrator file"
        )
    return KubernetesOrchestratorConfig.model_validate(document)


def default_settings(document: dict[str, Any]) -> KubernetesOrchestratorSettings:
    """The settings a run on this orchestrator starts from, as ZenML's compiler derives
    them from the component's configuration: its settings fields, minus those left at
    their defaults."""
    config = orchestrator_config(document)
    fields = set(KubernetesOrchestratorSettings.model_fields)
    return KubernetesOrchestratorSettings.model_validate(
        config.model_dump(include=fields, exclude_unset=True, exclude_defaults=True)
    )


def _cli_value(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if value is None or "\n" in str(value):
        raise ValueError(f"{value!r}: no CLI form (leave the key out instead)")
    text = str(value)
    # The CLI reads `--key=@path` as the contents of a file; `@@` is a literal `@`.
    return f"@{text}" if text.startswith("@") else text


def cli_arguments(document: dict[str, Any]) -> list[str]:
    """`--key=value` arguments that register (or update) the orchestrator with exactly
    `document`'s configuration."""
    orchestrator_config(document)
    return [f"--{key}={_cli_value(value)}" for key, value in document.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(ORCHESTRATOR_FILE))
    args = parser.parse_args(argv)
    try:
        arguments = cli_arguments(read_config_document(Path(args.file)))
    except ValueError as error:
        parser.exit(2, f"error: {args.file}: {error}\n")
    sys.stdout.write("".join(f"{argument}\n" for argument in arguments))


if __name__ == "__main__":
    main()
