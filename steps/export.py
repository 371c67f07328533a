"""Step: export the fine-tuned model to ONNX (and int8) and check it against PyTorch.

Only in runs with `export.onnx` (the plan adds it after evaluate). The report (sizes, CPU
speed, per-text cosine and the gate metric recomputed with each graph) goes to the card,
the gate of the push and the promotion, and the step's metadata; the exported folder
(graphs, tokenizer, export.json, parity.json) is an artifact the push publishes as
`onnx/`, and on the local stack it is also `output.dir/model/onnx`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from datasets import DatasetDict
from sentence_transformers import SentenceTransformer
from zenml import step

from steps._metadata import log_step_metadata
from trainer.config import RunConfig
from trainer.results import Evaluation, ExportReport
from trainer.stages import export_stage


@step
def export(
    config: RunConfig,
    model: SentenceTransformer,
    eval_datasets: DatasetDict,
    evaluation: Evaluation,
) -> tuple[Annotated[ExportReport, "export_report"], Annotated[Path, "onnx"]]:
    """The export report and the exported folder."""
    report, folder = export_stage(config, model, eval_datasets, evaluation)
    log_step_metadata({"export": report.model_dump(mode="json", exclude_none=True)})
    return report, folder
