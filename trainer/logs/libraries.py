"""Library output kept out of step logs: no progress bars from datasets, transformers,
huggingface_hub and sentence-transformers (saving and loading datasets, loading weights,
tokenizing, computing widget examples, hashing, writing shards), which in a step log or
`kubectl logs` become walls of carriage-return fragments. The project's own progress
lines (`trainer.logs.progress`) report the long waits instead.

`ST_FINETUNE_PROGRESS_BARS=1` keeps the libraries' bars (e.g. in an interactive shell).
"""

from __future__ import annotations

import functools
import os
import sys

PROGRESS_BARS_FLAG = "ST_FINETUNE_PROGRESS_BARS"
"""Set to 1 (or true, yes, on) to keep the libraries' progress bars."""

_ENVIRONMENT = {
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    # tqdm reads TQDM_* defaults when it is first imported: this covers processes
    # started from this one (torchrun ranks) and bars created with no explicit `disable`.
    "TQDM_DISABLE": "1",
}

_MODULES_WITH_BARS = ("sentence_transformers.base.model_card",)
"""Library modules that create a tqdm bar with no switch (widget examples of the
sentence-transformers model card): their module-level `tqdm` gets `disable=True`."""


def progress_bars_wanted() -> bool:
    """Whether `ST_FINETUNE_PROGRESS_BARS` asks for the libraries' progress bars."""
    return os.environ.get(PROGRESS_BARS_FLAG, "").strip().lower() in {"1", "true", "yes", "on"}


def quiet_libraries() -> None:
    """Switch the libraries' progress bars off, unless `ST_FINETUNE_PROGRESS_BARS` asks
    for them. Idempotent and cheap: libraries not imported yet get environment defaults
    (a variable the user set wins), imported ones their own switch."""
    if progress_bars_wanted():
        return
    for name, value in _ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    for module_name in _MODULES_WITH_BARS:
        module = sys.modules.get(module_name)
        bar = getattr(module, "tqdm", None)
        if bar is not None and not isinstance(bar, functools.partial):
            module.tqdm = functools.partial(bar, disable=True)  # type: ignore[union-attr]
