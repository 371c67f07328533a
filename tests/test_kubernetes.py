"""Hardware spec -> pod settings, and the Jobs/CronJob ZenML builds from our run configs.

The manifests come from ZenML's own builders (`zenml.integrations.kubernetes.
manifest_utils`), called with the arguments the Kubernetes orchestrator passes them
(`pipelines/k8s_manifests.py` mirrors that; its settings merge was checked against a
real ZenML compile of the pipeline on a Kubernetes stack). No cluster, no ZenML store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from zenml.integrations.kubernetes.manifest_utils import build_pod_manifest

from pipelines import k8s_manifests
from pipelines.k8s_defaults import ORCHESTRATOR_FILE, PIPELINE_DEFAULTS_FILE, read_pipeline_defaults
from pipelines.k8s_settings import KUBERNETES_SETTINGS_KEY, kubernetes_settings
from trainer.cluster import pods as k8s
from trainer.config import HardwareConfig, Toleration
from trainer.stages import Stage

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
BASE = CONFIGS / "finetune-k8s.yaml"
SCHEDULED = CONFIGS / "finetune-k8s-scheduled.yaml"
# The stages the plan may put on the training hardware (mining and search only when asked).
HARDWARE_STAGES = frozenset(
    {Stage.MINE.value, Stage.TEACHER.value, Stage.SEARCH.value, Stage.TRAIN.value}
)
CPU_STEPS = [step for step in k8s_manifests.STEP_NAMES if step not in HARDWARE_STAGES]
GPU = "nvidia.com/gpu"


def _pod_spec(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def _job(config: Path, step: str) -> dict[str, Any]:
    return k8s.to_manifest(k8s_manifests.step_job(k8s_manifests.load_run(config), step))


# --- trainer/cluster/pods.py: pure builders ----------------------------------------------


def test_builders_translate_every_hardware_field() -> None:
    spec = HardwareConfig(
        gpu_count=2,
        accelerator_label="cloud.google.com/gke-accelerator",
        accelerator="nvidia-h100-80gb",
        node_selector={"pool": "train"},
        tolerations=[Toleration(key="sku", operator="Equal", value="gpu")],
        cpu="16",
        memory="64Gi",
        cpu_limit="32",
        memory_limit="96Gi",
        shm_size="16Gi",
    )
    parts = k8s.to_manifest(k8s.pod_hardware(spec).__dict__)
    assert parts == {
        "node_selector": {"pool": "train", "cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
        "tolerations": [
            {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
        ],
        "resources": {
            "requests": {"cpu": "16", "memory": "64Gi"},
            "limits": {GPU: "2", "cpu": "32", "memory": "96Gi"},
        },
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}],
        "volume_mounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }


def test_cpu_only_spec_has_no_gpu_and_no_shm() -> None:
    spec = HardwareConfig(gpu_count=0, tolerations=[], shm_size=None, cpu="4")
    parts = k8s.pod_hardware(spec)
    assert parts.resources.limits is None
    assert parts.resources.requests == {"cpu": "4"}
    assert not (parts.node_selector or parts.tolerations or parts.volumes or parts.volume_mounts)


def test_kubernetes_settings_is_empty_without_hardware() -> None:
    assert kubernetes_settings(None) == {}


def test_settings_go_through_zenml_pod_builder() -> None:
    """`kubernetes_settings` as ZenML's `build_pod_manifest` applies it to a step pod."""
    spec = HardwareConfig(accelerator_label="acc", accelerator="l4", memory="8Gi")
    settings = kubernetes_settings(spec)[KUBERNETES_SETTINGS_KEY]
    pod = k8s.to_manifest(
        build_pod_manifest(
            pod_name=None,
            image_name="image",
            command=["python"],
            args=[],
            privileged=False,
            pod_settings=settings.pod_settings,
        )
    )
    container = pod["spec"]["containers"][0]
    assert pod["spec"]["nodeSelector"] == {"acc": "l4"}
    assert pod["spec"]["tolerations"] == [
        {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert container["resources"] == {"limits": {GPU: "1"}, "requests": {"memory": "8Gi"}}
    assert container["volumeMounts"] == [
        {"name": "dshm", "mountPath": "/dev/shm"},
        # The read-only root's scratch: a step's volume list replaces the orchestrator's.
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "app", "mountPath": "/app"},
    ]


# --- configs/finetune-k8s*.yaml -> step Jobs -------------------------------------------


@pytest.mark.parametrize("config", [BASE, SCHEDULED], ids=lambda path: path.stem)
def test_training_pod_lands_on_a_gpu_node(config: Path) -> None:
    hardware = k8s_manifests.run_config(k8s_manifests.load_run(config)).hardware
    assert hardware is not None
    pod = _pod_spec(_job(config, "train"))
    container = pod["containers"][0]
    assert pod["nodeSelector"] == {hardware.accelerator_label: hardware.accelerator}
    assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert container["resources"]["limits"][GPU] == str(hardware.gpu_count)
    assert container["resources"]["requests"] == {"cpu": hardware.cpu, "memory": hardware.memory}
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": hardware.shm_size}} in (
        pod["volumes"]
    )
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    # Pipeline-level pod settings survive the merge with the step's hardware settings.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == "zenml-step"
    # SIGTERM -> checkpoint -> exit must fit before Kubernetes sends SIGKILL.
    assert pod["terminationGracePeriodSeconds"] == hardware.termination_grace_period_seconds


@pytest.mark.parametrize("step", CPU_STEPS)
def test_cpu_steps_get_no_gpu_placement(step: str) -> None:
    pod = _pod_spec(_job(BASE, step))
    container = pod["containers"][0]
    assert "nodeSelector" not in pod
    assert "tolerations" not in pod
    assert GPU not in container["resources"].get("limits", {})
    # Only the read-only root's scratch emptyDirs (k8s/orchestrator.yaml), no /dev/shm.
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}, {"name": "app", "emptyDir": {}}]
    assert [mount["mountPath"] for mount in container["volumeMounts"]] == ["/tmp", "/app"]
    assert pod["terminationGracePeriodSeconds"] == 30  # ZenML's default, like Kubernetes'
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsUser"] == 10001


def test_retries_become_the_jobs_backoff_limit() -> None:
    document = yaml.safe_load(BASE.read_text())
    default_retries = document["retry"]["max_retries"]
    train_retries = document["steps"]["train"]["retry"]["max_retries"]
    assert train_retries != default_retries
    for step in k8s_manifests.STEP_NAMES:
        expected = train_retries if step == "train" else default_retries
        assert _job(BASE, step)["spec"]["backoffLimit"] == expected, step


def test_a_search_runs_on_the_training_hardware() -> None:
    hardware = k8s_manifests.run_config(k8s_manifests.load_run(BASE)).hardware
    pod = _pod_spec(_job(BASE, "hyperparameter_search"))
    assert pod["nodeSelector"] == {hardware.accelerator_label: hardware.accelerator}
    assert pod["containers"][0]["resources"]["limits"][GPU] == str(hardware.gpu_count)


def test_preemption_does_not_use_up_retries() -> None:
    rules = _job(BASE, "train")["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert rules[1]["action"] == "Count"


# --- schedule -> CronJob -----------------------------------------------------------------


def test_schedule_becomes_a_cronjob_that_never_overlaps() -> None:
    run = k8s_manifests.load_run(SCHEDULED)
    cron = k8s.to_manifest(k8s_manifests.cron_job(run))
    assert cron["kind"] == "CronJob"
    assert cron["spec"]["schedule"] == run.schedule.cron_expression == "0 3 * * 1"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    orchestrator_pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert orchestrator_pod["serviceAccountName"] == "zenml-orchestrator"
    assert "nodeSelector" not in orchestrator_pod
    assert "--run_id" not in orchestrator_pod["containers"][0]["args"]


def test_unscheduled_config_is_one_orchestrator_job() -> None:
    run = k8s_manifests.load_run(BASE)
    assert run.schedule is None
    documents = k8s_manifests.render(run)
    names = [doc["metadata"]["labels"].get("step_name") for doc in documents]
    # No search, hard negatives, teacher or export: no optional step gets a Job.
    optional = {"hyperparameter_search", "mine_hard_negatives", "teacher_targets", "export"}
    assert names[1:] == [step for step in k8s_manifests.STEP_NAMES if step not in optional]
    assert [doc["kind"] for doc in documents] == ["Job"] * len(names)
    with pytest.raises(ValueError, match="cron_expression"):
        k8s_manifests.cron_job(run)


def _settings_facts(path: Path) -> set[tuple[str, str, str]]:
    """(scope, key path, value) of every ZenML setting `path` sets, in the run config's
    terms: scope "*" for the pipeline level (which every step inherits), else the step.
    The orchestrator file's keys are `orchestrator.kubernetes` settings of every run;
    the pipeline defaults' `docker` is `settings.docker`, their `step_resources.<step>`
    is `steps.<step>.settings.orchestrator.kubernetes.pod_settings.resources`."""
    document = yaml.safe_load(path.read_text())
    if path == ORCHESTRATOR_FILE:
        scoped = [("*", {KUBERNETES_SETTINGS_KEY: document})]
    elif path == PIPELINE_DEFAULTS_FILE:
        scoped = [("*", {"docker": document.get("docker") or {}})] + [
            (step, {KUBERNETES_SETTINGS_KEY: {"pod_settings": {"resources": resources}}})
            for step, resources in (document.get("step_resources") or {}).items()
        ]
    else:
        scoped = [("*", document.get("settings") or {})] + [
            (step, (entry or {}).get("settings") or {})
            for step, entry in (document.get("steps") or {}).items()
        ]
    facts = set()

    def walk(scope: str, prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(scope, f"{prefix}.{key}" if prefix else str(key), item)
        else:
            facts.add((scope, prefix, yaml.safe_dump(value)))

    for scope, settings in scoped:
        walk(scope, "", settings)
    return facts


SETTINGS_SOURCES = [ORCHESTRATOR_FILE, PIPELINE_DEFAULTS_FILE, *sorted(CONFIGS.glob("*.yaml"))]


def _homes(facts: dict[Path, set[tuple[str, str, str]]], scope: str, key: str) -> list[str]:
    return [path.name for path, found in facts.items() if any(f[:2] == (scope, key) for f in found)]


def test_each_cluster_setting_is_said_in_one_file() -> None:
    """The run configs say only what differs: no setting (same key and value, for the
    same step, or for every step) is repeated across the stack orchestrator's file, the
    pipeline's defaults and the run configs; the cluster-wide facts each have one home.
    (Retries, model and data stay with each run config: they are the run's own choices.)"""
    facts = {path: _settings_facts(path) for path in SETTINGS_SOURCES}
    owner: dict[tuple[str, str, str], Path] = {}
    for path, found in facts.items():
        for scope, key, value in found:
            overlapping = set(k8s_manifests.STEP_NAMES) if scope == "*" else {scope}
            for other in {"*", *overlapping}:
                earlier = owner.get((other, key, value))
                assert earlier is None, f"{key}: {value.strip()} in {earlier.name} and {path.name}"
        owner.update(dict.fromkeys(found, path))

    k8s = KUBERNETES_SETTINGS_KEY
    homes = {
        f"{k8s}.service_account_name": ORCHESTRATOR_FILE,
        f"{k8s}.step_pod_service_account_name": ORCHESTRATOR_FILE,
        f"{k8s}.ttl_seconds_after_finished": ORCHESTRATOR_FILE,
        f"{k8s}.pod_failure_policy.rules": ORCHESTRATOR_FILE,
        f"{k8s}.pod_settings.additional_pod_spec_args.security_context.runAsUser": ORCHESTRATOR_FILE,
        f"{k8s}.orchestrator_pod_settings.resources.requests.cpu": ORCHESTRATOR_FILE,
        "docker.dockerfile": PIPELINE_DEFAULTS_FILE,
        "docker.parent_image_build_config.build_options.build_args.EXTRA_PACKAGES": (
            PIPELINE_DEFAULTS_FILE
        ),
    }
    for key, home in homes.items():
        assert _homes(facts, "*", key) == [home.name], key
    for step in CPU_STEPS:
        key = f"{k8s}.pod_settings.resources.requests.cpu"
        assert _homes(facts, step, key) == [PIPELINE_DEFAULTS_FILE.name], step


def test_preview_knows_the_pipelines_steps() -> None:
    """STEP_NAMES mirrors pipelines/finetune.py; a new step must get its CPU resources."""
    from zenml.steps import BaseStep

    from pipelines import finetune

    steps = {obj.name for obj in vars(finetune).values() if isinstance(obj, BaseStep)}
    assert steps == set(k8s_manifests.STEP_NAMES)
    assert steps >= HARDWARE_STAGES
    configured = {stage.value for stage in read_pipeline_defaults().step_resources} | set(
        yaml.safe_load(BASE.read_text())["steps"]
    )
    assert set(CPU_STEPS) <= configured <= steps


# --- several GPUs, several nodes ------------------------------------------------------

MULTIGPU = BASE.parent / "finetune-k8s-multigpu.yaml"
MULTINODE = BASE.parent / "finetune-k8s-multinode.yaml"


def test_a_multi_gpu_training_pod_gets_all_its_gpus() -> None:
    config = k8s_manifests.run_config(k8s_manifests.load_run(MULTIGPU))
    assert config.hardware.gpu_count == 4 and config.distributed.nproc_per_node == "auto"
    pod = _pod_spec(_job(MULTIGPU, "train"))
    assert pod["containers"][0]["resources"]["limits"][GPU] == "4"


def test_a_multi_node_train_step_only_submits_its_trainjob() -> None:
    """The nodes get the GPUs (through the TrainJob); the step's own pod gets none, and
    runs as the one service account allowed to create TrainJobs."""
    pod = _pod_spec(_job(MULTINODE, "train"))
    container = pod["containers"][0]
    assert GPU not in container["resources"].get("limits", {})
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "2Gi"}
    assert pod["serviceAccountName"] == "zenml-trainjob"
    # The other steps keep the API-less identity.
    assert _pod_spec(_job(MULTINODE, "evaluate"))["serviceAccountName"] == "zenml-step"
