"""Test helper: slows down training in every Python process started with this folder on
PYTHONPATH and ST_FINETUNE_TEST_STEP_SECONDS set (torchrun's ranks included), so a test
can signal a multi-process training between two checkpoints. Never on PYTHONPATH
outside the tests."""

import os

if os.environ.get("ST_FINETUNE_TEST_STEP_SECONDS"):
    from tests.paced import slow_down_training

    slow_down_training(float(os.environ["ST_FINETUNE_TEST_STEP_SECONDS"]))
