"""The mining step on ZenML's local stack: mined datasets and the reports as artifacts."""

from __future__ import annotations

from pathlib import Path

from datasets import DatasetDict, load_dataset
from zenml import pipeline, step

from steps.materializers import HFDatasetMaterializer
from steps.mine_hard_negatives import mine_hard_negatives
from tests.conftest import tiny_run_config
from trainer.config import RunConfig
from trainer.mining import MiningReports


@step(output_materializers=HFDatasetMaterializer)
def pair_rows(path: str) -> DatasetDict:
    rows = load_dataset("json", data_files=path, split="train")
    return DatasetDict({"docs": rows.select_columns(["query", "document"])})


@pipeline(enable_cache=False)
def mining_pipeline(config: RunConfig, path: str) -> None:
    mine_hard_negatives(config, pair_rows(path))


def test_mine_step_returns_mined_datasets_and_reports(
    zenml_client, tiny_model_path: Path, pairs_file: Path
) -> None:
    from zenml.enums import ExecutionStatus

    config = RunConfig.model_validate(
        tiny_run_config(
            tiny_model_path,
            {
                "docs": {
                    "source": {"path": str(pairs_file)},
                    "columns": {"query": "anchor", "document": "positive"},
                    "hard_negatives": {"num_negatives": 1, "range_max": 59},
                }
            },
        )
    )
    run = zenml_client.get_pipeline_run(mining_pipeline(config, str(pairs_file)).id)
    assert run.status == ExecutionStatus.COMPLETED
    step_run = run.steps["mine_hard_negatives"]
    mined = step_run.outputs["train_datasets"][0].load()
    reports = step_run.outputs["mining"][0].load()
    assert isinstance(reports, MiningReports)
    report = reports.datasets["docs"]
    assert mined["docs"].column_names == ["query", "document", "negative_1"]
    assert len(mined["docs"]) == report.rows_with_negatives > 0
    logged = step_run.run_metadata["hard_negatives"]["docs"]
    assert logged["rows_in"] == 60 and logged["false_negatives_filtered"] >= 0
