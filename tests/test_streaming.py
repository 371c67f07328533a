"""Streamed training data (`source.streaming: true`): a local file read as an
IterableDataset while training, its resume continuing at the exact stream position, and
the features that need every row refused up front, each naming its key."""

from __future__ import annotations

import re
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from datasets import IterableDataset
from transformers import TrainerCallback

from tests.conftest import tiny_run_config, write_jsonl
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


class _Interrupt(TrainerCallback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.at:
            signal.raise_signal(signal.SIGTERM)


@pytest.mark.slow
def test_resume_continues_at_the_exact_stream_position(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """Interrupted after 3 of 8 steps and resumed in a fresh folder, the run trains on the
    same rows in the same order as an uninterrupted one: identical final weights. (Had the
    resumed run restarted the stream, it would see rows 0..11 twice and end elsewhere.)"""
    from trainer.training.checkpoints import TrainingInterrupted
    from trainer.training.run import train_in_process

    data = write_jsonl(tmp_path / "big.jsonl", _rows(40))

    def run(uri: Path, work: str, callbacks: list[TrainerCallback]) -> Any:
        config = _config(data, tiny_model_path, training={"max_steps": 8},
                         checkpoints={"uri": str(uri), "every_n_steps": 2})  # fmt: skip
        train, held_out = load_datasets(config)
        return train_in_process(
            config, train, held_out, checkpoint_uri=str(uri), callbacks=callbacks,
            work_dir=tmp_path / work,
        )  # fmt: skip

    straight = run(tmp_path / "straight", "pod-0", [])
    with pytest.raises(TrainingInterrupted):
        run(tmp_path / "series", "pod-1", [_Interrupt(at=3)])
    shutil.rmtree(tmp_path / "pod-1")
    resumed = run(tmp_path / "series", "pod-2", [])

    assert resumed.summary.resume.resumed and 3 <= (resumed.summary.resume.from_step or 0) < 8
    assert straight.summary.global_step == resumed.summary.global_step == 8
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
