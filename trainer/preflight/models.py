"""Model options checked against what the base model's files say (`trainer.models.facts`),
before any weights load: Matryoshka dimensions within the embedding dimension, adaptive
layer options within the layer count, pooling settings only where they apply.
"""

from __future__ import annotations

from trainer.config import RunConfig
from trainer.models import ModelFacts
from trainer.problems import Problem


def _matryoshka_problems(config: RunConfig, facts: ModelFacts) -> list[Problem]:
    dimension = facts.embedding_dimension
    if dimension is None:
        return []
    problems = []
    for name, dataset in config.datasets.items():
        dims = dataset.loss.matryoshka_dims or []
        too_large = [dim for dim in dims if dim > dimension]
        if too_large:
            problems.append(
                Problem(
                    field=f"datasets.{name}.loss.matryoshka_dims",
                    message=f"{too_large} exceed the base model's embedding dimension "
                    f"{dimension}; every dimension must be at most {dimension}",
                )
            )
    return problems


def _adaptive_layer_problems(config: RunConfig, facts: ModelFacts) -> list[Problem]:
    layers = facts.num_layers
    if layers is None:
        return []
    problems = []
    for name, dataset in config.datasets.items():
        adaptive = dataset.loss.adaptive_layer
        if adaptive is None:
            continue
        field = f"datasets.{name}.loss.adaptive_layer"
        if layers < 2:
            problems.append(
                Problem(
                    field=field,
                    message=f"the base model has {layers} transformer layer(s); training "
                    "earlier layers needs at least 2",
                )
            )
        elif adaptive.n_layers_per_step > layers - 1:
            problems.append(
                Problem(
                    field=f"{field}.n_layers_per_step",
                    message=f"{adaptive.n_layers_per_step} exceeds the {layers - 1} earlier "
                    f"layer(s) of the base model ({layers} layers, the last one is always "
                    f"trained): use at most {layers - 1}, or -1 for all",
                )
            )
    return problems


def _pooling_problems(config: RunConfig, facts: ModelFacts) -> list[Problem]:
    if not facts.sentence_transformer:
        return []
    own = ", ".join(facts.pooling) if facts.pooling else "its own"
    return [
        Problem(
            field=f"model.{key}",
            message=f"{config.model.name_or_path!r} is a SentenceTransformer folder "
            f"(modules.json) with {own} pooling{' and normalization' if key == 'normalize' else ''}"
            f"; model.{key} applies to plain transformers checkpoints only: remove it",
        )
        for key in ("pooling", "normalize")
        if getattr(config.model, key) is not None
    ]


def model_option_problems(config: RunConfig, facts: ModelFacts) -> list[Problem]:
    """Every model-dependent option of `config` that does not fit the base model."""
    return [
        *_matryoshka_problems(config, facts),
        *_adaptive_layer_problems(config, facts),
        *_pooling_problems(config, facts),
    ]
