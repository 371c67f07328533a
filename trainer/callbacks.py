"""Trainer callbacks that make a training run survive its pod.

`PublishCheckpoints` copies every checkpoint the Trainer writes to the durable store;
`StopOnSignal` turns SIGTERM (what Kubernetes sends before it kills a preempted or
evicted pod) into "save a checkpoint at the end of this step, then stop", so the Job's
retry continues from that step instead of from zero.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trainer.checkpoints import CHECKPOINT_PREFIX, CheckpointStore

logger = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal after saving a checkpoint; a retry resumes from it."""


class PublishCheckpoints(TrainerCallback):
    """After the Trainer finished writing `checkpoint-<step>` locally, publish it to the
    store and prune the store to the `keep` newest checkpoints."""

    def __init__(self, store: CheckpointStore, *, keep: int, run: str | None = None) -> None:
        self.store = store
        self.keep = keep
        self.run = run
        self.saved_steps: list[int] = []

    def on_save(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if not state.is_world_process_zero:
            return
        local = Path(args.output_dir) / f"{CHECKPOINT_PREFIX}{state.global_step}"
        checkpoint = self.store.publish(local, state.global_step, self.run)
        self.store.prune(self.keep)
        self.saved_steps.append(state.global_step)
        logger.info("checkpoint at global step %d saved: %s", state.global_step, checkpoint.uri)


class StopOnSignal(TrainerCallback):
    """On SIGTERM (or SIGINT), finish the current optimizer step, save a checkpoint and
    stop training. `stopped_at` is the global step of that checkpoint."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)) -> None:
        self.signals = signals
        self.received: signal.Signals | None = None
        self.stopped_at: int | None = None

    def _handle(self, signum: int, _frame: Any) -> None:
        self.received = signal.Signals(signum)
        logger.warning(
            "received %s: saving a checkpoint when the current step ends, then stopping",
            self.received.name,
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopOnSignal]:
        """Handle the signals for the duration of the block, then restore the old handlers.

        Python only lets the main thread install handlers; elsewhere (an orchestrator that
        runs steps in threads) training runs without them, and says so.
        """
        if threading.current_thread() is not threading.main_thread():
            logger.warning("not in the main thread: SIGTERM will not save a checkpoint")
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in self.signals}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def on_step_end(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        if self.received is not None and self.stopped_at is None:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
