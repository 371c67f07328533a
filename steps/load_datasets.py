"""Step: read, map, validate and split the run's datasets."""

from __future__ import annotations

from typing import Annotated, Any

from datasets import DatasetDict
from zenml import step

from steps._metadata import log_step_metadata
from steps.materializers import DatasetDictMaterializer
from trainer.config import RunConfig
from trainer.data import dataset_stats
from trainer.data import load_datasets as load_run_datasets


@step(
    output_materializers={
        "train_datasets": DatasetDictMaterializer,
        "eval_datasets": DatasetDictMaterializer,
    }
)
def load_datasets(
    config: RunConfig,
) -> tuple[
    Annotated[DatasetDict, "train_datasets"],
    Annotated[DatasetDict, "eval_datasets"],
    Annotated[dict[str, Any], "dataset_stats"],
]:
    """Train and held-out `DatasetDict`s keyed by dataset name, plus their sizes."""
    train, held_out = load_run_datasets(config)
    stats = dataset_stats(train, held_out)
    log_step_metadata({"datasets": stats})
    return train, held_out, stats
