"""The metric keys each evaluator will report, known before any model has run.

The gate names one metric (`docs-ir_cosine_ndcg@10`). If no evaluator reports it, the
run used to fail in `push_to_hub`, after training and evaluation. The keys follow from
the evaluator's configuration and the model's similarity function alone, so a preflight
can list them from evaluators built on the real rows (cheap: building one encodes
nothing) and the base model's saved config.

What sentence-transformers 6.2 reports (read from its evaluators' `__call__`; every key
is prefixed with `<name>_`; `fns` are the evaluator's similarity functions: the ones it
was given, else the model's `similarity_fn_name`):

* `InformationRetrievalEvaluator`: per fn, `<fn>_accuracy@k` for `accuracy_at_k`,
  `<fn>_precision@k` and `<fn>_recall@k` for `precision_recall_at_k`, `<fn>_mrr@k`,
  `<fn>_ndcg@k`, `<fn>_map@k`. Primary: `<main_score_function>_ndcg@<max k>`, else the fn
  with the best score (so with several fns it depends on the scores).
* `EmbeddingSimilarityEvaluator`: per fn, `pearson_<fn>`, `spearman_<fn>`; with several
  fns also `pearson_max`, `spearman_max`. Primary: `spearman_<main_similarity>`, else
  `spearman_max` (several) or `spearman_<fn>`.
* `TripletEvaluator`: per fn, `<fn>_accuracy`; with several, `max_accuracy`. Primary:
  `<main_similarity_function>_accuracy`, else `max_accuracy` or `<fn>_accuracy`.
* `BinaryClassificationEvaluator`: per fn, `<fn>_<m>` for m in accuracy,
  accuracy_threshold, f1, f1_threshold, precision, recall, ap, mcc; with several, also
  `max_<m>`. Primary: `max_ap` (several) or `<fn>_ap`.

* `ParaphraseMiningEvaluator`: `average_precision` (primary), `f1`, `precision`,
  `recall`, `threshold`.
* `TranslationEvaluator`: `src2trg_accuracy`, `trg2src_accuracy`, `mean_accuracy` (primary).
* `RerankingEvaluator`: `map`, `mrr@<at_k>`, `ndcg@<at_k>` (primary).
* `MSEEvaluator`: `negative_mse` (primary; higher is better).
* `NanoBEIREvaluator` downloads its datasets when built: its names are not listed here.

`tests/test_metric_names.py` runs every evaluator on a tiny model and compares.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.config import ModelConfig

if TYPE_CHECKING:
    from sentence_transformers.base.evaluation import BaseEvaluator

SIMILARITY_FUNCTIONS = ("cosine", "dot", "euclidean", "manhattan")
"""`SentenceTransformer.SUPPORTED_SIMILARITY_FN_NAMES`: what a saved model may name."""
DEFAULT_SIMILARITY = "cosine"
"""What a model without a saved `similarity_fn_name` uses."""
MODEL_CONFIG_FILE = "config_sentence_transformers.json"

_BINARY_METRICS = (
    "accuracy",
    "accuracy_threshold",
    "f1",
    "f1_threshold",
    "precision",
    "recall",
    "ap",
    "mcc",
)


def _similarity_from_file(path: Path) -> str:
    saved = json.loads(path.read_text(encoding="utf-8")).get("similarity_fn_name")
    return saved if saved in SIMILARITY_FUNCTIONS else DEFAULT_SIMILARITY


def model_similarity(config: ModelConfig) -> str | None:
    """The similarity function the base model is saved with (its evaluators' metric
    prefix), read from `config_sentence_transformers.json` without loading the model.

    None when it cannot be known offline: a Hub model that is not in the local cache.
    """
    from huggingface_hub import try_to_load_from_cache

    from trainer.models import resolve_model_path

    try:
        path = Path(resolve_model_path(config.name_or_path)).expanduser()
    except ValueError:
        return None  # the model source check names the problem
    if path.is_dir():
        file = path / MODEL_CONFIG_FILE
        return _similarity_from_file(file) if file.is_file() else DEFAULT_SIMILARITY
    cached = try_to_load_from_cache(
        config.name_or_path, MODEL_CONFIG_FILE, revision=config.revision
    )
    if isinstance(cached, str):
        return _similarity_from_file(Path(cached))
    return None if cached is None else DEFAULT_SIMILARITY  # cached as "not in the repo"


def _unprefixed(evaluator: BaseEvaluator, similarity: str) -> list[str]:
    from sentence_transformers.sentence_transformer import evaluation as st_eval

    if isinstance(evaluator, st_eval.InformationRetrievalEvaluator):
        fns = [similarity] if evaluator.score_functions is None else evaluator.score_function_names
        ks = {
            "accuracy": evaluator.accuracy_at_k,
            "precision": evaluator.precision_recall_at_k,
            "recall": evaluator.precision_recall_at_k,
            "mrr": evaluator.mrr_at_k,
            "ndcg": evaluator.ndcg_at_k,
            "map": evaluator.map_at_k,
        }
        return [f"{fn}_{metric}@{k}" for fn in fns for metric, at in ks.items() for k in at]
    if isinstance(evaluator, st_eval.EmbeddingSimilarityEvaluator):
        fns = evaluator.similarity_fn_names or [similarity]
        names = [
            f"{m}_{fn}" for fn in fns if fn in SIMILARITY_FUNCTIONS for m in ("pearson", "spearman")
        ]
        return names + (["pearson_max", "spearman_max"] if len(fns) > 1 else [])
    if isinstance(evaluator, st_eval.TripletEvaluator):
        fns = evaluator.similarity_fn_names or [similarity]
        names = [f"{fn}_accuracy" for fn in fns]
        return names + (["max_accuracy"] if len(fns) > 1 else [])
    if isinstance(evaluator, st_eval.BinaryClassificationEvaluator):
        fns = evaluator.similarity_fn_names or [similarity]
        names = [f"{fn}_{m}" for fn in fns for m in _BINARY_METRICS]
        return names + ([f"max_{m}" for m in _BINARY_METRICS] if len(fns) > 1 else [])
    fixed = _fixed_names(evaluator)
    if fixed is not None:
        return fixed[0]
    raise TypeError(f"no metric names known for {type(evaluator).__name__}")


def _fixed_names(evaluator: BaseEvaluator) -> tuple[list[str], str] | None:
    """(names, primary) of evaluators whose keys do not depend on a similarity function."""
    from sentence_transformers.sentence_transformer import evaluation as st_eval

    if isinstance(evaluator, st_eval.ParaphraseMiningEvaluator):
        names = ["average_precision", "f1", "precision", "recall", "threshold"]
        return names, "average_precision"
    if isinstance(evaluator, st_eval.TranslationEvaluator):
        return ["src2trg_accuracy", "trg2src_accuracy", "mean_accuracy"], "mean_accuracy"
    if isinstance(evaluator, st_eval.RerankingEvaluator):
        k = evaluator.at_k
        return ["map", f"mrr@{k}", f"ndcg@{k}"], f"ndcg@{k}"
    if isinstance(evaluator, st_eval.MSEEvaluator):
        return ["negative_mse"], "negative_mse"
    return None


def evaluator_name(evaluator: BaseEvaluator) -> str:
    """The name an evaluator prefixes its metric keys with ('' for none): every
    sentence-transformers evaluator sets `name`, which their base class does not declare."""
    return getattr(evaluator, "name", "") or ""


def _prefixed(evaluator: BaseEvaluator, key: str) -> str:
    name = evaluator_name(evaluator)
    return f"{name}_{key}" if name else key


def metric_names(evaluator: BaseEvaluator, similarity: str) -> list[str]:
    """Every metric key `evaluator(model)` returns for a model scoring with `similarity`."""
    return [_prefixed(evaluator, key) for key in _unprefixed(evaluator, similarity)]


def primary_metric_name(evaluator: BaseEvaluator, similarity: str) -> str | None:
    """The key `trainer.evaluation.evaluators.primary_metric` will report after a run, or None when
    it depends on the scores (information retrieval with several score functions and no
    `main_score_function`)."""
    from sentence_transformers.sentence_transformer import evaluation as st_eval

    if isinstance(evaluator, st_eval.InformationRetrievalEvaluator):
        main = evaluator.main_score_function
        fns = [similarity] if evaluator.score_functions is None else evaluator.score_function_names
        if main is None and len(fns) != 1:
            return None
        fn = main.value if main is not None else fns[0]
        key = f"{fn}_ndcg@{max(evaluator.ndcg_at_k)}"
    elif isinstance(evaluator, st_eval.EmbeddingSimilarityEvaluator):
        fns = evaluator.similarity_fn_names or [similarity]
        if evaluator.main_similarity is not None:
            key = f"spearman_{evaluator.main_similarity.value}"
        else:
            key = "spearman_max" if len(fns) > 1 else f"spearman_{fns[0]}"
    elif isinstance(evaluator, st_eval.TripletEvaluator):
        fns = evaluator.similarity_fn_names or [similarity]
        if evaluator.main_similarity_function is not None:
            key = f"{evaluator.main_similarity_function.value}_accuracy"
        else:
            key = "max_accuracy" if len(fns) > 1 else f"{fns[0]}_accuracy"
    elif isinstance(evaluator, st_eval.BinaryClassificationEvaluator):
        fns = evaluator.similarity_fn_names or [similarity]
        key = "max_ap" if len(fns) > 1 else f"{fns[0]}_ap"
    elif (fixed := _fixed_names(evaluator)) is not None:
        key = fixed[1]
    else:
        raise TypeError(f"no metric names known for {type(evaluator).__name__}")
    return _prefixed(evaluator, key)
