"""`HardwareConfig` -> Kubernetes pod settings, in one place for ZenML and Kubeflow.

The ZenML path (`pipelines/k8s_settings.py`) hands these objects to ZenML's
`KubernetesPodSettings`; the Kubeflow path (`pipelines/kfp_pipeline.py`) replays them as
kfp-kubernetes task calls. Both read them from here, so a GPU training pod looks the
same whichever orchestrator launches it. Only the `kubernetes` client models are used
(no ZenML, no KFP): every function is pure and can be asserted on directly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kubernetes.client import (
    ApiClient,
    V1EmptyDirVolumeSource,
    V1PersistentVolumeClaimVolumeSource,
    V1ResourceRequirements,
    V1Toleration,
    V1Volume,
    V1VolumeMount,
)

from trainer.config import DistributedConfig, HardwareConfig

SHARED_VOLUME_NAME = "shared"
"""Name of the ReadWriteMany volume training nodes share (`distributed.shared_volume`)."""

SHM_VOLUME_NAME = "dshm"
"""Name of the memory-backed volume mounted at `/dev/shm`."""

SHM_MOUNT_PATH = "/dev/shm"
"""Container runtimes give `/dev/shm` 64 MB; PyTorch dataloader workers pass batches
through it and die with a bus error when it fills up."""


SCRATCH_MOUNTS: dict[str, str] = {"tmp": "/tmp", "app": "/app"}
"""Volume name -> path of the only places the image writes (k8s/Dockerfile): `/tmp` (HOME,
the Hugging Face and datasets caches, ZenML's config, torchrun's files) and `/app` (where
ZenML's step entrypoint unpacks the run's code). With a read-only root filesystem they
are emptyDirs; `scripts/test-containers.sh` runs every stage that way (`--read-only
--tmpfs /tmp --tmpfs /app`)."""

READ_ONLY_ROOT: dict[str, bool] = {"readOnlyRootFilesystem": True}
"""The container security context that makes the image's root filesystem read-only (in
the API's camelCase form: pod settings and TrainJob patches take it as is)."""


def scratch_volume_parts() -> tuple[list[V1Volume], list[V1VolumeMount]]:
    """emptyDir volumes and their mounts for `SCRATCH_MOUNTS`."""
    return (
        [V1Volume(name=name, empty_dir=V1EmptyDirVolumeSource()) for name in SCRATCH_MOUNTS],
        [V1VolumeMount(name=name, mount_path=path) for name, path in SCRATCH_MOUNTS.items()],
    )


def node_selector(spec: HardwareConfig) -> dict[str, str]:
    """Node labels the training pod must land on (accelerator label included)."""
    return spec.node_labels


def tolerations(spec: HardwareConfig) -> list[V1Toleration]:
    """Tolerations for the taints GPU node pools carry (e.g. `nvidia.com/gpu:NoSchedule`)."""
    return [
        V1Toleration(
            key=toleration.key,
            operator=toleration.operator,
            value=toleration.value,
            effect=toleration.effect,
        )
        for toleration in spec.tolerations
    ]


def gpu_limits(spec: HardwareConfig) -> dict[str, str]:
    """`{gpu_resource: count}`; empty for a CPU-only spec.

    GPUs are an extended resource: Kubernetes only accepts them as limits (a request, if
    given, must equal the limit), so they are never put into `requests`.
    """
    return {spec.gpu_resource: str(spec.gpu_count)} if spec.gpu_count > 0 else {}


def resource_requirements(spec: HardwareConfig) -> V1ResourceRequirements:
    """Requests (cpu, memory) and limits (GPU, cpu_limit, memory_limit) of the container.

    The scheduler places the pod by its requests; the GPU limit is what makes the device
    plugin hand a GPU to the container at all.
    """
    requests = {
        name: value for name, value in (("cpu", spec.cpu), ("memory", spec.memory)) if value
    }
    limits = {
        **gpu_limits(spec),
        **{
            name: value
            for name, value in (("cpu", spec.cpu_limit), ("memory", spec.memory_limit))
            if value
        },
    }
    return V1ResourceRequirements(requests=requests or None, limits=limits or None)


def shm_volume(spec: HardwareConfig) -> V1Volume | None:
    """A memory-backed emptyDir for `/dev/shm`, capped at `shm_size`; None without one.

    Pages written there count against the container's memory limit, so `memory_limit`
    should leave room for `shm_size`.
    """
    if not spec.shm_size:
        return None
    return V1Volume(
        name=SHM_VOLUME_NAME,
        empty_dir=V1EmptyDirVolumeSource(medium="Memory", size_limit=spec.shm_size),
    )


def shm_volume_mount(spec: HardwareConfig) -> V1VolumeMount | None:
    """Where `shm_volume` is mounted in the container; None without one."""
    if not spec.shm_size:
        return None
    return V1VolumeMount(name=SHM_VOLUME_NAME, mount_path=SHM_MOUNT_PATH)


@dataclass(frozen=True)
class PodHardware:
    """Everything a `HardwareConfig` contributes to a pod, as Kubernetes client models."""

    node_selector: dict[str, str]
    tolerations: list[V1Toleration]
    resources: V1ResourceRequirements
    volumes: list[V1Volume] = field(default_factory=list)
    volume_mounts: list[V1VolumeMount] = field(default_factory=list)


def pod_hardware(spec: HardwareConfig) -> PodHardware:
    """All pod settings of `spec` at once: what both orchestrator paths consume."""
    volume, mount = shm_volume(spec), shm_volume_mount(spec)
    return PodHardware(
        node_selector=node_selector(spec),
        tolerations=tolerations(spec),
        resources=resource_requirements(spec),
        volumes=[volume] if volume else [],
        volume_mounts=[mount] if mount else [],
    )


class PodKind(StrEnum):
    """Which pod a pipeline stage gets (the pipeline plan, `trainer.stages.plan`, says
    which stage gets which)."""

    CPU = "cpu"
    """A plain pod with the resources the orchestrator config gives it."""
    TRAINING = "training"
    """Encodes or trains with the model: the run's hardware (GPU node, tolerations,
    resources), unless the run trains on several nodes and this is the stage that
    submits the TrainJob (then a light pod with the shared volume)."""


def shared_volume_parts(spec: DistributedConfig) -> tuple[list[V1Volume], list[V1VolumeMount]]:
    """The ReadWriteMany claim the nodes and the submitting pod share, if configured."""
    volume = spec.shared_volume
    if volume is None:
        return [], []
    return (
        [
            V1Volume(
                name=SHARED_VOLUME_NAME,
                persistent_volume_claim=V1PersistentVolumeClaimVolumeSource(
                    claim_name=volume.claim_name
                ),
            )
        ],
        [V1VolumeMount(name=SHARED_VOLUME_NAME, mount_path=volume.mount_path)],
    )


def stage_pod(
    hardware: HardwareConfig | None,
    distributed: DistributedConfig,
    kind: PodKind,
    *,
    submits_trainjob: bool = False,
) -> PodHardware | None:
    """What the run's hardware gives a pod of `kind`; None for CPU pods.

    Training pods land on the hardware; but a stage that only submits a TrainJob
    (`submits_trainjob`: the nodes get the hardware) gets no GPU and no GPU node, just
    the shared volume when there is one.
    """
    if hardware is None or kind is not PodKind.TRAINING:
        return None
    if submits_trainjob:
        volumes, mounts = shared_volume_parts(distributed)
        return PodHardware(
            node_selector={},
            tolerations=[],
            resources=V1ResourceRequirements(),
            volumes=volumes,
            volume_mounts=mounts,
        )
    return pod_hardware(hardware)


@functools.cache
def _api_client() -> ApiClient:
    # Only its serializer is used: no configuration is loaded, nothing is contacted.
    return ApiClient()


def to_manifest(obj: Any) -> Any:
    """A client model (or list/dict of them) in the camelCase JSON form the API receives.

    Unset (None) attributes are dropped, exactly as the client does before a request;
    ZenML's own pod-settings serializer keeps them as nulls, which its pydantic fields
    reject for `resources` and which strict schema validation rejects elsewhere.
    """
    return _api_client().sanitize_for_serialization(obj)
