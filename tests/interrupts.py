"""Test helper: a Trainer callback that interrupts training the way a pod's eviction does.

Importable without tests/conftest.py (the Hub child processes of tests/hub_runs.py must not
load it: it switches the Hub off)."""

from __future__ import annotations

import signal
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
