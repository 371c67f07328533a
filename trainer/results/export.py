"""What the export stage produced: each exported ONNX graph with its size, CPU speed and
parity against the PyTorch model. The gate reads `failures()`; the card reads `lines()`."""

from __future__ import annotations

from pydantic import Field

from trainer.results.base import Result
from trainer.results.evaluation import format_metric


def format_size(size_bytes: int) -> str:
    """Sizes as the card shows them: MB with one decimal (10**6 bytes)."""
    return f"{size_bytes / 1e6:.1f} MB"


class ExportedGraph(Result):
    """One exported graph (fp32 ONNX or a quantized one) and how it compares with PyTorch."""

    variant: str
    """`onnx` (fp32) or the quantization (`int8`)."""
    file: str
    """Path inside the model folder, e.g. `onnx/sentence_embedding.onnx`."""
    size_bytes: int
    texts_per_second: float
    """CPU embedding speed (tokenization included) at the report's batch size."""
    texts: int
    """How many held-out texts the cosine compares."""
    min_cosine: float
    mean_cosine: float
    min_cosine_allowed: float
    metric: str | None = None
    """The gate metric, recomputed with this graph on the run's evaluators."""
    metric_value: float | None = None
    reference_value: float | None = None
    """The same metric of the PyTorch model (the evaluate stage's fine-tuned value)."""
    max_metric_drop: float | None = None
    reasons: list[str] = Field(default_factory=list)
    """Why this graph fails parity (empty when it passes)."""

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def metric_drop(self) -> float | None:
        if self.metric_value is None or self.reference_value is None:
            return None
        return self.reference_value - self.metric_value

    def summary(self) -> str:
        """One line: file, size, speed, cosine and metric against PyTorch, verdict."""
        metric = (
            f"; {self.metric} {format_metric(self.metric_value)} "
            f"(PyTorch {format_metric(self.reference_value)})"
            if self.metric is not None
            else ""
        )
        verdict = "passed" if self.passed else "FAILED: " + "; ".join(self.reasons)
        return (
            f"{self.variant} {self.file} ({format_size(self.size_bytes)}, "
            f"{self.texts_per_second:.0f} texts/s): cosine to PyTorch min "
            f"{self.min_cosine:.4f}, mean {self.mean_cosine:.4f} over {self.texts} texts"
            f"{metric}; parity {verdict}"
        )


class ExportReport(Result):
    """The export stage's result: the graphs it wrote and the PyTorch model they match."""

    graphs: list[ExportedGraph] = Field(default_factory=list)
    torch_size_bytes: int | None = None
    """Size of the PyTorch weights (the model folder's safetensors files)."""
    torch_texts_per_second: float | None = None
    batch_size: int
    cpu_threads: int
    """Threads PyTorch and onnxruntime used for the speed measurement."""
    folder: str | None = None
    """Where the exported folder (graphs + tokenizer) was written on the exporting machine."""

    @property
    def passed(self) -> bool:
        return all(graph.passed for graph in self.graphs)

    def failures(self) -> list[str]:
        """Gate reasons, one per failing graph, naming the export and its numbers."""
        return [
            f"export parity of {graph.variant} ({graph.file}) failed: {'; '.join(graph.reasons)}"
            for graph in self.graphs
            if not graph.passed
        ]

    def lines(self) -> list[str]:
        """One line per graph, after one for the PyTorch model."""
        parts = []
        if self.torch_size_bytes is not None:
            parts.append(format_size(self.torch_size_bytes))
        if self.torch_texts_per_second is not None:
            parts.append(f"{self.torch_texts_per_second:.0f} texts/s")
        head = "PyTorch" + (f" ({', '.join(parts)})" if parts else "")
        return [
            f"{head}; CPU, batch {self.batch_size}, {self.cpu_threads} threads",
            *(graph.summary() for graph in self.graphs),
        ]
