"""Training with several processes, through torchrun (`torch.distributed.run`).

One process per device in one pod: the train stage saves its inputs to a work folder and
runs `python -m torch.distributed.run --nproc-per-node N -m trainer.cluster.entrypoint ...`; each
rank trains on its shard of every batch (sentence-transformers' trainer runs DDP under
torchrun), rank 0 alone writes checkpoints, the model and the summary. Across nodes the
same entrypoint runs under Kubeflow Trainer (`trainer.cluster.trainjob`), whose torch runtime
sets torchrun's `PET_*` variables on every node. No launcher or rendezvous of our own.

This module also answers, inside a rank, "which rank am I" and lets ranks agree
(barrier, broadcast, any-rank flag) once the process group exists.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from trainer.config import DistributedConfig

logger = logging.getLogger(__name__)


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


def processes_per_node(spec: DistributedConfig, gpus: int | None = None) -> int:
    """How many training processes this node runs: `nproc_per_node`, or one per visible
    GPU for `auto` (a single process without GPUs)."""
    if isinstance(spec.nproc_per_node, int):
        return spec.nproc_per_node
    return max(1, visible_gpus() if gpus is None else gpus)


def ddp_arguments(spec: DistributedConfig, gpus: int) -> dict[str, Any]:
    """Training arguments a multi-process run needs: gloo and `use_cpu` without GPUs."""
    backend = None if spec.backend == "auto" else spec.backend
    if gpus == 0:
        return {"use_cpu": True, "ddp_backend": backend or "gloo"}
    return {"ddp_backend": backend} if backend else {}
