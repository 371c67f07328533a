"""The stages both orchestrators run (load, train, evaluate), the one decision of how
training runs (in process, torchrun, TrainJob), and the pipeline plan: which stages a
run has, which config each gets, which may reach the Hub.
"""

from trainer.stages.evaluate import evaluate_stage
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
    "TRAINING_HARDWARE_STAGES",
    "TRAINJOBS_FOLDER",
    "ConfigVariant",
    "PipelinePlan",
    "Stage",
    "StagePlan",
    "TrainingDispatch",
    "TrainingMode",
    "TrainingSite",
    "evaluate_stage",
    "load_stage",
    "pipeline_plan",
    "train_job_place",
    "train_stage",
    "training_dispatch",
    "training_mode",
    "uses_hub",
]
