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
from trainer.distributed import Topology, any_rank, barrier

logger = logging.getLogger(__name__)


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal after saving a checkpoint; a retry resumes from it."""


class PublishCheckpoints(TrainerCallback):
    """After the Trainer finished writing `checkpoint-<step>` locally, publish it to the
    store and prune the store to the `keep` newest checkpoints.

    With several processes every rank calls this: rank 0 uploads its node's folder (the
    model, optimizer and trainer state are its alone), the first rank of each other node
    uploads its ranks' RNG states, and rank 0 commits once all uploads are in.
    """

    def __init__(
        self,
        store: CheckpointStore,
        *,
        keep: int,
        run: str | None = None,
        topology: Topology | None = None,
    ) -> None:
        self.store = store
        self.keep = keep
        self.run = run
        self.topology = topology or Topology()
        self.saved_steps: list[int] = []

    def on_save(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        **kwargs: Any,
    ) -> None:
        step, topology = state.global_step, self.topology
        local = Path(args.output_dir) / f"{CHECKPOINT_PREFIX}{step}"
        if not topology.distributed:
            checkpoint = self.store.publish(local, step, self.run)
        else:
            barrier()  # every rank has written its part of the folder
            if topology.is_main:
                self.store.begin(step)
            barrier()
            if topology.is_main:
                self.store.upload(local, step)
            elif topology.is_node_leader:
                self.store.upload(local, step, names=_rng_files(local))
            barrier()
            checkpoint = self.store.commit(step, self.run) if topology.is_main else None
        if topology.is_main:
            self.store.prune(self.keep)
            self.saved_steps.append(step)
            logger.info("checkpoint at global step %d saved: %s", step, checkpoint.uri)


def _rng_files(folder: Path) -> list[str]:
    """The per-rank RNG states the ranks of this node wrote (`rng_state_<rank>.pth`)."""
    return sorted(path.name for path in folder.glob("rng_state*.pth"))


class StopOnSignal(TrainerCallback):
    """On SIGTERM (or SIGINT), finish the current optimizer step, save a checkpoint and
    stop training. `stopped_at` is the global step of that checkpoint.

    With several processes the ranks agree after every step (one all-reduce of a flag):
    when any rank got the signal (one preempted node of several), all stop at that step.
    """

    def __init__(
        self,
        signals: tuple[signal.Signals, ...] = (signal.SIGTERM,),
        topology: Topology | None = None,
    ) -> None:
        self.signals = signals
        self.topology = topology or Topology()
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
        stop = self.received is not None
        if self.topology.distributed:
            stop = any_rank(stop)
            if stop and self.received is None:
                self.received = signal.SIGTERM  # another rank's node is going away
        if stop and self.stopped_at is None:
            control.should_save = True
            control.should_training_stop = True
            self.stopped_at = state.global_step
