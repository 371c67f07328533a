"""What the steps read from ZenML itself: the run they belong to and where it stores data."""

from __future__ import annotations

from fsspec import AbstractFileSystem
from zenml import get_step_context
from zenml.client import Client
from zenml.exceptions import StepContextError

from trainer.results import RunRef


def run_ref() -> RunRef:
    """The pipeline run of the current step, with its dashboard URL when there is one."""
    from zenml.utils.dashboard_utils import get_run_url

    context = get_step_context()
    run = context.pipeline_run
    try:
        model = context.model
    except StepContextError:  # the run has no `model:`
        model = None
    return RunRef(
        orchestrator="zenml",
        name=run.name,
        id=str(run.id),
        pipeline=run.pipeline.name if run.pipeline else None,
        model_version=f"{model.name} {model.version}" if model is not None else None,
        dashboard_url=get_run_url(run),
    )


def artifact_store_location() -> tuple[str, AbstractFileSystem | None]:
    """Root path of the active artifact store, and the fsspec filesystem that carries its
    credentials (S3, GCS and Azure stores have one; the local store needs none)."""
    store = Client().active_stack.artifact_store
    filesystem = getattr(store, "filesystem", None)
    return store.path, filesystem if isinstance(filesystem, AbstractFileSystem) else None
