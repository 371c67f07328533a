"""A quickstart-sized hyperparameter search on the real all-MiniLM-L6-v2.

The quickstart config (configs/quickstart.yaml) plus a `search` block: learning rate
(log-uniform) and batch size, each trial trained on `--max-samples` rows of
data/stdlib_docs/train.jsonl and scored by NDCG@10 on all of data/stdlib_docs/eval.jsonl.
Prints one line per trial and the best parameters, and writes the `SearchResult` JSON.

Run from the repository root::

    .venv/bin/python benchmarks/search_quickstart.py [--trials 6] [--max-samples 256]
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
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--max-samples", type=int, default=256)
    parser.add_argument(
        "--output",
        "--out",
        dest="out",
        type=Path,
        default=None,
        help="write the search result JSON here; without it nothing is written",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    from trainer.config import RunConfig, load_run_config
    from trainer.data import load_datasets
    from trainer.training import apply_best, run_search
    from trainer.training.callbacks import TrainingProgressCallback

    os.chdir(REPO_ROOT)  # the config's data paths are relative to the repository
    quickstart = load_run_config(REPO_ROOT / "configs" / "quickstart.yaml")
    search = {
        "space": {
            "learning_rate": {"low": 1e-5, "high": 2e-4, "log": True},
            "per_device_train_batch_size": [16, 32, 64],
        },
        "n_trials": args.trials,
        "metric": "stdlib-docs-ir_cosine_ndcg@10",
        "max_samples": args.max_samples,
    }
    config = RunConfig.model_validate({**quickstart.model_dump(), "search": search})

    started = time.perf_counter()
    train, held_out = load_datasets(config)
    result = run_search(config, train, held_out, callbacks=[TrainingProgressCallback(30)])
    total = time.perf_counter() - started

    for trial in result.trials:
        print(
            f"trial {trial.number}: {trial.state} score={trial.score} {trial.seconds}s {trial.params}"
        )
    final = apply_best(config, result)
    print(
        f"best trial {result.best_trial}: {result.metric}={result.best_score:.4f} {result.best_params}"
    )
    print(f"final training arguments: {final.training}")
    print(
        f"search {result.seconds:.0f}s, whole script after imports {total:.0f}s on {platform.node()}"
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result.model_dump(), indent=2) + "\n")


if __name__ == "__main__":
    main()
