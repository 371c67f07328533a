"""Length-aware batching: same batches' sizes and rows, less padding, duplicates kept apart."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import trainer.training.trainer as training
from tests.conftest import pairs_dataset, tiny_run_config
from trainer.config import RunConfig
from trainer.data import load_datasets
from trainer.speed import speed_report
from trainer.speed.length_grouping import LengthGroupedBatchSampler


class _Shuffled:
    """A stand-in for a sentence-transformers batch sampler: random batches per epoch."""

    def __init__(self, rows: int, batch_size: int) -> None:
        self.rows, self.batch_size, self.epoch = rows, batch_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):  # type: ignore[no-untyped-def]
        order = torch.randperm(self.rows, generator=torch.Generator().manual_seed(self.epoch))
        for start in range(0, self.rows, self.batch_size):
            yield order[start : start + self.batch_size].tolist()

    def __len__(self) -> int:
        return -(-self.rows // self.batch_size)


def _padded_tokens(batches: list[list[int]], lengths: np.ndarray) -> int:
    return sum(int(lengths[batch].max()) * len(batch) for batch in batches)


def test_regrouped_batches_hold_the_same_rows_with_less_padding() -> None:
    lengths = np.random.default_rng(0).integers(5, 200, size=100)
    base = _Shuffled(100, 8)
    grouped = LengthGroupedBatchSampler(base, lengths, mega_batch=4, seed=1)

    plain, regrouped = list(base), list(grouped)
    assert len(regrouped) == len(grouped) == len(plain) == 13
    assert sorted(map(len, regrouped)) == sorted(map(len, plain))
    assert Counter(i for batch in regrouped for i in batch) == Counter(range(100))
    assert _padded_tokens(regrouped, lengths) < 0.8 * _padded_tokens(plain, lengths)
    # Rows only move within their pool of 4 batches.
    for pool in range(0, 13, 4):
        assert {i for b in plain[pool : pool + 4] for i in b} == {
            i for b in regrouped[pool : pool + 4] for i in b
        }

    assert list(grouped) == regrouped, "same epoch, same batches"
    grouped.set_epoch(1)
    assert base.epoch == 1 and list(grouped) != regrouped


def test_rows_sharing_a_text_never_share_a_batch() -> None:
    lengths = np.arange(48) % 3  # many equal lengths: sorting alone would keep twins together
    text = [f"text {i // 2}" for i in range(48)]  # rows 2k and 2k+1 share their text
    base = _Shuffled(48, 6)
    grouped = LengthGroupedBatchSampler(
        base, lengths, mega_batch=8, seed=0, values=lambda index: {text[index]}
    )
    for batch in grouped:
        texts = [text[i] for i in batch]
        assert len(set(texts)) == len(texts)


def test_a_pool_that_cannot_be_dealt_stays_as_drawn() -> None:
    # Rows 2, 3 and 5 share "c": each needs its own batch. Dealing by length puts rows 0
    # and 1 together, then 2, 3, 4 into the other two batches, and 5 finds none left.
    values = [{"a"}, {"b"}, {"c"}, {"c"}, {"d"}, {"c"}]
    base = [[0, 2], [1, 3], [4, 5]]
    grouped = LengthGroupedBatchSampler(
        base, np.arange(6), mega_batch=3, values=lambda index: values[index]
    )
    assert list(grouped) == base


def test_length_grouping_trains_through_build_trainer(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file)},
            speed={"length_grouping": True, "length_grouping_batches": 4, "cache": False},
        )
    )
    train, _ = load_datasets(config)
    trainer = training.build_trainer(config, train, output_dir=tmp_path)
    assert speed_report(trainer).active_levers() == [
        "tokenize_once",
        "hashed_duplicates",
        "length_grouping",
    ]
    sampler = trainer.get_train_dataloader().batch_sampler
    assert isinstance(getattr(sampler, "batch_sampler", sampler), LengthGroupedBatchSampler)
    trainer.train()
    assert trainer.state.global_step == 8


def test_length_grouping_needs_tokenize_once() -> None:
    with pytest.raises(ValueError, match=r"set speed\.tokenize_once: true or switch them off"):
        RunConfig.model_validate(
            {
                "model": {"name_or_path": "m"},
                "datasets": {"d": {"source": {"path": "d.jsonl"}}},
                "speed": {"tokenize_once": False, "length_grouping": True},
            }
        )
