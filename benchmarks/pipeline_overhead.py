"""What the quickstart pipeline costs on top of a plain script doing the same work.

Three arms, each a fresh Python process so that every one pays its own imports:

* pipeline - `zenml pipeline run pipelines.finetune.finetune_pipeline -c <quickstart copy>`
  on ZenML's local stack, in a ZenML store of its own (a temp dir);
* plain - one script with sentence-transformers alone: load the same rows, train with the
  same arguments (`SentenceTransformerTrainer`), evaluate the base and the fine-tuned model
  with the same evaluator, save the model and the evaluation summary;
* core - the same work through our `trainer` library without ZenML (`load_datasets`,
  `train`, `compare`), to tell the library's cost from the orchestrator's.

The ratio pipeline / plain is the number the issue targets (<= 1.25x). The pipeline arm is
then taken apart with the step start and end times ZenML records: start-up before the
first step, each step, the part of the train step outside `trainer.train()`, the part of
the evaluate step outside the two evaluations, and shut-down after the last step. The
store and its default stack are created (and timed) before any arm runs.

Run from the repository root (offline)::

    .venv/bin/python benchmarks/pipeline_overhead.py                    # 256 training pairs
    .venv/bin/python benchmarks/pipeline_overhead.py --full --repeats 1 --no-core  # the quickstart
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = REPO_ROOT / "configs" / "quickstart.yaml"
PIPELINE = "pipelines.finetune.finetune_pipeline"
DATASET = "stdlib_docs"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def isolated_env(home: Path) -> dict[str, str]:
    """A ZenML store of its own, offline, no analytics, no dashboard."""
    return {
        **os.environ,
        "ZENML_CONFIG_PATH": str(home / "config"),
        "ZENML_LOCAL_STORES_PATH": str(home / "stores"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_AUTO_OPEN_DASHBOARD": "false",
        "ZENML_ENABLE_RICH_TRACEBACK": "false",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }


def write_config(home: Path, max_samples: int | None, output_dir: Path) -> Path:
    """The quickstart config with its own output dir (and a row cap for the quick variant)."""
    document = yaml.safe_load(QUICKSTART.read_text())
    config = document["parameters"]["config"]
    config["output"]["dir"] = str(output_dir)
    if max_samples:
        config["datasets"][DATASET]["max_samples"] = max_samples
    path = home / "quickstart.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(
    command: list[str], env: dict[str, str], log_file: Path, cpu: list[float] | None = None
) -> float:
    """Wall seconds of `command`; its CPU seconds (user + system) are appended to `cpu`.

    CPU time is what tells a slow run caused by other work on a shared machine from a slow
    arm: contention stretches wall time, hardly CPU time.
    """
    started, cpu_started = time.perf_counter(), _children_cpu_s()
    with log_file.open("w") as out:
        completed = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=out)
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu.append(round(_children_cpu_s() - cpu_started, 2))
    if completed.returncode != 0:
        tail = log_file.read_text()[-3000:]
        raise SystemExit(f"{' '.join(command)} failed ({completed.returncode}):\n{tail}")
    return elapsed


def worker_result(log_file: Path) -> dict[str, Any]:
    """The JSON line a worker prints last (`RESULT {...}`)."""
    for line in reversed(log_file.read_text().splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise SystemExit(f"{log_file}: no RESULT line")


# --- the plain and core arms (run as `--worker plain|core CONFIG OUT`) -------------------


def plain_worker(config_path: Path, output_dir: Path, started: float) -> dict[str, Any]:
    """sentence-transformers alone, doing the pipeline's work."""
    marks: dict[str, float] = {}
    from datasets import load_dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    from trainer.config import load_run_config
    from trainer.evaluation import build_evaluators, run_evaluators
    from trainer.models import resolve_model_path

    marks["imports"] = time.perf_counter()
    config = load_run_config(config_path)
    source = config.datasets[DATASET]
    columns = dict(source.columns)
    train = load_dataset("json", data_files=source.source.path, split="train")
    train = train.select_columns(list(columns)).rename_columns(columns)
    if source.max_samples:
        train = train.shuffle(seed=config.seed).select(range(source.max_samples))
    held_out = load_dataset("json", data_files=source.eval_source.path, split="train")
    held_out = held_out.select_columns(list(columns)).rename_columns(columns)
    marks["data"] = time.perf_counter()

    model_path = resolve_model_path(config.model.name_or_path)
    model = SentenceTransformer(model_path)
    model.max_seq_length = config.model.max_seq_length
    marks["model"] = time.perf_counter()
    # Same evaluator objects as the pipeline (trainer.evaluation.evaluators), on the same rows.
    from datasets import DatasetDict

    evaluators = build_evaluators(config, DatasetDict({DATASET: held_out}))
    base = run_evaluators(model, evaluators)
    marks["evaluate_base"] = time.perf_counter()

    training = config.training
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        num_train_epochs=training["num_train_epochs"],
        per_device_train_batch_size=training["per_device_train_batch_size"],
        learning_rate=training["learning_rate"],
        warmup_steps=0.1,
        batch_sampler=training["batch_sampler"],
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        seed=config.seed,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=train, loss=MultipleNegativesRankingLoss(model)
    )
    trainer.train()
    marks["train"] = time.perf_counter()
    finetuned = run_evaluators(model, evaluators)
    marks["evaluate_finetuned"] = time.perf_counter()
    model.save(str(output_dir / "model"))
    (output_dir / "evaluation.json").write_text(
        json.dumps({"base": base, "finetuned": finetuned}, indent=2)
    )
    marks["save"] = time.perf_counter()
    return {"phases": _phases(started, marks), "base": base, "finetuned": finetuned}


def core_worker(config_path: Path, output_dir: Path, started: float) -> dict[str, Any]:
    """Our trainer library without ZenML: what the steps call, in one process."""
    marks: dict[str, float] = {}
    from trainer.config import load_run_config
    from trainer.data import load_datasets
    from trainer.evaluation import build_evaluators, compare
    from trainer.models import load_model
    from trainer.training import train

    marks["imports"] = time.perf_counter()
    config = load_run_config(config_path)
    train_data, held_out = load_datasets(config)
    marks["data"] = time.perf_counter()
    result = train(config, train_data, held_out, output_dir=output_dir / "checkpoints")
    marks["train"] = time.perf_counter()
    evaluation = compare(load_model(config.model), result.model, build_evaluators(config, held_out))
    marks["evaluate"] = time.perf_counter()
    result.model.save(str(output_dir / "model"))
    (output_dir / "evaluation.json").write_text(evaluation.model_dump_json(indent=2))
    marks["save"] = time.perf_counter()
    return {
        "phases": _phases(started, marks),
        "train_seconds": result.train_seconds,
        "base": evaluation.base,
        "finetuned": evaluation.finetuned,
    }


def _phases(started: float, marks: dict[str, float]) -> dict[str, float]:
    phases, previous = {}, started
    for name, mark in marks.items():
        phases[name] = round(mark - previous, 3)
        previous = mark
    return phases


# --- taking the pipeline run apart --------------------------------------------------------


def pipeline_breakdown(home: Path) -> list[dict[str, Any]]:
    """Step timings of every run in the isolated store (oldest first)."""
    code = r"""
import json
from zenml.client import Client
runs = Client().list_pipeline_runs(sort_by="asc:created", size=50, hydrate=True)
out = []
for run in runs.items:
    steps = {}
    for name, step in run.steps.items():
        steps[name] = {"start": step.start_time.timestamp() if step.start_time else None,
                       "end": step.end_time.timestamp() if step.end_time else None}
    training = run.steps["train"].outputs["training"][0].load()
    evaluation = run.steps["evaluate"].outputs["evaluation"][0].load()
    out.append({"name": run.name, "steps": steps, "train_seconds": training.train_seconds,
                "finetuned": evaluation.finetuned, "base": evaluation.base})
print("RESULT " + json.dumps(out))
"""
    log_file = home / "breakdown.log"
    run_timed([sys.executable, "-c", code], isolated_env(home), log_file)
    return worker_result(log_file)


def describe_pipeline_run(
    run: dict[str, Any], started_at: float, ended_at: float, evaluate_s: float | None
) -> dict[str, Any]:
    """Seconds per part of one pipeline run, from wall-clock marks and ZenML's step times."""
    steps = run["steps"]
    order = sorted(steps, key=lambda name: steps[name]["start"])
    first, last = steps[order[0]]["start"], steps[order[-1]]["end"]
    parts: dict[str, float] = {"startup_before_first_step": first - started_at}
    for previous, name in zip([None, *order], order, strict=False):
        if previous is not None:
            parts[f"gap_before_{name}"] = steps[name]["start"] - steps[previous]["end"]
        parts[f"step_{name}"] = steps[name]["end"] - steps[name]["start"]
    parts["shutdown_after_last_step"] = ended_at - last
    parts["train_step_outside_train_loop"] = parts["step_train"] - run["train_seconds"]
    if evaluate_s is not None:
        parts["evaluate_step_outside_evaluations"] = parts["step_evaluate"] - evaluate_s
    return {key: round(value, 2) for key, value in parts.items()}


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-samples", type=int, default=256)
    parser.add_argument("--full", action="store_true", help="the real quickstart (all rows)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-core", action="store_true", help="skip the trainer-library arm")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--worker", choices=("plain", "core"), help=argparse.SUPPRESS)
    parser.add_argument("worker_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        started = time.perf_counter()
        sys.path.insert(0, str(REPO_ROOT))
        config_path, output_dir = map(Path, args.worker_args)
        worker = plain_worker if args.worker == "plain" else core_worker
        print("RESULT " + json.dumps(worker(config_path, output_dir, started)), flush=True)
        return 0

    home = Path(tempfile.mkdtemp(prefix="pipeline-overhead-"))
    env = isolated_env(home)
    max_samples = None if args.full else args.max_samples
    config_path = write_config(home, max_samples, home / "out-pipeline")
    zenml = str(Path(sys.executable).parent / "zenml")
    log(f"store {home}; rows {'all' if args.full else max_samples}; repeats {args.repeats}")
    if not (REPO_ROOT / ".zen").is_dir():
        run_timed([zenml, "init"], env, home / "init.log")
        log("zenml init (repository root)")
    # Create the store and its default stack before timing anything: a user pays that once.
    store_s = run_timed([zenml, "stack", "describe"], env, home / "store.log")
    log(f"store and default stack created in {store_s:.1f} s (not counted)")

    arms = ["pipeline", "plain"] + ([] if args.no_core else ["core"])
    timings: dict[str, list[float]] = {arm: [] for arm in arms}
    cpu_times: dict[str, list[float]] = {arm: [] for arm in arms}
    loads: list[float] = []
    marks: list[tuple[float, float]] = []
    workers: dict[str, list[dict[str, Any]]] = {"plain": [], "core": []}
    plan = [arm for repeat in range(args.repeats) for arm in arms]
    for index, arm in enumerate(plan):
        log_file = home / f"{index}-{arm}.log"
        if arm == "pipeline":
            command = [zenml, "pipeline", "run", PIPELINE, "-c", str(config_path)]
        else:
            out = home / f"out-{arm}-{index}"
            out.mkdir()
            command = [sys.executable, __file__, "--worker", arm, str(config_path), str(out)]
        wall_start = time.time()
        cpu: list[float] = []
        elapsed = run_timed(command, env, log_file, cpu)
        loads.append(round(os.getloadavg()[0], 2))
        if arm == "pipeline":
            marks.append((wall_start, wall_start + elapsed))
        else:
            workers[arm].append(worker_result(log_file))
        timings[arm].append(round(elapsed, 2))
        cpu_times[arm].append(cpu[0])
        log(f"{arm:<8} {elapsed:7.1f} s wall {cpu[0]:7.1f} s cpu  load {loads[-1]}")

    runs = pipeline_breakdown(home)
    evaluate_s = None
    if workers["plain"]:
        phases = workers["plain"][0]["phases"]
        evaluate_s = phases["evaluate_base"] + phases["evaluate_finetuned"]
    breakdown = [
        describe_pipeline_run(run, start, end, evaluate_s)
        for run, (start, end) in zip(runs, marks, strict=True)
    ]
    medians = {arm: round(statistics.median(values), 2) for arm, values in timings.items()}
    cpu_medians = {arm: round(statistics.median(values), 2) for arm, values in cpu_times.items()}
    ratio = round(medians["pipeline"] / medians["plain"], 3)
    same_metric = (
        all(run["finetuned"] == workers["plain"][0]["finetuned"] for run in runs)
        if workers["plain"]
        else None
    )
    results = {
        "benchmark": "pipeline_overhead",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "rows": "all" if args.full else max_samples,
        "order": plan,
        "wall_s": timings,
        "cpu_s": cpu_times,
        "load_average_after_each": loads,
        "median_cpu_s": cpu_medians,
        "cpu_ratio_pipeline_over_plain": round(cpu_medians["pipeline"] / cpu_medians["plain"], 3),
        "store_creation_s": round(store_s, 2),
        "median_s": medians,
        "ratio_pipeline_over_plain": ratio,
        "ratio_core_over_plain": (
            round(medians["core"] / medians["plain"], 3) if "core" in medians else None
        ),
        "pipeline_breakdown": breakdown,
        "plain_phases": [worker["phases"] for worker in workers["plain"]],
        "core_phases": [worker["phases"] for worker in workers["core"]],
        "finetuned_metrics_equal_plain": same_metric,
        "pipeline_finetuned": runs[-1]["finetuned"],
        "plain_finetuned": workers["plain"][0]["finetuned"] if workers["plain"] else None,
    }
    log(f"median wall s {medians}; pipeline/plain {ratio}")
    log(f"pipeline breakdown (last run): {json.dumps(breakdown[-1], indent=1)}")
    if args.output is None:
        log("results not written (no --output)")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
