"""What the release stages decided: the gate (with its guards), the Hub push, promotion."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from trainer.results.base import FrozenResult, Result
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


class ConfidenceInterval(FrozenResult):
    """A paired bootstrap interval of the mean per-query improvement (fine-tuned - base)."""

    low: float
    high: float
    confidence: float
    queries: int
    resamples: int
    seed: int

    def text(self, improvement: float) -> str:
        """`+0.0465 [95% CI +0.031, +0.062] over 569 queries`."""
        level = f"{self.confidence * 100:g}%"
        return (
            f"{improvement:+.4f} [{level} CI {self.low:+.3f}, {self.high:+.3f}] "
            f"over {self.queries} queries"
        )


NO_INTERVAL = "no interval (evaluator has no per-query scores)"
"""What the gate says when the gate metric's evaluator kept no per-query scores."""


class GateDecision(Result):
    """The outcome of the gate and every reason it failed (empty when it passed)."""

    passed: bool
    metric: str
    value: float
    base_value: float | None = None
    improvement: float | None = None
    guards: list[GuardResult] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    interval: ConfidenceInterval | None = None
    """The improvement's bootstrap interval (None: no per-query scores, or no base value)."""
    interval_note: str | None = None
    """Why there is no interval (`NO_INTERVAL`), when `gate.confidence` is set."""
    steps_trained: int | None = None
    export: list[str] = Field(default_factory=list)
    """One line per exported graph checked (size, speed, parity), when the run exports."""

    def improvement_text(self) -> str:
        """The improvement with its interval, or with the note why there is none."""
        if self.improvement is None:
            return "no improvement (no base-model value)"
        if self.interval is not None:
            return self.interval.text(self.improvement)
        note = f", {self.interval_note}" if self.interval_note else ""
        return f"{self.improvement:+.4f}{note}"

    def log_line(self) -> str:
        """One sentence for the step log: verdict, the number it rests on, consequence."""
        if self.passed:
            base = (
                f" (base {format_metric(self.base_value)}, {self.improvement_text()})"
                if self.base_value is not None and self.improvement is not None
                else ""
            )
            guards = "".join(f"; {guard.summary()}" for guard in self.guards)
            guards += "".join(f"; export {line}" for line in self.export)
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


class RunSummary(Result):
    """What a run decided and where its results are: the last lines of its log and
    `output.dir/summary.json`."""

    run: str | None = None
    """The orchestrator run (`ZenML run <name>`)."""
    model: str
    metric: str | None = None
    """The gate metric (the primary metric unless `gate.metric` names another)."""
    base: float | None = None
    finetuned: float | None = None
    improvement: float | None = None
    production: float | None = None
    """The gate metric of the model in production before this run, when it was scored."""
    gate: GateDecision | None = None
    gate_error: str | None = None
    """Why the gate could not be decided (a metric no evaluator reported)."""
    push: PushOutcome | None = None
    promotion: Promotion | None = None
    """None where the orchestrator has no model registry (Kubeflow)."""
    files: dict[str, str] = Field(default_factory=dict)
    """What this run left in `output.dir`, by kind: model, model_card, evaluation, report,
    summary (only files that exist)."""
    dashboard_url: str | None = None

    def decision_lines(self) -> list[str]:
        """One line each for the gate, the push and the promotion."""
        lines = []
        if self.gate is not None:
            verdict = "PASSED" if self.gate.passed else "FAILED"
            why = "" if self.gate.passed else f" ({'; '.join(self.gate.reasons)})"
            change = (
                f": {self.gate.improvement_text()}"
                if self.gate.passed and self.gate.improvement is not None
                else ""
            )
            lines.append(f"gate: {verdict} on {self.gate.metric}{change}{why}")
        elif self.gate_error:
            lines.append(f"gate: not decided ({self.gate_error})")
        if self.push is not None:
            if self.push.pushed:
                where = self.push.pr_url or self.push.commit_url or self.push.repo_id
                lines.append(f"push: pushed to {where}")
            else:
                lines.append(f"push: not pushed ({self.push.reason or 'gate failed'})")
        if self.promotion is not None:
            version = (
                f"{self.promotion.model} version {self.promotion.version}"
                if self.promotion.model
                else "model"
            )
            verdict = "promoted to production" if self.promotion.promoted else "not promoted"
            lines.append(f"promotion: {version} {verdict} ({self.promotion.reason})")
        else:
            lines.append("promotion: none (this orchestrator has no model registry)")
        return lines

    def lines(self) -> list[str]:
        """The run's closing lines: the result, what was decided, where everything is."""
        head = f"{self.run}: " if self.run else ""
        if self.metric is not None and self.finetuned is not None:
            change = f" ({self.improvement:+.4f})" if self.improvement is not None else ""
            base = f"base {format_metric(self.base)} -> " if self.base is not None else ""
            production = (
                f", production {format_metric(self.production)}"
                if self.production is not None
                else ""
            )
            result = f"{self.metric}: {base}fine-tuned {format_metric(self.finetuned)}{change}"
            lines = [f"{head}finished; {result}{production}"]
        else:
            lines = [f"{head}finished"]
        lines += self.decision_lines()
        labels = {
            "model": "model",
            "model_card": "model card",
            "report": "report",
            "evaluation": "evaluation",
            "summary": "summary",
        }
        lines += [f"{labels.get(kind, kind)}: {path}" for kind, path in self.files.items()]
        if self.dashboard_url:
            lines.append(f"dashboard: {self.dashboard_url}")
        return lines

    def markdown(self) -> str:
        """`summary.md`: the same lines as a short Markdown page."""
        first, *rest = self.lines()
        return f"# {self.model}\n\n{first}\n\n" + "".join(f"- {line}\n" for line in rest)
