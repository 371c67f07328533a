"""Length-aware batching that keeps in-batch negatives random: regroup within mega-batches.

A padded batch costs as much as its longest row. Sorting the whole dataset by length
would make batches cheap but would also make every batch's rows (and so every in-batch
negative) alike in length, and the batch order predictable. This sampler takes the
batches the configured sampler draws (random, no duplicates, ...), pools `mega_batch`
of them, sorts the pooled rows by length, deals them into batches of the same sizes and
shuffles the order of those batches. Rows still meet random partners from a random pool
of `mega_batch` x batch-size rows; only their length is alike.

With a duplicate check (`values`), a row never joins a batch that already holds one of
its texts; a pool that cannot be dealt that way is yielded as the original batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import numpy as np
import torch
from torch.utils.data import BatchSampler


class LengthGroupedBatchSampler(BatchSampler):
    """Wraps a batch sampler; same number and sizes of batches, grouped by row length."""

    def __init__(
        self,
        base: Iterable[list[int]],
        lengths: np.ndarray,
        *,
        mega_batch: int,
        seed: int = 0,
        values: Callable[[int], set[str]] | None = None,
    ) -> None:
        self.base = base
        self.lengths = lengths
        self.mega_batch = mega_batch
        self.seed = seed
        self.values = values
        self.epoch = 0
        self.batch_size = getattr(base, "batch_size", None)
        self.drop_last = getattr(base, "drop_last", False)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[list[int]]:
        # Its own generator: the base sampler's random stream stays exactly as without us.
        generator = torch.Generator().manual_seed(self.seed + 7919 * (self.epoch + 1))
        batches = iter(self.base)
        while pool := list(islice(batches, self.mega_batch)):
            yield from self._regroup(pool, generator)

    def _regroup(self, pool: list[list[int]], generator: torch.Generator) -> list[list[int]]:
        sizes = [len(batch) for batch in pool]
        rows = sorted(chain_rows(pool), key=lambda index: self.lengths[index])
        dealt: list[list[int]] = [[] for _ in sizes]
        seen: list[set[str]] = [set() for _ in sizes]
        open_from = 0
        for row in rows:
            row_values = self.values(row) if self.values else set()
            slot = next(
                (
                    slot
                    for slot in range(open_from, len(dealt))
                    if len(dealt[slot]) < sizes[slot] and seen[slot].isdisjoint(row_values)
                ),
                None,
            )
            if slot is None:
                return pool
            dealt[slot].append(row)
            seen[slot].update(row_values)
            while open_from < len(dealt) and len(dealt[open_from]) == sizes[open_from]:
                open_from += 1
        order = torch.randperm(len(dealt), generator=generator).tolist()
        return [dealt[i] for i in order]


def chain_rows(pool: list[list[int]]) -> list[int]:
    return [index for batch in pool for index in batch]
