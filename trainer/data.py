"""Load, map, validate and split the training datasets of a run.

Each named dataset of the run config becomes one `datasets.Dataset` whose columns are
exactly what its loss reads (texts by position, `label`/`score` by name). The result is
a `DatasetDict` keyed by dataset name: handed to the trainer together with a loss dict
keyed by the same names, sentence-transformers adds the `dataset_name` column itself
and routes every batch to that dataset's loss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Value, load_dataset

from trainer.config import (
    ColumnMapping,
    DatasetConfig,
    DataSource,
    DocumentsSource,
    EvaluatorConfig,
    RunConfig,
)
from trainer.losses import LABEL_COLUMNS, LOSS_SPECS

_TEXT_DTYPES = {"string", "large_string"}
_INT_DTYPES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"}
_FLOAT_DTYPES = {"float16", "float32", "float64"}


class DataValidationError(ValueError):
    """A dataset does not fit its configuration; the message names dataset and column."""


def load_source(source: DataSource, *, what: str) -> Dataset:
    """Read one split from the Hub or from a local csv / jsonl / parquet file."""
    fmt = source.resolved_format
    if fmt == "hub":
        return load_dataset(
            source.path, source.subset, split=source.split, revision=source.revision
        )
    path = Path(source.path)
    if not path.is_file():
        raise DataValidationError(f"{what}: file {source.path!r} does not exist")
    kwargs: dict[str, Any] = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    return load_dataset(fmt, data_files=str(path), split="train", **kwargs)


def map_columns(dataset: Dataset, columns: ColumnMapping, *, what: str) -> Dataset:
    """Select the mapped source columns, in mapping order, and rename them."""
    if not columns:
        return dataset
    missing = [source for source, _ in columns if source not in dataset.column_names]
    if missing:
        raise DataValidationError(
            f"{what}: column(s) {', '.join(map(repr, missing))} not found; "
            f"the data has: {', '.join(dataset.column_names)}"
        )
    dataset = dataset.select_columns([source for source, _ in columns])
    renames = {source: target for source, target in columns if source != target}
    return dataset.rename_columns(renames) if renames else dataset


def _dtype(dataset: Dataset, column: str) -> str:
    feature = dataset.features[column]
    if isinstance(feature, ClassLabel):
        return "int64"
    return feature.dtype if isinstance(feature, Value) else type(feature).__name__


def validate_for_loss(dataset: Dataset, config: DatasetConfig, *, what: str) -> None:
    """Check the columns and types the dataset's loss needs; raise naming the column."""
    spec = LOSS_SPECS[config.loss.name]
    labels = [column for column in dataset.column_names if column in LABEL_COLUMNS]
    texts = [column for column in dataset.column_names if column not in LABEL_COLUMNS]
    loss = config.loss.name
    if len(dataset) == 0:
        raise DataValidationError(f"{what}: has no rows")
    if len(labels) > 1:
        raise DataValidationError(f"{what}: has both 'label' and 'score'; keep one label column")
    needs = spec.describe()
    # Rows that hard-negative mining will extend are (anchor, positive) pairs now and
    # must fit the loss once the mined negative columns are added.
    mined = config.hard_negatives.num_negatives if config.hard_negatives else 0
    if mined and len(texts) != 2:
        raise DataValidationError(
            f"{what}: hard_negatives mines from (anchor, positive) rows, got text columns "
            f"{texts}; select two with columns: {{source: target}}"
        )
    n_texts = len(texts) + mined
    if n_texts < spec.min_texts or (spec.max_texts is not None and n_texts > spec.max_texts):
        raise DataValidationError(
            f"{what}: {loss} needs {needs}, got text columns {texts}; "
            "select and order them with columns: {source: target}"
        )
    for column in texts:
        if _dtype(dataset, column) not in _TEXT_DTYPES:
            raise DataValidationError(
                f"{what}: column {column!r} must hold strings for {loss}, "
                f"got {_dtype(dataset, column)}"
            )
        if dataset.data.column(column).null_count:
            raise DataValidationError(f"{what}: column {column!r} has empty (null) values")
    if spec.label == "none" and labels:
        raise DataValidationError(
            f"{what}: {loss} takes no label, but column {labels[0]!r} is one; drop it from columns"
        )
    if spec.label != "none":
        if not labels:
            raise DataValidationError(
                f"{what}: {loss} needs {needs}: map a column to 'label' or 'score'"
            )
        dtype = _dtype(dataset, labels[0])
        allowed = _INT_DTYPES if spec.label == "int" else _INT_DTYPES | _FLOAT_DTYPES
        if dtype not in allowed:
            raise DataValidationError(
                f"{what}: label column {labels[0]!r} must be {spec.label} for {loss}, got {dtype}"
            )


def prepare_dataset(
    name: str, config: DatasetConfig, dataset: Dataset, *, seed: int, split: str = "train"
) -> Dataset:
    """Map columns, cap rows and validate one split of one named dataset."""
    what = f"dataset {name!r} ({split})"
    dataset = map_columns(dataset, config.columns, what=what)
    if "dataset_name" in dataset.column_names:
        raise DataValidationError(
            f"{what}: column 'dataset_name' is reserved for multi-dataset routing; rename it"
        )
    if config.max_samples is not None and len(dataset) > config.max_samples:
        dataset = dataset.shuffle(seed=seed).select(range(config.max_samples))
    validate_for_loss(dataset, config, what=what)
    return dataset


def load_datasets(config: RunConfig) -> tuple[DatasetDict, DatasetDict]:
    """Build the train and held-out `DatasetDict`s of a run, keyed by dataset name.

    The held-out split comes from `eval_source`, or is carved from the training data with
    `eval_size` and the run seed before `max_samples` is applied, so capping training rows
    never changes which rows are evaluated.
    """
    train, held_out = {}, {}
    for name, dataset_config in config.datasets.items():
        raw = load_source(dataset_config.source, what=f"dataset {name!r}")
        raw_eval = None
        if dataset_config.eval_source is not None:
            raw_eval = load_source(dataset_config.eval_source, what=f"dataset {name!r} (eval)")
        elif dataset_config.eval_size is not None:
            parts = raw.train_test_split(test_size=dataset_config.eval_size, seed=config.seed)
            raw, raw_eval = parts["train"], parts["test"]
        train[name] = prepare_dataset(name, dataset_config, raw, seed=config.seed)
        if raw_eval is not None:
            eval_config = dataset_config.model_copy(update={"max_samples": None})
            held_out[name] = prepare_dataset(
                name, eval_config, raw_eval, seed=config.seed, split="eval"
            )
    return DatasetDict(train), DatasetDict(held_out)


def load_evaluator_rows(evaluator: EvaluatorConfig, eval_datasets: DatasetDict) -> Dataset:
    """The rows one evaluator scores: a held-out split, or its own file with its own mapping."""
    if evaluator.dataset is not None:
        dataset = eval_datasets[evaluator.dataset]
    else:
        assert evaluator.source is not None
        what = f"evaluator {evaluator.display_name!r}"
        dataset = map_columns(
            load_source(evaluator.source, what=what), evaluator.columns, what=what
        )
    return dataset


def load_documents(documents: DocumentsSource, *, what: str) -> list[str]:
    """The text column of a document source (a mining corpus, retrieval distractors)."""
    dataset = load_source(documents.source, what=what)
    if documents.column not in dataset.column_names:
        raise DataValidationError(
            f"{what}: column {documents.column!r} not found in {documents.source.path!r}; "
            f"the data has: {', '.join(dataset.column_names)}"
        )
    column = dataset.data.column(documents.column)
    if column.null_count:
        raise DataValidationError(
            f"{what}: column {documents.column!r} of {documents.source.path!r} has empty values"
        )
    return [str(text) for text in column.to_pylist()]


def dataset_stats(train: DatasetDict, held_out: DatasetDict) -> dict[str, dict[str, Any]]:
    """Row counts and columns per dataset: logged as metadata and written into the card."""
    return {
        name: {
            "train_rows": len(dataset),
            "eval_rows": len(held_out[name]) if name in held_out else 0,
            "columns": list(dataset.column_names),
        }
        for name, dataset in train.items()
    }
