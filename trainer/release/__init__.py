"""Whether and how a model is released: the gate with its regression guards, the model
card, and publishing to the Hugging Face Hub.
"""

from trainer.release.card import base_model_hub_id, group_metrics, render_model_card
from trainer.release.gate import decide, promotion_verdict
from trainer.release.guards import GuardMetricError, check_guards
from trainer.release.hub import (
    HubPushError,
    PushResult,
    gated_push,
    is_transient,
    push_model_folder,
    redact,
    with_retries,
)

__all__ = [
    "GuardMetricError",
    "HubPushError",
    "PushResult",
    "base_model_hub_id",
    "check_guards",
    "decide",
    "gated_push",
    "group_metrics",
    "is_transient",
    "promotion_verdict",
    "push_model_folder",
    "redact",
    "render_model_card",
    "with_retries",
]
