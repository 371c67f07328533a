"""Read a retrieval benchmark in the BEIR layout: corpus, queries and relevance judgements.

BEIR (and MTEB's retrieval tasks) ship a folder with

    corpus.jsonl        {"_id": ..., "title": ..., "text": ...} per line
    queries.jsonl       {"_id": ..., "text": ...} per line
    qrels/<split>.tsv   header `query-id<TAB>corpus-id<TAB>score`, then one judgement per line

which is what `InformationRetrievalEvaluator` needs: queries by id, documents by id and
the relevant document ids of each query. A document's title is prepended to its text,
as BEIR's own evaluation does. Judgements with score 0 mean "judged not relevant" and
are dropped; sentence-transformers' metrics use binary relevance, so grades above 0 all
count as relevant. Errors name the file and line, because these files are often
assembled by hand or by a script.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

QRELS_HEADER = ("query-id", "corpus-id", "score")


class BeirFormatError(ValueError):
    """A BEIR file is missing or malformed; the message names file and line."""


class RetrievalData(BaseModel):
    """Queries and documents by id, and the relevant document ids of each judged query."""

    model_config = ConfigDict(frozen=True)

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise BeirFormatError(f"{path}: file not found")
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise BeirFormatError(f"{path} line {number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise BeirFormatError(f"{path} line {number}: expected a JSON object")
            yield number, record


def _field(record: dict[str, Any], key: str, path: Path, number: int) -> str:
    value = record.get(key)
    if value is None:
        raise BeirFormatError(f"{path} line {number}: missing {key!r}")
    return str(value)


def read_corpus(path: Path) -> dict[str, str]:
    """`corpus.jsonl`: document id -> "title text" (title omitted when empty)."""
    corpus: dict[str, str] = {}
    for number, record in _json_lines(path):
        doc_id = _field(record, "_id", path, number)
        if doc_id in corpus:
            raise BeirFormatError(f"{path} line {number}: duplicate _id {doc_id!r}")
        text = _field(record, "text", path, number)
        title = str(record.get("title") or "").strip()
        corpus[doc_id] = f"{title} {text}".strip() if title else text
    return corpus


def read_queries(path: Path) -> dict[str, str]:
    """`queries.jsonl`: query id -> text."""
    queries: dict[str, str] = {}
    for number, record in _json_lines(path):
        query_id = _field(record, "_id", path, number)
        if query_id in queries:
            raise BeirFormatError(f"{path} line {number}: duplicate _id {query_id!r}")
        queries[query_id] = _field(record, "text", path, number)
    return queries


def read_qrels(path: Path) -> list[tuple[int, str, str, int]]:
    """`qrels/<split>.tsv`: (line number, query id, corpus id, score) per judgement."""
    if not path.is_file():
        raise BeirFormatError(f"{path}: file not found")
    judgements: list[tuple[int, str, str, int]] = []
    with path.open(encoding="utf-8") as lines:
        header = next(lines, "").rstrip("\n").split("\t")
        if tuple(header) != QRELS_HEADER:
            raise BeirFormatError(
                f"{path} line 1: expected the header {chr(9).join(QRELS_HEADER)!r} "
                f"(tab-separated), got {chr(9).join(header)!r}"
            )
        for number, line in enumerate(lines, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 3:
                raise BeirFormatError(
                    f"{path} line {number}: expected 3 tab-separated fields, got {len(fields)}"
                )
            try:
                score = int(fields[2])
            except ValueError:
                raise BeirFormatError(
                    f"{path} line {number}: score {fields[2]!r} is not an integer"
                ) from None
            judgements.append((number, fields[0], fields[1], score))
    return judgements


def load_beir(path: str | Path, split: str = "test") -> RetrievalData:
    """Load a BEIR folder; only queries with at least one relevant document are kept.

    A judgement naming a query or document id that the files do not define is an
    error (a broken corpus would otherwise lower every metric silently).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise BeirFormatError(f"{folder}: BEIR folder not found")
    corpus = read_corpus(folder / "corpus.jsonl")
    all_queries = read_queries(folder / "queries.jsonl")
    qrels_path = folder / "qrels" / f"{split}.tsv"
    relevant: dict[str, set[str]] = {}
    for number, query_id, doc_id, score in read_qrels(qrels_path):
        if query_id not in all_queries:
            raise BeirFormatError(f"{qrels_path} line {number}: unknown query-id {query_id!r}")
        if doc_id not in corpus:
            raise BeirFormatError(f"{qrels_path} line {number}: unknown corpus-id {doc_id!r}")
        if score > 0:
            relevant.setdefault(query_id, set()).add(doc_id)
    if not relevant:
        raise BeirFormatError(f"{qrels_path}: no judgement with a score above 0")
    queries = {qid: text for qid, text in all_queries.items() if qid in relevant}
    return RetrievalData(queries=queries, corpus=corpus, relevant=relevant)
