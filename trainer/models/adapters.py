"""LoRA adapters on a SentenceTransformer: only the adapter's weights train, and at the
end the adapter is merged into the base weights (an ordinary model folder).

The adapter is injected with peft's functional API (`peft.inject_adapter_in_model`, the
public entry point peft keeps for integrations) rather than sentence-transformers'
`model.add_adapter`: that one goes through transformers 5's PEFT integration, which
refuses the installed peft (0.21; it requires >= 0.22). The injected model's state dict
holds the base and the adapter weights, so a Trainer checkpoint holds both and
`load_checkpoint_weights` puts them back exactly on resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from trainer.config import AdapterConfig, ModelConfig
from trainer.models.loading import load_model
from trainer.models.routing import as_query_document_router

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn

ADAPTER_NAME = "default"


def _transformer(model: SentenceTransformer) -> nn.Module:
    """The transformers model inside `model`'s Transformer module."""
    transformer = model.transformers_model if model.has_peft_compatible_model() else None
    if transformer is None:
        raise ValueError(
            "model.adapter: the base model's first module is not a transformers model "
            "(a Transformer module) that peft can adapt"
        )
    return transformer


def _tuner_layers(model: SentenceTransformer) -> list[tuple[str, object]]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [
        (name, module)
        for name, module in _transformer(model).named_modules()
        if isinstance(module, BaseTunerLayer)
    ]


def has_adapter(model: SentenceTransformer) -> bool:
    """Whether `model`'s transformer carries adapter layers."""
    return model.has_peft_compatible_model() and bool(_tuner_layers(model))


def add_adapter(model: SentenceTransformer, config: AdapterConfig, *, seed: int = 0) -> None:
    """Inject a fresh LoRA adapter and freeze every other weight.

    The adapter's initial weights are random (peft draws LoRA's A matrices): they are
    drawn from `seed` (the run's seed), so a rerun, and a resumed run's original, start
    from the same adapter. The global random state is left as it was."""
    import torch
    from peft import LoraConfig, TaskType, inject_adapter_in_model

    transformer = _transformer(model)
    lora = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=config.target_modules,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inject_adapter_in_model(lora, transformer, ADAPTER_NAME)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_("lora_" in name)


def load_trainable_model(
    config: ModelConfig, *, seed: int = 0, device: str | None = None
) -> SentenceTransformer:
    """The base model as training starts from it: with a fresh adapter (drawn from
    `seed`) when configured, as a query/document Router when `asymmetric`."""
    model = load_model(config, device=device)
    if config.adapter is not None:
        add_adapter(model, config.adapter, seed=seed)
    if config.asymmetric:
        model = as_query_document_router(model)
    return model


def load_checkpoint_weights(model: SentenceTransformer, checkpoint: str | Path) -> None:
    """Base and adapter weights of a Trainer checkpoint of an adapted model, loaded into
    `model` (which carries the same adapter), strictly: every key must match."""
    from safetensors.torch import load_file

    weights = load_file(str(Path(checkpoint) / "model.safetensors"))
    _transformer(model).load_state_dict(weights, strict=True)


def merge_adapter(model: SentenceTransformer) -> None:
    """Fold the adapter into the base weights and remove its layers, in place: the model
    saves and loads as an ordinary SentenceTransformer (no peft needed)."""
    transformer = _transformer(model)
    for name, layer in _tuner_layers(model):
        layer.merge()  # type: ignore[attr-defined]
        parent_name, _, child = name.rpartition(".")
        parent = transformer.get_submodule(parent_name) if parent_name else transformer
        setattr(parent, child, layer.get_base_layer())  # type: ignore[attr-defined]
    for parameter in model.parameters():
        parameter.requires_grad_(True)


def finish_adapter(model: SentenceTransformer, config: ModelConfig) -> None:
    """After training: merge the adapter (`model.adapter.export: merged`)."""
    if config.adapter is not None and has_adapter(model):
        merge_adapter(model)
