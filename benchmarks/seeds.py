"""How much of a config's result is the seed? Train one config with several seeds, score each.

A single run's NDCG@10 moves with the seed (batch order of the `no_duplicates` sampler,
dropout), so a comparison of two recipes means something only beyond that spread. This
script trains a ZenML run config's recipe (`parameters.config` of e.g.
`configs/quickstart.yaml`) in this process through the project's own path
(`load_datasets` -> optional `mine_hard_negatives_for_run` -> `trainer.training.train` ->
the config's evaluators), once per `--seeds` value (the run config's top-level `seed`, which
sets the training arguments' seed and the mining seed), without the pipeline around it,
and reports every seed's metrics and their mean, sample standard deviation, min and max.

* `--evaluate-with CONFIG`: score every model with that config's evaluators too (e.g. the
  quickstart's evaluator for a stronger recipe, or the stronger recipe's for the quickstart).
* `--drop-hard-negatives`: train the config without its `hard_negatives` (the plain recipe).
* `--save-models DIR`: keep each model in `DIR/<name>-seed<N>/model`, with `metrics.json`
  next to it (seed, training digest, times, metrics).
* `--models-from TEMPLATE`: do not train; score the models an earlier `--save-models` kept
  (e.g. `outputs/seeds/quickstart-seed{seed}`),
  after checking that they were trained exactly as this config would train them (the
  training digest of `trainer.training.series`: model, datasets, losses, training
  arguments, seed, data contents; evaluators are not part of it).
* `--base-from JSON`: take the base model's scores from an earlier result of this script
  whose evaluator sets (by config path) include these, instead of scoring the base again.

Run from the repository root::

    .venv/bin/python benchmarks/seeds.py configs/quickstart.yaml --seeds 1 2 3 \\
        [--save-models DIR] [--output benchmarks/results/seeds_quickstart_cpu.json]
    .venv/bin/python benchmarks/seeds.py --table benchmarks/results/seeds_quickstart_cpu.json
    .venv/bin/python benchmarks/seeds.py --compare benchmarks/results/seeds_stronger_recipe_cpu.json \\
        benchmarks/results/seeds_stronger_recipe_plain_cpu.json

Results are written after every seed (only with `--output`), and an existing output file
is resumed: seeds it already holds are kept and skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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

KEPT_METRICS = ("cosine_ndcg@10", "cosine_mrr@10", "cosine_recall@10")
"""The retrieval metrics kept per evaluator (every evaluator's full output is long)."""


def spread(values: list[float]) -> dict[str, float | int]:
    """Mean, sample standard deviation (0 for one value), min and max of `values`."""
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 4),
        "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def format_spread(summary: dict[str, Any]) -> str:
    """`0.6208 ± 0.0031 (0.6170-0.6241, n=5)`."""
    return (
        f"{summary['mean']:.4f} ± {summary['std']:.4f} "
        f"({summary['min']:.4f}-{summary['max']:.4f}, n={summary['n']})"
    )


def measured_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs that measured something (a results file may hold failed ones)."""
    return [run for run in runs if "error" not in run]


def compare(a: list[float], b: list[float]) -> dict[str, float | bool]:
    """Does recipe A score differently from recipe B beyond the seeds' spread?

    Two views, both over seeds (one value per trained model), neither assuming more than a
    few seeds: Welch's t-test (means, unequal spreads) and the exact Mann-Whitney test
    (ranks only; with 3 seeds each its smallest two-sided p is 0.1, reached when every seed
    of one recipe is above every seed of the other, `separated`). The READMEs report both
    tests and say "on every seed" only when `separated`.
    """
    from scipy.stats import mannwhitneyu, ttest_ind

    welch = ttest_ind(a, b, equal_var=False)
    ranks = mannwhitneyu(a, b, alternative="two-sided", method="exact")
    return {
        "difference": round(statistics.fmean(a) - statistics.fmean(b), 4),
        "welch_t": round(float(welch.statistic), 2),
        "welch_df": round(float(welch.df), 1),
        "welch_p": round(float(welch.pvalue), 3),
        "mann_whitney_p": round(float(ranks.pvalue), 3),
        "separated": min(a) > max(b) or min(b) > max(a),
    }


def format_comparison(result: dict[str, float | bool]) -> str:
    """`+0.0069 (Welch t 3.92, df 3.6, p 0.021; Mann-Whitney p 0.100; separated)`."""
    return (
        f"{result['difference']:+.4f} (Welch t {result['welch_t']:.2f}, df {result['welch_df']}, "
        f"p {result['welch_p']:.3f}; Mann-Whitney p {result['mann_whitney_p']:.3f}; "
        + ("separated)" if result["separated"] else "ranges overlap)")
    )


def compare_reports(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Markdown: report A against report B on every NDCG@10 both scored (by config path)."""
    lines = [
        f"| evaluator | {a['recipe']} | {b['recipe']} | difference (A - B) |",
        "|---|---|---|---|",
    ]
    runs_a, runs_b = measured_runs(a["runs"]), measured_runs(b["runs"])
    for label, metrics in a["base"].items():
        for metric in metrics:
            if not metric.endswith("ndcg@10") or metric not in b["base"].get(label, {}):
                continue
            values_a = [run["scores"][label][metric] for run in runs_a]
            values_b = [run["scores"][label][metric] for run in runs_b]
            lines.append(
                f"| {metric} ({label}) | {format_spread(spread(values_a))} | "
                f"{format_spread(spread(values_b))} | "
                f"{format_comparison(compare(values_a, values_b))} |"
            )
    return "\n".join(lines)


def run_config(path: Path, *, seed: int, drop_hard_negatives: bool = False) -> Any:
    """The config's RunConfig with `seed`, writing nothing (`output.dir: null`)."""
    from trainer.config.files import load_run_config

    config = load_run_config(path)
    datasets = config.datasets
    if drop_hard_negatives:
        datasets = {
            name: dataset.model_copy(update={"hard_negatives": None})
            for name, dataset in datasets.items()
        }
    output = config.output.model_copy(update={"dir": None})
    return config.model_copy(update={"seed": seed, "datasets": datasets, "output": output})


def _kept(metrics: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in metrics.items() if key.endswith(KEPT_METRICS)}


class Scorer:
    """The evaluators of one config (built once: corpora and distractors load once)."""

    def __init__(self, path: Path) -> None:
        from trainer.data import load_datasets
        from trainer.evaluation import build_evaluators

        config = run_config(path, seed=42)
        _, held_out = load_datasets(config)
        self.label = str(path)
        self.evaluators = build_evaluators(config, held_out)

    def __call__(self, model: Any) -> tuple[dict[str, float], float]:
        from trainer.evaluation import run_evaluators

        started = time.perf_counter()
        metrics = _kept(run_evaluators(model, self.evaluators))
        return metrics, round(time.perf_counter() - started, 1)


def _training_digest(config: Any) -> tuple[str, Any]:
    from trainer.data import load_datasets
    from trainer.training.series import series_digest

    train_sets, _ = load_datasets(config)
    return series_digest(config, train_sets), train_sets


def train_one(config: Any, save_to: Path | None) -> tuple[Any, dict[str, Any]]:
    """Train `config` once; the model and what the run did."""
    from trainer.data import mine_hard_negatives_for_run
    from trainer.training import train

    digest, train_sets = _training_digest(config)
    mining: dict[str, Any] | None = None
    if any(dataset.hard_negatives for dataset in config.datasets.values()):
        train_sets, reports = mine_hard_negatives_for_run(config, train_sets)
        mining = {name: report.model_dump() for name, report in reports.datasets.items()}
        for report in reports.datasets.values():
            print(f"  {report.summary_line()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="seeds-bench-") as output_dir:
        result = train(config, train_sets, output_dir=output_dir)
    summary = result.summary
    run = {
        "seed": config.seed,
        "training_digest": digest,
        "train_rows": summary.train_rows,
        "steps": summary.global_step,
        "train_loss": summary.train_loss,
        "train_seconds": summary.train_seconds,
        "mining": mining,
    }
    if save_to is not None:
        save_to.mkdir(parents=True, exist_ok=True)
        result.model.save(str(save_to / "model"))
        run["model"] = str(save_to / "model")
    return result.model, run


def load_kept(config: Any, folder: Path) -> tuple[Any, dict[str, Any]]:
    """A model kept by `--save-models`, refused unless this config trains it identically."""
    from sentence_transformers import SentenceTransformer

    kept = json.loads((folder / "metrics.json").read_text())
    digest, _ = _training_digest(config)
    if kept["training_digest"] != digest:
        raise SystemExit(
            f"{folder}: trained with digest {kept['training_digest']}, but this config "
            f"(seed {config.seed}) trains digest {digest}: not the same training"
        )
    model = SentenceTransformer(str(folder / "model"))
    run = {key: kept[key] for key in ("seed", "training_digest", "train_rows", "steps")}
    return model, run | {
        "train_loss": kept.get("train_loss"),
        "train_seconds": kept.get("train_seconds"),
        "mining": kept.get("mining"),
        "model": str(folder / "model"),
        "reused": True,
    }


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """Per evaluator set and metric: the seeds' spread of the fine-tuned scores and gains."""
    runs = measured_runs(report["runs"])
    summary: dict[str, Any] = {}
    for label, base in report["base"].items():
        summary[label] = {}
        for metric, base_value in base.items():
            values = [run["scores"][label][metric] for run in runs]
            if values:
                summary[label][metric] = {
                    "finetuned": spread(values),
                    "gain": spread([value - base_value for value in values]),
                }
    times = [run["train_seconds"] for run in runs if run.get("train_seconds") is not None]
    if times:
        summary["train_seconds"] = spread(times)
    return summary


def markdown_table(report: dict[str, Any]) -> str:
    """One row per evaluator set and NDCG@10 metric: base, per-seed scores and spread."""
    lines = [
        "| evaluator | base | fine-tuned, per seed | mean ± std (min-max, n) | gain mean |",
        "|---|---:|---|---|---:|",
    ]
    runs = measured_runs(report["runs"])
    for label, base in report["base"].items():
        for metric, base_value in base.items():
            if not metric.endswith("ndcg@10"):
                continue
            per_seed = ", ".join(
                f"{run['seed']}: {run['scores'][label][metric]:.4f}" for run in runs
            )
            entry = report["summary"][label][metric]
            lines.append(
                f"| {metric} ({label}) | {base_value:.4f} | {per_seed} | "
                f"{format_spread(entry['finetuned'])} | {entry['gain']['mean']:+.4f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, nargs="?", help="a ZenML run config (YAML)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--drop-hard-negatives", action="store_true")
    parser.add_argument("--evaluate-with", type=Path, action="append", default=[])
    parser.add_argument("--name", help="name of the recipe (default: the config's stem)")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--save-models", type=Path, help="keep each model under this folder")
    models.add_argument(
        "--models-from",
        help="score the models kept in this folder ({seed} in it is the seed), no training",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="results JSON; without it nothing is written"
    )
    parser.add_argument("--base-from", type=Path, help="base scores from this earlier result")
    parser.add_argument("--table", type=Path, help="print this results JSON as markdown")
    parser.add_argument(
        "--compare",
        type=Path,
        nargs=2,
        metavar=("A", "B"),
        help="print results JSON A against B (seeds' spreads, Welch and Mann-Whitney tests)",
    )
    args = parser.parse_args()
    if args.table is not None:
        print(markdown_table(json.loads(args.table.read_text())))
        return
    if args.compare is not None:
        print(compare_reports(*(json.loads(path.read_text()) for path in args.compare)))
        return
    if args.config is None:
        parser.error("a config is needed (or --table, --compare)")
    os.chdir(REPO_ROOT)  # configs name their data relative to the repository root
    name = args.name or args.config.stem + ("-plain" if args.drop_hard_negatives else "")
    report: dict[str, Any] = {
        "question": f"seed-to-seed spread of {args.config} after its training",
        "recipe": name,
        "config": str(args.config),
        "drop_hard_negatives": args.drop_hard_negatives,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "shared machine (several engineers' jobs): times are upper bounds",
        },
        "versions": {
            package: metadata.version(package)
            for package in ("sentence-transformers", "transformers", "torch", "datasets")
        },
        "command": " ".join(["benchmarks/seeds.py", *sys.argv[1:]]),
        "base": {},
        "runs": [],
    }
    if args.output is not None and args.output.is_file():
        previous = json.loads(args.output.read_text())
        report["runs"] = measured_runs(previous.get("runs", []))
        report["base"] = previous.get("base", {})
        report["base_eval_seconds"] = previous.get("base_eval_seconds", {})
        report["started"] = previous.get("started", report["started"])
    scorers = [Scorer(path) for path in [args.config, *args.evaluate_with]]
    if not report["base"] and args.base_from is not None:
        earlier = json.loads(args.base_from.read_text())
        missing = [s.label for s in scorers if s.label not in earlier["base"]]
        if missing:
            raise SystemExit(f"{args.base_from} has no base scores for {missing}")
        report["base"] = {s.label: earlier["base"][s.label] for s in scorers}
        report["base_from"] = str(args.base_from)
    if not report["base"]:
        from trainer.models import load_model

        base_model = load_model(run_config(args.config, seed=42).model)
        report["base_eval_seconds"] = {}
        for scorer in scorers:
            report["base"][scorer.label], seconds = scorer(base_model)
            report["base_eval_seconds"][scorer.label] = seconds
            print(f"base ({scorer.label}): {report['base'][scorer.label]} in {seconds} s")
        del base_model
    done = {run["seed"] for run in report["runs"]}

    def write() -> None:
        if args.output is not None:
            report["summary"] = summarize(report)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(report, indent=2) + "\n")

    for seed in args.seeds:
        if seed in done:
            print(f"== seed {seed}: measured before, kept", flush=True)
            continue
        print(f"== {name}, seed {seed}", flush=True)
        config = run_config(args.config, seed=seed, drop_hard_negatives=args.drop_hard_negatives)
        started = time.perf_counter()
        folder = None
        if args.save_models is not None:
            folder = args.save_models / f"{name}-seed{seed}"
        if args.models_from is not None:
            model, run = load_kept(config, Path(args.models_from.format(seed=seed)))
        else:
            model, run = train_one(config, folder)
        run["scores"], run["eval_seconds"] = {}, {}
        for scorer in scorers:
            run["scores"][scorer.label], run["eval_seconds"][scorer.label] = scorer(model)
        run["wall_seconds"] = round(time.perf_counter() - started, 1)
        report["runs"].append(run)
        if folder is not None:
            (folder / "metrics.json").write_text(
                json.dumps({**run, "base": report["base"], "config": str(args.config)}, indent=2)
                + "\n"
            )
        print(f"  seed {seed}: {run['scores']} (train {run['train_seconds']} s)", flush=True)
        write()
    report["summary"] = summarize(report)
    write()
    for label, metrics in report["summary"].items():
        if label == "train_seconds":
            continue
        for metric, entry in metrics.items():
            if metric.endswith("ndcg@10"):
                print(f"{metric} ({label}): {format_spread(entry['finetuned'])}")


if __name__ == "__main__":
    main()
