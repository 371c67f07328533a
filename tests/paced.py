"""Test helper: run a stage in a child process with training slowed down, so a test can
kill it between two checkpoints, as a preempted pod is killed.

    python -m tests.paced <seconds per step> <module:function> '<json kwargs>'

Every trainer built through `trainer.training.trainer.build_trainer` in the child sleeps for the
given time at the end of each optimizer step; nothing else changes.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from typing import Any

from transformers import TrainerCallback

import trainer.training.trainer as training


class Pace(TrainerCallback):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        time.sleep(self.seconds)


def slow_down_training(seconds: float) -> None:
    original = training.build_trainer

    def paced(*args: Any, **kwargs: Any) -> Any:
        trainer = original(*args, **kwargs)
        trainer.add_callback(Pace(seconds))
        return trainer

    training.build_trainer = paced


def main() -> None:
    seconds, target, kwargs = float(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    slow_down_training(seconds)
    module, _, function = target.partition(":")
    getattr(importlib.import_module(module), function)(**kwargs)


if __name__ == "__main__":
    main()
