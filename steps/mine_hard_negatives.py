"""Step: mine hard negatives for the datasets whose config asks for it.

Sits between `load_datasets` and `train`, takes only the training splits (held-out rows
never reach it) and encodes with the base model, so on Kubernetes it wants the training
step's hardware. Datasets without `hard_negatives` pass through unchanged.
"""

from __future__ import annotations

import logging
from typing import Annotated

from datasets import DatasetDict
from zenml import step

from steps._metadata import log_step_metadata
from steps.materializers import HFDatasetMaterializer
from trainer.config import RunConfig
from trainer.mining import MiningReports, mine_hard_negatives_for_run

logger = logging.getLogger(__name__)


@step(output_materializers={"train_datasets": HFDatasetMaterializer})
def mine_hard_negatives(
    config: RunConfig, train_datasets: DatasetDict
) -> tuple[Annotated[DatasetDict, "train_datasets"], Annotated[MiningReports, "mining"]]:
    """(anchor, positive) rows -> (anchor, positive, negative_1..n) rows, plus what mining did."""
    mined, reports = mine_hard_negatives_for_run(config, train_datasets)
    for report in reports.datasets.values():
        logger.info(report.summary_line())
    if reports.datasets:
        log_step_metadata({"hard_negatives": reports.metadata()})
    return mined, reports
