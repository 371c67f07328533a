"""Where and how training runs on a cluster: the hardware of the training pod (said once,
turned into pod settings by `trainer.cluster.pods`) and how many processes share it.

This model is plain data (no Kubernetes imports) so the run config can validate it
anywhere; `trainer.cluster.pods` turns it into Kubernetes objects for both the ZenML
orchestrator and the Kubeflow Pipelines build.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")


def _check_quantity(value: str | None) -> str | None:
    if value is not None and not _QUANTITY.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. '4', '500m', '16Gi')")
    return value


class Toleration(BaseModel):
    """A Kubernetes toleration, e.g. for the `nvidia.com/gpu=present:NoSchedule` taint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = "NoSchedule"


class HardwareConfig(BaseModel):
    """GPU count, node placement and resources of the training step.

    `accelerator_label` + `accelerator` select the GPU node pool (on GKE
    `cloud.google.com/gke-accelerator: nvidia-l4`); `node_selector` adds more labels.
    `shm_size` mounts a memory-backed `/dev/shm`, which PyTorch dataloader workers need
    beyond the container runtime's 64 MB default. `termination_grace_period_seconds` is
    how long Kubernetes waits between SIGTERM (preemption, eviction, node drain) and
    SIGKILL: the training saves a checkpoint in that window, so it must cover one
    optimizer step plus writing a checkpoint to the artifact store. `nodes > 1` trains
    on that many nodes (each with this spec) as a Kubeflow Trainer TrainJob; `image` is
    the image the nodes run (default: the image of the pipeline's own steps).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_count: int = Field(default=1, ge=0)
    gpu_resource: str = "nvidia.com/gpu"
    accelerator_label: str | None = None
    accelerator: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(
        default_factory=lambda: [Toleration(key="nvidia.com/gpu")]
    )
    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    shm_size: str | None = "8Gi"
    termination_grace_period_seconds: int = Field(default=120, gt=0)
    nodes: int = Field(default=1, ge=1)
    image: str | None = None

    _quantities = field_validator("cpu", "memory", "cpu_limit", "memory_limit", "shm_size")(
        classmethod(lambda cls, value: _check_quantity(value))
    )

    @property
    def node_labels(self) -> dict[str, str]:
        """All node-selector labels, the accelerator label included."""
        labels = dict(self.node_selector)
        if self.accelerator_label and self.accelerator:
            labels[self.accelerator_label] = self.accelerator
        return labels


class SharedVolume(BaseModel):
    """A ReadWriteMany PersistentVolumeClaim mounted on every training node and on the
    pod that submits the TrainJob, for inputs, outputs and checkpoints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    claim_name: str
    mount_path: str = "/mnt/shared"


class DistributedConfig(BaseModel):
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
    def _positive_processes(self) -> DistributedConfig:
        if isinstance(self.nproc_per_node, int) and self.nproc_per_node < 1:
            raise ValueError("nproc_per_node must be 'auto' or at least 1")
        return self
