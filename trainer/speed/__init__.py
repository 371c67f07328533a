"""The fast training path: which speed levers a run uses on its device (each one
switchable, each recorded), datasets tokenized once, the collator that pads them and the
trainer that reads them. Exact on the CPU: the same losses and weights as plain
sentence-transformers.
"""

from trainer.speed.levers import Device, gpu_argument_levers, prepare_fast_path, speed_report

__all__ = [
    "Device",
    "gpu_argument_levers",
    "prepare_fast_path",
    "speed_report",
]
