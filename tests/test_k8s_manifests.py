"""Every YAML under k8s/ and every generated manifest against the official schemas.

kubernetes-validate ships the Kubernetes OpenAPI schemas, so this runs offline. Strict
mode rejects unknown fields too (a misspelt `tolerations` would otherwise pass). 1.30
matches the `kubernetes` client 30.x that kfp pins; 1.33 is a current cloud release.
The TrainJob a multi-node run submits is a custom resource: it is checked against the
Kubeflow Trainer CRD the project targets, as in tests/test_trainjob.py. The two settings
files under k8s/ are not Kubernetes objects (tests/test_k8s_stack.py checks them).
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes.client import V1SecurityContext

from pipelines import k8s_manifests
from pipelines.k8s_defaults import ORCHESTRATOR_FILE, PIPELINE_DEFAULTS_FILE
from trainer.cluster import build_train_job, shared_root, to_manifest, train_job_name

REPO = Path(__file__).resolve().parent.parent
K8S_DIR = REPO / "k8s"
K8S_VERSIONS = ("1.30", "1.33")
RUN_CONFIGS = sorted((REPO / "configs").glob("*-k8s*.yaml"))
SETTINGS_FILES = {ORCHESTRATOR_FILE, PIPELINE_DEFAULTS_FILE}
TRAINJOB_CRD = REPO / "tests/data/kubeflow-trainer-v2.3.0/trainer.kubeflow.org_trainjobs.yaml"


def _validate(manifest: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        pytest.fail(f"{manifest['kind']}/{manifest['metadata'].get('name')}: {path}: {error}")


ZENML_SNAKE_CASE_LEFTOVERS = {
    python for python, json_name in V1SecurityContext.attribute_map.items() if python != json_name
}
"""What ZenML 0.98 leaves in a container's security context when `container_security_context`
is set: it merges the setting into `V1SecurityContext.to_dict()`, whose keys are the Python
attribute names (`read_only_root_filesystem`), all null here. The API server's default
field validation (Warn) drops unknown fields with a warning; strict validation rejects them."""


def _containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    spec = manifest["spec"]
    job = spec["jobTemplate"]["spec"] if manifest["kind"] == "CronJob" else spec
    return job["template"]["spec"]["containers"]


def _as_the_api_server_keeps_it(manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` without ZenML's null snake_case security-context keys and its null
    fields, as the API server stores it; fails if a snake_case key carries a value (the
    server would drop that value)."""
    kept = copy.deepcopy(manifest)
    for container in _containers(kept):
        context = container.get("securityContext") or {}
        leftovers = {key: context.pop(key) for key in ZENML_SNAKE_CASE_LEFTOVERS & set(context)}
        lost = {key: value for key, value in leftovers.items() if value is not None}
        assert not lost, f"the API server would drop these values: {lost}"
        for key in [key for key, value in context.items() if value is None]:
            del context[key]  # `capabilities: null`: a null field is an unset one
    return kept


def _k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted(set(K8S_DIR.glob("*.yaml")) - SETTINGS_FILES):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                name = f"{path.name}:{document['kind']}/{document['metadata']['name']}"
                documents.append((name, document))
    return documents


def _rendered() -> list[tuple[str, dict[str, Any]]]:
    manifests = []
    for config in RUN_CONFIGS:
        for manifest in k8s_manifests.render(k8s_manifests.load_run(config)):
            manifests.append((f"{config.stem}:{manifest['metadata']['name']}", manifest))
    return manifests


K8S_DOCUMENTS = _k8s_documents()
RENDERED = _rendered()
# Built-in kinds, for the Kubernetes schemas; custom resources are checked against their CRD.
GENERATED = [(name, m) for name, m in RENDERED if m["apiVersion"] == "batch/v1"]
TRAINJOBS = [(name, m) for name, m in RENDERED if m["kind"] == "TrainJob"]


def test_there_is_something_to_validate() -> None:
    kinds = {document["kind"] for _, document in K8S_DOCUMENTS}
    assert {"Namespace", "ServiceAccount", "Role", "RoleBinding", "Pod"} <= kinds
    assert [config.stem for config in RUN_CONFIGS] == [
        "finetune-k8s-multigpu",
        "finetune-k8s-multinode",
        "finetune-k8s-scheduled",
        "finetune-k8s",
    ]
    assert {manifest["kind"] for _, manifest in GENERATED} == {"Job", "CronJob"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("name", "document"), K8S_DOCUMENTS, ids=[n for n, _ in K8S_DOCUMENTS])
def test_k8s_yaml_is_valid(name: str, document: dict[str, Any], version: str) -> None:
    _validate(document, version)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(("name", "manifest"), GENERATED, ids=[n for n, _ in GENERATED])
def test_generated_manifest_is_valid(name: str, manifest: dict[str, Any], version: str) -> None:
    _validate(_as_the_api_server_keeps_it(manifest), version)


STEP_JOBS = [
    (name, m) for name, m in GENERATED if "zenml.io/step-name" in m["metadata"]["annotations"]
]


@pytest.mark.parametrize(("name", "manifest"), STEP_JOBS, ids=[n for n, _ in STEP_JOBS])
def test_step_pods_run_on_a_read_only_root_with_scratch_emptydirs(
    name: str, manifest: dict[str, Any]
) -> None:
    """Every step container: `readOnlyRootFilesystem: true` (what the API server keeps of
    ZenML's security context) and emptyDirs at /tmp and /app, where the image writes."""
    (container,) = _containers(_as_the_api_server_keeps_it(manifest))
    assert container["securityContext"] == {"privileged": False, "readOnlyRootFilesystem": True}
    assert_scratch_emptydirs(manifest["spec"]["template"]["spec"], container)


def assert_scratch_emptydirs(pod: dict[str, Any], container: dict[str, Any]) -> None:
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    for path in ("/tmp", "/app"):
        assert volumes[mounts[path]]["emptyDir"] == {}, path
    assert len(volumes) == len(pod["volumes"]), "duplicate volume names"


def test_the_api_server_view_still_catches_a_value_in_a_snake_case_key() -> None:
    (_, manifest), *_ = STEP_JOBS
    broken = copy.deepcopy(manifest)
    _containers(broken)[0]["securityContext"]["read_only_root_filesystem"] = True
    with pytest.raises(
        AssertionError, match=r"drop these values: \{'read_only_root_filesystem': True\}"
    ):
        _as_the_api_server_keeps_it(broken)


def test_rbac_matches_the_service_accounts_the_configs_use() -> None:
    names = {d["metadata"]["name"] for _, d in K8S_DOCUMENTS if d["kind"] == "ServiceAccount"}
    for config in RUN_CONFIGS:
        settings = k8s_manifests.pipeline_settings(k8s_manifests.load_run(config))
        assert {settings.service_account_name, settings.step_pod_service_account_name} <= names
    roles = {d["metadata"]["name"]: d for _, d in K8S_DOCUMENTS if d["kind"] == "Role"}
    verbs = {
        (resource, verb)
        for rule in roles["zenml-orchestrator"]["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    # What the orchestrator pod needs to run step Jobs, and nothing cluster-wide or wildcard.
    assert {("jobs", "create"), ("jobs", "get"), ("jobs", "delete"), ("pods", "list")} <= verbs
    assert not any("*" in pair for pair in verbs)


def test_smoke_test_pod_matches_the_training_placement() -> None:
    (pod,) = [d for _, d in K8S_DOCUMENTS if d["kind"] == "Pod"]
    run = k8s_manifests.load_run(REPO / "configs" / "finetune-k8s.yaml")
    train = to_manifest(k8s_manifests.step_job(run, "train"))["spec"]["template"]["spec"]
    assert pod["spec"]["nodeSelector"] == train["nodeSelector"]
    assert pod["spec"]["tolerations"] == train["tolerations"]
    assert pod["spec"]["volumes"] == train["volumes"]


def test_image_runs_as_the_user_the_pods_expect() -> None:
    dockerfile = (K8S_DIR / "Dockerfile").read_text()
    uid = int(re.search(r"^ARG APP_UID=(\d+)$", dockerfile, re.MULTILINE).group(1))
    assert uid > 0
    assert re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)[-1] == "${APP_UID}"
    assert re.search(r"^ARG BASE_IMAGE=nvidia/cuda:\S+-runtime-", dockerfile, re.MULTILINE)
    for config in RUN_CONFIGS:
        settings = k8s_manifests.pipeline_settings(k8s_manifests.load_run(config))
        for pod_settings in (settings.pod_settings, settings.orchestrator_pod_settings):
            context = pod_settings.additional_pod_spec_args["security_context"]
            assert context["runAsUser"] == uid
            assert context["runAsNonRoot"] is True


def test_setup_script_is_valid_bash() -> None:
    script = K8S_DIR / "setup-stack.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert script.stat().st_mode & 0o111, "setup-stack.sh must be executable"


@pytest.fixture(scope="module")
def trainjob_schema() -> dict[str, Any]:
    (version,) = yaml.safe_load(TRAINJOB_CRD.read_text())["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def test_preview_shows_the_trainjob_of_a_multi_node_run(trainjob_schema: dict[str, Any]) -> None:
    """Right after the train Job: the TrainJob that step submits, valid for the Kubeflow
    Trainer CRD, built, named and placed as the step would (`build_train_job`)."""
    assert [name.split(":")[0] for name, _ in TRAINJOBS] == ["finetune-k8s-multinode"]
    run = k8s_manifests.load_run(REPO / "configs" / "finetune-k8s-multinode.yaml")
    documents = k8s_manifests.render(run)
    kinds = [(d["kind"], d["metadata"].get("labels", {}).get("step_name")) for d in documents]
    train = kinds.index(("Job", "train"))
    assert kinds[train + 1] == ("TrainJob", None)
    job = documents[train + 1]
    jsonschema.validate(job, trainjob_schema)

    config = k8s_manifests.run_config(run)
    name = train_job_name(config.output.name, "00000000-0000-0000-0000-000000000000")
    job_uri = f"{shared_root(config, k8s_manifests.PREVIEW_ARTIFACT_STORE)}/trainjobs/{name}"
    assert (
        job
        == build_train_job(
            config,
            name=name,
            namespace=config.distributed.namespace,
            image=k8s_manifests.PREVIEW_IMAGE,
            job_uri=job_uri,
        ).to_dict()
    )
    assert job["metadata"] == {"name": "bge-base-nq-nli-00000000", "namespace": "zenml"}
    patch = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    pod = patch["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    (node,) = pod["containers"]
    assert node["securityContext"] == {"readOnlyRootFilesystem": True}
    assert_scratch_emptydirs(pod, node)
    trainer = job["spec"]["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 4)
    assert trainer["image"] == k8s_manifests.PREVIEW_IMAGE
    assert trainer["command"][-2:] == ["--job", job_uri]


def test_the_trainjob_schema_check_catches_a_broken_preview(
    trainjob_schema: dict[str, Any],
) -> None:
    ((_, job),) = TRAINJOBS
    broken = {
        **job,
        "spec": {**job["spec"], "trainer": {**job["spec"]["trainer"], "numNodes": "2"}},
    }
    with pytest.raises(jsonschema.ValidationError, match="'2' is not of type 'integer'"):
        jsonschema.validate(broken, trainjob_schema)
