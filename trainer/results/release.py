"""What the release stages decided: the gate (with its guards), the Hub push, promotion."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from trainer.results.base import Result
from trainer.results.evaluation import format_metric


class GuardResult(BaseModel):
    """One guard applied to one evaluation."""

    model_config = ConfigDict(frozen=True)

    metric: str
    base: float
    finetuned: float
    drop: float
    max_drop: float
    passed: bool

    def summary(self) -> str:
        """One line for the gate log and the card."""
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"guard {self.metric} {verdict}: {self.base:.4f} -> {self.finetuned:.4f} "
            f"({self.finetuned - self.base:+.4f}; allowed drop {self.max_drop:.4f})"
        )


class GateDecision(Result):
    """The outcome of the gate and every reason it failed (empty when it passed)."""

    passed: bool
    metric: str
    value: float
    base_value: float | None = None
    improvement: float | None = None
    guards: list[GuardResult] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)

    def log_line(self) -> str:
        """One sentence for the step log: verdict, the number it rests on, consequence."""
        if self.passed:
            base = (
                f" (base {format_metric(self.base_value)}, {self.improvement:+.4f})"
                if self.base_value is not None and self.improvement is not None
                else ""
            )
            guards = "".join(f"; {guard.summary()}" for guard in self.guards)
            return (
                f"gate PASSED: {self.metric} = {format_metric(self.value)}{base}{guards}; "
                "model may be pushed and promoted"
            )
        return f"gate FAILED: {'; '.join(self.reasons)}; model not pushed, not promoted"


class PushOutcome(Result):
    """What the push stage did: the gate decision, and where the model landed if pushed."""

    pushed: bool
    gate: GateDecision
    reason: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    commit_url: str | None = None
    pr_url: str | None = None
    no_changes: bool | None = None


class Promotion(Result):
    """Whether the run's model version became `production`, and why (not)."""

    promoted: bool
    reason: str
    model: str | None = None
    version: str | None = None
    stage: str | None = None
    previous_production_score: float | None = None
