"""Step: write the Hugging Face model card from saved artifacts.

It needs no model object and no training process: config, data report, training
summary, evaluation (and the search result, when the run searched) are enough, so it
runs in its own (CPU) pod.
"""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.types import MarkdownString

from steps._context import run_ref
from steps._tracking import mlflow_tracked
from trainer.config import RunConfig
from trainer.release import render_model_card
from trainer.results import DataReport, Evaluation, MiningReports, SearchResult, TrainingSummary
from trainer.training import log_model_card


@step
def model_card(
    config: RunConfig,
    evaluation: Evaluation,
    training: TrainingSummary,
    data_report: DataReport,
    search: SearchResult | None = None,
    mining: MiningReports | None = None,
) -> Annotated[MarkdownString, "model_card"]:
    """README.md text (YAML front matter + body), shown in the dashboard as Markdown."""
    card = render_model_card(
        config,
        evaluation=evaluation,
        training=training,
        data=data_report,
        run=run_ref(),
        search=search,
        mining=mining,
    )
    if mlflow_tracked():
        log_model_card(card)
    return MarkdownString(card)
