"""Regression guards: metrics that must not fall by more than `max_drop` against the base.

The gate's primary metric says whether the model got better at the target task. A
fine-tune can gain there and collapse elsewhere (a general-domain retrieval set, another
language), and such a model should not be published. Each guard names one evaluated
metric and the largest drop (base minus fine-tuned) it tolerates. Pure functions over
the two metric dicts that `trainer.evaluation.evaluators.compare` produces, so the gate, the log
line and the card all read the same results.
"""

from __future__ import annotations

from trainer.config import GuardConfig
from trainer.results import GuardResult


class GuardMetricError(ValueError):
    """A guard names a metric that no evaluator produced."""


def check_guards(
    guards: list[GuardConfig], base: dict[str, float], finetuned: dict[str, float]
) -> list[GuardResult]:
    """Apply every guard; raise `GuardMetricError` naming a guard whose metric is missing.

    `drop` is base minus fine-tuned (positive = got worse); a guard passes when the drop
    is at most `max_drop` (a tiny tolerance absorbs float noise in the subtraction).
    """
    results: list[GuardResult] = []
    for index, guard in enumerate(guards):
        if guard.metric not in base or guard.metric not in finetuned:
            available = ", ".join(sorted(set(base) & set(finetuned))) or "none"
            raise GuardMetricError(
                f"gate.guards[{index}]: metric {guard.metric!r} was not evaluated for both "
                f"models; available metrics: {available}"
            )
        drop = base[guard.metric] - finetuned[guard.metric]
        results.append(
            GuardResult(
                metric=guard.metric,
                base=base[guard.metric],
                finetuned=finetuned[guard.metric],
                drop=drop,
                max_drop=guard.max_drop,
                passed=drop <= guard.max_drop + 1e-12,
            )
        )
    return results
