"""One run at a time per checkpoint series: a lease with a heartbeat.

The run that trains a series holds its lease: a file `LEASE-<generation>.json` at the
series root that the holder rewrites every `heartbeat_s` seconds. Another run finds the
newest generation and

- refuses to start while that lease is live, naming the holder (`LeaseHeld`);
- takes over a lease that was released, whose heartbeat is older than `timeout_s`, whose
  holder was a process on this host that no longer exists, or that was held by an
  earlier attempt of the same orchestrator run (an orchestrator retries a step only
  after the attempt failed): it creates generation + 1.

Taking a generation is a conditional create (`open(path, "xb")`): of several runs that
try the same generation, exactly one succeeds where the filesystem makes "create if
absent" atomic. Generations only grow, and the holder checks before each checkpoint it
publishes (and with each heartbeat) that no newer generation exists; a holder that lost
its lease (it stalled past `timeout_s`, say) stops with `LeaseLost` instead of writing
into a series another run now trains.

What backs "create if absent" (see the README, "Long runs and preemption"):
local disks and NFSv3+ (`O_CREAT | O_EXCL`, used by fsspec's local `xb` mode) and
fsspec's memory filesystem are verified by this project's tests. Object stores depend on
their fsspec backend: a backend whose `open(..., "xb")` is not a conditional PUT (GCS
`ifGenerationMatch=0`, S3 `If-None-Match: *`) falls back to check-then-write, where two
runs starting within the same second can both win; the generation check before each
publish then stops the older generation at its next checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel, ValidationError

from trainer.training.checkpoints import LEASE_PREFIX, CheckpointStore

logger = logging.getLogger(__name__)


class LeaseHeld(RuntimeError):
    """Another live run holds the series' lease."""


class LeaseLost(RuntimeError):
    """A newer run took the lease over: this run must not write to the series any more."""


class LeaseRecord(BaseModel):
    """The content of a lease file."""

    generation: int
    holder: str
    run_id: str | None = None
    host: str
    pid: int
    acquired_at: float
    heartbeat_at: float
    timeout_s: float
    released: bool = False

    def describe(self, now: float) -> str:
        return (
            f"{self.holder} (host {self.host}, pid {self.pid}, last heartbeat "
            f"{max(0.0, now - self.heartbeat_at):.0f} s ago)"
        )


def _lease_name(generation: int) -> str:
    return f"{LEASE_PREFIX}{generation:09d}.json"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: it exists
        return False
    return False


class SeriesLease:
    """The lease of the series in `store`, for the run named `holder`."""

    def __init__(
        self,
        store: CheckpointStore,
        *,
        holder: str,
        run_id: str | None = None,
        timeout_s: float = 300.0,
        heartbeat_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.fs: AbstractFileSystem = store.fs
        self.holder = holder
        self.run_id = run_id
        self.timeout_s = timeout_s
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.record: LeaseRecord | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- reading ---------------------------------------------------------------------

    def _generations(self) -> dict[int, str]:
        if not self.fs.isdir(self.store.root):
            return {}
        found = {}
        for entry in self.fs.ls(self.store.root, detail=False):
            name = str(entry).rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(LEASE_PREFIX) and name.endswith(".json"):
                digits = name[len(LEASE_PREFIX) : -len(".json")]
                if digits.isdigit():
                    found[int(digits)] = str(entry).rstrip("/")
        return found

    def _read(self, path: str) -> LeaseRecord | None:
        """The record at `path`; None while it is being written (or gone)."""
        for _ in range(3):
            try:
                return LeaseRecord.model_validate_json(self.fs.cat_file(path))
            except FileNotFoundError:
                return None
            except (ValidationError, ValueError):
                time.sleep(0.05)
        return None

    def newest(self) -> LeaseRecord | None:
        generations = self._generations()
        if not generations:
            return None
        top = max(generations)
        record = self._read(generations[top])
        if record is None:  # being written by its creator: held, just now
            now = self.clock()
            return LeaseRecord(
                generation=top, holder="a run taking the lease now", host="?", pid=0,
                acquired_at=now, heartbeat_at=now, timeout_s=self.timeout_s,
            )  # fmt: skip
        return record

    def why_free(self, record: LeaseRecord) -> str | None:
        """Why `record` no longer holds the series (None: it does)."""
        if record.released:
            return f"released by {record.holder}"
        age = self.clock() - record.heartbeat_at
        if age > record.timeout_s:
            return f"{record.holder} sent no heartbeat for {age:.0f} s (timeout {record.timeout_s:g} s)"
        here = record.host == socket.gethostname() and record.pid != os.getpid()
        if here and _process_gone(record.pid):
            return f"{record.holder} (pid {record.pid} on this host) is gone"
        if self.run_id is not None and record.run_id == self.run_id:
            return f"held by an earlier attempt of this run ({record.holder})"
        return None

    # --- holding ---------------------------------------------------------------------

    def _write(self, path: str, record: LeaseRecord, *, exclusive: bool) -> None:
        data = record.model_dump_json(indent=1).encode()
        if exclusive:
            try:
                with self.fs.open(path, "xb") as file:
                    file.write(data)
            except (ValueError, NotImplementedError, TypeError):  # no "xb" in this backend
                logger.warning(
                    "%s cannot create a file only if it is absent: the lease falls back to "
                    "check-then-write (see the module's notes)",
                    type(self.fs).__name__,
                )
                if self.fs.exists(path):
                    raise FileExistsError(path) from None
                self.fs.pipe_file(path, data)
        elif isinstance(self.fs, LocalFileSystem):
            # Readers must never see half a file: write aside, then rename over it.
            temporary = f"{path}.{os.getpid()}.tmp"
            with open(temporary, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        else:  # one PUT: object stores replace whole objects
            self.fs.pipe_file(path, data)

    def acquire(self) -> LeaseRecord:
        """Take the lease, or raise `LeaseHeld` naming the live holder."""
        where = self.store._display(self.store.root)
        current = self.newest()
        if current is not None:
            reason = self.why_free(current)
            if reason is None:
                raise LeaseHeld(self._held_message(current, where))
            logger.info("checkpoint series lease at %s: %s; taking it over", where, reason)
        generation = current.generation + 1 if current else 1
        now = self.clock()
        record = LeaseRecord(
            generation=generation, holder=self.holder, run_id=self.run_id,
            host=socket.gethostname(), pid=os.getpid(), acquired_at=now, heartbeat_at=now,
            timeout_s=self.timeout_s,
        )  # fmt: skip
        self.fs.makedirs(self.store.root, exist_ok=True)
        path = self.store._path(_lease_name(generation))
        try:
            self._write(path, record, exclusive=True)
        except FileExistsError:
            other = self._read(path) or record.model_copy(update={"holder": "another run"})
            raise LeaseHeld(self._held_message(other, where)) from None
        newest = self.newest()
        if newest is not None and newest.generation > generation:
            self._drop(generation)
            raise LeaseHeld(self._held_message(newest, where))
        self.record = record
        for older, older_path in self._generations().items():
            if older < generation:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(older_path)
        return record

    def _held_message(self, record: LeaseRecord, where: str) -> str:
        return (
            f"the checkpoint series at {where} is being trained by {record.describe(self.clock())}; "
            "two runs on one series would interleave their checkpoints. Wait for it to end, "
            "or give this run its own checkpoints.uri; a lease whose holder died expires after "
            f"{record.timeout_s:g} s without a heartbeat (the holder's checkpoints.lease.timeout_s)"
        )

    def _drop(self, generation: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self.store._path(_lease_name(generation)))

    def check(self) -> None:
        """Raise `LeaseLost` when a newer generation exists (another run took over)."""
        if self.lost is None and self.record is not None:
            newest = max(self._generations(), default=0)
            if newest > self.record.generation:
                taker = self.newest()
                by = taker.holder if taker else "another run"
                self.lost = (
                    f"the lease of the checkpoint series at {self.store.uri} was taken over by "
                    f"{by} (this run's heartbeat had stopped for longer than its timeout): "
                    "this run stops without writing to the series"
                )
        if self.lost is not None:
            raise LeaseLost(self.lost)

    def heartbeat(self) -> None:
        assert self.record is not None
        self.check()
        self.record = self.record.model_copy(update={"heartbeat_at": self.clock()})
        self._write(
            self.store._path(_lease_name(self.record.generation)), self.record, exclusive=False
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.heartbeat()
            except LeaseLost as lost:
                logger.error("%s", lost)
                return
            except Exception as error:  # a storage hiccup: try again at the next beat
                logger.warning("lease heartbeat failed: %s: %s", type(error).__name__, error)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.record is None or self.lost is not None:
            return
        with contextlib.suppress(LeaseLost):
            self.check()
            self.record = self.record.model_copy(
                update={"released": True, "heartbeat_at": self.clock()}
            )
            self._write(
                self.store._path(_lease_name(self.record.generation)), self.record, exclusive=False
            )

    @contextlib.contextmanager
    def held(self) -> Iterator[SeriesLease]:
        """Hold the lease (heartbeat in a thread) for the block; release it at the end,
        also when the block fails."""
        self.acquire()
        self._thread = threading.Thread(target=self._beat, name="series-lease", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self.release()
