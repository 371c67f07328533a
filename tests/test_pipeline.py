"""The real fine-tuning pipeline on ZenML's local stack (isolated SQLite store, tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, docs_pipeline_config, write_run_yaml


@pytest.fixture
def run_config(tiny_model_path: Path, pairs_file: Path, tmp_path: Path) -> dict:
    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["output"] = {"dir": str(tmp_path / "out")}
    return document


@pytest.mark.slow
def test_finetune_pipeline_runs_end_to_end(zenml_client, run_config: dict, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard
    from sentence_transformers import SentenceTransformer
    from zenml.enums import ExecutionStatus

    from pipelines.finetune import finetune_pipeline

    config_file = write_run_yaml(
        tmp_path / "run.yaml", run_config, enable_cache=False, model={"name": "tiny-embedder"}
    )
    run = finetune_pipeline.with_options(config_path=str(config_file))()
    run = zenml_client.get_pipeline_run(run.id)
    assert run.status == ExecutionStatus.COMPLETED
    assert set(run.steps) >= {"load_datasets", "train", "evaluate", "model_card"}

    model = run.steps["train"].outputs["model"][0].load()
    assert isinstance(model, SentenceTransformer)
    assert model.get_embedding_dimension() == 32
    assert run.steps["train"].outputs["model"][0].run_metadata["embedding_dimension"] == 32

    evaluation = run.steps["evaluate"].outputs["evaluation"][0].load()
    assert evaluation.primary_metric == "docs-ir_cosine_ndcg@10"
    written = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert written == evaluation.model_dump(mode="json")
    metadata = run.steps["evaluate"].run_metadata
    assert metadata["primary_metric"] == "docs-ir_cosine_ndcg@10"
    assert set(metadata["base"]) == set(evaluation.base)

    exported = SentenceTransformer(str(tmp_path / "out" / "model"))
    assert exported.encode(["hello"]).shape == (1, 32)

    report = run.steps["load_datasets"].outputs["data_report"][0].load()
    docs = report.datasets["docs"]
    assert (docs.train_rows, docs.eval_rows, docs.columns) == (45, 15, ["anchor", "positive"])
    assert report.warnings == []

    training = run.steps["train"].outputs["training"][0].load()
    assert training.global_step == training.planned_steps == 6
    assert not training.resume.resumed
    assert training.resume.reason.startswith("no complete checkpoint at ")
    # The series lives in the artifact store, named after pipeline, model and config digest.
    artifact_store = zenml_client.active_stack.artifact_store.path
    assert training.checkpoints.uri.startswith(
        f"{artifact_store}/checkpoints/finetune_pipeline/tiny-embedder/"
    )
    assert training.checkpoints.finished
    assert run.steps["train"].run_metadata["resume"]["resumed"] is False

    card = run.steps["model_card"].outputs["model_card"][0].load()
    parsed = ModelCard(str(card)).data.to_dict()
    assert parsed["library_name"] == "sentence-transformers"
    (result,) = parsed["model-index"][0]["results"]
    ndcg = next(m for m in result["metrics"] if m["type"] == "cosine_ndcg@10")
    assert ndcg["value"] == pytest.approx(evaluation.finetuned["docs-ir_cosine_ndcg@10"], abs=1e-3)
    assert run.name in card
    assert parsed["model-index"][0]["name"] == "tiny-embedder"  # the ZenML model's name

    # Results where people look: next to evaluation.json and the model, the project's card
    # as the model's README.md (what a push publishes), the HTML report and the summary.
    out = tmp_path / "out"
    exported_card = (out / "model" / "README.md").read_text()
    assert exported_card == str(card)
    assert "fine-tuned from `" + str(run_config["model"]["name_or_path"]) in exported_card
    assert "`docs`" in exported_card  # the dataset, by name
    assert "### Release gate" in exported_card and "**passed**" in exported_card
    assert "trained on the json dataset" not in exported_card  # not the generic card
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "docs-ir_cosine_ndcg@10" in page
    assert "Training curves" in page
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"] == f"ZenML run {run.name}"
    assert summary["metric"] == "docs-ir_cosine_ndcg@10"
    assert summary["finetuned"] == evaluation.finetuned["docs-ir_cosine_ndcg@10"]
    assert summary["gate"]["passed"] is True
    assert summary["push"]["pushed"] is False
    assert summary["promotion"]["promoted"] is True
    assert summary["files"] == {
        "model": str(out / "model"),
        "model_card": str(out / "model" / "README.md"),
        "report": str(out / "report.html"),
        "evaluation": str(out / "evaluation.json"),
        "summary": str(out / "summary.json"),
    }
    assert (
        "promotion: tiny-embedder version 1 promoted to production"
        in (out / "summary.md").read_text()
    )

    version = zenml_client.get_model_version("tiny-embedder", run.model_version.number)
    assert "finetuned" in version.run_metadata
    hub_push = run.steps["push_to_hub"].outputs["hub_push"][0].load()
    assert hub_push.pushed is False
    assert hub_push.reason == "hub.enabled is false"
    promotion = run.steps["promote"].outputs["promotion"][0].load()
    assert promotion.promoted is True
    assert promotion.reason.startswith("first version to pass the gate (")
    assert version.stage == "production"

    # The same model again scores the same: it does not beat production, so it stays put.
    second = zenml_client.get_pipeline_run(
        finetune_pipeline.with_options(config_path=str(config_file))().id
    )
    promotion = second.steps["promote"].outputs["promotion"][0].load()
    assert promotion.promoted is False
    assert "does not beat production" in promotion.reason
    production = zenml_client.get_model_version("tiny-embedder", "production")
    assert production.number == run.model_version.number


def test_model_name_said_twice_must_agree(zenml_client, run_config: dict, tmp_path: Path) -> None:
    from pipelines.finetune import finetune_pipeline

    run_config["output"]["model_name"] = "another-name"
    config_file = write_run_yaml(tmp_path / "run.yaml", run_config, model={"name": "tiny-embedder"})
    runs_before = len(zenml_client.list_pipeline_runs(size=50))
    with pytest.raises(ValueError, match=r"model.name \('tiny-embedder'\) and parameters.config"):
        finetune_pipeline.with_options(config_path=str(config_file))()
    assert len(zenml_client.list_pipeline_runs(size=50)) == runs_before


def test_invalid_config_fails_before_any_step(
    zenml_client, run_config: dict, tmp_path: Path
) -> None:
    from pipelines.finetune import finetune_pipeline

    run_config["datasets"]["docs"]["loss"] = {"name": "NoSuchLoss"}
    config_file = write_run_yaml(tmp_path / "run.yaml", run_config)
    runs_before = len(zenml_client.list_pipeline_runs(size=50))
    with pytest.raises(Exception, match=r"Invalid or missing pipeline function entrypoint") as info:
        finetune_pipeline.with_options(config_path=str(config_file))()
    assert "unknown loss 'NoSuchLoss'" in str(info.value.__cause__)
    assert len(zenml_client.list_pipeline_runs(size=50)) == runs_before


@pytest.mark.parametrize(
    "config_path", sorted((REPO_ROOT / "configs").glob("*.yaml")), ids=lambda path: path.name
)
def test_every_shipped_config_is_a_valid_zenml_run_config(config_path: Path) -> None:
    """What `zenml pipeline run ... -c configs/<file>` reads: a ZenML run config whose
    `parameters.config` is a valid RunConfig."""
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    from trainer.config import load_run_config

    document = yaml.safe_load(config_path.read_text())
    run_configuration = PipelineRunConfiguration.model_validate(document)
    assert run_configuration.model is not None
    assert set(run_configuration.parameters) == {"config"}
    load_run_config(config_path)
