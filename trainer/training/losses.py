"""The configured loss, built around a model: cached and Matryoshka variants, callables
and distance metrics named in YAML, gathering in-batch negatives across processes, and
the guide model of GISTEmbedLoss (loaded once per run however many losses or trials use
it). What each loss accepts (names, row shapes, parameter types) is `trainer.catalog.losses`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trainer.catalog import (
    CACHED_VARIANTS,
    DISTANCE_ENUMS,
    distance_metric_name,
    similarity_function_name,
)
from trainer.config import LossConfig, ModelConfig
from trainer.models import load_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn


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
        resolved["similarity_fct"] = getattr(util, similarity_function_name(fct))
    return resolved


def _distance_metric(loss_name: str, value: str) -> Any:
    """Resolve `distance_metric: COSINE` against the enum the loss's module defines."""
    from sentence_transformers.sentence_transformer import losses

    name = distance_metric_name(loss_name, value)
    return getattr(getattr(losses, DISTANCE_ENUMS[loss_name]), name)


GuideLoader = Callable[[ModelConfig, str], "SentenceTransformer"]
"""(guide config, device) -> the loaded guide model."""


def guide_loader() -> GuideLoader:
    """A loader that loads each guide model once (per config and device) and then hands
    out the same frozen instance: one per run, whatever number of datasets or search
    trials name it."""
    loaded: dict[tuple[ModelConfig, str], SentenceTransformer] = {}

    def load(config: ModelConfig, device: str) -> SentenceTransformer:
        if (config, device) not in loaded:
            guide = load_model(config, device=device)
            guide.eval()
            guide.requires_grad_(False)  # GIST only reads its scores; it is never trained
            loaded[config, device] = guide
        return loaded[config, device]

    return load


def build_loss(
    model: SentenceTransformer,
    config: LossConfig,
    *,
    gather_across_devices: bool = False,
    load_guide: GuideLoader | None = None,
) -> nn.Module:
    """Instantiate the configured loss (with its Cached / Matryoshka wrappers) for `model`.

    `gather_across_devices`: losses with in-batch negatives that support it score each
    anchor against the positives of every process (a global batch of negatives under
    DDP), unless the loss's `params` set it explicitly. `load_guide` loads `config.guide`
    on the model's device (default: a fresh `guide_loader()`; pass one loader per run).
    """
    from sentence_transformers.sentence_transformer import losses

    name = CACHED_VARIANTS[config.name] if config.cached else config.name
    params = _resolve_params(config.params)
    if config.guide is not None:
        load_guide = load_guide or guide_loader()
        params["guide"] = load_guide(config.guide, str(model.device))
    if gather_across_devices and _accepts(getattr(losses, name), "gather_across_devices"):
        params.setdefault("gather_across_devices", True)
    if isinstance(params.get("distance_metric"), str):
        params["distance_metric"] = _distance_metric(config.name, params["distance_metric"])
    if name == "SoftmaxLoss":
        params.setdefault("embedding_dimension", model.get_embedding_dimension())
    try:
        loss = getattr(losses, name)(model, **params)
    except TypeError as error:
        raise ValueError(f"loss {name}: bad params {sorted(config.params)}: {error}") from error
    return _wrapped(model, loss, config)


def _wrapped(model: SentenceTransformer, loss: nn.Module, config: LossConfig) -> nn.Module:
    """The loss in its modifiers: MatryoshkaLoss for `matryoshka_dims`, AdaptiveLayerLoss
    for `adaptive_layer`, Matryoshka2dLoss for both (sentence-transformers' own classes and
    parameter names; parameters left unset keep the library's defaults)."""
    from sentence_transformers.sentence_transformer import losses

    matryoshka: dict[str, Any] = {}
    if config.matryoshka_dims:
        matryoshka["matryoshka_dims"] = list(config.matryoshka_dims)
        if config.matryoshka_weights is not None:
            matryoshka["matryoshka_weights"] = list(config.matryoshka_weights)
        if config.n_dims_per_step is not None:
            matryoshka["n_dims_per_step"] = config.n_dims_per_step
    adaptive = config.adaptive_layer.model_dump() if config.adaptive_layer is not None else None
    if matryoshka and adaptive is not None:
        return losses.Matryoshka2dLoss(model, loss, **matryoshka, **adaptive)
    if matryoshka:
        return losses.MatryoshkaLoss(model, loss, **matryoshka)
    if adaptive is not None:
        return losses.AdaptiveLayerLoss(model, loss, **adaptive)
    return loss


def _accepts(loss_class: type[Any], parameter: str) -> bool:
    return parameter in inspect.signature(loss_class.__init__).parameters
