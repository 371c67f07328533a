"""Whether and how a model is released: the gate with its regression guards, the model
card, publishing to the Hugging Face Hub, and the ONNX export with its parity check.
"""

from trainer.release.card import base_model_hub_id, group_metrics, render_model_card
from trainer.release.export import (
    EXPORT_INFO,
    ONNX_FILE,
    ONNX_FOLDER,
    QUANTIZED_FILES,
    OnnxEncoder,
    check_export,
    held_out_texts,
    write_export_folder,
)
from trainer.release.gate import decide, decide_release, promotion_verdict
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
    "EXPORT_INFO",
    "ONNX_FILE",
    "ONNX_FOLDER",
    "QUANTIZED_FILES",
    "GuardMetricError",
    "HubPushError",
    "OnnxEncoder",
    "PushResult",
    "base_model_hub_id",
    "check_export",
    "check_guards",
    "decide",
    "decide_release",
    "gated_push",
    "group_metrics",
    "held_out_texts",
    "is_transient",
    "promotion_verdict",
    "push_model_folder",
    "redact",
    "render_model_card",
    "with_retries",
    "write_export_folder",
]
