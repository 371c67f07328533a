"""The run seed is what `benchmarks/seeds.py` and `benchmarks/defaults.py` vary: the same
seed must train the same model (so a seed's result is reproducible), another seed a
different one (so the seeds' spread measures something)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks.seeds import (
    compare,
    compare_reports,
    format_comparison,
    format_spread,
    spread,
)
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


def test_compare_separated_recipes() -> None:
    # Means 0.05 apart, both sample stds 0.02: Welch t = 0.05 / sqrt(2 * 0.02**2 / 3) = 3.06 on
    # 4 degrees of freedom; every seed of A above every seed of B: exact Mann-Whitney p 2/20.
    result = compare([0.60, 0.62, 0.64], [0.55, 0.57, 0.59])
    assert result == {
        "difference": 0.05,
        "welch_t": 3.06,
        "welch_df": 4.0,
        "welch_p": 0.038,
        "mann_whitney_p": 0.1,
        "separated": True,
    }
    assert format_comparison(result) == (
        "+0.0500 (Welch t 3.06, df 4.0, p 0.038; Mann-Whitney p 0.100; separated)"
    )


def test_compare_overlapping_recipes_is_not_separated() -> None:
    result = compare([0.60, 0.62, 0.64], [0.61, 0.63, 0.65])
    assert result["difference"] == -0.01
    assert result["separated"] is False
    assert result["mann_whitney_p"] == 0.7
    assert format_comparison(result).endswith("ranges overlap)")


def _report(recipe: str, scores: dict[str, list[float]]) -> dict:
    """A `seeds.py` results JSON with these NDCG@10 values per evaluator set, one per seed."""
    seeds = range(1, 1 + len(next(iter(scores.values()))))
    return {
        "recipe": recipe,
        "base": {label: {"ir_cosine_ndcg@10": 0.5, "ir_cosine_mrr@10": 0.4} for label in scores},
        "runs": [
            {
                "seed": seed,
                "scores": {
                    label: {"ir_cosine_ndcg@10": values[index], "ir_cosine_mrr@10": 0.4}
                    for label, values in scores.items()
                },
            }
            for index, seed in enumerate(seeds)
        ],
    }


def test_compare_reports_pairs_the_evaluators_both_scored() -> None:
    stronger = _report("stronger", {"a.yaml": [0.60, 0.62, 0.64], "b.yaml": [0.7, 0.7, 0.7]})
    plain = _report("plain", {"a.yaml": [0.55, 0.57, 0.59]})
    table = compare_reports(stronger, plain).splitlines()
    assert table[0] == "| evaluator | stronger | plain | difference (A - B) |"
    assert table[2:] == [
        "| ir_cosine_ndcg@10 (a.yaml) | 0.6200 ± 0.0200 (0.6000-0.6400, n=3) | "
        "0.5700 ± 0.0200 (0.5500-0.5900, n=3) | "
        "+0.0500 (Welch t 3.06, df 4.0, p 0.038; Mann-Whitney p 0.100; separated) |"
    ]


def _defaults_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """`benchmarks/defaults.py`, imported as its command line runs it (next to seeds.py)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    return importlib.import_module("defaults")


def test_defaults_compare_cases_reads_the_committed_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = _defaults_module(monkeypatch)
    report = json.loads(defaults.DEFAULT_OUTPUT.read_text())
    text = defaults.compare_cases(
        report, "library/mnrl-b32-lr5e-5 (quickstart)", "library/mnrl-b16-lr2e-5 (generic default)"
    )
    assert text.splitlines() == [
        "library/mnrl-b32-lr5e-5 (quickstart): 0.6237 ± 0.0018 (0.6220-0.6255, n=3)",
        "library/mnrl-b16-lr2e-5 (generic default): 0.6168 ± 0.0025 (0.6153-0.6197, n=3)",
        "A - B: +0.0069 (Welch t 3.92, df 3.6, p 0.021; Mann-Whitney p 0.100; separated)",
    ]


def test_defaults_compare_cases_names_the_unknown_case_and_the_known_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = _defaults_module(monkeypatch)
    report = json.loads(defaults.DEFAULT_OUTPUT.read_text())
    with pytest.raises(
        SystemExit,
        match=r"no runs of case\(s\) \['library/typo'\] in the report; "
        r"it has \['library/mnrl-b16-lr2e-5 \(generic default\)'",
    ):
        defaults.compare_cases(report, "library/typo", "library/mnrl-b32-lr5e-5 (quickstart)")
