"""One pipeline plan, two orchestrators: for every shipped config, the ZenML pipeline's
steps and the compiled Kubeflow pipeline's tasks are exactly the plan's stages, and the
Hub token reaches exactly the stages the plan gives it (least privilege)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT
from trainer.config import load_run_config, read_config_document
from trainer.stages import Stage, pipeline_plan

CONFIGS = sorted((REPO_ROOT / "configs").glob("*.yaml"))


def _plan(config_path: Path):
    from pipelines.kfp_pipeline import run_config

    return pipeline_plan(run_config(read_config_document(config_path)))


def _zenml_steps(config_path: Path) -> list[str]:
    """The step invocations ZenML builds for the run config, in the order they were added."""
    from pipelines.finetune import finetune_pipeline

    pipeline = finetune_pipeline.with_options(config_path=str(config_path))
    pipeline.prepare()
    return list(pipeline.invocations)


def _kfp_tasks(config_path: Path, tmp_path: Path) -> dict[str, Any]:
    from pipelines.kfp_pipeline import compile_pipeline

    output = compile_pipeline(config_path, tmp_path / "pipeline.yaml", "st-finetune:test")
    spec = next(yaml.safe_load_all(output.read_text()))
    return spec["root"]["dag"]["tasks"]


@pytest.mark.parametrize("config_path", CONFIGS, ids=lambda path: path.stem)
def test_zenml_and_kubeflow_run_the_plan(
    config_path: Path, tmp_path: Path, zenml_client: object
) -> None:
    plan = _plan(config_path)
    assert _zenml_steps(config_path) == plan.names()
    if load_run_config(config_path).model.zenml_ref is not None:
        pytest.skip("the Kubeflow build refuses zenml: base models (only ZenML resolves them)")
    tasks = [name.replace("-", "_") for name in _kfp_tasks(config_path, tmp_path)]
    assert sorted(tasks) == sorted(plan.names(model_registry=False))
    assert sorted(set(plan.names()) - set(tasks)) == [Stage.PROMOTE.value]


def _kfp_secret_tasks(tmp_path: Path, config_path: Path) -> set[str]:
    from pipelines.kfp_pipeline import compile_pipeline

    output = compile_pipeline(config_path, tmp_path / "pipeline.yaml", "st-finetune:test")
    documents = list(yaml.safe_load_all(output.read_text()))
    platform = next((doc for doc in documents if "platforms" in doc), None)
    if platform is None:  # no task has Kubernetes-specific settings
        return set()
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return {
        name.removeprefix("exec-").replace("-", "_")
        for name, spec in executors.items()
        if spec.get("secretAsEnv")
    }


def test_the_hub_token_reaches_only_the_stages_that_use_the_hub(tmp_path: Path) -> None:
    """finetune-k8s.yaml trains a Hub model on Hub datasets and publishes: every stage
    that downloads or publishes gets the token, the card (and promote) do not."""
    config_path = REPO_ROOT / "configs" / "finetune-k8s.yaml"
    plan = _plan(config_path)
    expected = {stage.name for stage in plan.stages if stage.hub_token}
    assert Stage.CARD.value not in expected
    assert Stage.PROMOTE.value not in expected
    assert _kfp_secret_tasks(tmp_path, config_path) == expected


def test_a_local_run_gives_no_stage_the_hub_token(tmp_path: Path) -> None:
    """The quickstart reads a package model and local files and does not publish."""
    plan = _plan(REPO_ROOT / "configs" / "quickstart.yaml")
    assert not any(stage.hub_token for stage in plan.stages)
    assert _kfp_secret_tasks(tmp_path, REPO_ROOT / "configs" / "quickstart.yaml") == set()


def test_optional_stages_follow_the_config() -> None:
    base = load_run_config(REPO_ROOT / "configs" / "quickstart.yaml")
    assert Stage.MINE not in pipeline_plan(base)
    assert Stage.SEARCH not in pipeline_plan(base)
    stronger = load_run_config(REPO_ROOT / "configs" / "stronger_recipe.yaml")
    assert Stage.MINE in pipeline_plan(stronger)
    assert pipeline_plan(stronger)[Stage.MINE].pod.value == "training"
    with pytest.raises(KeyError, match="not part of this run's plan"):
        pipeline_plan(base)[Stage.MINE]
