"""A checkpoint series: the training a folder of checkpoints belongs to, named by a digest
of everything that shapes the result, and where that folder lives.

Two runs with the same digest would train the same model, so one may continue the
other's checkpoints; any change that alters the result changes the digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa
from datasets import Dataset, DatasetDict

from trainer.config import RunConfig
from trainer.training.arguments import effective_training_arguments
from trainer.training.checkpoints import SeriesIdentity

CHECKPOINTS_FOLDER = "checkpoints"
"""Folder under an orchestrator's storage root that holds the checkpoint series."""

_OBSERVATIONAL_ARGUMENTS = frozenset(
    {
        "logging_steps",
        "logging_strategy",
        "logging_first_step",
        "logging_dir",
        "report_to",
        "disable_tqdm",
        "run_name",
        "eval_strategy",
        "eval_steps",
        "per_device_eval_batch_size",
        "dataloader_num_workers",
        "dataloader_pin_memory",
        "dataloader_persistent_workers",
        "dataloader_prefetch_factor",
    }
)
"""Training arguments that change what is logged or how fast, not what is learned: a run
that differs only in these continues the same checkpoint series."""


def content_digest(dataset: Dataset) -> str:
    """SHA-256 of a dataset's rows: its Arrow table and, after a shuffle or select, the
    indices mapping over it (hashing the mapping is cheap; gathering rows through it is
    not). Unlike `Dataset._fingerprint`, it depends on the data only, not on file paths
    and modification times, so a fresh clone or a rebuilt image still finds its
    checkpoints."""
    digest = hashlib.sha256()
    tables = [dataset.data.table]
    if dataset._indices is not None:
        tables.append(dataset._indices.table)
    for table in tables:
        for batch in table.to_batches(max_chunksize=65_536):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            digest.update(sink.getvalue())
    return digest.hexdigest()


def _flatten(value: Any, prefix: str, into: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), into)
    else:
        into[prefix] = json.dumps(value, sort_keys=True, default=str)


def series_identity(
    config: RunConfig, train_datasets: DatasetDict, *, base_model_id: str | None = None
) -> SeriesIdentity:
    """What a training learns from: base model, dataset configs and contents, losses,
    training arguments (not the purely observational ones) and seed, as a digest of 16
    hex digits and the flattened keys behind it (`training.learning_rate`, `data.docs`).

    Two runs with the same digest would train the same model, so one may continue the
    other's checkpoints; any change that alters the result changes the digest.
    `base_model_id` names the base weights when `model.name_or_path` cannot (a ZenML
    model version resolved into a temporary folder: its artifact id).
    """
    shaping: dict[str, Any] = config.model_dump(mode="json", include={"model", "datasets", "seed"})
    if base_model_id is not None:
        shaping["model"]["name_or_path"] = base_model_id
    shaping["training"] = {
        key: value
        for key, value in effective_training_arguments(config).items()
        if key not in _OBSERVATIONAL_ARGUMENTS
    }
    shaping["data"] = {
        # A stream is not read to hash it: its source (path, revision) is in `datasets`.
        name: content_digest(ds) if isinstance(ds, Dataset) else "stream"
        for name, ds in sorted(train_datasets.items())
    }
    text = json.dumps(shaping, sort_keys=True, default=str)
    flat: dict[str, str] = {}
    _flatten(shaping, "", flat)
    return SeriesIdentity(digest=hashlib.sha256(text.encode()).hexdigest()[:16], shaping=flat)


def series_digest(
    config: RunConfig, train_datasets: DatasetDict, *, base_model_id: str | None = None
) -> str:
    """The digest of `series_identity`: 16 hex digits."""
    identity = series_identity(config, train_datasets, base_model_id=base_model_id)
    assert identity.digest is not None
    return identity.digest


def checkpoint_uri(
    config: RunConfig,
    train_datasets: DatasetDict,
    *,
    root: str,
    pipeline: str,
    base_model_id: str | None = None,
    digest: str | None = None,
) -> str:
    """Where this run's checkpoint series lives: `checkpoints.uri` when set, else
    `<root>/checkpoints/<pipeline>/<model name>/<series digest>` under the orchestrator's
    storage root (a retried step or a re-run of the same config lands on the same folder)."""
    if config.checkpoints.uri:
        return config.checkpoints.uri
    digest = digest or series_digest(config, train_datasets, base_model_id=base_model_id)
    return "/".join([root.rstrip("/"), CHECKPOINTS_FOLDER, pipeline, config.output.name, digest])
