"""The primary metric per Matryoshka dimension: the first evaluator scores both models
again with their embeddings truncated to each dimension the run trained
(sentence-transformers' `truncate_embeddings`), so a user sees what a smaller index costs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from trainer.evaluation.evaluators import primary_metric, run_evaluators
from trainer.results import DimensionScore, Evaluation

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator


def _score_at(
    model: SentenceTransformer,
    evaluator: BaseEvaluator,
    dimension: int,
    label: str,
    log: Callable[[str], None] | None,
) -> float | None:
    with model.truncate_embeddings(dimension):
        metrics = run_evaluators(model, [evaluator], label=f"{label} at {dimension} dims", log=log)
    return metrics.get(primary_metric(evaluator))


def score_by_dimension(
    base: SentenceTransformer,
    finetuned: SentenceTransformer,
    evaluator: BaseEvaluator,
    dimensions: list[int],
    evaluation: Evaluation,
    *,
    log: Callable[[str], None] | None = None,
) -> list[DimensionScore]:
    """The primary metric of `evaluator` for both models at each of `dimensions` (largest
    first). A dimension equal to a model's full embedding size reuses `evaluation`'s score
    for that model rather than encoding everything again."""
    primary = primary_metric(evaluator)
    scores = []
    for dimension in sorted(dimensions, reverse=True):
        values: dict[str, float | None] = {}
        for key, model, label, full in (
            ("base", base, "the base model", evaluation.base),
            ("finetuned", finetuned, "the fine-tuned model", evaluation.finetuned),
        ):
            if dimension >= (model.get_embedding_dimension() or 0) and primary in full:
                values[key] = full[primary]
            else:
                values[key] = _score_at(model, evaluator, dimension, label, log)
        tuned = values["finetuned"]
        if tuned is None:
            continue
        scores.append(DimensionScore(dimension=dimension, base=values["base"], finetuned=tuned))
    return scores
