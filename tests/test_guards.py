"""Regression guards: a metric that falls more than max_drop below the base model fails."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trainer.config import GuardConfig
from trainer.release import GuardMetricError, check_guards

BASE = {"general_ndcg@10": 0.50, "target_ndcg@10": 0.40}


def test_guard_that_drops_more_than_max_drop_fails_and_is_named() -> None:
    finetuned = {"general_ndcg@10": 0.45, "target_ndcg@10": 0.60}
    (result,) = check_guards(
        [GuardConfig(metric="general_ndcg@10", max_drop=0.02)], BASE, finetuned
    )
    assert not result.passed
    assert result.drop == pytest.approx(0.05)
    assert result.summary() == (
        "guard general_ndcg@10 FAILED: 0.5000 -> 0.4500 (-0.0500; allowed drop 0.0200)"
    )


def test_drop_within_max_drop_and_gains_pass() -> None:
    finetuned = {"general_ndcg@10": 0.49, "target_ndcg@10": 0.60}
    results = check_guards(
        [
            GuardConfig(metric="general_ndcg@10", max_drop=0.01),
            GuardConfig(metric="target_ndcg@10"),
        ],
        BASE,
        finetuned,
    )
    assert [r.passed for r in results] == [True, True]
    assert results[1].drop == pytest.approx(-0.2)
    assert results[0].summary().startswith("guard general_ndcg@10 passed")


def test_guard_on_a_metric_that_was_not_evaluated_names_guard_and_choices() -> None:
    with pytest.raises(
        GuardMetricError,
        match=r"gate.guards\[1\]: metric 'nli_spearman' was not evaluated .*"
        r"available metrics: general_ndcg@10, target_ndcg@10",
    ):
        check_guards(
            [GuardConfig(metric="target_ndcg@10"), GuardConfig(metric="nli_spearman")],
            BASE,
            dict(BASE),
        )


def test_guard_config_is_strict() -> None:
    with pytest.raises(ValidationError, match="max_drop"):
        GuardConfig(metric="m", max_drop=-0.1)
    with pytest.raises(ValidationError, match="extra"):
        GuardConfig.model_validate({"metric": "m", "min_value": 0.3})
