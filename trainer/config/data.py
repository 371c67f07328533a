"""Training datasets: where rows come from, how columns map, which loss trains them,
hard-negative mining and what held-out data must not share with training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from trainer.catalog import CACHED_VARIANTS, LOSS_SPECS, guided_losses, teacher_losses
from trainer.config.base import StrictModel
from trainer.config.model import ModelConfig

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


class DataSource(StrictModel):
    """Where one dataset comes from: a Hub id (+ subset/split) or a local csv/jsonl/parquet file."""

    path: str
    split: str = "train"
    subset: str | None = None
    revision: str | None = None
    format: Literal["hub", "csv", "json", "parquet"] | None = None
    streaming: bool = False
    """Read the rows while training (`datasets` IterableDataset) instead of loading them
    into memory: for corpora larger than memory (`trainer.data.streaming`)."""

    @property
    def resolved_format(self) -> str:
        """The `datasets` builder to use; inferred from the file suffix when not given."""
        if self.format:
            return self.format
        return FILE_FORMATS.get(data_file_suffix(self.path)[0], "hub")


LOSS_MODIFIERS: dict[str, str] = {
    "MatryoshkaLoss": "set loss.matryoshka_dims",
    "AdaptiveLayerLoss": "set loss.adaptive_layer",
    "Matryoshka2dLoss": "set both loss.matryoshka_dims and loss.adaptive_layer",
}
"""sentence-transformers losses that wrap another loss: the config names the inner loss and
asks for the wrapper with these fields."""

GRADIENT_CACHE_LOSSES = ("MegaBatchMarginLoss",)
"""Losses (besides the cached variants) that back-propagate from a hook with their default
params, which AdaptiveLayerLoss cannot wrap."""


class AdaptiveLayerConfig(StrictModel):
    """AdaptiveLayerLoss (2DMSE / Starbucks): the loss also trains the output of earlier
    transformer layers, so the model can be cut to fewer layers at inference. Field names
    and defaults are sentence-transformers' own (`AdaptiveLayerLoss(model, loss, ...)`):
    `n_layers_per_step` earlier layers are sampled per step (-1: all), the final layer is
    always trained."""

    n_layers_per_step: int = 1
    last_layer_weight: float = Field(default=1.0, ge=0.0)
    prior_layers_weight: float = Field(default=1.0, ge=0.0)
    kl_div_weight: float = Field(default=1.0, ge=0.0)
    kl_temperature: float = Field(default=0.3, ge=0.0)
    layer_weighting: Literal["uniform", "log", "linear"] = "uniform"

    @field_validator("n_layers_per_step")
    @classmethod
    def _all_or_some(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError(
                f"n_layers_per_step {value}: use -1 (every earlier layer) or a count >= 1"
            )
        return value


class LossConfig(StrictModel):
    """A sentence-transformers loss by class name, with its keyword arguments.

    `matryoshka_dims` wraps the loss in MatryoshkaLoss; `cached: true` swaps an in-batch
    negatives loss for its GradCache variant (large effective batches on small memory).
    `adaptive_layer` wraps it in AdaptiveLayerLoss; with `matryoshka_dims` too, the two
    become sentence-transformers' Matryoshka2dLoss. `matryoshka_weights` (one per dim)
    and `n_dims_per_step` go to MatryoshkaLoss / Matryoshka2dLoss as they are named there.

    `guide` (GISTEmbedLoss, CachedGISTEmbedLoss) is the model that scores the in-batch
    negatives, to drop those it rates closer to the anchor than the positive; loaded once
    per run, frozen. `teacher` (MSELoss, DistillKLDivLoss, MarginMSELoss) is the model
    whose embeddings or scores the student learns: computed once, in the teacher-targets
    stage, into the `label` column. Both take any reference `model.name_or_path` takes.
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    matryoshka_dims: list[int] | None = None
    cached: bool = False
    matryoshka_weights: list[float] | None = None
    n_dims_per_step: int | None = None
    adaptive_layer: AdaptiveLayerConfig | None = None
    guide: ModelConfig | None = None
    teacher: ModelConfig | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _modifier_is_a_field(cls, value: Any) -> Any:
        if isinstance(value, str) and value in LOSS_MODIFIERS:
            raise ValueError(
                f"{value} wraps another loss: name the inner loss (e.g. "
                f"MultipleNegativesRankingLoss) and {LOSS_MODIFIERS[value]}"
            )
        return value

    @field_validator("matryoshka_dims")
    @classmethod
    def _dims_positive_distinct(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one dimension, or leave matryoshka_dims out")
        bad = [dim for dim in value if dim <= 0]
        if bad:
            raise ValueError(f"dimensions must be positive, got {bad}")
        repeated = sorted({dim for dim in value if value.count(dim) > 1})
        if repeated:
            raise ValueError(f"dimensions must be distinct, {repeated} given more than once")
        return value

    @model_validator(mode="after")
    def _matryoshka_options_fit(self) -> LossConfig:
        if self.matryoshka_dims is None:
            for key in ("matryoshka_weights", "n_dims_per_step"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} needs matryoshka_dims")
            return self
        weights = self.matryoshka_weights
        if weights is not None and len(weights) != len(self.matryoshka_dims):
            raise ValueError(
                f"matryoshka_weights has {len(weights)} weight(s) for "
                f"{len(self.matryoshka_dims)} matryoshka_dims: give one per dimension"
            )
        steps = self.n_dims_per_step
        if steps is not None and (steps == 0 or steps < -1):
            raise ValueError(f"n_dims_per_step {steps}: use -1 (every dimension) or a count >= 1")
        return self

    @model_validator(mode="after")
    def _adaptive_layer_wraps_plain_losses(self) -> LossConfig:
        if self.adaptive_layer is None:
            return self
        if self.cached or (
            self.name in GRADIENT_CACHE_LOSSES and self.params.get("use_mini_batched_version", True)
        ):
            what = f"cached {self.name}" if self.cached else self.name
            raise ValueError(
                f"adaptive_layer cannot wrap {what}: it back-propagates from a hook that "
                "AdaptiveLayerLoss does not see; use cached: false"
                + (
                    " (or params.use_mini_batched_version: false)"
                    if self.name in GRADIENT_CACHE_LOSSES
                    else ""
                )
            )
        return self

    @field_validator("name")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        if value not in LOSS_SPECS:
            known = ", ".join(sorted(LOSS_SPECS))
            raise ValueError(f"unknown loss {value!r}; known losses: {known}")
        return value

    @model_validator(mode="after")
    def _cached_variant_exists(self) -> LossConfig:
        if self.cached and self.name not in CACHED_VARIANTS:
            raise ValueError(
                f"loss {self.name!r} has no cached variant; cached: true works with "
                f"{', '.join(sorted(CACHED_VARIANTS))}"
            )
        return self

    @model_validator(mode="after")
    def _guide_and_teacher_fit(self) -> LossConfig:
        spec = LOSS_SPECS[self.name]
        if spec.guide and self.guide is None:
            raise ValueError(
                f"loss {self.name!r} needs a guide model: set guide: {{name_or_path: ...}} "
                "(a local folder, a Hub id, package:<module> or zenml:<model>@<version>)"
            )
        if self.guide is not None and not spec.guide:
            raise ValueError(
                f"loss {self.name!r} takes no guide; guide works with "
                f"{', '.join(guided_losses())} (cached: true for the GradCache variant)"
            )
        if spec.label == "teacher" and self.teacher is None:
            raise ValueError(
                f"loss {self.name!r} learns from a teacher model: set teacher: "
                "{name_or_path: ...}; its targets are computed once before training"
            )
        if self.teacher is not None and spec.teacher is None:
            raise ValueError(
                f"loss {self.name!r} takes no teacher; teacher works with "
                f"{', '.join(teacher_losses())}"
            )
        if self.teacher is not None and self.matryoshka_dims:
            raise ValueError(
                "matryoshka_dims is not supported with a teacher: the teacher's targets "
                "are computed for the full embedding, not per dimension"
            )
        return self


class DocumentsSource(StrictModel):
    """A column of extra documents read from a data source (mining corpus, IR distractors)."""

    source: DataSource
    column: str = "document"


class HardNegativesConfig(StrictModel):
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


class DatasetConfig(StrictModel):
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


class LeakageConfig(StrictModel):
    """What to do when held-out queries also occur in training data.

    Overlap is exact text match after collapsing whitespace and case folding. Shared
    anchors make held-out metrics measure memorisation, so the default stops the run;
    `warn` only reports (for data where repeated queries are legitimate).
    """

    on_query_overlap: Literal["fail", "warn"] = "fail"


def mining_losses(texts: int) -> list[str]:
    """Losses that train on rows of `texts` text columns and no label (for error messages)."""
    return sorted(name for name, spec in LOSS_SPECS.items() if spec.accepts_texts(texts))
