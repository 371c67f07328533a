"""The run seed is what `benchmarks/seeds.py` and `benchmarks/defaults.py` vary: the same
seed must train the same model (so a seed's result is reproducible), another seed a
different one (so the seeds' spread measures something)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.seeds import format_spread, spread
from tests.conftest import pairs_dataset, tiny_run_config
from trainer.config import RunConfig
from trainer.data import load_datasets
from trainer.training import train


def _trained(tiny_model_path: Path, pairs_file: Path, seed: int, tmp_path: Path) -> tuple:
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file)},
            training={"per_device_train_batch_size": 8, "logging_steps": 1, "max_steps": 3},
            seed=seed,
        )
    )
    train_sets, _ = load_datasets(config)
    result = train(
        config, train_sets, output_dir=tmp_path / f"seed{seed}-{len(list(tmp_path.iterdir()))}"
    )
    losses = [row["loss"] for row in result.summary.history if "loss" in row]
    weights = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    return losses, weights


@pytest.mark.slow  # three tiny trainings
def test_same_seed_same_model_other_seed_another(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    losses_1, weights_1 = _trained(tiny_model_path, pairs_file, 1, tmp_path)
    again_losses, again_weights = _trained(tiny_model_path, pairs_file, 1, tmp_path)
    losses_2, weights_2 = _trained(tiny_model_path, pairs_file, 2, tmp_path)
    assert losses_1 == again_losses
    assert torch.equal(weights_1, again_weights)
    assert losses_1 != losses_2
    assert not torch.allclose(weights_1, weights_2)


def test_spread_is_mean_sample_std_min_max() -> None:
    summary = spread([0.60, 0.62, 0.64])
    assert summary == {"n": 3, "mean": 0.62, "std": 0.02, "min": 0.6, "max": 0.64}
    assert format_spread(summary) == "0.6200 ± 0.0200 (0.6000-0.6400, n=3)"
    assert spread([0.5])["std"] == 0.0
