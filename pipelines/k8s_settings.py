"""ZenML settings the pipeline applies in code: each step's Kubernetes pod, and the image.

The training stages get their pod from `config.hardware` (node selector, tolerations, GPU
limit, `/dev/shm` volume); the CPU stages get their resources from
`k8s/pipeline-defaults.yaml` (`pipelines.k8s_defaults`); the pipeline applies both with
`step.with_options(settings=stage_settings(...))`, under the run config's own step
settings. On any stack without a Kubernetes orchestrator ZenML drops
`orchestrator.kubernetes` settings with an info message, so one pipeline definition
serves both. `docker_settings` is the pipeline-level image build from the same file.

The GPU goes into `pod_settings.resources`, not ZenML's `ResourceSettings(gpu_count=...)`:
the Kubernetes orchestrator ignores `ResourceSettings`, so only a resource limit puts
`nvidia.com/gpu` on the pod.
"""

from __future__ import annotations

from typing import Any

from zenml.config import DockerSettings
from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings
from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings

from pipelines.k8s_defaults import PipelineDefaults, read_pipeline_defaults
from trainer.cluster import PodHardware, pod_hardware, scratch_volume_parts, to_manifest
from trainer.config import HardwareConfig
from trainer.stages import PipelinePlan, Stage

KUBERNETES_SETTINGS_KEY = "orchestrator.kubernetes"
"""Settings key that resolves to whichever Kubernetes orchestrator the stack has."""


def pod_settings(parts: PodHardware) -> KubernetesPodSettings:
    """The `KubernetesPodSettings` of a pod with `parts` (node, GPU, volumes).

    Values go in as clean camelCase dicts (`to_manifest`): that is the form ZenML stores
    in the run snapshot and copies verbatim into the pod spec it submits. A step's
    volume lists replace the orchestrator's (`k8s/orchestrator.yaml`), so the scratch
    emptyDirs of the read-only root filesystem are added here again.
    """
    scratch_volumes, scratch_mounts = scratch_volume_parts()
    return KubernetesPodSettings(
        node_selectors=parts.node_selector,
        tolerations=to_manifest(parts.tolerations),
        resources=to_manifest(parts.resources),
        volumes=to_manifest([*parts.volumes, *scratch_volumes]),
        volume_mounts=to_manifest([*parts.volume_mounts, *scratch_mounts]),
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


def stage_settings(
    plan: PipelinePlan, stage: Stage, defaults: PipelineDefaults | None = None
) -> dict[str, Any]:
    """Step settings of pipeline stage `stage`: the hardware for stages the plan puts on
    it (for the train stage of a multi-node run, the light pod that submits the
    TrainJob), the resources of `k8s/pipeline-defaults.yaml` (or `defaults`) for the CPU
    stages of a run with hardware, none otherwise."""
    hardware = plan.config.hardware
    if hardware is None:
        return {}
    parts = plan.pod(stage)
    if parts is not None:
        return _settings(parts, hardware)
    resources = (defaults or read_pipeline_defaults()).stage_resources(plan, stage)
    if resources is None:
        return {}
    return {
        KUBERNETES_SETTINGS_KEY: KubernetesOrchestratorSettings(
            pod_settings=KubernetesPodSettings(resources=resources.manifest())
        )
    }


def docker_settings(defaults: PipelineDefaults | None = None) -> DockerSettings:
    """The pipeline's image build (`docker` in `k8s/pipeline-defaults.yaml`)."""
    return DockerSettings.model_validate((defaults or read_pipeline_defaults()).docker)


def _settings(parts: PodHardware, hardware: HardwareConfig) -> dict[str, Any]:
    return {
        KUBERNETES_SETTINGS_KEY: KubernetesOrchestratorSettings(
            pod_settings=pod_settings(parts),
            pod_stop_grace_period=hardware.termination_grace_period_seconds,
        )
    }
