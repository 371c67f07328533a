"""The export stage (only with `export.onnx`): the fine-tuned model as ONNX (and int8)
with pooling and normalization in the graph, checked against the PyTorch model on the
held-out texts and the gate metric. Its report is part of the gate, the card shows its
sizes and CPU speed, and the push publishes the exported folder as `onnx/`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.config import RunConfig
from trainer.evaluation import build_evaluators
from trainer.release import ONNX_FOLDER, check_export, held_out_texts, write_export_folder
from trainer.results import Evaluation, ExportReport
from trainer.stages.release import is_model_folder

if TYPE_CHECKING:
    from datasets import DatasetDict
    from sentence_transformers import SentenceTransformer

PARITY_FILE = "parity.json"
"""The export report, written beside the graphs (so a published `onnx/` carries it)."""


def export_folder(config: RunConfig) -> Path:
    """Where the export goes: `output.dir/model/onnx` when this machine holds the saved
    model there (the local stack, a shared volume; emptied first, so no graph of an
    earlier run stays beside this one), else a fresh temporary folder that the
    orchestrator stores as an artifact."""
    model_dir = config.output.model_dir
    if model_dir is not None and is_model_folder(model_dir):
        shutil.rmtree(model_dir / ONNX_FOLDER, ignore_errors=True)
        return model_dir / ONNX_FOLDER
    return Path(tempfile.mkdtemp(prefix="onnx-export-"))


def export_stage(
    config: RunConfig,
    model: SentenceTransformer,
    eval_datasets: DatasetDict,
    evaluation: Evaluation,
    *,
    folder: Path | None = None,
) -> tuple[ExportReport, Path]:
    """Export `model` into `folder` (default: `export_folder`) and check every graph:
    per-text cosine on up to `export.sample_texts` held-out texts, the gate metric on the
    run's evaluators (against `evaluation`), size and CPU speed. Returns the report and
    the folder; whether the parity passed is the gate's decision."""
    if not config.export.onnx:
        raise ValueError("the export stage runs only with export.onnx: true")
    folder = folder or export_folder(config)
    model = model.to("cpu").eval()  # the graph and the speed numbers are for CPU inference
    graphs = write_export_folder(model, folder, config.export)
    report = check_export(
        config,
        model,
        graphs,
        texts=held_out_texts(eval_datasets, config.export.sample_texts),
        evaluators=build_evaluators(config, eval_datasets),
        evaluation=evaluation,
    )
    report = report.model_copy(update={"folder": str(folder)})
    (folder / PARITY_FILE).write_text(
        json.dumps(report.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8"
    )
    return report, folder
