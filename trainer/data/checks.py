"""Content checks of a mapped dataset, and the report the load stage returns.

Shape checks (columns, types, nulls) live in `trainer.data.loading`; this module looks at the
texts themselves, where a dataset can be well-formed and still useless:

* empty or whitespace-only texts are **dropped** with a warning and a count: a pair
  with an empty side teaches nothing and, in a ranking loss, is a free negative. When
  every row would be dropped it is an error instead.
* exact duplicate rows are **counted and warned about**, not dropped: repeating rows can
  be deliberate up-weighting, and the `no_duplicates` batch sampler already keeps them
  out of one batch.
* degenerate data is an **error**: anchor == positive in every row,
  a text column holding one distinct text, or a label column holding one value. Such
  data trains to a loss near 0.0 and would pass a gate while learning nothing.

Everything is computed with `pyarrow.compute` over the Arrow table (no Python loop over
rows, no pandas, no copy of the texts but one bounded chunk at a time), so the checks add
little to the memory the Arrow data itself takes.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset

from trainer.problems import DataValidationError
from trainer.results import SourceReport

logger = logging.getLogger(__name__)


def _blank(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where a text is empty or only (Unicode) whitespace; a boolean per row, no copy
    of the texts (nulls are rejected before this)."""
    return pc.or_(pc.equal(column, ""), pc.utf8_is_space(column))


def _single_value(column: pa.ChunkedArray, keep: pa.ChunkedArray, first: int) -> bool:
    """Whether every kept row holds the value of the first kept row (no hash table)."""
    same = pc.equal(column, column[first])
    return bool(pc.all(pc.or_(same, pc.invert(keep))).as_py())


def _duplicate_rows(table: pa.Table, keep: pa.ChunkedArray) -> int:
    """Kept rows equal (in every column) to an earlier kept row.

    Each column becomes its dense rank (equal values, equal rank) and the ranks of a
    row fold into one integer key; duplicates are rows minus distinct keys. Ranking
    sorts indices over the texts where they are (memory-mapped): the extra memory is a
    few integers per row, where a hash group-by or a `take` of the texts would copy
    them (for 1M pairs, several hundred megabytes).
    """

    def dense(values: Any) -> Any:
        return pc.rank(values, sort_keys="ascending", tiebreaker="dense")

    rows = pa.scalar(table.num_rows + 1, pa.uint64())
    key = None
    for name in table.column_names:
        rank = dense(table.column(name))
        # Both are at most the row count, so the fold fits in 64 bits; re-ranking keeps it so.
        key = rank if key is None else dense(pc.add(pc.multiply(key, rows), rank))
    kept = pc.filter(key, keep)
    distinct = pc.max(dense(kept)).as_py() or 0  # dense ranks count distinct keys, no hash table
    return len(kept) - int(distinct)


def _any(masks: list[pa.ChunkedArray]) -> pa.ChunkedArray:
    result = masks[0]
    for mask in masks[1:]:
        result = pc.or_(result, mask)
    return result


def _count(mask: pa.ChunkedArray) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _describe(columns: list[str]) -> str:
    return " or ".join(repr(column) for column in columns)


def check_content(
    dataset: Dataset,
    texts: list[str],
    labels: list[str],
    *,
    what: str,
    path: str,
    split: str,
    field: str,
) -> tuple[Dataset, SourceReport, list[str]]:
    """Drop blank texts, count duplicates, reject degenerate data.

    Returns the dataset without blank rows, what was found, and the warnings (also
    logged). `dataset` must hold only the mapped columns, with string text columns.
    """
    table = dataset.select_columns([*texts, *labels]).with_format("arrow")[:]
    rows = table.num_rows
    warnings: list[str] = []
    blank = _any([_blank(table.column(column)) for column in texts])
    dropped = _count(blank)
    if dropped == rows:
        raise DataValidationError(
            f"{what}: all {rows} rows of {path} have an empty or whitespace-only "
            f"{_describe(texts)}; check the column mapping",
            field=field,
        )
    keep = pc.invert(blank)
    if dropped:
        dataset = dataset.select(pc.indices_nonzero(keep).cast(pa.int64()).to_numpy())
        warnings.append(
            f"{what}: dropped {dropped} of {rows} rows of {path} whose "
            f"{_describe(texts)} is empty or whitespace-only"
        )
    kept = rows - dropped
    identical = 0
    if len(texts) > 1 and kept > 1:
        pair = texts[:2]  # anchor and its positive (or the two texts of a scored pair)
        equal = pc.equal(table.column(pair[0]), table.column(pair[1]))
        identical = _count(pc.and_(equal, keep))
        if identical == kept:
            raise DataValidationError(
                f"{what}: in every row of {path}, {pair[0]} == {pair[1]}; such pairs train "
                "to loss 0.0 without learning anything; check the column mapping",
                field=field,
            )
    if kept > 1:
        first = pc.index(keep, True).as_py()
        for column in [*texts, *labels]:
            if _single_value(table.column(column), keep, first):
                value = table.column(column)[first].as_py()
                kind = "text" if column in texts else "label"
                raise DataValidationError(
                    f"{what}: column {column!r} of {path} holds one {kind} ({value!r:.60}) "
                    f"in all {kept} rows; the loss has nothing to contrast and trains to "
                    "0.0 without learning anything",
                    field=field,
                )
    if identical:
        warnings.append(
            f"{what}: {identical} of {kept} rows of {path} have {texts[0]} == {texts[1]}; "
            "they add no training signal"
        )
    duplicates = _duplicate_rows(table, keep) if kept > 1 else 0
    if duplicates:
        warnings.append(
            f"{what}: {duplicates} of {kept} rows of {path} repeat an earlier row exactly; "
            "they are kept (deduplicate the file if that is not intended)"
        )
    for warning in warnings:
        logger.warning(warning)
    report = SourceReport(
        path=path,
        split=split,
        rows_read=rows,
        dropped_empty=dropped,
        duplicate_rows=duplicates,
        identical_text_rows=identical,
    )
    return dataset, report, warnings
