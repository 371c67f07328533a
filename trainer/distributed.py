"""Training with several processes, through torchrun (`torch.distributed.run`).

One process per device in one pod: the train stage saves its inputs to a work folder and
runs `python -m torch.distributed.run --nproc-per-node N -m trainer.entrypoint ...`; each
rank trains on its shard of every batch (sentence-transformers' trainer runs DDP under
torchrun), rank 0 alone writes checkpoints, the model and the summary. Across nodes the
same entrypoint runs under Kubeflow Trainer (`trainer.trainjob`), whose torch runtime
sets torchrun's `PET_*` variables on every node. No launcher or rendezvous of our own.

This module also answers, inside a rank, "which rank am I" and lets ranks agree
(barrier, broadcast, any-rank flag) once the process group exists.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

logger = logging.getLogger(__name__)

ENTRYPOINT_MODULE = "trainer.entrypoint"


class SharedVolume(BaseModel):
    """A ReadWriteMany PersistentVolumeClaim mounted on every training node and on the
    pod that submits the TrainJob, for inputs, outputs and checkpoints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    claim_name: str
    mount_path: str = "/mnt/shared"


class DistributedSpec(BaseModel):
    """How many training processes, and how they share the work.

    `nproc_per_node`: processes per node (one per GPU); `auto` uses every visible GPU
    (one process without GPUs), an integer forces it (`2` on CPU runs DDP with gloo).
    `gather_across_devices`: in-batch-negative losses see the negatives of every process
    (default: on with more than one process). For `hardware.nodes > 1` the Kubeflow
    Trainer `runtime` runs the nodes; they exchange inputs and outputs through
    `shared_uri` (default: the artifact store) or `shared_volume`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    nproc_per_node: int | Literal["auto"] = "auto"
    gather_across_devices: bool | None = None
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    runtime: str = "torch-distributed"
    shared_uri: str | None = None
    shared_volume: SharedVolume | None = None
    namespace: str | None = None
    service_account: str | None = None
    poll_seconds: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _positive_processes(self) -> DistributedSpec:
        if isinstance(self.nproc_per_node, int) and self.nproc_per_node < 1:
            raise ValueError("nproc_per_node must be 'auto' or at least 1")
        return self


# --- inside a rank -------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """This process's place among the training processes (torchrun's environment)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1

    @classmethod
    def from_env(cls) -> Topology:
        return cls(
            rank=int(os.environ.get("RANK", "0")),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
            local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        )

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Global rank 0: decides, publishes and writes what later stages read."""
        return self.rank == 0

    @property
    def is_node_leader(self) -> bool:
        """Local rank 0: prepares this node's local files (a fetched checkpoint)."""
        return self.local_rank == 0


def _group_ready() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init_process_group(use_cpu: bool, backend: str | None) -> None:
    """Join the process group the Trainer will use (accelerate's shared state), so the
    ranks can agree on where to resume before the Trainer is built."""
    from accelerate import PartialState

    PartialState(cpu=use_cpu, backend=backend)


def barrier() -> None:
    if _group_ready():
        import torch.distributed as dist

        dist.barrier()


def broadcast(value: Any) -> Any:
    """`value` as rank 0 has it, on every rank."""
    if not _group_ready():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool) -> bool:
    """True on every rank when it is True on at least one."""
    if not _group_ready():
        return flag
    import torch
    import torch.distributed as dist

    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


# --- choosing and launching processes --------------------------------------------------


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def processes_per_node(spec: DistributedSpec, gpus: int | None = None) -> int:
    """How many training processes this node runs: `nproc_per_node`, or one per visible
    GPU for `auto` (a single process without GPUs)."""
    if isinstance(spec.nproc_per_node, int):
        return spec.nproc_per_node
    return max(1, visible_gpus() if gpus is None else gpus)


def ddp_arguments(spec: DistributedSpec, gpus: int) -> dict[str, Any]:
    """Training arguments a multi-process run needs: gloo and `use_cpu` without GPUs."""
    backend = None if spec.backend == "auto" else spec.backend
    if gpus == 0:
        return {"use_cpu": True, "ddp_backend": backend or "gloo"}
    return {"ddp_backend": backend} if backend else {}


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
