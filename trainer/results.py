"""Typed results that stages hand to each other.

Every stage output that another stage, the dashboard or the model card reads is one of
these pydantic models, never a loose dict: ZenML stores them as JSON artifacts with its
built-in pydantic materializer, and the Kubeflow components pass `model_dump(mode="json")`
and validate it back on the other side. A field renamed here is renamed for both
orchestrators at once. The load stage's `DataReport` lives next to the checks that fill
it (`trainer.data_report`) and is re-exported here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trainer.data_report import DataReport, DatasetReport, SourceReport
from trainer.fast_path import SpeedReport
from trainer.guards import GuardResult
from trainer.lineage import ModelLineage

__all__ = [
    "CheckpointSummary",
    "DataReport",
    "DatasetReport",
    "Emissions",
    "Evaluation",
    "GateDecision",
    "ModelInfo",
    "ModelLineage",
    "Promotion",
    "PushOutcome",
    "ResumeInfo",
    "RunRef",
    "SourceReport",
    "SpeedReport",
    "TrainingSummary",
]


class _Result(BaseModel):
    """Base of all stage results: unknown keys are errors, so both sides stay in step."""

    model_config = ConfigDict(extra="forbid")


_ORCHESTRATOR_NAMES = {"zenml": "ZenML", "kubeflow": "Kubeflow"}


class RunRef(_Result):
    """The orchestrator run a stage belongs to (shown in logs, metadata and the card)."""

    orchestrator: str
    name: str
    id: str | None = None
    pipeline: str | None = None
    model_version: str | None = None
    dashboard_url: str | None = None

    def label(self) -> str:
        """`ZenML run <name>`: how logs, checkpoints and commit messages name the run."""
        orchestrator = _ORCHESTRATOR_NAMES.get(self.orchestrator, self.orchestrator)
        return f"{orchestrator} run {self.name}"


class ResumeInfo(_Result):
    """Whether a training attempt continued from a checkpoint, and from which one."""

    resumed: bool = False
    from_step: int | None = None
    checkpoint: str | None = None
    from_run: str | None = None
    reason: str = ""

    def log_line(self) -> str:
        if not self.resumed:
            return f"training from scratch: {self.reason}"
        origin = f" (saved by {self.from_run})" if self.from_run else ""
        return f"resuming from global step {self.from_step}: {self.checkpoint}{origin}"


class CheckpointSummary(_Result):
    """Where a training attempt kept its durable checkpoints and which steps it saved."""

    uri: str
    every_n_steps: int | None = None
    saved_steps: list[int] = Field(default_factory=list)
    finished: bool = False


class Emissions(_Result):
    """Energy and CO2 of the training, as codecarbon measured them."""

    emissions_kg: float
    energy_consumed: float | None = None
    duration_s: float | None = None
    country_name: str | None = None
    cpu_model: str | None = None
    gpu_model: str | None = None


class ModelInfo(_Result):
    """Facts about the trained model that the card shows without loading it again."""

    base_model: str | None = None
    embedding_dimension: int | None = None
    max_seq_length: int | None = None
    parameters: int | None = None


class TrainingSummary(_Result):
    """What the train stage did: steps, time, loss history, resume and checkpoints."""

    train_seconds: float
    global_step: int
    planned_steps: int | None = None
    world_size: int = 1
    """Training processes (DDP ranks); in-batch negatives span all of them when gathered."""
    global_batch_size: int | None = None
    """Pairs per optimizer step: per-device batch x processes x gradient accumulation."""
    gather_across_devices: bool = False
    """In-batch-negative losses saw the negatives of every process (a global batch)."""
    speed: SpeedReport | None = None
    """Which speed levers the training used (`trainer.fast_path`), on which device."""
    train_rows: dict[str, int] = Field(default_factory=dict)
    train_loss: float | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    emissions: Emissions | None = None
    model_info: ModelInfo = Field(default_factory=ModelInfo)
    resume: ResumeInfo = Field(default_factory=ResumeInfo)
    checkpoints: CheckpointSummary | None = None
    lineage: ModelLineage | None = None
    """The ZenML model version the base model was, for `zenml:<model>@<version>` bases."""

    def metadata(self) -> dict[str, Any]:
        """The flat facts worth showing as step metadata (the history is an artifact)."""
        facts: dict[str, Any] = {
            "train_seconds": self.train_seconds,
            "global_step": self.global_step,
            "planned_steps": self.planned_steps,
            "world_size": self.world_size,
            "global_batch_size": self.global_batch_size,
            "gather_across_devices": self.gather_across_devices,
            "train_rows": self.train_rows,
            "train_loss": self.train_loss,
            "model_info": self.model_info.model_dump(exclude_none=True),
            "resume": self.resume.model_dump(exclude_none=True),
        }
        if self.emissions is not None:
            facts["emissions"] = self.emissions.model_dump(exclude_none=True)
        if self.checkpoints is not None:
            facts["checkpoints"] = self.checkpoints.model_dump(exclude_none=True)
        if self.speed is not None:
            facts["speed_levers"] = self.speed.active_levers()
        if self.lineage is not None:
            facts["base_model_version"] = self.lineage.model_dump(exclude_none=True)
        return {key: value for key, value in facts.items() if value is not None}


class Evaluation(_Result):
    """The base and the fine-tuned model scored by the same evaluators on the same rows,
    and the model currently in production when there is one (what promotion compares)."""

    primary_metric: str | None = None
    base: dict[str, float] = Field(default_factory=dict)
    finetuned: dict[str, float] = Field(default_factory=dict)
    improvement: dict[str, float] = Field(default_factory=dict)
    production: dict[str, float] | None = None
    production_model: str | None = None
    """Which version `production` scored (`version 7 of ZenML model 'x' (production)`)."""


class GateDecision(_Result):
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


def format_metric(value: float | None) -> str:
    """Metrics at 4 decimals, without trailing zeros (0.41, not 0.4100)."""
    return "n/a" if value is None else repr(round(value, 4))


class PushOutcome(_Result):
    """What the push stage did: the gate decision, and where the model landed if pushed."""

    pushed: bool
    gate: GateDecision
    reason: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    commit_url: str | None = None
    pr_url: str | None = None
    no_changes: bool | None = None


class Promotion(_Result):
    """Whether the run's model version became `production`, and why (not)."""

    promoted: bool
    reason: str
    model: str | None = None
    version: str | None = None
    stage: str | None = None
    previous_production_score: float | None = None
