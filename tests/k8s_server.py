"""A loopback Kubernetes API for TrainJobs, with a "cluster" that runs them on this machine.

It answers, with the API server's JSON (and its 404/409 `Status` bodies), the calls
`trainer.cluster.trainjob` makes through the official `kubernetes` client and through the
Kubeflow SDK's `TrainerClient` (whose Kubernetes backend uses that client):

- create, get, list and delete of `trainer.kubeflow.org/v1alpha1` trainjobs;
- get of a namespaced `TrainingRuntime` (none here: 404) and of the cluster's
  `ClusterTrainingRuntime` `torch-distributed` (Kubeflow Trainer v2.3.0's, abridged);
- list of the TrainJob's pods by label selector, and a pod's log (`follow=true` answers
  when the node has ended, with its whole log);
- get of the `kubeflow-trainer-public` ConfigMap the SDK reads its version from.

Each created TrainJob runs as Kubeflow Trainer's torch runtime would: `numNodes`
processes running the TrainJob's own command with the `PET_*` variables the runtime
injects (`PET_NNODES`, `PET_NPROC_PER_NODE`, `PET_NODE_RANK`, `PET_MASTER_ADDR`,
`PET_MASTER_PORT`), here with torchrun's c10d rendezvous on 127.0.0.1 and a separate temp
folder per "node". Each node is a pod (JobSet's labels, phase Pending -> Running ->
Succeeded / Failed), and the TrainJob's status follows them: `Complete` or `Failed`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_TRAINER = r"^/apis/trainer\.kubeflow\.org/v1alpha1"
_TRAINJOBS = re.compile(
    _TRAINER + r"/namespaces/(?P<ns>[^/]+)/trainjobs(?:/(?P<name>[^/]+))?(?P<status>/status)?$"
)
_TRAINING_RUNTIME = re.compile(_TRAINER + r"/namespaces/(?P<ns>[^/]+)/trainingruntimes/(?P<name>[^/]+)$")  # fmt: skip
_CLUSTER_RUNTIME = re.compile(_TRAINER + r"/clustertrainingruntimes/(?P<name>[^/]+)$")
_PODS = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods$")
_POD_LOG = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<pod>[^/]+)/log$")
_CONFIG_MAP = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/configmaps/(?P<name>[^/]+)$")

JOBSET_NAME = "jobset.sigs.k8s.io/jobset-name"
REPLICATED_JOB = "jobset.sigs.k8s.io/replicatedjob-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"

TORCH_RUNTIME: dict[str, Any] = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "ClusterTrainingRuntime",
    "metadata": {"name": "torch-distributed", "labels": {"trainer.kubeflow.org/framework": "torch"}},
    "spec": {
        "mlPolicy": {"numNodes": 1, "torch": {"numProcPerNode": "auto"}},
        "template": {"spec": {"replicatedJobs": [{
            "name": "node",
            "template": {
                "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
                "spec": {"template": {"spec": {"containers": [{
                    "name": "node", "image": "pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime",
                    "command": ["/bin/bash", "-c", "echo 'Torch Distributed Runtime'"],
                }]}}},
            },
        }]}},
    },
}  # fmt: skip
"""Kubeflow Trainer v2.3.0's `torch-distributed` runtime, abridged to what the SDK reads."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeCluster:
    """The TrainJobs created so far, their node pods, and the processes running them."""

    def __init__(self, *, run_nodes: bool = True, fail_with: str | None = None) -> None:
        self.run_nodes = run_nodes
        self.fail_with = fail_with
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.logs: dict[str, list[str]] = {}
        """Each node pod's log, by pod name, once the node has ended."""
        self.requests: list[str] = []
        """`METHOD path` of every request, in order."""
        self._ended: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # --- the "cluster" --------------------------------------------------------------

    def _add_pods(self, key: tuple[str, str], nodes: int, phase: str) -> list[str]:
        namespace, name = key
        names = []
        with self._lock:
            for rank in range(nodes):
                pod = f"{name}-node-0-{rank}-x{rank}z"
                labels = {JOBSET_NAME: name, REPLICATED_JOB: "node", COMPLETION_INDEX: str(rank)}
                self.pods[(namespace, pod)] = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": pod, "namespace": namespace, "labels": labels,
                                 "creationTimestamp": _now()},
                    "spec": {"containers": [{"name": "node", "image": "st-finetune:test"}]},
                    "status": {"phase": phase},
                }  # fmt: skip
                self._ended[pod] = threading.Event()
                names.append(pod)
        return names

    def _set_pod(self, namespace: str, pod: str, phase: str, log: list[str] | None = None) -> None:
        with self._lock:
            self.pods[(namespace, pod)]["status"]["phase"] = phase
            if log is not None:
                self.logs[pod] = log
                self._ended[pod].set()

    def _run(self, key: tuple[str, str], body: dict[str, Any], pods: list[str]) -> None:
        trainer = body["spec"]["trainer"]
        nodes, port = int(trainer["numNodes"]), _free_port()
        command = [sys.executable if part == "python" else part for part in trainer["command"]]
        processes = []
        for rank in range(nodes):
            env = {
                **os.environ,
                "PET_NNODES": str(nodes),
                "PET_NPROC_PER_NODE": str(trainer["numProcPerNode"]),
                "PET_NODE_RANK": str(rank),
                "PET_MASTER_ADDR": "127.0.0.1",
                "PET_MASTER_PORT": str(port),
                "PET_RDZV_BACKEND": "c10d",
                "PET_RDZV_ENDPOINT": f"127.0.0.1:{port}",
                "TMPDIR": tempfile.mkdtemp(prefix=f"node-{rank}-"),  # nodes share no disk
            }
            processes.append(
                subprocess.Popen(
                    command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
            )
            self._set_pod(key[0], pods[rank], "Running")
        self._set_status(key, active=nodes)
        codes = []
        for rank, process in enumerate(processes):
            output, _ = process.communicate()
            phase = "Succeeded" if process.returncode == 0 else "Failed"
            self._set_pod(key[0], pods[rank], phase, output.splitlines())
            codes.append(process.returncode)
        if all(code == 0 for code in codes):
            self._set_status(key, succeeded=nodes, condition=("Complete", "JobSetCompleted", ""))
        else:
            self._set_status(
                key,
                failed=sum(code != 0 for code in codes),
                condition=("Failed", "JobSetFailed", f"node exit codes {codes}"),
            )

    def _set_status(
        self, key: tuple[str, str], *, condition: tuple[str, str, str] | None = None, **counts: int
    ) -> None:
        with self._lock:
            job = self.jobs.get(key)
            if job is None:
                return
            status = job.setdefault("status", {})
            zero = dict.fromkeys(("active", "ready", "succeeded", "failed", "suspended"), 0)
            status["jobsStatus"] = [{"name": "node", **zero, **counts}]  # all required
            if condition is not None:
                kind, reason, message = condition
                status["conditions"] = [
                    {"type": kind, "status": "True", "reason": reason, "message": message,
                     "lastTransitionTime": _now()}
                ]  # fmt: skip

    # --- the API ----------------------------------------------------------------------

    def create(self, namespace: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        key = (namespace, name)
        with self._lock:
            if key in self.jobs:
                return 409, _status(409, "AlreadyExists", f'trainjobs "{name}" already exists')
            job = json.loads(json.dumps(body))
            job["metadata"].update(namespace=namespace, creationTimestamp=_now())
            self.jobs[key] = job
            self.created.append(job)
        nodes = int(body["spec"]["trainer"]["numNodes"])
        if self.fail_with is not None:
            for pod in self._add_pods(key, nodes, "Pending"):
                self._set_pod(namespace, pod, "Failed", [self.fail_with])
            self._set_status(key, failed=1, condition=("Failed", "JobSetFailed", self.fail_with))
        else:
            pods = self._add_pods(key, nodes, "Pending")
            if self.run_nodes:
                threading.Thread(target=self._run, args=(key, body, pods), daemon=True).start()
        return 201, job

    def get(self, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            job = self.jobs.get((namespace, name))
            if job is None:
                return 404, _status(404, "NotFound", f'trainjobs "{name}" not found')
            return 200, json.loads(json.dumps(job))

    def list(self, namespace: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            items = [
                json.loads(json.dumps(j)) for (ns, _), j in self.jobs.items() if ns == namespace
            ]
        return 200, {"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJobList",
                     "metadata": {}, "items": items}  # fmt: skip

    def delete(self, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self.jobs.pop((namespace, name), None) is None:
                return 404, _status(404, "NotFound", f'trainjobs "{name}" not found')
            for pod_key in [k for k, p in self.pods.items() if k[0] == namespace
                            and p["metadata"]["labels"][JOBSET_NAME] == name]:  # fmt: skip
                del self.pods[pod_key]
        return 200, _status(200, "Success", "deleted")

    def list_pods(self, namespace: str, selector: str) -> tuple[int, dict[str, Any]]:
        match = re.search(re.escape(JOBSET_NAME) + r"=([^,]+)", selector)
        with self._lock:
            items = [
                json.loads(json.dumps(pod))
                for (ns, _), pod in self.pods.items()
                if ns == namespace
                and (match is None or pod["metadata"]["labels"][JOBSET_NAME] == match[1])
            ]
        return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}

    def pod_log(self, namespace: str, pod: str, follow: bool) -> tuple[int, str]:
        with self._lock:
            known = (namespace, pod) in self.pods
            ended = self._ended.get(pod)
        if not known or ended is None:
            return 404, json.dumps(_status(404, "NotFound", f'pods "{pod}" not found'))
        if follow:
            ended.wait(timeout=600)
        with self._lock:
            return 200, "".join(f"{line}\n" for line in self.logs.get(pod, []))


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure" if code >= 400 else "Success",
            "reason": reason, "message": message, "code": code}  # fmt: skip


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, code: int, body: dict[str, Any] | str) -> None:
            text = body if isinstance(body, str) else json.dumps(body)
            data = text.encode()
            self.send_response(code)
            kind = "text/plain" if isinstance(body, str) and code == 200 else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _parts(self) -> tuple[str, dict[str, list[str]]]:
            url = urlsplit(self.path)
            cluster.requests.append(f"{self.command} {url.path}")
            return url.path, parse_qs(url.query)

        def _not_found(self, path: str) -> None:
            self._answer(404, _status(404, "NotFound", f"no route {path}"))

        def do_POST(self) -> None:
            path, _ = self._parts()
            if (match := _TRAINJOBS.match(path)) is None or match["name"]:
                return self._not_found(path)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._answer(*cluster.create(match["ns"], body))

        def do_GET(self) -> None:
            path, query = self._parts()
            if match := _TRAINJOBS.match(path):
                if match["name"] is None:
                    return self._answer(*cluster.list(match["ns"]))
                return self._answer(*cluster.get(match["ns"], match["name"]))
            if match := _TRAINING_RUNTIME.match(path):
                message = f'trainingruntimes.trainer.kubeflow.org "{match["name"]}" not found'
                return self._answer(404, _status(404, "NotFound", message))
            if match := _CLUSTER_RUNTIME.match(path):
                if match["name"] != TORCH_RUNTIME["metadata"]["name"]:
                    message = f'clustertrainingruntimes "{match["name"]}" not found'
                    return self._answer(404, _status(404, "NotFound", message))
                return self._answer(200, TORCH_RUNTIME)
            if match := _PODS.match(path):
                selector = query.get("labelSelector", [""])[0]
                return self._answer(*cluster.list_pods(match["ns"], selector))
            if match := _POD_LOG.match(path):
                follow = query.get("follow", ["false"])[0].lower() == "true"
                return self._answer(*cluster.pod_log(match["ns"], match["pod"], follow))
            if (match := _CONFIG_MAP.match(path)) and match["name"] == "kubeflow-trainer-public":
                return self._answer(200, {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": match["name"]},
                                          "data": {"kubeflow_trainer_version": "v2.3.0"}})  # fmt: skip
            self._not_found(path)

        def do_DELETE(self) -> None:
            path, _ = self._parts()
            if (match := _TRAINJOBS.match(path)) is None or not match["name"]:
                return self._not_found(path)
            self._answer(*cluster.delete(match["ns"], match["name"]))

    return Handler


@contextmanager
def fake_kubernetes(cluster: FakeCluster) -> Iterator[Any]:
    """A `CustomObjectsApi` talking to a loopback server backed by `cluster` (its
    `api_client.configuration` is what a `TrainerClient` is configured with)."""
    from kubernetes import client

    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield client.CustomObjectsApi(client.ApiClient(configuration))
    finally:
        server.shutdown()
        server.server_close()


def node_log(cluster: FakeCluster) -> str:
    return "\n".join(line for lines in cluster.logs.values() for line in lines)
