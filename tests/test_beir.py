"""Retrieval evaluation on a corpus: BEIR folders and pair rows plus distractor documents."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from pydantic import ValidationError

from tests.static_model import static_model
from trainer.config import EvaluatorConfig, RunConfig
from trainer.data import BeirFormatError, load_beir
from trainer.evaluation import add_distractors, build_evaluator, build_evaluators, run_evaluators

# Two queries, four documents, 3-d vectors chosen so that the cosine ranks are:
#   qa: d1 (1.0), d4 (0.8), d3 (0.6), d2 (0.0)      relevant: d1          -> rank 1
#   qb: d2 (1.0), d3 (0.8), d4 (0.6), d1 (0.0)      relevant: d3, d4      -> ranks 2, 3
# qb -> d2 is judged with score 0 ("not relevant"): counting it would put a hit at rank 1.
VECTORS = {
    "qa": [1.0, 0.0, 0.0],
    "qb": [0.0, 1.0, 0.0],
    "d1": [1.0, 0.0, 0.0],
    "d2": [0.0, 1.0, 0.0],
    "d3": [0.6, 0.8, 0.0],
    "d4": [0.8, 0.6, 0.0],
}


def _dcg(relevant_ranks: list[int]) -> float:
    return sum(1.0 / math.log2(rank + 1) for rank in relevant_ranks)


# By hand: NDCG@10 = DCG of the relevant ranks / DCG of the ideal ranks 1..n_relevant.
EXPECTED_NDCG = (_dcg([1]) / _dcg([1]) + _dcg([2, 3]) / _dcg([1, 2])) / 2  # (1 + 0.6934) / 2
EXPECTED_MRR = (1 / 1 + 1 / 2) / 2


def write_beir(folder: Path, qrels: str | None = None) -> Path:
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": d, "title": "", "text": d} for d in ("d1", "d2", "d3", "d4")]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    queries = [{"_id": "A", "text": "qa"}, {"_id": "B", "text": "qb"}, {"_id": "C", "text": "qa"}]
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    default = "query-id\tcorpus-id\tscore\nA\td1\t1\nB\td3\t1\nB\td4\t2\nB\td2\t0\n"
    (folder / "qrels" / "test.tsv").write_text(qrels if qrels is not None else default)
    return folder


def _metrics(evaluator_config: dict) -> dict[str, float]:
    config = RunConfig.model_validate(
        {
            "model": {"name_or_path": "unused"},
            "datasets": {"docs": {"source": {"path": "unused.jsonl"}}},
            "evaluators": [evaluator_config],
        }
    )
    evaluators = build_evaluators(config, DatasetDict())
    return run_evaluators(static_model(VECTORS), evaluators)


@pytest.mark.parametrize("chunk", [None, 1])
def test_beir_evaluator_reproduces_hand_computed_ndcg_and_mrr(
    tmp_path: Path, chunk: int | None
) -> None:
    folder = write_beir(tmp_path / "beir")
    metrics = _metrics(
        {"type": "beir", "name": "fixture", "path": str(folder), "corpus_chunk_size": chunk}
    )
    assert metrics["fixture_cosine_ndcg@10"] == pytest.approx(EXPECTED_NDCG, abs=1e-6)
    assert metrics["fixture_cosine_mrr@10"] == pytest.approx(EXPECTED_MRR, abs=1e-6)
    assert metrics["fixture_cosine_accuracy@1"] == pytest.approx(0.5)


def test_beir_loader_keeps_judged_queries_and_positive_scores(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    data = load_beir(folder, "test")
    assert set(data.queries) == {"A", "B"}  # C has no judgement
    assert data.relevant == {"A": {"d1"}, "B": {"d3", "d4"}}
    assert len(data.corpus) == 4


def test_beir_title_is_prepended(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "T", "text": "x"}))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nA\td1\t1\n")
    assert load_beir(folder).corpus == {"d1": "T x"}


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("corpus.jsonl", '{"_id": "d1", "text": "d1"}\n{oops\n', r"corpus.jsonl line 2: not JSON"),
        ("corpus.jsonl", '{"_id": "d1"}\n', r"corpus.jsonl line 1: missing 'text'"),
        (
            "corpus.jsonl",
            '{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n',
            "line 2: duplicate _id 'd1'",
        ),
        ("queries.jsonl", '{"text": "qa"}\n', r"queries.jsonl line 1: missing '_id'"),
        ("qrels/test.tsv", "qid\tdid\tscore\n", r"test.tsv line 1: expected the header"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nA\td1\n", r"test.tsv line 2: expected 3"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nA\td1\thigh\n", r"line 2: score 'high'"),
        (
            "qrels/test.tsv",
            "query-id\tcorpus-id\tscore\nA\td1\t1\nA\td9\t1\n",
            r"line 3: unknown corpus-id 'd9'",
        ),
        (
            "qrels/test.tsv",
            "query-id\tcorpus-id\tscore\nZ\td1\t1\n",
            r"line 2: unknown query-id 'Z'",
        ),
        (
            "qrels/test.tsv",
            "query-id\tcorpus-id\tscore\nA\td1\t0\n",
            r"no judgement with a score above 0",
        ),
    ],
)
def test_beir_errors_name_file_and_line(
    tmp_path: Path, file: str, content: str, message: str
) -> None:
    folder = write_beir(tmp_path / "beir")
    (folder / file).write_text(content)
    with pytest.raises(BeirFormatError, match=message):
        load_beir(folder)


def test_beir_missing_split_names_the_file(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    with pytest.raises(BeirFormatError, match=r"qrels/dev.tsv: file not found"):
        load_beir(folder, "dev")


def test_pair_rows_plus_distractors_extend_the_corpus(tmp_path: Path) -> None:
    distractors = tmp_path / "distractors.jsonl"
    texts = ["d2", "d3", "d3", "qa-doc"]
    distractors.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    rows = Dataset.from_dict({"anchor": ["qa", "qb"], "positive": ["d1", "d3"]})
    evaluator = build_evaluator(
        EvaluatorConfig(
            dataset="docs", distractors={"source": {"path": str(distractors)}, "column": "text"}
        ),
        rows,
    )
    # d1 and d3 from the rows; d2 and qa-doc added once; the repeated d3 stays one document.
    assert sorted(evaluator.corpus) == ["d1", "d2", "d3", "qa-doc"]
    metrics = run_evaluators(static_model({**VECTORS, "qa-doc": [0.0, 0.0, 1.0]}), [evaluator])
    # qa: d1 first -> 1.0; qb: d2 (a distractor, 1.0) beats d3 (0.8) -> rank 2.
    expected = (1.0 + _dcg([2])) / 2
    assert metrics["docs-information_retrieval_cosine_ndcg@10"] == pytest.approx(expected)


def test_add_distractors_keeps_ids_of_known_documents() -> None:
    corpus = {"d0": "alpha", "d1": "beta"}
    assert add_distractors(corpus, ["beta", "gamma", "gamma"]) == {
        "d0": "alpha",
        "d1": "beta",
        "x0": "gamma",
    }


def test_missing_distractor_column_names_evaluator(tmp_path: Path) -> None:
    distractors = tmp_path / "distractors.jsonl"
    distractors.write_text(json.dumps({"body": "x"}) + "\n")
    rows = Dataset.from_dict({"anchor": ["qa"], "positive": ["d1"]})
    config = EvaluatorConfig(dataset="docs", distractors={"source": {"path": str(distractors)}})
    with pytest.raises(ValueError, match=r"distractors: column 'document' not found.*body"):
        build_evaluator(config, rows)


@pytest.mark.parametrize(
    ("evaluator", "message"),
    [
        ({"type": "beir"}, "type beir reads a BEIR folder: give path"),
        ({"type": "beir", "path": "x", "dataset": "docs"}, "not dataset or source"),
        ({"dataset": "docs", "path": "x"}, "path and split are for type beir"),
        (
            {"type": "triplet", "dataset": "docs", "distractors": {"source": {"path": "d.jsonl"}}},
            "distractors are for type information_retrieval",
        ),
        (
            {"dataset": "docs", "corpus_chunk_size": 10, "params": {"corpus_chunk_size": 5}},
            "corpus_chunk_size is set twice",
        ),
        (
            {"type": "triplet", "dataset": "docs", "corpus_chunk_size": 10},
            "for retrieval evaluators",
        ),
    ],
)
def test_retrieval_evaluator_config_errors(evaluator: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EvaluatorConfig.model_validate(evaluator)


def test_shipped_library_docs_heldout_is_a_valid_beir_folder() -> None:
    data = load_beir(Path(__file__).resolve().parent.parent / "data/library_docs/heldout")
    assert (len(data.queries), len(data.corpus)) == (1000, 5000)
    assert all(len(docs) == 1 for docs in data.relevant.values())
