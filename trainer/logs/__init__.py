"""Logs a person can read: progress lines with rate and ETA for any long loop (training
steps, texts encoded while evaluating or mining), and library progress bars kept out of
step logs. The bottom layer: anything in `trainer` may use it.
"""

from trainer.logs.libraries import PROGRESS_BARS_FLAG, progress_bars_wanted, quiet_libraries
from trainer.logs.progress import ProgressLogger, encoding_progress, format_duration, progress

__all__ = [
    "PROGRESS_BARS_FLAG",
    "ProgressLogger",
    "encoding_progress",
    "format_duration",
    "progress",
    "progress_bars_wanted",
    "quiet_libraries",
]
