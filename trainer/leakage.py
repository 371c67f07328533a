"""Rows shared between training and held-out data, found before anything trains.

A held-out query that also appears in training makes the evaluation partly measure
memorisation: the fine-tuned model has seen that exact query next to its answer. Such
overlap creeps in through duplicated source rows, a random `eval_size` split of data
with repeats, or an evaluation file cut from the same dump as the training file.

Texts match after collapsing whitespace and case folding (`"  Return the SUM"` equals
`"return the sum"`). Anchors (first text column) and positives (second text column)
are checked separately: shared positives are common and often harmless (two queries for
one document), shared anchors are not. Held-out anchors are checked against the
anchors of every training dataset, since datasets are trained together. Work is set
membership over normalised unique strings: about a second per million rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from datasets import Dataset
from pydantic import BaseModel, ConfigDict

from trainer.config import LeakageConfig
from trainer.losses import LABEL_COLUMNS

MAX_EXAMPLES = 3


class LeakageError(ValueError):
    """Held-out queries occur in training data; the message names dataset, count, example."""


class DatasetLeakage(BaseModel):
    """Overlap of one held-out split with the training data."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    held_out_rows: int
    shared_queries: int
    """Held-out rows whose anchor is an anchor of some training dataset."""
    shared_queries_by_dataset: dict[str, int]
    """The same, per training dataset the anchor was found in (a row may count in several)."""
    shared_positives: int
    """Held-out rows whose positive is a positive of this dataset's training rows."""
    query_examples: list[str]
    positive_examples: list[str]


class LeakageReport(BaseModel):
    """Overlap per held-out split; logged as metadata and shown in the model card."""

    model_config = ConfigDict(frozen=True)

    datasets: dict[str, DatasetLeakage] = {}

    @property
    def shared_queries(self) -> int:
        return sum(leak.shared_queries for leak in self.datasets.values())

    def metadata(self) -> dict[str, dict[str, int]]:
        """Counts only (examples stay out of metadata: they may be sensitive text)."""
        return {
            name: {
                "held_out_rows": leak.held_out_rows,
                "shared_queries": leak.shared_queries,
                "shared_positives": leak.shared_positives,
            }
            for name, leak in self.datasets.items()
        }


def normalise(text: str) -> str:
    """The comparison key: whitespace runs collapsed to one space, trimmed, case-folded."""
    return " ".join(text.split()).casefold()


def _text_columns(dataset: Dataset) -> list[str]:
    return [c for c in dataset.column_names if c not in (*LABEL_COLUMNS, "dataset_name")]


def _keys(dataset: Dataset, position: int) -> list[str] | None:
    columns = _text_columns(dataset)
    if len(columns) <= position:
        return None
    # `with_format("arrow")` honours a split's indices mapping; `dataset.data` would be
    # the whole table the split was cut from.
    texts = dataset.with_format("arrow")[columns[position]]
    return [normalise(str(text)) for text in texts.to_pylist()]


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
    train_anchors = {name: set(_keys(rows, 0) or ()) for name, rows in train.items()}
    all_anchors = set().union(*train_anchors.values()) if train_anchors else set()
    report: dict[str, DatasetLeakage] = {}
    for name, rows in held_out.items():
        anchors = _keys(rows, 0) or []
        shared_queries = _shared(anchors, all_anchors)
        by_dataset = {
            source: count
            for source, keys in train_anchors.items()
            if (count := len(_shared(anchors, keys)))
        }
        positives = _keys(rows, 1)
        train_positives = _keys(train[name], 1) if name in train else None
        shared_positives: list[int] = []
        if positives is not None and train_positives is not None:
            shared_positives = _shared(positives, set(train_positives))
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
