"""Base models by reference (local folder, Hub id, `package:<module>`): checked without
loading, and loaded.
"""

from trainer.models.loading import (
    load_model,
    max_positions,
    model_length_problems,
    model_source_problems,
    resolve_model_path,
)

__all__ = [
    "load_model",
    "max_positions",
    "model_length_problems",
    "model_source_problems",
    "resolve_model_path",
]
