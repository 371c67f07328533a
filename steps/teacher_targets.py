"""Step: label the datasets whose loss has a teacher with the teacher's embeddings or
scores, once, before training.

Sits after `load_datasets` (and mining) and before search and training. Its labelled
datasets are the artifacts the train step reads, so a retried or resumed training never
loads the teacher again; on Kubernetes it runs on the training hardware (it encodes).
Datasets without a teacher pass through unchanged.
"""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import step
from zenml.logger import get_logger

from steps._metadata import log_step_metadata
from steps._models import resolve_loss_models
from steps.dataset_materializer import DatasetDictMaterializer
from trainer.config import RunConfig
from trainer.data import teacher_targets_for_run
from trainer.results import TeacherReports

logger = get_logger(__name__)


@step(
    output_materializers={
        "train_datasets": DatasetDictMaterializer,
        "eval_datasets": DatasetDictMaterializer,
    }
)
def teacher_targets(
    config: RunConfig, train_datasets: DatasetDict, eval_datasets: DatasetDict
) -> tuple[
    Annotated[DatasetDict, "train_datasets"],
    Annotated[DatasetDict, "eval_datasets"],
    Annotated[TeacherReports, "teacher_targets"],
]:
    """Train and held-out splits with the teacher's `label` column, plus what it computed."""
    config = resolve_loss_models(config, roles=("teacher",))  # a zenml: teacher's weights
    train, held_out, reports = teacher_targets_for_run(config, train_datasets, eval_datasets)
    for report in reports.datasets.values():
        logger.info(report.summary_line())
    log_step_metadata(
        {"teacher_targets": reports.metadata(), "texts_encoded": reports.texts_encoded}
    )
    return train, held_out, reports
