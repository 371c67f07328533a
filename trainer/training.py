"""The training run: base model, training arguments and `SentenceTransformerTrainer`.

A single dataset trains as a plain `Dataset` with one loss. Several datasets train as a
`DatasetDict` with a loss dict keyed by the same names: sentence-transformers then adds
the `dataset_name` column, batches never mix datasets (the multi-dataset batch sampler
picks which dataset each batch comes from) and each batch goes to its dataset's loss.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datasets import Dataset, DatasetDict

from trainer.config import PACKAGE_PREFIX, ModelConfig, RunConfig
from trainer.emissions import track_emissions
from trainer.losses import build_loss

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )
    from transformers import TrainerCallback

DEFAULT_TRAINING_ARGUMENTS: dict[str, Any] = {
    "num_train_epochs": 1,
    "per_device_train_batch_size": 16,
    "learning_rate": 2e-5,
    "warmup_steps": 0.1,
    "batch_sampler": "no_duplicates",
    "save_strategy": "no",
    "logging_steps": 10,
    "report_to": "none",
    "disable_tqdm": True,
}
"""What a run uses unless `training` says otherwise; `no_duplicates` keeps in-batch
negatives honest for ranking losses."""


def resolve_model_path(name_or_path: str) -> str:
    """`package:<module>` -> the weights directory that package ships; anything else as is."""
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


def load_model(config: ModelConfig, device: str | None = None) -> SentenceTransformer:
    """Load the base model; card metadata stays offline (`local_files_only`)."""
    from sentence_transformers import SentenceTransformer
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
    """Defaults, then the run seed, then the config's `training` block (what the card shows).

    `resume_from_checkpoint` is dropped: it is an argument of `trainer.train()`, not of
    the training arguments.
    """
    arguments = {**DEFAULT_TRAINING_ARGUMENTS, "seed": config.seed, **config.training}
    arguments.pop("resume_from_checkpoint", None)
    return arguments


def training_arguments(
    config: RunConfig, output_dir: str | Path, *, overrides: Mapping[str, Any] | None = None
) -> SentenceTransformerTrainingArguments:
    """The effective arguments plus what the run sets itself (prompts, output_dir).

    `overrides` are the fast path's device-dependent arguments (`trainer.fast_path`), which
    it only proposes for arguments the `training` block leaves unset.
    """
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    arguments = {**effective_training_arguments(config), **(overrides or {})}
    prompts = {name: ds.prompt for name, ds in config.datasets.items() if ds.prompt is not None}
    if prompts:
        arguments["prompts"] = prompts if config.is_multi_dataset else next(iter(prompts.values()))
    return SentenceTransformerTrainingArguments(output_dir=str(output_dir), **arguments)


@dataclass
class TrainingResult:
    """The fine-tuned model and what happened while training it."""

    model: SentenceTransformer
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    global_step: int = 0
    train_rows: dict[str, int] = field(default_factory=dict)
    emissions: dict[str, Any] = field(default_factory=dict)
    base_model: str | None = None

    def model_info(self) -> dict[str, Any]:
        """Facts about the trained model that the card shows without loading it again."""
        return {
            "base_model": self.base_model,
            "embedding_dimension": self.model.get_embedding_dimension(),
            "max_seq_length": self.model.max_seq_length,
            "parameters": sum(p.numel() for p in self.model.parameters()),
        }

    def summary(self) -> dict[str, Any]:
        """JSON-friendly training facts for metadata and the model card."""
        final = next((row for row in reversed(self.history) if "train_loss" in row), {})
        return {
            "train_seconds": round(self.train_seconds, 2),
            "global_step": self.global_step,
            "train_rows": self.train_rows,
            "train_loss": final.get("train_loss"),
            "history": self.history,
            "emissions": self.emissions or None,
            "model_info": self.model_info(),
        }


def _as_trainer_inputs(
    config: RunConfig, datasets: DatasetDict, model: SentenceTransformer
) -> tuple[Dataset | DatasetDict, Any]:
    losses = {name: build_loss(model, config.datasets[name].loss) for name in datasets}
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
) -> SentenceTransformerTrainer:
    """The `SentenceTransformerTrainer` of a run: model, arguments, datasets and losses.

    Everything that trains (the run, hyperparameter search, benchmarks) builds its trainer
    here, so they all train the same way.
    """
    from trainer.fast_path import prepare_fast_path

    missing = sorted(set(config.datasets) - set(train_datasets))
    if missing:
        raise ValueError(f"train datasets lack configured dataset(s): {', '.join(missing)}")
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
    fast = prepare_fast_path(config, model, train_input, eval_input, output_dir=output_dir)
    return fast.build_trainer(
        model=model,
        train_dataset=train_input,
        eval_dataset=eval_input,
        loss=loss,
        callbacks=callbacks,
    )


def train(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None = None,
    *,
    output_dir: str | Path,
    model: SentenceTransformer | None = None,
    callbacks: list[TrainerCallback] | None = None,
) -> TrainingResult:
    """Fine-tune the base model on the run's datasets.

    Checkpoints go to `output_dir` per `training.save_strategy`; set
    `training.resume_from_checkpoint` to a checkpoint path, or to `true` for the newest
    checkpoint in `output_dir`, to continue an interrupted run.
    """
    trainer = build_trainer(
        config,
        train_datasets,
        eval_datasets,
        output_dir=output_dir,
        model=model,
        callbacks=callbacks,
    )
    started = time.perf_counter()
    with track_emissions() as emissions:
        output = trainer.train(resume_from_checkpoint=config.training.get("resume_from_checkpoint"))
    elapsed = time.perf_counter() - started
    return TrainingResult(
        model=trainer.model,
        history=list(trainer.state.log_history),
        train_seconds=elapsed,
        global_step=output.global_step,
        train_rows={name: len(ds) for name, ds in train_datasets.items()},
        emissions=emissions,
        base_model=config.model.name_or_path,
    )
