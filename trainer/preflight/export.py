"""Preflight of the export stage (`export.onnx`): the libraries it needs are installed,
there are held-out texts for its parity check, and the model is not a query/document
Router (`model.asymmetric`), which one graph cannot hold. Each fails a run in seconds
instead of after training."""

from __future__ import annotations

from importlib.util import find_spec

from trainer.config import ROUTER_EXPORT_REFUSED, RunConfig
from trainer.preflight.report import Findings
from trainer.problems import Problem

EXPORT_LIBRARIES = ("onnx", "onnxscript", "onnxruntime")
"""torch's ONNX exporter needs onnx and onnxscript; the parity check and int8 quantization
run on onnxruntime (the project's `export` extra)."""


def missing_export_libraries() -> list[str]:
    """Export libraries that are not importable here (found without importing them)."""
    return [name for name in EXPORT_LIBRARIES if find_spec(name) is None]


def check_export(config: RunConfig, found: Findings) -> None:
    """Problems of `config.export` that need no model."""
    export = config.export
    if not export.onnx:
        return
    if config.model.asymmetric:
        found.problems.append(Problem(field="export.onnx", message=ROUTER_EXPORT_REFUSED))
    missing = missing_export_libraries()
    if missing:
        found.problems.append(
            Problem(
                field="export.onnx",
                message=(
                    f"the export stage needs {', '.join(EXPORT_LIBRARIES)}; not installed: "
                    f"{', '.join(missing)} (pip install -e '.[export]')"
                ),
            )
        )
    holds_out = any(
        dataset.eval_source is not None or dataset.eval_size is not None
        for dataset in config.datasets.values()
    )
    if not holds_out:
        found.problems.append(
            Problem(
                field="export.onnx",
                message=(
                    "the export's parity check compares embeddings of held-out texts, and "
                    "this run holds none out: give a dataset eval_size or eval_source"
                ),
            )
        )
    if not missing and holds_out and not config.model.asymmetric:
        variants = "ONNX" + (f" and {export.quantize} ONNX" if export.quantize else "")
        found.checked.append(
            f"export: {variants}, parity min cosine {export.parity.min_cosine}, max metric "
            f"drop {export.parity.max_metric_drop}"
        )
