"""The quality gate: may this fine-tuned model be published and promoted?

The decision is a pure function of the gate config and the evaluation summary that
`trainer.evaluation.compare` produced, so it can be unit-tested, re-run on an old run's
saved metrics, and logged as one sentence a person reads in the step log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from trainer.config import GateConfig


def _fmt(value: float | None) -> str:
    """Metrics at 4 decimals, without trailing zeros (0.41, not 0.4100)."""
    return "n/a" if value is None else repr(round(value, 4))


@dataclass(frozen=True)
class GateDecision:
    """The outcome of the gate and every reason it failed (empty when it passed)."""

    passed: bool
    metric: str
    value: float
    base_value: float | None
    improvement: float | None
    reasons: list[str] = field(default_factory=list)

    def log_line(self) -> str:
        """One sentence for the step log: verdict, the number it rests on, consequence."""
        if self.passed:
            base = (
                f" (base {_fmt(self.base_value)}, {self.improvement:+.4f})"
                if self.base_value is not None and self.improvement is not None
                else ""
            )
            return f"gate PASSED: {self.metric} = {_fmt(self.value)}{base}; model may be pushed and promoted"
        return f"gate FAILED: {'; '.join(self.reasons)}; model not pushed, not promoted"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for step metadata and step outputs."""
        return {
            "passed": self.passed,
            "metric": self.metric,
            "value": self.value,
            "base_value": self.base_value,
            "improvement": self.improvement,
            "reasons": list(self.reasons),
        }


def decide(gate: GateConfig, evaluation: dict[str, Any]) -> GateDecision:
    """Apply `gate` to the fine-tuned model's metrics.

    The metric is `gate.metric`, else the evaluation's primary metric. A metric that was
    not evaluated is a configuration error (ValueError naming the available metrics), not
    a failed gate: a typo must not silently block every release.
    """
    finetuned: dict[str, float] = evaluation.get("finetuned") or {}
    metric = gate.metric or evaluation.get("primary_metric")
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
    base = (evaluation.get("base") or {}).get(metric)
    base_value = None if base is None else float(base)
    improvement = (evaluation.get("improvement") or {}).get(metric)
    if improvement is None and base_value is not None:
        improvement = value - base_value

    reasons: list[str] = []
    if math.isnan(value):
        reasons.append(f"{metric} is NaN")
    if gate.min_value is not None and not value >= gate.min_value:
        reasons.append(f"{metric} = {_fmt(value)} < min_value {gate.min_value}")
    if gate.min_improvement is not None:
        if improvement is None:
            reasons.append(f"{metric} has no base-model value to compute an improvement from")
        elif not improvement >= gate.min_improvement:
            reasons.append(
                f"{metric} improved by {improvement:+.4f} (base {_fmt(base_value)} -> "
                f"{_fmt(value)}) < min_improvement {gate.min_improvement}"
            )
    return GateDecision(
        passed=not reasons,
        metric=metric,
        value=value,
        base_value=base_value,
        improvement=None if improvement is None else float(improvement),
        reasons=reasons,
    )
