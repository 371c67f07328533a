"""Preview, offline, the Jobs and CronJob ZenML's Kubernetes orchestrator submits for a run.

    python -m pipelines.k8s_manifests configs/finetune-k8s.yaml [--image IMAGE] > preview.yaml
    kubectl apply --dry-run=server --validate=warn -n zenml -f preview.yaml   # optional: ask the cluster

(`--validate=warn`: ZenML 0.98 puts null snake_case keys into the step containers'
security context, which the API server drops with a warning; k8s/README.md "Security".)

Submitting to a Kubernetes stack needs a ZenML server, a registry and a cluster; this
needs none of them. It resolves a run config the way ZenML 0.98 compiles one on a stack
whose orchestrator is configured from `k8s/orchestrator.yaml` (`k8s/setup-stack.sh`):
pipeline settings are the orchestrator's settings fields with the YAML's pipeline
settings merged over them; a step's settings are the code's (`config.hardware`, the CPU
steps' resources of `k8s/pipeline-defaults.yaml`) with the YAML's step settings merged
over them, and those merge over the pipeline settings; every merge is recursive. It
calls the builders of `zenml.integrations.kubernetes.manifest_utils` with the arguments
the orchestrator passes them:

- step Jobs as in `kubernetes_orchestrator_entrypoint.py::start_step_job`;
- the orchestrator Job as in `KubernetesOrchestrator._prepare_job_manifest`, wrapped into
  a CronJob when the config has `schedule.cron_expression`, as in
  `KubernetesOrchestrator._submit_orchestrator_job`;
- for a run on several nodes (`hardware.nodes` > 1), the Kubeflow Trainer TrainJob the
  train step submits (`trainer.cluster.build_train_job`), right after the train Job.

Values only a live run knows (snapshot and run ids, image digest, user id, owner
references of the orchestrator pod, ZenML server env vars, the artifact store the
TrainJob's files go to) are placeholders.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import V1CronJob, V1Job
from zenml.config.pipeline_configurations import PipelineConfiguration
from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
from zenml.config.retry_config import StepRetryConfig
from zenml.config.step_configurations import StepConfiguration, StepConfigurationUpdate
from zenml.constants import DYNAMIC_PIPELINE_RUN_FAILED_EXIT_CODE
from zenml.entrypoints.step_entrypoint_configuration import StepEntrypointConfiguration
from zenml.integrations.kubernetes import kube_utils
from zenml.integrations.kubernetes.constants import (
    ORCHESTRATOR_ANNOTATION_KEY,
    STEP_NAME_ANNOTATION_KEY,
    WORKSPACE_USER_ID_ANNOTATION_KEY,
)
from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings
from zenml.integrations.kubernetes.manifest_utils import (
    build_cron_job_manifest,
    build_job_manifest,
    build_pod_manifest,
    job_template_manifest_from_job,
    pod_template_manifest_from_pod,
)
from zenml.integrations.kubernetes.orchestrators.kubernetes_orchestrator_entrypoint_configuration import (
    KubernetesOrchestratorEntrypointConfiguration,
)
from zenml.utils import pydantic_utils

from pipelines.k8s_defaults import ORCHESTRATOR_FILE, PIPELINE_DEFAULTS_FILE, ClusterDefaults
from pipelines.k8s_settings import KUBERNETES_SETTINGS_KEY, stage_settings
from pipelines.k8s_stack import default_settings, orchestrator_config
from trainer.cluster import (
    build_train_job,
    shared_root,
    to_manifest,
    train_job_image,
    train_job_namespace,
)
from trainer.config import RunConfig, read_config_document, reconcile_model_facts
from trainer.results import RunRef
from trainer.stages import Stage, pipeline_plan, train_job_place

PIPELINE_NAME = "finetune_pipeline"
STEP_NAMES = tuple(stage.value for stage in Stage)
"""Every step `pipelines.finetune.finetune_pipeline` can have, in run order; which of
them a run has is `trainer.stages.pipeline_plan`'s decision."""
PREVIEW_IMAGE = "registry.example.com/st-finetune:preview"
PREVIEW_ARTIFACT_STORE = "s3://artifact-store.example/zenml"
"""Stands for the stack's artifact store, where a TrainJob's files go by default."""
_PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"

# The default pod failure policies of ZenML 0.98 (entrypoint / orchestrator job): a
# failing `main` container counts towards backoffLimit, a disrupted pod (preemption,
# node drain) does not.
_STEP_POD_FAILURE_POLICY: dict[str, Any] = {
    "rules": [
        {
            "action": "Count",
            "onExitCodes": {"containerName": "main", "operator": "NotIn", "values": [0]},
        },
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
    ]
}
_ORCHESTRATOR_POD_FAILURE_POLICY: dict[str, Any] = {
    "rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {
            "action": "FailJob",
            "onExitCodes": {
                "containerName": "main",
                "operator": "In",
                "values": [DYNAMIC_PIPELINE_RUN_FAILED_EXIT_CODE],
            },
        },
        {
            "action": "Count",
            "onExitCodes": {"containerName": "main", "operator": "NotIn", "values": [0]},
        },
    ]
}


@dataclass(frozen=True)
class StepSettings:
    """What the orchestrator reads for one step: its Kubernetes settings and retries."""

    name: str
    settings: KubernetesOrchestratorSettings
    retry: StepRetryConfig | None


def load_run(path: str | Path) -> PipelineRunConfiguration:
    """Parse a ZenML run config with ZenML's own model (unknown keys are errors)."""
    return PipelineRunConfiguration.model_validate(read_config_document(path))


def run_config(run: PipelineRunConfiguration) -> RunConfig:
    """The `parameters.config` block as the steps receive it: with the model name and
    license of the `model:` entry (`pipelines.finetune` reconciles them the same way)."""
    config = RunConfig.model_validate((run.parameters or {})["config"])
    model = run.model
    return reconcile_model_facts(
        config,
        model_name=model.name if model else None,
        license=model.license if model else None,
    )


def _pipeline_configuration(
    run: PipelineRunConfiguration, defaults: ClusterDefaults
) -> PipelineConfiguration:
    return PipelineConfiguration(
        name=PIPELINE_NAME,
        settings={
            **(run.settings or {}),
            # Only the fields set, as ZenML's `Pipeline.configure` keeps them.
            KUBERNETES_SETTINGS_KEY: pipeline_settings(run, defaults).model_dump(
                exclude_unset=True
            ),
        },
        retry=run.retry,
        secrets=run.secrets or [],
    )


def _kubernetes(settings: dict[str, Any] | None) -> KubernetesOrchestratorSettings:
    # `StackComponent.get_settings`: the settings object's fields, validated by the flavor.
    raw = (settings or {}).get(KUBERNETES_SETTINGS_KEY)
    return KubernetesOrchestratorSettings.model_validate(dict(raw) if raw else {})


def pipeline_settings(
    run: PipelineRunConfiguration, defaults: ClusterDefaults | None = None
) -> KubernetesOrchestratorSettings:
    """Pipeline-level orchestrator settings (the orchestrator Job and the CronJob, and the
    base of every step's): the stack orchestrator's (`k8s/orchestrator.yaml`, or
    `defaults`) with the run config's merged over them (`Compiler.
    _apply_stack_default_settings`)."""
    defaults = defaults or ClusterDefaults.read()
    stack = default_settings(defaults.orchestrator)
    own = (run.settings or {}).get(KUBERNETES_SETTINGS_KEY)
    if not own:
        return stack
    return pydantic_utils.update_model(stack, update=_kubernetes(run.settings))


def step_settings(
    run: PipelineRunConfiguration, step: str, defaults: ClusterDefaults | None = None
) -> StepSettings:
    """Effective settings of `step`, merged in ZenML's compile order."""
    defaults = defaults or ClusterDefaults.read()
    code_settings = stage_settings(pipeline_plan(run_config(run)), Stage(step), defaults.pipeline)
    # As ZenML's compiler keeps them: only the fields the code set (`model_fields_set`).
    update = StepConfigurationUpdate(
        settings={key: value.model_dump(exclude_unset=True) for key, value in code_settings.items()}
    )
    if step in (run.steps or {}):
        update = pydantic_utils.update_model(update, update=run.steps[step], recursive=True)
    configuration = StepConfiguration(
        name=step, settings=update.settings, retry=update.retry
    ).apply_pipeline_configuration(
        pipeline_configuration=_pipeline_configuration(run, defaults), exclude_hook_sources=False
    )
    return StepSettings(
        name=step, settings=_kubernetes(configuration.settings), retry=configuration.retry
    )


def _with_type(job: V1Job | V1CronJob, kind: str) -> V1Job | V1CronJob:
    # The orchestrator posts Jobs to the batch/v1 endpoint without apiVersion/kind (the
    # API server fills them in); a standalone manifest needs them.
    job.api_version, job.kind = "batch/v1", kind
    return job


def _labels(step: str | None = None, *, run: bool = True) -> dict[str, str]:
    # A scheduled orchestrator Job has no run yet, hence no run labels.
    labels = {
        "project_id": _PLACEHOLDER_ID,
        "pipeline": kube_utils.sanitize_label_value(PIPELINE_NAME),
    }
    if run:
        labels.update(run_id=_PLACEHOLDER_ID, run_name="preview")
    if step:
        labels["step_name"] = kube_utils.sanitize_label_value(step)
    return labels


def step_job(
    run: PipelineRunConfiguration,
    step: str,
    image: str = PREVIEW_IMAGE,
    defaults: ClusterDefaults | None = None,
) -> V1Job:
    """The Job the orchestrator pod creates for `step` (`start_step_job`)."""
    resolved = step_settings(run, step, defaults)
    settings = resolved.settings
    pod_settings = kube_utils.apply_default_resource_requests(
        memory="400Mi", pod_settings=copy.deepcopy(settings.pod_settings)
    )
    pod = build_pod_manifest(
        pod_name=None,
        image_name=image,
        command=StepEntrypointConfiguration.get_entrypoint_command(),
        args=StepEntrypointConfiguration.get_entrypoint_arguments(
            step_name=step, snapshot_id=_PLACEHOLDER_ID
        ),
        env={},
        privileged=settings.privileged,
        pod_settings=pod_settings,
        service_account_name=settings.step_pod_service_account_name
        or settings.service_account_name,
        mount_local_stores=False,
        termination_grace_period_seconds=settings.pod_stop_grace_period,
        labels=_labels(step),
        annotations={WORKSPACE_USER_ID_ANNOTATION_KEY: _PLACEHOLDER_ID},
    )
    retries = resolved.retry.max_retries if resolved.retry else 0
    job = build_job_manifest(
        job_name=kube_utils.sanitize_label(f"{settings.job_name_prefix or ''}-preview-{step}"),
        pod_template=pod_template_manifest_from_pod(pod),
        backoff_limit=retries + settings.backoff_limit_margin,
        ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
        active_deadline_seconds=settings.active_deadline_seconds,
        pod_failure_policy=settings.pod_failure_policy or _STEP_POD_FAILURE_POLICY,
        labels=_labels(step),
        annotations={
            STEP_NAME_ANNOTATION_KEY: step,
            WORKSPACE_USER_ID_ANNOTATION_KEY: _PLACEHOLDER_ID,
        },
    )
    return _with_type(job, "Job")


def orchestrator_job(
    run: PipelineRunConfiguration,
    image: str = PREVIEW_IMAGE,
    defaults: ClusterDefaults | None = None,
) -> V1Job:
    """The Job that runs the orchestrator pod, which then starts the step Jobs."""
    settings = pipeline_settings(run, defaults)
    pod_settings = kube_utils.apply_default_resource_requests(
        memory="400Mi",
        cpu="100m",
        pod_settings=copy.deepcopy(settings.orchestrator_pod_settings),
    )
    pod = build_pod_manifest(
        pod_name=None,
        image_name=image,
        command=KubernetesOrchestratorEntrypointConfiguration.get_entrypoint_command(),
        args=KubernetesOrchestratorEntrypointConfiguration.get_entrypoint_arguments(
            snapshot_id=_PLACEHOLDER_ID,
            run_id=None if run.schedule else _PLACEHOLDER_ID,
        ),
        privileged=False,
        pod_settings=pod_settings,
        # Without a name ZenML creates `zenml-service-account` bound to `edit`.
        service_account_name=settings.service_account_name or "zenml-service-account",
        env={},
        labels=_labels(run=run.schedule is None),
        annotations={WORKSPACE_USER_ID_ANNOTATION_KEY: _PLACEHOLDER_ID},
        mount_local_stores=False,
        termination_grace_period_seconds=settings.pod_stop_grace_period,
    )
    job = build_job_manifest(
        job_name=kube_utils.sanitize_label(
            f"{settings.job_name_prefix or ''}-preview-{PIPELINE_NAME}"
        ),
        pod_template=pod_template_manifest_from_pod(pod),
        backoff_limit=settings.orchestrator_job_backoff_limit,
        ttl_seconds_after_finished=settings.ttl_seconds_after_finished,
        active_deadline_seconds=settings.active_deadline_seconds,
        pod_failure_policy=settings.pod_failure_policy or _ORCHESTRATOR_POD_FAILURE_POLICY,
        labels=_labels(run=run.schedule is None),
        annotations={
            ORCHESTRATOR_ANNOTATION_KEY: _PLACEHOLDER_ID,
            WORKSPACE_USER_ID_ANNOTATION_KEY: _PLACEHOLDER_ID,
        },
    )
    return _with_type(job, "Job")


def cron_job(
    run: PipelineRunConfiguration,
    image: str = PREVIEW_IMAGE,
    defaults: ClusterDefaults | None = None,
) -> V1CronJob:
    """The CronJob a scheduled run becomes: the orchestrator Job on a cron schedule."""
    if run.schedule is None or not run.schedule.cron_expression:
        raise ValueError("the Kubernetes orchestrator schedules only via schedule.cron_expression")
    defaults = defaults or ClusterDefaults.read()
    settings = pipeline_settings(run, defaults)
    cron = build_cron_job_manifest(
        cron_expression=run.schedule.cron_expression,
        job_template=job_template_manifest_from_job(orchestrator_job(run, image, defaults)),
        successful_jobs_history_limit=settings.successful_jobs_history_limit,
        failed_jobs_history_limit=settings.failed_jobs_history_limit,
        concurrency_policy=settings.concurrency_policy,
        starting_deadline_seconds=settings.starting_deadline_seconds,
    )
    return _with_type(cron, "CronJob")


def train_job(
    run: PipelineRunConfiguration,
    image: str = PREVIEW_IMAGE,
    defaults: ClusterDefaults | None = None,
    artifact_store: str = PREVIEW_ARTIFACT_STORE,
) -> dict[str, Any]:
    """The TrainJob the train step of a multi-node run submits: built, named and placed
    as the step does it (`trainer.stages.train_stage`, `steps/_cluster.py`), with the
    orchestrator's namespace and the step's image."""
    config = run_config(run)
    if not config.trains_on_nodes:
        raise ValueError("only a run on several nodes (hardware.nodes > 1) submits a TrainJob")
    defaults = defaults or ClusterDefaults.read()
    orchestrator = orchestrator_config(defaults.orchestrator)
    name, job_uri = train_job_place(
        config,
        shared_root(config, artifact_store),
        RunRef(orchestrator="zenml", name="preview", id=_PLACEHOLDER_ID, pipeline=PIPELINE_NAME),
    )
    job = build_train_job(
        config,
        name=name,
        namespace=train_job_namespace(config, orchestrator.kubernetes_namespace),
        image=train_job_image(config, image),
        job_uri=job_uri,
        hub_token=pipeline_plan(config)[Stage.TRAIN].hub_token,
    )
    return job.to_dict()


def render(
    run: PipelineRunConfiguration,
    image: str = PREVIEW_IMAGE,
    defaults: ClusterDefaults | None = None,
    artifact_store: str = PREVIEW_ARTIFACT_STORE,
) -> list[dict[str, Any]]:
    """Every object of one run as plain manifests: the orchestrator Job (or CronJob),
    then one Job per step, and after the train Job the TrainJob it submits, if any."""
    defaults = defaults or ClusterDefaults.read()
    config = run_config(run)
    top = cron_job(run, image, defaults) if run.schedule else orchestrator_job(run, image, defaults)
    manifests = [to_manifest(top)]
    for step in pipeline_plan(config).names():
        manifests.append(to_manifest(step_job(run, step, image, defaults)))
        if step == Stage.TRAIN and config.trains_on_nodes:
            manifests.append(train_job(run, image, defaults, artifact_store))
    return manifests


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="ZenML run config, e.g. configs/finetune-k8s.yaml")
    parser.add_argument("--image", default=PREVIEW_IMAGE, help="image name to put in the pods")
    parser.add_argument(
        "--orchestrator",
        default=str(ORCHESTRATOR_FILE),
        help="the stack orchestrator's configuration (default: %(default)s)",
    )
    parser.add_argument(
        "--pipeline-defaults",
        default=str(PIPELINE_DEFAULTS_FILE),
        help="the pipeline's code-level defaults (default: %(default)s)",
    )
    parser.add_argument(
        "--artifact-store",
        default=PREVIEW_ARTIFACT_STORE,
        help="the stack's artifact store (where a TrainJob's files go by default)",
    )
    args = parser.parse_args(argv)
    defaults = ClusterDefaults.read(args.orchestrator, args.pipeline_defaults)
    manifests = render(load_run(args.config), args.image, defaults, args.artifact_store)
    yaml.safe_dump_all(manifests, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
