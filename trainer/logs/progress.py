"""Progress as plain log lines at a steady interval, for logs that are read later.

ZenML step logs (and `kubectl logs`) keep every byte a process writes: a tqdm bar's
carriage returns become thousands of half-lines, so library bars are off
(`trainer.logs.libraries`) and progress is reported here instead, one line every
`every_s` seconds:

    step 12/37 (32%) | 9.1 pairs/s | epoch 0.32 | loss 0.84 | lr 4.1e-05 | ETA 2m 40s
    scoring the base model with stdlib-docs-ir: texts 640/1138 (56%) | 41.2 texts/s | ETA 12s

`ProgressLogger` is the generic part (any loop with a known total: training steps,
encoded texts, mining); the trainer feeds it through `TrainingProgressCallback`, and
`encoding_progress` counts the texts a model encodes (evaluation, mining) with a forward
hook, since sentence-transformers' own encoding progress is a tqdm bar.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

T = TypeVar("T")


def format_duration(seconds: float) -> str:
    """`2h 03m`, `2m 40s`, `9s`: short, and stable in width within a run."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


class ProgressLogger:
    """Logs `<what> done/total (pct%) | rate | details | ETA` at most every `every_s`.

    `items_per_unit` converts units to the rate's items (a training step is a global
    batch of pairs). `clock` and `log` are injectable so tests need neither sleep nor
    log capture.
    """

    def __init__(
        self,
        total: int | None,
        what: str,
        *,
        every_s: float = 15.0,
        items_per_unit: float = 1.0,
        item_name: str | None = None,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.what = what
        self.every_s = every_s
        self.items_per_unit = items_per_unit
        self.item_name = item_name or what
        self.log = log or logger.info
        self.clock = clock
        self._started: float | None = None
        self._start_done = 0
        self._last_logged: float | None = None
        self.done = 0

    def start(self, done: int = 0, note: str | None = None) -> None:
        """Begin timing at `done` units (non-zero when resuming) and log a start line."""
        self._started = self._last_logged = self.clock()
        self._start_done = self.done = done
        total = f"/{self.total}" if self.total is not None else ""
        suffix = f" | {note}" if note else ""
        self.log(f"{self.what} {done}{total}: started{suffix}")

    def update(self, done: int, details: dict[str, str] | None = None) -> bool:
        """Record progress; log when `every_s` passed since the last line. Returns whether
        a line was logged."""
        if self._started is None:
            self.start()
        self.done = done
        now = self.clock()
        if self._last_logged is not None and now - self._last_logged < self.every_s:
            return False
        self._last_logged = now
        self.log(self.line(details))
        return True

    def finish(self, details: dict[str, str] | None = None) -> None:
        """The closing line: units done, elapsed time and the overall rate."""
        elapsed = self.elapsed()
        parts = [f"{self.what} {self.done}{f'/{self.total}' if self.total else ''}: done"]
        parts.append(f"in {format_duration(elapsed)}")
        rate = self.rate()
        if rate is not None:
            parts.append(f"{rate:.1f} {self.item_name}/s")
        parts += [f"{key} {value}" for key, value in (details or {}).items()]
        self.log(" | ".join(parts))

    def elapsed(self) -> float:
        return 0.0 if self._started is None else self.clock() - self._started

    def rate(self) -> float | None:
        """Items per second since `start` (None before any time has passed)."""
        elapsed = self.elapsed()
        if elapsed <= 0:
            return None
        return (self.done - self._start_done) * self.items_per_unit / elapsed

    def eta(self) -> float | None:
        elapsed, units = self.elapsed(), self.done - self._start_done
        if self.total is None or units <= 0 or elapsed <= 0:
            return None
        return (self.total - self.done) * elapsed / units

    def line(self, details: dict[str, str] | None = None) -> str:
        count = f"{self.what} {self.done}"
        if self.total:
            count += f"/{self.total} ({100 * self.done / self.total:.0f}%)"
        parts = [count]
        rate = self.rate()
        if rate is not None:
            parts.append(f"{rate:.1f} {self.item_name}/s")
        parts += [f"{key} {value}" for key, value in (details or {}).items()]
        eta = self.eta()
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return " | ".join(parts)


def progress(
    items: Iterable[T],
    what: str,
    *,
    total: int | None = None,
    every_s: float = 15.0,
    log: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[T]:
    """Iterate `items`, logging progress like `ProgressLogger` (for mining, evaluation, ...)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    tracker = ProgressLogger(total, what, every_s=every_s, log=log, clock=clock)
    tracker.start()
    for done, item in enumerate(items, start=1):
        yield item
        tracker.update(done)
    tracker.finish()


@contextlib.contextmanager
def encoding_progress(
    model: nn.Module,
    total: int | None,
    what: str,
    *,
    every_s: float = 15.0,
    log: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[ProgressLogger]:
    """Log progress lines while `model` encodes about `total` texts inside the block.

    A forward hook counts the rows of each batch the model embeds (any `encode`,
    `encode_query` or `encode_document` call goes through the model's forward), so it
    works whichever library code does the encoding. A start line, a line at most every
    `every_s` seconds with rate and ETA, and a closing line with the time taken.
    """
    tracker = ProgressLogger(
        total, f"{what}: texts", every_s=every_s, item_name="texts", log=log, clock=clock
    )

    def count(_module: Any, _inputs: Any, output: Any) -> None:
        # A dict-like of features (transformers' BatchEncoding is a UserDict, not a dict).
        embeddings = output.get("sentence_embedding") if isinstance(output, Mapping) else None
        rows = int(embeddings.shape[0]) if embeddings is not None else 0
        if rows:
            done = tracker.done + rows
            if tracker.total is not None and done > tracker.total:
                tracker.total = None  # more than estimated: keep counting, no false ETA
            tracker.update(done)

    tracker.start()
    handle = model.register_forward_hook(count)
    try:
        yield tracker
    finally:
        handle.remove()
    tracker.finish()
