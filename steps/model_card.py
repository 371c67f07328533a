"""Step: write the Hugging Face model card from saved artifacts.

It needs no model object and no training process: config, data report, training
summary, evaluation (and the search result, when the run searched) are enough, so it
runs in its own (CPU) pod. Where the exported model is on this machine
(`output.dir/model`), the card becomes its README.md.
"""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.types import MarkdownString

from steps._context import run_ref
from steps._tracking import mlflow_tracked
from trainer.config import RunConfig
from trainer.results import (
    DataReport,
    Evaluation,
    ExportReport,
    MiningReports,
    SearchResult,
    TrainingSummary,
)
from trainer.stages import card_stage
from trainer.training import log_model_card


@step
def model_card(
    config: RunConfig,
    evaluation: Evaluation,
    training: TrainingSummary,
    data_report: DataReport,
    search: SearchResult | None = None,
    mining: MiningReports | None = None,
    export_report: ExportReport | None = None,
) -> Annotated[MarkdownString, "model_card"]:
    """README.md text (YAML front matter + body), shown in the dashboard as Markdown."""
    card = card_stage(
        config,
        evaluation=evaluation,
        training=training,
        data=data_report,
        run=run_ref(),
        search=search,
        mining=mining,
        export=export_report,
    )
    if mlflow_tracked():
        log_model_card(card)
    return MarkdownString(card)
