"""Rows shared between training and held-out data, found before anything trains.

A held-out query that also appears in training makes the evaluation partly measure
memorisation: the fine-tuned model has seen that exact query next to its answer. Such
overlap creeps in through duplicated source rows, a random `eval_size` split of data
with repeats, or an evaluation file cut from the same dump as the training file.

Texts match after collapsing whitespace and case folding (`"  Return the SUM"` equals
`"return the sum"`). Anchors (first text column) and positives (second text column)
are checked separately: shared positives are common and often harmless (two queries for
one document), shared anchors are not. Held-out anchors are checked against the
anchors of every training dataset, since datasets are trained together.

Only the held-out side is held in memory (its normalised texts, as sets); training rows
are read in batches of `BATCH_ROWS` and checked against those sets, so memory does not
grow with the training data (a million pairs would otherwise mean millions of Python
strings) and the work is about a second per million rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from datasets import Dataset

from trainer.catalog import LABEL_COLUMNS
from trainer.config import LeakageConfig
from trainer.results import DatasetLeakage, LeakageReport

MAX_EXAMPLES = 3
BATCH_ROWS = 10_000
"""Training rows normalised at a time."""


class LeakageError(ValueError):
    """Held-out queries occur in training data; the message names dataset, count, example."""


def normalise(text: str) -> str:
    """The comparison key: whitespace runs collapsed to one space, trimmed, case-folded."""
    return " ".join(text.split()).casefold()


def _text_columns(dataset: Dataset) -> list[str]:
    return [c for c in dataset.column_names if c not in (*LABEL_COLUMNS, "dataset_name")]


def _batches(dataset: Dataset, position: int) -> Iterator[list[str]] | None:
    """Normalised texts of the `position`-th text column, `BATCH_ROWS` rows at a time;
    None when the dataset has no such column."""
    columns = _text_columns(dataset)
    if len(columns) <= position:
        return None
    column = columns[position]
    # `with_format("arrow")` honours a split's indices mapping; `dataset.data` would be
    # the whole table the split was cut from.
    arrow = dataset.with_format("arrow")

    def batches() -> Iterator[list[str]]:
        for start in range(0, len(dataset), BATCH_ROWS):
            texts = arrow[start : start + BATCH_ROWS][column].to_pylist()
            yield [normalise(str(text)) for text in texts]

    return batches()


def _keys(dataset: Dataset, position: int) -> list[str] | None:
    """All normalised texts of a column: for the held-out side only."""
    batches = _batches(dataset, position)
    return None if batches is None else [key for batch in batches for key in batch]


def _found(dataset: Dataset, position: int, wanted: set[str]) -> set[str]:
    """Which of `wanted` occur in the `position`-th text column, read in batches."""
    batches = _batches(dataset, position) if wanted else None
    found: set[str] = set()
    for batch in batches or ():
        found.update(key for key in batch if key in wanted)
    return found


def _shared(held_out: list[str], training: set[str]) -> list[int]:
    return [row for row, key in enumerate(held_out) if key in training]


def _examples(dataset: Dataset, position: int, rows: Iterable[int]) -> list[str]:
    column = _text_columns(dataset)[position]
    picked = list(rows)[:MAX_EXAMPLES]
    return [str(text) for text in dataset.select(picked)[column]] if picked else []


def check_leakage(train: Mapping[str, Dataset], held_out: Mapping[str, Dataset]) -> LeakageReport:
    """Count held-out rows whose anchor or positive also occurs in training data.

    `held_out` may hold any named row sets with (query, document) columns first, e.g.
    the held-out splits plus an evaluator's own rows or a BEIR set's queries.
    """
    # A stream (`source.streaming`) is not read whole here: the preflight allows one only
    # with `leakage.on_query_overlap: warn`, and the load stage says it was not checked.
    train = {name: rows for name, rows in train.items() if isinstance(rows, Dataset)}
    held_out_anchors = {name: _keys(rows, 0) or [] for name, rows in held_out.items()}
    wanted = set().union(*held_out_anchors.values()) if held_out_anchors else set()
    # Per training dataset: which held-out anchors it contains.
    train_anchors = {name: _found(rows, 0, wanted) for name, rows in train.items()}
    all_anchors = set().union(*train_anchors.values()) if train_anchors else set()
    report: dict[str, DatasetLeakage] = {}
    for name, rows in held_out.items():
        anchors = held_out_anchors[name]
        shared_queries = _shared(anchors, all_anchors)
        by_dataset = {
            source: count
            for source, keys in train_anchors.items()
            if (count := len(_shared(anchors, keys)))
        }
        positives = _keys(rows, 1)
        shared_positives: list[int] = []
        if positives is not None and name in train:
            shared_positives = _shared(positives, _found(train[name], 1, set(positives)))
        report[name] = DatasetLeakage(
            dataset=name,
            held_out_rows=len(rows),
            shared_queries=len(shared_queries),
            shared_queries_by_dataset=by_dataset,
            shared_positives=len(shared_positives),
            query_examples=_examples(rows, 0, shared_queries),
            positive_examples=_examples(rows, 1, shared_positives) if shared_positives else [],
        )
    return LeakageReport(datasets=report)


def enforce_leakage_policy(report: LeakageReport, policy: LeakageConfig) -> list[str]:
    """Raise `LeakageError` for shared queries under `fail`; return warning lines otherwise.

    Shared positives never fail a run; they are returned as warnings to log.
    """
    problems: list[str] = []
    for name, leak in report.datasets.items():
        if leak.shared_queries:
            sources = ", ".join(f"{src}: {n}" for src, n in leak.shared_queries_by_dataset.items())
            problems.append(
                f"{leak.shared_queries} of {leak.held_out_rows} held-out queries of dataset "
                f"{name!r} also occur in training data ({sources}), e.g. "
                f"{leak.query_examples[0]!r}"
            )
    if problems and policy.on_query_overlap == "fail":
        raise LeakageError(
            "; ".join(problems) + ". Remove them from one side, or set "
            "leakage.on_query_overlap: warn to evaluate anyway"
        )
    warnings = list(problems)
    for name, leak in report.datasets.items():
        if leak.shared_positives:
            warnings.append(
                f"{leak.shared_positives} of {leak.held_out_rows} held-out positives of dataset "
                f"{name!r} also occur as training positives, e.g. {leak.positive_examples[0]!r}"
            )
    return warnings
