"""Step: evaluate the fine-tuned model against its base and the model in production.

All three score the same held-out rows with the same evaluators. The base is exactly
the weights the training started from (for a `zenml:` base: that model version's
artifact); production is the current production version of the run's ZenML model, when
there is one, so promotion compares like with like.
"""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from sentence_transformers import SentenceTransformer
from zenml import get_step_context, step
from zenml.exceptions import StepContextError
from zenml.types import HTMLString

from steps._metadata import log_step_metadata
from steps._models import lineage_model_folder, production_model
from steps._tracking import mlflow_tracked
from trainer.config import RunConfig
from trainer.models import load_model
from trainer.results import Evaluation, TrainingSummary
from trainer.stages import evaluate_stage, evaluation_report, evaluation_tags
from trainer.training import log_evaluation, log_html, log_run_tags


def _base_model(config: RunConfig, training: TrainingSummary) -> SentenceTransformer:
    if training.lineage is None:
        return load_model(config.model)
    folder = lineage_model_folder(training.lineage)
    return load_model(config.model.model_copy(update={"name_or_path": str(folder)}))


def _production(config: RunConfig) -> tuple[SentenceTransformer, str] | None:
    try:
        model = get_step_context().model
    except StepContextError:
        return None
    found = production_model(model.name) if model is not None else None
    if found is None:
        return None
    folder, lineage = found
    weights = load_model(config.model.model_copy(update={"name_or_path": str(folder)}))
    return weights, lineage.describe()


@step
def evaluate(
    config: RunConfig,
    model: SentenceTransformer,
    eval_datasets: DatasetDict,
    training: TrainingSummary,
) -> tuple[Annotated[Evaluation, "evaluation"], Annotated[HTMLString, "evaluation_report"]]:
    """Metrics of all models, their difference, a dashboard report with the training
    curves, and `evaluation.json` and `report.html` in `output.dir`."""
    evaluation = evaluate_stage(
        config,
        model,
        eval_datasets,
        base_model=_base_model(config, training),
        production=_production(config),
        steps_trained=training.global_step,
    )
    # Per-query values are for the gate's bootstrap (in the artifact), not metadata.
    per_query = {"base_per_query", "finetuned_per_query"}
    log_step_metadata(evaluation.model_dump(mode="json", exclude_none=True, exclude=per_query))
    report = evaluation_report(config, evaluation, training)
    if mlflow_tracked():
        log_evaluation(evaluation, config.gate.metric or evaluation.primary_metric)
        log_html(report, "evaluation_report.html")
        log_run_tags(evaluation_tags(config, evaluation))
    return evaluation, HTMLString(report)
