"""The durable checkpoint store: atomic publish, verification, pruning, finished series.

Runs against a local folder and against fsspec's in-memory filesystem (`memory://`),
which stands in for object stores such as `s3://` and `gs://`: same code path, no network.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from trainer.training import MANIFEST_NAME, CheckpointStore, fsspec_can_open, open_checkpoint


def trainer_checkpoint(root: Path, step: int) -> Path:
    """A folder shaped like what the HF Trainer writes for `step`."""
    folder = root / f"checkpoint-{step}"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"w" * (100 + step))
    (folder / "optimizer.pt").write_bytes(b"o" * 64)
    (folder / "1_Pooling" / "config.json").write_text("{}")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckpointStore]:
    if request.param == "local":
        yield CheckpointStore(str(tmp_path / "series"))
        return
    memory = fsspec.filesystem("memory")
    yield CheckpointStore(f"memory://{tmp_path.name}/series")
    if memory.exists(f"/{tmp_path.name}"):
        memory.rm(f"/{tmp_path.name}", recursive=True)


def test_publish_then_fetch_round_trips(store: CheckpointStore, tmp_path: Path) -> None:
    local = trainer_checkpoint(tmp_path / "staging", 4)
    published = store.publish(local, 4, run="ZenML run first")

    (newest,) = store.complete()
    assert newest == published == store.newest()
    assert (newest.step, newest.run) == (4, "ZenML run first")
    assert newest.uri.endswith("/series/checkpoint-4")
    fetched = store.fetch(newest, tmp_path / "resume")
    assert fetched == tmp_path / "resume" / "checkpoint-4"
    copied = {
        p.relative_to(fetched).as_posix(): p.read_bytes() for p in fetched.rglob("*") if p.is_file()
    }
    original = {
        p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()
    }
    assert copied == original  # the manifest is ours, not the Trainer's: not copied back


def test_a_checkpoint_without_manifest_is_never_used(
    store: CheckpointStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.publish(trainer_checkpoint(tmp_path / "a", 2), 2)
    store.publish(trainer_checkpoint(tmp_path / "b", 4), 4)
    store.fs.rm(f"{store.root}/checkpoint-4/{MANIFEST_NAME}")  # killed before the manifest

    with caplog.at_level(logging.INFO, logger="trainer.training.checkpoints"):
        assert store.newest().step == 2
    assert f"checkpoint-4 has no {MANIFEST_NAME}: an interrupted save, ignored" in caplog.text


def test_a_truncated_file_makes_the_checkpoint_unusable(
    store: CheckpointStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.publish(trainer_checkpoint(tmp_path / "a", 2), 2)
    store.publish(trainer_checkpoint(tmp_path / "b", 4), 4)
    store.fs.pipe_file(f"{store.root}/checkpoint-4/model.safetensors", b"w" * 10)

    assert [c.step for c in store.complete()] == [2]
    assert "checkpoint-4 is damaged (model.safetensors: 10 bytes, manifest says 104)" in (
        caplog.text
    )


def test_prune_keeps_the_newest_and_drops_stale_partial_folders(
    store: CheckpointStore, tmp_path: Path
) -> None:
    for step in (2, 4, 6):
        store.publish(trainer_checkpoint(tmp_path / str(step), step), step)
    store.fs.makedirs(f"{store.root}/checkpoint-3", exist_ok=True)  # an old partial save
    store.fs.makedirs(f"{store.root}/checkpoint-8", exist_ok=True)  # being written right now

    assert store.prune(keep=2) == [2, 3]
    assert [c.step for c in store.complete()] == [4, 6]
    assert store.fs.exists(f"{store.root}/checkpoint-8")


def test_republishing_a_step_replaces_a_partial_upload(
    store: CheckpointStore, tmp_path: Path
) -> None:
    store.claim()  # our series, as training claims it before its first save
    store.fs.makedirs(f"{store.root}/checkpoint-4", exist_ok=True)
    store.fs.pipe_file(f"{store.root}/checkpoint-4/stale.bin", b"x")

    store.publish(trainer_checkpoint(tmp_path, 4), 4)

    assert not store.fs.exists(f"{store.root}/checkpoint-4/stale.bin")
    assert store.newest().step == 4


def test_a_finished_series_keeps_only_its_marker(store: CheckpointStore, tmp_path: Path) -> None:
    store.publish(trainer_checkpoint(tmp_path, 4), 4)

    marker = store.mark_finished(8, run="ZenML run done")

    assert store.finished() == marker
    assert (marker.step, marker.run) == (8, "ZenML run done")
    assert store.complete() == []
    store.reset()
    assert store.finished() is None


def test_reset_can_keep_the_checkpoints_up_to_a_resume_point(
    store: CheckpointStore, tmp_path: Path
) -> None:
    for step in (2, 4, 6):
        store.publish(trainer_checkpoint(tmp_path / str(step), step), step)
    store.reset(keep_up_to=4)
    assert [c.step for c in store.complete()] == [2, 4]


def test_publish_refuses_a_folder_that_is_not_a_trainer_checkpoint(
    store: CheckpointStore, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        FileNotFoundError, match=r"is not a Trainer checkpoint: no trainer_state\.json"
    ):
        store.publish(tmp_path / "empty", 1)


def test_open_checkpoint_accepts_ours_and_plain_trainer_folders(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path / "series"))
    store.publish(trainer_checkpoint(tmp_path / "staging", 6), 6, run="ZenML run x")
    source, ours = open_checkpoint(str(tmp_path / "series" / "checkpoint-6"))
    assert (ours.step, ours.run) == (6, "ZenML run x")
    assert source.root == str(tmp_path / "series")

    plain = trainer_checkpoint(tmp_path / "elsewhere", 3)
    _, theirs = open_checkpoint(str(plain))
    assert (theirs.step, theirs.run) == (3, None)


@pytest.mark.parametrize("name", ["model", "checkpoint-x", "checkpoint-5"])
def test_open_checkpoint_names_what_it_expected(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    with pytest.raises(
        FileNotFoundError,
        match=r"is not a checkpoint folder \(expected checkpoint-<step>/ holding trainer_state.json\)",
    ):
        open_checkpoint(str(tmp_path / name))


def test_open_checkpoint_refuses_a_damaged_one(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path / "series"))
    store.publish(trainer_checkpoint(tmp_path / "staging", 2), 2)
    (tmp_path / "series" / "checkpoint-2" / "optimizer.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="checkpoint-2' is incomplete or damaged"):
        open_checkpoint(str(tmp_path / "series" / "checkpoint-2"))


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/mnt/checkpoints", True),
        ("s3://bucket/prefix", True),
        ("gs://bucket/prefix", True),
        ("memory://x", True),
        ("minio://mlpipeline/v2/artifacts", False),
    ],
)
def test_which_pipeline_roots_fsspec_can_write(uri: str, expected: bool) -> None:
    assert fsspec_can_open(uri) is expected
