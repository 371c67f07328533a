"""Step: evaluate the base and the fine-tuned model on the same held-out data."""

from __future__ import annotations

import json
from typing import Annotated, Any

from datasets import DatasetDict
from sentence_transformers import SentenceTransformer
from zenml import step
from zenml.logger import get_logger
from zenml.types import HTMLString

from steps._metadata import log_step_metadata
from trainer.config import RunConfig
from trainer.evaluation import build_evaluators, compare
from trainer.report import render_comparison_html
from trainer.training import load_model

logger = get_logger(__name__)


@step
def evaluate(
    config: RunConfig,
    model: SentenceTransformer,
    eval_datasets: DatasetDict,
) -> tuple[Annotated[dict[str, Any], "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """Metrics of both models, their difference, a dashboard report and `evaluation.json`."""
    evaluators = build_evaluators(config, eval_datasets)
    if not evaluators:
        raise ValueError(
            "nothing to evaluate: configure evaluators, or give a dataset eval_size/eval_source"
        )
    evaluation = compare(load_model(config.model), model, evaluators)
    primary = evaluation["primary_metric"]
    logger.info(
        "%s: base %.4f -> fine-tuned %.4f",
        primary,
        evaluation["base"][primary],
        evaluation["finetuned"][primary],
    )
    if config.output.evaluation_path is not None:
        config.output.evaluation_path.parent.mkdir(parents=True, exist_ok=True)
        config.output.evaluation_path.write_text(json.dumps(evaluation, indent=2) + "\n")
    log_step_metadata(
        {
            "primary_metric": primary,
            "base": evaluation["base"],
            "finetuned": evaluation["finetuned"],
            "improvement": evaluation["improvement"],
        }
    )
    report = render_comparison_html(
        evaluation, title=f"{config.output.model_name}: base vs fine-tuned"
    )
    return evaluation, HTMLString(report)
