"""Evaluators from config, and the base-vs-fine-tuned comparison.

Every evaluator runs on both models with the same rows, so the comparison measures the
fine-tuning and nothing else. Metric keys are sentence-transformers' own
(`<name>_cosine_ndcg@10`, `<name>_spearman_cosine`, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from datasets import Dataset, DatasetDict

from trainer.catalog import LABEL_COLUMNS
from trainer.config import (
    EVALUATOR_TEXT_COLUMNS,
    HUB_EVALUATORS,
    EvaluatorConfig,
    ModelConfig,
    RunConfig,
)
from trainer.data import load_beir, load_documents, load_evaluator_rows
from trainer.evaluation.metrics import evaluator_name
from trainer.logs import encoding_progress
from trainer.problems import DataValidationError
from trainer.results import Evaluation

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator

logger = logging.getLogger(__name__)


def _columns(rows: Dataset, evaluator: EvaluatorConfig, needed: list[str]) -> list[list[Any]]:
    missing = [column for column in needed if column not in rows.column_names]
    if missing:
        raise DataValidationError(
            f"evaluator {evaluator.display_name!r}: column(s) {', '.join(map(repr, missing))} "
            f"not found; the rows have: {', '.join(rows.column_names)}"
        )
    return [rows[column] for column in needed]


def _text_columns(rows: Dataset, evaluator: EvaluatorConfig, n_texts: int) -> list[str]:
    """The first `n_texts` text (non-label) columns, in dataset order."""
    texts = [c for c in rows.column_names if c not in (*LABEL_COLUMNS, "dataset_name")]
    if len(texts) < n_texts:
        raise DataValidationError(
            f"evaluator {evaluator.display_name!r}: needs {n_texts} text columns, got {texts}"
        )
    return texts[:n_texts]


def _label_column(rows: Dataset, evaluator: EvaluatorConfig) -> str:
    for column in LABEL_COLUMNS:
        if column in rows.column_names:
            return column
    raise DataValidationError(
        f"evaluator {evaluator.display_name!r}: needs a 'label' or 'score' column; "
        f"the rows have: {', '.join(rows.column_names)}"
    )


def information_retrieval_inputs(
    queries: list[str], documents: list[str]
) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """Queries, corpus and relevance from aligned (query, relevant document) rows.

    Identical documents share one corpus id and identical queries one query id, so a
    repeated text is neither a duplicate corpus entry nor a query with a wrong answer.
    """
    corpus_ids: dict[str, str] = {}
    query_ids: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for query, document in zip(queries, documents, strict=True):
        doc_id = corpus_ids.setdefault(document, f"d{len(corpus_ids)}")
        query_id = query_ids.setdefault(query, f"q{len(query_ids)}")
        relevant.setdefault(query_id, set()).add(doc_id)
    return (
        {qid: text for text, qid in query_ids.items()},
        {did: text for text, did in corpus_ids.items()},
        relevant,
    )


def add_distractors(corpus: dict[str, str], distractors: list[str]) -> dict[str, str]:
    """The corpus plus distractor documents under new ids (`x0`, `x1`, ...).

    A distractor whose text is already a corpus document is that document (it keeps
    its id, so it stays relevant where it was); repeated distractors are added once.
    """
    known = set(corpus.values())
    extended = dict(corpus)
    for text in dict.fromkeys(distractors):
        if text not in known:
            extended[f"x{len(extended) - len(corpus)}"] = text
    return extended


SCORE_MATRIX_MIB = 512
"""Memory budget of one (queries x corpus chunk) float32 score matrix in retrieval evaluation."""


def corpus_chunk_size(n_queries: int, *, budget_mib: int = SCORE_MATRIX_MIB) -> int:
    """Documents scored per chunk: the evaluator holds all queries x one chunk of scores,
    so the chunk shrinks as queries grow (capped at sentence-transformers' 50,000)."""
    return int(max(1, min(50_000, budget_mib * 2**20 // (4 * max(n_queries, 1)))))


def retrieval_evaluator(
    evaluator: EvaluatorConfig,
    queries: dict[str, str],
    corpus: dict[str, str],
    relevant: dict[str, set[str]],
) -> BaseEvaluator:
    """`InformationRetrievalEvaluator` with the project's metric cut-offs, encoding and
    scoring the corpus in chunks (`corpus_chunk_size`): top-k hits are kept per query,
    never a full queries x corpus score matrix. It keeps per-query values too
    (`PerQueryRetrievalEvaluator`), for the gate's paired bootstrap."""
    from trainer.evaluation.per_query import PerQueryRetrievalEvaluator

    params = _with_truncation(evaluator)
    params.setdefault("accuracy_at_k", [1, 5, 10])
    params.setdefault("precision_recall_at_k", [1, 5, 10])
    params.setdefault("map_at_k", [10])
    params.setdefault(
        "corpus_chunk_size", evaluator.corpus_chunk_size or corpus_chunk_size(len(queries))
    )
    return PerQueryRetrievalEvaluator(
        queries,
        corpus,
        relevant,
        name=evaluator.display_name,
        write_csv=False,
        **params,
    )


def _with_truncation(evaluator: EvaluatorConfig) -> dict[str, Any]:
    """The evaluator's params plus `truncate_dim` when set (every sentence-transformers
    embedding evaluator takes it)."""
    params = dict(evaluator.params)
    if evaluator.truncate_dim is not None:
        params["truncate_dim"] = evaluator.truncate_dim
    return params


def evaluator_texts(rows: Dataset, evaluator: EvaluatorConfig) -> list[list[str]]:
    """The text columns an evaluator of `EVALUATOR_TEXT_COLUMNS` reads, checked: as many
    as it needs (all label-free columns for reranking, whose negatives may be several)."""
    needed, meaning = EVALUATOR_TEXT_COLUMNS[evaluator.type]
    texts = [c for c in rows.column_names if c not in (*LABEL_COLUMNS, "dataset_name")]
    if len(texts) < needed:
        raise DataValidationError(
            f"evaluator {evaluator.display_name!r} ({evaluator.type}) reads {needed} text "
            f"columns or more: {meaning}; the rows have: {', '.join(rows.column_names)}"
        )
    return [[str(text) for text in rows[column]] for column in texts]


def _row_evaluator(
    evaluator: EvaluatorConfig, rows: Dataset, base: ModelConfig | None
) -> BaseEvaluator:
    """Paraphrase mining, translation, reranking and MSE over the rows' text columns."""
    from sentence_transformers.sentence_transformer import evaluation as st_eval

    from trainer.models import load_model

    name, params = evaluator.display_name, _with_truncation(evaluator)
    columns = evaluator_texts(rows, evaluator)
    if evaluator.type == "paraphrase_mining":
        first, second = columns[:2]
        ids = {text: f"s{i}" for i, text in enumerate(dict.fromkeys([*first, *second]))}
        return st_eval.ParaphraseMiningEvaluator(
            {sid: text for text, sid in ids.items()},
            duplicates_list=[(ids[a], ids[b]) for a, b in zip(first, second, strict=True)],
            name=name, write_csv=False, **params,
        )  # fmt: skip
    if evaluator.type == "translation":
        return st_eval.TranslationEvaluator(
            columns[0], columns[1], name=name, write_csv=False, **params
        )
    if evaluator.type == "reranking":
        samples = [
            {"query": row[0], "positive": [row[1]], "negative": list(row[2:])}
            for row in zip(*columns, strict=True)
        ]
        return st_eval.RerankingEvaluator(samples, name=name, write_csv=False, **params)
    teacher = evaluator.teacher or base
    if teacher is None:
        raise ValueError(f"evaluator {name!r} (mse) needs a teacher model or the run's base model")
    return st_eval.MSEEvaluator(
        columns[0], columns[1], teacher_model=load_model(teacher), name=name, write_csv=False,
        **params,
    )  # fmt: skip


def nanobeir_evaluator(evaluator: EvaluatorConfig) -> BaseEvaluator:
    """sentence-transformers' NanoBEIR evaluator (13 small BEIR sets, downloaded from the
    Hub when built: `params.dataset_names` picks some)."""
    from sentence_transformers.sentence_transformer import evaluation as st_eval

    params = _with_truncation(evaluator)
    params.setdefault("show_progress_bar", False)
    return st_eval.NanoBEIREvaluator(write_csv=False, **params)


def build_evaluator(
    evaluator: EvaluatorConfig, rows: Dataset | None, base: ModelConfig | None = None
) -> BaseEvaluator:
    """One sentence-transformers evaluator over `rows` (None for `beir`, which reads its
    folder, and `nanobeir`, which downloads its own); `base` is the run's base model, the
    default teacher of `mse`."""
    from sentence_transformers.sentence_transformer import evaluation as st_eval

    if evaluator.type == "beir":
        assert evaluator.path is not None
        data = load_beir(evaluator.path, evaluator.beir_split)
        return retrieval_evaluator(evaluator, data.queries, data.corpus, data.relevant)
    if evaluator.type in HUB_EVALUATORS:
        return nanobeir_evaluator(evaluator)
    assert rows is not None
    if evaluator.type in EVALUATOR_TEXT_COLUMNS:
        return _row_evaluator(evaluator, rows, base)
    name, params = evaluator.display_name, _with_truncation(evaluator)
    if evaluator.type == "information_retrieval":
        queries, documents = _columns(
            rows, evaluator, [evaluator.query_column, evaluator.document_column]
        )
        q, corpus, relevant = information_retrieval_inputs(queries, documents)
        if evaluator.distractors is not None:
            what = f"evaluator {evaluator.display_name!r} distractors"
            corpus = add_distractors(corpus, load_documents(evaluator.distractors, what=what))
        return retrieval_evaluator(evaluator, q, corpus, relevant)
    if evaluator.type == "triplet":
        anchors, positives, negatives = _columns(rows, evaluator, _text_columns(rows, evaluator, 3))
        return st_eval.TripletEvaluator(
            anchors, positives, negatives, name=name, write_csv=False, **params
        )
    first, second = _columns(rows, evaluator, _text_columns(rows, evaluator, 2))
    (labels,) = _columns(rows, evaluator, [_label_column(rows, evaluator)])
    if evaluator.type == "embedding_similarity":
        return st_eval.EmbeddingSimilarityEvaluator(
            first, second, [float(x) for x in labels], name=name, write_csv=False, **params
        )
    return st_eval.BinaryClassificationEvaluator(
        first, second, [int(x) for x in labels], name=name, write_csv=False, **params
    )


def evaluator_configs(config: RunConfig, eval_datasets: DatasetDict) -> list[EvaluatorConfig]:
    """The evaluators a run uses: the configured ones; with none configured, information
    retrieval on each held-out split whose loss trains (anchor, positive) pairs."""
    configs = list(config.evaluators)
    if not configs:
        for name, rows in eval_datasets.items():
            texts = [c for c in rows.column_names if c not in LABEL_COLUMNS]
            if len(texts) >= 2 and len(texts) == len(rows.column_names):
                configs.append(
                    EvaluatorConfig(dataset=name, query_column=texts[0], document_column=texts[1])
                )
    return configs


def build_evaluators(config: RunConfig, eval_datasets: DatasetDict) -> list[BaseEvaluator]:
    """All evaluators of the run (see `evaluator_configs`)."""
    return [
        build_evaluator(
            ev,
            None
            if ev.type in ("beir", *HUB_EVALUATORS)
            else load_evaluator_rows(ev, eval_datasets),
            config.model,
        )
        for ev in evaluator_configs(config, eval_datasets)
    ]


def primary_metric(evaluator: BaseEvaluator) -> str:
    """The full metric key an evaluator reports as its main score (name-prefixed)."""
    key, name = evaluator.primary_metric, evaluator_name(evaluator)
    if name and not key.startswith(f"{name}_"):
        key = f"{name}_{key}"
    return key


def texts_to_encode(evaluator: BaseEvaluator) -> int | None:
    """About how many texts `evaluator` encodes per model (for progress lines and their
    ETA); None when the evaluator type is not known here."""
    from sentence_transformers.sentence_transformer import evaluation as st_eval

    if isinstance(evaluator, st_eval.InformationRetrievalEvaluator):
        return len(evaluator.queries) + len(evaluator.corpus)
    if isinstance(evaluator, st_eval.BinaryClassificationEvaluator):
        return len(set(evaluator.sentences1) | set(evaluator.sentences2))
    if isinstance(evaluator, st_eval.EmbeddingSimilarityEvaluator):
        return len(evaluator.sentences1) + len(evaluator.sentences2)
    if isinstance(evaluator, st_eval.TripletEvaluator):
        return len(evaluator.anchors) + len(evaluator.positives) + len(evaluator.negatives)
    return None


PER_QUERY_FAMILIES = ("_ndcg@", "_mrr@")
"""Metric families whose per-query values an evaluation keeps by default (besides the
gate metric): enough to bootstrap the usual gate metrics, small enough for JSON."""


def per_query_scores(evaluator: BaseEvaluator) -> dict[str, list[float]]:
    """The per-query values `evaluator` kept from its last call ({} for evaluators that
    report only averages: similarity, triplet, classification)."""
    kept = getattr(evaluator, "per_query", None)
    if not isinstance(kept, dict):
        return {}
    return {str(key): [float(value) for value in values] for key, values in kept.items()}


def _kept(key: str, extra: Collection[str]) -> bool:
    return key in extra or any(family in key for family in PER_QUERY_FAMILIES)


def run_evaluators(
    model: SentenceTransformer,
    evaluators: list[BaseEvaluator],
    *,
    label: str = "the model",
    log: Callable[[str], None] | None = None,
    every_s: float = 15.0,
    per_query: dict[str, list[float]] | None = None,
    per_query_keys: Collection[str] = (),
) -> dict[str, float]:
    """Run every evaluator on `model`; metric keys are prefixed with the evaluator name.

    Each evaluator's output (sentence-transformers' own block of numbers) comes after a
    line naming the model it scores (`label`: "the base model", ...), with progress lines
    (texts encoded, rate, ETA) while it encodes and its primary metric at the end. When
    `per_query` is given it receives the per-query values of the ndcg and mrr metrics and
    of `per_query_keys`, from the evaluators that keep them."""
    log = log or logger.info
    metrics: dict[str, float] = {}
    for index, evaluator in enumerate(evaluators, start=1):
        name = evaluator_name(evaluator)
        what = f"scoring {label} with {name} ({index}/{len(evaluators)})"
        with encoding_progress(model, texts_to_encode(evaluator), what, every_s=every_s, log=log):
            scores = evaluator(model)
        if not isinstance(scores, dict):  # the base class allows one bare score
            raise TypeError(f"{type(evaluator).__name__} returned {scores!r}, not its metrics")
        for key, value in scores.items():
            metrics[key] = float(value)
        if per_query is not None:
            kept = per_query_scores(evaluator)
            per_query.update({k: v for k, v in kept.items() if _kept(k, per_query_keys)})
        primary = primary_metric(evaluator)
        if primary in metrics:
            log(f"{label}: {primary} = {metrics[primary]:.4f}")
    return metrics


def compare(
    base: SentenceTransformer,
    finetuned: SentenceTransformer,
    evaluators: list[BaseEvaluator],
    *,
    base_label: str = "the base model",
    log: Callable[[str], None] | None = None,
    per_query_keys: Collection[str] = (),
) -> Evaluation:
    """Evaluate both models on identical data: metrics, improvement, the primary metric,
    and per-query values (ndcg, mrr and `per_query_keys`) where the evaluator keeps them."""
    base_queries: dict[str, list[float]] = {}
    tuned_queries: dict[str, list[float]] = {}
    base_metrics = run_evaluators(
        base,
        evaluators,
        label=base_label,
        log=log,
        per_query=base_queries,
        per_query_keys=per_query_keys,
    )
    tuned_metrics = run_evaluators(
        finetuned,
        evaluators,
        label="the fine-tuned model",
        log=log,
        per_query=tuned_queries,
        per_query_keys=per_query_keys,
    )
    return Evaluation(
        primary_metric=primary_metric(evaluators[0]) if evaluators else None,
        base=base_metrics,
        finetuned=tuned_metrics,
        improvement={
            key: tuned_metrics[key] - base_metrics[key]
            for key in tuned_metrics
            if key in base_metrics
        },
        base_per_query={k: v for k, v in base_queries.items() if k in tuned_queries},
        finetuned_per_query={k: v for k, v in tuned_queries.items() if k in base_queries},
    )
