"""Every loss the config accepts is built from its config and trains for a few steps.

The rows are generated from the loss's `LossSpec` (text columns, label kind), so a loss
added to `trainer.catalog.LOSS_SPECS` is covered here without a new test; one that needs
more than rows of its shape (a required parameter) must say so in `EXTRA_CONFIG`, or
this test fails for it. A loss whose spec asks for a guide gets the tiny model as its guide;
one whose label a teacher computes gets the tiny model as teacher, and its targets from the
teacher-targets stage's own function, as a run computes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import trainer.training.trainer as training
from tests.conftest import tiny_run_config, write_jsonl
from trainer.catalog import CACHED_VARIANTS, LOSS_SPECS, loss_param_problems
from trainer.catalog.losses import LossSpec
from trainer.config import RunConfig
from trainer.data import load_datasets
from trainer.data.distillation import teacher_targets_for_run

EXTRA_CONFIG: dict[str, dict[str, Any]] = {
    # SoftmaxLoss classifies pairs: it needs the number of classes.
    "SoftmaxLoss": {"params": {"num_labels": 2}},
}
"""Loss config beyond the loss name, for losses that cannot train on rows alone."""

ROWS = 8
BATCH = 4
STEPS = 2


def spec_rows(spec: LossSpec, n: int = ROWS) -> list[dict[str, Any]]:
    """`n` rows of the shape `spec` reads: its minimum of text columns (`t0`, `t1`, ...),
    and a float score in [0, 1] or a 0/1 class (each class several times, so batch-mined
    triplets find positives) when it needs a label."""
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            f"t{column}": f"text {column} of row {i}, about topic {i % 3}"
            for column in range(spec.min_texts)
        }
        if spec.label == "float":
            row["score"] = (i % 5) / 4
        elif spec.label == "int":
            row["label"] = i % 2
        rows.append(row)
    return rows


def _cases() -> list[Any]:
    cases = [pytest.param(name, False, id=name) for name in LOSS_SPECS]
    cases += [pytest.param(name, True, id=CACHED_VARIANTS[name]) for name in CACHED_VARIANTS]
    return cases


@pytest.mark.slow
@pytest.mark.parametrize(("loss", "cached"), _cases())
def test_every_catalog_loss_builds_and_trains(
    loss: str, cached: bool, tiny_model_path: Path, tmp_path: Path
) -> None:
    spec = LOSS_SPECS[loss]
    data = write_jsonl(tmp_path / "rows.jsonl", spec_rows(spec))
    extra = EXTRA_CONFIG.get(loss, {})
    loss_config: dict[str, Any] = {"name": loss, "cached": cached, **extra}
    if spec.guide:
        loss_config["guide"] = {"name_or_path": str(tiny_model_path)}
    if spec.label == "teacher":
        loss_config["teacher"] = {"name_or_path": str(tiny_model_path)}
    if cached:
        # GradCache: mini-batches smaller than the batch, so the caching path runs.
        loss_config["params"] = {**loss_config.get("params", {}), "mini_batch_size": 2}
    assert loss_param_problems(loss, loss_config.get("params", {}), cached=cached) == []
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"rows": {"source": {"path": str(data)}, "loss": loss_config}},
            training={
                "per_device_train_batch_size": BATCH,
                "max_steps": STEPS,
                "logging_steps": 1,
                "batch_sampler": "batch_sampler",
                "learning_rate": 1e-3,
            },
        )
    )
    train_data, held_out = load_datasets(config)
    if spec.label == "teacher":
        train_data, _, _ = teacher_targets_for_run(config, train_data, held_out)
    model = training.load_model(config.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = training.build_trainer(config, train_data, output_dir=tmp_path / "out", model=model)
    built = trainer.loss
    expected = CACHED_VARIANTS[loss] if cached else loss
    assert type(built).__name__ == expected
    output = trainer.train()

    assert output.global_step == STEPS
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert len(losses) == STEPS and all(torch.isfinite(torch.tensor(losses)))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, f"{expected} trained {STEPS} steps without changing a weight"


def test_every_loss_with_required_params_has_them_here() -> None:
    """A loss with a required constructor argument cannot train on rows alone: the
    parametrised test above needs it in EXTRA_CONFIG (fast check, runs without -m slow)."""
    for loss in LOSS_SPECS:
        params = EXTRA_CONFIG.get(loss, {}).get("params", {})
        assert loss_param_problems(loss, params) == [], (
            f"{loss}: add what it needs to EXTRA_CONFIG in tests/test_loss_catalog.py"
        )
