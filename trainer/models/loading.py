"""Base models by reference: a local folder, a Hub id or `package:<module>` (a Python
package that ships the weights), checked without loading and loaded with the card
metadata kept offline. `zenml:` references are resolved by the ZenML steps before any
of this runs.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.config import PACKAGE_PREFIX, ModelConfig, parse_zenml_model_ref
from trainer.problems import Problem, raise_problems

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer
    from torch import nn


def resolve_model_path(name_or_path: str) -> str:
    """`package:<module>` -> the weights directory that package ships; anything else as is."""
    if parse_zenml_model_ref(name_or_path) is not None:
        raise ValueError(
            f"model.name_or_path {name_or_path!r} is a ZenML model version: the pipeline "
            "resolves it to a local folder before training (steps/_models.py)"
        )
    if not name_or_path.startswith(PACKAGE_PREFIX):
        return name_or_path
    module_name = name_or_path[len(PACKAGE_PREFIX) :]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"model.name_or_path {name_or_path!r}: package {module_name!r} is not installed"
        ) from error
    if hasattr(module, "get_model_path"):
        return str(module.get_model_path())
    candidate = Path(module.__file__).parent / "model" if module.__file__ else None
    if candidate is None or not candidate.is_dir():
        raise ValueError(
            f"model.name_or_path {name_or_path!r}: package has no get_model_path() or model/ dir"
        )
    return str(candidate)


_MODEL_FILES = ("modules.json", "config.json")
"""A sentence-transformers folder has modules.json; a plain transformers one config.json."""


def model_source_problems(config: ModelConfig, field: str = "model.name_or_path") -> list[Problem]:
    """Why the model `config` names (at `field`) cannot be loaded, found without loading it.

    A local directory must exist and hold a model; a name that cannot be a Hub id
    (`./models/x`, `/abs/path`, `a/b/c`) is taken for a local path that does not exist;
    with `HF_HUB_OFFLINE` set, a Hub id must already be in the local Hugging Face cache.
    """
    from huggingface_hub import constants, try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    name = config.name_or_path
    try:
        path = Path(resolve_model_path(name)).expanduser()
    except ValueError as error:
        return [Problem(field=field, message=str(error).removeprefix("model.name_or_path "))]
    if path.is_dir():
        if not any((path / marker).is_file() for marker in _MODEL_FILES):
            return [
                Problem(
                    field=field,
                    message=f"directory {name!r} holds no model (no modules.json or "
                    "config.json); point it at a folder saved by SentenceTransformer.save",
                )
            ]
        return []
    if path.exists():
        return [Problem(field=field, message=f"{name!r} is a file; name a model directory")]
    try:
        validate_repo_id(name)
    except HFValidationError:
        return [
            Problem(
                field=field,
                message=f"local model directory {name!r} does not exist (and it is not a "
                "Hub id); check the path, relative paths start from the working directory",
            )
        ]
    if constants.HF_HUB_OFFLINE:
        cached = any(
            isinstance(try_to_load_from_cache(name, marker, revision=config.revision), str)
            for marker in _MODEL_FILES
        )
        if not cached:
            return [
                Problem(
                    field=field,
                    message=f"Hub model {name!r} is not in the local Hugging Face cache and "
                    "HF_HUB_OFFLINE is set; download it first or name a local directory",
                )
            ]
    return []


def _transformer_config(config: ModelConfig) -> dict | None:
    """The transformers `config.json` of the model's Transformer module, read without
    loading the model (a local folder, a package, or a Hub id in the local cache)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        path = Path(resolve_model_path(config.name_or_path)).expanduser()
    except ValueError:
        return None

    def read(name: str) -> Path | None:
        if path.is_dir():
            return path / name if (path / name).is_file() else None
        cached = try_to_load_from_cache(config.name_or_path, name, revision=config.revision)
        return Path(cached) if isinstance(cached, str) else None

    folder = ""
    modules = read("modules.json")
    if modules is not None:
        entries = json.loads(modules.read_text(encoding="utf-8"))
        folder = next(
            (e.get("path", "") for e in entries if str(e.get("type", "")).endswith("Transformer")),
            "",
        )
    found = read(f"{folder}/config.json" if folder else "config.json")
    return json.loads(found.read_text(encoding="utf-8")) if found is not None else None


def max_positions(config: ModelConfig) -> int | None:
    """The longest input the base model's position embeddings take (`max_position_embeddings`
    of its config.json), or None when unknown offline or unbounded."""
    saved = _transformer_config(config)
    limit = saved.get("max_position_embeddings") if saved else None
    return limit if isinstance(limit, int) and limit > 0 else None


def model_length_problems(config: ModelConfig) -> list[Problem]:
    """`model.max_seq_length` above what the model's position embeddings take: an error
    naming the cap, where the tokenizer would otherwise truncate there silently."""
    wanted = config.max_seq_length
    limit = max_positions(config) if wanted is not None else None
    if wanted is None or limit is None or wanted <= limit:
        return []
    return [
        Problem(
            field="model.max_seq_length",
            message=f"{wanted} is above the {limit} tokens {config.name_or_path!r} can take "
            f"(max_position_embeddings in its config.json); use {limit} or less",
        )
    ]


def load_model(config: ModelConfig, device: str | None = None) -> SentenceTransformer:
    """Load the base model; card metadata stays offline (`local_files_only`)."""
    from sentence_transformers import SentenceTransformer

    raise_problems(model_source_problems(config) or model_length_problems(config))
    from sentence_transformers.sentence_transformer.model_card import (
        SentenceTransformerModelCardData,
    )

    path = resolve_model_path(config.name_or_path)
    modules = _plain_checkpoint_modules(config, path)
    model = SentenceTransformer(
        None if modules is not None else path,
        revision=config.revision,
        trust_remote_code=config.trust_remote_code,
        device=device,
        model_card_data=SentenceTransformerModelCardData(
            local_files_only=True, generate_widget_examples=False
        ),
        modules=modules,
    )
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    if config.keep_layers is not None:
        keep_layers(model, config.keep_layers)
    return model


def _plain_checkpoint_modules(config: ModelConfig, path: str) -> list[nn.Module] | None:
    """Transformer + Pooling(`model.pooling`) [+ Normalize] for a plain transformers
    checkpoint when the config sets `pooling` or `normalize`; None otherwise, and
    sentence-transformers builds the model from the folder (mean pooling for a plain
    checkpoint). The preflight refuses both settings on a SentenceTransformer folder."""
    if config.pooling is None and config.normalize is None:
        return None
    if (Path(path) / "modules.json").is_file():
        # A SentenceTransformer folder keeps its own modules: the preflight refuses
        # pooling settings for such a base, and a fine-tuned or production model loaded
        # with the run's model config (zenml lineage) is one.
        return None
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    hub = {"revision": config.revision, "trust_remote_code": config.trust_remote_code}
    transformer = Transformer(
        path,
        max_seq_length=config.max_seq_length,
        model_kwargs=hub,
        processor_kwargs=hub,
        config_kwargs=hub,
    )
    modes = config.pooling_modes or ("mean",)
    modules: list[nn.Module] = [
        transformer,
        Pooling(transformer.get_embedding_dimension(), modes[0] if len(modes) == 1 else modes),
    ]
    if config.normalize:
        modules.append(Normalize())
    return modules


def _layer_list(model: SentenceTransformer) -> tuple[Any, Any]:
    """(the transformers model, its list of transformer layers): the `nn.ModuleList` as
    long as `config.num_hidden_layers` (`encoder.layer` in BERT, `layers` in ModernBERT)."""
    from torch import nn

    backbone: Any = model[0].auto_model
    count = getattr(backbone.config, "num_hidden_layers", None)
    for module in backbone.modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return backbone, module
    raise ValueError(
        f"model.keep_layers: found no list of {count} layers in {type(backbone).__name__}"
    )


def keep_layers(model: SentenceTransformer, layers: tuple[int, ...]) -> None:
    """Drop every transformer layer of `model` but `layers`, in place (and in its config,
    so the saved model loads with that many)."""
    backbone, layer_list = _layer_list(model)
    if layers[-1] >= len(layer_list):
        raise ValueError(
            f"model.keep_layers: {list(layers)} names layer {layers[-1]}, but the model has "
            f"{len(layer_list)} (0..{len(layer_list) - 1})"
        )
    kept = [layer_list[index] for index in layers]
    for position in range(len(layer_list) - 1, -1, -1):
        del layer_list[position]
    layer_list.extend(kept)
    backbone.config.num_hidden_layers = len(kept)
    # Layer types per index (sliding/full attention) follow the kept layers.
    layer_types = getattr(backbone.config, "layer_types", None)
    if isinstance(layer_types, list) and len(layer_types) > layers[-1]:
        backbone.config.layer_types = [layer_types[index] for index in layers]
