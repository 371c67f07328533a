"""Streamed training data (`source.streaming: true`): a local file read as an
IterableDataset while training, its resume continuing at the exact stream position, and
the features that need every row refused up front, each naming its key."""

from __future__ import annotations

import json
import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import IterableDataset
from sentence_transformers import SentenceTransformer
from transformers import TrainerCallback

from tests.conftest import tiny_run_config, write_jsonl
from tests.interrupts import SigtermAt
from trainer.config import RunConfig
from trainer.data import check_data, load_datasets


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {"q": f"question {i} about topic {i % 7}", "d": f"answer {i} on {i % 5}"} for i in range(n)
    ]


def _config(
    data: Path, tiny_model_path: Path, *, training: dict | None = None, **extra: Any
) -> RunConfig:
    dataset = {
        "source": {"path": str(data), "streaming": True},
        "columns": {"q": "anchor", "d": "positive"},
        **extra.pop("dataset", {}),
    }
    return RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": dataset, **extra.pop("datasets", {})},
            training={"per_device_train_batch_size": 4, "max_steps": 6, "learning_rate": 1e-3,
                      **(training or {})},
            **extra,
        )
    )  # fmt: skip


def test_a_streamed_file_loads_as_an_iterable_dataset(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "big.jsonl", _rows(30))
    config = _config(data, tiny_model_path, dataset={"max_samples": 10})
    train, held_out = load_datasets(config)
    stream = train["docs"]
    assert isinstance(stream, IterableDataset)
    assert stream.column_names == ["anchor", "positive"]
    rows = list(stream)
    assert len(rows) == 10 and rows[3] == {
        "anchor": _rows(30)[3]["q"],
        "positive": _rows(30)[3]["d"],
    }
    assert len(held_out) == 0


def test_a_stream_with_a_wrong_column_fails_on_its_first_rows(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "big.jsonl", [{"q": "a", "d": 3} for _ in range(5)])
    (problem,) = check_data(_config(data, tiny_model_path)).problems
    assert str(problem) == (
        "datasets.docs.source: dataset 'docs': column 'positive' must hold strings for "
        "MultipleNegativesRankingLoss, got int64 (checked on the first 5 rows of the stream)"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"training": {"max_steps": -1}},
            "training.max_steps: dataset(s) docs stream (source.streaming: true) and have no "
            "length, so epochs cannot be counted: set training.max_steps",
        ),
        (
            {"dataset": {"eval_size": 0.2}},
            "datasets.docs.eval_size: carving a held-out split (eval_size) draws from every "
            "row: give eval_source (a held-out file of its own) instead (source.streaming: true)",
        ),
        (
            {"dataset": {"hard_negatives": {"num_negatives": 1}}},
            "datasets.docs.hard_negatives: hard-negative mining (hard_negatives) encodes every "
            "document of the dataset: mine beforehand and stream the mined rows",
        ),
        (
            {"dataset": {"eval_source": {"path": "HELD_OUT"}}},
            "leakage.on_query_overlap: the leakage check compares held-out queries with every "
            "training anchor, and dataset 'docs' streams (source.streaming: true): set "
            "leakage.on_query_overlap: warn",
        ),
        (
            {"hardware": {"nodes": 2, "gpu_count": 0, "tolerations": [], "shm_size": None}},
            "datasets.docs.source.path: dataset 'docs' streams (source.streaming: true), so "
            "each of the hardware.nodes (2) nodes reads it from its source, but",
        ),
        (
            {
                "training": {"accelerator_config": {"dispatch_batches": True}},
                "distributed": {"nproc_per_node": 2},
            },
            "training.accelerator_config.dispatch_batches: dataset(s) docs stream "
            "(source.streaming: true) and several processes train: rank 0 would concatenate "
            "batches padded to different lengths and fail; remove it",
        ),
        (
            {"datasets": {"more": {"source": {"path": "OTHER"}}}},
            "datasets.docs.source.streaming: several training datasets need the multi-dataset "
            "batch sampler, which needs each dataset's length",
        ),
    ],
)
def test_what_needs_every_row_is_refused_naming_the_key(
    extra: dict, message: str, tiny_model_path: Path, tmp_path: Path
) -> None:
    from trainer.preflight import preflight

    data = write_jsonl(tmp_path / "big.jsonl", _rows(12))
    held = write_jsonl(tmp_path / "held.jsonl", [{"q": "held q", "d": "held d"}] * 2)
    for key in ("dataset", "datasets"):
        for value in extra.get(key, {}).values():
            if isinstance(value, dict):
                for inner in (value, value.get("source", {})):
                    if inner.get("path") == "HELD_OUT":
                        inner["path"] = str(held)
                    if inner.get("path") == "OTHER":
                        inner["path"] = str(data)
                        value["columns"] = {"q": "anchor", "d": "positive"}
    config = _config(data, tiny_model_path, **extra)
    problems = [str(p) for p in preflight(config).problems]
    assert any(p.startswith(message) for p in problems), problems
    with pytest.raises(ValueError, match=re.escape(message[:40])):
        load_datasets(config)


def test_nodes_stream_a_hub_dataset_or_a_file_on_the_shared_volume(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """Each node reads the stream from its source: fine when every node reaches it."""
    from trainer.data.streaming import streaming_problems

    data = write_jsonl(tmp_path / "shared" / "big.jsonl", _rows(12))
    nodes = {"nodes": 2, "gpu_count": 0, "tolerations": [], "shm_size": None}
    volume = {"claim_name": "shared", "mount_path": str(tmp_path / "shared")}
    on_volume = _config(
        data, tiny_model_path, hardware=nodes, distributed={"shared_volume": volume}
    )
    assert streaming_problems(on_volume) == []
    hub = _config(data, tiny_model_path, hardware=nodes)
    datasets = {"docs": hub.datasets["docs"].model_copy(update={"source": hub.datasets[
        "docs"].source.model_copy(update={"path": "someone/big-corpus"})})}  # fmt: skip
    assert streaming_problems(hub.model_copy(update={"datasets": datasets})) == []


def test_a_stream_of_several_files_is_read_as_one_shard_in_file_order(tmp_path: Path) -> None:
    """accelerate splits a stream of as many shards as processes by file; read as one
    shard it splits it batch by batch, the order one process reads."""
    from datasets import load_dataset

    from trainer.data.streaming import read_as_one_shard

    rows = _rows(12)
    files = [
        str(write_jsonl(tmp_path / f"part{i}.jsonl", rows[i * 4 : i * 4 + 4])) for i in range(3)
    ]
    stream = load_dataset("json", data_files=files, split="train", streaming=True)
    assert stream.n_shards == 3
    one = read_as_one_shard(stream)
    assert one.n_shards == 1 and one.features == stream.features
    assert list(one) == rows
    single = load_dataset("json", data_files=files[:1], split="train", streaming=True)
    assert read_as_one_shard(single) is single


def test_a_stream_is_not_dispatched_from_rank_zero(tiny_model_path: Path, tmp_path: Path) -> None:
    """Each process reads its own slice of every global batch (see trainer.data.streaming);
    an accelerator_config of the user's keeps its other keys."""
    from trainer.training import effective_training_arguments

    data = write_jsonl(tmp_path / "big.jsonl", _rows(12))
    arguments = effective_training_arguments(_config(data, tiny_model_path))
    assert arguments["accelerator_config"] == {"dispatch_batches": False}
    kept = effective_training_arguments(
        _config(data, tiny_model_path, training={"accelerator_config": {"even_batches": False}})
    )
    assert kept["accelerator_config"] == {"dispatch_batches": False, "even_batches": False}
    from_file = _config(data, tiny_model_path, training={"accelerator_config": "acc.json"})
    assert effective_training_arguments(from_file)["accelerator_config"] == "acc.json"


def test_leakage_warn_lets_a_stream_train_with_its_held_out_file(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "big.jsonl", _rows(12))
    held = write_jsonl(
        tmp_path / "held.jsonl", [{"q": f"held q{i}", "d": f"held d{i}"} for i in range(3)]
    )
    config = _config(
        data, tiny_model_path, dataset={"eval_source": {"path": str(held)}},
        leakage={"on_query_overlap": "warn"},
    )  # fmt: skip
    assert check_data(config).problems == []
    _, held_out = load_datasets(config)
    assert len(held_out["docs"]) == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rows", "max_steps", "every", "stop_at", "accumulation"),
    [
        (40, 8, 2, 3, 1),  # within the first pass (8 steps x 4 rows < 40 rows)
        (14, 7, 1, 5, 1),  # in the second pass (4 batches per pass: 3 of 4, 1 short)
        (14, 7, 1, 4, 2),  # ... with two batches per step
    ],
)
def test_resume_continues_at_the_exact_stream_position(
    rows: int,
    max_steps: int,
    every: int,
    stop_at: int,
    accumulation: int,
    tiny_model_path: Path,
    tmp_path: Path,
) -> None:
    """Interrupted and resumed in a fresh folder, the run trains on the same rows in the
    same order as an uninterrupted one: identical final weights. (Had the resumed run
    restarted the stream, it would see its first rows twice and end elsewhere; a run in
    its second pass, resumed as transformers counts a stream's pass, would skip past the
    end of that pass and go on from the start of the next.)"""
    from trainer.training.checkpoints import TrainingInterrupted
    from trainer.training.run import train_in_process

    data = write_jsonl(tmp_path / "big.jsonl", _rows(rows))

    def run(uri: Path, work: str, callbacks: list[TrainerCallback]) -> Any:
        training = {"max_steps": max_steps, "gradient_accumulation_steps": accumulation}
        config = _config(data, tiny_model_path, training=training,
                         checkpoints={"uri": str(uri), "every_n_steps": every})  # fmt: skip
        train, held_out = load_datasets(config)
        return train_in_process(
            config, train, held_out, checkpoint_uri=str(uri), callbacks=callbacks,
            work_dir=tmp_path / work,
        )  # fmt: skip

    straight = run(tmp_path / "straight", "pod-0", [])
    with pytest.raises(TrainingInterrupted):
        run(tmp_path / "series", "pod-1", [SigtermAt(at=stop_at)])
    shutil.rmtree(tmp_path / "pod-1")
    resumed = run(tmp_path / "series", "pod-2", [])

    assert resumed.summary.resume.resumed
    assert stop_at <= (resumed.summary.resume.from_step or 0) < max_steps
    assert straight.summary.global_step == resumed.summary.global_step == max_steps
    final, expected = resumed.model.state_dict(), straight.model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in expected.items())


def test_the_pipeline_stages_pass_a_stand_in_and_train_on_the_stream(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """The load stage hands on the stream's first rows (an artifact must be stored); the
    train stage opens the stream again and trains on it (the fast path says so)."""
    from datasets import Dataset

    from tests.conftest import train_at
    from trainer.stages.load import load_stage

    data = write_jsonl(tmp_path / "big.jsonl", _rows(20))
    config = _config(data, tiny_model_path, training={"max_steps": 2})
    train, held_out, report = load_stage(config)
    assert isinstance(train["docs"], Dataset) and len(train["docs"]) == 20
    assert "dataset 'docs' streams" in report.datasets["docs"].warnings[0]
    trained = train_at(config, train, held_out, checkpoint_uri=str(tmp_path / "series"))
    assert trained.summary.global_step == 2
    assert trained.summary.speed is not None
    fast = trained.summary.speed.levers["tokenize_once"]
    assert not fast.active and fast.detail == "a streamed dataset is tokenized as it is read"


# --- several processes: torchrun on CPU (gloo), as tests/test_distributed.py ------------


def _varied_rows(n: int) -> list[dict[str, str]]:
    """Rows of different lengths: batches are padded to different widths (which rank 0
    dispatching batches, accelerate's default for a stream, cannot concatenate)."""
    return [
        {"q": f"question {i} " + "about " * (i % 9), "d": f"answer {i} on {i % 5}"}
        for i in range(n)
    ]


def _largest_difference(a: SentenceTransformer, b: SentenceTransformer) -> float:
    """The largest difference between two models' weights. Adam's step (learning rate
    1e-3 here) turns float rounding in gradients near zero into differences up to ~1e-5;
    training on other rows, or on some rows twice, moves weights by ~1e-3."""
    first, second = a.state_dict(), b.state_dict()
    return max((first[k].float() - second[k].float()).abs().max().item() for k in first)


@pytest.fixture(scope="module")
def stream_ddp(still_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One process with batch 8; two ranks with 4 each (global 8), straight; and two
    ranks stopped by SIGTERM after their first checkpoint, then run again (resumed)."""
    import os
    import subprocess
    import sys
    import time

    from tests.conftest import REPO_ROOT, train_at
    from trainer.stages import load_stage
    from trainer.training import CheckpointStore

    folder = tmp_path_factory.mktemp("stream-ddp")
    data = write_jsonl(folder / "big.jsonl", _varied_rows(60))

    def config(nproc: int) -> RunConfig:
        return _config(data, still_model_path,
                       training={"per_device_train_batch_size": 8 // nproc, "max_steps": 6},
                       distributed={"nproc_per_node": nproc}, checkpoints={"every_n_steps": 2})  # fmt: skip

    def train(nproc: int, uri: Path) -> Any:
        train_datasets, _, _ = load_stage(config(nproc))
        return train_at(config(nproc), train_datasets, checkpoint_uri=str(uri))

    runs = {"one": train(1, folder / "one"), "straight": train(2, folder / "straight")}
    uri = folder / "series"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "tests" / "pacing"), str(REPO_ROOT)]),
        "ST_FINETUNE_TEST_STEP_SECONDS": "0.5",
    }
    probe = "from tests.test_distributed import child_train as c; import sys, json; c(**json.loads(sys.argv[1]))"
    arguments = json.dumps({"config": config(2).model_dump_json(), "checkpoint_uri": str(uri)})
    child = subprocess.Popen(
        [sys.executable, "-c", probe, arguments], cwd=REPO_ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not CheckpointStore(str(uri)).complete():
        assert child.poll() is None, child.stdout.read() if child.stdout else ""
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=180)
    assert child.returncode != 0, output
    stopped = re.search(r"training stopped by SIGTERM at global step (\d+) of 6", output)
    assert stopped, output
    runs["resumed"] = train(2, uri)
    runs["stopped_at"] = int(stopped.group(1))
    return runs


@pytest.mark.slow
def test_two_ranks_train_on_a_stream_as_one_process_with_the_global_batch(
    stream_ddp: dict[str, Any], still_model_path: Path
) -> None:
    """Global batch k is stream rows 8k..8k+7 under both: rank r takes rows 8k+4r..8k+4r+3,
    and with negatives gathered across ranks the loss is the one-process loss, so the
    weights agree up to float rounding. (Rank 0 dispatching would have failed on batches
    of different widths; ranks reading other rows would end elsewhere.)"""
    one, straight = stream_ddp["one"], stream_ddp["straight"]
    assert straight.summary.world_size == 2 and straight.summary.global_batch_size == 8
    assert straight.summary.gather_across_devices
    assert one.summary.global_step == straight.summary.global_step == 6
    assert _largest_difference(one.model, straight.model) < 1e-4
    # ... far apart compared with how far training moved them.
    start = SentenceTransformer(str(still_model_path), device="cpu")
    assert _largest_difference(start, one.model) > 1e-3


@pytest.mark.slow
def test_two_ranks_resume_a_stream_at_the_exact_position(stream_ddp: dict[str, Any]) -> None:
    """Stopped after its first checkpoint and rerun, the two ranks skip the global batches
    already trained and end with the uninterrupted run's weights, bit for bit."""
    resumed, straight = stream_ddp["resumed"], stream_ddp["straight"]
    assert resumed.summary.resume.resumed
    assert resumed.summary.resume.from_step == stream_ddp["stopped_at"] < 6
    assert resumed.summary.global_step == 6
    assert _largest_difference(straight.model, resumed.model) == 0.0
