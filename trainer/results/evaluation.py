"""The evaluation of base, fine-tuned (and production) models on the same evaluators."""

from __future__ import annotations

from pydantic import Field

from trainer.results.base import Result


class DimensionScore(Result):
    """The primary metric with embeddings truncated to `dimension` (Matryoshka training)."""

    dimension: int
    base: float | None = None
    finetuned: float


class Evaluation(Result):
    """The base and the fine-tuned model scored by the same evaluators on the same rows,
    and the model currently in production when there is one (what promotion compares)."""

    primary_metric: str | None = None
    base: dict[str, float] = Field(default_factory=dict)
    finetuned: dict[str, float] = Field(default_factory=dict)
    improvement: dict[str, float] = Field(default_factory=dict)
    production: dict[str, float] | None = None
    production_model: str | None = None
    """Which version `production` scored (`version 7 of ZenML model 'x' (production)`)."""
    weights_changed: bool | None = None
    """Whether training changed any weight of the base model (None: not compared)."""
    steps_trained: int | None = None
    """Optimizer steps the fine-tuned model took (the gate's `min_steps`; None: unknown)."""
    base_per_query: dict[str, list[float]] = Field(default_factory=dict)
    """Per-query values of the retrieval metrics (ndcg, mrr and the gate metric), in the
    evaluator's query order: what the gate's paired bootstrap resamples."""
    finetuned_per_query: dict[str, list[float]] = Field(default_factory=dict)
    """The fine-tuned model's per-query values, aligned with `base_per_query`."""
    by_dimension: list[DimensionScore] = Field(default_factory=list)
    """The primary metric per Matryoshka dimension, largest first (empty: the run trained
    no Matryoshka dimensions)."""


def format_metric(value: float | None) -> str:
    """Metrics at 4 decimals, without trailing zeros (0.41, not 0.4100)."""
    return "n/a" if value is None else repr(round(value, 4))
