"""What a preflight found, and the error a pipeline step raises when it found problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from trainer.problems import Problem
from trainer.results import DataReport

CHECK_COMMAND = "python -m trainer.preflight"


class PreflightReport(BaseModel):
    """What a preflight found: every problem (the run must not start), warnings (it may),
    what was checked, what could not be checked here and why, and how long it took."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = None
    """The config file checked, when the preflight read one."""
    problems: list[Problem]
    warnings: list[str]
    checked: list[str]
    skipped: list[str]
    metrics: list[str]
    """Every metric name the evaluators will report (what `gate.metric` may name)."""
    gate_metric: str | None = None
    data: DataReport | None = None
    seconds: float
    unchecked_offline: int = 0
    """Hub datasets and models left unchecked because they are not cached (`--offline`)."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self) -> str:
        """One line: the outcome, counts, and the time it took."""
        where = f" in {self.source}" if self.source else ""
        counts = (
            f"{_plural(len(self.problems), 'problem')}, {_plural(len(self.warnings), 'warning')}"
        )
        if self.unchecked_offline:
            counts += f", {self.unchecked_offline} not checked offline"
        outcome = "OK" if self.ok else "FAILED"
        return f"preflight {outcome}{where}: {counts} ({self.seconds:.1f} s)"

    def metadata(self) -> dict[str, Any]:
        """The report as step metadata: problems as `field: message` lines."""
        return {
            "preflight": {
                "ok": self.ok,
                "problems": [str(problem) for problem in self.problems],
                "warnings": self.warnings,
                "checked": self.checked,
                "skipped": self.skipped,
                "gate_metric": self.gate_metric,
                "seconds": self.seconds,
            }
        }


class PreflightFailed(ValueError):
    """A run config has problems; the message lists every one as `field: message`."""

    def __init__(self, report: PreflightReport) -> None:
        self.report = report
        lines = "\n".join(f"  {problem}" for problem in report.problems)
        super().__init__(
            f"the run config has {_plural(len(report.problems), 'problem')} "
            f"(found by the preflight, before anything was loaded or trained):\n{lines}\n"
            f"Fix them, then check again with `{CHECK_COMMAND} <config.yaml>`."
        )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass
class Findings:
    """What the checks found so far; each check adds to it."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)
    """Config sections left out because they are invalid; checks that read them skip."""

    def problem(self, field: str, message: str) -> None:
        self.problems.append(Problem(field=field, message=message))
