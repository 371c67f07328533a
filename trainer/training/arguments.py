"""The run's `SentenceTransformerTrainingArguments`: defaults (generic, then by loss
family), the seed, the config's `training` block, and what the run sets
itself (prompts, checkpoints, DDP). The same values are constructed, on the CPU, by
`training_argument_problems`, so a preflight finds what training would fail on.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.catalog import CACHED_VARIANTS, training_value_problems
from trainer.config import RunConfig
from trainer.problems import Problem
from trainer.training.distributed import Topology, ddp_arguments, visible_gpus

if TYPE_CHECKING:
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

_FIELD = "training"


DEFAULT_TRAINING_ARGUMENTS: dict[str, Any] = {
    "num_train_epochs": 1,
    "per_device_train_batch_size": 16,
    "learning_rate": 2e-5,
    "warmup_steps": 0.1,
    "batch_sampler": "no_duplicates",
    "logging_steps": 0.01,
    "report_to": "none",
    "disable_tqdm": True,
}
"""What a run uses unless `training` says otherwise; `no_duplicates` keeps in-batch
negatives honest for ranking losses. `logging_steps` below 1 is a share of the planned
steps (transformers rounds it up): a log every 1% of the run, so a 38-step run logs every
step and a 10,000-step run every 100, about 100 points per curve either way; the last step
is always logged too (`trainer.training.callbacks.LogFinalStep`)."""

EVAL_STEPS_DEFAULT = 0.1
"""With `eval_strategy: steps` and neither `eval_steps` nor `logging_steps` set, evaluate
every 10% of the run (and at its last step) rather than at every log (transformers'
fallback), which would run the evaluators about 100 times."""

IN_BATCH_NEGATIVES_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 32,
    "learning_rate": 5e-5,
}
"""Defaults when every dataset trains an in-batch-negatives loss (MultipleNegativesRanking
and its symmetric variant), measured on held-out data that is not the quickstart's
(`benchmarks/defaults.py`, `data/library_docs`, all-MiniLM-L6-v2, 1 epoch, seeds 1-3):
NDCG@10 0.6237 ± 0.0018 (0.6220-0.6255) against 0.6168 ± 0.0025 (0.6153-0.6197) for the
generic 16 / 2e-5, which stays the default of the other loss families."""

CACHED_DEFAULTS: dict[str, Any] = {"per_device_train_batch_size": 128, "learning_rate": 1e-4}
"""Defaults when every dataset trains a cached (GradCache) in-batch-negatives loss: a large
batch at bounded memory is the point of it. Measured as above (seeds 1-3): NDCG@10 0.6293 ±
0.0027 (0.6268-0.6322), above every seed of the in-batch-negatives default."""


def loss_family_defaults(config: RunConfig) -> dict[str, Any]:
    """Batch size and learning rate chosen for the run's losses, when all datasets share a
    family with its own defaults; nothing (the generic defaults) for other losses or mixed
    runs."""
    losses = [dataset.loss for dataset in config.datasets.values()]
    if not all(loss.name in CACHED_VARIANTS for loss in losses):
        return {}
    if all(loss.cached for loss in losses):
        return dict(CACHED_DEFAULTS)
    if not any(loss.cached for loss in losses):
        return dict(IN_BATCH_NEGATIVES_DEFAULTS)
    return {}


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
    streaming = any(ds.source.streaming for ds in config.datasets.values())
    if streaming and "batch_sampler" not in config.training:
        # A stream is read in order, batch after batch: no batch sampler applies to it.
        arguments.pop("batch_sampler", None)
    accelerator = arguments.get("accelerator_config", {})
    if streaming and isinstance(accelerator, dict):
        # Under several processes each one reads the stream and keeps its own slice of
        # every global batch (accelerate's IterableDatasetShard), instead of rank 0
        # collating `nproc` batches and sending them out (accelerate's default for a
        # stream), which fails as soon as two batches are padded to different lengths.
        arguments["accelerator_config"] = {"dispatch_batches": False, **accelerator}
    if "warmup_ratio" in config.training and "warmup_steps" not in config.training:
        arguments["warmup_steps"] = arguments.pop("warmup_ratio")
    if arguments.get("eval_strategy") == "steps" and not {
        "eval_steps",
        "logging_steps",
        "load_best_model_at_end",
    } & set(config.training):
        arguments["eval_steps"] = EVAL_STEPS_DEFAULT
    every = config.checkpoints.every_n_steps
    if (
        selects_best_model(arguments)
        and arguments.get("eval_strategy") == "steps"
        and "eval_steps" not in config.training
        and every
    ):
        # Evaluate at every checkpoint: each evaluation's model is then on disk, so the
        # best of them can be loaded at the end.
        arguments["eval_steps"] = every
    return arguments


def selects_best_model(arguments: Mapping[str, Any]) -> bool:
    """Whether training ends with its best checkpoint (`load_best_model_at_end`)."""
    return bool(arguments.get("load_best_model_at_end"))


def best_model_problems(config: RunConfig) -> list[Problem]:
    """Why `load_best_model_at_end` cannot work with this run's evaluation and checkpoint
    settings, naming the keys to change.

    The best model is loaded from a saved checkpoint, so a checkpoint must exist for every
    evaluation: checkpoints follow `eval_strategy: epoch` (one per epoch), and with
    `eval_strategy: steps` they are saved every `checkpoints.every_n_steps`, which must
    then be a multiple of `training.eval_steps` (transformers' rule; unset, evaluation runs
    at every checkpoint)."""
    arguments = effective_training_arguments(config)
    if not selects_best_model(arguments):
        return []
    field = f"{_FIELD}.load_best_model_at_end"
    strategy = arguments.get("eval_strategy", "no")
    every = config.checkpoints.every_n_steps
    if strategy not in ("steps", "epoch"):
        return [
            Problem(
                field=field,
                message=f"needs evaluation during training to know which checkpoint is best, "
                f"but training.eval_strategy is {strategy!r}: set training.eval_strategy: "
                "steps (evaluated every training.eval_steps; checkpoints.every_n_steps must be "
                "a multiple of it) or epoch (a checkpoint per epoch)",
            )
        ]
    if strategy == "epoch":
        return []
    if not every:
        return [
            Problem(
                field="checkpoints.every_n_steps",
                message="is null (no checkpoints), but training.load_best_model_at_end with "
                "training.eval_strategy: steps loads the best saved checkpoint: set "
                "checkpoints.every_n_steps to a multiple of training.eval_steps, or use "
                "training.eval_strategy: epoch",
            )
        ]
    steps = arguments.get("eval_steps")
    if isinstance(steps, int | float) and 0 < steps < 1:
        return [
            Problem(
                field=f"{_FIELD}.eval_steps",
                message=f"{steps!r} is a share of the run, which cannot be matched to "
                f"checkpoints.every_n_steps ({every} steps) for "
                "training.load_best_model_at_end: give eval_steps as a number of steps "
                f"that divides {every} (e.g. {every}), or leave it unset to evaluate at every "
                "checkpoint",
            )
        ]
    if isinstance(steps, int | float) and steps >= 1 and every % int(steps):
        multiple = (every // int(steps) + 1) * int(steps)
        return [
            Problem(
                field="checkpoints.every_n_steps",
                message=f"{every} is not a multiple of training.eval_steps ({int(steps)}): "
                "training.load_best_model_at_end can only load an evaluated model that was "
                f"also saved; set checkpoints.every_n_steps: {multiple} (or another multiple "
                f"of {int(steps)}), or training.eval_steps to a divisor of {every}",
            )
        ]
    return []


def training_argument_values(config: RunConfig) -> dict[str, Any]:
    """The effective arguments plus what the run sets itself: prompts, and checkpoints
    every `checkpoints.every_n_steps` (into the local staging folder; the durable copies
    are `trainer.training.checkpoints`' job, so one local checkpoint is enough). Everything but
    `output_dir`, so a check can construct exactly what training will."""
    arguments = effective_training_arguments(config)
    prompts = {name: ds.prompt for name, ds in config.datasets.items() if ds.prompt is not None}
    if prompts:
        arguments["prompts"] = prompts if config.is_multi_dataset else next(iter(prompts.values()))
    every = config.checkpoints.every_n_steps
    arguments.update(
        push_to_hub=False,  # the hub: block publishes, after the gate (config refuses it here)
        save_strategy="steps" if every else "no",
        save_steps=every or 500,
        save_total_limit=1,
    )
    if selects_best_model(arguments) and arguments.get("eval_strategy") == "epoch":
        # The best model is loaded from a checkpoint: one at every evaluation.
        arguments.update(save_strategy="epoch")
    if Topology.from_env().distributed:
        # Under torchrun: gloo on the CPU, NCCL on GPUs, unless the config says otherwise.
        for key, value in ddp_arguments(config.distributed, visible_gpus()).items():
            arguments.setdefault(key, value)
    return arguments


def training_arguments(
    config: RunConfig, output_dir: str | Path, *, overrides: Mapping[str, Any] | None = None
) -> SentenceTransformerTrainingArguments:
    """The `SentenceTransformerTrainingArguments` of a run, writing into `output_dir`.

    `overrides` are the fast path's device-dependent arguments (`trainer.speed.levers`), which
    it only proposes for arguments the `training` block leaves unset.
    """
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    return SentenceTransformerTrainingArguments(
        output_dir=str(output_dir), **{**training_argument_values(config), **(overrides or {})}
    )


def _construct(arguments: dict[str, Any], output_dir: str) -> SentenceTransformerTrainingArguments:
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    # use_cpu: constructing must not probe (or initialise) an accelerator.
    return SentenceTransformerTrainingArguments(
        output_dir=output_dir, **{**arguments, "use_cpu": True}
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return " ".join(text.splitlines()[:3]) if text else type(error).__name__


def training_argument_problems(config: RunConfig) -> list[Problem]:
    """Every problem with the run's training arguments, found by constructing them.

    Value problems come first. Then the effective arguments are constructed; when that
    fails, each key of the config's `training` block is tried alone on top of the
    defaults, so independent mistakes are all named by field. A failure that only the
    combination produces (`load_best_model_at_end` with strategies that do not match)
    is reported under the keys its message names, or under `training`.
    """
    problems = training_value_problems(config.training) or best_model_problems(config)
    if problems:
        return problems

    def arguments(training: dict[str, Any]) -> dict[str, Any]:
        return training_argument_values(config.model_copy(update={"training": training}))

    with tempfile.TemporaryDirectory(prefix="training-args-check-") as output_dir:
        try:
            _construct(arguments(dict(config.training)), output_dir)
            return []
        except (ValueError, TypeError, ImportError) as error:
            combined = error
        for name, value in config.training.items():
            try:
                _construct(arguments({name: value}), output_dir)
            except (ValueError, TypeError, ImportError) as error:
                problems.append(Problem(field=f"{_FIELD}.{name}", message=_first_line(error)))
    if problems:
        return problems
    named = [name for name in config.training if name in str(combined)]
    field = f"{_FIELD}.{named[0]}" if named else _FIELD
    return [Problem(field=field, message=_first_line(combined))]
