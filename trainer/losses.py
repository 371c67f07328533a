"""Loss names -> sentence-transformers losses, and what data each loss needs.

Each supported loss declares the shape of the rows it trains on (how many text columns,
and which kind of label), so `trainer.data` can reject a mismatched dataset with a
message naming the dataset and column before a model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

    from trainer.config import LossConfig

LabelKind = Literal["none", "float", "int"]

LABEL_COLUMNS = ("label", "score")
"""Column names sentence-transformers passes to a loss as the label (by name, not position)."""


@dataclass(frozen=True)
class LossSpec:
    """What a loss reads: `min_texts`..`max_texts` text columns and a label of `label` kind."""

    min_texts: int
    max_texts: int | None
    label: LabelKind = "none"

    def accepts_texts(self, texts: int) -> bool:
        """Whether rows of `texts` text columns and no label fit this loss (mined rows)."""
        fits_max = self.max_texts is None or texts <= self.max_texts
        return self.label == "none" and self.min_texts <= texts and fits_max

    def describe(self) -> str:
        texts = (
            f"{self.min_texts}+"
            if self.max_texts is None
            else str(self.min_texts)
            if self.min_texts == self.max_texts
            else f"{self.min_texts}-{self.max_texts}"
        )
        label = {"none": "no label", "float": "a float label", "int": "an integer label"}
        return f"{texts} text column(s) and {label[self.label]}"


LOSS_SPECS: dict[str, LossSpec] = {
    # In-batch negatives: (anchor, positive[, negative...]) without labels.
    "MultipleNegativesRankingLoss": LossSpec(2, None),
    "MultipleNegativesSymmetricRankingLoss": LossSpec(2, 2),
    "MegaBatchMarginLoss": LossSpec(2, 2),
    # Pairs with a similarity score.
    "CoSENTLoss": LossSpec(2, 2, "float"),
    "AnglELoss": LossSpec(2, 2, "float"),
    "CosineSimilarityLoss": LossSpec(2, 2, "float"),
    # Pairs with a 0/1 class.
    "ContrastiveLoss": LossSpec(2, 2, "int"),
    "OnlineContrastiveLoss": LossSpec(2, 2, "int"),
    "SoftmaxLoss": LossSpec(2, 2, "int"),
    # Triplets.
    "TripletLoss": LossSpec(3, 3),
    "MarginMSELoss": LossSpec(3, 3, "float"),
    # Single texts with a class label (batch-mined triplets).
    "BatchAllTripletLoss": LossSpec(1, 1, "int"),
    "BatchHardTripletLoss": LossSpec(1, 1, "int"),
    "BatchSemiHardTripletLoss": LossSpec(1, 1, "int"),
    "BatchHardSoftMarginTripletLoss": LossSpec(1, 1, "int"),
}

CACHED_VARIANTS: dict[str, str] = {
    "MultipleNegativesRankingLoss": "CachedMultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss": "CachedMultipleNegativesSymmetricRankingLoss",
}
"""Losses whose GradCache variant trades compute for memory at large batch sizes."""


def _resolve_params(params: dict[str, Any]) -> dict[str, Any]:
    """Turn YAML strings into the callables some loss arguments expect.

    `similarity_fct: cos_sim` -> `sentence_transformers.util.cos_sim`;
    `distance_metric: COSINE` -> the loss module's distance enum is resolved by the
    loss class itself (see `build_loss`).
    """
    from sentence_transformers import util

    resolved = dict(params)
    fct = resolved.get("similarity_fct")
    if isinstance(fct, str):
        if not hasattr(util, fct):
            raise ValueError(
                f"similarity_fct {fct!r} is not a function of sentence_transformers.util"
            )
        resolved["similarity_fct"] = getattr(util, fct)
    return resolved


def _distance_metric(loss_name: str, value: str) -> Any:
    """Resolve `distance_metric: COSINE` against the enum the loss's module defines."""
    from sentence_transformers.sentence_transformer import losses

    enums = {
        "TripletLoss": losses.TripletDistanceMetric,
        "ContrastiveLoss": losses.SiameseDistanceMetric,
        "OnlineContrastiveLoss": losses.SiameseDistanceMetric,
        "BatchAllTripletLoss": losses.BatchHardTripletLossDistanceFunction,
        "BatchHardTripletLoss": losses.BatchHardTripletLossDistanceFunction,
        "BatchSemiHardTripletLoss": losses.BatchHardTripletLossDistanceFunction,
        "BatchHardSoftMarginTripletLoss": losses.BatchHardTripletLossDistanceFunction,
    }
    enum = enums.get(loss_name)
    name = value.lower() if enum is losses.BatchHardTripletLossDistanceFunction else value.upper()
    if enum is None or not hasattr(enum, name):
        raise ValueError(f"distance_metric {value!r} is not known for {loss_name}")
    return getattr(enum, name)


def build_loss(model: SentenceTransformer, config: LossConfig) -> nn.Module:
    """Instantiate the configured loss (with its Cached / Matryoshka wrappers) for `model`."""
    from sentence_transformers.sentence_transformer import losses

    name = CACHED_VARIANTS[config.name] if config.cached else config.name
    params = _resolve_params(config.params)
    if isinstance(params.get("distance_metric"), str):
        params["distance_metric"] = _distance_metric(config.name, params["distance_metric"])
    if name == "SoftmaxLoss":
        params.setdefault("sentence_embedding_dimension", model.get_embedding_dimension())
    try:
        loss = getattr(losses, name)(model, **params)
    except TypeError as error:
        raise ValueError(f"loss {name}: bad params {sorted(config.params)}: {error}") from error
    if config.matryoshka_dims:
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=list(config.matryoshka_dims))
    return loss
