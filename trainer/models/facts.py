"""What a base model's files say about it, read without loading weights: whether it is a
SentenceTransformer folder (modules.json) or a plain transformers checkpoint, its
embedding dimension and its number of transformer layers. The preflight checks
Matryoshka dimensions, adaptive-layer options and pooling settings against these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.config import ModelConfig
from trainer.models.loading import resolve_model_path


@dataclass(frozen=True)
class ModelFacts:
    """A base model as its files describe it. None: the files do not say."""

    sentence_transformer: bool
    """Whether the folder has modules.json (its own pooling and normalization)."""
    embedding_dimension: int | None
    num_layers: int | None
    pooling: tuple[str, ...] | None
    """The pooling modes of a SentenceTransformer folder."""


_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
"""Pooling configs written by sentence-transformers < 6 name each mode as a bool key."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pooling_modes(pooling_config: dict[str, Any]) -> tuple[str, ...]:
    """The modes of a saved Pooling module's config (current and legacy format)."""
    mode = pooling_config.get("pooling_mode")
    if isinstance(mode, str):
        return (mode,)
    if isinstance(mode, list):
        return tuple(str(m) for m in mode)
    return tuple(name for key, name in _LEGACY_POOLING.items() if pooling_config.get(key))


def _hidden(config: Any) -> tuple[int | None, int | None]:
    """(hidden size, layer count) from a transformers config.json."""
    if not isinstance(config, dict):
        return None, None
    nested = config.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else config
    hidden = text.get("hidden_size", text.get("d_model"))
    layers = text.get("num_hidden_layers", text.get("num_layers"))
    return (
        hidden if isinstance(hidden, int) else None,
        layers if isinstance(layers, int) else None,
    )


def _module_dimension(folder: Path, entry: dict[str, Any]) -> tuple[int | None, tuple[str, ...]]:
    """(output dimension, pooling modes) of one saved module, when its config says."""
    kind = str(entry.get("type", ""))
    config = _read_json(folder / str(entry.get("path", "")) / "config.json")
    if not isinstance(config, dict):
        return None, ()
    if kind.endswith("Dense"):
        out = config.get("out_features")
        return (out if isinstance(out, int) else None), ()
    if kind.endswith("Pooling"):
        word = config.get("embedding_dimension", config.get("word_embedding_dimension"))
        modes = pooling_modes(config)
        if isinstance(word, int) and modes:
            return word * len(modes), modes
    return None, ()


def read_model_facts(folder: Path, pooling: tuple[str, ...] = ("mean",)) -> ModelFacts:
    """The facts of a local model folder. `pooling`: the modes a plain checkpoint is
    pooled with (sentence-transformers' default is mean)."""
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list):
        hidden, plain_layers = _hidden(_read_json(folder / "config.json"))
        pooled = hidden * len(pooling) if hidden is not None else None
        return ModelFacts(False, pooled, plain_layers, None)
    dimension: int | None = None
    modes: tuple[str, ...] | None = None
    layers: int | None = None
    for entry in reversed(modules):
        if not isinstance(entry, dict):
            continue
        found, entry_modes = _module_dimension(folder, entry)
        if dimension is None and found is not None:
            dimension = found
        if entry_modes and modes is None:
            modes = entry_modes
        if str(entry.get("type", "")).endswith("Transformer"):
            _, layers = _hidden(_read_json(folder / str(entry.get("path", "")) / "config.json"))
    return ModelFacts(True, dimension, layers, modes)


def model_facts(config: ModelConfig) -> ModelFacts | None:
    """The facts of the configured base model when its files are on this machine (a local
    folder or `package:`); None for a Hub id or a `zenml:` version (not read here)."""
    if config.zenml_ref is not None:
        return None
    try:
        folder = Path(resolve_model_path(config.name_or_path)).expanduser()
    except ValueError:
        return None
    if not folder.is_dir():
        return None
    pooling = config.pooling_modes or ("mean",)
    return read_model_facts(folder, pooling)
