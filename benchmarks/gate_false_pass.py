"""How often does the gate pass a model that is no better? The false-pass rate on seeds.

Models trained identically except for the seed are equally good: any difference between
two of them is noise (training seed and the draw of evaluation queries). Each model is
scored once on the run config's evaluators, keeping per-query values; then, for every
ordered pair (A as the "base", B as the "candidate"), the project's own gate
(`trainer.release.decide`) is applied with `min_improvement: 0.0`, once on the point
estimate (`confidence: null`) and once per confidence level on the lower bound of the
paired bootstrap interval. The false-pass rate is the share of pairs that pass.

Run from the repository root::

    .venv/bin/python benchmarks/gate_false_pass.py --config configs/quickstart.yaml \\
        --models outputs/seeds/quickstart-seed*/model [--output PATH]

`--train SEEDS --train-rows N --models-dir DIR` first trains the run config on its first
N training rows once per seed (saved as DIR/gate-<seed>/model) and then measures those.
Without --output nothing is written.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "gate_false_pass_cpu.json"
CONFIDENCES = (0.90, 0.95)


def train_seeds(config: Any, seeds: list[int], rows: int | None, models_dir: Path) -> list[Path]:
    """Train `config` once per seed (on its first `rows` training rows) and save each model."""
    from trainer.data import load_datasets
    from trainer.training import train

    folders = []
    for seed in seeds:
        folder = models_dir / f"gate-{seed}" / "model"
        if (folder / "modules.json").is_file():
            print(f"  seed {seed}: trained before, kept ({folder})", flush=True)
            folders.append(folder)
            continue
        datasets = {
            name: dataset.model_copy(update={"max_samples": rows or dataset.max_samples})
            for name, dataset in config.datasets.items()
        }
        seeded = config.model_copy(
            update={"datasets": datasets, "training": {**config.training, "seed": seed}}
        )
        train_sets, _ = load_datasets(seeded)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="gate-false-pass-") as output_dir:
            result = train(seeded, train_sets, output_dir=output_dir)
        result.model.save(str(folder))
        print(
            f"  seed {seed}: {result.summary.global_step} steps in "
            f"{time.perf_counter() - started:.0f} s -> {folder}",
            flush=True,
        )
        folders.append(folder)
    return folders


def score_models(
    config: Any, folders: list[Path], metric: str, cache: Path | None = None
) -> dict[str, dict[str, Any]]:
    """Each model's gate metric and its per-query values, on the config's evaluators.
    With `cache`, models scored before are read from it and new ones added to it."""
    from trainer.data import load_datasets
    from trainer.evaluation import build_evaluators, run_evaluators
    from trainer.models import load_model

    known = json.loads(cache.read_text()) if cache is not None and cache.is_file() else {}
    wanted = [folder for folder in folders if str(folder) not in known]
    scores: dict[str, dict[str, Any]] = {str(f): known[str(f)] for f in folders if str(f) in known}
    if not wanted:
        return scores
    _, held_out = load_datasets(config)
    evaluators = build_evaluators(config, held_out)
    for folder in wanted:
        started = time.perf_counter()
        model = load_model(config.model.model_copy(update={"name_or_path": str(folder)}))
        per_query: dict[str, list[float]] = {}
        metrics = run_evaluators(model, evaluators, per_query=per_query, per_query_keys=[metric])
        if metric not in per_query:
            raise SystemExit(f"{metric} has no per-query values: not a retrieval metric")
        scores[str(folder)] = {"value": metrics[metric], "per_query": per_query[metric]}
        if cache is not None:
            known[str(folder)] = scores[str(folder)]
            cache.write_text(json.dumps(known))
        print(
            f"  {folder}: {metric} = {metrics[metric]:.4f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return scores


def false_pass(
    scores: dict[str, dict[str, Any]], metric: str, confidences: list[float | None]
) -> dict[str, Any]:
    """The project's gate on every ordered pair: pass counts, and each pair's verdicts."""
    from trainer.config import GateConfig
    from trainer.release import decide
    from trainer.results import Evaluation

    pairs = []
    for base, candidate in itertools.permutations(scores, 2):
        b, c = scores[base], scores[candidate]
        evaluation = Evaluation(
            primary_metric=metric,
            base={metric: b["value"]},
            finetuned={metric: c["value"]},
            improvement={metric: c["value"] - b["value"]},
            base_per_query={metric: b["per_query"]},
            finetuned_per_query={metric: c["per_query"]},
        )
        row: dict[str, Any] = {
            "base": base,
            "candidate": candidate,
            "improvement": c["value"] - b["value"],
        }
        for confidence in confidences:
            gate = GateConfig(
                metric=metric, min_improvement=0.0, confidence=confidence, min_steps=0
            )
            decision = decide(gate, evaluation)
            key = "point" if confidence is None else f"{confidence:.2f}"
            row[key] = {"passed": decision.passed}
            if decision.interval is not None:
                row[key] |= {"low": decision.interval.low, "high": decision.interval.high}
        pairs.append(row)
    rates = {}
    for confidence in confidences:
        key = "point" if confidence is None else f"{confidence:.2f}"
        passed = sum(row[key]["passed"] for row in pairs)
        rates[key] = {"passed": passed, "pairs": len(pairs), "rate": passed / len(pairs)}
    return {"rates": rates, "pairs": pairs}


def against_base(
    scores: dict[str, dict[str, Any]], base: dict[str, Any], metric: str
) -> dict[str, str]:
    """What the default gate says of each model against the base model (what the run's
    log line would show)."""
    from trainer.config import GateConfig
    from trainer.release import decide
    from trainer.results import Evaluation

    said = {}
    for name, tuned in scores.items():
        evaluation = Evaluation(
            primary_metric=metric,
            base={metric: base["value"]},
            finetuned={metric: tuned["value"]},
            improvement={metric: tuned["value"] - base["value"]},
            base_per_query={metric: base["per_query"]},
            finetuned_per_query={metric: tuned["per_query"]},
        )
        said[name] = decide(GateConfig(metric=metric, min_steps=0), evaluation).log_line()
    return said


def markdown_table(report: dict[str, Any]) -> str:
    """The README table: false-pass rate per gate setting."""
    values = [model["value"] for model in report["models"].values()]
    lines = [
        f"{len(values)} models ({report['metric']} {min(values):.4f} .. {max(values):.4f}), "
        f"{report['rates']['point']['pairs']} ordered pairs, {report['queries']} queries, "
        "`min_improvement: 0.0`:",
        "",
        "| gate | passes | false-pass rate |",
        "|---|---|---|",
    ]
    for key, rate in report["rates"].items():
        label = "point estimate (`confidence: null`)" if key == "point" else f"`confidence: {key}`"
        lines.append(f"| {label} | {rate['passed']}/{rate['pairs']} | {rate['rate']:.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--models", type=Path, nargs="*", default=[], help="saved model folders")
    parser.add_argument("--train", type=int, nargs="*", default=[], help="seeds to train first")
    parser.add_argument("--train-rows", type=int, default=None, help="training rows per seed")
    parser.add_argument(
        "--models-dir", type=Path, default=REPO_ROOT / "outputs" / "gate-false-pass"
    )
    parser.add_argument(
        "--confidence", type=float, nargs="*", default=list(CONFIDENCES), help="levels to test"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"results JSON, e.g. {DEFAULT_OUTPUT.relative_to(REPO_ROOT)}; without it "
        "nothing is written",
    )
    parser.add_argument(
        "--scores", type=Path, default=None, help="per-query score cache (JSON), kept across runs"
    )
    parser.add_argument(
        "--base-model", default=None, help="train from this model instead of the config's"
    )
    parser.add_argument("--epochs", type=float, default=None, help="override num_train_epochs")
    parser.add_argument("--learning-rate", type=float, default=None, help="override learning_rate")
    parser.add_argument(
        "--base", type=Path, default=None, help="also gate every model against this base model"
    )
    parser.add_argument("--table", action="store_true", help="print --output as markdown")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(json.loads((args.output or DEFAULT_OUTPUT).read_text())))
        return

    from trainer.config import load_run_config

    config = load_run_config(args.config)
    if args.base_model:
        config = config.model_copy(
            update={"model": config.model.model_copy(update={"name_or_path": args.base_model})}
        )
    overrides = {"num_train_epochs": args.epochs, "learning_rate": args.learning_rate}
    overrides = {key: value for key, value in overrides.items() if value is not None}
    if overrides:
        config = config.model_copy(update={"training": {**config.training, **overrides}})
    metric = config.gate.metric
    if metric is None:
        raise SystemExit(f"{args.config}: set gate.metric (the metric the gate decides on)")
    folders = list(args.models)
    for seed in args.train:
        # One seed at a time, each scored as soon as it is trained (kept in --scores), so
        # an interrupted run keeps every model it finished.
        print(f"== training seed {seed} ({args.train_rows or 'all'} rows)", flush=True)
        trained = train_seeds(config, [seed], args.train_rows, args.models_dir)
        score_models(config, trained, metric, args.scores)
        folders += trained
    if len(folders) < 2:
        raise SystemExit("need at least two models (--models, or --train with two seeds)")
    print(f"== scoring {len(folders)} models on {metric}", flush=True)
    scores = score_models(config, folders, metric, args.scores)
    confidences: list[float | None] = [None, *args.confidence]
    result = false_pass(scores, metric, confidences)
    report = {
        "question": "share of ordered pairs of seed-only-different models the gate passes",
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "config": str(args.config),
        "base_model": config.model.name_or_path,
        "trained": {"seeds": args.train, "rows": args.train_rows, **overrides}
        if args.train
        else None,
        "metric": metric,
        "queries": len(next(iter(scores.values()))["per_query"]),
        "gate": {"min_improvement": 0.0, "resamples": config.gate.resamples, "seed": 0},
        "models": {name: {"value": s["value"]} for name, s in scores.items()},
        **result,
    }
    if args.base is not None:
        (base_scores,) = score_models(config, [args.base], metric, args.scores).values()
        report["base"] = {"model": str(args.base), "value": base_scores["value"]}
        report["against_base"] = against_base(scores, base_scores, metric)
        for line in report["against_base"].values():
            print(f"  vs base: {line}", flush=True)
    print(markdown_table(report), flush=True)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")
        print(f"written: {args.output}")


if __name__ == "__main__":
    main()
