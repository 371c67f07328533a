"""Results where people look: the run's closing lines and `output.dir/summary.json`, for a
gate that passes and one that fails, and the card as the exported model's README.md."""

from __future__ import annotations

import json
from pathlib import Path

from trainer.config import RunConfig
from trainer.release import decide
from trainer.results import (
    NO_INTERVAL,
    DataReport,
    Evaluation,
    ModelInfo,
    Promotion,
    PushOutcome,
    RunRef,
    TrainingSummary,
)
from trainer.stages import card_stage, finish_run

METRIC = "docs-ir_cosine_ndcg@10"
RUN = RunRef(orchestrator="zenml", name="finetune-1", dashboard_url="http://127.0.0.1:8237/r/1")


def _config(tmp_path: Path, **gate: object) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"name_or_path": "sentence-transformers/all-MiniLM-L6-v2"},
            "datasets": {
                "docs": {
                    "source": {"path": "data/stdlib_docs/train.jsonl"},
                    "columns": {"query": "anchor", "document": "positive"},
                    "eval_size": 0.1,
                }
            },
            "evaluators": [{"type": "information_retrieval", "name": "docs-ir", "dataset": "docs"}],
            "gate": {"metric": METRIC, **gate},
            "output": {"dir": str(tmp_path / "out"), "model_name": "stdlib-embedder"},
        }
    )


EVALUATION = Evaluation(
    primary_metric=METRIC,
    base={METRIC: 0.5742},
    finetuned={METRIC: 0.6208},
    improvement={METRIC: 0.0466},
)


def test_a_passing_run_closes_with_decisions_and_where_results_are(tmp_path: Path) -> None:
    config = _config(tmp_path)
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "modules.json").write_text("[]")
    (out / "evaluation.json").write_text("{}")
    push = PushOutcome(
        pushed=False, gate=decide(config.gate, EVALUATION), reason="hub.enabled is false"
    )
    promotion = Promotion(
        promoted=True, reason="first version to pass the gate", model="stdlib-embedder", version="3"
    )
    lines: list[str] = []
    summary = finish_run(
        config, evaluation=EVALUATION, push=push, promotion=promotion, run=RUN, log=lines.append
    )
    assert lines == [
        f"ZenML run finetune-1: finished; {METRIC}: base 0.5742 -> fine-tuned 0.6208 (+0.0466)",
        f"gate: PASSED on {METRIC}: +0.0466, {NO_INTERVAL}",
        "push: not pushed (hub.enabled is false)",
        "promotion: stdlib-embedder version 3 promoted to production "
        "(first version to pass the gate)",
        f"model: {out / 'model'}",
        f"evaluation: {out / 'evaluation.json'}",
        f"summary: {out / 'summary.json'}",
        "dashboard: http://127.0.0.1:8237/r/1",
    ]
    written = json.loads((out / "summary.json").read_text())
    assert written == summary.model_dump(mode="json")
    assert written["gate"]["passed"] is True
    assert (out / "summary.md").read_text().startswith("# stdlib-embedder\n\nZenML run finetune-1")


def test_a_failing_gate_says_so_and_why_nothing_was_published(tmp_path: Path) -> None:
    config = _config(tmp_path, min_value=0.7)
    decision = decide(config.gate, EVALUATION)
    push = PushOutcome(pushed=False, gate=decision, reason="gate failed")
    promotion = Promotion(promoted=False, reason=f"gate failed: {decision.reasons[0]}")
    lines: list[str] = []
    finish_run(
        config, evaluation=EVALUATION, push=push, promotion=promotion, run=RUN, log=lines.append
    )
    assert lines[1] == f"gate: FAILED on {METRIC} ({METRIC} = 0.6208 < min_value 0.7)"
    assert lines[2] == "push: not pushed (gate failed)"
    assert (
        lines[3]
        == f"promotion: model not promoted (gate failed: {METRIC} = 0.6208 < min_value 0.7)"
    )
    assert lines[-2:] == [
        f"summary: {tmp_path / 'out' / 'summary.json'}",
        "dashboard: " + str(RUN.dashboard_url),
    ]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["gate"]["passed"] is False and summary["push"]["pushed"] is False


def test_without_a_registry_or_output_dir_the_run_still_closes(tmp_path: Path) -> None:
    config = _config(tmp_path).model_copy(
        update={"output": _config(tmp_path).output.model_copy(update={"dir": None})}
    )
    lines: list[str] = []
    summary = finish_run(config, evaluation=EVALUATION, log=lines.append)
    assert lines == [
        f"finished; {METRIC}: base 0.5742 -> fine-tuned 0.6208 (+0.0466)",
        f"gate: PASSED on {METRIC}: +0.0466, {NO_INTERVAL}",
        "promotion: none (this orchestrator has no model registry)",
    ]
    assert summary.files == {}


def test_the_card_becomes_the_exported_models_readme(tmp_path: Path) -> None:
    config = _config(tmp_path)
    training = TrainingSummary(
        train_seconds=1.0,
        global_step=38,
        planned_steps=38,
        train_loss=0.5875,
        model_info=ModelInfo(base_model=config.model.name_or_path),
    )
    arguments = {
        "evaluation": EVALUATION,
        "training": training,
        "data": DataReport(datasets={}),
        "run": RUN,
    }
    card = card_stage(config, **arguments)
    readme = tmp_path / "out" / "model" / "README.md"
    assert not readme.exists()  # no exported model on this machine: nothing to annotate
    (readme.parent).mkdir(parents=True)
    (readme.parent / "modules.json").write_text("[]")
    assert card_stage(config, **arguments) == card
    text = readme.read_text()
    assert text == card
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in text
    assert "`docs`" in text and "**passed**" in text
