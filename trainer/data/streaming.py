"""Streamed training data (`source.streaming: true`): a corpus larger than memory is read
as a `datasets.IterableDataset`, row by row, while training runs.

Nothing reads a stream to its end: its columns and types are checked on its first rows
(`HEAD_ROWS`), it has no length (the run needs `training.max_steps`), and features that
need every row (held-out splitting, mining, the leakage check, multi-dataset sampling,
per-trial sampling of a search) are refused up front by `streaming_problems`. The Trainer
reads it in file order, so a resumed run skips the batches it already consumed and sees
exactly the rows an uninterrupted run would. That holds for a Hub stream only if the
resumed run reads the same commit: the train stage pins each Hub stream to the commit its
revision names when it starts (`pin_stream_revisions`), which puts that commit in the
series identity, so a repo that moved on is not resumed as if it had not.

Under several processes (torchrun, or the nodes of a TrainJob) every rank opens the
stream from its source, read as one shard (`read_as_one_shard`), and keeps its own slice
of each global batch: accelerate's `IterableDatasetShard`, chosen by
`dispatch_batches: false` (`trainer.training.arguments`). Global batch k is rows
[k*G, (k+1)*G) of the stream (G = per-device batch x processes), rank r gets rows
[k*G + r*b, k*G + (r+1)*b): the order of one process training with batch size G. The
alternative, rank 0 reading and sending out the batches (accelerate's default for a
stream), concatenates batches the collator padded to different lengths and fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets import IterableDataset, load_dataset

from trainer.config import DatasetConfig, DataSource, RunConfig, data_file_suffix
from trainer.problems import DataValidationError, Problem

HEAD_ROWS = 1000
"""Rows of a stream its column and type checks read (a stream is never read to its end)."""


def streaming_problems(config: RunConfig) -> list[Problem]:
    """What a run with a streamed dataset cannot do, each naming the key to change."""
    streamed = [name for name, ds in config.datasets.items() if ds.source.streaming]
    if not streamed:
        return []
    problems = []
    max_steps = config.training.get("max_steps", -1)
    if not isinstance(max_steps, int) or max_steps <= 0:
        problems.append(
            Problem(
                field="training.max_steps",
                message=f"dataset(s) {', '.join(streamed)} stream (source.streaming: true) and "
                "have no length, so epochs cannot be counted: set training.max_steps to the "
                "number of optimizer steps to train",
            )
        )
    if len(config.datasets) > 1:
        problems.append(
            Problem(
                field=f"datasets.{streamed[0]}.source.streaming",
                message="several training datasets need the multi-dataset batch sampler, which "
                "needs each dataset's length (sentence-transformers takes no stream in a "
                "DatasetDict): train one streamed dataset, or load these into memory",
            )
        )
    for name in streamed:
        dataset = config.datasets[name]
        field = f"datasets.{name}"
        whole = {
            "eval_size": "carving a held-out split (eval_size) draws from every row: give "
            "eval_source (a held-out file of its own) instead",
            "hard_negatives": "hard-negative mining (hard_negatives) encodes every document "
            "of the dataset: mine beforehand and stream the mined rows",
        }
        for key, why in whole.items():
            if getattr(dataset, key) is not None:
                problems.append(
                    Problem(field=f"{field}.{key}", message=f"{why} (source.streaming: true)")
                )
        if dataset.eval_source is not None and config.leakage.on_query_overlap == "fail":
            problems.append(
                Problem(
                    field="leakage.on_query_overlap",
                    message=f"the leakage check compares held-out queries with every training "
                    f"anchor, and dataset {name!r} streams (source.streaming: true): set "
                    "leakage.on_query_overlap: warn to train without that check (the run "
                    "then says it was not done), or load the dataset into memory",
                )
            )
    if config.trains_on_nodes:
        problems += _node_problems(config, streamed)
    accelerator = config.training.get("accelerator_config")
    several = config.trains_on_nodes or config.distributed.nproc_per_node != 1
    if several and isinstance(accelerator, dict) and accelerator.get("dispatch_batches"):
        problems.append(
            Problem(
                field="training.accelerator_config.dispatch_batches",
                message=f"dataset(s) {', '.join(streamed)} stream (source.streaming: true) "
                "and several processes train: rank 0 would concatenate batches padded to "
                "different lengths and fail; remove it (each process then reads its own "
                "slice of every global batch)",
            )
        )
    if config.search is not None and config.search.max_samples is not None:
        problems.append(
            Problem(
                field="search.max_samples",
                message="draws a sample of every training row per trial, which a stream "
                f"(dataset(s) {', '.join(streamed)}) cannot give: remove it",
            )
        )
    return problems


def _is_hub(source: DataSource) -> bool:
    """Whether a stream's source is a Hub dataset (a local file of that name wins)."""
    path = Path(source.path).expanduser()
    return source.resolved_format == "hub" and not (source.format is None and path.is_file())


def pin_stream_revisions(config: RunConfig) -> RunConfig:
    """`config` with each streamed Hub dataset's `source.revision` (a branch, a tag,
    unset: `main`) replaced by the commit id it names now, so the whole training reads one
    commit and the series identity (made from the config) names it: resuming after the
    repo got a new commit is then refused as another training's series, instead of
    skipping batches of rows it never trained on."""
    from huggingface_hub import HfApi

    datasets = dict(config.datasets)
    for name, dataset in config.datasets.items():
        source = dataset.source
        revision = source.revision
        if not source.streaming or not _is_hub(source):
            continue
        if revision is not None and re.fullmatch(r"[0-9a-f]{40}", revision):
            continue
        try:
            commit = HfApi().dataset_info(source.path, revision=revision).sha
        except Exception as error:
            raise DataValidationError(
                f"dataset {name!r}: cannot find which commit revision {revision or 'main'!r} "
                f"of the Hub dataset {source.path!r} is: {str(error).splitlines()[0]}",
                field=f"datasets.{name}.source.revision",
            ) from error
        pinned = source.model_copy(update={"revision": commit})
        datasets[name] = dataset.model_copy(update={"source": pinned})
    return config.model_copy(update={"datasets": datasets})


def _node_problems(config: RunConfig, streamed: list[str]) -> list[Problem]:
    """Each node of a TrainJob reads the stream from its source (it is not copied into
    the job folder): a Hub dataset, or a file on the volume every node mounts."""
    volume = config.distributed.shared_volume
    problems = []
    for name in streamed:
        source = config.datasets[name].source
        if _is_hub(source):
            continue
        if volume is not None and Path(source.path).is_relative_to(volume.mount_path):
            continue
        problems.append(
            Problem(
                field=f"datasets.{name}.source.path",
                message=f"dataset {name!r} streams (source.streaming: true), so each of "
                f"the hardware.nodes ({config.training_nodes}) nodes reads it from its "
                f"source, but {source.path!r} is a file they do not share: put it under "
                "distributed.shared_volume.mount_path (a ReadWriteMany volume every node "
                "mounts), stream a Hub dataset, or load it into memory",
            )
        )
    return problems


def read_as_one_shard(stream: IterableDataset) -> IterableDataset:
    """`stream` as one shard, its rows in the same order.

    With several processes and no dispatching, accelerate splits a stream of at least as
    many shards (files) as processes by shard (each process reads other files, in another
    order, and the processes can run out at different steps); a stream of fewer shards it
    splits batch by batch (`IterableDatasetShard`), the split this project promises."""
    if stream.n_shards == 1:
        return stream
    return IterableDataset.from_generator(
        _rows_of, gen_kwargs={"stream": stream}, features=stream.features
    )


def _rows_of(stream: IterableDataset) -> Iterator[dict[str, Any]]:
    yield from stream


def open_raw_stream(config: DatasetConfig, *, what: str, field: str) -> IterableDataset:
    """The dataset's source as a stream, its features read from its first rows."""
    stream = _open(config, what=what, field=field)
    try:
        return stream._resolve_features()
    except Exception as error:
        raise DataValidationError(
            f"{what}: cannot read the first rows of {config.source.path!r}: {error}", field=field
        ) from error


def _open(config: DatasetConfig, *, what: str, field: str) -> IterableDataset:
    source = config.source
    path = Path(source.path).expanduser()
    try:
        if _is_hub(source):
            return load_dataset(
                source.path, source.subset, split=source.split, revision=source.revision,
                streaming=True,
            )  # fmt: skip
        if not path.is_file():
            raise DataValidationError(f"{what}: {source.path} not found", field=field)
        kwargs: dict[str, Any] = {}
        if source.resolved_format == "csv" and data_file_suffix(path)[0] == ".tsv":
            kwargs["delimiter"] = "\t"
        return load_dataset(
            source.resolved_format, data_files=str(path), split="train", streaming=True, **kwargs
        )
    except DataValidationError:
        raise
    except Exception as error:
        raise DataValidationError(
            f"{what}: cannot stream {source.path!r}: {str(error).splitlines()[0]}", field=field
        ) from error
