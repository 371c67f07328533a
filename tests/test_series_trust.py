"""The checkpoint store owns only what it made, one series per training, one run per series.

- A location holding another Trainer's checkpoints is refused (and survives intact);
  its checkpoint can still be named read-only as a starting point.
- A series records the digest of its training and the keys behind it: a different
  training is refused on an unfinished series, naming the keys that differ.
- A lease per series: a live holder is named; a dead or silent one is taken over.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from tests.conftest import pairs_dataset, tiny_run_config, train_at
from trainer.config import RunConfig
from trainer.stages import load_stage
from trainer.training import (
    CheckpointStore,
    ForeignLocation,
    LeaseHeld,
    LeaseLost,
    SeriesLease,
    SeriesMismatch,
    series_identity,
)


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def their_checkpoints(folder: Path) -> Path:
    """What another Trainer left: checkpoint-500/ and checkpoint-1000/, no manifests."""
    for step in (500, 1000):
        checkpoint = folder / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (checkpoint / "model.safetensors").write_bytes(os.urandom(64))
    return folder


def small_config(tiny_model_path: Path, pairs_file: Path, **training: object) -> RunConfig:
    document = tiny_run_config(
        tiny_model_path,
        {"docs": pairs_dataset(pairs_file)},
        checkpoints={"every_n_steps": 2, "keep": 8},
    )
    document["training"].update(training)
    return RunConfig.model_validate(document)


# --- ownership ---------------------------------------------------------------------------


def test_another_trainers_checkpoints_are_refused_and_survive(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    foreign = their_checkpoints(tmp_path / "their-run")
    before = tree_digest(foreign)
    config = small_config(tiny_model_path, pairs_file)
    train_datasets, _, _ = load_stage(config)

    with pytest.raises(ForeignLocation) as refused:
        train_at(config, train_datasets, checkpoint_uri=str(foreign))

    assert (
        f"checkpoint location {foreign} holds files this run did not write "
        "(checkpoint-1000, checkpoint-500) and no SERIES.json"
    ) in str(refused.value)
    assert f"checkpoints.resume: {foreign}/checkpoint-<step>" in str(refused.value)
    assert tree_digest(foreign) == before  # nothing deleted, nothing added (not even a lease)


@pytest.mark.parametrize("operation", ["prune", "reset", "begin", "mark_finished"])
def test_the_store_never_writes_or_deletes_in_a_foreign_folder(
    tmp_path: Path, operation: str
) -> None:
    foreign = their_checkpoints(tmp_path / "their-run")
    before = tree_digest(foreign)
    store = CheckpointStore(str(foreign))
    calls = {
        "prune": lambda: store.prune(keep=1),
        "reset": store.reset,
        "begin": lambda: store.begin(1500),
        "mark_finished": lambda: store.mark_finished(1500),
    }
    with pytest.raises(ForeignLocation, match=r"their-run holds files this run did not write"):
        calls[operation]()
    assert tree_digest(foreign) == before


def test_a_foreign_trainer_checkpoint_is_adopted_read_only(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """`checkpoints.resume: <their checkpoint>` with the series elsewhere: training starts
    from its step and the folder is left as it was."""
    from trainer.training import train

    config = small_config(tiny_model_path, pairs_file, max_steps=4)
    train_datasets, _, _ = load_stage(config)
    theirs = tmp_path / "their-run"
    train(config, train_datasets, output_dir=theirs)  # a plain Trainer run: checkpoint-4/
    assert (theirs / "checkpoint-4" / "trainer_state.json").is_file()
    before = tree_digest(theirs)

    adopted = config.model_copy(
        update={
            "training": {**config.training, "max_steps": 6},
            "checkpoints": config.checkpoints.model_copy(
                update={"resume": str(theirs / "checkpoint-4")}
            ),
        }
    )
    trained = train_at(adopted, train_datasets, checkpoint_uri=str(tmp_path / "ours"))

    assert trained.summary.resume.resumed and trained.summary.resume.from_step == 4
    assert trained.summary.global_step == 6
    assert tree_digest(theirs) == before
    assert CheckpointStore(str(tmp_path / "ours")).series() is not None


# --- one series per training ---------------------------------------------------------------


def interrupted_series(config: RunConfig, uri: Path, tmp_path: Path) -> CheckpointStore:
    """A series of `config` whose training stopped after its checkpoint at step 2."""
    train_datasets, _, _ = load_stage(config)
    store = CheckpointStore(str(uri))
    store.claim(series_identity(config, train_datasets), run="ZenML run first")
    staging = tmp_path / "staging" / "checkpoint-2"
    staging.mkdir(parents=True)
    (staging / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    store.publish(staging, 2, run="ZenML run first")
    return store


def test_a_different_training_is_refused_on_an_unfinished_series(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    first = small_config(tiny_model_path, pairs_file, learning_rate=5e-5)
    store = interrupted_series(first, tmp_path / "series", tmp_path)
    second = small_config(tiny_model_path, pairs_file, learning_rate=1e-3)
    train_datasets, _, _ = load_stage(second)

    with pytest.raises(SeriesMismatch) as refused:
        train_at(second, train_datasets, checkpoint_uri=store.uri)

    message = str(refused.value)
    assert f"the checkpoint series at {store.uri} belongs to a different training" in message
    assert "It differs in training.learning_rate: 5e-05 -> 0.001." in message
    assert "checkpoints.resume: never" in message
    assert [c.step for c in store.complete()] == [2]  # the other training's checkpoint stays


def test_resume_never_discards_a_different_trainings_series(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    first = small_config(tiny_model_path, pairs_file, learning_rate=5e-5, max_steps=2)
    store = interrupted_series(first, tmp_path / "series", tmp_path)
    second = small_config(tiny_model_path, pairs_file, learning_rate=1e-3, max_steps=2)
    never = second.model_copy(
        update={"checkpoints": second.checkpoints.model_copy(update={"resume": "never"})}
    )
    train_datasets, _, _ = load_stage(never)

    trained = train_at(never, train_datasets, checkpoint_uri=store.uri)

    assert not trained.summary.resume.resumed
    assert store.series().digest == series_identity(never, train_datasets).digest


# --- a lease per series -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def lease(store: CheckpointStore, holder: str, clock: Clock, **kwargs: object) -> SeriesLease:
    return SeriesLease(store, holder=holder, timeout_s=60, heartbeat_s=10, clock=clock, **kwargs)


@pytest.fixture(params=["local", "memory"])
def series_store(request: pytest.FixtureRequest, tmp_path: Path) -> CheckpointStore:
    if request.param == "local":
        return CheckpointStore(str(tmp_path / "series"))
    return CheckpointStore(f"memory://{tmp_path.name}/series")


def test_a_live_lease_is_refused_naming_its_holder(series_store: CheckpointStore) -> None:
    clock = Clock()
    lease(series_store, "ZenML run first", clock).acquire()
    clock.now += 59  # within the timeout
    with pytest.raises(LeaseHeld) as held:
        lease(series_store, "ZenML run second", clock).acquire()
    assert "is being trained by ZenML run first (host " in str(held.value)
    assert "last heartbeat 59 s ago" in str(held.value)


def test_a_silent_lease_expires_and_the_old_holder_stops(series_store: CheckpointStore) -> None:
    clock = Clock()
    first = lease(series_store, "ZenML run first", clock)
    first.acquire()
    clock.now += 61  # no heartbeat for longer than the timeout
    second = lease(series_store, "ZenML run second", clock)
    assert second.acquire().generation == 2

    with pytest.raises(LeaseLost, match=r"was taken over by ZenML run second"):
        first.check()
    second.check()


def test_heartbeats_keep_a_lease_and_a_released_one_is_free(
    series_store: CheckpointStore,
) -> None:
    clock = Clock()
    first = lease(series_store, "ZenML run first", clock)
    first.acquire()
    for _ in range(5):
        clock.now += 30
        first.heartbeat()
    with pytest.raises(LeaseHeld):
        lease(series_store, "ZenML run second", clock).acquire()
    first.release()
    assert lease(series_store, "ZenML run second", clock).acquire().generation == 2


def test_a_lease_of_a_process_gone_from_this_host_is_taken_over(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path / "series"))
    clock = Clock()
    lease(store, "ZenML run first", clock).acquire()
    path = next((tmp_path / "series").glob("LEASE-*.json"))
    record = json.loads(path.read_text())
    gone = 2**22 + 17  # above any pid this test machine hands out
    path.write_text(json.dumps({**record, "pid": gone, "host": socket.gethostname()}))
    assert lease(store, "ZenML run second", clock).acquire().generation == 2


def test_a_retry_of_the_same_run_takes_its_lease_over(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path / "series"))
    clock = Clock()
    lease(store, "ZenML run r", clock, run_id="run-1").acquire()
    path = next((tmp_path / "series").glob("LEASE-*.json"))
    path.write_text(json.dumps({**json.loads(path.read_text()), "host": "other-pod"}))
    with pytest.raises(LeaseHeld):
        lease(store, "ZenML run s", clock, run_id="run-2").acquire()
    assert lease(store, "ZenML run r", clock, run_id="run-1").acquire().generation == 2


def test_of_runs_racing_for_one_lease_exactly_one_wins(tmp_path: Path) -> None:
    store = CheckpointStore(str(tmp_path / "series"))
    clock = Clock()
    start = threading.Barrier(8)
    won: list[str] = []
    refused: list[str] = []

    def contend(name: str) -> None:
        start.wait()
        try:
            lease(store, name, clock).acquire()
            won.append(name)
        except LeaseHeld as held:
            refused.append(str(held))

    threads = [threading.Thread(target=contend, args=(f"run {i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and len(refused) == 7
    assert all(f"is being trained by {won[0]} " in message for message in refused)
