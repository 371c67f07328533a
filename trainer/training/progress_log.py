"""Training progress: the logger the trainer's progress lines go to (the lines come from
`trainer.logs.ProgressLogger`, fed by `TrainingProgressCallback`), and the global batch
size the lines and the card report.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import TrainingArguments

logger = logging.getLogger("trainer.training.progress_log")


def global_batch_size(args: TrainingArguments) -> int:
    """Pairs per optimizer step: per-device batch x devices x processes x accumulation."""
    return args.train_batch_size * args.world_size * args.gradient_accumulation_steps
