"""Training arguments of sentence-transformers that the config passes through, shown to
take effect in a short run of the tiny model."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

import trainer.training.trainer as training
from tests.conftest import pairs_dataset, tiny_run_config
from trainer.config import RunConfig
from trainer.data import load_datasets


def test_learning_rate_mapping_sets_the_rate_of_matching_parameters(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """`learning_rate_mapping: {embeddings: 0.0}` freezes the embedding layer (rate 0)
    while the rest of the model trains at `learning_rate`."""
    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file)},
            training={
                "per_device_train_batch_size": 8,
                "max_steps": 2,
                "learning_rate": 1e-3,
                "learning_rate_mapping": {r"\.embeddings\.": 0.0},
            },
        )
    )
    train_data, _ = load_datasets(config)
    model = training.load_model(config.model)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    trainer = training.build_trainer(config, train_data, output_dir=tmp_path / "out", model=model)
    trainer.train()

    rates = {group["lr"] for group in trainer.optimizer.param_groups if group["params"]}
    assert 0.0 in rates
    after = model.state_dict()
    embeddings = [name for name in before if ".embeddings." in name]
    others = [name for name in before if ".embeddings." not in name and "weight" in name]
    assert embeddings and others
    assert all(torch.equal(after[name], before[name]) for name in embeddings)
    assert any(not torch.equal(after[name], before[name]) for name in others)


class _RecordSaves(TrainerCallback):
    """The model's weights at every checkpoint the Trainer saves, by global step; and a
    SIGTERM to this process at `interrupt_at` (what a preempted pod receives)."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.saved: dict[int, dict[str, torch.Tensor]] = {}
        self.interrupt_at = interrupt_at

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.interrupt_at:
            signal.raise_signal(signal.SIGTERM)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = kwargs["model"]
        self.saved[state.global_step] = {k: v.clone() for k, v in model.state_dict().items()}


def _best_model_config(tiny_model_path: Path, pairs_file: Path, uri: Path) -> RunConfig:
    """Evaluation and a checkpoint every 2 steps, keeping 1 (the best must survive
    pruning), best = the HIGHEST held-out loss: training lowers it, so an early checkpoint
    is best and the last one is not, deterministically."""
    return RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
            training={
                "per_device_train_batch_size": 8,
                "max_steps": 8,
                "learning_rate": 1e-3,
                "eval_strategy": "steps",
                "eval_steps": 2,
                "load_best_model_at_end": True,
                "metric_for_best_model": "loss",
                "greater_is_better": True,
            },
            checkpoints={"uri": str(uri), "every_n_steps": 2, "keep": 1},
        )
    )


@pytest.mark.slow
def test_best_checkpoint_survives_interruption_and_is_the_final_model(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """Interrupted at step 5, resumed in a fresh staging folder: the run still ends with
    the weights of its best checkpoint (saved before the interruption, kept in the store
    although `keep: 1`), not its last, and the summary and card name that step."""
    from trainer.data import load_datasets_with_report
    from trainer.release.card import _training
    from trainer.training.checkpoints import TrainingInterrupted
    from trainer.training.run import train_in_process

    config = _best_model_config(tiny_model_path, pairs_file, tmp_path / "series")
    train_data, held_out, report = load_datasets_with_report(config)
    first = _RecordSaves(interrupt_at=5)
    with pytest.raises(TrainingInterrupted):
        train_in_process(
            config, train_data, held_out, checkpoint_uri=config.checkpoints.uri,
            callbacks=[first], work_dir=tmp_path / "pod-1",
        )  # fmt: skip
    shutil.rmtree(tmp_path / "pod-1")  # the preempted pod's disk is gone with it
    second = _RecordSaves()
    trained = train_in_process(
        config, train_data, held_out, checkpoint_uri=config.checkpoints.uri,
        callbacks=[second], work_dir=tmp_path / "pod-2",
    )  # fmt: skip

    assert trained.summary.resume.resumed and trained.summary.global_step == 8
    best = trained.summary.best_model
    assert best is not None and best.metric == "eval_loss" and best.step != 8
    saved = {**first.saved, **second.saved}
    assert best.step in first.saved, "the best checkpoint predates the interruption"
    final = trained.model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in saved[best.step].items())
    assert not all(torch.equal(final[k], v) for k, v in saved[8].items())
    losses = {
        row["step"]: row["eval_loss"] for row in trained.summary.history if "eval_loss" in row
    }
    assert best.score == pytest.approx(max(losses.values()))
    card = _training(config, trained.summary, report, None)
    assert (
        f"Weights from the best checkpoint (`load_best_model_at_end`): step {best.step} of 8"
        in card
    )


def test_best_model_by_epoch_saves_a_checkpoint_per_epoch(tiny_model_path: Path) -> None:
    """`eval_strategy: epoch`: checkpoints follow evaluation (transformers needs them to
    match), whatever `checkpoints.every_n_steps` says."""
    from trainer.training import training_argument_problems
    from trainer.training.arguments import training_argument_values

    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {"docs": pairs_dataset("unused.jsonl")},
            training={"eval_strategy": "epoch", "load_best_model_at_end": True},
        )
    )
    assert training_argument_problems(config) == []
    assert training_argument_values(config)["save_strategy"] == "epoch"
    steps = config.model_copy(
        update={"training": {"eval_strategy": "steps", "load_best_model_at_end": True}}
    )
    assert training_argument_problems(steps) == []
    assert training_argument_values(steps)["eval_steps"] == 500  # every checkpoint


def test_preflight_checks_the_best_model_metric_against_the_evaluators(
    tiny_model_path: Path, pairs_file: Path
) -> None:
    from trainer.preflight import preflight

    def report(metric: str) -> Any:
        training = {"eval_strategy": "steps", "load_best_model_at_end": True}
        return preflight(
            RunConfig.model_validate(
                tiny_run_config(
                    tiny_model_path,
                    {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
                    training={**training, "metric_for_best_model": metric},
                    evaluators=[{"type": "information_retrieval", "dataset": "docs", "name": "ir"}],
                )
            )
        )

    wrong = report("ir_cosine_ndcg@100")
    (problem,) = [str(p) for p in wrong.problems]
    assert problem.startswith(
        "training.metric_for_best_model: 'ir_cosine_ndcg@100' is not reported during "
        "training, so load_best_model_at_end could not compare checkpoints by it; did you "
        "mean 'ir_cosine_ndcg@10'? use one of: ir_cosine_accuracy@1, "
    )
    assert problem.endswith(", ir_cosine_map@10, loss")
    for good in ("eval_ir_cosine_ndcg@10", "ir_cosine_mrr@10", "loss"):
        assert report(good).problems == [], good
