"""Training across nodes as a Kubeflow Trainer TrainJob (`trainer.kubeflow.org/v1alpha1`).

`hardware.nodes > 1` runs the training stage on that many nodes through Kubeflow
Trainer's torch runtime: each node runs the same `trainer.cluster.entrypoint` under torchrun,
whose rendezvous the runtime sets up (`PET_NNODES`, `PET_NODE_RANK`, `PET_MASTER_ADDR`,
...). The stage that submits it (a ZenML step or a Kubeflow task) writes the job folder
to shared storage, submits the TrainJob, follows it with the Kubeflow SDK's
`TrainerClient` (its status as it changes, node 0's log as it runs), and continues with
the model rank 0 wrote back.

The TrainJob itself is built here and created through the Kubernetes API, not with
`TrainerClient.train`: the SDK (kubeflow 0.5) cannot express what these nodes need.
Its `CustomTrainerContainer` has no processes per node (`numProcPerNode`; its trainer
overrides take only `command` and `args`), its environment is plain `name: value` pairs
(no Secret reference for the Hub token), its resources set requests equal to limits
(the hardware config keeps them apart), and its `PodSpecPatch` has no
`terminationGracePeriodSeconds` (the nodes' time to save a checkpoint on SIGTERM).
`train()` also hides the API's 409 behind a generic RuntimeError, which a retried step
needs to find its own earlier TrainJob. Waiting, status, logs, listing and deleting go
through `TrainerClient`.

`build_train_job` is a pure function of the run config (assert on it, validate it
against the CRD); `train_on_nodes` takes the Kubernetes API object as an argument.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubeflow_trainer_api.models import TrainerV1alpha1TrainJob
from kubernetes.client import V1EnvVar, V1EnvVarSource, V1SecretKeySelector
from kubernetes.client.exceptions import ApiException

from trainer.cluster.pods import (
    READ_ONLY_ROOT,
    pod_hardware,
    scratch_volume_parts,
    shared_volume_parts,
    to_manifest,
)
from trainer.cluster.torchrun import ENTRYPOINT_MODULE, TrainingJob, read_outputs, write_job
from trainer.config import HF_TOKEN_KEY, RunConfig
from trainer.results import RunRef
from trainer.training import SeriesIdentity

if TYPE_CHECKING:
    from datasets import DatasetDict
    from kubeflow.trainer import TrainerClient
    from kubeflow.trainer.types.types import TrainJob
    from kubernetes.client import CustomObjectsApi

    from trainer.training import TrainedModel

logger = logging.getLogger(__name__)

GROUP, VERSION, PLURAL, KIND = "trainer.kubeflow.org", "v1alpha1", "trainjobs", "TrainJob"
NODE = "node"
"""The torch runtime's replicated job and container that run the trainer."""
PATCH_MANAGER = "st-finetune"


def processes_per_training_node(config: RunConfig) -> int:
    """Ranks per node: `distributed.nproc_per_node`, or one per GPU of the hardware spec."""
    nproc = config.distributed.nproc_per_node
    if isinstance(nproc, int):
        return nproc
    return max(1, config.hardware.gpu_count if config.hardware else 1)


def node_command(job_uri: str, grace_seconds: int) -> list[str]:
    """What every node runs: torchrun (configured by the runtime's PET_* variables) over
    the trainer entrypoint, with the pod's grace period to save on SIGTERM."""
    return [
        "python",
        "-m",
        "torch.distributed.run",
        f"--shutdown-timeout={max(10, grace_seconds - 10)}",
        "-m",
        ENTRYPOINT_MODULE,
        "--job",
        job_uri,
    ]


def build_train_job(
    config: RunConfig,
    *,
    name: str,
    namespace: str,
    image: str,
    job_uri: str,
    labels: dict[str, str] | None = None,
    hub_token: bool = True,
) -> TrainerV1alpha1TrainJob:
    """The TrainJob that trains `config` on `hardware.nodes` nodes (the same placement,
    resources and grace period per node as the single-pod training gets). The nodes get
    the Hub token Secret only with `hub_token` (they download from the Hub)."""
    hardware = config.hardware
    if hardware is None or hardware.nodes < 2:
        raise ValueError("a TrainJob is for hardware.nodes > 1; set parameters.config.hardware")
    spec = config.distributed
    parts = pod_hardware(hardware)
    shared_volumes, shared_mounts = shared_volume_parts(spec)
    scratch_volumes, scratch_mounts = scratch_volume_parts()
    volumes = [*parts.volumes, *shared_volumes, *scratch_volumes]
    mounts = [*parts.volume_mounts, *shared_mounts, *scratch_mounts]
    token = V1EnvVar(
        name=HF_TOKEN_KEY,
        value_from=V1EnvVarSource(
            secret_key_ref=V1SecretKeySelector(
                # The nodes never publish: they need the token only for gated downloads.
                name=config.hub.secret_name,
                key=HF_TOKEN_KEY,
                optional=True,
            )
        ),
    )
    pod: dict[str, Any] = {
        "nodeSelector": parts.node_selector or None,
        "tolerations": to_manifest(parts.tolerations) or None,
        "terminationGracePeriodSeconds": hardware.termination_grace_period_seconds,
        "serviceAccountName": spec.service_account,
        "volumes": to_manifest(volumes) or None,
        # A read-only root: the nodes write only to the scratch emptyDirs (and /dev/shm).
        "containers": [
            {"name": NODE, "volumeMounts": to_manifest(mounts), "securityContext": READ_ONLY_ROOT}
        ],
    }
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "labels": labels or None},
        "spec": {
            "runtimeRef": {
                "name": spec.runtime,
                "apiGroup": GROUP,
                "kind": "ClusterTrainingRuntime",
            },
            "trainer": {
                "image": image,
                "command": node_command(job_uri, hardware.termination_grace_period_seconds),
                "numNodes": hardware.nodes,
                "numProcPerNode": processes_per_training_node(config),
                "resourcesPerNode": to_manifest(parts.resources),
                "env": to_manifest([token]) if hub_token else None,
            },
            "runtimePatches": [
                {
                    "manager": PATCH_MANAGER,
                    "trainingRuntimeSpec": {
                        "template": {
                            "spec": {
                                "replicatedJobs": [
                                    {
                                        "name": NODE,
                                        "template": {
                                            "spec": {"template": {"spec": _drop_nones(pod)}}
                                        },
                                    }
                                ]
                            }
                        }
                    },
                }
            ],
        },
    }
    return TrainerV1alpha1TrainJob.from_dict(_drop_nones(manifest))


def _drop_nones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nones(v) for v in value]
    return value


# --- submitting and waiting -----------------------------------------------------------


class TrainJobFailed(RuntimeError):
    """The TrainJob ended in `Failed`; the message holds its reason and message."""


COMPLETE, FAILED = "Complete", "Failed"
"""`TrainerClient`'s TrainJob statuses this stage ends on."""
LOG_STEP = f"{NODE}-0"
"""The node whose log is streamed into the stage's log: rank 0's."""
WAIT_WINDOW_SECONDS = 3600
"""`TrainerClient.wait_for_job_status` needs a timeout; a training has none of its own
(the TrainJob's pods have the cluster's limits), so the wait is renewed every hour."""
FAILED_LOG_LINES = 20


@dataclass(frozen=True)
class Cluster:
    """Where a TrainJob goes: the API to submit through, its namespace, the nodes' image."""

    api: CustomObjectsApi
    namespace: str
    image: str

    def trainer_client(self) -> TrainerClient:
        """The Kubeflow SDK's `TrainerClient` on the same API server, with the same
        credentials, in the TrainJob's namespace."""
        from kubeflow.trainer import KubernetesBackendConfig, TrainerClient

        config = KubernetesBackendConfig(
            namespace=self.namespace, client_configuration=self.api.api_client.configuration
        )
        return TrainerClient(backend_config=config)


def submit(
    cluster: Cluster,
    job: TrainerV1alpha1TrainJob,
    *,
    log: Callable[[str], None] = logger.info,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create the TrainJob. A retried stage finds its own earlier one (same name): it
    follows one still running or done, and replaces a failed one (the new nodes resume
    from the failed attempt's checkpoints)."""
    body = job.to_dict()
    name, namespace = body["metadata"]["name"], cluster.namespace
    try:
        cluster.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        return
    except ApiException as error:
        if error.status != 409:
            raise RuntimeError(
                f"could not create TrainJob {name} in namespace {namespace}: HTTP "
                f"{error.status} {error.reason} (is Kubeflow Trainer installed, and may this "
                "pod's service account create trainjobs? see k8s/rbac.yaml)"
            ) from error
    client = cluster.trainer_client()
    if client.get_job(name).status != FAILED:
        log(f"TrainJob {name} exists already (this step was retried): following it")
        return
    log(f"TrainJob {name} of an earlier attempt failed: replacing it (training resumes)")
    client.delete_job(name)
    while any(existing.name == name for existing in client.list_jobs()):
        sleep(1.0)
    cluster.api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def describe(job: TrainJob) -> str:
    """`Running (node-0 Running, node-1 Pending)`: the SDK's status of the TrainJob and
    of each of its pods."""
    steps = ", ".join(f"{step.name} {step.status or 'Pending'}" for step in job.steps)
    return f"{job.status} ({steps})" if steps else job.status


class _StatusLog:
    """A `wait_for_job_status` callback: logs the TrainJob's status when it changes."""

    def __init__(self, name: str, log: Callable[[str], None]) -> None:
        self.name, self.log, self.last = name, log, ""

    def __call__(self, job: TrainJob) -> None:
        described = describe(job)
        if described != self.last:
            self.log(f"TrainJob {self.name}: {described}")
            self.last = described


class _LogFollower:
    """A `wait_for_job_status` callback: once node 0's pod has started, streams its log
    (`get_job_logs(follow=True)`) into the stage's log from a thread, line by line."""

    def __init__(self, client: TrainerClient, name: str, log: Callable[[str], None]) -> None:
        self.client, self.name, self.log = client, name, log
        self.thread: threading.Thread | None = None

    def __call__(self, job: TrainJob) -> None:
        started = any(s.name == LOG_STEP and s.status not in (None, "Pending") for s in job.steps)
        if self.thread is None and started:
            self.thread = threading.Thread(target=self._follow, daemon=True)
            self.thread.start()

    def _follow(self) -> None:
        try:
            for line in self.client.get_job_logs(self.name, step=LOG_STEP, follow=True):
                self.log(f"[{LOG_STEP}] {line.rstrip()}")
        except Exception as error:  # the log is a convenience; the status decides
            self.log(f"could not stream {LOG_STEP}'s log of TrainJob {self.name}: {error}")

    def finish(self, timeout: float = 60.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


def wait(
    cluster: Cluster,
    name: str,
    *,
    poll_seconds: float,
    log: Callable[[str], None] = logger.info,
) -> TrainJob:
    """Follow the TrainJob with `TrainerClient` until it is Complete (returned) or
    Failed (TrainJobFailed, with the reason and the failed nodes' last log lines),
    logging each change of its status and streaming node 0's log."""
    client = cluster.trainer_client()
    follower = _LogFollower(client, name, log)
    callbacks: list[Callable[[TrainJob], None]] = [_StatusLog(name, log), follower]
    while True:
        try:
            job = client.wait_for_job_status(
                name,
                status={COMPLETE, FAILED},
                timeout=WAIT_WINDOW_SECONDS,
                polling_interval=max(1, round(poll_seconds)),
                callbacks=callbacks,
            )
            break
        except TimeoutError:
            continue
    follower.finish()
    if job.status == FAILED:
        raise TrainJobFailed(_failure(cluster, client, job))
    return job


def _failure(cluster: Cluster, client: TrainerClient, job: TrainJob) -> str:
    """Why the TrainJob failed: its Failed condition (from the TrainJob object, which
    the SDK's view leaves out) and the last lines of each failed node's log."""
    raw = cluster.api.get_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, PLURAL, job.name
    )
    conditions = (raw.get("status") or {}).get("conditions") or []
    info: dict[str, Any] = next((c for c in conditions if c.get("type") == FAILED), {})
    message = (
        f"TrainJob {job.name} failed: {info.get('reason', '')} {info.get('message', '')}; "
        f"see `kubectl -n {cluster.namespace} logs -l jobset.sigs.k8s.io/jobset-name={job.name}`"
    )
    for step in job.steps:
        if step.status != "Failed":
            continue
        try:
            lines = list(client.get_job_logs(job.name, step=step.name))[-FAILED_LOG_LINES:]
        except RuntimeError as error:
            lines = [f"(log not readable: {error})"]
        message += f"\nlast lines of {step.name}:\n" + "\n".join(f"  {line}" for line in lines)
    return message


def train_on_nodes(
    config: RunConfig,
    train_datasets: DatasetDict,
    eval_datasets: DatasetDict | None,
    *,
    cluster: Cluster,
    name: str,
    job_uri: str,
    checkpoint_uri: str,
    run: RunRef | None = None,
    series: SeriesIdentity | None = None,
    hub_token: bool = True,
    log: Callable[[str], None] = logger.info,
    sleep: Callable[[float], None] = time.sleep,
) -> TrainedModel:
    """Train on `hardware.nodes` nodes: write the job to `job_uri` (shared storage),
    submit the TrainJob, wait for it, and load the model rank 0 wrote back."""
    from trainer.models import load_saved_model
    from trainer.training import TrainedModel

    write_job(
        job_uri,
        config,
        train_datasets,
        eval_datasets,
        TrainingJob(checkpoint_uri=checkpoint_uri, run=run, series=series),
    )
    job = build_train_job(
        config,
        name=name,
        namespace=cluster.namespace,
        image=cluster.image,
        job_uri=job_uri,
        hub_token=hub_token,
    )
    log(
        f"submitting TrainJob {name}: {config.training_nodes} nodes x "
        f"{processes_per_training_node(config)} processes, runtime {config.distributed.runtime}"
    )
    submit(cluster, job, log=log, sleep=sleep)
    wait(cluster, name, poll_seconds=config.distributed.poll_seconds, log=log)
    model_dir, summary = read_outputs(job_uri)
    return TrainedModel(model=load_saved_model(model_dir, local_files_only=True), summary=summary)


def shared_root(config: RunConfig, fallback: str | None) -> str:
    """Where the submitting stage and the nodes exchange files: `distributed.shared_uri`,
    the shared volume's mount path, or `fallback` (the orchestrator's artifact store or
    pipeline root) when every node can reach it (a URL, not a local path)."""
    spec = config.distributed
    if spec.shared_uri:
        return spec.shared_uri
    if spec.shared_volume is not None:
        return spec.shared_volume.mount_path
    if fallback and "://" in fallback:
        return fallback
    raise ValueError(
        f"hardware.nodes ({config.hardware.nodes if config.hardware else 1}) training nodes "
        f"need storage they all reach, but the artifact store is local ({fallback!r}): use "
        "a remote artifact store (s3://, gs://, az://), or set distributed.shared_uri or "
        "distributed.shared_volume (a ReadWriteMany claim)"
    )


def train_job_name(model_name: str, run_id: str) -> str:
    """A DNS-1035 name, the same for every attempt of one run's train step (so a retried
    step finds its TrainJob): `<model>-<run id prefix>`."""
    import re

    stem = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")[:40] or "st-finetune"
    if not stem[0].isalpha():
        stem = f"m-{stem}"
    suffix = re.sub(r"[^a-z0-9]", "", run_id.lower())[:8] or "run"
    return f"{stem}-{suffix}"


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def kubernetes_api() -> CustomObjectsApi:
    """The Kubernetes API as this pod's service account sees it (the local kubeconfig
    outside a cluster)."""
    from kubernetes import client
    from kubernetes import config as kube_config

    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    return client.CustomObjectsApi()


def own_namespace(default: str = "default") -> str:
    """The namespace this pod runs in (its service account's), or `default`."""
    if SERVICE_ACCOUNT_NAMESPACE.exists():
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return default


def train_job_image(config: RunConfig, image: str | None) -> str:
    """The image the training nodes run: `hardware.image`, else `image` (the stage's own)."""
    chosen = (config.hardware.image if config.hardware else None) or image
    if not chosen:
        raise ValueError(
            "hardware.image is not set and this run has no container image (a local run?): "
            "set parameters.config.hardware.image to the image the training nodes run"
        )
    return chosen


def train_job_namespace(config: RunConfig, namespace: str | None) -> str:
    """Where the TrainJob goes: `distributed.namespace`, else `namespace` (the
    orchestrator's), else this pod's own."""
    return config.distributed.namespace or namespace or own_namespace()


def cluster_for(
    config: RunConfig, *, namespace: str | None = None, image: str | None = None
) -> Cluster:
    """Where this run's TrainJob goes: the API as this pod's service account sees it, the
    namespace `train_job_namespace` and the nodes' image `train_job_image` choose."""
    chosen = train_job_image(config, image)
    return Cluster(
        api=kubernetes_api(), namespace=train_job_namespace(config, namespace), image=chosen
    )
