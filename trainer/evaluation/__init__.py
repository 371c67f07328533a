"""Evaluators built from the config, the metric names they will report (known before
any model runs), and the base-vs-fine-tuned comparison.
"""

from trainer.evaluation.bootstrap import paired_bootstrap
from trainer.evaluation.dimensions import score_by_dimension
from trainer.evaluation.evaluators import (
    add_distractors,
    build_evaluator,
    build_evaluators,
    compare,
    evaluator_configs,
    evaluator_texts,
    information_retrieval_inputs,
    per_query_scores,
    primary_metric,
    run_evaluators,
    texts_to_encode,
)
from trainer.evaluation.metrics import (
    DEFAULT_SIMILARITY,
    SIMILARITY_FUNCTIONS,
    metric_names,
    model_similarity,
    primary_metric_name,
)

__all__ = [
    "DEFAULT_SIMILARITY",
    "SIMILARITY_FUNCTIONS",
    "add_distractors",
    "build_evaluator",
    "build_evaluators",
    "compare",
    "evaluator_configs",
    "evaluator_texts",
    "information_retrieval_inputs",
    "metric_names",
    "model_similarity",
    "paired_bootstrap",
    "per_query_scores",
    "primary_metric",
    "primary_metric_name",
    "run_evaluators",
    "score_by_dimension",
    "texts_to_encode",
]
