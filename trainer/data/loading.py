"""Load, map, validate and split the training datasets of a run.

Each named dataset of the run config becomes one `datasets.Dataset` whose columns are
exactly what its loss reads (texts by position, `label`/`score` by name). The result is
a `DatasetDict` keyed by dataset name: handed to the trainer together with a loss dict
keyed by the same names, sentence-transformers adds the `dataset_name` column itself
and routes every batch to that dataset's loss.

Per dataset: read each source (`trainer.data.sources`: file, encoding and parse errors named
by file and line), map its columns, check shape and types for the loss, check the texts
(`trainer.data.checks`: blank texts dropped and counted, duplicates counted, degenerate
data rejected), then carve the held-out split and cap the training rows. What was found
comes back as a `DataReport` from `load_datasets_with_report`.
"""

from __future__ import annotations

from datasets import ClassLabel, Dataset, DatasetDict, IterableDataset, Value
from pydantic import BaseModel, ConfigDict

from trainer.catalog import LABEL_COLUMNS, LOSS_SPECS
from trainer.config import (
    ColumnMapping,
    DatasetConfig,
    DataSource,
    DocumentsSource,
    EvaluatorConfig,
    RunConfig,
)
from trainer.data.checks import check_content
from trainer.data.sources import load_source
from trainer.data.streaming import (
    HEAD_ROWS,
    open_raw_stream,
    read_as_one_shard,
    streaming_problems,
)
from trainer.problems import DataValidationError, Problem, raise_problems
from trainer.results import DataReport, DatasetReport, SourceReport

__all__ = [
    "DataCheck",
    "DataReport",
    "DataValidationError",
    "DatasetReport",
    "SourceReport",
    "check_data",
    "check_data_keeping_held_out",
    "check_data_keeping_splits",
    "load_datasets",
    "load_datasets_with_report",
    "load_evaluator_rows",
    "load_source",
    "map_columns",
    "prepare_dataset",
    "validate_for_loss",
]

_TEXT_DTYPES = {"string", "large_string"}
_INT_DTYPES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"}
_FLOAT_DTYPES = {"float16", "float32", "float64"}


def map_columns(
    dataset: Dataset, columns: ColumnMapping, *, what: str, field: str | None = None
) -> Dataset:
    """Select the mapped source columns, in mapping order, and rename them."""
    if not columns:
        return dataset
    missing = [source for source, _ in columns if source not in dataset.column_names]
    if missing:
        raise DataValidationError(
            f"{what}: column(s) {', '.join(map(repr, missing))} not found; "
            f"the data has: {', '.join(dataset.column_names)}",
            field=field,
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
            got = _dtype(dataset, column)
            if got == "Json":  # what `datasets` makes of a JSON column whose rows differ in type
                got = "values of mixed types (some rows are not strings)"
            raise DataValidationError(
                f"{what}: column {column!r} must hold strings for {loss}, got {got}"
            )
        if dataset.with_format("arrow")[column].null_count:
            raise DataValidationError(f"{what}: column {column!r} has empty (null) values")
    if config.loss.teacher is not None and labels:
        raise DataValidationError(
            f"{what}: the teacher computes {loss}'s label, but column {labels[0]!r} is one; "
            "drop it from columns (or drop loss.teacher to train on it)"
        )
    if config.loss.teacher is not None:
        return
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


def _text_and_label_columns(dataset: Dataset) -> tuple[list[str], list[str]]:
    labels = [column for column in dataset.column_names if column in LABEL_COLUMNS]
    return [c for c in dataset.column_names if c not in LABEL_COLUMNS], labels


def _prepare_source(
    name: str, config: DatasetConfig, raw: Dataset, *, split: str, path: str, field: str
) -> tuple[Dataset, SourceReport, list[str]]:
    """Map, shape-check and content-check one loaded source of a named dataset."""
    what = f"dataset {name!r} ({split})"
    columns_field = f"datasets.{name}.columns"
    dataset = map_columns(raw, config.columns, what=what, field=columns_field)
    if "dataset_name" in dataset.column_names:
        raise DataValidationError(
            f"{what}: column 'dataset_name' is reserved for multi-dataset routing; rename it",
            field=columns_field,
        )
    if len(dataset) == 0:
        raise DataValidationError(f"{what}: {path} has no rows", field=field)
    try:
        validate_for_loss(dataset, config, what=what)
    except DataValidationError as error:
        error.field = error.field or columns_field
        raise
    texts, labels = _text_and_label_columns(dataset)
    return check_content(dataset, texts, labels, what=what, path=path, split=split, field=field)


def prepare_dataset(
    name: str, config: DatasetConfig, dataset: Dataset, *, seed: int, split: str = "train"
) -> Dataset:
    """Map columns, validate, drop blank texts and cap rows of one split of one dataset."""
    dataset, _, _ = _prepare_source(
        name, config, dataset, split=split, path="the data", field=f"datasets.{name}"
    )
    if config.max_samples is not None and len(dataset) > config.max_samples:
        dataset = dataset.shuffle(seed=seed).select(range(config.max_samples))
    return dataset


def _split_off_eval(
    name: str, dataset: Dataset, eval_size: float | int, *, seed: int, dropped: int
) -> tuple[Dataset, Dataset]:
    """Carve the held-out rows; a size that leaves either side empty names both numbers."""
    rows = len(dataset)
    after = f" (after dropping {dropped} blank rows)" if dropped else ""
    field = f"datasets.{name}.eval_size"
    if isinstance(eval_size, int) and eval_size >= rows:
        raise DataValidationError(
            f"dataset {name!r}: eval_size {eval_size} asks for {eval_size} held-out rows, "
            f"but the data has {rows} rows{after}; use a smaller count or a fraction such "
            "as 0.1",
            field=field,
        )
    try:
        parts = dataset.train_test_split(test_size=eval_size, seed=seed)
    except ValueError as error:
        raise DataValidationError(
            f"dataset {name!r}: eval_size {eval_size} of {rows} rows{after} leaves no "
            "held-out or no training rows; use a larger fraction or a row count",
            field=field,
        ) from error
    return parts["train"], parts["test"]


def open_stream(name: str, config: DatasetConfig) -> IterableDataset:
    """Dataset `name` as a stream of its mapped columns (`source.streaming: true`), its
    columns and types checked on its first `HEAD_ROWS` rows; `max_samples` takes the
    first rows."""
    what = f"dataset {name!r}"
    field = f"datasets.{name}.source"
    stream = open_raw_stream(config, what=what, field=field)
    if config.columns:
        head = Dataset.from_list(list(stream.take(1)), features=stream.features)
        map_columns(head, config.columns, what=what, field=f"datasets.{name}.columns")
        stream = stream.select_columns([source for source, _ in config.columns])
        renames = {source: target for source, target in config.columns if source != target}
        stream = stream.rename_columns(renames) if renames else stream
    head = Dataset.from_list(list(stream.take(HEAD_ROWS)), features=stream.features)
    try:
        validate_for_loss(head, config, what=what)
    except DataValidationError as error:
        raise DataValidationError(
            f"{error} (checked on the first {len(head)} rows of the stream)",
            field=error.field or field,
        ) from error
    if config.max_samples is not None:
        stream = stream.take(config.max_samples)
    return stream


def _load_stream(
    name: str, config: DatasetConfig
) -> tuple[IterableDataset, Dataset | None, DatasetReport]:
    """A streamed dataset and its held-out file (read whole: it is evaluated whole)."""
    train = open_stream(name, config)
    held_out, sources = None, []
    warnings = [
        f"dataset {name!r} streams: rows are read while training, not counted or checked "
        f"beyond the first {HEAD_ROWS}, and not by the leakage check"
    ]
    if config.eval_source is not None:
        held_out, eval_report, eval_warnings = _load_eval_source(name, config, config.eval_source)
        sources.append(eval_report)
        warnings += eval_warnings
    report = DatasetReport(
        name=name,
        train_rows=0,
        eval_rows=len(held_out) if held_out is not None else 0,
        columns=list(train.column_names or []),
        sources=sources,
        warnings=warnings,
    )
    return train, held_out, report


def _load_eval_source(
    name: str, config: DatasetConfig, eval_source: DataSource
) -> tuple[Dataset, SourceReport, list[str]]:
    """The held-out rows of a dataset's `eval_source`, prepared like its training rows."""
    eval_field = f"datasets.{name}.eval_source"
    raw_eval = load_source(eval_source, what=f"dataset {name!r} (eval)", field=eval_field)
    return _prepare_source(
        name, config, raw_eval, split="eval", path=eval_source.path, field=eval_field
    )


def _load_one(
    name: str, config: DatasetConfig, *, seed: int
) -> tuple[Dataset | IterableDataset, Dataset | None, DatasetReport]:
    if config.source.streaming:
        return _load_stream(name, config)
    source_field = f"datasets.{name}.source"
    raw = load_source(config.source, what=f"dataset {name!r}", field=source_field)
    train, train_report, warnings = _prepare_source(
        name, config, raw, split="train", path=config.source.path, field=source_field
    )
    reports = [train_report]
    held_out = None
    if config.eval_source is not None:
        held_out, eval_report, eval_warnings = _load_eval_source(name, config, config.eval_source)
        reports.append(eval_report)
        warnings = [*warnings, *eval_warnings]
    elif config.eval_size is not None:
        train, held_out = _split_off_eval(
            name, train, config.eval_size, seed=seed, dropped=train_report.dropped_empty
        )
    if config.max_samples is not None and len(train) > config.max_samples:
        train = train.shuffle(seed=seed).select(range(config.max_samples))
    report = DatasetReport(
        name=name,
        train_rows=len(train),
        eval_rows=len(held_out) if held_out is not None else 0,
        columns=list(train.column_names),
        sources=reports,
        warnings=warnings,
    )
    return train, held_out, report


def load_datasets_with_report(config: RunConfig) -> tuple[DatasetDict, DatasetDict, DataReport]:
    """Build the train and held-out `DatasetDict`s of a run, keyed by dataset name, and
    report what loading found (rows, dropped blank texts, duplicates, warnings).

    The held-out split comes from `eval_source`, or is carved from the training data with
    `eval_size` and the run seed before `max_samples` is applied, so capping training rows
    never changes which rows are evaluated.
    """
    raise_problems(streaming_problems(config))
    train, held_out, reports = {}, {}, {}
    for name, dataset_config in config.datasets.items():
        train[name], eval_part, reports[name] = _load_one(name, dataset_config, seed=config.seed)
        if eval_part is not None:
            held_out[name] = eval_part
    return DatasetDict(train), DatasetDict(held_out), DataReport(datasets=reports)


def load_datasets(config: RunConfig) -> tuple[DatasetDict, DatasetDict]:
    """The train and held-out `DatasetDict`s of a run (see `load_datasets_with_report`)."""
    train, held_out, _ = load_datasets_with_report(config)
    return train, held_out


class DataCheck(BaseModel):
    """Every dataset of a run checked: one problem per dataset that cannot be used, and
    the report of those that can (its warnings are not problems: the run would go on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    problems: list[Problem]
    report: DataReport


def check_data(config: RunConfig) -> DataCheck:
    """Load and check every dataset of a run, collecting problems instead of stopping.

    Each dataset is independent, so a broken file in one does not hide a mistake in
    another; within a dataset the first problem stops it (later checks depend on it).
    """
    check, _ = check_data_keeping_held_out(config)
    return check


def check_data_keeping_splits(config: RunConfig) -> tuple[DataCheck, DatasetDict, DatasetDict]:
    """`check_data`, plus the training and held-out splits of every dataset that loaded:
    the rows the evaluators will read and the leakage check compares, so a preflight can
    check them on the real data without loading anything twice."""
    problems, reports, train, held_out = streaming_problems(config), {}, {}, {}
    for name, dataset_config in config.datasets.items():
        try:
            train_part, eval_part, reports[name] = _load_one(name, dataset_config, seed=config.seed)
        except DataValidationError as error:
            problems.append(error.as_problem(default_field=f"datasets.{name}"))
            continue
        train[name] = train_part
        if eval_part is not None:
            held_out[name] = eval_part
    check = DataCheck(problems=problems, report=DataReport(datasets=reports))
    return check, DatasetDict(train), DatasetDict(held_out)


def check_data_keeping_held_out(config: RunConfig) -> tuple[DataCheck, DatasetDict]:
    """`check_data`, plus the held-out split of every dataset that loaded."""
    check, _, held_out = check_data_keeping_splits(config)
    return check, held_out


def load_evaluator_rows(
    evaluator: EvaluatorConfig, eval_datasets: DatasetDict, *, field: str = "evaluators"
) -> Dataset:
    """The rows one evaluator scores: a held-out split, or its own file with its own mapping.

    `field` is the evaluator's config path (`evaluators.0`): errors name
    `<field>.source` or `<field>.columns`."""
    if evaluator.dataset is not None:
        dataset = eval_datasets[evaluator.dataset]
    else:
        assert evaluator.source is not None
        what = f"evaluator {evaluator.display_name!r}"
        dataset = map_columns(
            load_source(evaluator.source, what=what, field=f"{field}.source"),
            evaluator.columns,
            what=what,
            field=f"{field}.columns",
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


def stream_stand_ins(config: RunConfig, train: DatasetDict) -> DatasetDict:
    """`train` with every stream replaced by its first `HEAD_ROWS` rows: what the load
    stage hands on as an artifact (a stream cannot be stored; its rows stay at the
    source). The train stage opens the stream again (`reopen_streams`)."""
    return DatasetDict(
        {
            name: Dataset.from_list(list(rows.take(HEAD_ROWS)), features=rows.features)
            if isinstance(rows, IterableDataset)
            else rows
            for name, rows in train.items()
        }
    )


def reopen_streams(
    config: RunConfig, train: DatasetDict, *, one_shard: bool = False
) -> DatasetDict:
    """`train` with every dataset of `source.streaming: true` opened as its stream again
    (whatever stand-in the load stage passed for it); `one_shard`: each read as one
    shard, as a rank of several processes needs it (`read_as_one_shard`)."""
    streams = {
        name: open_stream(name, config.datasets[name])
        for name in train
        if name in config.datasets and config.datasets[name].source.streaming
    }
    if one_shard:
        streams = {name: read_as_one_shard(stream) for name, stream in streams.items()}
    return DatasetDict({name: streams.get(name, rows) for name, rows in train.items()})
