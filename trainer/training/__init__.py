"""A training run: arguments, losses, `SentenceTransformerTrainer`, durable checkpoints
and resume, SIGTERM handling, progress lines, emissions, the experiment-tracker callback,
process groups, and hyperparameter search.
"""

from trainer.training.arguments import effective_training_arguments, training_argument_problems
from trainer.training.checkpoints import (
    MANIFEST_NAME,
    CheckpointStore,
    ForeignLocation,
    SeriesIdentity,
    SeriesMismatch,
    TrainingInterrupted,
    fsspec_can_open,
    open_checkpoint,
)
from trainer.training.distributed import Topology, barrier, init_process_group, processes_per_node
from trainer.training.lease import LeaseHeld, LeaseLost, SeriesLease
from trainer.training.losses import build_loss
from trainer.training.run import process_group_arguments, train_in_process
from trainer.training.search import apply_best, run_search
from trainer.training.series import checkpoint_uri, content_digest, series_digest, series_identity
from trainer.training.tracking import (
    EVALUATION_TABLE,
    evaluation_metrics,
    evaluation_table,
    gate_metrics,
    log_evaluation,
    log_html,
    log_model_card,
    log_run_parameters,
    log_run_tags,
    log_training_history,
    metric_name,
    reporting_callbacks,
    run_parameters,
    run_tags,
)
from trainer.training.trainer import TrainedModel, build_trainer, train

__all__ = [
    "EVALUATION_TABLE",
    "MANIFEST_NAME",
    "CheckpointStore",
    "ForeignLocation",
    "LeaseHeld",
    "LeaseLost",
    "SeriesIdentity",
    "SeriesLease",
    "SeriesMismatch",
    "Topology",
    "TrainedModel",
    "TrainingInterrupted",
    "apply_best",
    "barrier",
    "build_loss",
    "build_trainer",
    "checkpoint_uri",
    "content_digest",
    "effective_training_arguments",
    "evaluation_metrics",
    "evaluation_table",
    "fsspec_can_open",
    "gate_metrics",
    "init_process_group",
    "log_evaluation",
    "log_html",
    "log_model_card",
    "log_run_parameters",
    "log_run_tags",
    "log_training_history",
    "metric_name",
    "open_checkpoint",
    "process_group_arguments",
    "processes_per_node",
    "reporting_callbacks",
    "run_parameters",
    "run_search",
    "run_tags",
    "series_digest",
    "series_identity",
    "train",
    "train_in_process",
    "training_argument_problems",
]
