"""What loading found, as a report: blank texts dropped with counts, duplicates counted,
warnings for metadata and the card, and every dataset's problem collected at once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import write_jsonl
from trainer.config import RunConfig
from trainer.data import check_data, load_datasets, load_datasets_with_report
from trainer.results import DataReport


def _run(datasets: dict) -> RunConfig:
    return RunConfig.model_validate({"model": {"name_or_path": "unused"}, "datasets": datasets})


def _rows(n: int) -> list[dict]:
    return [{"q": f"question {i}", "d": f"answer {i}"} for i in range(n)]


COLUMNS = {"q": "anchor", "d": "positive"}


def test_blank_texts_are_dropped_counted_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = [*_rows(20), {"q": "   ", "d": "x"}, {"q": "y", "d": ""}, {"q": "\t\n", "d": " "}]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="trainer.data.checks"):
        train, held_out, report = load_datasets_with_report(
            _run({"qa": {"source": {"path": str(path)}, "columns": COLUMNS, "eval_size": 4}})
        )
    assert (len(train["qa"]), len(held_out["qa"])) == (16, 4)
    assert not {"", "   ", "\t\n"} & set(
        list(train["qa"]["anchor"]) + list(held_out["qa"]["anchor"])
    )
    qa = report.datasets["qa"]
    assert (qa.train_rows, qa.eval_rows, qa.columns) == (16, 4, ["anchor", "positive"])
    (source,) = qa.sources
    assert (source.rows_read, source.dropped_empty, source.duplicate_rows) == (23, 3, 0)
    assert qa.dropped_empty == 3
    (warning,) = qa.warnings
    assert "dropped 3 of 23 rows of" in warning
    assert "'anchor' or 'positive' is empty or whitespace-only" in warning
    assert warning in caplog.text


def test_duplicates_and_identical_pairs_are_counted_and_kept(tmp_path: Path) -> None:
    rows = [*_rows(10), *_rows(3), {"q": "same", "d": "same"}]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    train, _, report = load_datasets_with_report(
        _run({"qa": {"source": {"path": str(path)}, "columns": COLUMNS}})
    )
    assert len(train["qa"]) == 14
    (source,) = report.datasets["qa"].sources
    assert (source.duplicate_rows, source.identical_text_rows) == (3, 1)
    warnings = report.warnings
    assert any("1 of 14 rows of" in w and "have anchor == positive" in w for w in warnings)
    assert any("3 of 14 rows of" in w and "repeat an earlier row exactly" in w for w in warnings)


def test_a_label_column_takes_part_in_duplicate_detection(tmp_path: Path) -> None:
    rows = [{"s1": "a", "s2": "b", "score": 0.1}, {"s1": "a", "s2": "b", "score": 0.9}]
    rows += [{"s1": f"x{i}", "s2": f"y{i}", "score": 0.5} for i in range(4)]
    path = write_jsonl(tmp_path / "sts.jsonl", rows)
    _, _, report = load_datasets_with_report(
        _run({"sts": {"source": {"path": str(path)}, "loss": {"name": "CoSENTLoss"}}})
    )
    assert report.datasets["sts"].duplicate_rows == 0


def test_eval_source_gets_its_own_checks(tmp_path: Path) -> None:
    train_path = write_jsonl(tmp_path / "train.jsonl", _rows(8))
    eval_path = write_jsonl(tmp_path / "eval.jsonl", [*_rows(4), {"q": "", "d": "z"}])
    spec = {
        "source": {"path": str(train_path)},
        "eval_source": {"path": str(eval_path)},
        "columns": COLUMNS,
    }
    _, held_out, report = load_datasets_with_report(_run({"qa": spec}))
    assert len(held_out["qa"]) == 4
    train_source, eval_source = report.datasets["qa"].sources
    assert (train_source.split, eval_source.split) == ("train", "eval")
    assert eval_source.dropped_empty == 1
    assert "dataset 'qa' (eval): dropped 1 of 5 rows" in report.warnings[0]


def test_split_and_cap_are_unchanged_for_clean_data(tmp_path: Path) -> None:
    """Checks run before the split; for clean data the held-out rows are the same as a
    plain `train_test_split` of the file with the run seed."""
    from datasets import load_dataset

    path = write_jsonl(tmp_path / "pairs.jsonl", _rows(40))
    spec = {"source": {"path": str(path)}, "columns": COLUMNS, "eval_size": 0.25}
    _, held_out = load_datasets(_run({"qa": spec}))
    plain = load_dataset("json", data_files=str(path), split="train")
    expected = plain.train_test_split(test_size=0.25, seed=42)["test"]["q"]
    assert list(held_out["qa"]["anchor"]) == list(expected)


def test_the_report_counts_rows_and_round_trips_as_json(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", [*_rows(6), {"q": " ", "d": "x"}])
    train, held_out, report = load_datasets_with_report(
        _run({"qa": {"source": {"path": str(path)}, "columns": COLUMNS, "eval_size": 2}})
    )
    qa = report.datasets["qa"]
    assert (qa.train_rows, qa.eval_rows, qa.columns) == (4, 2, ["anchor", "positive"])
    assert (len(train["qa"]), len(held_out["qa"])) == (4, 2)
    assert (qa.dropped_empty, qa.duplicate_rows) == (1, 0)
    assert len(qa.warnings) == 1 and report.warnings == qa.warnings
    assert DataReport.model_validate_json(report.model_dump_json()) == report


def test_check_data_collects_one_problem_per_broken_dataset(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", _rows(6))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    same = write_jsonl(tmp_path / "same.jsonl", [{"q": f"t{i}", "d": f"t{i}"} for i in range(4)])
    check = check_data(
        _run(
            {
                "good": {"source": {"path": str(good)}, "columns": COLUMNS},
                "empty": {"source": {"path": str(empty)}},
                "same": {"source": {"path": str(same)}, "columns": COLUMNS},
                "small": {"source": {"path": str(good)}, "columns": COLUMNS, "eval_size": 9},
            }
        )
    )
    fields = [problem.field for problem in check.problems]
    assert fields == ["datasets.empty.source", "datasets.same.source", "datasets.small.eval_size"]
    assert "is empty (no rows)" in check.problems[0].message
    assert "train to loss 0.0" in check.problems[1].message
    assert "eval_size 9 asks for 9 held-out rows, but the data has 6 rows" in str(check.problems[2])
    assert set(check.report.datasets) == {"good"}


def test_column_problems_name_the_columns_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", _rows(4))
    check = check_data(_run({"qa": {"source": {"path": str(path)}, "columns": {"x": "anchor"}}}))
    (problem,) = check.problems
    assert problem.field == "datasets.qa.columns"
    assert "column(s) 'x' not found; the data has: q, d" in problem.message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_duplicate_count_matches_a_plain_count(seed: int) -> None:
    """The rank-key count equals counting distinct rows in Python; rows dropped as
    blank take no part; chunked Arrow input (several record batches) counts the same."""
    import random

    from datasets import Dataset, concatenate_datasets

    from trainer.data import checks as data_report

    rng = random.Random(seed)
    rows = [
        {
            "anchor": rng.choice(["a", "b", "c", " "]),
            "positive": rng.choice(["x", "y"]),
            "score": rng.choice([0.0, 1.0]),
        }
        for _ in range(60)
    ]
    kept = [(r["anchor"], r["positive"], r["score"]) for r in rows if r["anchor"].strip()]
    expected = len(kept) - len(set(kept))
    chunked = concatenate_datasets([Dataset.from_list(rows[:25]), Dataset.from_list(rows[25:])])
    _, report, _ = data_report.check_content(
        chunked,
        ["anchor", "positive"],
        ["score"],
        what="dataset 'qa'",
        path="rows",
        split="train",
        field="datasets.qa.source",
    )
    assert report.dropped_empty == 60 - len(kept)
    assert report.duplicate_rows == expected
