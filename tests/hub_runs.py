"""Work the Hub dataset tests run in a child process pointed at the fake Hub
(tests/hub_process.py): the project's own stages on a config file as a user writes it.
Nothing here imports tests/conftest.py, which turns the Hub off. Each function returns
plain JSON for the test to assert on."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from tests.interrupts import SigtermAt


def read_rows(reads: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Every row of each Hub dataset split asked for (`load_dataset`'s keyword arguments:
    path, name, split, streaming, revision), read by `datasets` as a user would."""
    from datasets import load_dataset

    return [[dict(row) for row in load_dataset(**read)] for read in reads]


def preflight_reports(config_files: list[str], offline: bool) -> list[dict[str, list[str]]]:
    """The preflight of each config file (`offline` as `--offline` asks, the Hub in reach
    or not): its problems, checks and skips."""
    from trainer.preflight import preflight

    reports = [preflight(path, offline=offline) for path in config_files]
    return [
        {
            "problems": [str(problem) for problem in report.problems],
            "checked": report.checked,
            "skipped": report.skipped,
        }
        for report in reports
    ]


def _site() -> Any:
    from trainer.stages import TrainingSite

    return TrainingSite(storage_root=None, pipeline="tests")


def run_stages(config_file: str, checkpoint_uri: str) -> dict[str, Any]:
    """Preflight, load, train, evaluate and gate a config file, as the pipeline's steps do."""
    from trainer.config import load_run_config
    from trainer.preflight import preflight
    from trainer.release import decide_release
    from trainer.stages import evaluate_stage, load_stage, train_stage

    config = load_run_config(config_file)
    config = config.model_copy(
        update={"checkpoints": config.checkpoints.model_copy(update={"uri": checkpoint_uri})}
    )
    report = preflight(config)
    train, held_out, data_report = load_stage(config)
    trained = train_stage(config, train, held_out, _site())
    evaluation = evaluate_stage(
        config, trained.model, held_out, steps_trained=trained.summary.global_step
    )
    return {
        "preflight_problems": [str(problem) for problem in report.problems],
        "preflight_skipped": report.skipped,
        "stand_in_rows": {name: len(rows) for name, rows in train.items()},
        "data_warnings": {name: ds.warnings for name, ds in data_report.datasets.items()},
        "global_step": trained.summary.global_step,
        "evaluation": evaluation.model_dump(mode="json"),
        "gate": decide_release(config, evaluation).model_dump(mode="json"),
    }


def resume_a_stream(config_file: str, work: str, interrupt_at: int) -> dict[str, Any]:
    """Train the config straight through, then again interrupted after `interrupt_at`
    steps and resumed in a fresh folder; whether both end with identical weights."""
    import torch

    from trainer.config import load_run_config
    from trainer.data import load_datasets
    from trainer.training.checkpoints import TrainingInterrupted
    from trainer.training.run import train_in_process

    root = Path(work)

    def run(series: str, pod: str, callbacks: list[TrainerCallback]) -> Any:
        config = load_run_config(config_file)
        uri = str(root / series)
        config = config.model_copy(
            update={"checkpoints": config.checkpoints.model_copy(update={"uri": uri})}
        )
        train, held_out = load_datasets(config)
        return train_in_process(
            config, train, held_out, checkpoint_uri=uri, callbacks=callbacks,
            work_dir=root / pod,
        )  # fmt: skip

    straight = run("straight", "pod-0", [])
    try:
        run("series", "pod-1", [SigtermAt(at=interrupt_at)])
        interrupted = False
    except TrainingInterrupted:
        interrupted = True
    shutil.rmtree(root / "pod-1")
    resumed = run("series", "pod-2", [])
    final, expected = resumed.model.state_dict(), straight.model.state_dict()
    return {
        "interrupted": interrupted,
        "straight_steps": straight.summary.global_step,
        "resumed_steps": resumed.summary.global_step,
        "resumed": resumed.summary.resume.resumed,
        "resumed_from": resumed.summary.resume.from_step,
        "same_weights": all(torch.equal(final[key], value) for key, value in expected.items()),
    }


def train_stage_once(config_file: str, checkpoint_uri: str, interrupt_at: int) -> dict[str, Any]:
    """The load and train stages on a config file, interrupted after `interrupt_at` steps
    (0: not): how it ended, or the error that stopped it."""
    from trainer.config import load_run_config
    from trainer.stages import TrainingSite, load_stage, train_stage
    from trainer.training.checkpoints import TrainingInterrupted

    config = load_run_config(config_file)
    config = config.model_copy(
        update={"checkpoints": config.checkpoints.model_copy(update={"uri": checkpoint_uri})}
    )
    train, held_out, _ = load_stage(config)
    callbacks = [SigtermAt(at=interrupt_at)] if interrupt_at else []
    site = TrainingSite(storage_root=None, pipeline="tests", callbacks=callbacks)
    try:
        trained = train_stage(config, train, held_out, site)
    except TrainingInterrupted:
        return {"ended": "interrupted"}
    except Exception as error:
        return {"ended": f"{type(error).__name__}: {error}"}
    resume = trained.summary.resume
    return {"ended": "finished", "resumed_from": resume.from_step if resume.resumed else None}
