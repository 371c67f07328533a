"""How a model was trained: resume, checkpoints, speed levers, emissions, search trials,
the base model's lineage, and the training summary that carries them all."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trainer.results.base import FrozenResult, Result


class ModelLineage(BaseModel):
    """The ZenML model version a base model was taken from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: str
    """As written in the config: `zenml:<model>@<version>`."""
    model_name: str
    version_name: str
    version_number: int
    stage: str | None
    """The version's stage when it was resolved (`production`, ...), if any."""
    artifact_id: str
    """The `model` artifact version the weights came from."""
    producer_run_id: str | None = None
    """The pipeline run that trained it."""

    def describe(self) -> str:
        """One line for logs and the model card: `version 7 of ZenML model 'x' (production)`."""
        version = self.version_name
        if version != str(self.version_number):
            version += f" (#{self.version_number})"
        stage = f" ({self.stage})" if self.stage else ""
        return f"version {version} of ZenML model {self.model_name!r}{stage}"


class LeverState(BaseModel):
    """Whether one speed lever was used in a run, and the reason or the setting."""

    model_config = ConfigDict(frozen=True)

    active: bool
    detail: str = ""


class TokenizeRecord(BaseModel):
    """One dataset's tokenize-once outcome: rows, cache file, and whether it was reused."""

    model_config = ConfigDict(frozen=True)

    split: str
    dataset: str | None
    rows: int
    cache_file: str | None
    reused: bool


class SpeedReport(BaseModel):
    """Which speed levers a run used, on which device: for run metadata and the model card."""

    model_config = ConfigDict(frozen=True)

    device: str
    levers: dict[str, LeverState]
    tokenized: list[TokenizeRecord] = Field(default_factory=list)

    def active_levers(self) -> list[str]:
        """Names of the levers that were on, in config order."""
        return [name for name, state in self.levers.items() if state.active]


class ResumeInfo(Result):
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


class CheckpointSummary(Result):
    """Where a training attempt kept its durable checkpoints and which steps it saved."""

    uri: str
    every_n_steps: int | None = None
    saved_steps: list[int] = Field(default_factory=list)
    finished: bool = False


class Emissions(Result):
    """Energy and CO2 of the training, as codecarbon measured them."""

    emissions_kg: float
    energy_consumed: float | None = None
    duration_s: float | None = None
    country_name: str | None = None
    cpu_model: str | None = None
    gpu_model: str | None = None


class ModelInfo(Result):
    """Facts about the trained model that the card shows without loading it again."""

    base_model: str | None = None
    embedding_dimension: int | None = None
    max_seq_length: int | None = None
    parameters: int | None = None


class BestModel(Result):
    """The checkpoint `load_best_model_at_end` ended the training with: its step and its
    score on `metric` (`eval_<evaluator>_<metric>`, or `eval_loss`)."""

    step: int
    metric: str
    score: float
    greater_is_better: bool = True


class TrainingSummary(Result):
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
    """Which speed levers the training used (`trainer.speed.levers`), on which device."""
    train_rows: dict[str, int] = Field(default_factory=dict)
    train_loss: float | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    emissions: Emissions | None = None
    model_info: ModelInfo = Field(default_factory=ModelInfo)
    resume: ResumeInfo = Field(default_factory=ResumeInfo)
    checkpoints: CheckpointSummary | None = None
    lineage: ModelLineage | None = None
    """The ZenML model version the base model was, for `zenml:<model>@<version>` bases."""
    best_model: BestModel | None = None
    """With `load_best_model_at_end`: the checkpoint the trained model's weights are from."""

    def last_logged_loss(self) -> tuple[int, float] | None:
        """(step, loss) of the last training-loss entry of the history: the loss of the
        run's last logging interval, unlike `train_loss`, the average over the run."""
        for row in reversed(self.history):
            loss, step = row.get("loss"), row.get("step")
            if isinstance(loss, int | float) and isinstance(step, int):
                return step, float(loss)
        return None

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
        if self.best_model is not None:
            facts["best_model"] = self.best_model.model_dump()
        return {key: value for key, value in facts.items() if value is not None}


class TrialRecord(FrozenResult):
    """One trial: its parameters, objective value (None unless it completed), state, time."""

    number: int
    params: dict[str, Any]
    score: float | None
    state: str
    seconds: float | None


class SearchResult(FrozenResult):
    """Every trial and the best one; `apply_best` turns it into the final run config."""

    metric: str
    direction: Literal["maximize", "minimize"]
    trials: list[TrialRecord]
    best_trial: int
    best_params: dict[str, Any]
    best_score: float
    seconds: float
