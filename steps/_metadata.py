"""Metadata helpers shared by the steps."""

from __future__ import annotations

from typing import Any

from zenml import get_step_context, log_metadata
from zenml.exceptions import StepContextError


def log_step_metadata(metadata: dict[str, Any]) -> None:
    """Log to the step run, and to the model version when the pipeline has a `model`.

    Attaching to the model version is what makes metrics comparable across versions in
    the Model Control Plane; runs without a configured model still get step metadata.
    """
    log_metadata(metadata=metadata)
    try:
        has_model = get_step_context().model is not None
    except (RuntimeError, KeyError, StepContextError):
        has_model = False
    if has_model:
        log_metadata(metadata=metadata, infer_model=True)
