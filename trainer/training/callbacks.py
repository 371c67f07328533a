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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trainer.logs import ProgressLogger
from trainer.training.checkpoints import CHECKPOINT_PREFIX, Checkpoint, CheckpointStore
from trainer.training.distributed import Topology, any_rank, barrier
from trainer.training.lease import SeriesLease
from trainer.training.progress_log import global_batch_size
from trainer.training.progress_log import logger as progress_logger

logger = logging.getLogger(__name__)


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
        lease: SeriesLease | None = None,
    ) -> None:
        self.store = store
        self.lease = lease
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
        assert args.output_dir is not None  # TrainingArguments defaults it ("trainer_output")
        if self.lease is not None:
            self.lease.check()  # a run that lost the series writes nothing more to it
        local = Path(args.output_dir) / f"{CHECKPOINT_PREFIX}{step}"
        checkpoint: Checkpoint | None = None  # the main rank's
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
            if topology.is_main:
                checkpoint = self.store.commit(step, self.run)
        if checkpoint is not None:
            best = state.best_global_step if args.load_best_model_at_end else None
            self.store.prune(self.keep, protect={best} if best else ())
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


class TrainingProgressCallback(TrainerCallback):
    """One line every `every_s` seconds while training (and at start and end), on the
    main process only: step / total, pairs per second, epoch, latest loss and LR, ETA."""

    def __init__(
        self,
        every_s: float = 15.0,
        *,
        log: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every_s = every_s
        self.log = log
        self.clock = clock
        self.tracker: ProgressLogger | None = None
        self.latest: dict[str, Any] = {}

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        batch = global_batch_size(args)
        self.latest = {}
        self.tracker = ProgressLogger(
            state.max_steps,
            "step",
            every_s=self.every_s,
            items_per_unit=batch,
            item_name="pairs",
            log=self.log or progress_logger.info,
            clock=self.clock,
        )
        self.tracker.start(
            state.global_step,
            note=(
                f"{args.num_train_epochs:g} epoch(s), global batch {batch} "
                f"({args.train_batch_size} x {args.world_size} process(es) x "
                f"{args.gradient_accumulation_steps} accumulation)"
            ),
        )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        for key in ("loss", "learning_rate"):
            if logs and key in logs:
                self.latest[key] = logs[key]

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.tracker is not None:
            self.tracker.update(state.global_step, self._details(state))

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.tracker is not None:
            self.tracker.done = state.global_step
            self.tracker.finish(self._details(state))
            self.tracker = None

    def _details(self, state: TrainerState) -> dict[str, str]:
        details = {"epoch": f"{state.epoch or 0:.2f}"}
        if "loss" in self.latest:
            details["loss"] = f"{self.latest['loss']:.4f}"
        if "learning_rate" in self.latest:
            details["lr"] = f"{self.latest['learning_rate']:.2e}"
        return details


class LogFinalStep(TrainerCallback):
    """Log at the last optimizer step too, so the curves end where the training ended:
    with `logging_steps` 10, a 38-step run would otherwise stop its curves at step 30
    (transformers already evaluates at the last step when evaluating by steps)."""

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if 0 < state.max_steps <= state.global_step and args.logging_strategy == "steps":
            control.should_log = True
