"""Step: write the Hugging Face model card from saved artifacts.

It needs no model object and no training process: config, dataset stats, training
summary and evaluation are enough, so it runs in its own (CPU) pod.
"""

from __future__ import annotations

from typing import Annotated, Any

from zenml import get_step_context, step
from zenml.types import MarkdownString

from trainer.config import RunConfig
from trainer.model_card import render_model_card


def _lineage() -> dict[str, Any]:
    """The pipeline run that produced the model, with its dashboard URL when one exists."""
    from zenml.utils.dashboard_utils import get_run_url

    run = get_step_context().pipeline_run
    return {
        "pipeline_name": run.pipeline.name if run.pipeline else None,
        "run_name": run.name,
        "run_id": str(run.id),
        "dashboard_url": get_run_url(run),
    }


@step
def model_card(
    config: RunConfig,
    evaluation: dict[str, Any],
    training: dict[str, Any],
    dataset_stats: dict[str, Any],
) -> Annotated[MarkdownString, "model_card"]:
    """README.md text (YAML front matter + body), shown in the dashboard as Markdown."""
    card = render_model_card(
        config,
        evaluation=evaluation,
        training=training,
        dataset_stats=dataset_stats,
        model_info=training.get("model_info", {}),
        run=_lineage(),
        emissions=training.get("emissions"),
    )
    return MarkdownString(card)
