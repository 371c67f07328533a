"""The active stack's experiment tracker, for the pipeline and for the steps.

A step uses a tracker only when its configuration names one (`experiment_tracker=`),
which ZenML fixes when the pipeline is compiled. `tracked(step)` decides that from the
stack the pipeline is compiled for: with a tracker, the step is bound to it (ZenML then
opens the tracker's run around the step: one MLflow run per pipeline run, shared by the
tracked steps); without one the step is returned as is and nothing changes.

Inside a step, `step_tracker()` says whether this step is being tracked, and
`training_callbacks()` / `mlflow_tracked()` tell the step what to add.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zenml import get_step_context
from zenml.client import Client
from zenml.exceptions import StepContextError

from trainer.training import reporting_callbacks

if TYPE_CHECKING:
    from transformers import TrainerCallback
    from zenml.experiment_trackers import BaseExperimentTracker
    from zenml.steps import BaseStep

    from trainer.config import RunConfig


def experiment_tracker_name() -> str | None:
    """Name of the active stack's experiment tracker; None when it has none."""
    tracker = Client().active_stack.experiment_tracker
    return tracker.name if tracker is not None else None


def tracked(step: BaseStep) -> BaseStep:
    """`step` bound to the active stack's experiment tracker, or `step` itself without one.

    Call it in the pipeline function (compile time), e.g.
    `train_step = tracked(train).with_options(settings=...)`.
    """
    name = experiment_tracker_name()
    return step.with_options(experiment_tracker=name) if name else step


def step_tracker() -> BaseExperimentTracker | None:
    """Inside a step: the tracker whose run is open for this step, else None."""
    tracker = Client().active_stack.experiment_tracker
    if tracker is None:
        return None
    try:
        config = get_step_context().step_run.config
    except (RuntimeError, StepContextError):
        return None
    return tracker if config.uses_experiment_tracker(tracker.name) else None


def training_callbacks(config: RunConfig) -> list[TrainerCallback]:
    """The transformers callback that streams the curves into this step's tracker run."""
    tracker = step_tracker()
    return reporting_callbacks(tracker.flavor, config) if tracker is not None else []


def mlflow_tracked() -> bool:
    """Whether this step logs to an MLflow run (the `trainer.training.tracking.log_*` functions)."""
    tracker = step_tracker()
    return tracker is not None and tracker.flavor == "mlflow"
