"""Teacher targets through the real pipeline on ZenML's local stack: the step labels the
splits once, its labelled datasets are what the train step reads, and its metadata counts
the texts the teacher encoded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, build_tiny_model, tiny_run_config, write_jsonl, write_run_yaml
from trainer.results import TeacherReports


@pytest.mark.slow
def test_the_pipeline_computes_teacher_targets_once_and_trains_on_them(
    zenml_client, tiny_model_path: Path, tmp_path: Path
) -> None:
    from zenml.enums import ExecutionStatus

    from pipelines.finetune import finetune_pipeline

    teacher = build_tiny_model(tmp_path / "teacher", seed=5)
    rows = [json.loads(line) for line in (REPO_ROOT / "data/stdlib_docs/train.jsonl").open()]
    pairs = write_jsonl(tmp_path / "p.jsonl", rows[:40])
    document = tiny_run_config(
        tiny_model_path,
        {
            "texts": {
                "source": {"path": str(pairs)},
                "columns": {"query": "text"},
                "eval_size": 8,
                "loss": {"name": "MSELoss", "teacher": {"name_or_path": str(teacher)}},
            }
        },
        evaluators=[
            {"type": "information_retrieval", "name": "docs-ir", "source": {"path": str(pairs)},
             "columns": {"query": "anchor", "document": "positive"}}
        ],
        gate={"min_improvement": None},
    )  # fmt: skip
    path = write_run_yaml(tmp_path / "run.yaml", document, model={"name": "distilled-embedder"})
    run = zenml_client.get_pipeline_run(
        finetune_pipeline.with_options(config_path=str(path), enable_cache=False)().id
    )
    assert run.status == ExecutionStatus.COMPLETED

    step_run = run.steps["teacher_targets"]
    labelled = step_run.outputs["train_datasets"][0].load()
    reports = step_run.outputs["teacher_targets"][0].load()
    assert isinstance(reports, TeacherReports)
    assert labelled["texts"].column_names == ["text", "label"]
    assert len(labelled["texts"][0]["label"]) == 32
    assert step_run.run_metadata["texts_encoded"] == 40  # 32 training + 8 held-out texts
    assert step_run.run_metadata["teacher_targets"]["texts"]["train_rows"] == 32

    # The train step read the labelled artifact (not the load step's rows).
    train_input = run.steps["train"].inputs["train_datasets"][0]
    assert train_input.id == step_run.outputs["train_datasets"][0].id
    training = run.steps["train"].outputs["training"][0].load()
    assert training.train_rows == {"texts": 32}
