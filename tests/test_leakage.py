"""Leakage check: held-out rows that also occur in training data."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import Dataset

from trainer.config import LeakageConfig, RunConfig, load_run_config
from trainer.data import (
    LeakageError,
    check_leakage,
    enforce_leakage_policy,
    load_datasets,
    normalise,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def _pairs(anchors: list[str], positives: list[str]) -> Dataset:
    return Dataset.from_dict({"anchor": anchors, "positive": positives})


def test_normalise_collapses_whitespace_and_case_folds() -> None:
    assert normalise("  Return the\tSUM \n of Straße ") == "return the sum of strasse"


def test_planted_duplicate_query_is_found_and_fails_the_run() -> None:
    train = {"docs": _pairs(["Sort a list.", "Open a file."], ["sorts", "opens"])}
    held_out = {"docs": _pairs(["open  a FILE.", "Close a file."], ["other", "closes"])}
    report = check_leakage(train, held_out)
    leak = report.datasets["docs"]
    assert (leak.shared_queries, leak.shared_positives) == (1, 0)
    assert leak.shared_queries_by_dataset == {"docs": 1}
    assert leak.query_examples == ["open  a FILE."]
    assert report.metadata() == {
        "docs": {"held_out_rows": 2, "shared_queries": 1, "shared_positives": 0}
    }
    with pytest.raises(
        LeakageError, match=r"1 of 2 held-out queries of dataset 'docs' .*'open  a FILE.'"
    ):
        enforce_leakage_policy(report, LeakageConfig())


def test_queries_are_checked_across_datasets_and_positives_separately() -> None:
    train = {
        "docs": _pairs(["a query"], ["shared doc"]),
        "faq": _pairs(["How do I sort?"], ["faq answer"]),
    }
    held_out = {"docs": _pairs(["how do i sort?", "new query"], ["x", "Shared  Doc"])}
    leak = check_leakage(train, held_out).datasets["docs"]
    assert leak.shared_queries_by_dataset == {"faq": 1}
    assert leak.shared_positives == 1 and leak.positive_examples == ["Shared  Doc"]


def test_training_rows_are_read_in_batches_through_the_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches of 3 rows over a split of 10: matches in the first, a middle and the last
    batch are found, and rows outside the split (the `select`ed indices) are not."""
    import trainer.data.leakage as leakage

    monkeypatch.setattr(leakage, "BATCH_ROWS", 3)
    table = _pairs([f"q{i}" for i in range(12)], [f"d{i}" for i in range(12)])
    train = {"docs": table.select(range(10))}  # q10, q11 are outside the split
    held_out = {"docs": _pairs(["Q0", "q4", "q9", "q10", "q11"], ["x", "y", "D9", "z", "w"])}
    leak = check_leakage(train, held_out).datasets["docs"]
    assert leak.shared_queries == 3 and leak.query_examples == ["Q0", "q4", "q9"]
    assert leak.shared_positives == 1 and leak.positive_examples == ["D9"]


def test_warn_policy_reports_instead_of_failing() -> None:
    report = check_leakage({"docs": _pairs(["q"], ["d"])}, {"docs": _pairs(["Q"], ["D"])})
    warnings = enforce_leakage_policy(report, LeakageConfig(on_query_overlap="warn"))
    assert len(warnings) == 2
    assert "held-out queries of dataset 'docs'" in warnings[0]
    assert "held-out positives of dataset 'docs'" in warnings[1]


def test_shared_positives_alone_do_not_fail() -> None:
    report = check_leakage({"docs": _pairs(["q1"], ["d"])}, {"docs": _pairs(["q2"], ["d"])})
    assert enforce_leakage_policy(report, LeakageConfig()) == [
        "1 of 1 held-out positives of dataset 'docs' also occur as training positives, e.g. 'd'"
    ]


def test_leakage_policy_is_a_strict_run_config_field() -> None:
    document = {
        "model": {"name_or_path": "m"},
        "datasets": {"docs": {"source": {"path": "t.jsonl"}}},
    }
    assert RunConfig.model_validate(document).leakage.on_query_overlap == "fail"
    with pytest.raises(ValueError, match="on_query_overlap"):
        RunConfig.model_validate({**document, "leakage": {"on_query_overlap": "ignore"}})


def test_shipped_quickstart_split_has_no_leakage() -> None:
    config = load_run_config(REPO_ROOT / "configs" / "quickstart.yaml")
    config = config.model_copy(
        update={
            "datasets": {
                name: ds.model_copy(
                    update={
                        "source": ds.source.model_copy(
                            update={"path": str(REPO_ROOT / ds.source.path)}
                        ),
                        "eval_source": ds.eval_source.model_copy(
                            update={"path": str(REPO_ROOT / ds.eval_source.path)}
                        ),
                    }
                )
                for name, ds in config.datasets.items()
            }
        }
    )
    train, held_out = load_datasets(config)
    report = check_leakage(train, held_out)
    assert report.shared_queries == 0
    assert enforce_leakage_policy(report, config.leakage) == []


def test_a_split_is_checked_as_its_own_rows_not_the_table_it_was_cut_from() -> None:
    """After `train_test_split` both sides share one Arrow table (indices mappings):
    distinct queries on each side must not count as shared."""
    from datasets import Dataset

    from trainer.data import check_leakage

    rows = Dataset.from_dict(
        {"anchor": [f"query {i}" for i in range(40)], "positive": [f"doc {i}" for i in range(40)]}
    )
    parts = rows.train_test_split(test_size=0.25, seed=42)
    report = check_leakage({"docs": parts["train"]}, {"docs": parts["test"]})
    assert report.datasets["docs"].held_out_rows == 10
    assert report.datasets["docs"].shared_queries == 0
