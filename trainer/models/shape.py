"""A model's shape read from its saved files, without loading weights: how wide its
embeddings are and how many transformer layers it has.

The preflight uses this to catch a distillation teacher whose embeddings the student
cannot regress onto (MSELoss needs equal widths) and a `keep_layers` naming a layer the
model does not have, before anything heavy loads. Only what the files say is answered:
a model that is not on disk (a Hub id outside the cache) or a module this does not know
gives None, and the check is reported as skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trainer.config import ModelConfig
from trainer.models.loading import resolve_model_path


def model_folder(config: ModelConfig) -> Path | None:
    """The local folder holding the model's files, or None (not on disk, a `zenml:`
    version, or a Hub id outside the local cache)."""
    if config.zenml_ref is not None:
        return None
    try:
        path = Path(resolve_model_path(config.name_or_path)).expanduser()
    except ValueError:
        return None
    if path.is_dir():
        return path
    from huggingface_hub import try_to_load_from_cache

    for marker in ("modules.json", "config.json"):
        try:
            cached = try_to_load_from_cache(config.name_or_path, marker, revision=config.revision)
        except ValueError:  # not a valid repo id
            return None
        if isinstance(cached, str):
            return Path(cached).parent
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _modules(folder: Path) -> list[tuple[str, Path]]:
    """(module class name, module folder) in order; a plain transformers folder is one
    Transformer (sentence-transformers adds mean pooling, which keeps the width)."""
    try:
        listed = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [("Transformer", folder)] if (folder / "config.json").is_file() else []
    return [(str(m["type"]).rsplit(".", 1)[-1], folder / str(m.get("path", ""))) for m in listed]


def _pooled_width(config: dict[str, Any], width: int | None) -> int | None:
    """Pooling's output width: its input width times the modes it concatenates."""
    width = config.get("embedding_dimension", config.get("word_embedding_dimension", width))
    if not isinstance(width, int):
        return None
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        return width
    if isinstance(mode, list):
        return width * len(mode)
    flags = [key for key, on in config.items() if key.startswith("pooling_mode_") and on is True]
    return width * max(len(flags), 1)


def embedding_dimension(config: ModelConfig) -> int | None:
    """The width of the model's sentence embeddings, from its files; None when unknown."""
    folder = model_folder(config)
    if folder is None:
        return None
    width: int | None = None
    for kind, path in _modules(folder):
        if kind == "Transformer":
            settings = _read_json(path / "config.json") or {}
            hidden = settings.get("hidden_size", settings.get("d_model"))
            width = hidden if isinstance(hidden, int) else None
        elif kind == "Pooling":
            width = _pooled_width(_read_json(path / "config.json") or {}, width)
        elif kind == "Dense":
            out = (_read_json(path / "config.json") or {}).get("out_features")
            width = out if isinstance(out, int) else None
        elif kind != "Normalize":
            return None  # a module whose width this does not know
    return width


def layer_count(config: ModelConfig) -> int | None:
    """How many transformer layers the model has (`num_hidden_layers`); None when unknown."""
    folder = model_folder(config)
    if folder is None:
        return None
    for kind, path in _modules(folder):
        if kind == "Transformer":
            count = (_read_json(path / "config.json") or {}).get("num_hidden_layers")
            return count if isinstance(count, int) else None
    return None
