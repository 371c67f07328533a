"""Base models by reference (local folder, Hub id, `package:<module>`): checked without
loading, and loaded (optionally with fewer layers); their shape read from their files.
"""

from trainer.models.adapters import (
    add_adapter,
    finish_adapter,
    has_adapter,
    load_checkpoint_weights,
    load_trainable_model,
    merge_adapter,
)
from trainer.models.facts import ModelFacts, model_facts, read_model_facts
from trainer.models.loading import (
    keep_layers,
    load_model,
    max_positions,
    model_length_problems,
    model_source_problems,
    resolve_model_path,
)
from trainer.models.shape import embedding_dimension, layer_count, model_folder

__all__ = [
    "ModelFacts",
    "add_adapter",
    "embedding_dimension",
    "finish_adapter",
    "has_adapter",
    "keep_layers",
    "layer_count",
    "load_checkpoint_weights",
    "load_model",
    "load_trainable_model",
    "max_positions",
    "merge_adapter",
    "model_facts",
    "model_folder",
    "model_length_problems",
    "model_source_problems",
    "read_model_facts",
    "resolve_model_path",
]
