"""The stages both orchestrators run (load, train, evaluate, export, card) and how a run closes
(its summary), the one decision of how training runs (in process, torchrun, TrainJob),
and the pipeline plan: which stages a run has, which config each gets, which may reach
the Hub.
"""

from trainer.stages.evaluate import evaluate_stage, evaluation_report
from trainer.stages.export import PARITY_FILE, export_folder, export_stage
from trainer.stages.load import load_stage
from trainer.stages.plan import (
    TRAINING_HARDWARE_STAGES,
    ConfigVariant,
    PipelinePlan,
    Stage,
    StagePlan,
    pipeline_plan,
    uses_hub,
)
from trainer.stages.release import (
    card_stage,
    evaluation_tags,
    finish_run,
    is_model_folder,
    run_summary,
)
from trainer.stages.train import (
    TRAINJOBS_FOLDER,
    TrainingDispatch,
    TrainingMode,
    TrainingSite,
    train_job_place,
    train_stage,
    training_dispatch,
    training_mode,
)

__all__ = [
    "PARITY_FILE",
    "TRAINING_HARDWARE_STAGES",
    "TRAINJOBS_FOLDER",
    "ConfigVariant",
    "PipelinePlan",
    "Stage",
    "StagePlan",
    "TrainingDispatch",
    "TrainingMode",
    "TrainingSite",
    "card_stage",
    "evaluate_stage",
    "evaluation_report",
    "evaluation_tags",
    "export_folder",
    "export_stage",
    "finish_run",
    "is_model_folder",
    "load_stage",
    "pipeline_plan",
    "run_summary",
    "train_job_place",
    "train_stage",
    "training_dispatch",
    "training_mode",
    "uses_hub",
]
