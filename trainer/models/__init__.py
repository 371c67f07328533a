"""Base models by reference (local folder, Hub id, `package:<module>`): checked without
loading, and loaded.
"""

from trainer.models.loading import load_model, model_source_problems, resolve_model_path

__all__ = [
    "load_model",
    "model_source_problems",
    "resolve_model_path",
]
