"""The optional export stage: the fine-tuned model as ONNX (and int8-quantized ONNX), with
its pooling and normalization inside the graph, checked against the PyTorch model before
the gate lets it be published.

Exporters have silently dropped pooling or normalization, and int8 quantization costs
some retrieval quality; so an export is only released when every exported graph agrees
with the PyTorch model per text (cosine) and on the gate metric (recomputed with the
exported graph on the same evaluators), within the tolerances below.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trainer.config.base import StrictModel

QUANTIZATIONS = ("int8",)
"""Quantized variants the export stage can write (onnxruntime dynamic quantization)."""
ROUTER_EXPORT_REFUSED = (
    "export.onnx cannot export a query/document Router (model.asymmetric: true): the "
    "export writes one graph, and a Router's query and document routes are two networks; "
    "the graph would hold only the default (document) route and encode queries with it. "
    "Set export.onnx: false, or train with model.asymmetric: false"
)
"""Why a Router model is not exported (the preflight and the export stage say it)."""


class ParityConfig(StrictModel):
    """How close an exported graph must stay to the PyTorch model to pass the gate."""

    min_cosine: float = Field(default=0.99, gt=0.0, le=1.0)
    """Lowest allowed cosine between the PyTorch and the exported embedding of any one
    sampled evaluation text (the worst text counts, not the mean)."""
    max_metric_drop: float = Field(default=0.01, ge=0.0)
    """Largest allowed drop of the gate metric, recomputed with the exported graph, below
    the PyTorch model's value."""


class ExportConfig(StrictModel):
    """`export:` of a run. Off by default; `onnx: true` adds the export stage after
    evaluation, whose parity check becomes part of the gate."""

    onnx: bool = False
    quantize: Literal["int8"] | None = None
    """`int8`: also write a dynamically int8-quantized graph (weights int8, per channel)."""
    parity: ParityConfig = Field(default_factory=ParityConfig)
    """Tolerances for the fp32 ONNX graph: it should match PyTorch to float precision."""
    quantized_parity: ParityConfig = Field(
        default_factory=lambda: ParityConfig(min_cosine=0.95, max_metric_drop=0.02)
    )
    """Tolerances for the quantized graph: int8 weights move embeddings measurably."""
    sample_texts: int = Field(default=256, ge=1)
    """How many held-out texts the per-text cosine compares (the first ones, deduplicated)."""
    speed_batch_size: int = Field(default=32, ge=1)
    """Batch size of the CPU embedding-speed measurement shown in the card."""
    opset: int = Field(default=18, ge=14)
    """ONNX opset of the exported graph (torch's exporter supports 18 and newer best)."""

    @model_validator(mode="after")
    def _quantize_needs_onnx(self) -> ExportConfig:
        if self.quantize is not None and not self.onnx:
            raise ValueError(
                f"export.quantize {self.quantize!r} quantizes the ONNX export: set "
                "export.onnx: true, or remove export.quantize"
            )
        return self
