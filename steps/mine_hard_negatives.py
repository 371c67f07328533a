"""Step: mine hard negatives for the datasets whose config asks for it.

Sits between `load_datasets` and training, takes only the training splits (held-out rows
never reach it) and encodes with the base model, so on Kubernetes it runs on the
training hardware. Datasets without `hard_negatives` pass through unchanged.
"""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import step
from zenml.logger import get_logger

from steps._metadata import log_step_metadata
from steps._models import resolve_base_model
from steps.dataset_materializer import DatasetDictMaterializer
from trainer.config import RunConfig
from trainer.data import mine_hard_negatives_for_run
from trainer.results import MiningReports

logger = get_logger(__name__)


@step(output_materializers={"train_datasets": DatasetDictMaterializer})
def mine_hard_negatives(
    config: RunConfig, train_datasets: DatasetDict
) -> tuple[Annotated[DatasetDict, "train_datasets"], Annotated[MiningReports, "mining"]]:
    """(anchor, positive) rows -> (anchor, positive, negative_1..n) rows, plus what mining did."""
    config, _ = resolve_base_model(config)  # a zenml: base mines with that version's weights
    mined, reports = mine_hard_negatives_for_run(config, train_datasets)
    for report in reports.datasets.values():
        logger.info(report.summary_line())
    if reports.datasets:
        log_step_metadata({"hard_negatives": reports.metadata()})
    return mined, reports
