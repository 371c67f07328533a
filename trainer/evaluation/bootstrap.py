"""A seeded paired bootstrap of a per-query improvement: is a gain larger than noise?

Base and fine-tuned model answer the same queries, so the gate resamples queries (with
replacement) and recomputes the mean of the per-query differences each time: the
spread of those means is how much the improvement would move on another draw of queries
of the same kind. The percentile interval is reported and, when `gate.confidence` is
set, its lower bound is what `min_improvement` must reach. Resampling is seeded, so the
same scores always give the same interval, and is done in blocks so memory stays bounded
however many queries there are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainer.results import ConfidenceInterval

BLOCK_CELLS = 2_000_000
"""At most this many resampled indices are held at once (16 MB of int64)."""


def paired_bootstrap(
    base: Sequence[float],
    finetuned: Sequence[float],
    *,
    confidence: float,
    resamples: int = 2000,
    seed: int = 0,
) -> ConfidenceInterval:
    """The `confidence` percentile interval of mean(finetuned - base) over `resamples`
    resamples of the queries (paired: a query's two values stay together)."""
    if len(base) != len(finetuned):
        raise ValueError(
            f"paired bootstrap needs aligned scores: {len(base)} base vs "
            f"{len(finetuned)} fine-tuned queries"
        )
    if not base:
        raise ValueError("paired bootstrap needs at least one query")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    differences = np.asarray(finetuned, dtype=np.float64) - np.asarray(base, dtype=np.float64)
    n = differences.size
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    block = max(1, BLOCK_CELLS // n)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        indices = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = differences[indices].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return ConfidenceInterval(
        low=float(low),
        high=float(high),
        confidence=confidence,
        queries=n,
        resamples=resamples,
        seed=seed,
    )
