"""Export a fine-tuned SentenceTransformer to ONNX with its pooling and normalization in
the graph, quantize it to int8, and check both against the PyTorch model before release.

Why our own export: sentence-transformers' ONNX backend (`backend="onnx"`,
`export_dynamic_quantized_onnx_model`) goes through optimum-onnx, which needs
transformers<4.58; this project runs transformers 5. Its graphs also end at the
transformer's token embeddings (pooling runs in PyTorch), while a graph meant to be run
with onnxruntime alone should produce the sentence embedding itself. So the whole module
chain (transformer -> the model's own Pooling -> Dense/Normalize when present) is exported
with torch's exporter (the dynamo one, dynamic batch and sequence axes), and quantized with
onnxruntime's dynamic quantization (int8 weights, per output channel: per-tensor scales cost
several points of cosine on MiniLM).

Layout in the model folder (`onnx/`, self-contained: graphs, tokenizer, `export.json`):
  onnx/sentence_embedding.onnx        inputs input_ids, attention_mask(, token_type_ids)
  onnx/sentence_embedding_qint8.onnx  -> output `sentence_embedding` (batch, dim)
The names differ from `onnx/model.onnx` on purpose: `SentenceTransformer(path,
backend="onnx")` loads that name as a token-embedding graph and would fail on ours.

Parity is checked the way a user of the export would see a difference: the per-text cosine
between PyTorch and ONNX embeddings of held-out texts (tokenized with the tokenizer saved
in `onnx/`), and the gate metric recomputed with the graph on the run's own evaluators.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainer.config import ROUTER_EXPORT_REFUSED, ExportConfig, ParityConfig, RunConfig
from trainer.evaluation import run_evaluators
from trainer.results import Evaluation, ExportedGraph, ExportReport

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime
    import torch
    from datasets import DatasetDict
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.evaluation import BaseEvaluator

logger = logging.getLogger(__name__)

ONNX_FOLDER = "onnx"
ONNX_FILE = "sentence_embedding.onnx"
QUANTIZED_FILES = {"int8": "sentence_embedding_qint8.onnx"}
EXPORT_INFO = "export.json"
OUTPUT_NAME = "sentence_embedding"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
"""Tokenizer outputs a graph may take, in this order (BERT-style tokenizers give all three)."""
SPEED_TEXTS = 256
"""The speed measurement embeds at least this many texts (the sample, repeated)."""


def graph_inputs(model: SentenceTransformer) -> list[str]:
    """The tokenizer outputs the model's forward uses, in `INPUT_NAMES` order."""
    features = model.preprocess(["an example", "another, longer example text"])
    names = [name for name in INPUT_NAMES if name in features]
    if "input_ids" not in names or "attention_mask" not in names:
        raise ValueError(
            f"ONNX export needs a text model whose tokenizer gives input_ids and "
            f"attention_mask; this one gives {', '.join(sorted(features))}"
        )
    return names


def _embedding_module(model: SentenceTransformer, names: Sequence[str]) -> torch.nn.Module:
    """The model's full module chain as a module of plain tensors -> sentence embedding."""
    import torch

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            given = (input_ids, attention_mask, token_type_ids)
            features = {name: given[INPUT_NAMES.index(name)] for name in names}
            return self.model(features)[OUTPUT_NAME]

    return SentenceEmbedding().eval()


def export_onnx(model: SentenceTransformer, path: Path, *, opset: int = 18) -> list[str]:
    """Write `model` (every module, pooling and normalization included) as one ONNX file
    with dynamic batch and sequence axes; returns the graph's input names."""
    import torch

    names = graph_inputs(model)
    # Two texts of different lengths: torch.export specializes dimensions of size 1.
    example = model.preprocess(["an example", "another, longer example text to export"])
    args = tuple(example[name].to(model.device) for name in names)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            _embedding_module(model, names),
            args,
            str(path),
            input_names=list(names),
            output_names=[OUTPUT_NAME],
            dynamic_shapes=tuple({0: batch, 1: sequence} for _ in names),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return names


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of `source` (weights int8 per output channel; activations
    quantized at run time), the recipe sentence-transformers' int8 exports use."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs a line per skipped node on the root logger at INFO ("Ignore
    # MatMul ...", "Quantization parameters ... not specified"): hundreds of lines in the
    # step log that say nothing to a user. Its warnings still get through.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)


class OnnxEncoder:
    """An exported graph run with onnxruntime and the tokenizer saved beside it: what a
    user of the `onnx/` folder runs, without PyTorch or sentence-transformers."""

    def __init__(self, graph: Path, *, threads: int | None = None) -> None:
        import onnxruntime
        from transformers import AutoTokenizer

        folder = graph.parent
        info = json.loads((folder / EXPORT_INFO).read_text(encoding="utf-8"))
        self.max_length: int | None = info.get("max_seq_length")
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session: onnxruntime.InferenceSession = onnxruntime.InferenceSession(
            str(graph), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [item.name for item in self.session.get_inputs()]

    def run(self, features: dict[str, Any]) -> np.ndarray:
        """The graph's sentence embeddings for tokenized `features` (numpy or torch)."""
        feed = {name: _numpy(features[name]) for name in self.input_names}
        return self.session.run([OUTPUT_NAME], feed)[0]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        import numpy as np

        parts = []
        for start in range(0, len(texts), batch_size):
            features = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            parts.append(self.run(features))
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def _numpy(value: Any) -> np.ndarray:
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.int64)


def onnx_sentence_transformer(
    model: SentenceTransformer, encoder: OnnxEncoder
) -> SentenceTransformer:
    """A SentenceTransformer whose forward is the ONNX graph: the model's own input module
    prepares the texts (prompts, truncation), so every evaluator scores the graph exactly
    as it scored the PyTorch model."""
    import torch
    from sentence_transformers import SentenceTransformer

    input_module: Any = model[0]

    class OnnxGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.modalities = list(getattr(input_module, "modalities", ["text"]))
            self.max_seq_length = getattr(input_module, "max_seq_length", None)

        def preprocess(self, inputs: Any, prompt: str | None = None, **kwargs: Any) -> Any:
            return input_module.preprocess(inputs, prompt=prompt, **kwargs)

        def forward(self, features: dict[str, Any], **_: Any) -> dict[str, Any]:
            features[OUTPUT_NAME] = torch.from_numpy(encoder.run(features))
            return features

    return SentenceTransformer(
        modules=[OnnxGraph()],
        device="cpu",
        prompts={name: text for name, text in model.prompts.items() if text is not None},
        default_prompt_name=model.default_prompt_name,
        similarity_fn_name=model.similarity_fn_name,
        truncate_dim=model.truncate_dim,
    )


def held_out_texts(eval_datasets: DatasetDict, limit: int) -> list[str]:
    """Up to `limit` distinct held-out texts: every text column of every held-out split,
    in row order (deterministic, so reruns compare the same texts)."""
    texts: dict[str, None] = {}
    for split in eval_datasets.values():
        columns = [
            name
            for name, feature in split.features.items()
            if getattr(feature, "dtype", None) in ("string", "large_string")
        ]
        for row in split.select_columns(columns):
            for value in row.values():
                if isinstance(value, str) and value.strip():
                    texts.setdefault(value)
                if len(texts) >= limit:
                    return list(texts)
    return list(texts)


def texts_per_second(
    encode: Callable[[Sequence[str], int], Any], texts: Sequence[str], batch_size: int
) -> float:
    """Embedding speed over `texts` (repeated to at least `SPEED_TEXTS`, after one
    warm-up batch), tokenization included."""
    repeat = max(1, math.ceil(SPEED_TEXTS / max(len(texts), 1)))
    timed = (list(texts) * repeat)[: max(len(texts), SPEED_TEXTS)]
    encode(timed[:batch_size], batch_size)
    start = time.perf_counter()
    encode(timed, batch_size)
    return len(timed) / max(time.perf_counter() - start, 1e-9)


def cosines(reference: np.ndarray, exported: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity (a zero vector scores 0, not NaN)."""
    import numpy as np

    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(exported, axis=1)
    dots = (reference * exported).sum(axis=1)
    return np.where(norms > 0, dots / np.maximum(norms, 1e-12), 0.0)


def parity_reasons(
    graph_cosines: np.ndarray,
    parity: ParityConfig,
    metric: str | None,
    value: float | None,
    reference: float | None,
) -> list[str]:
    """Why a graph fails the parity tolerances (empty: it passes)."""
    reasons = []
    worst = float(graph_cosines.min()) if graph_cosines.size else math.nan
    if not worst >= parity.min_cosine:
        reasons.append(
            f"min cosine to PyTorch {worst:.4f} < min_cosine {parity.min_cosine} "
            f"(mean {float(graph_cosines.mean()):.4f} over {graph_cosines.size} texts)"
        )
    if metric is not None and reference is not None:
        if value is None or math.isnan(value):
            reasons.append(f"{metric} could not be recomputed with the exported graph")
        elif reference - value > parity.max_metric_drop:
            reasons.append(
                f"{metric} {value:.4f} vs PyTorch {reference:.4f} (drop "
                f"{reference - value:.4f} > max_metric_drop {parity.max_metric_drop})"
            )
    return reasons


def gate_metric(config: RunConfig, evaluation: Evaluation) -> str | None:
    """The metric the gate decides on, as `decide` picks it."""
    return config.gate.metric or evaluation.primary_metric


def check_graph(
    *,
    variant: str,
    graph: Path,
    model_folder_name: str,
    model: SentenceTransformer,
    reference: np.ndarray,
    texts: Sequence[str],
    parity: ParityConfig,
    export: ExportConfig,
    evaluators: list[BaseEvaluator],
    metric: str | None,
    reference_value: float | None,
    threads: int,
) -> ExportedGraph:
    """Size, CPU speed and parity of one exported graph."""
    encoder = OnnxEncoder(graph, threads=threads)
    graph_cosines = cosines(reference, encoder.encode(texts, export.speed_batch_size))
    value = None
    if metric is not None and evaluators:
        scores = run_evaluators(
            onnx_sentence_transformer(model, encoder),
            evaluators,
            label=f"the exported {variant} graph",
        )
        value = scores.get(metric)
    speed = texts_per_second(encoder.encode, texts, export.speed_batch_size)
    return ExportedGraph(
        variant=variant,
        file=f"{model_folder_name}/{graph.name}",
        size_bytes=graph.stat().st_size,
        texts_per_second=speed,
        texts=int(graph_cosines.size),
        min_cosine=float(graph_cosines.min()),
        mean_cosine=float(graph_cosines.mean()),
        min_cosine_allowed=parity.min_cosine,
        metric=metric,
        metric_value=value,
        reference_value=reference_value,
        max_metric_drop=parity.max_metric_drop if metric is not None else None,
        reasons=parity_reasons(graph_cosines, parity, metric, value, reference_value),
    )


def write_export_folder(
    model: SentenceTransformer, folder: Path, export: ExportConfig
) -> dict[str, Path]:
    """Export `model` into `folder` (graphs, tokenizer, `export.json`); returns the graph
    path of each variant (`onnx`, and the quantization when configured). A Router model
    is refused: its default route alone would be traced, and would pass a parity check
    that encodes without a task (the default route again)."""
    from sentence_transformers.base.modules import Router

    if any(isinstance(module, Router) for module in model.modules()):
        raise ValueError(ROUTER_EXPORT_REFUSED)
    folder.mkdir(parents=True, exist_ok=True)
    graphs = {"onnx": folder / ONNX_FILE}
    started = time.perf_counter()
    names = export_onnx(model, graphs["onnx"], opset=export.opset)
    logger.info("exported %s in %.1f s", graphs["onnx"], time.perf_counter() - started)
    if export.quantize is not None:
        graphs[export.quantize] = folder / QUANTIZED_FILES[export.quantize]
        quantize_int8(graphs["onnx"], graphs[export.quantize])
        logger.info("quantized to %s", graphs[export.quantize])
    model.tokenizer.save_pretrained(str(folder))
    info = {
        "inputs": names,
        "output": OUTPUT_NAME,
        "max_seq_length": model.max_seq_length,
        "modules": [type(module).__name__ for module in model],
        "similarity_fn_name": model.similarity_fn_name,
        "files": {variant: path.name for variant, path in graphs.items()},
        "opset": export.opset,
    }
    (folder / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return graphs


def torch_weights_bytes(model: SentenceTransformer) -> int:
    """Bytes of the PyTorch weights (every parameter and buffer once, as saved)."""
    tensors = {id(tensor): tensor for tensor in model.state_dict().values()}
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors.values())


def check_export(
    config: RunConfig,
    model: SentenceTransformer,
    graphs: dict[str, Path],
    *,
    texts: Sequence[str],
    evaluators: list[BaseEvaluator],
    evaluation: Evaluation,
) -> ExportReport:
    """Compare every exported graph with the PyTorch `model` (on CPU): per-text cosine on
    `texts`, the gate metric on `evaluators` against `evaluation`'s fine-tuned value, size
    and embedding speed. Nothing is decided here; the gate reads the report."""
    import torch

    if not texts:
        raise ValueError(
            "the export parity check needs held-out texts: give a dataset eval_size or eval_source"
        )
    export = config.export
    threads = torch.get_num_threads()
    model = model.to("cpu").eval()
    reference = model.encode(
        list(texts),
        batch_size=export.speed_batch_size,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    metric = gate_metric(config, evaluation)
    reference_value = evaluation.finetuned.get(metric) if metric is not None else None
    checked = [
        check_graph(
            variant=variant,
            graph=path,
            model_folder_name=ONNX_FOLDER,
            model=model,
            reference=reference,
            texts=texts,
            parity=export.parity if variant == "onnx" else export.quantized_parity,
            export=export,
            evaluators=evaluators,
            metric=metric if reference_value is not None else None,
            reference_value=reference_value,
            threads=threads,
        )
        for variant, path in graphs.items()
    ]

    def torch_encode(batch: Sequence[str], batch_size: int) -> Any:
        return model.encode(
            list(batch), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        )

    report = ExportReport(
        graphs=checked,
        torch_size_bytes=torch_weights_bytes(model),
        torch_texts_per_second=texts_per_second(torch_encode, texts, export.speed_batch_size),
        batch_size=export.speed_batch_size,
        cpu_threads=threads,
        folder=str(next(iter(graphs.values())).parent) if graphs else None,
    )
    for line in report.lines():
        logger.info("export: %s", line)
    return report
