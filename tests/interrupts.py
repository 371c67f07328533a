"""Test helpers: Trainer callbacks that interrupt training as a pod's eviction does, and
keep a checkpoint for a resume test.

Importable without tests/conftest.py (the Hub child processes of tests/hub_runs.py must not
load it: it switches the Hub off)."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class SigtermAt(TrainerCallback):
    """Sends this process SIGTERM at the end of optimizer step `at`, as Kubernetes does to
    an evicted pod; the run's own handler then checkpoints and stops."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.at:
            signal.raise_signal(signal.SIGTERM)


class KeepCheckpoint(TrainerCallback):
    """Copies the Trainer's `checkpoint-<step>` folder to `to` when it is saved: the Trainer
    keeps only its newest checkpoints locally, and a resume test starts from this one."""

    def __init__(self, step: int, to: Path) -> None:
        self.step = step
        self.to = to

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            name = f"checkpoint-{self.step}"
            shutil.copytree(Path(args.output_dir) / name, self.to / name)
