"""Step: evaluate the base and the fine-tuned model on the same held-out data."""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from sentence_transformers import SentenceTransformer
from zenml import step
from zenml.types import HTMLString

from steps._metadata import log_step_metadata
from trainer.config import RunConfig
from trainer.report import render_comparison_html
from trainer.results import Evaluation
from trainer.run import evaluate_stage


@step
def evaluate(
    config: RunConfig,
    model: SentenceTransformer,
    eval_datasets: DatasetDict,
) -> tuple[Annotated[Evaluation, "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """Metrics of both models, their difference, a dashboard report and `evaluation.json`."""
    evaluation = evaluate_stage(config, model, eval_datasets)
    log_step_metadata(evaluation.model_dump(mode="json"))
    report = render_comparison_html(evaluation, title=f"{config.output.name}: base vs fine-tuned")
    return evaluation, HTMLString(report)
