"""The stages of a fine-tuning run, independent of the orchestrator that runs them.

A ZenML step and a Kubeflow component differ only in how artifacts reach them and where
their outputs go. Everything else a stage does lives here, once: which checkpoints a
training continues from and where new ones go, exporting the model, the evaluation
summary and `evaluation.json`, and the facts the orchestrator's own config must agree
with. The adapters (`steps/`, `pipelines/kfp_pipeline.py`) pass plain paths and objects
in and store the typed results (`trainer.results`) that come out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from datasets import Dataset, DatasetDict

from trainer.checkpoints import CHECKPOINT_PREFIX, Checkpoint, CheckpointStore, open_checkpoint
from trainer.config import (
    RESUME_AUTO,
    RESUME_NEVER,
    CheckpointConfig,
    OutputConfig,
    RunConfig,
    hub_repo_id,
)
from trainer.data import load_datasets_with_report
from trainer.distributed import (
    Topology,
    barrier,
    broadcast,
    init_process_group,
    processes_per_node,
)
from trainer.evaluation import build_evaluators, compare, run_evaluators
from trainer.leakage import check_leakage, enforce_leakage_policy
from trainer.results import (
    CheckpointSummary,
    DataReport,
    Evaluation,
    ResumeInfo,
    RunRef,
    TrainingSummary,
)
from trainer.training import (
    effective_training_arguments,
    load_model,
    train,
    training_argument_values,
)

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)

CHECKPOINTS_FOLDER = "checkpoints"
"""Folder under an orchestrator's storage root that holds the checkpoint series."""

_OBSERVATIONAL_ARGUMENTS = frozenset(
    {
        "logging_steps",
        "logging_strategy",
        "logging_first_step",
        "logging_dir",
        "report_to",
        "disable_tqdm",
        "run_name",
        "eval_strategy",
        "eval_steps",
        "per_device_eval_batch_size",
        "dataloader_num_workers",
        "dataloader_pin_memory",
        "dataloader_persistent_workers",
        "dataloader_prefetch_factor",
    }
)
"""Training arguments that change what is logged or how fast, not what is learned: a run
that differs only in these continues the same checkpoint series."""


# --- load ------------------------------------------------------------------------------


def load_stage(config: RunConfig) -> tuple[DatasetDict, DatasetDict, DataReport]:
    """Train and held-out `DatasetDict`s keyed by dataset name, and what loading found
    (rows, columns, dropped blank texts, duplicates, rows shared between training and
    held-out data, warnings). A held-out query that also occurs in training stops the
    run (`LeakageError`) unless `leakage.on_query_overlap: warn`."""
    train_datasets, held_out, report = load_datasets_with_report(config)
    leakage = check_leakage(train_datasets, held_out)
    warnings = enforce_leakage_policy(leakage, config.leakage)
    for warning in warnings:
        logger.warning(warning)
    report = report.model_copy(update={"leakage": leakage, "leakage_warnings": warnings})
    return train_datasets, held_out, report


# --- train -----------------------------------------------------------------------------


def content_digest(dataset: Dataset) -> str:
    """SHA-256 of a dataset's rows: its Arrow table and, after a shuffle or select, the
    indices mapping over it (hashing the mapping is cheap; gathering rows through it is
    not). Unlike `Dataset._fingerprint`, it depends on the data only, not on file paths
    and modification times, so a fresh clone or a rebuilt image still finds its
    checkpoints."""
    digest = hashlib.sha256()
    tables = [dataset.data.table]
    if dataset._indices is not None:
        tables.append(dataset._indices.table)
    for table in tables:
        for batch in table.to_batches(max_chunksize=65_536):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            digest.update(sink.getvalue())
    return digest.hexdigest()


def series_digest(
    config: RunConfig, train_datasets: DatasetDict, *, base_model_id: str | None = None
) -> str:
    """What a training learns from, as 16 hex digits: base model, dataset configs and
    contents, losses, training arguments (not the purely observational ones) and seed.

    Two runs with the same digest would train the same model, so one may continue the
    other's checkpoints; any change that alters the result changes the digest.
    `base_model_id` names the base weights when `model.name_or_path` cannot (a ZenML
    model version resolved into a temporary folder: its artifact id).
    """
    shaping: dict[str, Any] = config.model_dump(mode="json", include={"model", "datasets", "seed"})
    if base_model_id is not None:
        shaping["model"]["name_or_path"] = base_model_id
    shaping["training"] = {
        key: value
        for key, value in effective_training_arguments(config).items()
        if key not in _OBSERVATIONAL_ARGUMENTS
    }
    shaping["data"] = {name: content_digest(ds) for name, ds in sorted(train_datasets.items())}
    text = json.dumps(shaping, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_uri(
    config: RunConfig,
    train_datasets: DatasetDict,
    *,
    root: str,
    pipeline: str,
    base_model_id: str | None = None,
) -> str:
    """Where this run's checkpoint series lives: `checkpoints.uri` when set, else
    `<root>/checkpoints/<pipeline>/<model name>/<series digest>` under the orchestrator's
    storage root (a retried step or a re-run of the same config lands on the same folder)."""
    if config.checkpoints.uri:
        return config.checkpoints.uri
    digest = series_digest(config, train_datasets, base_model_id=base_model_id)
    return "/".join([root.rstrip("/"), CHECKPOINTS_FOLDER, pipeline, config.output.name, digest])


@dataclass(frozen=True)
class TrainedModel:
    """The fine-tuned model and the typed summary of how it was trained."""

    model: SentenceTransformer
    summary: TrainingSummary


def _decide_resume(
    checkpoints: CheckpointConfig,
    store: CheckpointStore,
    filesystem: AbstractFileSystem | None,
) -> ResumeInfo:
    """Decide where training starts, and clear what a fresh start must not see (rank 0
    only: the other ranks receive the decision)."""
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


def export_model(model: SentenceTransformer, output: OutputConfig) -> Path | None:
    """Save the model to `output.dir/model` for people to open; None when not asked to."""
    if not (output.save_model and output.model_dir is not None):
        return None
    model.save(str(output.model_dir))
    return output.model_dir


def train_stage(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None = None,
    *,
    checkpoint_uri: str | None,
    filesystem: AbstractFileSystem | None = None,
    run: RunRef | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> TrainedModel:
    """Train with durable checkpoints, continuing an interrupted series when there is one.

    One process per device: with more than one (`distributed.nproc_per_node`, or every
    visible GPU for `auto`), the ranks run under torchrun (`trainer.launch`) and this
    process waits for them; `callbacks` then stay here, unused, and the caller logs the
    summary's history instead. Otherwise training runs in this process
    (`train_in_process`). Either way the result is the same: the model rank 0 trained
    and its summary.
    """
    processes = processes_per_node(config.distributed)
    if processes == 1:
        return train_in_process(
            config,
            train_datasets,
            eval_datasets,
            checkpoint_uri=checkpoint_uri,
            filesystem=filesystem,
            run=run,
            callbacks=callbacks,
        )
    from trainer.launch import train_with_torchrun

    return train_with_torchrun(
        config,
        train_datasets,
        eval_datasets,
        nproc_per_node=processes,
        checkpoint_uri=checkpoint_uri,
        filesystem=filesystem,
        run=run,
    )


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
    """
    # Here, not at the top: the callbacks import transformers' Trainer and torch, which
    # a load-step pod never needs.
    from trainer.callbacks import PublishCheckpoints, StopOnSignal, TrainingInterrupted

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
        resume = _decide_resume(config.checkpoints, store, filesystem) if topology.is_main else None
        resume = broadcast(resume)
        local = None
        if resume.resumed:
            local = staging / f"{CHECKPOINT_PREFIX}{resume.from_step}"
            if topology.is_node_leader:
                _fetch(resume, store, filesystem, staging)
            barrier()
        if topology.is_main:
            logger.info(resume.log_line())
        publish = PublishCheckpoints(
            store, keep=config.checkpoints.keep, run=label, topology=topology
        )
        stop = StopOnSignal(topology=topology)
        with stop.installed():
            result = train(
                config,
                train_datasets,
                eval_datasets,
                output_dir=staging,
                callbacks=[publish, stop, *callbacks],
                resume_from=local,
            )
        if stop.stopped_at is not None and result.global_step < (result.planned_steps or 0):
            raise TrainingInterrupted(
                f"training stopped by {stop.received.name if stop.received else 'a signal'} "
                f"at global step {stop.stopped_at} of {result.planned_steps}; checkpoint "
                f"saved to {store.uri}: a retry of this step resumes from it"
            )
        if topology.is_main:
            store.mark_finished(result.global_step, label)
    if topology.is_main:
        exported = export_model(result.model, config.output)
        if exported is not None:
            logger.info("fine-tuned model saved to %s", exported)
    summary = result.summary(
        resume=resume,
        checkpoints=CheckpointSummary(
            uri=store.uri,
            every_n_steps=config.checkpoints.every_n_steps,
            saved_steps=publish.saved_steps,
            finished=True,
        ),
    )
    return TrainedModel(model=result.model, summary=summary)


def process_group_arguments(config: RunConfig) -> dict[str, Any]:
    """What `init_process_group` needs to match the Trainer's own arguments."""
    arguments = training_argument_values(config)
    return {"use_cpu": bool(arguments.get("use_cpu")), "backend": arguments.get("ddp_backend")}


# --- evaluate --------------------------------------------------------------------------


def evaluate_stage(
    config: RunConfig,
    model: SentenceTransformer,
    eval_datasets: DatasetDict,
    *,
    base_model: SentenceTransformer | None = None,
    production: tuple[SentenceTransformer, str] | None = None,
) -> Evaluation:
    """Score the base and the fine-tuned model with the same evaluators on the same rows
    (and `production`, the model in production with its description, when given), log
    the primary metric, and write `output.dir/evaluation.json` when set."""
    evaluators = build_evaluators(config, eval_datasets)
    if not evaluators:
        raise ValueError(
            "nothing to evaluate: configure evaluators, or give a dataset eval_size/eval_source"
        )
    evaluation = compare(base_model or load_model(config.model), model, evaluators)
    if production is not None:
        production_model, described = production
        evaluation = evaluation.model_copy(
            update={
                "production": run_evaluators(production_model, evaluators),
                "production_model": described,
            }
        )
    primary = evaluation.primary_metric
    if primary is not None:
        against = (
            f" (production {evaluation.production[primary]:.4f})"
            if evaluation.production and primary in evaluation.production
            else ""
        )
        logger.info(
            "%s: base %.4f -> fine-tuned %.4f%s",
            primary,
            evaluation.base[primary],
            evaluation.finetuned[primary],
            against,
        )
    path = config.output.evaluation_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(evaluation.model_dump_json(indent=2) + "\n")
    return evaluation


# --- facts the orchestrator config repeats ----------------------------------------------


def reconcile_model_facts(
    config: RunConfig, *, model_name: str | None, license: str | None
) -> RunConfig:
    """Fill `output.model_name` and `card.license` from the orchestrator's model entry
    (ZenML's `model:` block), or fail when the two places disagree.

    A run config says each fact once: the orchestrator's `model.name` / `model.license`
    or the run config's own keys. Saying both is allowed only when they agree.
    """
    updates: dict[str, Any] = {}
    pairs = (
        ("name", model_name, "output.model_name", config.output.model_name),
        ("license", license, "card.license", config.card.license),
    )
    for key, outer, inner_key, inner in pairs:
        if outer is not None and inner is not None and outer != inner:
            raise ValueError(
                f"model.{key} ({outer!r}) and parameters.config.{inner_key} ({inner!r}) "
                f"disagree: set it in one place (model.{key} is enough)"
            )
        if outer is not None and inner is None:
            updates[inner_key] = outer
    if not updates:
        return config
    output = config.output.model_copy(
        update={"model_name": updates.get("output.model_name", config.output.model_name)}
    )
    card = config.card.model_copy(
        update={"license": updates.get("card.license", config.card.license)}
    )
    return config.model_copy(update={"output": output, "card": card})


def uses_hub(config: RunConfig) -> bool:
    """Whether any stage may talk to the Hugging Face Hub: a Hub base model or dataset
    (gated ones need a token to download) or publishing. Such stages get the token."""
    sources = [
        source
        for dataset in config.datasets.values()
        for source in (dataset.source, dataset.eval_source)
        if source is not None
    ] + [evaluator.source for evaluator in config.evaluators if evaluator.source is not None]
    return (
        config.hub.enabled
        or hub_repo_id(config.model.name_or_path) is not None
        or any(source.resolved_format == "hub" for source in sources)
    )
