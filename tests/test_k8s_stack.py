"""The cluster defaults in k8s/: the stack orchestrator's file as `k8s/setup-stack.sh`
hands it to the ZenML CLI, the pipeline's code-level defaults, and a real ZenML compile on
a stack registered from them, which must give every step the settings the offline preview
(`pipelines.k8s_manifests`) shows."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from zenml.cli.utils import parse_name_and_extra_arguments
from zenml.integrations.kubernetes.flavors import (
    KubernetesOrchestratorConfig,
    KubernetesOrchestratorSettings,
)

from pipelines import k8s_manifests, k8s_stack
from pipelines.k8s_defaults import (
    ORCHESTRATOR_FILE,
    PIPELINE_DEFAULTS_FILE,
    ClusterDefaults,
    PipelineDefaults,
    read_pipeline_defaults,
)
from pipelines.k8s_settings import KUBERNETES_SETTINGS_KEY, docker_settings, stage_settings
from trainer.config import load_run_config, read_config_document
from trainer.stages import Stage, pipeline_plan

REPO = Path(__file__).resolve().parent.parent
K8S_CONFIGS = sorted((REPO / "configs").glob("finetune-k8s*.yaml"))
ORCHESTRATOR = read_config_document(ORCHESTRATOR_FILE)


def _through_the_cli(arguments: list[str]) -> dict[str, str]:
    """What `zenml orchestrator register NAME --flavor=... ARGS` stores: ZenML's own parser."""
    _, parsed = parse_name_and_extra_arguments(["name", *arguments], expand_args=True)
    return parsed


# --- k8s/orchestrator.yaml ---------------------------------------------------------------


def test_the_orchestrator_file_is_a_kubernetes_orchestrator_config() -> None:
    config = k8s_stack.orchestrator_config(ORCHESTRATOR)
    assert config.service_account_name == "zenml-orchestrator"
    assert config.pass_zenml_token_as_secret is True
    # Only its settings fields reach the runs, as ZenML's compiler takes them.
    settings = k8s_stack.default_settings(ORCHESTRATOR)
    assert "pass_zenml_token_as_secret" not in settings.model_dump(exclude_unset=True)
    assert settings.step_pod_service_account_name == "zenml-step"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"service_acount_name": "x"}, "not fields of ZenML's KubernetesOrchestratorConfig"),
        ({"kubernetes_namespace": "other"}, "set by k8s/setup-stack.sh"),
        ({"ttl_seconds_after_finished": -1}, "greater than or equal to 0"),
    ],
)
def test_the_orchestrator_file_is_checked(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        k8s_stack.cli_arguments(document)


def test_the_cli_arguments_give_zenml_exactly_the_file() -> None:
    """JSON for the nested fields, plain strings for the others: ZenML's CLI parser and
    the flavor's config model turn them back into the file's values."""
    parsed = _through_the_cli(k8s_stack.cli_arguments(ORCHESTRATOR))
    assert set(parsed) == set(ORCHESTRATOR)
    assert KubernetesOrchestratorConfig.model_validate(parsed) == k8s_stack.orchestrator_config(
        ORCHESTRATOR
    )
    # A value starting with `@` would be read as a file name by the CLI.
    assert _through_the_cli(k8s_stack.cli_arguments({"job_name_prefix": "@run"})) == {
        "job_name_prefix": "@run"
    }


@pytest.mark.slow
def test_the_module_prints_one_argument_per_line() -> None:
    lines = subprocess.run(
        [sys.executable, "-m", "pipelines.k8s_stack", str(ORCHESTRATOR_FILE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert lines == k8s_stack.cli_arguments(ORCHESTRATOR)


# A `zenml` that records its arguments: describe succeeds once the thing is registered.
ZENML_STUB = r"""#!/usr/bin/env bash
printf '%s\x1f' "$@" >>"$ZENML_STUB_LOG"; printf '\n' >>"$ZENML_STUB_LOG"
if [[ "$2" == describe ]]; then
  grep -q "^$1"$'\x1f'"register"$'\x1f'"$3"$'\x1f' "$ZENML_STUB_LOG" && exit 0
  exit 1
fi
exit 0
"""


@pytest.mark.slow
def test_the_setup_script_registers_and_updates_the_orchestrator_from_the_file(
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "zenml").write_text(ZENML_STUB)
    (bin_dir / "zenml").chmod(0o755)
    log = tmp_path / "zenml.log"
    env = {
        **{k: v for k, v in os.environ.items() if k != "HF_TOKEN"},
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHON": sys.executable,
        "ZENML_STUB_LOG": str(log),
        "KUBE_CONTEXT": "test-context",
        "ARTIFACT_FLAVOR": "gcp",
        "ARTIFACT_PATH": "gs://bucket/zenml",
        "REGISTRY_URI": "registry.example.com/zenml",
    }
    script = REPO / "k8s" / "setup-stack.sh"
    for _ in range(2):  # register, then update
        subprocess.run(
            ["bash", str(script)], env=env, cwd=tmp_path, check=True, capture_output=True
        )
    calls = [line.split("\x1f")[:-1] for line in log.read_text().splitlines()]
    orchestrator = [call for call in calls if call[0] == "orchestrator" and call[1] != "describe"]
    assert [call[1] for call in orchestrator] == ["register", "update"]
    register, update = orchestrator
    assert register[2:4] == ["k8s-gpu-orchestrator", "--flavor=kubernetes"]
    assert update[2] == "k8s-gpu-orchestrator"
    expected = {
        **ORCHESTRATOR,
        "kubernetes_context": "test-context",
        "kubernetes_namespace": "zenml",
    }
    for arguments in (register[4:], update[3:]):
        stored = KubernetesOrchestratorConfig.model_validate(_through_the_cli(arguments))
        assert stored == KubernetesOrchestratorConfig.model_validate(expected)


# --- k8s/pipeline-defaults.yaml ------------------------------------------------------------


def test_the_pipeline_defaults_name_cpu_stages_only() -> None:
    defaults = read_pipeline_defaults()
    assert defaults.step_resources[Stage.EVALUATE].requests == {"cpu": "4", "memory": "16Gi"}
    with pytest.raises(
        ValueError, match=r"train: these stages run on parameters\.config\.hardware"
    ):
        PipelineDefaults.model_validate({"step_resources": {"train": {"requests": {"cpu": 1}}}})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        PipelineDefaults.model_validate({"step_resource": {}})
    assert PipelineDefaults.model_validate(
        {"step_resources": {"promote": {"requests": {"cpu": 2}}}}
    ).step_resources[Stage.PROMOTE].requests == {"cpu": "2"}


def test_cpu_stages_get_the_default_resources_only_in_runs_with_hardware() -> None:
    """A config without `hardware` describes no cluster placement: its steps get no
    Kubernetes settings from code (a local run logs no "settings not used" lines)."""
    local = pipeline_plan(load_run_config(REPO / "configs" / "quickstart.yaml"))
    assert all(stage_settings(local, stage) == {} for stage in Stage)
    cluster = pipeline_plan(load_run_config(REPO / "configs" / "finetune-k8s.yaml"))
    settings = stage_settings(cluster, Stage.EVALUATE)[KUBERNETES_SETTINGS_KEY]
    assert settings.model_dump(exclude_unset=True) == {
        "pod_settings": {
            "resources": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"memory": "16Gi"}}
        }
    }
    # The training stages keep their hardware.
    train = stage_settings(cluster, Stage.TRAIN)[KUBERNETES_SETTINGS_KEY]
    assert train.pod_settings.resources["limits"]["nvidia.com/gpu"] == "1"


def test_a_run_config_overrides_the_defaults_key_by_key(tmp_path: Path) -> None:
    """ZenML's merge: a run config's settings over the stack's and the code's, recursively."""
    document = yaml.safe_load((REPO / "configs" / "finetune-k8s.yaml").read_text())
    document["settings"] = {
        KUBERNETES_SETTINGS_KEY: {"service_account_name": "team-orchestrator"},
    }
    document["steps"]["evaluate"] = {
        "settings": {
            KUBERNETES_SETTINGS_KEY: {"pod_settings": {"resources": {"requests": {"cpu": "8"}}}}
        }
    }
    config = tmp_path / "override.yaml"
    config.write_text(yaml.safe_dump(document))
    run = k8s_manifests.load_run(config)
    orchestrator = k8s_manifests.pipeline_settings(run)
    assert orchestrator.service_account_name == "team-orchestrator"
    assert orchestrator.ttl_seconds_after_finished == 86400  # still the stack's
    evaluate = k8s_manifests.step_settings(run, "evaluate").settings.pod_settings
    assert evaluate.resources == {
        "requests": {"cpu": "8", "memory": "16Gi"},
        "limits": {"memory": "16Gi"},
    }
    assert evaluate.additional_pod_spec_args["security_context"]["runAsUser"] == 10001


def test_the_preview_reads_other_defaults_files(tmp_path: Path) -> None:
    orchestrator = tmp_path / "orchestrator.yaml"
    orchestrator.write_text(yaml.safe_dump({**ORCHESTRATOR, "ttl_seconds_after_finished": 60}))
    defaults = ClusterDefaults.read(orchestrator, PIPELINE_DEFAULTS_FILE)
    run = k8s_manifests.load_run(REPO / "configs" / "finetune-k8s.yaml")
    (job,) = [
        doc
        for doc in k8s_manifests.render(run, defaults=defaults)
        if doc["metadata"]["name"] == "preview-evaluate"
    ]
    assert job["spec"]["ttlSecondsAfterFinished"] == 60


# --- a real ZenML compile on a stack registered from the file --------------------------------


@pytest.fixture
def kubernetes_stack(zenml_client: Any) -> Any:
    """A stack whose Kubernetes orchestrator is registered as setup-stack.sh registers it
    (through the CLI's argument parser), active for the test only. Nothing is submitted:
    compiling needs no cluster."""
    from zenml.enums import StackComponentType

    name = f"k8s-defaults-check-{uuid.uuid4().hex[:8]}"
    parsed = _through_the_cli(["--kubernetes_context=test", *k8s_stack.cli_arguments(ORCHESTRATOR)])
    orchestrator = zenml_client.create_stack_component(
        name=name,
        flavor="kubernetes",
        component_type=StackComponentType.ORCHESTRATOR,
        configuration=parsed,
    )
    stack = zenml_client.create_stack(
        name=name,
        components={
            StackComponentType.ORCHESTRATOR: orchestrator.id,
            StackComponentType.ARTIFACT_STORE: zenml_client.active_stack_model.components[
                StackComponentType.ARTIFACT_STORE
            ][0].id,
        },
    )
    previous = zenml_client.active_stack_model.id
    zenml_client.activate_stack(stack.id)
    try:
        yield stack
    finally:  # the other tests run on the local stack
        zenml_client.activate_stack(previous)


@pytest.mark.slow
def test_a_real_compile_gives_every_step_what_the_preview_shows(
    kubernetes_stack: Any, tmp_path: Path
) -> None:
    from pipelines.finetune import finetune_pipeline

    override = yaml.safe_load(K8S_CONFIGS[-1].read_text())
    override["settings"] = {
        "docker": {
            "parent_image_build_config": {
                "build_options": {"build_args": {"EXTRA_PACKAGES": "gcsfs"}}
            }
        },
        KUBERNETES_SETTINGS_KEY: {"pod_settings": {"labels": {"team": "search"}}},
    }
    override["steps"]["evaluate"] = {
        "settings": {
            KUBERNETES_SETTINGS_KEY: {"pod_settings": {"resources": {"requests": {"cpu": "8"}}}}
        }
    }
    overridden = tmp_path / "override.yaml"
    overridden.write_text(yaml.safe_dump(override))

    def kubernetes(settings: dict[str, Any]) -> dict[str, Any]:
        (value,) = [v for key, v in settings.items() if key.startswith("orchestrator")]
        return KubernetesOrchestratorSettings.model_validate(dict(value)).model_dump()

    for config in [*K8S_CONFIGS, overridden]:
        pipeline = finetune_pipeline.with_options(config_path=str(config))
        pipeline.prepare()
        # What `zenml pipeline run -c` compiles before it submits (private, pinned 0.98).
        snapshot, _, _ = pipeline._compile(config_path=str(config))
        run = k8s_manifests.load_run(config)
        assert kubernetes(snapshot.pipeline_configuration.settings) == (
            k8s_manifests.pipeline_settings(run).model_dump()
        ), config.name
        for step, compiled in snapshot.step_configurations.items():
            preview = k8s_manifests.step_settings(run, step)
            assert kubernetes(compiled.config.settings) == preview.settings.model_dump(), step
            assert compiled.config.retry == preview.retry, step
        docker = snapshot.pipeline_configuration.docker_settings
        expected = docker_settings()
        assert docker.dockerfile == expected.dockerfile == "k8s/Dockerfile"
        build_args = docker.parent_image_build_config.build_options.build_args
        assert build_args == {"EXTRA_PACKAGES": "gcsfs" if config == overridden else ""}
