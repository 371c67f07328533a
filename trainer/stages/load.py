"""The load stage: validated train and held-out datasets keyed by dataset name, and the
report of what loading and the leakage check found.
"""

from __future__ import annotations

import logging

from datasets import DatasetDict

from trainer.config import RunConfig
from trainer.data import (
    check_leakage,
    enforce_leakage_policy,
    load_datasets_with_report,
    stream_stand_ins,
)
from trainer.results import DataReport

logger = logging.getLogger(__name__)


def load_stage(config: RunConfig) -> tuple[DatasetDict, DatasetDict, DataReport]:
    """Train and held-out `DatasetDict`s keyed by dataset name, and what loading found
    (rows, columns, dropped blank texts, duplicates, rows shared between training and
    held-out data, warnings). A held-out query that also occurs in training stops the
    run (`LeakageError`) unless `leakage.on_query_overlap: warn`."""
    train_datasets, held_out, report = load_datasets_with_report(config)
    leakage = check_leakage(train_datasets, held_out)
    warnings = enforce_leakage_policy(leakage, config.leakage)
    for warning in warnings:
        logger.warning(warning)
    report = report.model_copy(update={"leakage": leakage, "leakage_warnings": warnings})
    # A streamed dataset travels as its first rows; the train stage opens it again.
    return stream_stand_ins(config, train_datasets), held_out, report
