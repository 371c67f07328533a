"""A loopback fake of the Hugging Face Hub, for running the real `huggingface_hub` client.

It implements what `HfApi.create_repo`, `create_branch`, `repo_info` and `upload_folder`
(legacy LFS path, Xet off) call, answers like the Hub (JSON bodies, `X-Error-Code` on
404s), records every request, keeps the files of every commit, and can be told to fail
the next N requests of an endpoint to exercise retries. It listens on 127.0.0.1 only.

The read side of dataset repos is what `datasets.load_dataset("org/name", ...)` calls,
streamed or not (through `hf_hub_download` and `HfFileSystem`): `dataset_info`, the tree
listing, `paths-info`, and `HEAD`/`GET` (with `Range`) of `/datasets/<repo>/resolve/...`,
at a branch or a commit id. `add_dataset` hosts a repo from in-memory files; Parquet
files are stored as LFS files, like the Hub does. It also answers as an HTTP proxy, so a
client whose `HTTP(S)_PROXY` points here cannot reach any other host unseen: the dataset
viewer (`datasets-server.<host>`, which `datasets` asks for exported infos) answers 404
(no export, as for a fresh repo), anything else is recorded as `escaped` and refused.

Pointing the client at it (`use_fake_hub`): `huggingface_hub.constants` reads
`HF_HUB_OFFLINE`, `HF_ENDPOINT`, `HF_HUB_DISABLE_XET` and `HF_HUB_DISABLE_TELEMETRY`
once, at import time, and the test session imports the library early with
`HF_HUB_OFFLINE=1` (tests/conftest.py). Setting environment variables in a test is then
too late, so we patch the module attributes the client reads at call time instead
(`is_offline_mode()`, `is_xet_available()` and `HfApi()` all look them up on the module).
That keeps the push in-process, where pytest's `caplog` sees its logs, and is undone by
monkeypatch after each test. A subprocess with the environment set before import would
work too, but is slower and hides the logs. `datasets` builds its Hub URLs from
`HF_ENDPOINT` at import time (`datasets.config.HUB_DATASETS_URL` and others), which no
attribute patch reaches reliably: dataset reads therefore run in a subprocess started by
`tests/hub_process.py`, with the environment set before anything is imported.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".npy")
LFS_MIN_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
DATASET_GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"

_REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
_REV = r"(?P<rev>[^/?]+)"
ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    (name, method, re.compile(f"^{pattern}$"))
    for name, method, pattern in [
        ("create_repo", "POST", r"/api/repos/create"),
        ("validate_yaml", "POST", r"/api/validate-yaml"),
        ("preupload", "POST", rf"/api/models/{_REPO}/preupload/{_REV}"),
        ("commit", "POST", rf"/api/models/{_REPO}/commit/{_REV}"),
        ("create_branch", "POST", rf"/api/models/{_REPO}/branch/{_REV}"),
        ("repo_info", "GET", rf"/api/models/{_REPO}(?:/revision/{_REV})?"),
        ("lfs_batch", "POST", rf"/{_REPO}\.git/info/lfs/objects/batch"),
        ("lfs_upload", "PUT", r"/_lfs/upload/(?P<oid>[0-9a-f]{64})"),
        ("lfs_verify", "POST", r"/_lfs/verify/(?P<oid>[0-9a-f]{64})"),
        ("dataset_info", "GET", rf"/api/datasets/{_REPO}(?:/revision/{_REV})?"),
        ("tree", "GET", rf"/api/datasets/{_REPO}/tree/{_REV}(?:/(?P<path>.*))?"),
        ("paths_info", "POST", rf"/api/datasets/{_REPO}/paths-info/{_REV}"),
        ("resolve", "HEAD", rf"/datasets/{_REPO}/resolve/{_REV}/(?P<path>.+)"),
        ("resolve", "GET", rf"/datasets/{_REPO}/resolve/{_REV}/(?P<path>.+)"),
        ("dataset_viewer", "GET", r"/(?:info|parquet)"),
    ]
]
"""(endpoint name, method, path pattern); names are what `fail_next` and `requests` take.
Two more names are recorded, never routed: `escaped` (a proxied request for a host that is
neither this server nor its dataset viewer) and `unknown` (a path no route matches)."""

DATASET_READS = ("dataset_info", "tree", "paths_info", "resolve")
"""Endpoints that read a dataset repo: open for public repos, as on the Hub."""
LFS_DATA_SUFFIXES = (".parquet", ".arrow")
"""Data files the Hub's default `.gitattributes` stores in LFS, on top of `LFS_SUFFIXES`."""
VIEWER_HOST_PREFIX = "datasets-server."
"""`datasets` asks `HF_ENDPOINT` with this prefix on its host for a repo's exported infos."""


def git_blob_oid(content: bytes) -> str:
    """The git object id of a blob: what the Hub reports as `oid` for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Recorded:
    """One request as the server saw it."""

    endpoint: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    host: str = ""
    """The host a proxied request named (`http://<host>/...`); empty for direct ones."""

    @property
    def authorization(self) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == "authorization"), None)


@dataclass
class Commit:
    oid: str
    parent: str | None
    message: str
    files: dict[str, bytes]
    lfs_paths: set[str]


@dataclass
class Repo:
    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    pull_requests: list[str] = field(default_factory=list)


@dataclass
class Reply:
    """An answer other than a JSON 200: a status, a body (bytes or JSON-able), headers.
    A `Content-Length` header overrides the body's length (a HEAD answer has no body)."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class HubError(Exception):
    """An error answer: status, message and (for 404s) the Hub's X-Error-Code."""

    def __init__(self, status: int, message: str, code: str | None = None, **body: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body


class FakeHub:
    """State and behaviour of the fake Hub; `start()` serves it on a free loopback port."""

    def __init__(self, valid_tokens: set[str] | None = None) -> None:
        self.valid_tokens = valid_tokens
        self.repos: dict[str, Repo] = {}
        self.dataset_repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[Recorded] = []
        self._failures: dict[str, list[tuple[int, bool]]] = {}
        self._lock = threading.RLock()
        self._counter = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._url: str | None = None
        self._thread: threading.Thread | None = None

    # -- control and inspection (used by tests) --------------------------------------

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`; stays readable after `stop()` for assertions."""
        assert self._url is not None, "start() the fake Hub first"
        return self._url

    def start(self) -> FakeHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(
        self, endpoint: str, times: int = 1, status: int = 503, *, after_handling: bool = False
    ) -> None:
        """Answer the next `times` requests to `endpoint` with `status`.

        By default the request is refused before it is handled; `after_handling=True`
        handles it and then answers `status`: a success whose response got lost.
        """
        if endpoint not in {name for name, _, _ in ROUTES}:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        with self._lock:
            self._failures.setdefault(endpoint, []).extend([(status, after_handling)] * times)

    def requests_to(self, endpoint: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    def head(self, repo_id: str, revision: str = "main") -> Commit:
        repo = self.repos[repo_id]
        return repo.commits[repo.branches[revision]]

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """path -> bytes at the head of `revision` (a branch or `refs/pr/N`)."""
        return dict(self.head(repo_id, revision).files)

    def commit_count(self, repo_id: str) -> int:
        return len(self.repos[repo_id].commits)

    def add_dataset(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        message: str = "add dataset",
        private: bool = False,
    ) -> str:
        """Host a dataset repo (or add a commit to one) with `files` (path -> bytes); its
        commit id. Parquet and Arrow files are LFS files, as on the Hub. Reads of a public
        repo need no token (as on the Hub); a private one's need one of `valid_tokens`."""
        with self._lock:
            repo = self.dataset_repos.setdefault(repo_id, Repo(private=private))
            parent = repo.commits[repo.branches["main"]] if "main" in repo.branches else None
            if parent is None:
                files = {".gitattributes": DATASET_GITATTRIBUTES, **files}
            lfs = {path for path in files if path.endswith(LFS_SUFFIXES + LFS_DATA_SUFFIXES)}
            commit = self._new_commit(repo, parent, message, files=files, lfs_paths=lfs)
            repo.branches["main"] = commit.oid
            return commit.oid

    def dataset_head(self, repo_id: str, revision: str = "main") -> Commit:
        repo = self.dataset_repos[repo_id]
        return repo.commits[repo.branches[revision]]

    def escaped(self) -> list[Recorded]:
        """Requests a client sent through this server (as its proxy) for another host."""
        return self.requests_to("escaped")

    # -- request handling -------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON-able body or bytes, extra headers) for one request."""
        split = urlsplit(raw_path)
        path, query = split.path, parse_qs(split.query)
        host = "" if split.netloc in ("", urlsplit(self.url).netloc) else split.netloc
        endpoint, params = "unknown", {}
        for name, route_method, pattern in ROUTES:
            if method == route_method and (match := pattern.match(path)):
                endpoint = name
                params = {k: unquote(v) for k, v in match.groupdict().items() if v}
                break
        viewer = VIEWER_HOST_PREFIX + urlsplit(self.url).netloc
        if host and not (host == viewer and endpoint == "dataset_viewer"):
            endpoint = "escaped"
        elif not host and endpoint == "dataset_viewer":
            endpoint = "unknown"
        with self._lock:
            self.requests.append(Recorded(endpoint, method, path, query, headers, body, host))
            pending = self._failures.get(endpoint)
            failure = pending.pop(0) if pending else None
            if failure and not failure[1]:
                return failure[0], {"error": f"injected failure of {endpoint}"}, {}
            answer = self._answer(endpoint, method, path, query, headers, body, params)
            if failure:
                return failure[0], {"error": f"injected failure of {endpoint}"}, {}
            return answer

    def _answer(
        self,
        endpoint: str,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        params: dict[str, str],
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            if endpoint == "escaped":
                raise HubError(502, "the fake Hub proxies to no other host")
            if endpoint == "unknown":
                raise HubError(404, f"fake Hub does not implement {method} {path}")
            if endpoint not in ("lfs_upload", "dataset_viewer", *DATASET_READS) or (
                self._private_dataset(params.get("repo"))
            ):
                self._authorize(headers)
            handler = getattr(self, f"_{endpoint}")
            answer = handler(query=query, body=body, method=method, headers=headers, **params)
            if isinstance(answer, Reply):
                return answer.status, answer.body, answer.headers
            return 200, answer, {}
        except HubError as error:
            extra = {"X-Error-Message": error.message}
            if error.code:
                extra["X-Error-Code"] = error.code
            return error.status, {"error": error.message, **error.body}, extra

    def _private_dataset(self, repo_id: str | None) -> bool:
        return repo_id in self.dataset_repos and self.dataset_repos[repo_id].private

    def _authorize(self, headers: dict[str, str]) -> None:
        if self.valid_tokens is None:
            return
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.valid_tokens:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_id: str) -> Repo:
        if repo_id not in self.repos:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return self.repos[repo_id]

    def _branch_head(self, repo_id: str, revision: str) -> Commit:
        repo = self._repo(repo_id)
        if revision not in repo.branches:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[repo.branches[revision]]

    def _new_commit(self, repo: Repo, parent: Commit | None, message: str, **state: Any) -> Commit:
        number = next(self._counter)
        oid = hashlib.sha1(f"{number}:{message}".encode()).hexdigest()
        files = dict(parent.files) if parent else {}
        lfs_paths = set(parent.lfs_paths) if parent else set()
        files.update(state.get("files", {}))
        lfs_paths |= state.get("lfs_paths", set())
        for path in state.get("deleted", ()):
            files.pop(path, None)
            lfs_paths.discard(path)
        commit = Commit(oid, parent.oid if parent else None, message, files, lfs_paths)
        repo.commits[oid] = commit
        return commit

    def _create_repo(self, *, body: bytes, **_: Any) -> dict[str, Any]:
        payload = json.loads(body)
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.repos:
            # The client reads `url` from this 409 too (create_repo(exist_ok=True)).
            raise HubError(409, "You already created this model repo", url=f"{self.url}/{repo_id}")
        repo = Repo(private=payload.get("visibility") == "private")
        first = self._new_commit(
            repo, None, "initial commit", files={".gitattributes": GITATTRIBUTES}
        )
        repo.branches["main"] = first.oid
        self.repos[repo_id] = repo
        return {"url": f"{self.url}/{repo_id}", "name": repo_id, "id": repo_id}

    def _validate_yaml(self, *, body: bytes, **_: Any) -> dict[str, Any]:
        content = json.loads(body)["content"]
        match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        try:
            if match:
                yaml.safe_load(match.group(1))
        except yaml.YAMLError as error:
            raise HubError(400, f"invalid YAML front matter: {error}") from error
        return {"errors": [], "warnings": []}

    def _repo_info(self, *, repo: str, rev: str = "main", **_: Any) -> dict[str, Any]:
        head = self._branch_head(repo, rev)
        return {
            "id": repo,
            "modelId": repo,
            "sha": head.oid,
            "private": self.repos[repo].private,
            "siblings": [{"rfilename": path} for path in sorted(head.files)],
        }

    def _create_branch(self, *, repo: str, rev: str, body: bytes, **_: Any) -> dict[str, Any]:
        record = self._repo(repo)
        if rev in record.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{rev}")
        start = (json.loads(body or b"{}") or {}).get("startingPoint") or "main"
        record.branches[rev] = self._branch_head(repo, start).oid
        return {}

    def _preupload(self, *, repo: str, rev: str, body: bytes, **_: Any) -> dict[str, Any]:
        head = self._branch_head(repo, rev)
        answers = []
        for item in json.loads(body)["files"]:
            path, size = item["path"], item["size"]
            lfs = path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE
            remote = head.files.get(path)
            oid = None
            if remote is not None:
                oid = (
                    hashlib.sha256(remote).hexdigest()
                    if path in head.lfs_paths
                    else git_blob_oid(remote)
                )
            answers.append(
                {
                    "path": path,
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        return {"files": answers, "commitOid": head.oid}

    def _lfs_batch(self, *, repo: str, body: bytes, **_: Any) -> dict[str, Any]:
        self._repo(repo)
        objects = []
        for item in json.loads(body)["objects"]:
            answer: dict[str, Any] = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in self.lfs_objects:
                answer["actions"] = {
                    "upload": {"href": f"{self.url}/_lfs/upload/{item['oid']}"},
                    "verify": {"href": f"{self.url}/_lfs/verify/{item['oid']}"},
                }
            objects.append(answer)
        return {"transfer": "basic", "objects": objects}

    def _lfs_upload(self, *, oid: str, body: bytes, **_: Any) -> bytes:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256")
        self.lfs_objects[oid] = body
        return b""

    def _lfs_verify(self, *, oid: str, **_: Any) -> dict[str, Any]:
        if oid not in self.lfs_objects:
            raise HubError(404, f"LFS object {oid} was not uploaded", "EntryNotFound")
        return {}

    def _commit(
        self, *, repo: str, rev: str, query: dict[str, list[str]], body: bytes, **_: Any
    ) -> dict[str, Any]:
        parent = self._branch_head(repo, rev)
        record = self.repos[repo]
        message, files, lfs_paths, deleted = "", {}, set(), []
        for line in body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value["summary"]
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                if value["oid"] not in self.lfs_objects:
                    raise HubError(400, f"LFS object of {value['path']} was never uploaded")
                files[value["path"]] = self.lfs_objects[value["oid"]]
                lfs_paths.add(value["path"])
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        commit = self._new_commit(
            record, parent, message, files=files, lfs_paths=lfs_paths, deleted=deleted
        )
        pr_url = None
        if query.get("create_pr") == ["1"]:
            record.pull_requests.append(commit.oid)
            number = len(record.pull_requests)
            record.branches[f"refs/pr/{number}"] = commit.oid
            pr_url = f"{self.url}/{repo}/discussions/{number}"
        else:
            record.branches[rev] = commit.oid
        return {
            "success": True,
            "commitOid": commit.oid,
            "commitUrl": f"{self.url}/{repo}/commit/{commit.oid}",
            "pullRequestUrl": pr_url,
        }

    # -- read side of dataset repos ---------------------------------------------------

    def _dataset_at(self, repo_id: str, revision: str) -> Commit:
        """The commit a dataset revision names: a branch, `refs/pr/N` or a commit id."""
        if repo_id not in self.dataset_repos:
            raise HubError(404, "Repository not found", "RepoNotFound")
        repo = self.dataset_repos[repo_id]
        oid = repo.branches.get(revision, revision)
        if oid not in repo.commits:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[oid]

    def _dataset_info(self, *, repo: str, rev: str = "main", **_: Any) -> dict[str, Any]:
        commit = self._dataset_at(repo, rev)
        return {
            "id": repo,
            "author": repo.split("/")[0],
            "sha": commit.oid,
            "private": self.dataset_repos[repo].private,
            "gated": False,
            "disabled": False,
            "lastModified": "2026-01-01T00:00:00.000Z",
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }

    def _tree(
        self, *, repo: str, rev: str, query: dict[str, list[str]], path: str = "", **_: Any
    ) -> list[dict[str, Any]]:
        """One page holding every entry (the client follows `Link` headers; none here)."""
        commit = self._dataset_at(repo, rev)
        prefix = path.strip("/")
        if prefix and prefix not in _folders(commit.files):
            raise HubError(404, f"{prefix} does not exist on {rev}", "EntryNotFound")
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        below = [
            entry
            for entry in sorted(set(commit.files) | _folders(commit.files))
            if entry.startswith(f"{prefix}/" if prefix else "")
        ]
        if not recursive:
            depth = prefix.count("/") + 1 if prefix else 0
            below = [entry for entry in below if entry.count("/") == depth]
        return [_entry(commit, entry) for entry in below]

    def _paths_info(self, *, repo: str, rev: str, body: bytes, **_: Any) -> list[dict[str, Any]]:
        """Entries of the paths asked for (a form field `paths`, repeated); unknown ones are
        left out, as the Hub does."""
        commit = self._dataset_at(repo, rev)
        asked = parse_qs(body.decode()).get("paths", [])
        known = set(commit.files) | _folders(commit.files)
        return [_entry(commit, path.strip("/")) for path in asked if path.strip("/") in known]

    def _resolve(
        self, *, repo: str, rev: str, path: str, method: str, headers: dict[str, str], **_: Any
    ) -> Reply:
        """A file's bytes (all, or the one `Range` asked for), or with HEAD its metadata:
        `X-Repo-Commit`, the `ETag` (git blob id; an LFS file's sha256 as `X-Linked-Etag`)
        and its size. LFS files are served here, not redirected to a CDN."""
        commit = self._dataset_at(repo, rev)
        if path not in commit.files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        content = commit.files[path]
        size = len(content)
        meta = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_blob_oid(_stored(commit, path))}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if path in commit.lfs_paths:
            meta["X-Linked-Etag"] = f'"{hashlib.sha256(content).hexdigest()}"'
            meta["X-Linked-Size"] = str(size)
        if method == "HEAD":
            return Reply(200, b"", {**meta, "Content-Length": str(size)})
        asked = next((v for k, v in headers.items() if k.lower() == "range"), None)
        if asked is None:
            return Reply(200, content, meta)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", asked.strip())
        if match is None or match.groups() == ("", ""):
            raise HubError(400, f"unsupported Range header {asked!r}")
        first, last = match.groups()
        start = int(first) if first else max(size - int(last), 0)
        end = min(int(last), size - 1) if first and last else size - 1
        if start >= size:
            raise HubError(416, "Range Not Satisfiable", size=size)
        return Reply(
            206, content[start : end + 1], {**meta, "Content-Range": f"bytes {start}-{end}/{size}"}
        )

    def _dataset_viewer(self, **_: Any) -> Reply:
        """No exported Parquet or infos, as for a repo the viewer has not processed."""
        return Reply(404, {"error": "The dataset viewer has not processed this dataset"})


def _folders(paths: Any) -> set[str]:
    """Every folder above the files at `paths`."""
    return {"/".join(p.split("/")[:n]) for p in paths for n in range(1, p.count("/") + 1)}


def _stored(commit: Commit, path: str) -> bytes:
    """What git stores for the file: its bytes, or an LFS file's pointer."""
    content = commit.files[path]
    if path not in commit.lfs_paths:
        return content
    sha = hashlib.sha256(content).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(content)}\n".encode()


def _entry(commit: Commit, path: str) -> dict[str, Any]:
    """A tree / paths-info entry as the Hub lists it."""
    if path not in commit.files:
        oid = hashlib.sha1(f"{commit.oid}:{path}".encode()).hexdigest()
        return {"type": "directory", "oid": oid, "size": 0, "path": path}
    content, stored = commit.files[path], _stored(commit, path)
    entry: dict[str, Any] = {
        "type": "file",
        "oid": git_blob_oid(stored),
        "size": len(content),
        "path": path,
    }
    if path in commit.lfs_paths:
        sha = hashlib.sha256(content).hexdigest()
        entry["lfs"] = {"oid": sha, "size": len(content), "pointerSize": len(stored)}
    return entry


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve(self) -> None:
            body = self._body()
            status, payload, extra = hub.handle(
                self.command, self.path, dict(self.headers.items()), body
            )
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            extra = {"Content-Type": "application/json", "Content-Length": str(len(data)), **extra}
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

        def do_CONNECT(self) -> None:
            """An HTTPS tunnel through the proxy: recorded as `escaped` and refused."""
            status, payload, _ = hub.handle("CONNECT", f"http://{self.path}/", {}, b"")
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the recorded requests are the log."""

    return Handler


@contextmanager
def use_fake_hub(monkeypatch: Any, hub: FakeHub) -> Iterator[FakeHub]:
    """Point `huggingface_hub` at `hub` for one test (see the module docstring for why)."""
    import huggingface_hub.constants as constants
    from huggingface_hub.utils import close_session

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    close_session()  # the shared client may predate NO_PROXY
    try:
        yield hub
    finally:
        close_session()
