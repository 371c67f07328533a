"""Evaluators from config on the tiny model: every type, held-out splits and separate files."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from tests.conftest import write_jsonl
from trainer.config import EvaluatorConfig, RunConfig
from trainer.evaluation import (
    build_evaluator,
    build_evaluators,
    compare,
    information_retrieval_inputs,
)
from trainer.models import load_model
from trainer.problems import DataValidationError
from trainer.reports import render_comparison_html


def _config(evaluators: list[dict], tiny_model_path: Path) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"name_or_path": str(tiny_model_path)},
            "datasets": {"docs": {"source": {"path": "unused.jsonl"}, "eval_size": 0.5}},
            "evaluators": evaluators,
        }
    )


def test_information_retrieval_inputs_share_ids_for_repeated_texts() -> None:
    queries, corpus, relevant = information_retrieval_inputs(["q1", "q2", "q1"], ["d1", "d1", "d2"])
    assert queries == {"q0": "q1", "q1": "q2"}
    assert corpus == {"d0": "d1", "d1": "d2"}
    assert relevant == {"q0": {"d0", "d1"}, "q1": {"d0"}}


def test_all_evaluator_types_score_both_models(tiny_model_path: Path, tmp_path: Path) -> None:
    held_out = DatasetDict(
        {
            "docs": Dataset.from_dict(
                {"anchor": [f"q {i}" for i in range(8)], "positive": [f"d {i}" for i in range(8)]}
            )
        }
    )
    sts = write_jsonl(
        tmp_path / "sts.jsonl",
        [{"a": f"s {i}", "b": f"t {i}", "sim": i / 7, "same": i % 2} for i in range(8)],
    )
    triplets = write_jsonl(
        tmp_path / "triplets.jsonl",
        [{"a": f"x {i}", "p": f"y {i}", "n": f"z {i}"} for i in range(6)],
    )
    config = _config(
        [
            {"name": "ir", "dataset": "docs"},
            {
                "type": "embedding_similarity",
                "name": "sts",
                "source": {"path": str(sts)},
                "columns": {"a": "sentence1", "b": "sentence2", "sim": "score"},
            },
            {
                "type": "binary_classification",
                "name": "dup",
                "source": {"path": str(sts)},
                "columns": {"a": "sentence1", "b": "sentence2", "same": "label"},
            },
            {"type": "triplet", "name": "tri", "source": {"path": str(triplets)}},
        ],
        tiny_model_path,
    )
    evaluators = build_evaluators(config, held_out)
    model = load_model(config.model)
    result = compare(model, model, evaluators)

    assert result.primary_metric == "ir_cosine_ndcg@10"
    for key in ("ir_cosine_ndcg@10", "ir_cosine_mrr@10", "ir_cosine_recall@10"):
        assert key in result.base
    assert "sts_spearman_cosine" in result.base
    assert "dup_cosine_ap" in result.base
    assert "tri_cosine_accuracy" in result.base
    # Same model, same data: identical scores and zero improvement.
    assert result.base == result.finetuned
    assert set(result.improvement.values()) == {0.0}

    html = render_comparison_html(result, title="tiny")
    assert "<table" in html and "ir_cosine_ndcg@10" in html and "<script" not in html


def test_default_evaluator_is_retrieval_on_pair_splits(tiny_model_path: Path) -> None:
    held_out = DatasetDict(
        {
            "pairs": Dataset.from_dict({"q": ["a", "b"], "d": ["c", "d"]}),
            "scored": Dataset.from_dict({"s1": ["a"], "s2": ["b"], "score": [0.5]}),
        }
    )
    evaluators = build_evaluators(_config([], tiny_model_path), held_out)
    assert [evaluator.name for evaluator in evaluators] == ["pairs-information_retrieval"]


def test_missing_evaluator_column_names_evaluator(tiny_model_path: Path) -> None:
    rows = Dataset.from_dict({"anchor": ["a"], "positive": ["b"]})
    evaluator = EvaluatorConfig(dataset="docs", name="ir", query_column="question")
    with pytest.raises(
        DataValidationError, match=r"evaluator 'ir': column\(s\) 'question' not found"
    ):
        build_evaluator(evaluator, rows)
    similarity = EvaluatorConfig(type="embedding_similarity", dataset="docs", name="sts")
    with pytest.raises(
        DataValidationError, match=r"evaluator 'sts': needs a 'label' or 'score' column"
    ):
        build_evaluator(similarity, rows)
