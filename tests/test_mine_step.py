"""Mining through the real pipeline on ZenML's local stack: the mined triplets train, the
reports are an artifact and metadata, the card says what mining did, nothing mined reads
held-out rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, docs_pipeline_config, write_jsonl, write_run_yaml
from trainer.results import MiningReports


@pytest.mark.slow
def test_the_pipeline_mines_then_trains_on_the_triplets(
    zenml_client, tiny_model_path: Path, tmp_path: Path
) -> None:
    from huggingface_hub import ModelCard
    from zenml.enums import ExecutionStatus

    from pipelines.finetune import finetune_pipeline

    rows = [json.loads(line) for line in (REPO_ROOT / "data/stdlib_docs/train.jsonl").open()]
    document = docs_pipeline_config(tiny_model_path, write_jsonl(tmp_path / "p.jsonl", rows[:80]))
    document["datasets"]["docs"]["hard_negatives"] = {"num_negatives": 1, "range_max": 59}
    path = write_run_yaml(tmp_path / "run.yaml", document, model={"name": "mined-embedder"})
    run = zenml_client.get_pipeline_run(
        finetune_pipeline.with_options(config_path=str(path), enable_cache=False)().id
    )
    assert run.status == ExecutionStatus.COMPLETED

    step_run = run.steps["mine_hard_negatives"]
    mined = step_run.outputs["train_datasets"][0].load()
    reports = step_run.outputs["mining"][0].load()
    assert isinstance(reports, MiningReports)
    report = reports.datasets["docs"]
    assert mined["docs"].column_names == ["anchor", "positive", "negative_1"]
    assert len(mined["docs"]) == report.rows_with_negatives > 0
    assert report.rows_in == 60  # the 20 held-out rows (eval_size 0.25) never reach mining
    held_out = set(run.steps["load_datasets"].outputs["eval_datasets"][0].load()["docs"]["anchor"])
    assert not held_out & set(mined["docs"]["anchor"])
    assert step_run.run_metadata["hard_negatives"]["docs"]["rows_in"] == 60

    # Training consumed the triplets (the train step's input is the mining step's output).
    training = run.steps["train"].outputs["training"][0].load()
    assert training.train_rows == {"docs": report.rows_with_negatives}
    card = ModelCard(str(run.steps["model_card"].outputs["model_card"][0].load()))
    assert f"- Hard negatives: {report.summary_line()}" in card.text
