"""Paraphrase mining, translation, reranking, MSE and NanoBEIR evaluators from the config,
and `truncate_dim` per evaluator: built from rows as the run builds them, run on the tiny
model, metric names predicted without a model, required columns checked by the preflight."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset
from pydantic import ValidationError

from tests.conftest import pairs_dataset, tiny_run_config, write_jsonl
from trainer.config import EvaluatorConfig, ModelConfig, RunConfig
from trainer.evaluation import (
    build_evaluator,
    metric_names,
    primary_metric,
    primary_metric_name,
)

TEXTS = {
    "a": [f"the river {i} runs north" for i in range(6)],
    "b": [f"a stream {i} flowing northwards" for i in range(6)],
    "c": [f"taxes of year {i}" for i in range(6)],
    "d": [f"a recipe for bread {i}" for i in range(6)],
}
ROWS = {
    "paraphrase_mining": {"a": TEXTS["a"], "b": TEXTS["b"]},
    "translation": {"source": TEXTS["a"], "target": TEXTS["b"]},
    "mse": {"source": TEXTS["a"], "target": TEXTS["b"]},
    "reranking": {"query": TEXTS["a"], "pos": TEXTS["b"], "neg1": TEXTS["c"], "neg2": TEXTS["d"]},
}


@pytest.fixture(scope="module")
def tiny_model(tiny_model_path: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model_path), device="cpu")


def _config(kind: str, tiny_model_path: Path, **extra: Any) -> EvaluatorConfig:
    teacher = {"teacher": ModelConfig(name_or_path=str(tiny_model_path))} if kind == "mse" else {}
    return EvaluatorConfig(type=kind, name="ev", dataset="d", **teacher, **extra)


@pytest.mark.parametrize("kind", sorted(ROWS))
@pytest.mark.parametrize("truncate_dim", [None, 8])
def test_names_predicted_without_a_model_are_reported(
    kind: str, truncate_dim: int | None, tiny_model: Any, tiny_model_path: Path
) -> None:
    config = _config(kind, tiny_model_path, truncate_dim=truncate_dim)
    evaluator = build_evaluator(config, Dataset.from_dict(ROWS[kind]))
    assert evaluator.truncate_dim == truncate_dim
    reported = evaluator(tiny_model)
    assert sorted(metric_names(evaluator, "cosine")) == sorted(reported)
    assert primary_metric_name(evaluator, "cosine") == primary_metric(evaluator)
    assert all(isinstance(value, float) for value in reported.values())


def test_reranking_params_change_the_names(tiny_model: Any, tiny_model_path: Path) -> None:
    config = _config("reranking", tiny_model_path, params={"at_k": 3})
    evaluator = build_evaluator(config, Dataset.from_dict(ROWS["reranking"]))
    assert sorted(evaluator(tiny_model)) == ["ev_map", "ev_mrr@3", "ev_ndcg@3"]


def test_truncate_dim_scores_the_cut_embeddings(tiny_model: Any, tiny_model_path: Path) -> None:
    """`truncate_dim: 8` scores exactly what the model scores with its embeddings cut to
    8 dimensions, and not what the full 32 give."""
    rows = Dataset.from_dict(
        {"anchor": TEXTS["a"] + TEXTS["c"], "positive": TEXTS["b"] + TEXTS["d"]}
    )
    cut = build_evaluator(EvaluatorConfig(name="ev", dataset="d", truncate_dim=8), rows)
    full = build_evaluator(EvaluatorConfig(name="ev", dataset="d"), rows)
    truncated = cut(tiny_model)
    with tiny_model.truncate_embeddings(8):
        expected = full(tiny_model)
    assert truncated == pytest.approx(expected)
    assert truncated != pytest.approx(full(tiny_model))


def test_mse_teacher_defaults_to_the_base_model(tiny_model: Any, tiny_model_path: Path) -> None:
    """Without `teacher`, the run's base model is the teacher: the base model scores a
    distance of 0 to itself on identical source and target texts."""
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset("unused.jsonl")},
            evaluators=[
                {"type": "mse", "name": "drift", "source": {"path": "unused.jsonl"}},
            ],
        )
    )
    assert config.evaluators[0].teacher is None
    same = Dataset.from_dict({"source": TEXTS["a"], "target": TEXTS["a"]})
    evaluator = build_evaluator(config.evaluators[0], same, config.model)
    assert evaluator(tiny_model) == {"drift_negative_mse": pytest.approx(0.0, abs=1e-9)}
    with pytest.raises(ValueError, match="'drift' \\(mse\\) needs a teacher model"):
        build_evaluator(config.evaluators[0], same)


@pytest.mark.parametrize(
    ("kind", "columns", "message"),
    [
        ("paraphrase_mining", ["a"], r"reads 2 text columns or more: two paraphrases per row"),
        ("translation", ["a"], r"reads 2 text columns or more: a source text and its translation"),
        ("mse", ["a"], r"reads 2 text columns or more: a source text \(encoded by the teacher\)"),
        ("reranking", ["a", "b"], r"reads 3 text columns or more: a query, a relevant document"),
    ],
)
def test_preflight_names_missing_columns(
    kind: str, columns: list[str], message: str, tiny_model_path: Path, tmp_path: Path
) -> None:
    from trainer.preflight import preflight

    rows = [{column: f"{column} {i}" for column in columns} for i in range(4)]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    train = write_jsonl(tmp_path / "train.jsonl", [{"q": f"q{i}", "d": f"d{i}"} for i in range(8)])
    evaluator = {"type": kind, "name": "ev", "source": {"path": str(source)}}
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": {"source": {"path": str(train)}, "columns": {"q": "anchor", "d": "positive"}}},
            evaluators=[evaluator],
        )
    )
    report = preflight(config)
    (problem,) = [str(p) for p in report.problems if p.field.startswith("evaluators")]
    assert problem.startswith(f"evaluators.0: evaluator 'ev' ({kind}) ")
    assert re.search(message, problem), problem
    assert problem.endswith(f"the rows have: {', '.join(columns)}")


def test_nanobeir_needs_the_hub_and_the_offline_preflight_says_so(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    from trainer.preflight import preflight

    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
            evaluators=[
                {"type": "information_retrieval", "dataset": "docs", "name": "ir"},
                {"type": "nanobeir", "params": {"dataset_names": ["scifact", "nfcorpus"]}},
            ],
        )
    )
    report = preflight(config, offline=True)
    assert report.problems == []
    assert (
        "evaluators.1: NanoBEIR downloads sentence-transformers/NanoBEIR-en (scifact, "
        "nfcorpus) from the Hugging Face Hub when it runs; HF_HUB_OFFLINE=1 here, so it is "
        "not checked, and the evaluate stage needs Hub access (or those datasets in the "
        "local cache)"
    ) in report.skipped
    assert "ir_cosine_ndcg@10" in report.metrics


@pytest.mark.parametrize(
    ("evaluator", "message"),
    [
        (
            {"type": "nanobeir", "dataset": "docs"},
            "type nanobeir downloads its own datasets from the Hub: remove dataset",
        ),
        ({"type": "translation", "dataset": "docs", "teacher": {"name_or_path": "x"}},
         "teacher is for type mse, not translation"),
        ({"type": "reranking", "dataset": "docs", "truncate_dim": 0}, "greater than 0"),
        ({"type": "mse", "dataset": "docs", "teacher": {"name_or_path": "zenml:teacher@production"}},
         "teacher: a zenml: model version is resolved for the base model only"),
    ],
)  # fmt: skip
def test_bad_evaluator_config_is_refused(
    evaluator: dict, message: str, tiny_model_path: Path
) -> None:
    document = tiny_run_config(
        tiny_model_path, {"docs": pairs_dataset("unused.jsonl")}, evaluators=[evaluator]
    )
    with pytest.raises(ValidationError, match=message):
        RunConfig.model_validate(document)


def test_nanobeir_dataset_names_are_checked_without_the_hub(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    from trainer.preflight import preflight

    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
            evaluators=[{"type": "nanobeir", "params": {"dataset_names": ["scifakt"]}}],
        )
    )
    (problem,) = [str(p) for p in preflight(config, offline=True).problems]
    assert problem.startswith(
        "evaluators.0.params.dataset_names: 'scifakt' is not a NanoBEIR dataset; did you "
        "mean 'scifact'? NanoBEIR has: "
    )


def test_preflight_checks_the_mse_teacher_without_loading_it(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    from trainer.preflight import preflight

    missing = tmp_path / "no-teacher"
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
            evaluators=[
                {"type": "mse", "name": "drift", "dataset": "docs",
                 "teacher": {"name_or_path": str(missing)}},
            ],
        )
    )  # fmt: skip
    report = preflight(config)
    (problem,) = [str(p) for p in report.problems]
    assert problem.startswith(
        f"evaluators.0.teacher: local model directory '{missing}' does not exist"
    )
    assert report.metrics == ["drift_negative_mse"]
