"""Step: promote the run's model version to `production` when it earned it.

Every run with a `model:` in its ZenML config already registers a model version: its
artifacts (model, evaluation, card) are linked to it and the evaluate step attached the
metrics. This step only moves the `production` stage, and only when the version passed
the gate and beats the current production version on the gate metric.
"""

from __future__ import annotations

from typing import Annotated, Any

from zenml import get_step_context, log_metadata, step
from zenml.client import Client
from zenml.enums import ModelStages
from zenml.exceptions import StepContextError
from zenml.logger import get_logger

from trainer.config import RunConfig
from trainer.gate import decide

logger = get_logger(__name__)


def _production_score(model_name: str, metric: str) -> float | None:
    """The gate metric of the current production version, if there is one."""
    try:
        production = Client().get_model_version(model_name, ModelStages.PRODUCTION)
    except KeyError:
        return None
    value = production.run_metadata.get("finetuned", {}).get(metric)
    return float(value) if value is not None else None


@step
def promote(
    config: RunConfig, evaluation: dict[str, Any], hub_push: dict[str, Any]
) -> Annotated[dict[str, Any], "promotion"]:
    """{"promoted": bool, "reason": ..., "stage": ...}; logs one line either way."""
    try:
        model = get_step_context().model
    except StepContextError:
        model = None
    if model is None:
        logger.info("No `model:` in the run config: nothing to register or promote.")
        return {"promoted": False, "reason": "no model configured"}

    decision = decide(config.gate, evaluation)
    outcome: dict[str, Any] = {"promoted": False, "model": model.name, "version": model.version}
    current = _production_score(model.name, decision.metric)
    if not decision.passed:
        outcome["reason"] = f"gate failed: {'; '.join(decision.reasons)}"
    elif current is not None and decision.value <= current:
        outcome["reason"] = (
            f"{decision.metric} {decision.value:.4f} does not beat production {current:.4f}"
        )
    else:
        model.set_stage(ModelStages.PRODUCTION, force=True)
        outcome.update(promoted=True, stage="production", previous_production_score=current)
        outcome["reason"] = (
            f"{decision.metric} {decision.value:.4f} beats production {current:.4f}"
            if current is not None
            else "first version to pass the gate"
        )
    logger.info(
        "Model %s version %s %s: %s",
        model.name,
        model.version,
        "promoted to production" if outcome["promoted"] else "not promoted",
        outcome["reason"],
    )
    log_metadata(metadata={"promotion": outcome})
    log_metadata(metadata={"promotion": outcome, "hub_push": hub_push}, infer_model=True)
    return outcome
