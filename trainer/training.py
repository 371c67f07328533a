"""The training run: base model, training arguments and `SentenceTransformerTrainer`.

A single dataset trains as a plain `Dataset` with one loss. Several datasets train as a
`DatasetDict` with a loss dict keyed by the same names: sentence-transformers then adds
the `dataset_name` column, batches never mix datasets (the multi-dataset batch sampler
picks which dataset each batch comes from) and each batch goes to its dataset's loss.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datasets import Dataset, DatasetDict

from trainer.config import PACKAGE_PREFIX, ModelConfig, RunConfig, parse_zenml_model_ref
from trainer.distributed import Topology, ddp_arguments, visible_gpus
from trainer.emissions import track_emissions
from trainer.losses import build_loss
from trainer.problems import Problem, raise_problems
from trainer.results import Emissions, ModelInfo, SpeedReport, TrainingSummary

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )
    from torch import nn
    from transformers import TrainerCallback

DEFAULT_TRAINING_ARGUMENTS: dict[str, Any] = {
    "num_train_epochs": 1,
    "per_device_train_batch_size": 16,
    "learning_rate": 2e-5,
    "warmup_steps": 0.1,
    "batch_sampler": "no_duplicates",
    "logging_steps": 10,
    "report_to": "none",
    "disable_tqdm": True,
}
"""What a run uses unless `training` says otherwise; `no_duplicates` keeps in-batch
negatives honest for ranking losses."""

IN_BATCH_NEGATIVES_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 32,
    "learning_rate": 5e-5,
}
"""Defaults when every dataset trains an in-batch-negatives loss (MultipleNegativesRanking
and its symmetric variant). Chosen by measurement on held-out data that is not the
quickstart's (`benchmarks/defaults.py`, `data/library_docs`, all-MiniLM-L6-v2, 1 epoch):
NDCG@10 0.5672 -> 0.6247 with batch 32 / lr 5e-5, against 0.6162 with the generic 16 /
2e-5 and 0.6238 with 32 / 1e-4."""

CACHED_DEFAULTS: dict[str, Any] = {"per_device_train_batch_size": 128, "learning_rate": 1e-4}
"""Defaults when every dataset trains a cached (GradCache) in-batch-negatives loss: a large
batch at bounded memory is the point of it (NDCG@10 0.6261 with 128 / 1e-4 in the same
measurement)."""


def loss_family_defaults(config: RunConfig) -> dict[str, Any]:
    """Batch size and learning rate chosen for the run's losses, when all datasets share a
    measured family; nothing (the generic defaults) for other losses or mixed runs."""
    from trainer.losses import CACHED_VARIANTS

    losses = [dataset.loss for dataset in config.datasets.values()]
    if not all(loss.name in CACHED_VARIANTS for loss in losses):
        return {}
    if all(loss.cached for loss in losses):
        return dict(CACHED_DEFAULTS)
    if not any(loss.cached for loss in losses):
        return dict(IN_BATCH_NEGATIVES_DEFAULTS)
    return {}


def resolve_model_path(name_or_path: str) -> str:
    """`package:<module>` -> the weights directory that package ships; anything else as is."""
    if parse_zenml_model_ref(name_or_path) is not None:
        raise ValueError(
            f"model.name_or_path {name_or_path!r} is a ZenML model version: the pipeline "
            "resolves it to a local folder before training (steps/_models.py)"
        )
    if not name_or_path.startswith(PACKAGE_PREFIX):
        return name_or_path
    module_name = name_or_path[len(PACKAGE_PREFIX) :]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"model.name_or_path {name_or_path!r}: package {module_name!r} is not installed"
        ) from error
    if hasattr(module, "get_model_path"):
        return str(module.get_model_path())
    candidate = Path(module.__file__).parent / "model"
    if not candidate.is_dir():
        raise ValueError(
            f"model.name_or_path {name_or_path!r}: package has no get_model_path() or model/ dir"
        )
    return str(candidate)


_MODEL_FILES = ("modules.json", "config.json")
"""A sentence-transformers folder has modules.json; a plain transformers one config.json."""


def model_source_problems(config: ModelConfig) -> list[Problem]:
    """Why `model.name_or_path` cannot be loaded, found without loading it.

    A local directory must exist and hold a model; a name that cannot be a Hub id
    (`./models/x`, `/abs/path`, `a/b/c`) is taken for a local path that does not exist;
    with `HF_HUB_OFFLINE` set, a Hub id must already be in the local Hugging Face cache.
    """
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    field = "model.name_or_path"
    name = config.name_or_path
    try:
        path = Path(resolve_model_path(name)).expanduser()
    except ValueError as error:
        return [Problem(field=field, message=str(error).removeprefix(f"{field} "))]
    if path.is_dir():
        if not any((path / marker).is_file() for marker in _MODEL_FILES):
            return [
                Problem(
                    field=field,
                    message=f"directory {name!r} holds no model (no modules.json or "
                    "config.json); point it at a folder saved by SentenceTransformer.save",
                )
            ]
        return []
    if path.exists():
        return [Problem(field=field, message=f"{name!r} is a file; name a model directory")]
    try:
        validate_repo_id(name)
    except HFValidationError:
        return [
            Problem(
                field=field,
                message=f"local model directory {name!r} does not exist (and it is not a "
                "Hub id); check the path, relative paths start from the working directory",
            )
        ]
    if constants.HF_HUB_OFFLINE:
        cached = any(
            isinstance(try_to_load_from_cache(name, marker, revision=config.revision), str)
            for marker in _MODEL_FILES
        )
        if not cached:
            return [
                Problem(
                    field=field,
                    message=f"Hub model {name!r} is not in the local Hugging Face cache and "
                    "HF_HUB_OFFLINE is set; download it first or name a local directory",
                )
            ]
    return []


def load_model(config: ModelConfig, device: str | None = None) -> SentenceTransformer:
    """Load the base model; card metadata stays offline (`local_files_only`)."""
    from sentence_transformers import SentenceTransformer

    raise_problems(model_source_problems(config))
    from sentence_transformers.sentence_transformer.model_card import (
        SentenceTransformerModelCardData,
    )

    model = SentenceTransformer(
        resolve_model_path(config.name_or_path),
        revision=config.revision,
        trust_remote_code=config.trust_remote_code,
        device=device,
        model_card_data=SentenceTransformerModelCardData(
            local_files_only=True, generate_widget_examples=False
        ),
    )
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    return model


def effective_training_arguments(config: RunConfig) -> dict[str, Any]:
    """Defaults (generic, then those of the run's loss family), then the run seed, then the
    config's `training` block (what the card shows).

    A `warmup_ratio` from the config replaces the default `warmup_steps` (which takes
    fractions in transformers 5): with both set, sentence-transformers would silently
    ignore the ratio.
    """
    arguments = {
        **DEFAULT_TRAINING_ARGUMENTS,
        **loss_family_defaults(config),
        "seed": config.seed,
        **config.training,
    }
    if "warmup_ratio" in config.training and "warmup_steps" not in config.training:
        arguments["warmup_steps"] = arguments.pop("warmup_ratio")
    return arguments


def training_argument_values(config: RunConfig) -> dict[str, Any]:
    """The effective arguments plus what the run sets itself: prompts, and checkpoints
    every `checkpoints.every_n_steps` (into the local staging folder; the durable copies
    are `trainer.checkpoints`' job, so one local checkpoint is enough). Everything but
    `output_dir`, so a check can construct exactly what training will."""
    arguments = effective_training_arguments(config)
    prompts = {name: ds.prompt for name, ds in config.datasets.items() if ds.prompt is not None}
    if prompts:
        arguments["prompts"] = prompts if config.is_multi_dataset else next(iter(prompts.values()))
    every = config.checkpoints.every_n_steps
    arguments.update(
        save_strategy="steps" if every else "no",
        save_steps=every or 500,
        save_total_limit=1,
    )
    if Topology.from_env().distributed:
        # Under torchrun: gloo on the CPU, NCCL on GPUs, unless the config says otherwise.
        for key, value in ddp_arguments(config.distributed, visible_gpus()).items():
            arguments.setdefault(key, value)
    return arguments


def training_arguments(
    config: RunConfig, output_dir: str | Path, *, overrides: Mapping[str, Any] | None = None
) -> SentenceTransformerTrainingArguments:
    """The `SentenceTransformerTrainingArguments` of a run, writing into `output_dir`.

    `overrides` are the fast path's device-dependent arguments (`trainer.fast_path`), which
    it only proposes for arguments the `training` block leaves unset.
    """
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir), **{**training_argument_values(config), **(overrides or {})}
    )


@dataclass
class TrainingResult:
    """The fine-tuned model and what happened while training it."""

    model: SentenceTransformer
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    global_step: int = 0
    planned_steps: int | None = None
    world_size: int = 1
    global_batch_size: int | None = None
    gather_across_devices: bool = False
    speed: SpeedReport | None = None
    train_rows: dict[str, int] = field(default_factory=dict)
    emissions: dict[str, Any] = field(default_factory=dict)
    base_model: str | None = None

    def model_info(self) -> ModelInfo:
        """Facts about the trained model that the card shows without loading it again."""
        return ModelInfo(
            base_model=self.base_model,
            embedding_dimension=self.model.get_embedding_dimension(),
            max_seq_length=self.model.max_seq_length,
            parameters=sum(p.numel() for p in self.model.parameters()),
        )

    def summary(self, **extra: Any) -> TrainingSummary:
        """The typed training facts for metadata, later stages and the card; `extra`
        fills the run-level fields (resume, checkpoints)."""
        final = next((row for row in reversed(self.history) if "train_loss" in row), {})
        return TrainingSummary(
            train_seconds=round(self.train_seconds, 2),
            global_step=self.global_step,
            planned_steps=self.planned_steps,
            world_size=self.world_size,
            global_batch_size=self.global_batch_size,
            gather_across_devices=self.gather_across_devices,
            speed=self.speed,
            train_rows=self.train_rows,
            train_loss=final.get("train_loss"),
            history=self.history,
            emissions=Emissions(**self.emissions) if self.emissions else None,
            model_info=self.model_info(),
            **extra,
        )


def run_loss(config: RunConfig, model: SentenceTransformer) -> nn.Module | dict[str, nn.Module]:
    """The run's loss around `model`: one loss, or a dict keyed by dataset name when the run
    trains several datasets (what `SentenceTransformerTrainer(loss=...)` takes)."""
    gather = gathers_across_devices(config)
    losses = {
        name: build_loss(model, dataset.loss, gather_across_devices=gather)
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
    losses = {
        name: build_loss(model, config.datasets[name].loss, gather_across_devices=gather)
        if model is not None
        else functools.partial(
            build_loss, config=config.datasets[name].loss, gather_across_devices=gather
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
    from transformers import PrinterCallback, ProgressCallback

    from trainer.fast_path import prepare_fast_path
    from trainer.progress import TrainingProgressCallback

    missing = sorted(set(config.datasets) - set(train_datasets))
    if missing:
        raise ValueError(f"train datasets lack configured dataset(s): {', '.join(missing)}")
    if model is not None and model_init is not None:
        raise ValueError("build_trainer takes a model or a model_init, not both")
    if model_init is None:
        model = model if model is not None else load_model(config.model)
    train_input, loss = _as_trainer_inputs(config, train_datasets, model)
    eval_input: Dataset | DatasetDict | None = None
    if eval_datasets and config.training.get("eval_strategy", "no") != "no":
        # The trainer reports an eval loss per dataset, computed by that dataset's loss.
        eval_input = (
            eval_datasets if config.is_multi_dataset else next(iter(eval_datasets.values()))
        )
    # Fast path (trainer/fast_path.py): speed levers per config.speed and device, datasets
    # tokenized once; the trainer is a SentenceTransformerTrainer that reads the token twins.
    # With model_init (a search) every trial has the same tokenizer: the base model's.
    tokenizing = model if model is not None else load_model(config.model)
    fast = prepare_fast_path(config, tokenizing, train_input, eval_input, output_dir=output_dir)
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
    return trainer


def train(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None = None,
    *,
    output_dir: str | Path,
    model: SentenceTransformer | None = None,
    callbacks: list[TrainerCallback] | None = None,
    resume_from: str | Path | None = None,
) -> TrainingResult:
    """Fine-tune the base model on the run's datasets.

    Local checkpoints go to `output_dir` every `checkpoints.every_n_steps`; `resume_from`
    is a local checkpoint folder to continue from (model, optimizer, scheduler, RNG
    states, global step and sampler position). Durable checkpoints and the decision
    whether to resume live in `trainer.run`. With `training.eval_strategy` set, the run's
    evaluators also score the model during training (the metric-over-steps curve).
    """
    from trainer.evaluation import build_evaluators
    from trainer.fast_path import speed_report
    from trainer.progress import global_batch_size

    evaluating = eval_datasets and config.training.get("eval_strategy", "no") != "no"
    trainer = build_trainer(
        config,
        train_datasets,
        eval_datasets,
        output_dir=output_dir,
        model=model,
        callbacks=callbacks,
        evaluator=build_evaluators(config, eval_datasets) or None if evaluating else None,
    )
    started = time.perf_counter()
    with track_emissions() as emissions:
        output = trainer.train(
            resume_from_checkpoint=str(resume_from) if resume_from is not None else None
        )
    elapsed = time.perf_counter() - started
    return TrainingResult(
        model=trainer.model,
        history=list(trainer.state.log_history),
        train_seconds=elapsed,
        global_step=output.global_step,
        planned_steps=trainer.state.max_steps,
        world_size=trainer.args.world_size,
        global_batch_size=global_batch_size(trainer.args),
        gather_across_devices=gathers_across_devices(config) and trainer.args.world_size > 1,
        speed=speed_report(trainer),
        train_rows={name: len(ds) for name, ds in train_datasets.items()},
        emissions=emissions,
        base_model=config.model.name_or_path,
    )
