"""Step: promote the run's model version to `production` when it earned it.

Every run with a `model:` in its ZenML config already registers a model version: its
artifacts (model, evaluation, card) are linked to it and the evaluate step attached the
metrics. This step only moves the `production` stage, and only when the version passed
the gate and beats the current production version on the gate metric. As the run's last
step it closes the run: the closing lines (gate, push, promotion, where each result is)
and `output.dir/summary.json`.
"""

from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.enums import ModelStages
from zenml.exceptions import StepContextError
from zenml.logger import get_logger

from steps._context import run_ref
from trainer.config import RunConfig
from trainer.release import decide_release, promotion_verdict
from trainer.results import Evaluation, ExportReport, Promotion, PushOutcome
from trainer.stages import finish_run

logger = get_logger(__name__)


def _production_score(model_name: str, metric: str, evaluation: Evaluation) -> float | None:
    """The gate metric of the current production version, if there is one: as the evaluate
    step measured it on this run's held-out rows, else as that version's own run did."""
    if evaluation.production is not None and metric in evaluation.production:
        return evaluation.production[metric]
    try:
        production = Client().get_model_version(model_name, ModelStages.PRODUCTION)
    except KeyError:
        return None
    value = production.run_metadata.get("finetuned", {}).get(metric)
    return float(value) if value is not None else None


@step
def promote(
    config: RunConfig,
    evaluation: Evaluation,
    hub_push: PushOutcome,
    export_report: ExportReport | None = None,
) -> Annotated[Promotion, "promotion"]:
    """Whether the version became `production`, and why; logs one line either way, then
    the run's closing lines."""
    try:
        model = get_step_context().model
    except StepContextError:
        model = None
    if model is None:
        logger.info("No `model:` in the run config: nothing to register or promote.")
        outcome = Promotion(promoted=False, reason="no model configured")
        finish_run(config, evaluation=evaluation, push=hub_push, promotion=outcome, run=run_ref())
        return outcome

    decision = decide_release(config, evaluation, export_report)
    current = _production_score(model.name, decision.metric, evaluation)
    promoted, reason = promotion_verdict(decision, current)
    if promoted:
        model.set_stage(ModelStages.PRODUCTION, force=True)
    outcome = Promotion(
        promoted=promoted,
        reason=reason,
        model=model.name,
        version=str(model.version),
        stage=ModelStages.PRODUCTION.value if promoted else None,
        previous_production_score=current,
    )
    logger.info(
        "Model %s version %s %s: %s",
        model.name,
        model.version,
        "promoted to production" if promoted else "not promoted",
        reason,
    )
    facts = outcome.model_dump(mode="json", exclude_none=True)
    log_metadata(metadata={"promotion": facts})
    log_metadata(
        metadata={
            "promotion": facts,
            "hub_push": hub_push.model_dump(mode="json", exclude_none=True),
        },
        infer_model=True,
    )
    finish_run(config, evaluation=evaluation, push=hub_push, promotion=outcome, run=run_ref())
    return outcome
