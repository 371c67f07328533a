"""The fast training path: which speed levers a run uses, and the trainer built with them.

`prepare_fast_path` decides every lever of `RunConfig.speed` for the device at hand and
returns a `FastPath` that builds the run's trainer. The rule: a lever is on by default
only where it keeps results equal, or where it is the usual GPU practice that the
benchmark checks against the evaluation metric.

- `tokenize_once` (any device, exact): datasets tokenized once and cached
  (`trainer.speed.tokenize`), batches padded by `PreTokenizedCollator`. Before training, the
  collator's batch for real rows of each dataset is compared with the sentence-transformers
  collator's; on any difference the run falls back to plain tokenization and says why.
- GPU levers (CUDA only; never when `training` sets the same argument): `bf16` mixed
  precision, `tf32` matmuls, `sdpa` attention, `fused_adamw`, `dataloader_workers` with
  `pin_memory`, and `compile` (`torch.compile`, with batches padded to length buckets so
  shapes repeat and recompiles stay bounded).

`SpeedReport` records the outcome (active or not, and why) for metadata and the card.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.config import RunConfig, SpeedConfig
from trainer.results import LeverState, SpeedReport, TokenizeRecord

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    from trainer.speed.tokenize import TokenizedDataset

logger = logging.getLogger(__name__)

COMPILE_BUCKET = 64
"""Batch widths are rounded up to this multiple under `compile` unless `pad_to_multiple_of` says otherwise."""

PROBE_ROWS = 8
"""Rows per dataset on which the pre-tokenized batch must equal the plain collator's."""


@dataclass(frozen=True)
class Device:
    """What the training device supports, detected once (tests pass one in)."""

    cuda: bool
    name: str = "cpu"
    bf16: bool = False
    tf32: bool = False

    @classmethod
    def detect(cls, training: Mapping[str, Any]) -> Device:
        import torch

        if training.get("use_cpu") or not torch.cuda.is_available():
            return cls(cuda=False)
        major, _ = torch.cuda.get_device_capability()
        return cls(
            cuda=True,
            name=torch.cuda.get_device_name(),
            bf16=torch.cuda.is_bf16_supported(),
            tf32=major >= 8,
        )


def gpu_argument_levers(
    speed: SpeedConfig, training: Mapping[str, Any], device: Device
) -> tuple[dict[str, Any], dict[str, LeverState]]:
    """Training-argument overrides of the GPU levers, and each lever's state.

    An argument the `training` block sets itself always wins: the lever stays off and says so.
    """
    overrides: dict[str, Any] = {}
    states: dict[str, LeverState] = {}

    def decide(lever: str, wanted: bool, owned: set[str], supported: bool, apply: dict) -> None:
        if not wanted:
            states[lever] = LeverState(active=False, detail="switched off in speed config")
        elif not device.cuda:
            states[lever] = LeverState(active=False, detail="no CUDA device")
        elif owned & set(training):
            states[lever] = LeverState(
                active=False, detail=f"training sets {', '.join(sorted(owned & set(training)))}"
            )
        elif not supported:
            states[lever] = LeverState(active=False, detail=f"not supported on {device.name}")
        else:
            overrides.update(apply)
            states[lever] = LeverState(active=True, detail=_describe(apply))

    decide("bf16", speed.bf16, {"bf16", "fp16"}, device.bf16, {"bf16": True})
    decide("tf32", speed.tf32, {"tf32"}, device.tf32, {"tf32": True})
    decide("fused_adamw", speed.fused_adamw, {"optim"}, True, {"optim": "adamw_torch_fused"})
    decide(
        "dataloader_workers",
        speed.dataloader_workers > 0,
        {"dataloader_num_workers", "dataloader_persistent_workers"},
        True,
        {
            "dataloader_num_workers": speed.dataloader_workers,
            "dataloader_persistent_workers": True,
        },
    )
    decide(
        "pin_memory",
        speed.pin_memory,
        {"dataloader_pin_memory"},
        True,
        {"dataloader_pin_memory": True},
    )
    decide("compile", speed.compile, {"torch_compile"}, True, {"torch_compile": True})
    if device.cuda and not speed.pin_memory and "dataloader_pin_memory" not in training:
        overrides["dataloader_pin_memory"] = False
    return overrides, states


def _describe(arguments: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in arguments.items())


def apply_attention(model: SentenceTransformer, speed: SpeedConfig, device: Device) -> LeverState:
    """Use PyTorch's fused scaled-dot-product attention on GPU (`eager` when switched off)."""
    auto_model = getattr(model[0], "auto_model", None)
    current = getattr(getattr(auto_model, "config", None), "_attn_implementation", None)
    if not device.cuda:
        return LeverState(active=False, detail=f"no CUDA device (attention: {current})")
    wanted = "sdpa" if speed.sdpa else "eager"
    if auto_model is None:
        return LeverState(active=False, detail=f"cannot use {wanted}: no transformers model")
    if current != wanted:
        try:
            auto_model.set_attn_implementation(wanted)
        except (AttributeError, ValueError) as error:
            return LeverState(active=False, detail=f"cannot use {wanted}: {error}")
    return LeverState(active=speed.sdpa, detail=f"attention: {wanted}")


@dataclass
class FastPath:
    """Everything `build_trainer` needs to build the run's trainer the fast way."""

    args: SentenceTransformerTrainingArguments
    report: SpeedReport
    collator: Any = None
    train_twins: dict[str | None, TokenizedDataset] | None = None
    eval_twins: dict[str | None, TokenizedDataset] | None = None
    hashed_duplicates: bool = False

    def build_trainer(self, **kwargs: Any) -> SentenceTransformerTrainer:
        """A `FastPathTrainer` over the given model, datasets, loss and callbacks."""
        from trainer.speed.trainer import FastPathTrainer

        return FastPathTrainer(
            args=self.args,
            data_collator=self.collator,
            speed_report=self.report,
            train_twins=self.train_twins,
            eval_twins=self.eval_twins,
            hashed_duplicates=self.hashed_duplicates,
            **kwargs,
        )


def speed_report(trainer: Any) -> SpeedReport | None:
    """The levers a trainer built by `build_trainer` used (None for any other trainer)."""
    return getattr(trainer, "speed_report", None)


def prepare_fast_path(
    config: RunConfig,
    model: SentenceTransformer,
    train_input: Dataset | DatasetDict,
    eval_input: Dataset | DatasetDict | None,
    *,
    make_arguments: Callable[[dict[str, Any]], SentenceTransformerTrainingArguments],
    device: Device | None = None,
) -> FastPath:
    """Decide the speed levers for this run and device, tokenize once, check exactness.

    `make_arguments(overrides)` builds the run's training arguments with the levers'
    device-dependent arguments on top (`trainer.training.arguments.training_arguments`)."""
    speed = config.speed
    device = device or Device.detect(config.training)
    overrides, levers = gpu_argument_levers(speed, config.training, device)
    if not device.cuda and "dataloader_pin_memory" not in config.training:
        # transformers pins by default; without an accelerator torch only warns about it.
        overrides["dataloader_pin_memory"] = False
    args = make_arguments(overrides)
    levers["sdpa"] = apply_attention(model, speed, device)

    fast = FastPath(args=args, report=SpeedReport(device=device.name, levers={}))
    records: list[TokenizeRecord] = []
    if not speed.tokenize_once:
        levers["tokenize_once"] = LeverState(active=False, detail="switched off in speed config")
    else:
        try:
            from datasets import IterableDataset

            if isinstance(train_input, IterableDataset):
                raise _FallBack("a streamed dataset is tokenized as it is read")
            _tokenize_datasets(fast, config, model, train_input, eval_input, device, records)
            levers["tokenize_once"] = LeverState(active=True, detail=_cache_detail(records))
        except _FallBack as reason:
            logger.warning("tokenize_once off, training tokenizes per batch: %s", reason)
            levers["tokenize_once"] = LeverState(active=False, detail=str(reason))
            fast.collator, fast.train_twins, fast.eval_twins = None, None, None
            records = []

    fast.hashed_duplicates = speed.hashed_duplicates
    levers["hashed_duplicates"] = _hashed_duplicates_state(speed, args)
    padding = fast.collator.pad_to_multiple_of if fast.collator is not None else None
    levers["length_buckets"] = LeverState(
        active=bool(padding),
        detail=f"batches padded to multiples of {padding}" if padding else "pad to longest row",
    )
    ordered = [name for name in SpeedConfig.model_fields if name in levers]
    ordered += [name for name in levers if name not in ordered]
    fast.report = SpeedReport(
        device=device.name, levers={name: levers[name] for name in ordered}, tokenized=records
    )
    return fast


def _hashed_duplicates_state(speed: SpeedConfig, args: Any) -> LeverState:
    sampler = str(getattr(args.batch_sampler, "value", args.batch_sampler))
    if not speed.hashed_duplicates:
        return LeverState(active=False, detail="switched off in speed config")
    if sampler != "no_duplicates":
        return LeverState(active=False, detail=f"batch_sampler is {sampler}")
    if importlib.util.find_spec("xxhash") is None:
        return LeverState(active=False, detail="xxhash is not installed")
    return LeverState(active=True, detail="no_duplicates compares xxhash64 of each text")


class _FallBack(Exception):
    """tokenize_once cannot reproduce plain batches here; train the plain way."""


def _cache_detail(records: list[TokenizeRecord]) -> str:
    reused = sum(record.reused for record in records)
    cached = sum(record.cache_file is not None for record in records)
    if not cached:
        return f"{len(records)} dataset(s) tokenized in memory"
    return f"{len(records)} dataset(s) tokenized, {reused} read back from the cache"


def _tokenize_datasets(
    fast: FastPath,
    config: RunConfig,
    model: SentenceTransformer,
    train_input: Dataset | DatasetDict,
    eval_input: Dataset | DatasetDict | None,
    device: Device,
    records: list[TokenizeRecord],
) -> None:
    from sentence_transformers.sentence_transformer.data_collator import (
        SentenceTransformerDataCollator,
    )

    from trainer.speed.collator import PreTokenizedCollator, pad_values_of
    from trainer.speed.tokenize import TokenizeOnceUnsupported, default_cache_dir

    args = fast.args
    if args.router_mapping:
        raise _FallBack("router_mapping routes columns to different modules")
    # No router_mapping (empty, checked above): the collator's default.
    plain = SentenceTransformerDataCollator(preprocess_fn=model.preprocess, prompts=args.prompts)
    speed = config.speed
    cache_dir = None
    if speed.cache:
        cache_dir = Path(speed.cache_dir) if speed.cache_dir else default_cache_dir()
    padding = None
    if device.cuda:
        compiling = speed.compile and bool(getattr(args, "torch_compile", False))
        padding = speed.pad_to_multiple_of or (COMPILE_BUCKET if compiling else None)

    try:
        fast.train_twins = _twins(train_input, model, plain, cache_dir, "train", records)
        if eval_input is not None:
            fast.eval_twins = _twins(eval_input, model, plain, cache_dir, "eval", records)
    except TokenizeOnceUnsupported as error:
        raise _FallBack(str(error)) from error

    encodings = {name: twin.encodings for name, twin in fast.train_twins.items()}
    for name, twin in (fast.eval_twins or {}).items():
        if encodings.setdefault(name, twin.encodings) != twin.encodings:
            raise _FallBack(f"dataset {name or 'data'!r}: train and eval token layouts differ")
    tokenizer = model.tokenizer
    exact = PreTokenizedCollator(
        preprocess_fn=model.preprocess,
        prompts=args.prompts,
        encodings=encodings,
        pad_values=pad_values_of(tokenizer),
        padding_side=tokenizer.padding_side,
    )
    _probe(exact, plain, train_input, fast.train_twins)
    if eval_input is not None and fast.eval_twins is not None:
        _probe(exact, plain, eval_input, fast.eval_twins)
    exact.pad_to_multiple_of = padding
    fast.collator = exact


def _twins(
    datasets: Dataset | DatasetDict,
    model: SentenceTransformer,
    plain: Any,
    cache_dir: Path | None,
    split: str,
    records: list[TokenizeRecord],
) -> dict[str | None, TokenizedDataset]:
    from datasets import DatasetDict

    from trainer.speed.tokenize import text_columns, tokenize_once

    named = dict(datasets.items()) if isinstance(datasets, DatasetDict) else {None: datasets}
    twins = {}
    for name, dataset in named.items():
        texts, label = text_columns(dataset, plain.valid_label_columns)
        batch_prompts = plain._resolve_prompts({"dataset_name": name} if name else {})
        prompts = {column: plain._get_prompt_for_column(batch_prompts, column) for column in texts}
        twin = tokenize_once(
            dataset,
            model,
            prompts=prompts,
            label_column=label,
            cache_dir=cache_dir,
            name=f"{split}-{name or 'data'}",
        )
        twins[name] = twin
        records.append(
            TokenizeRecord(
                split=split,
                dataset=name,
                rows=len(dataset),
                cache_file=twin.cache_file,
                reused=twin.reused,
            )
        )
    return twins


def _probe(
    exact: Any,
    plain: Any,
    datasets: Dataset | DatasetDict,
    twins: dict[str | None, TokenizedDataset],
) -> None:
    """Compare our batch with the sentence-transformers collator's on real rows."""
    import torch
    from datasets import DatasetDict

    named = dict(datasets.items()) if isinstance(datasets, DatasetDict) else {None: datasets}
    for name, dataset in named.items():
        rows = range(min(PROBE_ROWS, len(dataset)))
        routed = {"dataset_name": name} if name else {}
        texts = [{**dataset[i], **routed} for i in rows]
        tokens = [{**twins[name].dataset[i], **routed} for i in rows]
        expected, actual = plain(texts), exact(tokens)
        if list(expected) != list(actual):
            raise _FallBack(
                f"dataset {name or 'train'!r}: batch keys {list(actual)} differ from "
                f"sentence-transformers' {list(expected)}"
            )
        for key, value in expected.items():
            other = actual[key]
            same = (
                torch.equal(value, other) and value.dtype == other.dtype
                if isinstance(value, torch.Tensor)
                else value == other
            )
            if not same:
                raise _FallBack(
                    f"dataset {name or 'train'!r}: {key} differs from sentence-transformers' batch"
                )
