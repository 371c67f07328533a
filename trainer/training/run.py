"""Training in this process with durable checkpoints: decide whether to resume, fetch the
checkpoint, train, publish checkpoints as they are saved, stop cleanly on SIGTERM, mark
the series finished and export the model. Alone, or as one rank under torchrun
(`trainer.cluster.entrypoint` runs this in every rank).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datasets import DatasetDict

from trainer.config import RESUME_AUTO, RESUME_NEVER, CheckpointConfig, OutputConfig, RunConfig
from trainer.models import save_model
from trainer.results import CheckpointSummary, ResumeInfo, RunRef
from trainer.training.arguments import training_argument_values
from trainer.training.checkpoints import (
    CHECKPOINT_PREFIX,
    Checkpoint,
    CheckpointStore,
    ForeignLocation,
    SeriesIdentity,
    SeriesMismatch,
    open_checkpoint,
)
from trainer.training.distributed import Topology, barrier, broadcast, init_process_group
from trainer.training.trainer import TrainedModel, train

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)


def _open_series(
    checkpoints: CheckpointConfig,
    store: CheckpointStore,
    identity: SeriesIdentity,
    run: str | None,
) -> None:
    """Make sure the location is this training's series before anything is read or
    cleared there: claim an empty one, refuse a foreign one (`ForeignLocation`) and an
    unfinished series of another training (`SeriesMismatch`, naming the keys that differ,
    unless `resume: never` says to discard it); a finished or empty series of another
    training becomes this one's."""
    manifest = store.series()
    if manifest is None:
        store.claim(identity, run)
        return
    if manifest.digest is None or manifest.digest == identity.digest:
        if manifest.digest is None:
            store.claim(identity, run)
        return
    differences = identity.differences(manifest)
    unfinished = store.finished() is None and store.newest() is not None
    if unfinished and checkpoints.resume != RESUME_NEVER:
        raise SeriesMismatch(
            f"the checkpoint series at {store.uri} belongs to a different training (series "
            f"{manifest.digest}, this run {identity.digest}), unfinished: resuming it would "
            f"continue that training. It differs in {'; '.join(differences) or 'its data'}. "
            "Give this run its own checkpoints.uri (or leave it unset: every training gets "
            "its own series), or set checkpoints.resume: never to discard that series"
        )
    logger.warning(
        "the checkpoint series at %s was made by a different training (%s); it is %s, so "
        "this training takes the location over",
        store.uri,
        "; ".join(differences) or "other data",
        "unfinished but checkpoints.resume is 'never'" if unfinished else "finished or empty",
    )
    store.reset()
    store.claim(identity, run)


def _decide_resume(
    checkpoints: CheckpointConfig,
    store: CheckpointStore,
    filesystem: AbstractFileSystem | None,
) -> ResumeInfo:
    """Decide where training starts, and clear what a fresh start must not see (rank 0
    only: the other ranks receive the decision). The store is this training's series
    (`_open_series`)."""
    if checkpoints.resume == RESUME_NEVER:
        store.reset()
        return ResumeInfo(reason="checkpoints.resume is 'never'")
    if checkpoints.resume == RESUME_AUTO:
        finished = store.finished()
        if finished is not None:
            store.reset()
            by = f" by {finished.run}" if finished.run else ""
            return ResumeInfo(
                reason=f"the series at {store.uri} was finished{by} at step {finished.step}; "
                "a finished training is not resumed"
            )
        checkpoint = store.newest()
        if checkpoint is None:
            store.reset()
            return ResumeInfo(reason=f"no complete checkpoint at {store.uri}")
        reason = "newest complete checkpoint of an unfinished series"
    else:
        inside = _inside(checkpoints.resume, store)
        _, checkpoint = open_checkpoint(checkpoints.resume, filesystem if inside else None)
        # Later checkpoints of this series would win the next automatic resume.
        store.reset(keep_up_to=checkpoint.step if inside else None)
        reason = "named by checkpoints.resume"
    return ResumeInfo(
        resumed=True,
        from_step=checkpoint.step,
        checkpoint=checkpoint.uri,
        from_run=checkpoint.run,
        reason=reason,
    )


def _inside(uri: str, store: CheckpointStore) -> bool:
    return uri.rstrip("/").startswith(store.uri + "/")


def _fetch(
    resume: ResumeInfo,
    store: CheckpointStore,
    filesystem: AbstractFileSystem | None,
    staging: Path,
) -> Path:
    """Copy the checkpoint `resume` names into `staging` (what the Trainer resumes from)."""
    assert resume.checkpoint is not None and resume.from_step is not None
    if _inside(resume.checkpoint, store):
        source = store
    else:
        source, _ = open_checkpoint(resume.checkpoint)
    return source.fetch(Checkpoint(step=resume.from_step, uri=resume.checkpoint), staging)


def _restore_best(local: Path, store: CheckpointStore, staging: Path) -> None:
    """Point the resumed Trainer at the best checkpoint of the series again.

    `trainer_state.json` records the best checkpoint (`load_best_model_at_end`) as a path
    in the staging folder of the run that saved it, which a resumed run (another pod, a
    fresh temporary folder) does not have: the Trainer would forget it and end with the
    last weights instead. The store keeps that checkpoint (`PublishCheckpoints` protects
    it from pruning): fetch it beside the resumed one and rewrite the path."""
    import json

    from trainer.training.checkpoints import TRAINER_STATE_NAME

    state_file = local / TRAINER_STATE_NAME
    state = json.loads(state_file.read_text())
    best = state.get("best_global_step")
    if not best or not state.get("best_model_checkpoint"):
        return
    target = staging / f"{CHECKPOINT_PREFIX}{best}"
    if not target.is_dir():
        saved = next((c for c in store.complete() if c.step == best), None)
        if saved is None:
            logger.warning(
                "the best checkpoint (step %d) is not in %s: the run will end with its best "
                "the run ends with its last weights",
                best,
                store.uri,
            )
            return
        store.fetch(saved, staging)
    state["best_model_checkpoint"] = str(target)
    state_file.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")


def export_model(model: SentenceTransformer, output: OutputConfig) -> Path | None:
    """Save the model to `output.dir/model` for people to open; None when not asked to.

    Without sentence-transformers' generic card: the card stage writes the project's card
    (base model, datasets, gate) as its README.md, the text a push publishes."""
    if not (output.save_model and output.model_dir is not None):
        return None
    save_model(model, output.model_dir, create_model_card=False)
    return output.model_dir


def train_in_process(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None = None,
    *,
    checkpoint_uri: str | None,
    filesystem: AbstractFileSystem | None = None,
    run: RunRef | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    work_dir: Path | None = None,
    series: SeriesIdentity | None = None,
) -> TrainedModel:
    """Train in this process: alone, or as one rank among torchrun's (`work_dir` is then
    this node's folder, the same for all its ranks).

    Checkpoints are written locally by the Trainer and published to `checkpoint_uri`
    every `checkpoints.every_n_steps`. On SIGTERM the current step finishes, a checkpoint
    is published and `TrainingInterrupted` is raised, so the process exits non-zero and
    the orchestrator's retry resumes. A training that runs to the end marks its series
    finished (and drops its checkpoints), then exports the model to `output.dir`.
    Without a `checkpoint_uri` the checkpoints live in a temporary folder of this
    process only (said in a warning): nothing survives the pod.

    Rank 0 holds the series' lease for the whole training (`LeaseHeld` when another live
    run trains it) and opens the series as `_open_series` says; `series` is the
    training's identity (computed here from the config and data when not given).
    """
    # Here, not at the top: the callbacks import transformers' Trainer and torch, which
    # a load-step pod never needs.
    from trainer.training.callbacks import PublishCheckpoints, StopOnSignal
    from trainer.training.checkpoints import TrainingInterrupted
    from trainer.training.lease import SeriesLease
    from trainer.training.series import series_identity

    topology = Topology.from_env()
    label = run.label() if run else None
    with contextlib.ExitStack() as stack:
        staging = work_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="st-finetune-train-"))
        )
        if checkpoint_uri is None:
            checkpoint_uri = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="st-finetune-checkpoints-")
            )
            logger.warning(
                "no durable checkpoint location: checkpoints stay in %s and are lost with "
                "this pod; set checkpoints.uri to resume after preemption",
                checkpoint_uri,
            )
        store = CheckpointStore(checkpoint_uri, filesystem)
        if topology.distributed:
            init_process_group(**process_group_arguments(config))
        lease = None
        resume = None
        if topology.is_main:
            foreign = store.foreign_entries()
            if foreign:  # before the lease: not even a lease file goes there
                raise ForeignLocation(store.foreign_message(foreign))
            lease = SeriesLease(
                store,
                holder=label or f"a run without a name (pid {os.getpid()})",
                run_id=run.id if run else None,
                timeout_s=config.checkpoints.lease.timeout_s,
                heartbeat_s=config.checkpoints.lease.heartbeat_s,
            )
            stack.enter_context(lease.held())
            identity = series or series_identity(config, train_datasets)
            _open_series(config.checkpoints, store, identity, label)
            resume = _decide_resume(config.checkpoints, store, filesystem)
        resume = broadcast(resume)
        local = None
        if resume.resumed:
            local = staging / f"{CHECKPOINT_PREFIX}{resume.from_step}"
            if topology.is_node_leader:
                _fetch(resume, store, filesystem, staging)
                _restore_best(local, store, staging)
            barrier()
        if topology.is_main:
            logger.info(resume.log_line())
        publish = PublishCheckpoints(
            store, keep=config.checkpoints.keep, run=label, topology=topology, lease=lease
        )
        stop = StopOnSignal(topology=topology)
        with stop.installed():
            trained = train(
                config,
                train_datasets,
                eval_datasets,
                output_dir=staging,
                callbacks=[publish, stop, *callbacks],
                resume_from=local,
            )
        steps = trained.summary
        if stop.stopped_at is not None and steps.global_step < (steps.planned_steps or 0):
            raise TrainingInterrupted(
                f"training stopped by {stop.received.name if stop.received else 'a signal'} "
                f"at global step {stop.stopped_at} of {steps.planned_steps}; checkpoint "
                f"saved to {store.uri}: a retry of this step resumes from it"
            )
        if topology.is_main:
            store.mark_finished(steps.global_step, label)
    if topology.is_main:
        exported = export_model(trained.model, config.output)
        if exported is not None:
            logger.info("fine-tuned model saved to %s", exported)
    summary = trained.summary.model_copy(
        update={
            "resume": resume,
            "checkpoints": CheckpointSummary(
                uri=store.uri,
                every_n_steps=config.checkpoints.every_n_steps,
                saved_steps=publish.saved_steps,
                finished=True,
            ),
        }
    )
    return TrainedModel(model=trained.model, summary=summary)


def process_group_arguments(config: RunConfig) -> dict[str, Any]:
    """What `init_process_group` needs to match the Trainer's own arguments."""
    arguments = training_argument_values(config)
    return {"use_cpu": bool(arguments.get("use_cpu")), "backend": arguments.get("ddp_backend")}
