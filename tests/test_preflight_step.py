"""The pipeline's preflight step on ZenML's local stack: a bad config stops the run in
its first step, before the data is stored or a model loads, with every problem named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import docs_pipeline_config
from trainer.preflight import PreflightFailed


def _config_file(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        yaml.safe_dump({"enable_cache": False, "parameters": {"config": document}}, sort_keys=False)
    )
    return path


def test_a_bad_gate_metric_stops_the_run_in_the_preflight_step(
    zenml_client,
    tiny_model_path: Path,
    pairs_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A gate metric no evaluator reports, and a Hub secret without a token: before the
    preflight, the first failed after training and evaluation, the second in the push."""
    from zenml.enums import ExecutionStatus

    from pipelines.finetune import finetune_pipeline

    monkeypatch.delenv("HF_TOKEN", raising=False)
    # The secret does not exist at all: the pipeline attaches Hub secrets only when they
    # exist (ZenML would refuse the run), so the preflight is what names the problem.
    document = docs_pipeline_config(tiny_model_path, pairs_file)
    document["gate"] = {"metric": "docs-ir_cosine_ndcg@100"}
    document["hub"] = {"enabled": True, "repo_id": "org/model", "secret_name": "hf-without-token"}
    # Fail fast: the caller gets the preflight's own error, the problem list.
    with pytest.raises(PreflightFailed, match="the run config has 2 problems"):
        finetune_pipeline.with_options(config_path=str(_config_file(tmp_path, document)))()

    run = zenml_client.list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    assert run.status == ExecutionStatus.FAILED
    assert set(run.steps) == {"preflight"}, "no other step may start"
    step = run.steps["preflight"]
    assert step.status == ExecutionStatus.FAILED
    problems = step.run_metadata["preflight"]["problems"]
    assert problems[0].startswith(
        "gate.metric: 'docs-ir_cosine_ndcg@100' is not reported by any evaluator; did you "
        "mean 'docs-ir_cosine_ndcg@10'?"
    )
    assert problems[1].startswith("hub.secret_name: no secret 'hf-without-token' holding HF_TOKEN")
    assert len(problems) == 2
    seconds = (step.end_time - step.start_time).total_seconds()
    print(f"preflight step failed after {seconds:.1f} s")


def test_a_good_config_passes_the_preflight_step_before_loading(
    zenml_client, tiny_model_path: Path, pairs_file: Path, tmp_path: Path
) -> None:
    """The step's report is an artifact; `load_datasets` starts only after it."""
    from zenml import pipeline

    from steps.load_datasets import load_datasets
    from steps.preflight import preflight
    from trainer.config import RunConfig

    config = RunConfig.model_validate(docs_pipeline_config(tiny_model_path, pairs_file))

    @pipeline(enable_cache=False)
    def check_then_load() -> None:
        checked = preflight(config=config)
        load_datasets(config=config, after=checked)

    run = zenml_client.get_pipeline_run(check_then_load().id)
    report = run.steps["preflight"].outputs["preflight_report"][0].load()
    assert report.ok and report.gate_metric == "docs-ir_cosine_ndcg@10"
    assert any(line.startswith("checkpoint location ") for line in report.checked)
    assert run.steps["load_datasets"].start_time >= run.steps["preflight"].end_time
    assert run.steps["load_datasets"].spec.upstream_steps == ["preflight"]
