"""Step: fine-tune the base model with SentenceTransformerTrainer.

On Kubernetes this is the step that lands on a GPU node: the pipeline gives it the pod
settings built from `config.hardware` (see `pipelines/k8s_settings.py`).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Annotated, Any

from datasets import DatasetDict
from sentence_transformers import SentenceTransformer
from zenml import step

from steps._metadata import log_step_metadata
from steps.materializers import SentenceTransformerMaterializer
from trainer.config import RunConfig
from trainer.training import train as run_training


@step(output_materializers={"model": SentenceTransformerMaterializer})
def train(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict,
) -> tuple[Annotated[SentenceTransformer, "model"], Annotated[dict[str, Any], "training"]]:
    """Train, export the model to `output.dir/model` when set, and log the run's facts."""
    with contextlib.ExitStack() as stack:
        # Without output.dir, checkpoints only serve this run: keep them in a temp dir.
        checkpoints = (
            Path(config.output.dir) / "checkpoints"
            if config.output.dir
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="checkpoints-")))
        )
        result = run_training(config, train_datasets, eval_datasets, output_dir=checkpoints)
    if config.output.save_model and config.output.model_dir is not None:
        result.model.save(str(config.output.model_dir))
    summary = result.summary()
    log_step_metadata(
        {key: value for key, value in summary.items() if key != "history" and value is not None}
    )
    return result.model, summary
