"""A training job folder, and running it with torchrun in this pod.

The stage that launches training and the ranks that run it share one folder (a local
path in one pod; a shared URI across nodes), laid out as:

    job.json          TrainingJob: checkpoint location, the run, what to write back
    config.json       the RunConfig
    train/, eval/     the datasets (`DatasetDict.save_to_disk`; a stream: its first rows,
                      each rank opens it again from its source)
    filesystem.pkl    optional: the checkpoint store's fsspec filesystem with its credentials
    output/           written by rank 0: model/, summary.json, or interrupted.json

`trainer.cluster.entrypoint` is what each rank runs on it; `trainer.cluster.trainjob` runs the same
entrypoint on several nodes through Kubeflow Trainer.
"""

from __future__ import annotations

import logging
import pickle
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
from pydantic import BaseModel, ConfigDict

from trainer.data import stream_stand_ins
from trainer.results import RunRef, TrainingSummary
from trainer.training import SeriesIdentity, TrainingInterrupted

if TYPE_CHECKING:
    from datasets import DatasetDict
    from fsspec import AbstractFileSystem

    from trainer.config import RunConfig
    from trainer.training import TrainedModel

logger = logging.getLogger(__name__)

JOB_FILE = "job.json"
CONFIG_FILE = "config.json"
FILESYSTEM_FILE = "filesystem.pkl"
TRAIN_DIR, EVAL_DIR, OUTPUT_DIR = "train", "eval", "output"
MODEL_DIR, SUMMARY_FILE, INTERRUPTED_FILE = "model", "summary.json", "interrupted.json"
INTERRUPTED_EXIT_CODE = 3
"""Exit code of a rank that stopped on SIGTERM after saving a checkpoint."""


ENTRYPOINT_MODULE = "trainer.cluster.entrypoint"


def torchrun_command(
    nproc_per_node: int, entrypoint_args: Sequence[str], *, shutdown_timeout: int = 30
) -> list[str]:
    """The command that runs the entrypoint on this node with `nproc_per_node` ranks.

    `--standalone` is torchrun's own single-node rendezvous; `shutdown_timeout` is how
    long torchrun waits after forwarding SIGTERM before it kills the ranks (they need it
    to save a checkpoint).
    """
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc_per_node}",
        f"--shutdown-timeout={shutdown_timeout}",
        "-m",
        ENTRYPOINT_MODULE,
        *entrypoint_args,
    ]


def run_forwarding_signals(command: Sequence[str], *, cwd: Path | None = None) -> int:
    """Run `command`, passing SIGTERM/SIGINT on to it (Kubernetes signals only the pod's
    main process, torchrun must hear it to let the ranks save); return its exit code."""
    process = subprocess.Popen(list(command), cwd=cwd)

    def forward(signum: int, _frame: Any) -> None:
        logger.warning("forwarding %s to the training processes", signal.Signals(signum).name)
        process.send_signal(signum)

    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {}
    try:
        for sig in signals:
            previous[sig] = signal.signal(sig, forward)
    except ValueError:  # not the main thread: nothing to forward from
        previous = {}
    try:
        return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class TrainingJob(BaseModel):
    """What every rank needs besides the config and the data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checkpoint_uri: str | None = None
    run: RunRef | None = None
    series: SeriesIdentity | None = None


def write_job(
    folder: str,
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None,
    job: TrainingJob,
    *,
    filesystem: AbstractFileSystem | None = None,
) -> None:
    """Lay out a job folder (local or any fsspec URL) for the entrypoint to run."""
    fs, root = fsspec.core.url_to_fs(folder)
    fs.makedirs(root, exist_ok=True)
    fs.pipe_file(f"{root}/{JOB_FILE}", job.model_dump_json(indent=1).encode())
    fs.pipe_file(f"{root}/{CONFIG_FILE}", config.model_dump_json(indent=1).encode())
    # A stream cannot be saved: its first rows stand in for it, and each rank opens the
    # stream again from its source (`reopen_streams`).
    stand_ins = stream_stand_ins(config, train_datasets)
    stand_ins.save_to_disk(f"{folder.rstrip('/')}/{TRAIN_DIR}")
    if eval_datasets:
        eval_datasets.save_to_disk(f"{folder.rstrip('/')}/{EVAL_DIR}")
    if filesystem is not None:
        # Credentials the ranks need to reach the store (an artifact store's): a file
        # readable by this user only, in a folder removed when the job ends.
        path = Path(root) / FILESYSTEM_FILE
        path.write_bytes(pickle.dumps(filesystem))
        path.chmod(0o600)


def read_outputs(folder: str) -> tuple[Path, TrainingSummary]:
    """The model folder and summary rank 0 wrote (TrainingInterrupted if it stopped on a
    signal, RuntimeError naming what is missing otherwise)."""
    fs, root = fsspec.core.url_to_fs(folder)
    output = f"{root}/{OUTPUT_DIR}"
    if fs.exists(f"{output}/{INTERRUPTED_FILE}"):
        raise TrainingInterrupted(fs.cat_file(f"{output}/{INTERRUPTED_FILE}").decode())
    if not fs.exists(f"{output}/{SUMMARY_FILE}"):
        raise RuntimeError(
            f"the training processes wrote no {SUMMARY_FILE} to {folder}/{OUTPUT_DIR}: "
            "rank 0 failed before the end (see its log above)"
        )
    summary = TrainingSummary.model_validate_json(fs.cat_file(f"{output}/{SUMMARY_FILE}"))
    if isinstance(fs, fsspec.implementations.local.LocalFileSystem):
        return Path(output) / MODEL_DIR, summary
    local = Path(tempfile.mkdtemp(prefix="st-finetune-model-"))
    fs.get(f"{output}/{MODEL_DIR}/", str(local), recursive=True)
    return local, summary


def train_with_torchrun(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None,
    *,
    nproc_per_node: int,
    checkpoint_uri: str | None,
    filesystem: AbstractFileSystem | None = None,
    run: RunRef | None = None,
    series: SeriesIdentity | None = None,
) -> TrainedModel:
    """Train with `nproc_per_node` ranks on this node under torchrun and wait for them.

    SIGTERM reaching this process is forwarded to torchrun, which forwards it to the
    ranks and gives them the pod's grace period (less a margin) to save a checkpoint.
    """
    from trainer.models import load_saved_model
    from trainer.training import TrainedModel

    grace = config.hardware.termination_grace_period_seconds if config.hardware else 60
    with tempfile.TemporaryDirectory(prefix="st-finetune-job-") as folder:
        if checkpoint_uri is None:
            checkpoint_uri = str(Path(folder) / "checkpoints")
            logger.warning(
                "no durable checkpoint location: checkpoints stay in this pod; set "
                "checkpoints.uri to resume after preemption"
            )
        job = TrainingJob(checkpoint_uri=checkpoint_uri, run=run, series=series)
        write_job(folder, config, train_datasets, eval_datasets, job, filesystem=filesystem)
        command = torchrun_command(
            nproc_per_node, ["--job", folder], shutdown_timeout=max(10, grace - 10)
        )
        logger.info("training with %d processes: %s", nproc_per_node, " ".join(command))
        code = run_forwarding_signals(command)
        if code not in (0, INTERRUPTED_EXIT_CODE):
            raise RuntimeError(
                f"the training processes failed (torchrun exit code {code}); their log is above"
            )
        model_dir, summary = read_outputs(folder)
        model = load_saved_model(model_dir, local_files_only=True)
    return TrainedModel(model=model, summary=summary)
