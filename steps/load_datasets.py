"""Step: read, map, validate and split the run's datasets."""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import step

from steps._metadata import log_step_metadata
from steps.dataset_materializer import DatasetDictMaterializer
from trainer.config import RunConfig
from trainer.results import DataReport
from trainer.stages import load_stage


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
    Annotated[DataReport, "data_report"],
]:
    """Train and held-out `DatasetDict`s keyed by dataset name, and what loading found
    (sizes, columns, dropped blank texts, duplicates, warnings)."""
    train, held_out, report = load_stage(config)
    log_step_metadata(report.model_dump(mode="json"))
    return train, held_out, report
