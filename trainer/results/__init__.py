"""Typed results that stages hand to each other: every stage output another stage, the
dashboard or the model card reads is one of these pydantic models, never a loose dict.
ZenML stores them as JSON artifacts with its built-in pydantic materializer; the
Kubeflow components pass `model_dump(mode="json")` and validate it back.
"""

from trainer.results.base import FrozenResult, Result
from trainer.results.data import (
    DataReport,
    DatasetLeakage,
    DatasetReport,
    LeakageReport,
    MiningReport,
    MiningReports,
    SourceReport,
    TeacherReport,
    TeacherReports,
)
from trainer.results.evaluation import DimensionScore, Evaluation, format_metric
from trainer.results.export import ExportedGraph, ExportReport, format_size
from trainer.results.release import (
    NO_INTERVAL,
    ConfidenceInterval,
    GateDecision,
    GuardResult,
    Promotion,
    PushOutcome,
    RunSummary,
)
from trainer.results.run import RunRef
from trainer.results.training import (
    BestModel,
    CheckpointSummary,
    Emissions,
    LeverState,
    ModelInfo,
    ModelLineage,
    ResumeInfo,
    SearchResult,
    SpeedReport,
    TokenizeRecord,
    TrainingSummary,
    TrialRecord,
)

__all__ = [
    "NO_INTERVAL",
    "BestModel",
    "CheckpointSummary",
    "ConfidenceInterval",
    "DataReport",
    "DatasetLeakage",
    "DatasetReport",
    "DimensionScore",
    "Emissions",
    "Evaluation",
    "ExportReport",
    "ExportedGraph",
    "FrozenResult",
    "GateDecision",
    "GuardResult",
    "LeakageReport",
    "LeverState",
    "MiningReport",
    "MiningReports",
    "ModelInfo",
    "ModelLineage",
    "Promotion",
    "PushOutcome",
    "Result",
    "ResumeInfo",
    "RunRef",
    "RunSummary",
    "SearchResult",
    "SourceReport",
    "SpeedReport",
    "TeacherReport",
    "TeacherReports",
    "TokenizeRecord",
    "TrainingSummary",
    "TrialRecord",
    "format_metric",
    "format_size",
]
