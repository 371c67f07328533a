"""Preflight of the models a loss names besides the base: GISTEmbedLoss's guide and a
distillation teacher, and of `keep_layers` wherever a model config has it.

Checked from the files alone (no weights loaded): each guide and teacher must be
loadable the way the base model must (a folder holding a model, an installed package, a
cached Hub id offline, an existing ZenML version); an MSELoss teacher must embed in as
many dimensions as the student, since the student's embeddings regress onto the
teacher's; `keep_layers` may name only layers the model has.
"""

from __future__ import annotations

from collections.abc import Callable

from trainer.catalog import LOSS_SPECS
from trainer.config import ModelConfig, RunConfig
from trainer.preflight.report import Findings


def _check_source(
    model: ModelConfig,
    field: str,
    what: str,
    found: Findings,
    model_version_exists: Callable[[str], str | None] | None,
) -> bool:
    """Record whether `model` can be loaded; True when its files can be read here."""
    from trainer.models import model_source_problems

    if model.zenml_ref is not None:
        if model_version_exists is None:
            found.skipped.append(
                f"{field} {model.name_or_path!r}: a ZenML model version, checked by the "
                "pipeline's preflight step"
            )
            return False
        problem = model_version_exists(model.name_or_path)
        if problem is not None:
            found.problem(f"{field}.name_or_path", problem)
        else:
            found.checked.append(f"{what} {model.name_or_path}")
        return False
    problems = model_source_problems(model, field=f"{field}.name_or_path")
    found.problems.extend(problems)
    if not problems:
        found.checked.append(f"{what} {model.name_or_path}")
    return not problems


def _check_keep_layers(model: ModelConfig, field: str, found: Findings) -> None:
    from trainer.models import layer_count

    if model.keep_layers is None:
        return
    count = layer_count(model)
    if count is None:
        found.skipped.append(f"{field}.keep_layers: the model's layer count is not known here")
    elif model.keep_layers[-1] >= count:
        found.problem(
            f"{field}.keep_layers",
            f"{list(model.keep_layers)} names layer {model.keep_layers[-1]}, but "
            f"{model.name_or_path!r} has {count} layers (0..{count - 1})",
        )
    else:
        found.checked.append(f"{field}.keep_layers: {len(model.keep_layers)} of {count} layers")


def _check_dimensions(config: RunConfig, name: str, teacher: ModelConfig, found: Findings) -> None:
    """MSELoss: the teacher's embedding width must be the student's."""
    from trainer.models import embedding_dimension

    field = f"datasets.{name}.loss.teacher"
    student = None if config.model.zenml_ref else embedding_dimension(config.model)
    width = embedding_dimension(teacher)
    if student is None or width is None:
        found.skipped.append(
            f"{field}: embedding dimensions of student and teacher are not both known here; "
            "MSELoss needs them equal"
        )
    elif student != width:
        found.problem(
            field,
            f"MSELoss regresses the student's embeddings onto the teacher's, so their "
            f"dimensions must be equal: the student ({config.model.name_or_path!r}) has "
            f"{student}, the teacher ({teacher.name_or_path!r}) {width}; pick a teacher of "
            f"dimension {student} (layer reduction with model.keep_layers keeps the width)",
        )
    else:
        found.checked.append(f"{field}: student and teacher both embed in {student} dimensions")


def check_loss_models(
    config: RunConfig,
    found: Findings,
    model_version_exists: Callable[[str], str | None] | None = None,
) -> None:
    """Every guide and teacher, their fit with the student, and every `keep_layers`."""
    _check_keep_layers(config.model, "model", found)
    for name, dataset in config.datasets.items():
        loss = dataset.loss
        for role, model in (("guide", loss.guide), ("teacher", loss.teacher)):
            if model is None:
                continue
            field = f"datasets.{name}.loss.{role}"
            if _check_source(model, field, f"{role} model", found, model_version_exists):
                _check_keep_layers(model, field, found)
                if role == "teacher" and LOSS_SPECS[loss.name].teacher == "embedding":
                    _check_dimensions(config, name, model, found)
