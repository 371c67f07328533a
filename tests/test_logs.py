"""Logs a person can read: no library progress bars, progress lines with ETA while
evaluating and mining, every evaluation block named by the model it scored, and no
warnings that do not apply to the machine (pinned memory on a CPU run)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict

from tests.conftest import REPO_ROOT, pairs_dataset, tiny_run_config
from trainer.config import HardNegativesConfig, RunConfig
from trainer.data import load_datasets, mine_dataset
from trainer.evaluation import build_evaluators
from trainer.logs import PROGRESS_BARS_FLAG, encoding_progress
from trainer.models import load_model
from trainer.stages import evaluate_stage
from trainer.training import train

BAR_MARKS = ("%|", "it/s]", "examples/s]")


def _texts(n: int) -> list[str]:
    return [f"text number {i} about the standard library" for i in range(n)]


def test_encoding_progress_counts_texts_with_rate_and_eta(tiny_model_path: Path) -> None:
    model = load_model(RunConfig.model_validate(_run(tiny_model_path, Path("x"))).model)
    ticks = iter(range(1000))
    lines: list[str] = []
    with encoding_progress(
        model, 40, "scoring a model", every_s=0, log=lines.append, clock=lambda: next(ticks)
    ) as tracker:
        model.encode(_texts(40), batch_size=16)
    assert tracker.done == 40
    assert lines[0] == "scoring a model: texts 0/40: started"
    assert lines[1].startswith("scoring a model: texts 16/40 (40%) | ")
    assert " texts/s | ETA " in lines[1]
    assert lines[-1].startswith("scoring a model: texts 40/40: done | in ")
    model.encode(_texts(3))  # the hook is gone after the block
    assert tracker.done == 40


def _run(tiny_model_path: Path, pairs: Path, **extra: object) -> dict:
    return tiny_run_config(
        tiny_model_path,
        {"docs": pairs_dataset(pairs, eval_size=0.25)},
        evaluators=[{"type": "information_retrieval", "name": "docs-ir", "dataset": "docs"}],
        **extra,
    )


def test_each_evaluation_block_names_the_model_it_scored(
    tiny_model_path: Path, pairs_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = RunConfig.model_validate(_run(tiny_model_path, pairs_file))
    _, held_out = load_datasets(config)
    model = load_model(config.model)
    with caplog.at_level(logging.INFO):
        evaluate_stage(config, model, held_out, production=(model, "version 3 of 'x'"))
    messages = [record.getMessage() for record in caplog.records]
    blocks = [i for i, m in enumerate(messages) if m.startswith("Information Retrieval Evaluation")]
    assert len(blocks) == 3  # base, fine-tuned, production
    base = f"the base model ({tiny_model_path})"
    headers = [
        f"scoring {base} with docs-ir (1/1): texts 0/30: started",
        "scoring the fine-tuned model with docs-ir (1/1): texts 0/30: started",
        "scoring the production model (version 3 of 'x') with docs-ir (1/1): texts 0/30: started",
    ]
    for block, header in zip(blocks, headers, strict=True):
        assert header in messages[:block]
        assert messages.index(header) == max(
            i for i, m in enumerate(messages[:block]) if m.startswith("scoring ")
        )
    assert any(m.startswith(f"{base}: docs-ir_cosine_ndcg@10 = ") for m in messages)
    assert any(
        m.startswith("scoring the fine-tuned model with docs-ir (1/1): texts 30/30: done")
        for m in messages
    )


def test_mining_logs_progress_over_the_texts_it_encodes(
    tiny_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pairs = Dataset.from_dict(
        {"anchor": _texts(12), "positive": [t + " in detail" for t in _texts(12)]}
    )
    model = load_model(RunConfig.model_validate(_run(tiny_model_path, Path("x"))).model)
    with caplog.at_level(logging.INFO, logger="trainer.logs.progress"):
        mine_dataset(model, pairs, HardNegativesConfig(num_negatives=1, range_max=5), name="docs")
    messages = [r.getMessage() for r in caplog.records if r.name == "trainer.logs.progress"]
    assert messages[0] == "mining hard negatives for dataset 'docs': texts 0/24: started"
    assert messages[-1].startswith("mining hard negatives for dataset 'docs': texts 24/24: done")


def test_no_library_progress_bars_and_no_pin_memory_warning_on_cpu(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    """Saving and loading datasets, tokenizing, loading and saving weights, widget
    examples, hashing: what the quickstart's steps do, with nothing drawn on stderr."""
    config = RunConfig.model_validate(_run(tiny_model_path, pairs_file))
    train_data, held_out = load_datasets(config)
    DatasetDict(train_data).save_to_disk(str(tmp_path / "saved"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trained = train(config, train_data, held_out, output_dir=tmp_path / "ckpt")
    trained.model.save(str(tmp_path / "model"))
    load_model(config.model.model_copy(update={"name_or_path": str(tmp_path / "model")}))
    build_evaluators(config, held_out)[0](trained.model)
    captured = capfd.readouterr()
    assert not [mark for mark in BAR_MARKS if mark in captured.err + captured.out], captured.err[
        -2000:
    ]
    assert not [w for w in caught if "pin_memory" in str(w.message)]


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["", "1"])
def test_the_flag_brings_the_bars_back(flag: str) -> None:
    code = (
        "import datasets, transformers, trainer\n"
        "from transformers.utils import logging\n"
        "print(datasets.is_progress_bar_enabled(), logging.is_progress_bar_enabled())\n"
    )
    env = {**os.environ, PROGRESS_BARS_FLAG: flag}
    for name in (
        "HF_DATASETS_DISABLE_PROGRESS_BARS",
        "HF_HUB_DISABLE_PROGRESS_BARS",
        "TQDM_DISABLE",
    ):
        env.pop(name, None)
    shown = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown == (["True", "True"] if flag else ["False", "False"])
