"""The evaluate stage: the base and the fine-tuned model (and the one in production, when
there is one) scored by the same evaluators on the same rows; and the HTML report of the
evaluation with the training curves, which both orchestrators show and `output.dir` keeps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from datasets import DatasetDict

from trainer.config import RunConfig
from trainer.evaluation import build_evaluators, compare, run_evaluators, score_by_dimension
from trainer.models import load_model
from trainer.release import decide
from trainer.reports import render_comparison_html, render_report_page
from trainer.results import Evaluation, TrainingSummary

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


def weights_changed(base: SentenceTransformer, tuned: SentenceTransformer) -> bool:
    """Whether any parameter or buffer of `tuned` differs from `base`'s."""
    import torch

    before, after = base.state_dict(), tuned.state_dict()
    if before.keys() != after.keys():
        return True
    return any(not torch.equal(before[key].cpu(), after[key].cpu()) for key in before)


def evaluate_stage(
    config: RunConfig,
    model: SentenceTransformer,
    eval_datasets: DatasetDict,
    *,
    base_model: SentenceTransformer | None = None,
    production: tuple[SentenceTransformer, str] | None = None,
    steps_trained: int | None = None,
) -> Evaluation:
    """Score the base and the fine-tuned model with the same evaluators on the same rows
    (and `production`, the model in production with its description, when given), log
    the primary metric, and write `output.dir/evaluation.json` when set. The per-query
    values of the gate metric are kept for the gate's bootstrap, and `steps_trained`
    (the training's optimizer steps) for its minimum-steps rule."""
    evaluators = build_evaluators(config, eval_datasets)
    if not evaluators:
        raise ValueError(
            "nothing to evaluate: configure evaluators, or give a dataset eval_size/eval_source"
        )
    base = base_model or load_model(config.model)
    evaluation = compare(
        base,
        model,
        evaluators,
        base_label=f"the base model ({config.model.name_or_path})",
        per_query_keys=[config.gate.metric] if config.gate.metric else [],
    )
    if config.matryoshka_dims:
        by_dimension = score_by_dimension(
            base, model, evaluators[0], config.matryoshka_dims, evaluation
        )
        evaluation = evaluation.model_copy(update={"by_dimension": by_dimension})
        for score in by_dimension:
            logger.info(
                "%s at %d dims: base %s -> fine-tuned %.4f",
                evaluation.primary_metric,
                score.dimension,
                "n/a" if score.base is None else f"{score.base:.4f}",
                score.finetuned,
            )
    changed = weights_changed(base, model)
    evaluation = evaluation.model_copy(
        update={"weights_changed": changed, "steps_trained": steps_trained}
    )
    if not changed:
        logger.warning("the fine-tuned weights are identical to the base model's")
    if production is not None:
        production_model, described = production
        evaluation = evaluation.model_copy(
            update={
                "production": run_evaluators(
                    production_model, evaluators, label=f"the production model ({described})"
                ),
                "production_model": described,
            }
        )
    primary = evaluation.primary_metric
    if primary is not None:
        against = (
            f" (production {evaluation.production[primary]:.4f})"
            if evaluation.production and primary in evaluation.production
            else ""
        )
        logger.info(
            "%s: base %.4f -> fine-tuned %.4f%s",
            primary,
            evaluation.base[primary],
            evaluation.finetuned[primary],
            against,
        )
    path = config.output.evaluation_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(evaluation.model_dump_json(indent=2) + "\n")
    return evaluation


def evaluation_report(
    config: RunConfig, evaluation: Evaluation, training: TrainingSummary | None = None
) -> str:
    """The evaluation report (metrics table, then the training curves of `training`) as an
    HTML fragment for the orchestrator's UI; also written to `output.dir/report.html` as a
    page of its own when `output.dir` is set."""
    title = f"{config.output.name}: base vs fine-tuned"
    try:
        gate = decide(config.gate, evaluation)
    except ValueError:
        gate = None  # the push step reports the misconfigured gate
    report = render_comparison_html(
        evaluation,
        title=title,
        history=training.history if training is not None else None,
        gate=gate,
    )
    path = config.output.report_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_report_page(title, report), encoding="utf-8")
    return report
