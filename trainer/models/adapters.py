"""LoRA adapters on a SentenceTransformer: only the adapter's weights train, and at the
end the adapter is merged into the base weights (an ordinary model folder); with
`model.adapter.export: adapter` the adapter alone is also kept, and written in peft's
standard layout into the model folder's `adapter/` (see `save_model`).

The adapter is injected with peft's functional API (`peft.inject_adapter_in_model`, the
public entry point peft keeps for integrations) rather than sentence-transformers'
`model.add_adapter`: that one goes through transformers 5's PEFT integration, which
refuses the installed peft (0.21; it requires >= 0.22). The injected model's state dict
holds the base and the adapter weights, so a Trainer checkpoint holds both and
`load_checkpoint_weights` puts them back exactly on resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.config import AdapterConfig, ModelConfig
from trainer.models.loading import load_model
from trainer.models.routing import as_query_document_router

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer
    from torch import nn

ADAPTER_NAME = "default"
ADAPTER_FOLDER = "adapter"
"""The folder, inside a saved model folder, that holds the trained adapter alone."""
PEFT_PREFIX = "base_model.model."
"""Where a `PeftModel` keeps the adapted model: the prefix of every key of peft's saved
adapter weights (`PeftModel.save_pretrained`), which `PeftModel.from_pretrained` expects."""
_KEPT_ADAPTER = "st_finetune_adapter"
"""The attribute of a merged SentenceTransformer that holds its adapter (`KeptAdapter`)."""


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
    """After training: merge the adapter. With `model.adapter.export: adapter` the adapter
    is first kept on the model (`kept_adapter`), so that `save_model` writes it beside
    the merged weights: evaluation, export and the card need the merged model, people
    who load the adapter onto their base model need the adapter alone."""
    if config.adapter is None or not has_adapter(model):
        return
    if config.adapter.export == "adapter":
        keep_adapter(model, config.name_or_path)
    merge_adapter(model)


@dataclass(frozen=True)
class KeptAdapter:
    """A trained adapter as peft saves it: `adapter_config.json`'s content and the
    weights of `adapter_model.safetensors` (peft's keys, on the CPU)."""

    config: dict[str, Any]
    weights: dict[str, torch.Tensor]

    def write(self, folder: str | Path) -> Path:
        """Write `folder` (created) in peft's layout, what `PeftModel.from_pretrained`
        and `load_with_adapter` read."""
        from peft import PeftConfig
        from peft.utils import SAFETENSORS_WEIGHTS_NAME
        from safetensors.torch import save_file

        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        PeftConfig.from_peft_type(**self.config).save_pretrained(str(target))
        save_file(self.weights, str(target / SAFETENSORS_WEIGHTS_NAME), metadata={"format": "pt"})
        return target

    @classmethod
    def read(cls, folder: str | Path) -> KeptAdapter:
        """The adapter a `write` (or `PeftModel.save_pretrained`) left in `folder`."""
        from peft import PeftConfig
        from peft.utils import load_peft_weights

        config = PeftConfig.from_pretrained(str(folder))
        return cls(config=config.to_dict(), weights=load_peft_weights(str(folder), device="cpu"))


def keep_adapter(model: SentenceTransformer, base_model: str) -> KeptAdapter:
    """Copy `model`'s adapter (config and weights, by peft's `get_peft_model_state_dict`)
    onto the model, before a merge removes it; `base_model` is recorded in its config
    (`base_model_name_or_path`)."""
    from peft import get_peft_model_state_dict

    transformer = _transformer(model)
    peft_configs: Any = getattr(transformer, "peft_config")  # noqa: B009 (set by peft)
    config = peft_configs[ADAPTER_NAME].to_dict()
    config.update(inference_mode=True, base_model_name_or_path=base_model)
    weights = {
        PEFT_PREFIX + key: value.detach().cpu().clone().contiguous()
        for key, value in get_peft_model_state_dict(transformer, adapter_name=ADAPTER_NAME).items()
    }
    kept = KeptAdapter(config=config, weights=weights)
    setattr(model, _KEPT_ADAPTER, kept)
    return kept


def kept_adapter(model: SentenceTransformer) -> KeptAdapter | None:
    """The adapter `model` was merged from, when it was kept (`export: adapter`)."""
    kept = getattr(model, _KEPT_ADAPTER, None)
    return kept if isinstance(kept, KeptAdapter) else None


def save_model(
    model: SentenceTransformer, folder: str | Path, *, create_model_card: bool = True
) -> Path:
    """`model.save(folder)`, plus the kept adapter alone in `folder/adapter/` (peft's
    `adapter_config.json` + `adapter_model.safetensors`). Every place that saves a trained
    model saves through here, so the adapter travels with it (artifact store, Hub)."""
    model.save(str(folder), create_model_card=create_model_card)
    kept = kept_adapter(model)
    if kept is not None:
        kept.write(Path(folder) / ADAPTER_FOLDER)
    return Path(folder)


def load_saved_model(folder: str | Path, **kwargs: Any) -> SentenceTransformer:
    """`SentenceTransformer(folder, **kwargs)` with the adapter of `folder/adapter/` kept
    on it again (what `save_model` wrote), so a later `save_model` writes it too."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), **kwargs)
    if (Path(folder) / ADAPTER_FOLDER).is_dir():
        setattr(model, _KEPT_ADAPTER, KeptAdapter.read(Path(folder) / ADAPTER_FOLDER))
    return model


def load_with_adapter(
    base: ModelConfig | str | Path, adapter_folder: str | Path, *, device: str | None = None
) -> SentenceTransformer:
    """The base model with a saved adapter injected (peft) and its weights loaded, not
    merged: the embeddings of the merged model the run saved, from the base weights and
    the small adapter folder.

    `base` is the run's `model` config (its reference, `keep_layers` and pooling: the
    base exactly as it trained) or a model folder / reference; `adapter_folder` is a saved
    model's `adapter/` (or any folder peft saved a LoRA adapter for this base into).
    Every weight of the adapter must find its layer: a mismatch is an error, not a
    silently unadapted model."""
    from peft import PeftConfig, inject_adapter_in_model, set_peft_model_state_dict

    config = base if isinstance(base, ModelConfig) else ModelConfig(name_or_path=str(base))
    model = load_model(config, device=device)
    kept = KeptAdapter.read(adapter_folder)
    weights = {key.removeprefix(PEFT_PREFIX): value for key, value in kept.weights.items()}
    transformer = _transformer(model)
    inject_adapter_in_model(PeftConfig.from_peft_type(**kept.config), transformer, ADAPTER_NAME)
    loaded: Any = set_peft_model_state_dict(transformer, weights, adapter_name=ADAPTER_NAME)
    missing = sorted(key for key in loaded.missing_keys if "lora_" in key)
    unexpected = sorted(loaded.unexpected_keys)
    if unexpected or missing:
        problems = []
        if unexpected:
            problems.append(
                f"{len(unexpected)} weight(s) with no layer in this base (e.g. {unexpected[0]})"
            )
        if missing:
            problems.append(f"{len(missing)} adapter layer(s) with no weight (e.g. {missing[0]})")
        raise ValueError(
            f"the adapter in {adapter_folder} does not fit the base model "
            f"{config.name_or_path!r}: {'; '.join(problems)}; load it onto the base it "
            "was trained from (the run's model config: name_or_path, keep_layers)"
        )
    return model
