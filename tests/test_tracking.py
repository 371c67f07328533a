"""Experiment tracking: what a run logs, and a pipeline on a stack with a local MLflow
tracker (isolated ZenML store, SQLite MLflow store in a temp dir, fully offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers.integrations import MLflowCallback

from steps._tracking import tracked
from tests.conftest import docs_pipeline_config, write_run_yaml
from trainer.config import RunConfig
from trainer.results import Evaluation
from trainer.training import (
    EVALUATION_TABLE,
    evaluation_metrics,
    evaluation_table,
    gate_metrics,
    log_evaluation,
    log_model_card,
    metric_name,
    reporting_callbacks,
    run_parameters,
)

PIPELINE_NAME = "finetune_pipeline"
"""The MLflow experiment ZenML's tracker uses: the pipeline's name."""


@pytest.fixture
def run_config(tiny_model_path: Path, pairs_file: Path, tmp_path: Path) -> RunConfig:
    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["output"] = {"dir": str(tmp_path / "out")}
    document["training"] = {**document["training"], "logging_steps": 1, "num_train_epochs": 2}
    return RunConfig.model_validate(document)


@pytest.fixture
def mlflow_stack(zenml_client: Any, tmp_path: Path) -> Any:
    """A stack = default orchestrator + artifact store + a local MLflow tracker, active for
    the test only; MLflow keeps runs in SQLite and artifacts in the temp dir."""
    from mlflow.tracking import MlflowClient
    from zenml.enums import StackComponentType

    tracking_uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    (tmp_path / "mlruns").mkdir()
    # Created up front so artifacts land in the temp dir, not ./mlruns of the cwd.
    MlflowClient(tracking_uri).create_experiment(
        PIPELINE_NAME, artifact_location=(tmp_path / "mlruns" / "artifacts").as_uri()
    )
    tracker = zenml_client.create_stack_component(
        name=f"mlflow-{tmp_path.name}",
        flavor="mlflow",
        component_type=StackComponentType.EXPERIMENT_TRACKER,
        configuration={"tracking_uri": tracking_uri},
    )
    default = zenml_client.get_stack("default")
    stack = zenml_client.create_stack(
        name=f"mlflow-stack-{tmp_path.name}",
        components={
            StackComponentType.ORCHESTRATOR: default.components[StackComponentType.ORCHESTRATOR][
                0
            ].id,
            StackComponentType.ARTIFACT_STORE: default.components[
                StackComponentType.ARTIFACT_STORE
            ][0].id,
            StackComponentType.EXPERIMENT_TRACKER: tracker.id,
        },
    )
    zenml_client.activate_stack(stack.id)
    try:
        yield MlflowClient(tracking_uri)
    finally:
        zenml_client.activate_stack("default")


@pytest.mark.slow
def test_tracked_pipeline_run_logs_curves_metrics_parameters_and_card(
    mlflow_stack: Any, zenml_client: Any, run_config: RunConfig, tmp_path: Path
) -> None:
    """The real pipeline on a stack with MLflow: train, evaluate and card share one
    MLflow run, linked to the ZenML run."""
    from pipelines.finetune import finetune_pipeline

    document = run_config.model_dump(mode="json")
    document["gate"] = {"min_improvement": None, "min_steps": 0}
    config_file = write_run_yaml(
        tmp_path / "run.yaml",
        document,
        enable_cache=False,
        run_name=f"tracked-{tmp_path.name}",
        model={"name": "tracked-embedder"},
    )
    run = finetune_pipeline.with_options(config_path=str(config_file))()
    run = zenml_client.get_pipeline_run(run.id)
    assert run.status == "completed"
    step_metadata = run.steps["train"].run_metadata
    assert "experiment_tracker_url" in step_metadata
    for step in ("evaluate", "model_card"):
        assert run.steps[step].run_metadata["mlflow_run_id"] == step_metadata["mlflow_run_id"]
    assert "mlflow_run_id" not in run.steps["load_datasets"].run_metadata

    (mlflow_run,) = mlflow_stack.search_runs(
        [mlflow_stack.get_experiment_by_name(PIPELINE_NAME).experiment_id]
    )
    assert mlflow_run.info.run_id == step_metadata["mlflow_run_id"]
    assert mlflow_run.info.run_name == run.name
    assert mlflow_run.info.status == "FINISHED"

    # The loss curve, one point per optimizer step (45 rows / batch 8 x 2 epochs).
    loss = mlflow_stack.get_metric_history(mlflow_run.info.run_id, "loss")
    assert [point.step for point in loss] == list(range(1, 13))
    learning_rates = mlflow_stack.get_metric_history(mlflow_run.info.run_id, "learning_rate")
    assert len(learning_rates) == 12
    assert len(mlflow_stack.get_metric_history(mlflow_run.info.run_id, "grad_norm")) == 12

    evaluation = run.steps["evaluate"].outputs["evaluation"][0].load()
    # Final values: only the gate metric is a metric; every metric is in the table.
    gate = "docs-ir_cosine_ndcg@10"
    metrics = mlflow_run.data.metrics
    assert metrics["finetuned/docs-ir_cosine_ndcg_10"] == pytest.approx(evaluation.finetuned[gate])
    assert metrics["base/docs-ir_cosine_ndcg_10"] == pytest.approx(evaluation.base[gate])
    assert metrics["improvement/docs-ir_cosine_ndcg_10"] == pytest.approx(
        evaluation.improvement[gate]
    )
    final = {name for name in metrics if name.split("/")[0] in ("base", "finetuned", "improvement")}
    assert final == {
        f"{section}/docs-ir_cosine_ndcg_10" for section in ("base", "finetuned", "improvement")
    }
    assert "improvement/docs-ir_cosine_mrr_10" not in metrics
    table = json.loads(
        Path(
            mlflow_stack.download_artifacts(
                mlflow_run.info.run_id, EVALUATION_TABLE, str(tmp_path / "download")
            )
        ).read_text()
    )
    rows = {row[0]: dict(zip(table["columns"], row, strict=True)) for row in table["data"]}
    assert set(rows) == set(evaluation.finetuned) and len(rows) > 3
    for name, row in rows.items():  # log_table's JSON keeps 10 decimal places
        assert row["base"] == pytest.approx(evaluation.base[name], abs=1e-10)
        assert row["finetuned"] == pytest.approx(evaluation.finetuned[name], abs=1e-10)
        assert row["improvement"] == pytest.approx(evaluation.improvement[name], abs=1e-10)

    params = mlflow_run.data.params
    assert params["training.learning_rate"] == "5e-05"  # the in-batch-negatives default
    assert params["training.per_device_train_batch_size"] == "8"
    assert params["data.docs.train_rows"] == "45"
    assert params["data.docs.eval_rows"] == "15"
    assert params["loss.docs.name"] == "MultipleNegativesRankingLoss"
    assert params["model.name_or_path"] == run_config.model.name_or_path
    # Not the base model's architecture config (it buried the run's own parameters).
    assert "hidden_size" not in params and "vocab_size" not in params
    tags = mlflow_run.data.tags
    assert tags["st_finetune.model"] == "tracked-embedder"
    assert tags["st_finetune.datasets"] == "docs"
    assert tags["st_finetune.run"] == f"ZenML run {run.name}"
    assert tags["st_finetune.gate"] == "passed"
    assert tags["st_finetune.gate_metric"] == "docs-ir_cosine_ndcg@10"

    card_path = mlflow_stack.download_artifacts(
        mlflow_run.info.run_id, "model_card/README.md", str(tmp_path / "download")
    )
    card = run.steps["model_card"].outputs["model_card"][0].load()
    assert Path(card_path).read_text() == str(card)
    report = mlflow_stack.download_artifacts(
        mlflow_run.info.run_id, "evaluation_report.html", str(tmp_path / "download")
    )
    assert "Training curves" in Path(report).read_text()


def test_without_a_tracker_steps_are_unchanged(zenml_client: Any) -> None:
    assert zenml_client.active_stack_model.name == "default"
    from steps.train import train

    assert tracked(train) is train
    assert train.configuration.experiment_tracker is None


def test_parameters_cover_training_data_and_losses(run_config: RunConfig) -> None:
    parameters = run_parameters(run_config, {"docs": 45}, {"docs": 15})
    assert parameters["training.per_device_train_batch_size"] == 8
    assert parameters["training.num_train_epochs"] == 2
    assert parameters["training.seed"] == 42  # the run seed reaches the arguments
    assert parameters["data.docs.train_rows"] == 45
    assert parameters["loss.docs.name"] == "MultipleNegativesRankingLoss"


def test_evaluation_metrics_use_mlflow_safe_names() -> None:
    evaluation = {
        "primary_metric": "ir_cosine_ndcg@10",
        "base": {"ir_cosine_ndcg@10": 0.5},
        "finetuned": {"ir_cosine_ndcg@10": 0.6},
        "improvement": {"ir_cosine_ndcg@10": 0.1},
        "production": {"ir_cosine_ndcg@10": 0.55},
    }
    assert evaluation_metrics(evaluation) == {
        "base/ir_cosine_ndcg_10": 0.5,
        "finetuned/ir_cosine_ndcg_10": 0.6,
        "improvement/ir_cosine_ndcg_10": 0.1,
        "production/ir_cosine_ndcg_10": 0.55,
    }
    assert metric_name("eval_a(b)@10") == "eval_a_b__10"


EVALUATION = Evaluation(
    primary_metric="ir_cosine_ndcg@10",
    base={"ir_cosine_ndcg@10": 0.5, "ir_cosine_mrr@10": 0.4, "ir_cosine_recall@1": 0.3},
    finetuned={"ir_cosine_ndcg@10": 0.6, "ir_cosine_mrr@10": 0.45, "ir_cosine_recall@1": 0.35},
    improvement={"ir_cosine_ndcg@10": 0.1, "ir_cosine_mrr@10": 0.05, "ir_cosine_recall@1": 0.05},
    production={"ir_cosine_ndcg@10": 0.55, "ir_cosine_mrr@10": 0.42},
    weights_changed=True,
)


def test_gate_metrics_are_the_gate_metrics_values_in_every_section() -> None:
    assert gate_metrics(EVALUATION, "ir_cosine_mrr@10") == {
        "base/ir_cosine_mrr_10": 0.4,
        "finetuned/ir_cosine_mrr_10": 0.45,
        "improvement/ir_cosine_mrr_10": 0.05,
        "production/ir_cosine_mrr_10": 0.42,
    }
    assert gate_metrics(EVALUATION, None) == {}
    assert gate_metrics(EVALUATION, "not-evaluated@10") == {}


def test_evaluation_table_has_a_row_per_metric_and_a_column_per_section() -> None:
    assert evaluation_table(EVALUATION) == {
        "metric": ["ir_cosine_ndcg@10", "ir_cosine_mrr@10", "ir_cosine_recall@1"],
        "base": [0.5, 0.4, 0.3],
        "finetuned": [0.6, 0.45, 0.35],
        "improvement": [0.1, 0.05, 0.05],
        "production": [0.55, 0.42, None],  # production was not scored on recall@1
    }


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real local MLflow store (SQLite + artifacts in a temp dir), created once: its
    schema migrations take seconds."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


@pytest.fixture
def active_mlflow_run(mlflow_store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A run of its own experiment in `mlflow_store`, active the way ZenML's tracker
    leaves it for a step; the tracking URI is restored after."""
    import mlflow

    uri = mlflow_store.tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", uri)
    experiment = mlflow_store.create_experiment(
        tmp_path.name, artifact_location=(tmp_path / "artifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        yield mlflow_store, run.info.run_id


@pytest.mark.slow  # the store's schema migrations: 4 s of CPU
def test_final_evaluation_logs_the_gate_metric_as_metrics_and_every_value_in_a_table(
    active_mlflow_run: Any, tmp_path: Path
) -> None:
    client, run_id = active_mlflow_run
    log_evaluation(EVALUATION, "ir_cosine_ndcg@10")

    run = client.get_run(run_id)
    assert run.data.metrics == {
        "base/ir_cosine_ndcg_10": 0.5,
        "finetuned/ir_cosine_ndcg_10": 0.6,
        "improvement/ir_cosine_ndcg_10": 0.1,
        "production/ir_cosine_ndcg_10": 0.55,
    }
    # Final values are logged once each, not as growing series.
    for name in run.data.metrics:
        assert len(client.get_metric_history(run_id, name)) == 1
    # The full comparison is one table artifact, which the MLflow UI shows as a table.
    assert json.loads(run.data.tags["mlflow.loggedArtifacts"]) == [
        {"path": EVALUATION_TABLE, "type": "table"}
    ]
    table = json.loads(
        Path(client.download_artifacts(run_id, EVALUATION_TABLE, str(tmp_path / "dl"))).read_text()
    )
    assert table["columns"] == ["metric", "base", "finetuned", "improvement", "production"]
    rows = {row[0]: row[1:] for row in table["data"]}
    assert rows == {
        "ir_cosine_ndcg@10": [0.5, 0.6, 0.1, 0.55],
        "ir_cosine_mrr@10": [0.4, 0.45, 0.05, 0.42],
        "ir_cosine_recall@1": [0.3, 0.35, 0.05, None],
    }


@pytest.mark.slow
def test_final_evaluation_without_a_gate_metric_logs_only_the_table(
    active_mlflow_run: Any, tmp_path: Path
) -> None:
    client, run_id = active_mlflow_run
    log_evaluation(EVALUATION, None)
    assert client.get_run(run_id).data.metrics == {}
    assert [artifact.path for artifact in client.list_artifacts(run_id, "evaluation")] == [
        EVALUATION_TABLE
    ]


def test_reporting_callbacks_follow_the_tracker_flavor(run_config: RunConfig) -> None:
    (callback,) = reporting_callbacks("mlflow", run_config)
    assert isinstance(callback, MLflowCallback)
    assert reporting_callbacks("some-other-tracker", run_config) == []
    reporting = run_config.model_copy(
        update={"training": {**run_config.training, "report_to": ["mlflow"]}}
    )
    assert reporting_callbacks("mlflow", reporting) == []  # the trainer adds it itself


def test_logging_without_an_active_run_fails_instead_of_starting_one() -> None:
    import mlflow

    assert mlflow.active_run() is None
    with pytest.raises(RuntimeError, match="no active MLflow run"):
        log_model_card("# a card")
