"""Evaluators, and the gate (with its regression guards) that decides on their metrics."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from trainer.config.base import StrictModel
from trainer.config.data import ColumnMapping, DataSource, DocumentsSource, _ordered_pairs
from trainer.config.model import ModelConfig

EvaluatorType = Literal[
    "information_retrieval",
    "embedding_similarity",
    "triplet",
    "binary_classification",
    "beir",
    "paraphrase_mining",
    "translation",
    "reranking",
    "mse",
    "nanobeir",
]

EVALUATOR_TEXT_COLUMNS: dict[str, tuple[int, str]] = {
    "paraphrase_mining": (2, "two paraphrases per row"),
    "translation": (2, "a source text and its translation per row"),
    "mse": (2, "a source text (encoded by the teacher) and a target text (by the model) per row"),
    "reranking": (3, "a query, a relevant document, then one or more irrelevant ones per row"),
}
"""Text columns (in dataset order) the row-based evaluators added for issue 19 read, and
what they mean; the label-free columns of a held-out split or of `source`."""

HUB_EVALUATORS = frozenset({"nanobeir"})
"""Evaluators that download their own data from the Hugging Face Hub when built."""


class EvaluatorConfig(StrictModel):
    """One evaluator, run on the base and on the fine-tuned model with identical data.

    `dataset` names a training dataset whose held-out split supplies the rows; `source`
    (+ `columns`) reads them from a separate file instead. For information retrieval,
    `query_column` / `document_column` pick the query and its relevant document; every
    document of the split forms the corpus.
    """

    type: EvaluatorType = "information_retrieval"
    name: str | None = None
    dataset: str | None = None
    source: DataSource | None = None
    columns: ColumnMapping = ()
    query_column: str = "anchor"
    document_column: str = "positive"
    params: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None
    split: str | None = None
    distractors: DocumentsSource | None = None
    corpus_chunk_size: int | None = Field(default=None, gt=0)
    truncate_dim: int | None = Field(default=None, gt=0)
    """Score embeddings cut to their first `truncate_dim` dimensions (Matryoshka models)."""
    teacher: ModelConfig | None = None
    """`mse`: the model whose embeddings of the source texts are the target (default: the
    run's base model, so the metric says how far fine-tuning moved from it)."""

    _columns_in_order = field_validator("columns", mode="before")(
        classmethod(lambda cls, value: _ordered_pairs(value))
    )

    @model_validator(mode="after")
    def _one_data_origin(self) -> EvaluatorConfig:
        if self.teacher is not None and self.type != "mse":
            raise ValueError(f"teacher is for type mse, not {self.type}")
        if self.teacher is not None and self.teacher.zenml_ref is not None:
            raise ValueError(
                "teacher: a zenml: model version is resolved for the base model only; give "
                "the teacher as a local folder, a Hub id or package:<module>"
            )
        if self.type in HUB_EVALUATORS:
            given = [key for key in ("dataset", "source", "path") if getattr(self, key) is not None]
            if given:
                raise ValueError(
                    f"type {self.type} downloads its own datasets from the Hub: remove "
                    f"{', '.join(given)} (choose datasets with params.dataset_names)"
                )
            return self
        if self.type == "beir":
            if self.path is None or self.dataset is not None or self.source is not None:
                raise ValueError(
                    "type beir reads a BEIR folder: give path (with corpus.jsonl, "
                    "queries.jsonl, qrels/<split>.tsv), not dataset or source"
                )
        elif (self.dataset is None) == (self.source is None):
            raise ValueError("give exactly one of dataset (a training dataset name) or source")
        if self.type != "beir" and (self.path is not None or self.split is not None):
            raise ValueError(f"path and split are for type beir, not {self.type}")
        if self.distractors is not None and self.type != "information_retrieval":
            raise ValueError(f"distractors are for type information_retrieval, not {self.type}")
        if self.corpus_chunk_size is not None:
            if self.type not in ("information_retrieval", "beir"):
                raise ValueError(f"corpus_chunk_size is for retrieval evaluators, not {self.type}")
            if "corpus_chunk_size" in self.params:
                raise ValueError("corpus_chunk_size is set twice (also in params); keep one")
        return self

    @property
    def beir_split(self) -> str:
        """The qrels file a BEIR evaluator reads: `qrels/<split>.tsv`."""
        return self.split or "test"

    @property
    def display_name(self) -> str:
        """Prefix of the evaluator's metric keys (`<name>_cosine_ndcg@10`); NanoBEIR names
        its aggregate keys itself (`NanoBEIR_mean[_<truncate_dim>]`)."""
        if self.type == "nanobeir":
            dim = f"_{self.truncate_dim}" if self.truncate_dim else ""
            return f"NanoBEIR_{self.params.get('aggregate_key', 'mean')}{dim}"
        return self.name or f"{self.dataset or 'eval'}-{self.type}"


class GuardConfig(StrictModel):
    """`gate.guards[*]`: `metric` may drop by at most `max_drop` below the base model."""

    metric: str
    max_drop: float = Field(default=0.0, ge=0.0)


class GateConfig(StrictModel):
    """When a fine-tuned model may be published and promoted.

    `metric` defaults to the first evaluator's primary metric. The model passes when its
    value is at least `min_value` (if set) and beats the base model by at least
    `min_improvement` (if set; 0.0 means "not worse"), and no guarded metric fell by more
    than its guard's `max_drop` against the base model (`guards`: for example a
    general-domain retrieval set next to the target domain).
    """

    metric: str | None = None
    min_value: float | None = None
    min_improvement: float | None = 0.0
    guards: list[GuardConfig] = Field(default_factory=list)
    confidence: float | None = Field(default=0.95, gt=0.0, lt=1.0)
    """Decide on a paired bootstrap over queries: `min_improvement` applies to the lower
    bound of this two-sided interval of the improvement, not to the point estimate, so a
    gain within noise does not pass. None: the point estimate decides. Evaluators without
    per-query scores (similarity, triplet, classification) always use the point estimate."""
    resamples: int = Field(default=2000, ge=100)
    """Bootstrap resamples of the queries."""
    seed: int = 0
    """Seed of the bootstrap's resampling, so a decision is reproducible."""
    min_steps: int = Field(default=10, ge=0)
    """Fewer optimizer steps than this fail the gate with "no meaningful training"."""
