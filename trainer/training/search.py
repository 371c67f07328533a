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

This module holds no ZenML code; `SearchConfig` is imported by `trainer.config.run` (so this
module must not import `trainer.config.run` at import time).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.config import TRIAL_TRAINING_OVERRIDES, SearchConfig, is_loss_param, split_loss_param
from trainer.results import SearchResult, TrialRecord

if TYPE_CHECKING:
    import optuna
    from datasets import DatasetDict
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

    from trainer.config import RunConfig


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

    `load_base` gives each trial a fresh base model (default:
    `load_trainable_model(config.model)`, with its adapter when one is configured).
    A trial that fails with a RuntimeError (e.g. out of memory at a large batch) is
    recorded as FAIL and the search goes on; any other error stops it.
    """
    import optuna

    from trainer.evaluation import build_evaluators
    from trainer.models import load_trainable_model
    from trainer.training.losses import guide_loader
    from trainer.training.trainer import build_trainer, run_loss

    search = config.search
    if search is None:
        raise ValueError("the run config has no `search` block")
    evaluators = build_evaluators(config, eval_datasets)
    if not evaluators:
        raise ValueError(
            "search needs evaluators: configure evaluators, or give a dataset eval_size/eval_source"
        )
    trial_config = _trial_config(config, search)
    load_base = load_base or (lambda: load_trainable_model(config.model, seed=config.seed))
    trainer_ref: list[Any] = []
    guides = guide_loader()  # a GIST guide is loaded once for all trials

    def model_init(trial: optuna.Trial | None = None) -> SentenceTransformer:
        model = load_base()
        if trial is not None and trainer_ref and search.loss_keys():
            # The trainer swaps the new model into the loss it already has, but that loss
            # keeps the previous trial's parameters: rebuild it around the new model.
            trainer_ref[0].loss = run_loss(
                with_params(trial_config, search.suggest(trial)), model, load_guide=guides
            )
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
    assert best.value is not None  # a completed trial of a one-objective study has its value
    return SearchResult(
        metric=search.metric,
        direction=search.direction,
        trials=_records(study),
        best_trial=best.number,
        best_params=dict(best.params),
        best_score=float(best.value),
        seconds=round(elapsed, 2),
    )
