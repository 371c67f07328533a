"""Dataset loading, column mapping, splits and the loss-shape checks, on real `datasets`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset

from tests.conftest import write_jsonl
from trainer.config import RunConfig
from trainer.data import load_datasets
from trainer.problems import DataValidationError


def _run(datasets: dict, **extra: object) -> RunConfig:
    return RunConfig.model_validate(
        {"model": {"name_or_path": "unused"}, "datasets": datasets, **extra}
    )


def _pairs(n: int) -> list[dict]:
    return [
        {"question": f"question {i}", "answer": f"answer {i}", "score": i / n, "kind": i % 2}
        for i in range(n)
    ]


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_local_formats_load_and_map(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"pairs.{suffix}"
    if suffix == "jsonl":
        write_jsonl(path, _pairs(20))
    elif suffix == "csv":
        Dataset.from_list(_pairs(20)).to_csv(str(path), index=False)
    else:
        Dataset.from_list(_pairs(20)).to_parquet(str(path))
    train, held_out = load_datasets(
        _run(
            {
                "qa": {
                    "source": {"path": str(path)},
                    "columns": {"question": "anchor", "answer": "positive"},
                    "eval_size": 5,
                }
            }
        )
    )
    assert train["qa"].column_names == ["anchor", "positive"]
    assert (len(train["qa"]), len(held_out["qa"])) == (15, 5)
    assert train["qa"][0]["anchor"].startswith("question ")


def test_column_order_follows_the_mapping(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", _pairs(8))
    train, _ = load_datasets(
        _run({"qa": {"source": {"path": str(path)}, "columns": {"answer": "a", "question": "b"}}})
    )
    assert train["qa"].column_names == ["a", "b"]
    assert train["qa"][0]["a"].startswith("answer ")


def test_split_is_seeded_and_independent_of_max_samples(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", _pairs(50))
    columns = {"question": "anchor", "answer": "positive"}

    def held_out(**dataset: object) -> list[str]:
        spec = {"source": {"path": str(path)}, "columns": columns, "eval_size": 0.2, **dataset}
        return load_datasets(_run({"qa": spec}))[1]["qa"]["anchor"]

    assert held_out() == held_out()
    assert held_out() == held_out(max_samples=10)
    train, _ = load_datasets(
        _run({"qa": {"source": {"path": str(path)}, "columns": columns, "max_samples": 10}})
    )
    assert len(train["qa"]) == 10


def test_missing_file_names_dataset(tmp_path: Path) -> None:
    with pytest.raises(
        DataValidationError, match=r"dataset 'qa': file .*nope\.jsonl' does not exist"
    ):
        load_datasets(_run({"qa": {"source": {"path": str(tmp_path / "nope.jsonl")}}}))


def test_missing_column_names_dataset_column_and_available(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", _pairs(4))
    with pytest.raises(DataValidationError) as info:
        load_datasets(_run({"qa": {"source": {"path": str(path)}, "columns": {"query": "anchor"}}}))
    message = str(info.value)
    assert "dataset 'qa' (train): column(s) 'query' not found" in message
    assert "the data has: question, answer, score, kind" in message


def test_ranking_loss_rejects_a_label_column(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", _pairs(4))
    columns = {"question": "anchor", "answer": "positive", "score": "score"}
    with pytest.raises(DataValidationError, match=r"takes no label, but column 'score' is one"):
        load_datasets(_run({"qa": {"source": {"path": str(path)}, "columns": columns}}))


def test_score_loss_needs_a_label(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", _pairs(4))
    spec = {
        "source": {"path": str(path)},
        "columns": {"question": "s1", "answer": "s2"},
        "loss": {"name": "CoSENTLoss"},
    }
    with pytest.raises(
        DataValidationError, match=r"CoSENTLoss needs 2 text column\(s\) and a float label"
    ):
        load_datasets(_run({"sts": spec}))


def test_integer_label_loss_rejects_float_labels(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", _pairs(4))
    spec = {
        "source": {"path": str(path)},
        "columns": {"question": "s1", "answer": "s2", "score": "label"},
        "loss": {"name": "ContrastiveLoss"},
    }
    with pytest.raises(
        DataValidationError,
        match=r"label column 'label' must be int for ContrastiveLoss, got float64",
    ):
        load_datasets(_run({"pairs": spec}))


def test_text_columns_must_be_strings(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", _pairs(4))
    spec = {"source": {"path": str(path)}, "columns": {"question": "anchor", "kind": "positive"}}
    with pytest.raises(
        DataValidationError, match=r"column 'positive' must hold strings .* got int64"
    ):
        load_datasets(_run({"qa": spec}))


def test_too_many_text_columns_for_triplet_loss(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", _pairs(4))
    spec = {
        "source": {"path": str(path)},
        "columns": {"question": "anchor", "answer": "positive"},
        "loss": {"name": "TripletLoss"},
    }
    with pytest.raises(DataValidationError, match=r"TripletLoss needs 3 text column\(s\)"):
        load_datasets(_run({"triplets": spec}))


def test_null_text_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        json.dumps({"q": "a", "d": "b"}) + "\n" + json.dumps({"q": None, "d": "c"}) + "\n"
    )
    spec = {"source": {"path": str(path)}, "columns": {"q": "anchor", "d": "positive"}}
    with pytest.raises(DataValidationError, match=r"column 'anchor' has empty \(null\) values"):
        load_datasets(_run({"qa": spec}))


def test_reserved_dataset_name_column(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"q": "a", "dataset_name": "b"}])
    with pytest.raises(DataValidationError, match=r"'dataset_name' is reserved"):
        load_datasets(_run({"qa": {"source": {"path": str(path)}}}))


def test_shipped_dataset_is_valid_for_the_quickstart() -> None:
    from tests.conftest import REPO_ROOT
    from trainer.config import load_run_config

    config = load_run_config(REPO_ROOT / "configs" / "quickstart.yaml")
    spec = config.datasets["stdlib_docs"]
    root = {
        "source": spec.source.model_copy(update={"path": str(REPO_ROOT / spec.source.path)}),
        "eval_source": spec.eval_source.model_copy(
            update={"path": str(REPO_ROOT / spec.eval_source.path)}
        ),
    }
    config = config.model_copy(update={"datasets": {"stdlib_docs": spec.model_copy(update=root)}})
    train, held_out = load_datasets(config)
    assert len(train["stdlib_docs"]) > 1000
    assert len(held_out["stdlib_docs"]) > 300
    assert not set(train["stdlib_docs"]["positive"]) & set(held_out["stdlib_docs"]["positive"])


def test_hub_style_source_with_split(tmp_path: Path) -> None:
    """A Hub id goes through `load_dataset(path, subset, split=...)`; a local dataset
    repository folder takes the same path offline, so the split selection is real."""
    repo = tmp_path / "org-dataset"
    write_jsonl(repo / "train.jsonl", _pairs(6))
    write_jsonl(repo / "test.jsonl", _pairs(3))
    columns = {"question": "anchor", "answer": "positive"}
    train, held_out = load_datasets(
        _run(
            {
                "qa": {
                    "source": {"path": str(repo)},
                    "eval_source": {"path": str(repo), "split": "test"},
                    "columns": columns,
                }
            }
        )
    )
    assert (len(train["qa"]), len(held_out["qa"])) == (6, 3)
    with pytest.raises(ValueError, match=r"Unknown split \"validation\""):
        load_datasets(_run({"qa": {"source": {"path": str(repo), "split": "validation"}}}))
