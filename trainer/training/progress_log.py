"""Training progress: the trainer's progress lines come from `trainer.logs`' generic
`ProgressLogger` (fed by `TrainingProgressCallback`) and are logged under this module's
logger; plus the global batch size the lines and the card report.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from trainer.logs import ProgressLogger, format_duration, progress

if TYPE_CHECKING:
    from transformers import TrainingArguments

logger = logging.getLogger("trainer.training.progress_log")

__all__ = ["ProgressLogger", "format_duration", "global_batch_size", "logger", "progress"]


def global_batch_size(args: TrainingArguments) -> int:
    """Pairs per optimizer step: per-device batch x devices x processes x accumulation."""
    return args.train_batch_size * args.world_size * args.gradient_accumulation_steps
