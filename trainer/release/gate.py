"""The quality gate: may this fine-tuned model be published and promoted?

The decision is a pure function of the gate config and the `Evaluation` the evaluate
stage produced, so it can be unit-tested, re-run on an old run's saved metrics, and
logged as one sentence a person reads in the step log.

A point estimate on a few hundred queries moves by a few hundredths between draws of
queries, so with `gate.confidence` set the gate decides on the lower bound of a seeded
paired bootstrap interval of the improvement (`trainer.evaluation.paired_bootstrap`),
where the evaluator kept per-query scores; `benchmarks/gate_false_pass.py` measures how
often identically trained models pass against each other either way.
"""

from __future__ import annotations

import math

from trainer.config import GateConfig, RunConfig
from trainer.evaluation import paired_bootstrap
from trainer.release.guards import check_guards
from trainer.results import NO_INTERVAL, ConfidenceInterval, Evaluation, ExportReport, GateDecision
from trainer.results import format_metric as _fmt


def improvement_interval(
    gate: GateConfig, evaluation: Evaluation, metric: str
) -> ConfidenceInterval | None:
    """The bootstrap interval of `metric`'s improvement, or None when `gate.confidence`
    is off or the evaluator kept no per-query scores of `metric` for both models."""
    base = evaluation.base_per_query.get(metric)
    tuned = evaluation.finetuned_per_query.get(metric)
    if gate.confidence is None or not base or not tuned:
        return None
    return paired_bootstrap(
        base, tuned, confidence=gate.confidence, resamples=gate.resamples, seed=gate.seed
    )


def decide(
    gate: GateConfig, evaluation: Evaluation, export: ExportReport | None = None
) -> GateDecision:
    """Apply `gate` to the fine-tuned model's metrics.

    The metric is `gate.metric`, else the evaluation's primary metric. A metric that was
    not evaluated is a configuration error (ValueError naming the available metrics), not
    a failed gate: a typo must not silently block every release. Every guard in
    `gate.guards` must hold too; a failed guard is a reason, named in the log line.
    With an `export` (the export stage's report), every exported graph must pass its
    parity check; a failing one is a reason naming the file and its numbers.
    """
    finetuned = evaluation.finetuned
    metric = gate.metric or evaluation.primary_metric
    if not metric:
        raise ValueError(
            "the gate has no metric: set gate.metric or configure at least one evaluator"
        )
    if metric not in finetuned:
        available = ", ".join(sorted(finetuned)) or "(none: no evaluator ran)"
        raise ValueError(
            f"gate metric {metric!r} was not evaluated; available metrics: {available}"
        )

    value = float(finetuned[metric])
    base = evaluation.base.get(metric)
    base_value = None if base is None else float(base)
    improvement = evaluation.improvement.get(metric)
    if improvement is None and base_value is not None:
        improvement = value - base_value

    interval = improvement_interval(gate, evaluation, metric)
    note = NO_INTERVAL if gate.confidence is not None and interval is None else None

    reasons: list[str] = []
    if evaluation.weights_changed is False:
        reasons.append(
            "no meaningful training: the fine-tuned weights are identical to the base "
            "model's (no optimizer step, or a learning rate of 0 at every step taken)"
        )
    steps = evaluation.steps_trained
    if steps is not None and steps < gate.min_steps:
        reasons.append(
            f"no meaningful training: {steps} optimizer step(s) < gate.min_steps {gate.min_steps}"
        )
    if math.isnan(value):
        reasons.append(f"{metric} is NaN")
    if gate.min_value is not None and not value >= gate.min_value:
        reasons.append(f"{metric} = {_fmt(value)} < min_value {gate.min_value}")
    if gate.min_improvement is not None:
        if improvement is None:
            reasons.append(f"{metric} has no base-model value to compute an improvement from")
        elif interval is not None:
            if not interval.low >= gate.min_improvement:
                reasons.append(
                    f"{metric} improved by {interval.text(improvement)} (base "
                    f"{_fmt(base_value)} -> {_fmt(value)}): the interval's lower bound "
                    f"{interval.low:+.4f} < min_improvement {gate.min_improvement}"
                )
        elif not improvement >= gate.min_improvement:
            reasons.append(
                f"{metric} improved by {improvement:+.4f} (base {_fmt(base_value)} -> "
                f"{_fmt(value)}) < min_improvement {gate.min_improvement}"
            )
    guards = check_guards(gate.guards, evaluation.base, evaluation.finetuned)
    reasons += [guard.summary() for guard in guards if not guard.passed]
    if export is not None:
        reasons += export.failures()
    return GateDecision(
        passed=not reasons,
        metric=metric,
        value=value,
        base_value=base_value,
        improvement=None if improvement is None else float(improvement),
        guards=guards,
        reasons=reasons,
        interval=interval,
        interval_note=note,
        steps_trained=steps,
        export=[graph.summary() for graph in export.graphs] if export is not None else [],
    )


def decide_release(
    config: RunConfig, evaluation: Evaluation, export: ExportReport | None = None
) -> GateDecision:
    """The gate of a whole run: `decide`, and when the run exports (`export.onnx`), no
    release without the export stage's parity result."""
    decision = decide(config.gate, evaluation, export)
    if config.export.onnx and export is None:
        reason = "export.onnx is set but no export parity result reached the gate"
        return decision.model_copy(update={"passed": False, "reasons": [*decision.reasons, reason]})
    return decision


def promotion_verdict(decision: GateDecision, production_score: float | None) -> tuple[bool, str]:
    """Whether a model that went through the gate replaces the current production model,
    and the reason in one phrase: it must pass the gate and beat production's score on
    the gate metric (any passing model wins when nothing is in production yet)."""
    if not decision.passed:
        return False, f"gate failed: {'; '.join(decision.reasons)}"
    if production_score is None:
        return True, f"first version to pass the gate ({decision.improvement_text()})"
    if decision.value <= production_score:
        return False, (
            f"{decision.metric} {decision.value:.4f} does not beat production "
            f"{production_score:.4f}"
        )
    return True, (
        f"{decision.metric} {decision.value:.4f} beats production {production_score:.4f}; "
        f"over the base: {decision.improvement_text()}"
    )
