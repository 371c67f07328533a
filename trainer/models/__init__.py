"""Base models by reference (local folder, Hub id, `package:<module>`): checked without
loading, and loaded (optionally with fewer layers); their shape read from their files.
"""

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
    "embedding_dimension",
    "keep_layers",
    "layer_count",
    "load_model",
    "max_positions",
    "model_folder",
    "model_length_problems",
    "model_source_problems",
    "resolve_model_path",
]
