"""Step: read, map, validate and split the run's datasets."""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import step

from steps._metadata import log_step_metadata
from steps.materializers import HFDatasetMaterializer
from trainer.config import RunConfig
from trainer.results import DataSummary
from trainer.run import load_stage


@step(
    output_materializers={
        "train_datasets": HFDatasetMaterializer,
        "eval_datasets": HFDatasetMaterializer,
    }
)
def load_datasets(
    config: RunConfig,
) -> tuple[
    Annotated[DatasetDict, "train_datasets"],
    Annotated[DatasetDict, "eval_datasets"],
    Annotated[DataSummary, "dataset_stats"],
]:
    """Train and held-out `DatasetDict`s keyed by dataset name, plus their sizes."""
    train, held_out, summary = load_stage(config)
    log_step_metadata(summary.model_dump(mode="json"))
    return train, held_out, summary
