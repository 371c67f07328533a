"""What the Kubeflow build reads from a ZenML run YAML: each task's resources and retries.

The run YAML is one file for both orchestrators. Its ZenML part (`retry`,
`steps.<name>.retry`, `settings.orchestrator.kubernetes.pod_settings.resources` and the
same under `steps.<name>.settings`) is plain data; this module reads it the way ZenML
merges it, without importing ZenML, over the same base layers a ZenML run on the
project's stack gets (`pipelines.k8s_defaults`). Resources merge key by key, in ZenML's
order: the stack orchestrator's pod resources (`k8s/orchestrator.yaml`), the run's
pipeline-level ones, the pipeline's default for the step (`k8s/pipeline-defaults.yaml`),
the run's own for the step. The GPU step's placement and resources come from
`parameters.config.hardware` only; setting them in the ZenML part as well is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ORCHESTRATOR_KEY = "orchestrator.kubernetes"


@dataclass(frozen=True)
class TaskSettings:
    """CPU/memory requests and limits, and the retry count, of one pipeline task."""

    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)
    retries: int = 0


def _resources(settings: Any) -> dict[str, Any]:
    pod = ((settings or {}).get(ORCHESTRATOR_KEY) or {}).get("pod_settings") or {}
    return pod.get("resources") or {}


def _merged(*layers: dict[str, Any]) -> TaskSettings:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for layer in layers:
        requests.update(layer.get("requests") or {})
        limits.update(layer.get("limits") or {})
    return TaskSettings(requests=requests, limits=limits)


def task_settings(
    document: dict[str, Any],
    step: str,
    *,
    hardware_step: bool,
    stack_resources: dict[str, Any] | None = None,
    default_resources: dict[str, Any] | None = None,
) -> TaskSettings:
    """Resources and retries of `step`: its own values over the pipeline's.

    `hardware_step` marks the task whose resources come from `config.hardware`: it takes
    only its retries from here. `stack_resources` are the stack orchestrator's pod
    resources, `default_resources` the pipeline's default for this step (base layers
    under the run's pipeline-level and step-level values respectively).
    """
    step_document = (document.get("steps") or {}).get(step) or {}
    own = _resources(step_document.get("settings"))
    if hardware_step and own:
        raise ValueError(
            f"steps.{step}.settings.{ORCHESTRATOR_KEY}.pod_settings.resources and "
            "parameters.config.hardware both set the training resources: keep them in "
            "parameters.config.hardware (cpu, memory, memory_limit, gpu_count)"
        )
    pipeline_level = _resources(document.get("settings"))
    retry = step_document.get("retry") or document.get("retry") or {}
    if hardware_step:
        return TaskSettings(retries=int(retry.get("max_retries") or 0))
    resources = _merged(stack_resources or {}, pipeline_level, default_resources or {}, own)
    return TaskSettings(
        requests=resources.requests,
        limits=resources.limits,
        retries=int(retry.get("max_retries") or 0),
    )
