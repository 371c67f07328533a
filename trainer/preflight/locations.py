"""Where a run's results go: the Hub target and its token, `output.dir`, the checkpoint
location and a checkpoint to resume from, each checked without writing anything that
stays (a probe file is created and removed)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.config import HF_TOKEN_KEY, RESUME_AUTO, RESUME_NEVER, RunConfig
from trainer.preflight.report import Findings

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


def check_hub(
    config: RunConfig, secret_exists: Callable[[str], bool] | None, found: Findings
) -> None:
    hub = config.hub
    if not hub.enabled:
        return
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(hub.repo_id or "")
    except HFValidationError as error:
        found.problem(
            "hub.repo_id",
            f"{hub.repo_id!r} is not a Hub repo id ({str(error).splitlines()[0]}); "
            "use 'org-or-user/model-name'",
        )
    if secret_exists is None:
        found.skipped.append(
            f"hub.secret_name {hub.secret_name!r}: no secret store here; the pipeline's "
            "preflight step checks it"
        )
    elif not secret_exists(hub.secret_name):
        found.problem(
            "hub.secret_name",
            f"no secret {hub.secret_name!r} holding {HF_TOKEN_KEY}, so the model could not be "
            f"pushed; create it (ZenML: `zenml secret create {hub.secret_name} "
            f"--{HF_TOKEN_KEY}=<token>`) or set hub.enabled: false",
        )
    else:
        found.checked.append(f"hub secret {hub.secret_name}")


def local_write_problem(path: Path) -> str | None:
    """Why files cannot be written in folder `path` (created on demand), or None.

    Nothing is created: a temporary file is opened and removed in the nearest folder
    that exists, which is where the run would create `path`.
    """
    path = path.expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        if existing == path:
            return f"{str(path)!r} is a file, not a folder"
        return f"{str(path)!r} cannot be created: {str(existing)!r} is a file"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".preflight-"):
            pass
    except OSError as error:
        return f"cannot write in {str(existing)!r}: {error.strerror or error}"
    return None


def check_output(config: RunConfig, found: Findings) -> None:
    if config.output.dir is None:
        return
    problem = local_write_problem(Path(config.output.dir))
    if problem:
        found.problem("output.dir", f"{problem}; the model and evaluation.json go there")
    else:
        found.checked.append(f"output.dir {config.output.dir}")


def _remote_write_problem(filesystem: AbstractFileSystem, root: str) -> str | None:
    probe = f"{root.rstrip('/')}/.preflight-{uuid.uuid4().hex}"
    try:
        filesystem.pipe_file(probe, b"")
        filesystem.rm(probe)
    except Exception as error:  # each object store has its own errors (auth, bucket, ...)
        return f"cannot write there: {type(error).__name__}: {str(error).splitlines()[0]}"
    return None


def checkpoint_write_problem(
    location: str, filesystem: AbstractFileSystem | None = None
) -> str | None:
    """Why training could not save checkpoints at `location` (a path or fsspec URL), or
    None; `filesystem` is one that carries credentials (the artifact store's)."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    from trainer.training import fsspec_can_open

    if not fsspec_can_open(location):
        protocol = fsspec.core.split_protocol(location)[0]
        return (
            f"fsspec knows no filesystem for {protocol}://, so training could not save "
            "checkpoints; use a local path, a mounted volume or an fsspec URL (s3://, gs://, ...)"
        )
    try:
        if filesystem is not None:
            fs, root = filesystem, filesystem._strip_protocol(location)
        else:
            fs, root = fsspec.core.url_to_fs(location)
    except (ImportError, ValueError) as error:  # a known protocol whose package is missing
        return str(error).splitlines()[0]
    if isinstance(fs, LocalFileSystem):
        return local_write_problem(Path(root))
    return _remote_write_problem(fs, str(root))


def foreign_location_problem(uri: str) -> str | None:
    """Why `uri` cannot hold our checkpoint series: it holds files the store did not
    write (another Trainer's checkpoints, anything else); None for an empty or missing
    folder and for one of our series."""
    from trainer.training import CheckpointStore

    try:
        store = CheckpointStore(uri)
        entries = store.foreign_entries()
    except (OSError, ValueError, ImportError):  # unreadable: the write check says why
        return None
    return store.foreign_message(entries) if entries else None


def _check_resume(resume: str, found: Findings) -> None:
    """A checkpoint named by `checkpoints.resume` must exist (and be complete)."""
    if resume in (RESUME_AUTO, RESUME_NEVER):
        return
    from trainer.training import open_checkpoint

    try:
        open_checkpoint(resume)
    except (OSError, ValueError, ImportError) as error:
        message = str(error).removeprefix("checkpoints.resume: ").splitlines()[0]
        found.problem("checkpoints.resume", message)
    else:
        found.checked.append(f"checkpoint to resume from {resume}")


def check_checkpoints(
    config: RunConfig,
    artifact_root: str | None,
    filesystem: AbstractFileSystem | None,
    found: Findings,
) -> None:
    """`checkpoints.uri`, or the artifact store folder it defaults to, must be writable."""
    uri = config.checkpoints.uri
    if uri is None and artifact_root is None:
        found.skipped.append(
            "checkpoints.uri: not set, so checkpoints go to the orchestrator's artifact "
            "store; the pipeline's preflight step checks it"
        )
    else:
        if uri is not None:
            location, said, credentials = uri, repr(uri), None
        else:
            location = f"{str(artifact_root).rstrip('/')}/checkpoints"
            said = f"not set, so checkpoints would go to the artifact store at {location!r}"
            credentials = filesystem
        problem = checkpoint_write_problem(location, credentials)
        if problem is None and uri is not None:
            problem = foreign_location_problem(uri)
        if problem:
            found.problem("checkpoints.uri", f"{said}: {problem}")
        else:
            found.checked.append(f"checkpoint location {location}")
    _check_resume(config.checkpoints.resume, found)
