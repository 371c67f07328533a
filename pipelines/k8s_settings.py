"""ZenML Kubernetes orchestrator settings for the training step, from `config.hardware`.

The pipeline applies them with `train.with_options(settings=kubernetes_settings(...))`.
On a Kubernetes stack they become the training pod's node selector, tolerations, GPU
limit and `/dev/shm` volume; on any other stack ZenML drops `orchestrator.kubernetes`
settings with an info message, so one pipeline definition serves both.

The GPU goes into `pod_settings.resources`, not ZenML's `ResourceSettings(gpu_count=...)`:
the Kubernetes orchestrator ignores `ResourceSettings`, so only a resource limit puts
`nvidia.com/gpu` on the pod.
"""

from __future__ import annotations

from typing import Any

from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings
from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings

from trainer.cluster import PodHardware, pod_hardware, to_manifest
from trainer.config import HardwareConfig
from trainer.stages import PipelinePlan, Stage

KUBERNETES_SETTINGS_KEY = "orchestrator.kubernetes"
"""Settings key that resolves to whichever Kubernetes orchestrator the stack has."""


def pod_settings(parts: PodHardware) -> KubernetesPodSettings:
    """The `KubernetesPodSettings` of a pod with `parts` (node, GPU, volumes).

    Values go in as clean camelCase dicts (`to_manifest`): that is the form ZenML stores
    in the run snapshot and copies verbatim into the pod spec it submits.
    """
    return KubernetesPodSettings(
        node_selectors=parts.node_selector,
        tolerations=to_manifest(parts.tolerations),
        resources=to_manifest(parts.resources),
        volumes=to_manifest(parts.volumes),
        volume_mounts=to_manifest(parts.volume_mounts),
    )


def kubernetes_settings(hardware: HardwareConfig | None) -> dict[str, Any]:
    """Step settings placing a step on the hardware `hardware` describes.

    Returns an empty dict for `None` (no hardware configured), so the caller can always
    write `step.with_options(settings=kubernetes_settings(config.hardware))`. Only
    `pod_settings` and the pod's grace period are set: pipeline-level orchestrator
    settings from the run config (service accounts, TTLs, CronJob policy) merge with them
    instead of being replaced.
    """
    if hardware is None:
        return {}
    return _settings(pod_hardware(hardware), hardware)


def stage_settings(plan: PipelinePlan, stage: Stage) -> dict[str, Any]:
    """Step settings of pipeline stage `stage`: the hardware for stages the plan puts on
    it (for the train stage of a multi-node run, the light pod that submits the
    TrainJob), none for the others."""
    hardware = plan.config.hardware
    parts = plan.pod(stage)
    if parts is None or hardware is None:
        return {}
    return _settings(parts, hardware)


def _settings(parts: PodHardware, hardware: HardwareConfig) -> dict[str, Any]:
    return {
        KUBERNETES_SETTINGS_KEY: KubernetesOrchestratorSettings(
            pod_settings=pod_settings(parts),
            pod_stop_grace_period=hardware.termination_grace_period_seconds,
        )
    }
