"""Training across nodes: the TrainJob a config becomes, validated against the Kubeflow
Trainer v2.3.0 CRD, and the submit / follow / continue loop against a loopback
Kubernetes API whose "cluster" runs the nodes here (tests/k8s_server.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.conftest import REPO_ROOT, pairs_dataset, tiny_run_config, write_jsonl
from tests.k8s_server import FakeCluster, fake_kubernetes, node_log
from trainer.cluster import (
    Cluster,
    TrainJobFailed,
    build_train_job,
    shared_root,
    submit,
    train_job_name,
    train_on_nodes,
    wait,
)
from trainer.config import DistributedConfig, RunConfig
from trainer.stages import load_stage

CRD = REPO_ROOT / "tests/data/kubeflow-trainer-v2.3.0/trainer.kubeflow.org_trainjobs.yaml"
MULTINODE = REPO_ROOT / "configs/finetune-k8s-multinode.yaml"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    (version,) = yaml.safe_load(CRD.read_text())["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    return version["schema"]["openAPIV3Schema"]


def multinode_config(**distributed: Any) -> RunConfig:
    from trainer.config import load_run_config

    config = load_run_config(MULTINODE)
    if distributed:
        spec = {**config.distributed.model_dump(), **distributed}
        config = config.model_copy(update={"distributed": DistributedConfig.model_validate(spec)})
    return config


def test_two_nodes_of_four_gpus_become_a_valid_trainjob(schema: dict[str, Any]) -> None:
    config = multinode_config()
    hardware = config.hardware
    assert (hardware.nodes, hardware.gpu_count) == (2, 4)
    job = build_train_job(
        config,
        name="bge-base-nq-nli-0d5e4f7a",
        namespace="zenml",
        image="registry.example.com/st-finetune:0.1.0",
        job_uri="gs://bucket/zenml/trainjobs/bge-base-nq-nli-0d5e4f7a",
    ).to_dict()
    jsonschema.validate(job, schema)

    spec = job["spec"]
    assert spec["runtimeRef"] == {
        "name": "torch-distributed",
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
    }
    trainer = spec["trainer"]
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (2, 4)
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "4"
    assert trainer["resourcesPerNode"]["requests"] == {
        "cpu": hardware.cpu,
        "memory": hardware.memory,
    }
    assert trainer["image"] == "registry.example.com/st-finetune:0.1.0"
    assert trainer["command"] == [
        "python", "-m", "torch.distributed.run",
        f"--shutdown-timeout={hardware.termination_grace_period_seconds - 10}",
        "-m", "trainer.cluster.entrypoint", "--job", "gs://bucket/zenml/trainjobs/bge-base-nq-nli-0d5e4f7a",
    ]  # fmt: skip
    assert trainer["env"] == [
        {
            "name": "HF_TOKEN",
            "valueFrom": {
                "secretKeyRef": {
                    "name": config.hub.secret_name,
                    "key": "HF_TOKEN",
                    "optional": True,
                }
            },
        }
    ]
    (patch,) = spec["runtimePatches"]
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert node["name"] == "node"
    pod = node["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {hardware.accelerator_label: hardware.accelerator}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert pod["terminationGracePeriodSeconds"] == hardware.termination_grace_period_seconds
    assert pod["serviceAccountName"] == config.distributed.service_account
    assert {"name": "dshm", "mountPath": "/dev/shm"} in pod["containers"][0]["volumeMounts"]


def test_the_schema_check_catches_a_broken_trainjob(schema: dict[str, Any]) -> None:
    job = build_train_job(
        multinode_config(), name="x", namespace="zenml", image="i", job_uri="gs://b/x"
    ).to_dict()
    job["spec"]["trainer"]["numNodes"] = "two"
    with pytest.raises(jsonschema.ValidationError, match="'two' is not of type 'integer'"):
        jsonschema.validate(job, schema)


def test_a_shared_volume_is_mounted_on_every_node(schema: dict[str, Any]) -> None:
    config = multinode_config(
        shared_volume={"claim_name": "training-rwx", "mount_path": "/mnt/shared"}
    )
    job = build_train_job(
        config, name="x", namespace="zenml", image="i", job_uri="/mnt/shared/x"
    ).to_dict()
    jsonschema.validate(job, schema)
    pod = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]  # fmt: skip
    assert {"name": "shared", "persistentVolumeClaim": {"claimName": "training-rwx"}} in pod[
        "volumes"
    ]
    assert {"name": "shared", "mountPath": "/mnt/shared"} in pod["containers"][0]["volumeMounts"]
    assert shared_root(config, "/home/me/.zenml") == "/mnt/shared"


def test_nodes_need_storage_they_all_reach() -> None:
    config = multinode_config()
    assert shared_root(config, "gs://bucket/zenml") == "gs://bucket/zenml"
    with pytest.raises(ValueError, match=r"the artifact store is local \('/home/me/.zenml'\)"):
        shared_root(config, "/home/me/.zenml")
    document = yaml.safe_load(MULTINODE.read_text())["parameters"]["config"]
    document["checkpoints"] = {"uri": "/tmp/checkpoints"}
    with pytest.raises(ValueError, match=r"checkpoints.uri '/tmp/checkpoints' is a local path"):
        RunConfig.model_validate(document)


def test_train_job_names_are_stable_dns_labels() -> None:
    assert train_job_name("bge-base-nq-nli", "0d5e4f7a-1111-2222") == "bge-base-nq-nli-0d5e4f7a"
    assert train_job_name("My_Model 2", "ABC") == "my-model-2-abc"
    assert train_job_name("7th", "x") == "m-7th-x"


# --- submit, follow, continue: a loopback API and nodes on this machine ----------------


def two_node_config(model_path: Path, folder: Path) -> RunConfig:
    rows = [json.loads(line) for line in (REPO_ROOT / "data/stdlib_docs/train.jsonl").open()]
    pairs = write_jsonl(folder / "pairs.jsonl", rows[:48])
    document = tiny_run_config(
        model_path,
        {"docs": pairs_dataset(pairs)},
        hardware={"nodes": 2, "gpu_count": 0, "tolerations": [], "shm_size": None},
        distributed={"nproc_per_node": 1, "poll_seconds": 0.2},
        checkpoints={"every_n_steps": 2},
    )
    return RunConfig.model_validate(document)


@pytest.mark.slow
def test_two_nodes_train_one_model_through_the_kubernetes_api(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """The TrainJob's own command, on 2 "nodes" x 1 process with a c10d rendezvous on
    127.0.0.1, as each TrainJob node starts; the stage follows it and loads the model."""
    config = two_node_config(tiny_model_path, tmp_path)
    train_datasets, _, _ = load_stage(config)
    cluster = FakeCluster()
    lines: list[str] = []
    with fake_kubernetes(cluster) as api:
        trained = train_on_nodes(
            config,
            train_datasets,
            None,
            cluster=Cluster(api=api, namespace="zenml", image="st-finetune:test"),
            name="tiny-run00001",
            job_uri=str(tmp_path / "shared" / "trainjobs" / "tiny-run00001"),
            checkpoint_uri=str(tmp_path / "shared" / "checkpoints"),
            log=lines.append,
        )
    assert trained.summary.world_size == 2, node_log(cluster)
    assert trained.summary.global_step == trained.summary.planned_steps
    assert trained.model.encode(["hello"]).shape == (1, 32)
    assert (
        lines[0]
        == "submitting TrainJob tiny-run00001: 2 nodes x 1 processes, runtime torch-distributed"
    )
    # Followed through TrainerClient: its status per change, and node 0's log streamed.
    status = [line for line in lines if line.startswith("TrainJob tiny-run00001: ")]
    assert "TrainJob tiny-run00001: Running (node-0 Running, node-1 Running)" in status
    assert status[-1] == "TrainJob tiny-run00001: Complete (node-0 Succeeded, node-1 Succeeded)"
    assert any(line.startswith("[node-0] ") and "[rank 0]" in line for line in lines)
    (created,) = cluster.created
    assert created["spec"]["trainer"]["numNodes"] == 2
    log = node_log(cluster)
    assert "[rank 1]" in log and "[rank 0]" in log
    assert (tmp_path / "shared" / "checkpoints" / "FINISHED.json").is_file()


def test_a_failed_trainjob_fails_the_stage_clearly(tiny_model_path: Path, tmp_path: Path) -> None:
    config = two_node_config(tiny_model_path, tmp_path)
    train_datasets, _, _ = load_stage(config)
    with (
        fake_kubernetes(FakeCluster(fail_with="node 1: OOMKilled")) as api,
        pytest.raises(
            TrainJobFailed,
            match=r"TrainJob tiny-run00002 failed: JobSetFailed node 1: OOMKilled; see `kubectl -n zenml logs"
            r"(.|\n)*last lines of node-1:\n  node 1: OOMKilled",
        ),
    ):
        train_on_nodes(
            config,
            train_datasets,
            None,
            cluster=Cluster(api=api, namespace="zenml", image="st-finetune:test"),
            name="tiny-run00002",
            job_uri=str(tmp_path / "job"),
            checkpoint_uri=str(tmp_path / "checkpoints"),
            sleep=lambda _: None,
        )


def test_a_retried_step_replaces_its_failed_trainjob(tiny_model_path: Path, tmp_path: Path) -> None:
    config = two_node_config(tiny_model_path, tmp_path)
    job = build_train_job(config, name="tiny-run00003", namespace="zenml", image="i", job_uri="/x")
    cluster = FakeCluster(fail_with="preempted")
    lines: list[str] = []
    with fake_kubernetes(cluster) as api:
        target = Cluster(api=api, namespace="zenml", image="i")
        submit(target, job)
        submit(target, job, log=lines.append, sleep=lambda _: None)
    assert len(cluster.created) == 2
    assert lines == [
        "TrainJob tiny-run00003 of an earlier attempt failed: replacing it (training resumes)"
    ]


def test_trainer_client_follows_the_trainjob_and_streams_node_0s_log(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    """Status changes and node 0's log come through the Kubeflow SDK's TrainerClient
    (the SDK's own requests: runtime, pods, pod log); the nodes here just print."""
    config = two_node_config(tiny_model_path, tmp_path)
    job = build_train_job(config, name="tiny-run00005", namespace="zenml", image="i", job_uri="/x")
    assert job.spec is not None and job.spec.trainer is not None
    job.spec.trainer.command = [
        "python", "-c", "import os; print('hello from node', os.environ['PET_NODE_RANK'])"
    ]  # fmt: skip
    cluster = FakeCluster()
    lines: list[str] = []
    with fake_kubernetes(cluster) as api:
        target = Cluster(api=api, namespace="zenml", image="i")
        submit(target, job)
        followed = wait(target, "tiny-run00005", poll_seconds=0.1, log=lines.append)
    assert followed.status == "Complete"
    assert [step.name for step in followed.steps] == ["node-0", "node-1"]
    assert "[node-0] hello from node 0" in lines
    assert "[node-0] hello from node 1" not in lines  # only rank 0's node is streamed
    assert "TrainJob tiny-run00005: Complete (node-0 Succeeded, node-1 Succeeded)" in lines
    assert {
        "GET /apis/trainer.kubeflow.org/v1alpha1/clustertrainingruntimes/torch-distributed",
        "GET /api/v1/namespaces/zenml/pods",
        "GET /api/v1/namespaces/zenml/pods/tiny-run00005-node-0-0-x0z/log",
    } <= set(cluster.requests)


def _permission(request: str) -> tuple[str, str, str]:
    """`GET /apis/g/v/namespaces/ns/things/name/log` -> (`g`, `things/log`, `get`)."""
    method, path = request.split(" ", 1)
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[0] == "namespaces":
        rest = rest[2:]
    resource = "/".join([rest[0], *rest[2:]])
    verb = {"POST": "create", "DELETE": "delete"}.get(method, "get" if len(rest) > 1 else "list")
    return group, resource, verb


def _granted(account: str) -> set[tuple[str, str, str]]:
    """What k8s/rbac.yaml lets `account` do, through its Role and ClusterRole bindings."""
    documents = [d for d in yaml.safe_load_all((REPO_ROOT / "k8s/rbac.yaml").read_text()) if d]
    roles = {(d["kind"], d["metadata"]["name"]): d for d in documents if "rules" in d}
    granted = set()
    for binding in documents:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(subject["name"] == account for subject in binding["subjects"]):
            continue
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.update((group, resource, verb) for verb in rule["verbs"])
    return granted


def test_rbac_grants_every_call_the_train_step_makes(tiny_model_path: Path, tmp_path: Path) -> None:
    """Submitting, replacing a failed TrainJob and following one with TrainerClient use
    only what k8s/rbac.yaml grants the train step's service account."""
    config = two_node_config(tiny_model_path, tmp_path)
    job = build_train_job(config, name="tiny-run00006", namespace="zenml", image="i", job_uri="/x")
    cluster = FakeCluster(fail_with="preempted")
    with fake_kubernetes(cluster) as api:
        target = Cluster(api=api, namespace="zenml", image="i")
        submit(target, job)
        submit(target, job, log=lambda _: None, sleep=lambda _: None)
        with pytest.raises(TrainJobFailed):
            wait(target, "tiny-run00006", poll_seconds=1, log=lambda _: None)
    used = {_permission(request) for request in cluster.requests}
    # The SDK reads its version from Kubeflow Trainer's own namespace; without access it
    # logs a warning and goes on (k8s/README.md).
    used.discard(("", "configmaps", "get"))
    assert ("trainer.kubeflow.org", "trainjobs", "list") in used  # the replacement waited
    assert ("", "pods/log", "get") in used  # the failed node's log was read
    assert used <= _granted("zenml-trainjob"), used - _granted("zenml-trainjob")


def test_without_permissions_the_message_points_at_rbac(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    class Forbidden:
        def create_namespaced_custom_object(self, *args: Any) -> None:
            raise ApiException(status=403, reason="Forbidden")

    config = two_node_config(tiny_model_path, tmp_path)
    job = build_train_job(config, name="tiny-run00004", namespace="zenml", image="i", job_uri="/x")
    with pytest.raises(
        RuntimeError,
        match=r"HTTP 403 Forbidden \(is Kubeflow Trainer installed, and may this pod's service account create trainjobs\? see k8s/rbac.yaml\)",
    ):
        submit(Cluster(api=Forbidden(), namespace="zenml", image="i"), job)


@pytest.mark.slow
def test_two_nodes_train_on_a_stream_each_reading_it_from_the_shared_volume(
    still_model_path: Path, tmp_path: Path
) -> None:
    """A streamed dataset on the volume every node mounts: the job folder holds only its
    first rows, each node opens the stream itself and keeps its slice of every global
    batch, so the two nodes train what one process trains with their global batch."""
    from tests.test_streaming import _config, _largest_difference, _varied_rows
    from trainer.data import load_datasets
    from trainer.data.streaming import streaming_problems
    from trainer.training import train_in_process

    shared = tmp_path / "shared"
    data = write_jsonl(shared / "big.jsonl", _varied_rows(60))

    def config(nodes: int) -> RunConfig:
        return _config(
            data, still_model_path, training={"per_device_train_batch_size": 8 // nodes},
            hardware={"nodes": nodes, "gpu_count": 0, "tolerations": [], "shm_size": None},
            distributed={"nproc_per_node": 1, "poll_seconds": 0.2,
                         "shared_volume": {"claim_name": "shared", "mount_path": str(shared)}},
        )  # fmt: skip

    assert streaming_problems(config(2)) == []
    train_datasets, _, _ = load_stage(config(2))
    cluster = FakeCluster()
    with fake_kubernetes(cluster) as api:
        trained = train_on_nodes(
            config(2),
            train_datasets,
            None,
            cluster=Cluster(api=api, namespace="zenml", image="st-finetune:test"),
            name="tiny-stream01",
            job_uri=str(shared / "trainjobs" / "tiny-stream01"),
            checkpoint_uri=str(shared / "checkpoints"),
            log=lambda _: None,
        )
    summary = trained.summary
    assert summary.world_size == 2 and summary.global_batch_size == 8, node_log(cluster)
    assert summary.global_step == summary.planned_steps == 6
    assert "a streamed dataset is tokenized as it is read" in node_log(cluster)
    alone = train_in_process(
        config(1), load_datasets(config(1))[0], None,
        checkpoint_uri=str(tmp_path / "alone"), work_dir=tmp_path / "pod",
    )  # fmt: skip
    assert _largest_difference(alone.model, trained.model) < 1e-4
