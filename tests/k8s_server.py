"""A loopback Kubernetes API for TrainJobs, with a "cluster" that runs them on this machine.

It answers the calls `trainer.cluster.trainjob` makes through the official `kubernetes` client
(create, get, get status, delete of `trainer.kubeflow.org/v1alpha1` trainjobs, with the
API server's 404/409 `Status` bodies), and runs each created TrainJob as Kubeflow
Trainer's torch runtime would: `numNodes` processes running the TrainJob's own command
with the `PET_*` variables the runtime injects (`PET_NNODES`, `PET_NPROC_PER_NODE`,
`PET_NODE_RANK`, `PET_MASTER_ADDR`, `PET_MASTER_PORT`), here with torchrun's c10d
rendezvous on 127.0.0.1 and a separate temp folder per "node". The status follows the
node processes: running, then `Complete` or `Failed`.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PATH = re.compile(
    r"^/apis/trainer\.kubeflow\.org/v1alpha1/namespaces/(?P<ns>[^/]+)/trainjobs"
    r"(?:/(?P<name>[^/]+))?(?P<status>/status)?$"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeCluster:
    """The TrainJobs created so far, and the node processes running them."""

    def __init__(self, *, run_nodes: bool = True, fail_with: str | None = None) -> None:
        self.run_nodes = run_nodes
        self.fail_with = fail_with
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.logs: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    # --- the "cluster" --------------------------------------------------------------

    def _run(self, key: tuple[str, str], body: dict[str, Any]) -> None:
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
        self._set_status(key, active=nodes)
        codes = []
        for rank, process in enumerate(processes):
            output, _ = process.communicate()
            self.logs[f"{key[1]}-node-{rank}"] = output.splitlines()
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
            status["jobsStatus"] = [{"name": "node", **counts}]
            if condition is not None:
                kind, reason, message = condition
                status["conditions"] = [
                    {"type": kind, "status": "True", "reason": reason, "message": message}
                ]

    def create(self, namespace: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        name = body["metadata"]["name"]
        key = (namespace, name)
        with self._lock:
            if key in self.jobs:
                return 409, _status(409, "AlreadyExists", f'trainjobs "{name}" already exists')
            self.jobs[key] = json.loads(json.dumps(body))
            self.created.append(self.jobs[key])
        if self.fail_with is not None:
            self._set_status(key, failed=1, condition=("Failed", "JobSetFailed", self.fail_with))
        elif self.run_nodes:
            threading.Thread(target=self._run, args=(key, body), daemon=True).start()
        return 201, body

    def get(self, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            job = self.jobs.get((namespace, name))
            if job is None:
                return 404, _status(404, "NotFound", f'trainjobs "{name}" not found')
            return 200, json.loads(json.dumps(job))

    def delete(self, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self.jobs.pop((namespace, name), None) is None:
                return 404, _status(404, "NotFound", f'trainjobs "{name}" not found')
        return 200, _status(200, "Success", "deleted")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure" if code >= 400 else "Success",
            "reason": reason, "message": message, "code": code}  # fmt: skip


def _handler(cluster: FakeCluster) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> re.Match[str] | None:
            match = _PATH.match(self.path.split("?")[0])
            if match is None:
                self._answer(404, _status(404, "NotFound", f"no route {self.path}"))
            return match

        def do_POST(self) -> None:
            if (match := self._route()) is None:
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._answer(*cluster.create(match["ns"], body))

        def do_GET(self) -> None:
            if (match := self._route()) is None:
                return
            self._answer(*cluster.get(match["ns"], match["name"]))

        def do_DELETE(self) -> None:
            if (match := self._route()) is None:
                return
            self._answer(*cluster.delete(match["ns"], match["name"]))

    return Handler


@contextmanager
def fake_kubernetes(cluster: FakeCluster) -> Iterator[Any]:
    """A `CustomObjectsApi` talking to a loopback server backed by `cluster`."""
    from kubernetes import client

    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(cluster))
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
