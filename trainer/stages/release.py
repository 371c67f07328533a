"""The release end of a run, for both orchestrators: the model card (also written as the
exported model's README.md), and the run's closing summary (what was decided about the
gate, the push and the promotion, and where each result is), logged as the run's last
lines and written to `output.dir/summary.json` and `summary.md`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from trainer.config import RunConfig
from trainer.release import ONNX_FOLDER, decide, render_model_card
from trainer.results import (
    DataReport,
    Evaluation,
    ExportReport,
    MiningReports,
    Promotion,
    PushOutcome,
    RunRef,
    RunSummary,
    SearchResult,
    TrainingSummary,
)

logger = logging.getLogger(__name__)

SUMMARY_MARKDOWN = "summary.md"

_MODEL_FILES = ("modules.json", "config_sentence_transformers.json")
"""Files that make a folder a saved sentence-transformers model."""


def is_model_folder(folder: Path | None) -> bool:
    """Whether `folder` holds a saved sentence-transformers model."""
    return folder is not None and any((folder / name).is_file() for name in _MODEL_FILES)


def card_stage(
    config: RunConfig,
    *,
    evaluation: Evaluation,
    training: TrainingSummary,
    data: DataReport,
    run: RunRef | None = None,
    search: SearchResult | None = None,
    mining: MiningReports | None = None,
    export: ExportReport | None = None,
) -> str:
    """The model card (README.md with front matter), from the earlier stages' results.

    When this machine holds the exported model (`output.dir/model`, written by training
    on the same machine: the local stack, or a volume the pods share), the card becomes
    its README.md: the text a push publishes, not sentence-transformers' generic card.
    """
    card = render_model_card(
        config,
        evaluation=evaluation,
        training=training,
        data=data,
        run=run,
        search=search,
        mining=mining,
        export=export,
    )
    path = config.output.card_path
    if path is not None and is_model_folder(path.parent):
        path.write_text(card, encoding="utf-8")
        logger.info("model card written to %s", path)
    return card


def _files(config: RunConfig) -> dict[str, str]:
    """The results this run left in `output.dir` on this machine, by kind."""
    output = config.output
    candidates = {
        "model": output.model_dir if is_model_folder(output.model_dir) else None,
        "model_card": output.card_path,
        "report": output.report_path,
        "evaluation": output.evaluation_path,
        "onnx": output.model_dir / ONNX_FOLDER if output.model_dir and config.export.onnx else None,
    }
    return {kind: str(path) for kind, path in candidates.items() if path and path.exists()}


def run_summary(
    config: RunConfig,
    *,
    evaluation: Evaluation,
    push: PushOutcome | None = None,
    promotion: Promotion | None = None,
    run: RunRef | None = None,
) -> RunSummary:
    """What the run decided and where its results are (nothing is written)."""
    gate, error = push.gate if push is not None else None, None
    if gate is None:
        try:
            gate = decide(config.gate, evaluation)
        except ValueError as problem:
            error = str(problem)
    metric = gate.metric if gate is not None else evaluation.primary_metric
    production = evaluation.production or {}
    return RunSummary(
        run=run.label() if run is not None else None,
        model=config.output.name,
        metric=metric,
        base=evaluation.base.get(metric) if metric else None,
        finetuned=evaluation.finetuned.get(metric) if metric else None,
        improvement=evaluation.improvement.get(metric) if metric else None,
        production=production.get(metric) if metric else None,
        gate=gate,
        gate_error=error,
        push=push,
        promotion=promotion,
        files=_files(config),
        dashboard_url=run.dashboard_url if run is not None else None,
    )


def finish_run(
    config: RunConfig,
    *,
    evaluation: Evaluation,
    push: PushOutcome | None = None,
    promotion: Promotion | None = None,
    run: RunRef | None = None,
    log: Callable[[str], None] = logger.info,
) -> RunSummary:
    """Close the run: write `output.dir/summary.json` and `summary.md` (when `output.dir`
    is set) and log the closing lines: the gate metric, the gate, push and promotion
    decisions, and where the model, its card, the report, the evaluation and the summary
    are. The last stage of either orchestrator calls this, for a pass and a failure alike."""
    summary = run_summary(config, evaluation=evaluation, push=push, promotion=promotion, run=run)
    path = config.output.summary_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        summary.files["summary"] = str(path)
        path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
        (path.parent / SUMMARY_MARKDOWN).write_text(summary.markdown(), encoding="utf-8")
    for line in summary.lines():
        log(line)
    return summary


def evaluation_tags(config: RunConfig, evaluation: Evaluation) -> dict[str, str]:
    """The verdict as tags: the gate (passed / failed / not decided) and the gate metric
    base -> fine-tuned, readable in the runs table without opening a chart."""
    try:
        decision = decide(config.gate, evaluation)
    except ValueError:
        return {"st_finetune.gate": "not decided"}
    base = f"{decision.base_value:.4f} -> " if decision.base_value is not None else ""
    return {
        "st_finetune.gate": "passed" if decision.passed else "failed",
        "st_finetune.gate_metric": decision.metric,
        "st_finetune.result": f"{base}{decision.value:.4f}",
    }
