"""The quality gate decides on the `Evaluation` that `compare()` produces."""

from __future__ import annotations

import math

import pytest

from trainer.config import GateConfig
from trainer.release import decide, promotion_verdict
from trainer.results import NO_INTERVAL, Evaluation, GateDecision

NDCG = "docs-information_retrieval_cosine_ndcg@10"
MRR = "docs-information_retrieval_cosine_mrr@10"


def evaluation(base: float, tuned: float, **other: tuple[float, float]) -> Evaluation:
    metrics = {NDCG: (base, tuned), **other}
    return Evaluation(
        primary_metric=NDCG,
        base={k: b for k, (b, _) in metrics.items()},
        finetuned={k: t for k, (_, t) in metrics.items()},
        improvement={k: t - b for k, (b, t) in metrics.items()},
    )


def test_default_gate_passes_when_not_worse() -> None:
    decision = decide(GateConfig(), evaluation(0.40, 0.52))

    assert decision.model_dump() == {
        "passed": True,
        "metric": NDCG,
        "value": 0.52,
        "base_value": 0.40,
        "improvement": pytest.approx(0.12),
        "guards": [],
        "reasons": [],
        "interval": None,
        "interval_note": NO_INTERVAL,
        "steps_trained": None,
        "export": [],
    }
    assert decision.log_line() == (
        f"gate PASSED: {NDCG} = 0.52 (base 0.4, +0.1200, {NO_INTERVAL}); "
        "model may be pushed and promoted"
    )


def test_default_gate_fails_when_worse() -> None:
    decision = decide(GateConfig(), evaluation(0.50, 0.45))

    assert not decision.passed
    assert decision.log_line() == (
        f"gate FAILED: {NDCG} improved by -0.0500 (base 0.5 -> 0.45) < min_improvement 0.0; "
        "model not pushed, not promoted"
    )


def test_equal_scores_pass_the_not_worse_gate() -> None:
    assert decide(GateConfig(min_improvement=0.0), evaluation(0.5, 0.5)).passed


def test_min_value() -> None:
    gate = GateConfig(min_value=0.5, min_improvement=None)

    assert decide(gate, evaluation(0.1, 0.5)).passed
    failed = decide(gate, evaluation(0.1, 0.41))
    assert not failed.passed
    assert failed.log_line() == (
        f"gate FAILED: {NDCG} = 0.41 < min_value 0.5; model not pushed, not promoted"
    )


def test_min_improvement() -> None:
    gate = GateConfig(min_improvement=0.05)

    assert decide(gate, evaluation(0.40, 0.46)).passed
    failed = decide(gate, evaluation(0.40, 0.43))
    assert not failed.passed
    assert failed.reasons == [
        f"{NDCG} improved by +0.0300 (base 0.4 -> 0.43) < min_improvement 0.05"
    ]


def test_every_failed_condition_is_reported() -> None:
    decision = decide(GateConfig(min_value=0.9, min_improvement=0.1), evaluation(0.5, 0.45))

    assert len(decision.reasons) == 2
    assert "min_value 0.9" in decision.log_line()
    assert "min_improvement 0.1" in decision.log_line()


def test_gate_on_another_metric() -> None:
    gate = GateConfig(metric=MRR, min_value=0.3)

    decision = decide(gate, evaluation(0.5, 0.6, **{MRR: (0.3, 0.2)}))

    assert decision.metric == MRR
    assert not decision.passed


def test_unknown_metric_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match="gate metric 'docs_ndcg' was not evaluated") as error:
        decide(GateConfig(metric="docs_ndcg"), evaluation(0.5, 0.6, **{MRR: (0.3, 0.4)}))
    assert f"available metrics: {MRR}, {NDCG}" in str(error.value)


def test_no_metric_at_all() -> None:
    empty = Evaluation()
    with pytest.raises(ValueError, match=r"set gate\.metric or configure at least one evaluator"):
        decide(GateConfig(), empty)


def test_nan_never_passes() -> None:
    decision = decide(GateConfig(min_improvement=None), evaluation(0.5, math.nan))
    assert not decision.passed
    assert decision.reasons == [f"{NDCG} is NaN"]


def test_without_a_base_value_only_min_improvement_fails() -> None:
    tuned_only = Evaluation(primary_metric=NDCG, finetuned={NDCG: 0.7})

    assert decide(GateConfig(min_value=0.5, min_improvement=None), tuned_only).passed
    failed = decide(GateConfig(), tuned_only)
    assert failed.reasons == [f"{NDCG} has no base-model value to compute an improvement from"]


def test_decision_round_trips_as_json() -> None:
    decision = decide(GateConfig(), evaluation(0.4, 0.5))
    assert GateDecision.model_validate_json(decision.model_dump_json()) == decision
    assert decision.model_dump(mode="json") == {
        "passed": True,
        "metric": NDCG,
        "value": 0.5,
        "base_value": 0.4,
        "improvement": pytest.approx(0.1),
        "guards": [],
        "reasons": [],
        "interval": None,
        "interval_note": NO_INTERVAL,
        "steps_trained": None,
        "export": [],
    }


@pytest.mark.parametrize(
    ("tuned", "production", "verdict"),
    [
        (0.50, None, (True, f"first version to pass the gate (+0.1000, {NO_INTERVAL})")),
        (
            0.50,
            0.45,
            (
                True,
                f"{NDCG} 0.5000 beats production 0.4500; over the base: +0.1000, {NO_INTERVAL}",
            ),
        ),
        (0.50, 0.50, (False, f"{NDCG} 0.5000 does not beat production 0.5000")),
        (
            0.30,
            None,
            (
                False,
                f"gate failed: {NDCG} improved by -0.1000 (base 0.4 -> 0.3) < min_improvement 0.0",
            ),
        ),
    ],
)
def test_promotion_needs_the_gate_and_a_better_score_than_production(
    tuned: float, production: float | None, verdict: tuple[bool, str]
) -> None:
    decision = decide(GateConfig(), evaluation(0.4, tuned))
    assert promotion_verdict(decision, production) == verdict


GENERAL = "general-ir_cosine_ndcg@10"


def test_a_guard_that_drops_too_far_stops_publishing_and_promotion() -> None:
    """The target metric improves, a guarded general-domain metric collapses."""
    gate = GateConfig(guards=[{"metric": GENERAL, "max_drop": 0.02}])
    decision = decide(gate, evaluation(0.40, 0.52, **{GENERAL: (0.60, 0.50)}))

    assert not decision.passed
    (guard,) = decision.guards
    assert (guard.metric, guard.passed) == (GENERAL, False)
    assert guard.drop == pytest.approx(0.10)
    assert decision.log_line() == (
        f"gate FAILED: guard {GENERAL} FAILED: 0.6000 -> 0.5000 (-0.1000; allowed drop 0.0200); "
        "model not pushed, not promoted"
    )
    promoted, reason = promotion_verdict(decision, production_score=None)
    assert not promoted and f"guard {GENERAL} FAILED" in reason


def test_guards_within_their_tolerance_pass_and_are_reported() -> None:
    gate = GateConfig(guards=[{"metric": GENERAL, "max_drop": 0.02}])
    decision = decide(gate, evaluation(0.40, 0.52, **{GENERAL: (0.60, 0.59)}))
    assert decision.passed
    assert f"guard {GENERAL} passed: 0.6000 -> 0.5900 (-0.0100; allowed drop 0.0200)" in (
        decision.log_line()
    )


def test_a_guard_on_a_metric_nobody_evaluated_is_a_config_error() -> None:
    gate = GateConfig(guards=[{"metric": "typo_ndcg@10", "max_drop": 0.0}])
    with pytest.raises(
        ValueError, match=r"gate.guards\[0\]: metric 'typo_ndcg@10' was not evaluated"
    ):
        decide(gate, evaluation(0.4, 0.5))
