"""Hyperparameter search: the config's `search` block, run through the trainer's own
`hyperparameter_search` (Optuna backend), and the config the final training then uses.

The space is keyed by where a value lives in the run config, so a trial's parameters
apply to the config the same way a user would write them:

- a `SentenceTransformerTrainingArguments` field (`learning_rate`, `per_device_train_batch_size`,
  `warmup_steps` (below 1: a fraction of the steps), `num_train_epochs`, `weight_decay`, ...);
- `datasets.<name>.loss.params.<param>` for a loss parameter (`...loss.params.scale`).

Each trial starts from a fresh base model (`model_init`) and, because sentence-transformers
builds a loss once around the model it is given, the trial's loss is rebuilt around that
model with the trial's loss parameters. The objective is one evaluator metric on the
held-out split (`trainer.evaluate()` with the run's evaluators).

This module holds no ZenML code; `SearchConfig` is imported by `trainer.config` (so this
module must not import `trainer.config` at import time).
"""

from __future__ import annotations

import inspect
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    import optuna
    from datasets import DatasetDict
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

    from trainer.config import RunConfig

LOSS_PARAM_PREFIX = "datasets."
LOSS_PARAM_INFIX = ".loss.params."

TRIAL_TRAINING_OVERRIDES: dict[str, Any] = {
    "report_to": "none",
    "load_best_model_at_end": False,
    "push_to_hub": False,
}
"""What every trial trains with whatever the run says: trials report to no tracker (each
trial would overwrite the run's parameters there; the search result records the trials
instead) and, through `checkpoints.every_n_steps: null`, keep no checkpoints."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
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


class SearchConfig(_Strict):
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
        training_argument_names: frozenset[str],
        managed_arguments: frozenset[str],
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
    from sentence_transformers.sentence_transformer import losses

    signature = inspect.signature(getattr(losses, loss_name).__init__)
    return [name for name in signature.parameters if name not in ("self", "model")]


class TrialRecord(_Strict):
    """One trial: its parameters, objective value (None unless it completed), state, time."""

    number: int
    params: dict[str, Any]
    score: float | None
    state: str
    seconds: float | None


class SearchResult(_Strict):
    """Every trial and the best one; `apply_best` turns it into the final run config."""

    metric: str
    direction: Literal["maximize", "minimize"]
    trials: list[TrialRecord]
    best_trial: int
    best_params: dict[str, Any]
    best_score: float
    seconds: float


def with_params(config: RunConfig, params: dict[str, Any]) -> RunConfig:
    """`config` with training arguments and loss parameters replaced by `params`."""
    training = {**config.training, **{k: v for k, v in params.items() if not is_loss_param(k)}}
    datasets = dict(config.datasets)
    for key, value in params.items():
        if not is_loss_param(key):
            continue
        name, param = split_loss_param(key)
        loss = datasets[name].loss
        loss = loss.model_copy(update={"params": {**loss.params, param: value}})
        datasets[name] = datasets[name].model_copy(update={"loss": loss})
    # Validate again: the result must be a config a user could have written.
    return type(config).model_validate(
        {**config.model_dump(), "training": training, "datasets": datasets}
    )


def apply_best(config: RunConfig, result: SearchResult) -> RunConfig:
    """The config the final training uses: the best trial's parameters, `search` cleared.

    `search` is cleared so that this config, wherever it travels next (training step, a
    resumed run, the KFP path), trains once and never searches again; the search itself
    is on record in the `SearchResult` artifact, which the model card cites.
    """
    best = with_params(config, result.best_params)
    return best.model_copy(update={"search": None})


def _trial_config(config: RunConfig, search: SearchConfig) -> RunConfig:
    """The config every trial starts from: typed seed values, no checkpoints or reporting."""
    seeded = with_params(config, search.seed_values())
    training = {**seeded.training, **TRIAL_TRAINING_OVERRIDES}
    checkpoints = seeded.checkpoints.model_copy(update={"every_n_steps": None})
    return seeded.model_copy(update={"training": training, "checkpoints": checkpoints})


def _capped(datasets: DatasetDict, max_samples: int | None, seed: int) -> DatasetDict:
    from datasets import DatasetDict

    if max_samples is None:
        return datasets
    return DatasetDict(
        {
            name: rows.shuffle(seed=seed).select(range(max_samples))
            if len(rows) > max_samples
            else rows
            for name, rows in datasets.items()
        }
    )


def _objective(metric: str) -> Callable[[dict[str, float]], float]:
    key = f"eval_{metric}"

    def compute_objective(metrics: dict[str, float]) -> float:
        if key not in metrics:
            known = ", ".join(sorted(k.removeprefix("eval_") for k in metrics))
            raise KeyError(
                f"search.metric {metric!r} was not reported; the evaluators report: {known}"
            )
        return float(metrics[key])

    return compute_objective


def _records(study: optuna.Study) -> list[TrialRecord]:
    records = []
    for trial in study.trials:
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else None
        )
        records.append(
            TrialRecord(
                number=trial.number,
                params=dict(trial.params),
                score=trial.value,
                state=trial.state.name,
                seconds=None if seconds is None else round(seconds, 2),
            )
        )
    return records


def run_search(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict,
    *,
    output_dir: str | Path | None = None,
    callbacks: list[TrainerCallback] | None = None,
    load_base: Callable[[], SentenceTransformer] | None = None,
) -> SearchResult:
    """Run `config.search` with `SentenceTransformerTrainer.hyperparameter_search`.

    `load_base` gives each trial a fresh base model (default: `load_model(config.model)`).
    A trial that fails with a RuntimeError (e.g. out of memory at a large batch) is
    recorded as FAIL and the search goes on; any other error stops it.
    """
    import optuna

    from trainer.evaluation import build_evaluators
    from trainer.training import build_trainer, load_model, run_loss

    search = config.search
    if search is None:
        raise ValueError("the run config has no `search` block")
    evaluators = build_evaluators(config, eval_datasets)
    if not evaluators:
        raise ValueError(
            "search needs evaluators: configure evaluators, or give a dataset eval_size/eval_source"
        )
    trial_config = _trial_config(config, search)
    load_base = load_base or (lambda: load_model(config.model))
    trainer_ref: list[Any] = []

    def model_init(trial: optuna.Trial | None = None) -> SentenceTransformer:
        model = load_base()
        if trial is not None and trainer_ref and search.loss_keys():
            # The trainer swaps the new model into the loss it already has, but that loss
            # keeps the previous trial's parameters: rebuild it around the new model.
            trainer_ref[0].loss = run_loss(with_params(trial_config, search.suggest(trial)), model)
        return model

    def hp_space(trial: optuna.Trial) -> dict[str, Any]:
        # Only training arguments go to the trainer; loss parameters are applied above.
        return {k: v for k, v in search.suggest(trial).items() if not is_loss_param(k)}

    with tempfile.TemporaryDirectory(prefix="search-") as scratch:
        trainer = build_trainer(
            trial_config,
            _capped(train_datasets, search.max_samples, config.seed),
            output_dir=output_dir or scratch,
            model_init=model_init,
            evaluator=evaluators,
            callbacks=callbacks,
        )
        trainer_ref.append(trainer)
        storage = optuna.storages.InMemoryStorage()
        started = time.perf_counter()
        trainer.hyperparameter_search(
            hp_space=hp_space,
            compute_objective=_objective(search.metric),
            n_trials=search.n_trials,
            direction=search.direction,
            backend="optuna",
            sampler=optuna.samplers.TPESampler(seed=search.seed),
            storage=storage,
            study_name="search",
            catch=(RuntimeError,),
        )
        elapsed = time.perf_counter() - started
    study = optuna.load_study(study_name="search", storage=storage)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise RuntimeError(
            f"no trial completed: {[t.state.name for t in study.trials]} (see the trial errors above)"
        )
    best = study.best_trial
    return SearchResult(
        metric=search.metric,
        direction=search.direction,
        trials=_records(study),
        best_trial=best.number,
        best_params=dict(best.params),
        best_score=float(best.value),
        seconds=round(elapsed, 2),
    )
