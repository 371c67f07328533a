"""What each training process runs: `python -m trainer.cluster.entrypoint --job <folder or URI>`.

Started by torchrun, one process per device, in one pod (`trainer.cluster.torchrun`) or on every
node of a Kubeflow Trainer TrainJob (`trainer.cluster.trainjob`); torchrun's environment says
which rank this is. Every rank reads the same config and datasets; rank 0 alone
publishes checkpoints and writes the model and the summary the launching stage reads.
Exit codes: 0 done, 3 stopped on SIGTERM after saving a checkpoint, other: failed.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pickle
import sys
import tempfile
from pathlib import Path

import fsspec

from trainer.cluster.torchrun import (
    CONFIG_FILE,
    EVAL_DIR,
    FILESYSTEM_FILE,
    INTERRUPTED_EXIT_CODE,
    INTERRUPTED_FILE,
    JOB_FILE,
    MODEL_DIR,
    OUTPUT_DIR,
    SUMMARY_FILE,
    TRAIN_DIR,
    TrainingJob,
)
from trainer.config import RunConfig
from trainer.data import reopen_streams
from trainer.training import Topology, TrainingInterrupted, barrier, init_process_group

logger = logging.getLogger("trainer.cluster.entrypoint")


def _node_folder(job_uri: str) -> Path:
    """This node's working folder for the job: the same path for all its ranks."""
    digest = hashlib.sha256(job_uri.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"st-finetune-{digest}"


def run(job_uri: str) -> int:
    """Train as this rank; return the process exit code."""
    from datasets import DatasetDict, load_from_disk

    from trainer.models import save_model
    from trainer.training import process_group_arguments, train_in_process

    topology = Topology.from_env()
    fs, root = fsspec.core.url_to_fs(job_uri)
    config = RunConfig.model_validate_json(fs.cat_file(f"{root}/{CONFIG_FILE}"))
    job = TrainingJob.model_validate_json(fs.cat_file(f"{root}/{JOB_FILE}"))
    if topology.distributed:
        init_process_group(**process_group_arguments(config))

    node = _node_folder(job_uri)
    local = isinstance(fs, fsspec.implementations.local.LocalFileSystem)
    inputs = Path(root) if local else node / "inputs"
    if not local and topology.is_node_leader:
        for name in (TRAIN_DIR, EVAL_DIR):
            if fs.exists(f"{root}/{name}"):
                fs.get(f"{root}/{name}/", str(inputs / name), recursive=True)
    barrier()
    # Streamed datasets (`source.streaming`) are read from their source by every rank,
    # each keeping its slice of every global batch (`trainer.data.streaming`).
    train_datasets = reopen_streams(
        config, load_from_disk(str(inputs / TRAIN_DIR)), one_shard=topology.distributed
    )
    eval_path = inputs / EVAL_DIR
    eval_datasets = load_from_disk(str(eval_path)) if eval_path.exists() else DatasetDict()
    filesystem = None
    if local and (Path(root) / FILESYSTEM_FILE).exists():
        filesystem = pickle.loads((Path(root) / FILESYSTEM_FILE).read_bytes())

    output = f"{root}/{OUTPUT_DIR}"
    try:
        trained = train_in_process(
            config,
            train_datasets,
            eval_datasets,
            checkpoint_uri=job.checkpoint_uri,
            filesystem=filesystem,
            run=job.run,
            work_dir=node / "staging",
            series=job.series,
        )
    except TrainingInterrupted as stopped:
        if topology.is_main:
            fs.makedirs(output, exist_ok=True)
            fs.pipe_file(f"{output}/{INTERRUPTED_FILE}", str(stopped).encode())
        logger.warning("%s", stopped)
        return INTERRUPTED_EXIT_CODE
    if topology.is_main:
        with tempfile.TemporaryDirectory() as saved:
            save_model(trained.model, saved)
            fs.makedirs(f"{output}/{MODEL_DIR}", exist_ok=True)
            fs.put(f"{saved}/", f"{output}/{MODEL_DIR}", recursive=True)
        fs.pipe_file(f"{output}/{SUMMARY_FILE}", trained.summary.model_dump_json().encode())
    barrier()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--job", required=True, help="job folder or URI (see trainer.cluster.torchrun)"
    )
    args = parser.parse_args(argv)
    rank = Topology.from_env().rank
    logging.basicConfig(
        level=logging.INFO, format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s"
    )
    sys.exit(run(args.job))


if __name__ == "__main__":
    main()
