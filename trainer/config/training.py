"""How training runs: durable checkpoints, the speed levers and hyperparameter search."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from trainer.catalog import library_facts
from trainer.config.base import StrictModel

if TYPE_CHECKING:
    import optuna


RESUME_AUTO = "auto"

RESUME_NEVER = "never"


class LeaseConfig(StrictModel):
    """One run at a time per checkpoint series: the holder rewrites its lease every
    `heartbeat_s` seconds; a lease without a heartbeat for `timeout_s` has expired and
    another run may take the series over."""

    heartbeat_s: float = Field(default=30.0, gt=0)
    timeout_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _timeout_spans_heartbeats(self) -> LeaseConfig:
        if self.timeout_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s:g}) must be at least twice heartbeat_s "
                f"({self.heartbeat_s:g}), or one late heartbeat would let another run take "
                "over a live training"
            )
        return self


class CheckpointConfig(StrictModel):
    """Where training saves its progress, and whether a new attempt continues from it.

    `uri` is a local path, a mounted volume or any fsspec URL (`s3://...`, `gs://...`);
    left empty, the orchestrator puts the series in its artifact store, under a folder
    named after the pipeline, the model and a digest of everything that shapes the
    training (model, data, losses, training arguments, seed), so a retried step or a
    re-run of the same config finds it and a changed config never does. `resume`: `auto`
    continues from the newest complete checkpoint of an unfinished series, `never`
    starts afresh (and clears the series), anything else names a checkpoint folder: one
    of ours, or any Trainer's `checkpoint-<step>/` (read only: it is copied, never
    changed). The store only ever writes where it created the series (`SERIES.json`):
    a non-empty folder it did not create is refused. A series belongs to one training:
    an unfinished series of a different digest is refused, naming the keys that differ.
    `lease`: one run at a time per series.
    """

    uri: str | None = None
    every_n_steps: int | None = Field(default=500, gt=0)
    keep: int = Field(default=2, ge=1)
    resume: str = RESUME_AUTO
    lease: LeaseConfig = Field(default_factory=LeaseConfig)

    @field_validator("resume")
    @classmethod
    def _resume_target(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("use 'auto', 'never' or the path/URI of a checkpoint folder")
        return value


REMOVED_SPEED_LEVERS = ("length_grouping", "length_grouping_batches")
"""`speed` settings of a lever that is gone; a config that still sets one fails, saying why."""

_WHY_REMOVED = (
    "the length_grouping lever was removed: measured on an NVIDIA H200 it made training "
    "slower (MiniLM-L6 2.49x vs 3.07x the speed of plain sentence-transformers without it, "
    "BERT-base 1.96x vs 2.10x; benchmarks/results/gpu_h200_train_throughput.json), and it "
    "was never shown to help on CPU; delete the setting"
)


class SpeedConfig(StrictModel):
    """How a run trains fast without changing what it learns; every lever can be switched off.

    `tokenize_once` and `hashed_duplicates` are exact: the same batches reach the same
    losses with the same token ids as in plain sentence-transformers, so they are on
    everywhere. The GPU levers (`bf16`, `tf32`,
    `sdpa`, `fused_adamw`, `dataloader_workers` + `pin_memory`, `compile`) apply only when a
    CUDA device trains and the `training` block does not set the same argument itself, so a
    CPU run trains exactly like plain sentence-transformers. `compile` changes kernels: it
    stays off until `benchmarks/train_throughput.py` shows a win that keeps the metric.
    """

    tokenize_once: bool = True
    cache_dir: str | None = None
    """Where tokenized datasets are cached (default: `<HF_DATASETS_CACHE>/tokenized`)."""
    cache: bool = True
    hashed_duplicates: bool = True
    """`no_duplicates` compares 64-bit hashes of the texts, computed once, not the texts."""
    bf16: bool = True
    tf32: bool = True
    sdpa: bool = True
    fused_adamw: bool = True
    dataloader_workers: int = Field(default=2, ge=0)
    pin_memory: bool = True
    compile: bool = False
    pad_to_multiple_of: int | None = Field(default=None, gt=0)
    """Pad each batch to a multiple of this many tokens (GPU only; 64 when `compile` is on)."""

    @model_validator(mode="before")
    @classmethod
    def _no_removed_levers(cls, data: Any) -> Any:
        removed = [name for name in REMOVED_SPEED_LEVERS if isinstance(data, dict) and name in data]
        if removed:
            raise ValueError(f"{', '.join(f'speed.{name}' for name in removed)}: {_WHY_REMOVED}")
        return data

    @model_validator(mode="after")
    def _padding_needs_our_collator(self) -> SpeedConfig:
        if not self.tokenize_once and self.pad_to_multiple_of:
            raise ValueError(
                "speed.pad_to_multiple_of works on pre-tokenized batches: set "
                "speed.tokenize_once: true or switch it off"
            )
        return self


# Arguments the run sets itself from other parts of the config.
MANAGED_ARGUMENTS: dict[str, str] = {
    "prompts": "datasets.<name>.prompt",
    "output_dir": "checkpoints.uri and output.dir",
    "save_strategy": "checkpoints.every_n_steps",
    "save_steps": "checkpoints.every_n_steps",
    "save_total_limit": "checkpoints.keep",
    "resume_from_checkpoint": "checkpoints.resume",
}


HUB_MANAGED_MESSAGE = (
    "the Trainer would reach the Hugging Face Hub with it, before any evaluation or gate "
    "(push_to_hub creates the repo when training starts and pushes checkpoints); publishing "
    "is managed by the hub: block (hub.enabled, hub.repo_id, hub.private, hub.revision, the "
    "token from the secret hub.secret_name), which pushes only a model that passed the gate: "
    "remove it from training"
)


def is_hub_argument(name: str) -> bool:
    """A training argument the Trainer uses to reach the Hub: `push_to_hub*`, `hub_*`."""
    return name.startswith(("hub_", "push_to_hub"))


LOSS_PARAM_PREFIX = "datasets."

LOSS_PARAM_INFIX = ".loss.params."

TRIAL_TRAINING_OVERRIDES: dict[str, Any] = {
    "report_to": "none",
    "load_best_model_at_end": False,
}
"""What every trial trains with whatever the run says: trials report to no tracker (each
trial would overwrite the run's parameters there; the search result records the trials
instead) and, through `checkpoints.every_n_steps: null`, keep no checkpoints. Like every
training, they never push (`push_to_hub` is refused in `training` and forced off by the run)."""


class Range(StrictModel):
    """A numeric interval: integers when both bounds are integers, else floats.

    `log: true` samples log-uniformly (learning rates); `step` quantises the values.
    """

    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("log: true needs a positive low bound")
        if self.log and self.step is not None:
            raise ValueError("give either log or step, not both")
        return self

    @property
    def is_int(self) -> bool:
        return all(isinstance(v, int) for v in (self.low, self.high, self.step or 1))


Choices = list[int | float | str | bool]

Dimension = Range | Choices


class SearchConfig(StrictModel):
    """The `search:` block: what to vary, how many trials, which metric to maximise.

    `metric` is an evaluator metric key as the evaluation reports it
    (`<evaluator name>_<metric>`, e.g. `stdlib-docs-ir_cosine_ndcg@10`). `max_samples`
    caps each training dataset per trial (shuffled with the run seed) to keep trials
    cheap; the held-out split stays whole so every trial is scored on the same rows.
    """

    space: dict[str, Dimension]
    n_trials: int = Field(default=10, gt=0)
    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"
    seed: int = 42
    max_samples: int | None = Field(default=None, gt=0)

    @field_validator("space")
    @classmethod
    def _dimensions_well_formed(cls, value: dict[str, Dimension]) -> dict[str, Dimension]:
        if not value:
            raise ValueError("search.space is empty: name at least one parameter to vary")
        for key, dimension in value.items():
            if isinstance(dimension, list) and not dimension:
                raise ValueError(f"search.space.{key}: an empty list of choices")
        return value

    @field_validator("metric")
    @classmethod
    def _metric_shape(cls, value: str) -> str:
        if "_" not in value.strip("_") or value.startswith("eval_"):
            raise ValueError(
                f"metric {value!r} must be an evaluator metric key '<evaluator name>_<metric>' "
                "such as 'stdlib-docs-ir_cosine_ndcg@10' (without the trainer's 'eval_' prefix)"
            )
        return value

    def training_keys(self) -> list[str]:
        return [key for key in self.space if not is_loss_param(key)]

    def loss_keys(self) -> list[str]:
        return [key for key in self.space if is_loss_param(key)]

    def check_against(
        self,
        dataset_losses: dict[str, str],
        evaluator_names: list[str],
        training_argument_names: Collection[str],
        managed_arguments: Collection[str],
    ) -> None:
        """Validate the space and the metric against the run config (called by RunConfig)."""
        for key in self.training_keys():
            if key not in training_argument_names:
                raise ValueError(
                    f"search.space.{key}: not a SentenceTransformerTrainingArguments field, nor "
                    "'datasets.<name>.loss.params.<param>'"
                )
            if key in managed_arguments or key in TRIAL_TRAINING_OVERRIDES:
                raise ValueError(f"search.space.{key}: set by the run itself, cannot be searched")
        for key in self.loss_keys():
            dataset, param = split_loss_param(key)
            if dataset not in dataset_losses:
                raise ValueError(
                    f"search.space.{key}: no dataset {dataset!r}; datasets: "
                    f"{', '.join(dataset_losses)}"
                )
            accepted = loss_parameters(dataset_losses[dataset])
            if param not in accepted:
                raise ValueError(
                    f"search.space.{key}: {dataset_losses[dataset]} has no parameter {param!r}; "
                    f"its parameters: {', '.join(accepted)}"
                )
        if not any(self.metric.startswith(f"{name}_") for name in evaluator_names):
            raise ValueError(
                f"search.metric {self.metric!r} names no evaluator of this run; metric keys "
                f"start with one of: {', '.join(f'{name}_' for name in evaluator_names)}"
            )

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's value for every dimension (Optuna returns the same value when asked
        twice for one name, so calling this from `model_init` and `hp_space` is safe)."""
        params: dict[str, Any] = {}
        for key, dimension in self.space.items():
            if isinstance(dimension, list):
                params[key] = trial.suggest_categorical(key, dimension)
            elif dimension.is_int:
                params[key] = trial.suggest_int(
                    key, int(dimension.low), int(dimension.high), step=int(dimension.step or 1),
                    log=dimension.log,
                )  # fmt: skip
            else:
                params[key] = trial.suggest_float(
                    key, float(dimension.low), float(dimension.high), step=dimension.step,
                    log=dimension.log,
                )  # fmt: skip
        return params

    def seed_values(self) -> dict[str, Any]:
        """One value of the right type per dimension (the trainer casts each trial's value
        to the type the argument already has, so an int `warmup_steps` would truncate a
        searched fraction to 0)."""
        return {
            key: dimension[0] if isinstance(dimension, list) else dimension.low
            for key, dimension in self.space.items()
        }


def is_loss_param(key: str) -> bool:
    return key.startswith(LOSS_PARAM_PREFIX) and LOSS_PARAM_INFIX in key


def split_loss_param(key: str) -> tuple[str, str]:
    """`datasets.<name>.loss.params.<param>` -> (name, param)."""
    dataset, _, param = key[len(LOSS_PARAM_PREFIX) :].partition(LOSS_PARAM_INFIX)
    return dataset, param


def loss_parameters(loss_name: str) -> list[str]:
    """Keyword parameters of a sentence-transformers loss class (besides the model)."""
    return [name for name in library_facts().losses[loss_name] if name != "model"]
