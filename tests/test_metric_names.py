"""The metric names derived without a model are exactly what the evaluators report.

Each case builds a real sentence-transformers evaluator from config (as the run does),
predicts its keys and primary metric, then runs it on a tiny model and compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset

from trainer.config import EvaluatorConfig, ModelConfig
from trainer.evaluation import (
    build_evaluator,
    metric_names,
    model_similarity,
    primary_metric,
    primary_metric_name,
)

ROWS: dict[str, dict[str, list[Any]]] = {
    "information_retrieval": {
        "anchor": [f"question {i}" for i in range(8)],
        "positive": [f"answer number {i}" for i in range(8)],
    },
    "embedding_similarity": {
        "sentence1": [f"a sentence {i}" for i in range(8)],
        "sentence2": [f"another one {i}" for i in range(8)],
        "score": [i / 8 for i in range(8)],
    },
    "triplet": {
        "anchor": [f"q {i}" for i in range(8)],
        "positive": [f"p {i}" for i in range(8)],
        "negative": [f"n {i}" for i in range(8)],
    },
    "binary_classification": {
        "sentence1": [f"left {i}" for i in range(8)],
        "sentence2": [f"right {i}" for i in range(8)],
        "label": [i % 2 for i in range(8)],
    },
}

CASES = [
    ("information_retrieval", {}),
    ("information_retrieval", {"ndcg_at_k": [5, 10], "mrr_at_k": [3], "map_at_k": [2, 4]}),
    ("information_retrieval", {"main_score_function": "cosine", "accuracy_at_k": [2]}),
    ("embedding_similarity", {}),
    ("embedding_similarity", {"similarity_fn_names": ["cosine", "dot"]}),
    ("embedding_similarity", {"main_similarity": "manhattan"}),
    ("triplet", {}),
    ("triplet", {"similarity_fn_names": ["cosine", "euclidean"]}),
    ("triplet", {"main_similarity_function": "dot"}),
    ("binary_classification", {}),
    ("binary_classification", {"similarity_fn_names": ["cosine", "dot"]}),
]


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_path), device="cpu")


@pytest.mark.parametrize(("kind", "params"), CASES, ids=lambda value: str(value))
def test_predicted_names_are_what_the_evaluator_reports(
    tiny_model, tiny_model_path: Path, kind: str, params: dict
) -> None:
    config = EvaluatorConfig(type=kind, name="ev", dataset="d", params=params)
    evaluator = build_evaluator(config, Dataset.from_dict(ROWS[kind]))
    similarity = model_similarity(ModelConfig(name_or_path=str(tiny_model_path)))
    assert similarity == "cosine"
    predicted = metric_names(evaluator, similarity)
    predicted_primary = primary_metric_name(evaluator, similarity)

    reported = evaluator(tiny_model)
    assert sorted(predicted) == sorted(reported)
    assert predicted_primary == primary_metric(evaluator)


def test_a_model_saved_with_dot_product_names_its_metrics_dot(tiny_model, tmp_path: Path) -> None:
    tiny_model.similarity_fn_name = "dot"
    try:
        tiny_model.save(str(tmp_path / "dot-model"))
    finally:
        tiny_model.similarity_fn_name = "cosine"
    from sentence_transformers import SentenceTransformer

    similarity = model_similarity(ModelConfig(name_or_path=str(tmp_path / "dot-model")))
    assert similarity == "dot"
    config = EvaluatorConfig(name="ev", dataset="d")
    evaluator = build_evaluator(config, Dataset.from_dict(ROWS["information_retrieval"]))
    reported = evaluator(SentenceTransformer(str(tmp_path / "dot-model"), device="cpu"))
    assert sorted(metric_names(evaluator, similarity)) == sorted(reported)
    assert "ev_dot_ndcg@10" in reported


def test_similarity_of_a_hub_model_not_in_the_cache_is_unknown() -> None:
    assert model_similarity(ModelConfig(name_or_path="nobody/not-cached-model")) is None
