"""The losses a run may name, what data each needs, and which parameters each takes.

Each supported loss declares the shape of the rows it trains on (how many text columns,
and which kind of label), so `trainer.data.loading` can reject a mismatched dataset with a
message naming the dataset and column before a model is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from trainer.catalog.facts import DISTANCE_ENUMS, ParameterFacts, library_facts
from trainer.problems import Problem

LabelKind = Literal["none", "float", "int", "teacher"]
"""`teacher`: a label only a teacher model computes (embeddings or scores, in the
teacher-targets stage); the data brings none."""

TeacherTarget = Literal["embedding", "scores"]
"""What a teacher writes into the `label` column: its embedding of the first text column
(MSELoss), or its similarity of the first column to each other one (DistillKLDivLoss,
MarginMSELoss: `[score(query, positive), score(query, negative_1), ...]`)."""

LABEL_COLUMNS = ("label", "score")
"""Column names sentence-transformers passes to a loss as the label (by name, not position)."""


@dataclass(frozen=True)
class LossSpec:
    """What a loss reads: `min_texts`..`max_texts` text columns and a label of `label` kind."""

    min_texts: int
    max_texts: int | None
    label: LabelKind = "none"
    guide: bool = False
    """The loss needs a guide model (`loss.guide`) that scores in-batch negatives."""
    teacher: TeacherTarget | None = None
    """What a teacher model (`loss.teacher`) computes as the label; required when `label`
    is `teacher`, optional otherwise (MarginMSELoss also trains on margins in the data)."""

    def accepts_texts(self, texts: int, *, with_teacher: bool = False) -> bool:
        """Whether rows of `texts` text columns and no label fit this loss (mined rows);
        `with_teacher`: a teacher computes the label after mining."""
        fits_max = self.max_texts is None or texts <= self.max_texts
        labelled = self.label == "none" or (with_teacher and self.teacher is not None)
        return labelled and self.min_texts <= texts and fits_max

    def describe(self) -> str:
        texts = (
            f"{self.min_texts}+"
            if self.max_texts is None
            else str(self.min_texts)
            if self.min_texts == self.max_texts
            else f"{self.min_texts}-{self.max_texts}"
        )
        label = {
            "none": "no label",
            "float": "a float label",
            "int": "an integer label",
            "teacher": "no label (the teacher computes it)",
        }
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
    "MarginMSELoss": LossSpec(3, 3, "float", teacher="scores"),
    # Single texts with a class label (batch-mined triplets).
    "BatchAllTripletLoss": LossSpec(1, 1, "int"),
    "BatchHardTripletLoss": LossSpec(1, 1, "int"),
    "BatchSemiHardTripletLoss": LossSpec(1, 1, "int"),
    "BatchHardSoftMarginTripletLoss": LossSpec(1, 1, "int"),
    # Guided in-batch negatives: a guide model drops probable false negatives.
    "GISTEmbedLoss": LossSpec(2, None, guide=True),
    # Distillation: the label is computed by a teacher model (teacher-targets stage).
    "MSELoss": LossSpec(1, None, "teacher", teacher="embedding"),
    "DistillKLDivLoss": LossSpec(3, None, "teacher", teacher="scores"),
}

CACHED_VARIANTS: dict[str, str] = {
    "MultipleNegativesRankingLoss": "CachedMultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss": "CachedMultipleNegativesSymmetricRankingLoss",
    "GISTEmbedLoss": "CachedGISTEmbedLoss",
}
"""Losses whose GradCache variant trades compute for memory at large batch sizes."""


def similarity_function_name(name: str) -> str:
    """`name` if `sentence_transformers.util` has it (checked without importing it)."""
    if name not in library_facts().util_names:
        raise ValueError(f"similarity_fct {name!r} is not a function of sentence_transformers.util")
    return name


def distance_metric_name(loss_name: str, value: str) -> str:
    """The attribute `distance_metric: <value>` names on the loss's metric class
    (`COSINE` on `TripletDistanceMetric`, `cosine_distance` on the batch-hard ones)."""
    enum = DISTANCE_ENUMS.get(loss_name)
    name = value.lower() if enum == "BatchHardTripletLossDistanceFunction" else value.upper()
    if enum is None or name not in library_facts().distance_metrics[enum]:
        raise ValueError(f"distance_metric {value!r} is not known for {loss_name}")
    return name


_SET_BY_THE_RUN = frozenset({"model", "embedding_dimension", "guide"})
"""Loss constructor arguments the run passes itself (SoftmaxLoss gets the model's dimension;
GISTEmbedLoss the model named by `loss.guide`)."""

_RESOLVED_FROM_TEXT = frozenset({"similarity_fct", "distance_metric"})
"""Params given in YAML as a name and resolved to a function / enum member by `build_loss`."""


def _loss_signature(class_name: str) -> dict[str, ParameterFacts]:
    """The constructor parameters of a loss, in order, without importing it."""
    return library_facts().losses[class_name]


def _type_problem(value: Any, facts: ParameterFacts) -> str | None:
    """Why `value` (from YAML) does not fit the parameter's type, or None; a list may fill
    a tuple. No type (a tensor function or module): YAML cannot give one, the call will say."""
    reason = facts.problem(value)
    if reason is None:
        return None
    return f"expected {facts.type_name}, got {type(value).__name__} {value!r} ({reason})"


def loss_param_problems(
    loss: str, params: Mapping[str, Any], *, cached: bool = False, field: str = "loss"
) -> list[Problem]:
    """Check `params` against the loss class signature, without a model.

    Names the loss does not take, required arguments that are missing and values whose
    type does not match the constructor's annotation each become a problem naming
    `<field>.params.<param>`. Names resolved from text (`similarity_fct: cos_sim`,
    `distance_metric: COSINE`) are checked against what they resolve to.
    """
    name = CACHED_VARIANTS[loss] if cached else loss
    parameters = _loss_signature(name)
    problems = []
    for param, value in params.items():
        where = f"{field}.params.{param}"
        if param in _SET_BY_THE_RUN or param not in parameters:
            takes = sorted(set(parameters) - _SET_BY_THE_RUN)
            problems.append(
                Problem(
                    field=where,
                    message=f"{name} does not take {param!r}"
                    + (
                        " (name it as loss.guide, beside params)"
                        if param == "guide"
                        else " (the run sets it)"
                        if param in _SET_BY_THE_RUN
                        else ""
                    )
                    + f"; it takes: {', '.join(takes) or 'no params'}",
                )
            )
            continue
        try:
            if param == "similarity_fct" and isinstance(value, str):
                similarity_function_name(value)
                continue
            if param == "distance_metric" and isinstance(value, str):
                distance_metric_name(loss, value)
                continue
        except ValueError as error:
            problems.append(Problem(field=where, message=str(error)))
            continue
        if param in _RESOLVED_FROM_TEXT:
            problems.append(Problem(field=where, message=f"give a name as text, got {value!r}"))
            continue
        reason = _type_problem(value, parameters[param])
        if reason:
            problems.append(Problem(field=where, message=reason))
    for param, parameter in parameters.items():
        if parameter.required and param not in _SET_BY_THE_RUN and param not in params:
            problems.append(
                Problem(field=f"{field}.params.{param}", message=f"{name} requires {param!r}")
            )
    return problems


def guided_losses() -> list[str]:
    """Losses that take `loss.guide` (for error messages)."""
    return sorted(name for name, spec in LOSS_SPECS.items() if spec.guide)


def teacher_losses() -> list[str]:
    """Losses that take `loss.teacher` (for error messages)."""
    return sorted(name for name, spec in LOSS_SPECS.items() if spec.teacher is not None)
