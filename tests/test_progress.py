"""Progress lines: steady interval, rate from the global batch, ETA, no carriage returns."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import pairs_dataset, tiny_run_config
from trainer.config import RunConfig
from trainer.data import load_datasets
from trainer.logs import ProgressLogger, format_duration, progress
from trainer.training import train
from trainer.training.callbacks import TrainingProgressCallback


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_logs_at_a_steady_interval_with_rate_and_eta() -> None:
    clock, lines = FakeClock(), []
    tracker = ProgressLogger(
        40, "step", every_s=10, items_per_unit=32, item_name="pairs", log=lines.append, clock=clock
    )
    tracker.start()
    for step in range(1, 41):
        clock.now += 1.0  # one step per second
        tracker.update(step, {"loss": "0.84"})
    tracker.finish()

    assert lines[0] == "step 0/40: started"
    assert lines[1] == "step 10/40 (25%) | 32.0 pairs/s | loss 0.84 | ETA 30s"
    assert lines[2] == "step 20/40 (50%) | 32.0 pairs/s | loss 0.84 | ETA 20s"
    assert len(lines) == 6  # start, steps 10/20/30/40, finish
    assert lines[-1] == "step 40/40: done | in 40s | 32.0 pairs/s"


def test_rate_and_eta_count_from_a_resumed_step() -> None:
    clock, lines = FakeClock(), []
    tracker = ProgressLogger(100, "step", every_s=0, log=lines.append, clock=clock)
    tracker.start(done=50)
    clock.now += 10
    tracker.update(60)
    assert lines[-1] == "step 60/100 (60%) | 1.0 step/s | ETA 40s"


def test_progress_wraps_any_loop() -> None:
    clock, lines = FakeClock(), []

    def chunks():  # type: ignore[no-untyped-def]
        for chunk in progress(["a", "b", "c"], "chunk", every_s=5, log=lines.append, clock=clock):
            clock.now += 3
            yield chunk

    assert list(chunks()) == ["a", "b", "c"]
    assert lines == [
        "chunk 0/3: started",
        "chunk 2/3 (67%) | 0.3 chunk/s | ETA 3s",
        "chunk 3/3: done | in 9s | 0.3 chunk/s",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"), [(9.4, "9s"), (160, "2m 40s"), (3600 * 2 + 180, "2h 03m"), (-1, "0s")]
)
def test_durations_read_like_a_person_would_write_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.slow
def test_training_logs_plain_progress_lines(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {
                "docs": pairs_dataset(pairs_file)
            },
            training={"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
                      "logging_steps": 1},
        )
    )  # fmt: skip
    train_data, _ = load_datasets(config)
    with caplog.at_level(logging.INFO, logger="trainer.training.progress_log"):
        train(
            config,
            train_data,
            output_dir=tmp_path / "ckpt",
            callbacks=[TrainingProgressCallback(every_s=0)],
        )
    lines = [
        record.getMessage()
        for record in caplog.records
        if record.name == "trainer.training.progress_log"
    ]
    # 60 rows / (4 x 2 accumulation) = 8 optimizer steps (the last one partial).
    assert lines[0] == (
        "step 0/8: started | 1 epoch(s), global batch 8 (4 x 1 process(es) x 2 accumulation)"
    )
    assert lines[1].startswith("step 1/8 (12%) | ")
    assert " pairs/s | epoch 0." in lines[1]
    assert "| loss " in lines[2] and "| lr " in lines[2] and "| ETA " in lines[2]
    assert lines[-1].startswith("step 8/8: done | in ")
    assert not any("\r" in line for line in lines)
