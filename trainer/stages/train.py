"""The train stage, and the one decision of how training runs.

`training_dispatch` decides, for ZenML steps and Kubeflow components alike, where the
checkpoint series lives and whether training runs in this process, under torchrun with
one process per device in this pod, or on several nodes as a Kubeflow Trainer TrainJob
(and then the job's name and the shared folder it reads). `train_stage` carries it out.
The orchestrator adapters only describe where they run (`TrainingSite`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from datasets import DatasetDict

from trainer.cluster import (
    Cluster,
    shared_root,
    train_job_name,
    train_on_nodes,
    train_with_torchrun,
)
from trainer.config import RunConfig
from trainer.data import pin_stream_revisions, reopen_streams
from trainer.results import RunRef
from trainer.stages.plan import Stage, pipeline_plan
from trainer.training import (
    SeriesIdentity,
    TrainedModel,
    checkpoint_uri,
    fsspec_can_open,
    processes_per_node,
    series_identity,
    train_in_process,
)

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from transformers import TrainerCallback

logger = logging.getLogger(__name__)

TRAINJOBS_FOLDER = "trainjobs"
"""Folder under the shared root that holds each TrainJob's inputs and outputs."""


class TrainingMode(StrEnum):
    """How the train stage runs training."""

    IN_PROCESS = "in_process"
    """One process, in the stage's own pod."""
    TORCHRUN = "torchrun"
    """Several processes in the stage's pod (one per GPU, or `distributed.nproc_per_node`)."""
    TRAINJOB = "trainjob"
    """`hardware.nodes` nodes, as a Kubeflow Trainer TrainJob the stage submits and follows."""


@dataclass(frozen=True)
class TrainingSite:
    """Where the train stage runs, as its orchestrator knows it."""

    storage_root: str | None
    """The artifact store (ZenML) or pipeline root (Kubeflow): the default home of the
    checkpoint series."""
    pipeline: str
    run: RunRef | None = None
    """The orchestrator run (None: a plain call, as in a notebook or a test)."""
    filesystem: AbstractFileSystem | None = None
    """The storage root's filesystem with its credentials (ZenML's artifact store);
    None: fsspec opens the root with the pod's own credentials."""
    base_model_id: str | None = None
    """Names the base weights when `model.name_or_path` cannot (a resolved ZenML version)."""
    cluster: Callable[[RunConfig], Cluster] | None = None
    """The Kubernetes API, namespace and image for a TrainJob (only called for one)."""
    callbacks: Sequence[TrainerCallback] = field(default_factory=tuple)
    """Trainer callbacks of this process (an experiment tracker's); unused by other processes."""
    log: Callable[[str], None] = logger.info


@dataclass(frozen=True)
class TrainingDispatch:
    """How and where one training runs."""

    mode: TrainingMode
    processes_per_node: int
    checkpoint_uri: str | None
    """None: no durable location (checkpoints live and die with the pod)."""
    filesystem: AbstractFileSystem | None = None
    """The filesystem to reach `checkpoint_uri` with, when it is the site's storage."""
    job_name: str | None = None
    job_uri: str | None = None
    series: SeriesIdentity | None = None
    """What the training learns from (digest and keys): the identity of its series."""


def training_mode(config: RunConfig) -> TrainingMode:
    """In process, under torchrun or as a TrainJob, from the config (and the visible GPUs)."""
    if config.trains_on_nodes:
        return TrainingMode.TRAINJOB
    if processes_per_node(config.distributed) > 1:
        return TrainingMode.TORCHRUN
    return TrainingMode.IN_PROCESS


def training_dispatch(
    config: RunConfig, train_datasets: DatasetDict, site: TrainingSite
) -> TrainingDispatch:
    """Decide how `config` trains at `site`, and where its checkpoints and job live.

    Checkpoints go to `checkpoints.uri`, else into a series under the storage root (the
    shared root when several nodes train) when that root can be written, else nowhere
    durable (Kubeflow's default `minio://` root: only its launcher writes there).
    """
    mode = training_mode(config)
    root = site.storage_root
    if mode is TrainingMode.TRAINJOB:
        root = shared_root(config, root)
    writable = root is not None and (
        (site.filesystem is not None and root == site.storage_root) or fsspec_can_open(root)
    )
    series = series_identity(config, train_datasets, base_model_id=site.base_model_id)
    uri = config.checkpoints.uri
    if uri is None and writable:
        assert root is not None
        uri = checkpoint_uri(
            config, train_datasets, root=root, pipeline=site.pipeline, digest=series.digest
        )
    # The artifact store's credentials are for the artifact store only.
    inside_store = bool(uri and site.storage_root and uri.startswith(site.storage_root))
    dispatch = TrainingDispatch(
        mode=mode,
        processes_per_node=processes_per_node(config.distributed),
        checkpoint_uri=uri,
        filesystem=site.filesystem if inside_store else None,
        series=series,
    )
    if mode is TrainingMode.TRAINJOB:
        if site.run is None:
            raise ValueError("a TrainJob is named after its run: give the TrainingSite a run")
        assert root is not None
        name, job_uri = train_job_place(config, root, site.run)
        # The nodes reach the checkpoints with their own credentials, not this pod's.
        dispatch = replace(
            dispatch,
            filesystem=None,
            job_name=name,
            job_uri=job_uri,
            series=series,
        )
    return dispatch


def train_job_place(config: RunConfig, shared: str, run: RunRef) -> tuple[str, str]:
    """The TrainJob's name (the same for every attempt of `run`'s train step, so a retry
    finds it) and the folder under the `shared` root (`shared_root`) that holds its
    inputs and outputs."""
    name = train_job_name(config.output.name, run.id or run.name)
    return name, f"{shared.rstrip('/')}/{TRAINJOBS_FOLDER}/{name}"


def train_stage(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None,
    site: TrainingSite,
) -> TrainedModel:
    """Train as `training_dispatch` decides: the model rank 0 trained and its summary,
    whichever way it ran. Checkpoints are durable and an interrupted series resumes.
    Streamed datasets (`source.streaming`) are opened again here, from their source (and
    by every rank when several processes train: `trainer.data.streaming`); a Hub stream
    at the commit its revision names now, which the series identity records."""
    config = pin_stream_revisions(config)
    train_datasets = reopen_streams(config, train_datasets)
    dispatch = training_dispatch(config, train_datasets, site)
    if dispatch.mode is TrainingMode.TRAINJOB:
        if site.cluster is None:
            raise ValueError(
                f"hardware.nodes ({config.hardware.nodes if config.hardware else 1}) needs a "
                "Kubernetes cluster to submit the TrainJob to; this orchestrator has none"
            )
        assert dispatch.job_name is not None and dispatch.job_uri is not None
        if dispatch.checkpoint_uri is None:
            raise ValueError("training on several nodes needs shared checkpoint storage")
        return train_on_nodes(
            config,
            train_datasets,
            eval_datasets,
            cluster=site.cluster(config),
            name=dispatch.job_name,
            job_uri=dispatch.job_uri,
            checkpoint_uri=dispatch.checkpoint_uri,
            run=site.run,
            series=dispatch.series,
            hub_token=pipeline_plan(config)[Stage.TRAIN].hub_token,
            log=site.log,
        )
    if dispatch.mode is TrainingMode.TORCHRUN:
        # The ranks are other processes: this one's callbacks stay here, unused, and the
        # caller logs the summary's history instead.
        return train_with_torchrun(
            config,
            train_datasets,
            eval_datasets,
            nproc_per_node=dispatch.processes_per_node,
            checkpoint_uri=dispatch.checkpoint_uri,
            filesystem=dispatch.filesystem,
            run=site.run,
            series=dispatch.series,
        )
    return train_in_process(
        config,
        train_datasets,
        eval_datasets,
        checkpoint_uri=dispatch.checkpoint_uri,
        filesystem=dispatch.filesystem,
        run=site.run,
        callbacks=site.callbacks,
        series=dispatch.series,
    )
