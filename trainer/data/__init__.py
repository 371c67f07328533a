"""Training and evaluation data: sources (Hub ids, csv/jsonl/parquet, compressed),
column mapping, content checks, the leakage check, BEIR folders, hard-negative mining
and teacher targets for distillation.
"""

from trainer.data.beir import BeirFormatError, load_beir
from trainer.data.distillation import label_dataset, teacher_datasets, teacher_targets_for_run
from trainer.data.leakage import LeakageError, check_leakage, enforce_leakage_policy, normalise
from trainer.data.loading import (
    check_data,
    check_data_keeping_held_out,
    check_data_keeping_splits,
    load_datasets,
    load_datasets_with_report,
    load_documents,
    load_evaluator_rows,
    reopen_streams,
    stream_stand_ins,
)
from trainer.data.mining import mine_dataset, mine_hard_negatives_for_run
from trainer.data.streaming import pin_stream_revisions

__all__ = [
    "BeirFormatError",
    "LeakageError",
    "check_data",
    "check_data_keeping_held_out",
    "check_data_keeping_splits",
    "check_leakage",
    "enforce_leakage_policy",
    "label_dataset",
    "load_beir",
    "load_datasets",
    "load_datasets_with_report",
    "load_documents",
    "load_evaluator_rows",
    "mine_dataset",
    "mine_hard_negatives_for_run",
    "normalise",
    "pin_stream_revisions",
    "reopen_streams",
    "stream_stand_ins",
    "teacher_datasets",
    "teacher_targets_for_run",
]
