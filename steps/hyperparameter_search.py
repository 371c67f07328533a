"""Step: search training arguments and loss parameters before the final training.

Runs `config.search` (Optuna through the trainer's `hyperparameter_search`), records every
trial as metadata and as a dashboard table, and returns the config the train step uses:
the best trial's parameters applied, `search` cleared. The pipeline adds this step only
when the config has a `search` block.
"""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import step
from zenml.logger import get_logger
from zenml.types import HTMLString

from steps._metadata import log_step_metadata
from steps._models import resolve_base_model, resolve_loss_models
from trainer.config import RunConfig
from trainer.reports import render_search_html
from trainer.results import SearchResult
from trainer.training import apply_best, run_search

logger = get_logger(__name__)


@step
def hyperparameter_search(
    config: RunConfig, train_datasets: DatasetDict, eval_datasets: DatasetDict
) -> tuple[
    Annotated[SearchResult, "search_result"],
    Annotated[HTMLString, "search_report"],
    Annotated[RunConfig, "tuned_config"],
]:
    """Every trial's parameters and score, a table of them, and the tuned run config."""
    trial_config, _ = resolve_base_model(config)  # trials start from a zenml: base too
    trial_config = resolve_loss_models(trial_config, roles=("guide",))
    result = run_search(trial_config, train_datasets, eval_datasets)
    logger.info(
        "Best of %d trials: trial %d, %s %.4f with %s",
        len(result.trials),
        result.best_trial,
        result.metric,
        result.best_score,
        result.best_params,
    )
    log_step_metadata(
        {
            "search": {
                "metric": result.metric,
                "best_trial": result.best_trial,
                "best_score": result.best_score,
                "best_params": result.best_params,
                "seconds": result.seconds,
                "trials": {
                    f"trial_{trial.number}": trial.model_dump(exclude={"number"}, exclude_none=True)
                    for trial in result.trials
                },
            }
        }
    )
    # Applied to the config as written, so a zenml: base is resolved (and recorded) again
    # by the train step.
    return result, HTMLString(render_search_html(result)), apply_best(config, result)
