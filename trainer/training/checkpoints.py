"""Durable training checkpoints in any fsspec location, published atomically.

The Hugging Face Trainer writes `checkpoint-<step>/` folders (model, optimizer, scheduler,
RNG states, `trainer_state.json` with the global step and sampler position) into a local
staging folder. This store copies each finished folder to its durable location (a local
path, a mounted volume, `s3://`, `gs://`, the ZenML artifact store...) and writes a
manifest last. A folder without a manifest, or whose files do not match the sizes the
manifest lists, was cut short (the pod was killed while uploading) and is never used.

Layout of a series (one training configuration):

    <uri>/SERIES.json                ownership manifest: this store made the folder, for
                                     the training with this digest (and the keys behind it)
    <uri>/LEASE-<generation>.json    the run training the series now (`lease.py`)
    <uri>/checkpoint-4/...           files as the Trainer wrote them
    <uri>/checkpoint-4/COMPLETE.json manifest: step, file sizes, the run that saved it
    <uri>/FINISHED.json              the series ran to the end: a new run starts afresh

The store owns only what it made: a location that holds anything but no `SERIES.json` is
foreign (another tool's checkpoints, a user's folder); nothing there is resumed, written
or deleted (`ForeignLocation`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel, ConfigDict

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
"""The Trainer's folder prefix (`transformers.trainer_utils.PREFIX_CHECKPOINT_DIR`)."""
MANIFEST_NAME = "COMPLETE.json"
FINISHED_NAME = "FINISHED.json"
SERIES_NAME = "SERIES.json"
LEASE_PREFIX = "LEASE-"
TRAINER_STATE_NAME = "trainer_state.json"
_STEP_DIR = re.compile(rf"^{CHECKPOINT_PREFIX}(\d+)$")


class Checkpoint(BaseModel):
    """One complete checkpoint: its global step, where it lives, and who saved it."""

    model_config = ConfigDict(frozen=True)

    step: int
    uri: str
    run: str | None = None
    saved_at: str | None = None


class SeriesFinished(BaseModel):
    """The marker a training that ran to the end leaves at the series root."""

    model_config = ConfigDict(frozen=True)

    step: int
    run: str | None = None
    finished_at: str


class SeriesIdentity(BaseModel):
    """What a training learns from: its digest and the flattened keys that shaped it
    (`training.learning_rate`, `data.docs`, ...: values as JSON), kept so that a refused
    resume can name the keys that differ."""

    model_config = ConfigDict(frozen=True)

    digest: str | None = None
    shaping: dict[str, str] = {}

    def differences(self, other: SeriesIdentity) -> list[str]:
        """`key: other's value -> this value` for every key that differs."""
        keys = sorted(set(self.shaping) | set(other.shaping))
        return [
            f"{key}: {other.shaping.get(key, '(unset)')} -> {self.shaping.get(key, '(unset)')}"
            for key in keys
            if self.shaping.get(key) != other.shaping.get(key)
        ]


class SeriesManifest(SeriesIdentity):
    """`SERIES.json`: the store created this folder, for the training named by `digest`."""

    created_at: str
    created_by: str | None = None


class ForeignLocation(RuntimeError):
    """The checkpoint location holds files this store did not write."""


class SeriesMismatch(RuntimeError):
    """The location holds an unfinished series of a different training."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _is_ours(name: str) -> bool:
    """Names the store writes at a series root before it owns it (a lease being taken)."""
    return name.startswith(LEASE_PREFIX) and name.endswith(".json")


class CheckpointStore:
    """The checkpoints of one training series at `uri`.

    `filesystem` lets an orchestrator hand in a filesystem that already carries its
    credentials (a ZenML artifact store's); by default fsspec resolves `uri` itself.
    """

    def __init__(self, uri: str, filesystem: AbstractFileSystem | None = None) -> None:
        if filesystem is None:
            filesystem, root = fsspec.core.url_to_fs(uri)
        else:
            root = filesystem._strip_protocol(uri)
        self.fs: AbstractFileSystem = filesystem
        self.root: str = str(root).rstrip("/")
        self.uri = uri.rstrip("/")

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _display(self, path: str) -> str:
        """`path` as users write it: plain for local files, with its scheme otherwise."""
        return path if isinstance(self.fs, LocalFileSystem) else self.fs.unstrip_protocol(path)

    # --- ownership ------------------------------------------------------------------

    def series(self) -> SeriesManifest | None:
        """The ownership manifest, when this store created the series at `uri`."""
        path = self._path(SERIES_NAME)
        if not self.fs.exists(path):
            return None
        return SeriesManifest.model_validate_json(self.fs.cat_file(path))

    def foreign_entries(self) -> list[str]:
        """What the location holds that this store did not write: empty for one of our
        series, an empty or missing folder; the entries' names otherwise."""
        if not self.fs.isdir(self.root):
            return [self.root.rsplit("/", 1)[-1]] if self.fs.exists(self.root) else []
        if self.fs.exists(self._path(SERIES_NAME)):
            return []
        names = [
            str(entry).rstrip("/").rsplit("/", 1)[-1]
            for entry in self.fs.ls(self.root, detail=False)
        ]
        return sorted(name for name in names if not _is_ours(name))

    def foreign_message(self, entries: list[str]) -> str:
        shown = ", ".join(entries[:5]) + (
            f" and {len(entries) - 5} more" if len(entries) > 5 else ""
        )
        where = self._display(self.root)
        return (
            f"checkpoint location {where} holds files this run did not write ({shown}) and no "
            f"{SERIES_NAME}: it is not one of our checkpoint series, so nothing there is resumed, "
            "written or deleted. Point checkpoints.uri at an empty or new folder (or leave it "
            "unset); to start from a Trainer checkpoint found there, name it read-only with "
            f"checkpoints.resume: {where}/{CHECKPOINT_PREFIX}<step>"
        )

    def claim(
        self, identity: SeriesIdentity | None = None, run: str | None = None
    ) -> SeriesManifest:
        """Make the location one of our series (it must be empty, missing or ours already;
        `ForeignLocation` otherwise); an existing manifest is replaced by `identity`'s."""
        entries = self.foreign_entries()
        if entries:
            raise ForeignLocation(self.foreign_message(entries))
        identity = identity or SeriesIdentity()
        manifest = SeriesManifest(
            digest=identity.digest, shaping=identity.shaping, created_at=_now(), created_by=run
        )
        self.fs.makedirs(self.root, exist_ok=True)
        self.fs.pipe_file(self._path(SERIES_NAME), manifest.model_dump_json(indent=1).encode())
        return manifest

    def _own(self) -> None:
        """Before writing: claim an empty location, refuse a foreign one."""
        if not self.fs.exists(self._path(SERIES_NAME)):
            self.claim()

    def _owned(self) -> bool:
        """Before deleting: whether there is anything of ours to delete (a foreign location
        raises `ForeignLocation`; an empty or missing one has nothing)."""
        if self.fs.exists(self._path(SERIES_NAME)):
            return True
        entries = self.foreign_entries()
        if entries:
            raise ForeignLocation(self.foreign_message(entries))
        return False

    # --- reading --------------------------------------------------------------------

    def _step_dirs(self) -> dict[int, str]:
        """Every `checkpoint-<step>` folder, complete or not, by step."""
        if not self.fs.isdir(self.root):
            return {}
        found: dict[int, str] = {}
        for entry in self.fs.ls(self.root, detail=False):
            match = _STEP_DIR.match(str(entry).rstrip("/").rsplit("/", 1)[-1])
            if match:
                found[int(match.group(1))] = str(entry).rstrip("/")
        return found

    def _verify(self, step: int, path: str) -> Checkpoint | None:
        """The checkpoint at `path` if its manifest exists and every listed file has its
        recorded size; None (with the reason logged) otherwise."""
        manifest_path = f"{path}/{MANIFEST_NAME}"
        if not self.fs.exists(manifest_path):
            logger.info("%s has no %s: an interrupted save, ignored", path, MANIFEST_NAME)
            return None
        manifest = json.loads(self.fs.cat_file(manifest_path))
        for name, size in manifest["files"].items():
            file_path = f"{path}/{name}"
            actual = self.fs.size(file_path) if self.fs.exists(file_path) else None
            if actual != size:
                logger.warning(
                    "%s is damaged (%s: %s bytes, manifest says %d): ignored",
                    path,
                    name,
                    "missing" if actual is None else actual,
                    size,
                )
                return None
        return Checkpoint(
            step=step,
            uri=self._display(path),
            run=manifest.get("run"),
            saved_at=manifest.get("saved_at"),
        )

    def complete(self) -> list[Checkpoint]:
        """Complete, intact checkpoints, oldest first."""
        checkpoints = []
        for step, path in sorted(self._step_dirs().items()):
            checkpoint = self._verify(step, path)
            if checkpoint is not None:
                checkpoints.append(checkpoint)
        return checkpoints

    def newest(self) -> Checkpoint | None:
        """The complete checkpoint with the highest global step, if any."""
        for step, path in sorted(self._step_dirs().items(), reverse=True):
            checkpoint = self._verify(step, path)
            if checkpoint is not None:
                return checkpoint
        return None

    def finished(self) -> SeriesFinished | None:
        """The finished marker, if a training of this series ran to the end."""
        path = self._path(FINISHED_NAME)
        if not self.fs.exists(path):
            return None
        return SeriesFinished.model_validate_json(self.fs.cat_file(path))

    def fetch(self, checkpoint: Checkpoint, into: Path) -> Path:
        """Copy `checkpoint` to `into/checkpoint-<step>`: the local folder the Trainer
        resumes from."""
        target = into / f"{CHECKPOINT_PREFIX}{checkpoint.step}"
        source = str(self.fs._strip_protocol(checkpoint.uri)).rstrip("/")
        for path in self.fs.find(source):
            name = str(path)[len(source) + 1 :]
            if name == MANIFEST_NAME:
                continue
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(path, str(target / name))
        return target

    # --- writing --------------------------------------------------------------------

    def publish(self, local_dir: Path, step: int, run: str | None = None) -> Checkpoint:
        """Upload the Trainer's folder for `step`, then its manifest (last, so a reader
        never sees a manifest for files that are not all there)."""
        if not (local_dir / TRAINER_STATE_NAME).is_file():
            raise FileNotFoundError(
                f"{local_dir} is not a Trainer checkpoint: no {TRAINER_STATE_NAME}"
            )
        self.begin(step)
        self.upload(local_dir, step)
        return self.commit(step, run)

    # A checkpoint of several nodes is published in three phases, a barrier between each:
    # rank 0 begins, every node uploads its files (rank 0 all of its own, other nodes
    # their ranks' RNG states), rank 0 commits. `publish` is all three in one process.

    def begin(self, step: int) -> None:
        """Clear what an attempt killed while uploading `step` left behind."""
        self._own()
        target = self._path(f"{CHECKPOINT_PREFIX}{step}")
        if self.fs.exists(target):
            self.fs.rm(target, recursive=True)
        self.fs.makedirs(target, exist_ok=True)

    def upload(self, local_dir: Path, step: int, names: list[str] | None = None) -> None:
        """Copy the files of `local_dir` (or only `names`, relative paths) into `step`."""
        target = self._path(f"{CHECKPOINT_PREFIX}{step}")
        if names is None:
            names = [
                p.relative_to(local_dir).as_posix() for p in local_dir.rglob("*") if p.is_file()
            ]
        for name in sorted(names):
            self.fs.makedirs(f"{target}/{name}".rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(local_dir / name), f"{target}/{name}")

    def commit(self, step: int, run: str | None = None) -> Checkpoint:
        """Write the manifest of what `step` holds in the store: now the checkpoint exists."""
        target = self._path(f"{CHECKPOINT_PREFIX}{step}")
        files = {}
        for path, info in sorted(self.fs.find(target, detail=True).items()):
            name = str(path).rstrip("/")[len(target) + 1 :]
            if name != MANIFEST_NAME:
                files[name] = int(info["size"])
        if TRAINER_STATE_NAME not in files:
            raise FileNotFoundError(f"{target} has no {TRAINER_STATE_NAME}: nothing to commit")
        saved_at = _now()
        manifest = {"step": step, "run": run, "saved_at": saved_at, "files": files}
        self.fs.pipe_file(f"{target}/{MANIFEST_NAME}", json.dumps(manifest, indent=1).encode())
        return Checkpoint(step=step, uri=self._display(target), run=run, saved_at=saved_at)

    def prune(self, keep: int, protect: Collection[int] = ()) -> list[int]:
        """Keep the `keep` newest complete checkpoints, and those of `protect` (the best
        checkpoint, which `load_best_model_at_end` loads at the end); also drop interrupted
        folders older than the newest complete one. Returns the steps removed."""
        if not self._owned():
            return []
        complete = {checkpoint.step for checkpoint in self.complete()}
        kept = set(sorted(complete)[-keep:]) if keep > 0 else set()
        kept |= complete & set(protect)
        newest = max(complete, default=-1)
        removed = []
        for step, path in self._step_dirs().items():
            if step in kept or (step not in complete and step > newest):
                continue
            self.fs.rm(path, recursive=True)
            removed.append(step)
        return sorted(removed)

    def mark_finished(self, step: int, run: str | None = None) -> SeriesFinished:
        """Record that the training ran to the end and drop its checkpoints: a finished
        series is never resumed, so they would only take space."""
        self._own()
        for step_dir in self._step_dirs().values():
            self.fs.rm(step_dir, recursive=True)
        marker = SeriesFinished(step=step, run=run, finished_at=_now())
        self.fs.makedirs(self.root, exist_ok=True)
        self.fs.pipe_file(self._path(FINISHED_NAME), marker.model_dump_json().encode())
        return marker

    def reset(self, *, keep_up_to: int | None = None) -> None:
        """Forget the series (every checkpoint and the finished marker) before a fresh
        start; with `keep_up_to`, only what lies after that step (a resume from it).
        The ownership manifest stays: the location is still ours."""
        if not self._owned():
            return
        for step, path in self._step_dirs().items():
            if keep_up_to is None or step > keep_up_to:
                self.fs.rm(path, recursive=True)
        finished = self._path(FINISHED_NAME)
        if self.fs.exists(finished):
            self.fs.rm(finished)


def fsspec_can_open(uri: str) -> bool:
    """Whether fsspec knows `uri`'s protocol (a local path always qualifies). Kubeflow's
    default pipeline root, `minio://...`, does not: its launcher alone can write there."""
    protocol, _ = fsspec.core.split_protocol(uri)
    return protocol is None or protocol in fsspec.available_protocols()


def open_checkpoint(
    uri: str, filesystem: AbstractFileSystem | None = None
) -> tuple[CheckpointStore, Checkpoint]:
    """A checkpoint a user named (`checkpoints.resume: <uri>`) and the store it lives in:
    one of ours (verified by its manifest) or any Trainer checkpoint folder (it must hold
    `trainer_state.json`)."""
    parent, _, name = uri.rstrip("/").rpartition("/")
    match = _STEP_DIR.match(name)
    store = CheckpointStore(parent or ".", filesystem)
    path = store._path(name)
    if match is None or not store.fs.exists(f"{path}/{TRAINER_STATE_NAME}"):
        raise FileNotFoundError(
            f"checkpoints.resume: {uri!r} is not a checkpoint folder (expected "
            f"{CHECKPOINT_PREFIX}<step>/ holding {TRAINER_STATE_NAME}); use 'auto' or 'never' "
            "to let the run decide"
        )
    step = int(match.group(1))
    if store.fs.exists(f"{path}/{MANIFEST_NAME}"):
        checkpoint = store._verify(step, path)
        if checkpoint is None:
            raise ValueError(f"checkpoints.resume: {uri!r} is incomplete or damaged")
        return store, checkpoint
    return store, Checkpoint(step=step, uri=store._display(path))


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal after saving a checkpoint; a retry resumes from it."""
