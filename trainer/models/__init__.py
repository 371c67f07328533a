"""Base models by reference (local folder, Hub id, `package:<module>`): checked without
loading, and loaded (optionally with fewer layers); their shape read from their files.
"""

from trainer.models.adapters import (
    ADAPTER_FOLDER,
    KeptAdapter,
    add_adapter,
    finish_adapter,
    has_adapter,
    keep_adapter,
    kept_adapter,
    load_checkpoint_weights,
    load_saved_model,
    load_trainable_model,
    load_with_adapter,
    merge_adapter,
    save_model,
)
from trainer.models.facts import ModelFacts, model_facts, model_folder, read_model_facts
from trainer.models.loading import (
    keep_layers,
    load_model,
    max_positions,
    model_length_problems,
    model_source_problems,
    resolve_model_path,
)

__all__ = [
    "ADAPTER_FOLDER",
    "KeptAdapter",
    "ModelFacts",
    "add_adapter",
    "finish_adapter",
    "has_adapter",
    "keep_adapter",
    "keep_layers",
    "kept_adapter",
    "load_checkpoint_weights",
    "load_model",
    "load_saved_model",
    "load_trainable_model",
    "load_with_adapter",
    "max_positions",
    "merge_adapter",
    "model_facts",
    "model_folder",
    "model_length_problems",
    "model_source_problems",
    "read_model_facts",
    "resolve_model_path",
    "save_model",
]
