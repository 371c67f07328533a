"""What the steps read from ZenML itself: the run they belong to and where it stores data."""

from __future__ import annotations

from fsspec import AbstractFileSystem
from zenml import get_step_context
from zenml.client import Client
from zenml.exceptions import StepContextError

from trainer.results import ResumeInfo, RunRef


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


def unfinished_earlier_run(resume: ResumeInfo, current: RunRef) -> str | None:
    """The earlier ZenML run whose checkpoint this training continued, when ZenML still
    records it as unfinished: a process killed without SIGTERM (SIGKILL, OOM, a laptop
    stopped hard) cannot report its end, so the dashboard keeps showing it as running.
    None for a fresh start, a retry within this run, or a run that ended properly."""
    prefix = RunRef(orchestrator="zenml", name="").label()
    if not resume.resumed or not (resume.from_run or "").startswith(prefix):
        return None
    name = (resume.from_run or "")[len(prefix) :]
    if name == current.name:
        return None
    try:
        earlier = Client().get_pipeline_run(name)
    except KeyError:  # deleted since
        return None
    return None if earlier.status.is_finished else name
