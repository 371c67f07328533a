"""The training run: base model, training arguments and `SentenceTransformerTrainer`.

A single dataset trains as a plain `Dataset` with one loss. Several datasets train as a
`DatasetDict` with a loss dict keyed by the same names: sentence-transformers then adds
the `dataset_name` column, batches never mix datasets (the multi-dataset batch sampler
picks which dataset each batch comes from) and each batch goes to its dataset's loss.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datasets import Dataset, DatasetDict

from trainer.config import RunConfig
from trainer.evaluation import build_evaluators
from trainer.models import finish_adapter, load_model, load_trainable_model
from trainer.results import BestModel, ModelInfo, TrainingSummary
from trainer.speed import prepare_fast_path, speed_report
from trainer.training.arguments import training_arguments
from trainer.training.distributed import Topology
from trainer.training.emissions import track_emissions
from trainer.training.losses import GuideLoader, build_loss, guide_loader

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from torch import nn
    from transformers import TrainerCallback


@dataclass(frozen=True)
class TrainedModel:
    """The fine-tuned model and the typed summary of how it was trained: what every way
    of training (in this process, under torchrun, as a TrainJob) returns."""

    model: SentenceTransformer
    summary: TrainingSummary


def run_loss(
    config: RunConfig, model: SentenceTransformer, *, load_guide: GuideLoader | None = None
) -> nn.Module | dict[str, nn.Module]:
    """The run's loss around `model`: one loss, or a dict keyed by dataset name when the run
    trains several datasets (what `SentenceTransformerTrainer(loss=...)` takes). Losses
    with a guide share one `load_guide` (default: a new loader for this call)."""
    gather = gathers_across_devices(config)
    guides = load_guide or guide_loader()
    losses = {
        name: build_loss(model, dataset.loss, gather_across_devices=gather, load_guide=guides)
        for name, dataset in config.datasets.items()
    }
    return losses if config.is_multi_dataset else next(iter(losses.values()))


def gathers_across_devices(config: RunConfig) -> bool:
    """Whether in-batch-negative losses share negatives across processes: as configured,
    else whenever several processes train."""
    configured = config.distributed.gather_across_devices
    return Topology.from_env().distributed if configured is None else configured


def _as_trainer_inputs(
    config: RunConfig, datasets: DatasetDict, model: SentenceTransformer | None
) -> tuple[Dataset | DatasetDict, Any]:
    """Datasets and losses; without a model (model_init), each loss is a factory the
    trainer calls with the model that model_init returns."""
    gather = gathers_across_devices(config)
    guides = guide_loader()  # one per trainer: every trial's loss shares the guide
    losses = {
        name: build_loss(
            model, config.datasets[name].loss, gather_across_devices=gather, load_guide=guides
        )
        if model is not None
        else functools.partial(
            build_loss,
            config=config.datasets[name].loss,
            gather_across_devices=gather,
            load_guide=guides,
        )
        for name in datasets
    }
    if config.is_multi_dataset:
        return datasets, losses
    (name,) = datasets
    return datasets[name], losses[name]


def build_trainer(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None = None,
    *,
    output_dir: str | Path,
    model: SentenceTransformer | None = None,
    callbacks: list[TrainerCallback] | None = None,
    model_init: Callable[..., SentenceTransformer] | None = None,
    evaluator: BaseEvaluator | list[BaseEvaluator] | None = None,
) -> SentenceTransformerTrainer:
    """The `SentenceTransformerTrainer` of a run: model, arguments, datasets and losses.

    Everything that trains (the run, hyperparameter search, benchmarks) builds its trainer
    here, so they all train the same way. `model_init` (hyperparameter search) replaces
    `model`: the trainer calls it for a fresh model per trial. `evaluator` makes
    `trainer.evaluate()` report the evaluators' metrics (`eval_<evaluator>_<metric>`).
    """
    # Here, not at the top: transformers' callbacks import torch, which the light stages
    # that import this package (load, card, push) never need.
    from transformers import PrinterCallback, ProgressCallback

    from trainer.logs import quiet_libraries
    from trainer.training.callbacks import LogFinalStep, TrainingProgressCallback

    quiet_libraries()  # sentence-transformers is imported now: its card's bar too

    missing = sorted(set(config.datasets) - set(train_datasets))
    if missing:
        raise ValueError(f"train datasets lack configured dataset(s): {', '.join(missing)}")
    if model is not None and model_init is not None:
        raise ValueError("build_trainer takes a model or a model_init, not both")
    if model_init is None:
        model = model if model is not None else load_trainable_model(config.model, seed=config.seed)
    train_input, loss = _as_trainer_inputs(config, train_datasets, model)
    eval_input: Dataset | DatasetDict | None = None
    if eval_datasets and config.training.get("eval_strategy", "no") != "no":
        # The trainer reports an eval loss per dataset, computed by that dataset's loss.
        eval_input = (
            eval_datasets if config.is_multi_dataset else next(iter(eval_datasets.values()))
        )
    # Fast path (trainer/speed/levers.py): speed levers per config.speed and device, datasets
    # tokenized once; the trainer is a SentenceTransformerTrainer that reads the token twins.
    # With model_init (a search) every trial has the same tokenizer: the base model's.
    tokenizing = model if model is not None else load_model(config.model)
    fast = prepare_fast_path(
        config,
        tokenizing,
        train_input,
        eval_input,
        make_arguments=lambda overrides: training_arguments(
            config, output_dir, overrides=overrides
        ),
    )
    trainer = fast.build_trainer(
        model=model,
        train_dataset=train_input,
        eval_dataset=eval_input,
        loss=loss,
        callbacks=callbacks,
        model_init=model_init,
        evaluator=evaluator,
    )
    # One readable progress line at a steady interval instead of a printed dict per log
    # (or a carriage-return bar): what step logs and `kubectl logs` show well.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if not any(isinstance(cb, TrainingProgressCallback) for cb in callbacks or []):
        trainer.add_callback(TrainingProgressCallback())
    trainer.add_callback(LogFinalStep())
    if config.model.adapter is not None and model is not None:
        _resume_adapted(trainer, model)
    return trainer


def _resume_adapted(trainer: SentenceTransformerTrainer, model: SentenceTransformer) -> None:
    """Checkpoints of an adapted model load into that model (base and adapter weights,
    strictly). The library's own loading rebuilds a plain model from the checkpoint
    folder, which has no place for the adapter's weights."""
    from trainer.models import load_checkpoint_weights

    def load(checkpoint: str, *_: object) -> None:
        load_checkpoint_weights(model, checkpoint)

    setattr(trainer, "_load_from_checkpoint", load)  # noqa: B010 (an instance override)


def train(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None = None,
    *,
    output_dir: str | Path,
    model: SentenceTransformer | None = None,
    callbacks: list[TrainerCallback] | None = None,
    resume_from: str | Path | None = None,
) -> TrainedModel:
    """Fine-tune the base model on the run's datasets.

    Local checkpoints go to `output_dir` every `checkpoints.every_n_steps`; `resume_from`
    is a local checkpoint folder to continue from (model, optimizer, scheduler, RNG
    states, global step and sampler position). Durable checkpoints and the decision
    whether to resume live in `trainer.stages.run`. With `training.eval_strategy` set, the run's
    evaluators also score the model during training (the metric-over-steps curve).
    """
    from trainer.training.progress_log import global_batch_size

    evaluating = eval_datasets and config.training.get("eval_strategy", "no") != "no"
    evaluators = build_evaluators(config, eval_datasets) if evaluating else []
    model = model if model is not None else load_trainable_model(config.model, seed=config.seed)
    config = with_best_model_metric(config, evaluators, model)
    trainer = build_trainer(
        config,
        train_datasets,
        eval_datasets,
        output_dir=output_dir,
        model=model,
        callbacks=callbacks,
        evaluator=evaluators or None,
    )
    started = time.perf_counter()
    with track_emissions() as emissions:
        output = trainer.train(
            resume_from_checkpoint=str(resume_from) if resume_from is not None else None
        )
    elapsed = time.perf_counter() - started
    history = list(trainer.state.log_history)
    final = next((row for row in reversed(history) if "train_loss" in row), {})
    model = trainer.model
    finish_adapter(model, config.model)
    summary = TrainingSummary(
        train_seconds=round(elapsed, 2),
        global_step=output.global_step,
        planned_steps=trainer.state.max_steps,
        world_size=trainer.args.world_size,
        global_batch_size=global_batch_size(trainer.args),
        gather_across_devices=gathers_across_devices(config) and trainer.args.world_size > 1,
        speed=speed_report(trainer),
        train_rows={
            name: len(ds) for name, ds in train_datasets.items() if isinstance(ds, Dataset)
        },
        train_loss=final.get("train_loss"),
        history=history,
        emissions=emissions.result,
        best_model=best_model(trainer),
        model_info=ModelInfo(
            base_model=config.model.name_or_path,
            embedding_dimension=model.get_embedding_dimension(),
            max_seq_length=model.max_seq_length,
            parameters=sum(p.numel() for p in model.parameters()),
        ),
    )
    return TrainedModel(model=model, summary=summary)


def with_best_model_metric(
    config: RunConfig, evaluators: list[BaseEvaluator], model: SentenceTransformer
) -> RunConfig:
    """`config` with `metric_for_best_model` defaulted, for `load_best_model_at_end`: the
    gate's metric (`gate.metric`, else the first evaluator's primary metric), so the model
    kept is the best by the measure that decides its release; transformers' own default,
    the evaluation loss, stays when there is no evaluator or the config names a metric."""
    from trainer.evaluation import DEFAULT_SIMILARITY, primary_metric_name

    training = config.training
    if not training.get("load_best_model_at_end") or "metric_for_best_model" in training:
        return config
    if not evaluators:
        return config
    try:
        metric = config.gate.metric or primary_metric_name(
            evaluators[0], model.similarity_fn_name or DEFAULT_SIMILARITY
        )
    except TypeError:  # an evaluator whose names are known only once it ran (NanoBEIR)
        metric = None
    if metric is None:
        return config
    return config.model_copy(update={"training": {**training, "metric_for_best_model": metric}})


def best_model(trainer: SentenceTransformerTrainer) -> BestModel | None:
    """Which checkpoint `load_best_model_at_end` loaded, by the metric it compared."""
    args, state = trainer.args, trainer.state
    if not args.load_best_model_at_end or not state.best_global_step or state.best_metric is None:
        return None
    metric = args.metric_for_best_model or "loss"
    return BestModel(
        step=state.best_global_step,
        metric=metric if metric.startswith("eval_") else f"eval_{metric}",
        score=float(state.best_metric),
        greater_is_better=bool(args.greater_is_better),
    )
