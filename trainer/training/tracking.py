"""Experiment tracking: what a run sends to the tracker, and the trainer callback that
streams the curves.

The orchestrator owns the tracker's run: ZenML's experiment-tracker component starts
an MLflow run before a tracked step and ends it after (one MLflow run per pipeline run;
the train and evaluate steps both log into it). This module only logs into the run that
is active; it never starts one, so nothing is sent anywhere unless the orchestrator
turned tracking on.

The loss / learning-rate / grad-norm curves come from transformers' own reporting
callbacks (`MLflowCallback`, `WandbCallback`, ...): they log every `logging_steps` while
training, into the active run. What they do not know — the run config, dataset sizes,
losses, the base-vs-fine-tuned evaluation and the model card — is logged here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import TrainerCallback

    from trainer.config import RunConfig

TRACKER_FLAVOR_TO_REPORT_TO: dict[str, str] = {
    "mlflow": "mlflow",
    "wandb": "wandb",
    "comet": "comet_ml",
    "trackio": "trackio",
    "neptune": "neptune",
}
"""ZenML experiment-tracker flavor -> the transformers `report_to` integration whose
callback logs into that tracker's active run."""

_INVALID_NAME_CHARACTERS = re.compile(r"[^0-9A-Za-z_\-. :/]")


def metric_name(key: str) -> str:
    """An MLflow-safe metric name: the same substitution transformers' MLflowCallback
    applies (`cosine_ndcg@10` -> `cosine_ndcg_10`), so final metrics and the metrics
    logged during training line up."""
    return _INVALID_NAME_CHARACTERS.sub("_", key)


def reporting_callbacks(flavor: str, config: RunConfig) -> list[TrainerCallback]:
    """The transformers callback that logs curves to a tracker of this ZenML `flavor`.

    Empty for a flavor transformers has no callback for, and when `training.report_to`
    already names that integration (the trainer adds that callback itself).
    """
    from transformers.integrations import INTEGRATION_TO_CALLBACK

    integration = TRACKER_FLAVOR_TO_REPORT_TO.get(flavor)
    if integration is None or integration not in INTEGRATION_TO_CALLBACK:
        return []
    report_to = config.training.get("report_to", "none")
    named = [report_to] if isinstance(report_to, str) else list(report_to or [])
    if integration in named or "all" in named:
        return []
    if integration == "mlflow":
        return [_project_mlflow_callback()]
    return [INTEGRATION_TO_CALLBACK[integration]()]


def _project_mlflow_callback() -> TrainerCallback:
    """transformers' `MLflowCallback` without the base model's architecture config as
    parameters (~40 of them: hidden sizes, dropout, vocabulary size...), which buried the
    run's own parameters (`log_run_parameters`, logged first). The curves and the trainer's
    arguments are logged as transformers logs them."""
    from transformers.integrations import MLflowCallback

    class ProjectMLflowCallback(MLflowCallback):
        def setup(self, args: Any, state: Any, model: Any) -> None:
            super().setup(args, state, None)

    return ProjectMLflowCallback()


def flatten(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """`{"a": {"b": 1}}` -> `("a.b", 1)`; lists and scalars stay leaves."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{name}.")
        else:
            yield name, value


def run_parameters(
    config: RunConfig, train_rows: Mapping[str, int], eval_rows: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """What defines the run, as flat `section.key` parameters.

    `training.*` are the effective training arguments (defaults + seed + config), i.e.
    what the model card shows; `data.<name>.*` the row counts and `loss.<name>.*` each
    dataset's loss. The `training.` prefix keeps them apart from the raw arguments the
    MLflowCallback logs under their bare names.
    """
    from trainer.training.arguments import effective_training_arguments

    parameters: dict[str, Any] = {
        "model.name_or_path": config.model.name_or_path,
        "model.max_seq_length": config.model.max_seq_length,
        "seed": config.seed,
    }
    parameters.update(flatten(effective_training_arguments(config), "training."))
    for name, dataset in config.datasets.items():
        parameters[f"data.{name}.train_rows"] = train_rows.get(name)
        if eval_rows is not None:
            parameters[f"data.{name}.eval_rows"] = eval_rows.get(name)
        parameters[f"loss.{name}.name"] = dataset.loss.name
        parameters.update(flatten(dataset.loss.params, f"loss.{name}.params."))
        if dataset.loss.matryoshka_dims:
            parameters[f"loss.{name}.matryoshka_dims"] = dataset.loss.matryoshka_dims
        if dataset.loss.cached:
            parameters[f"loss.{name}.cached"] = True
    return {key: value for key, value in parameters.items() if value is not None}


def evaluation_metrics(evaluation: Mapping[str, Any] | Any) -> dict[str, float]:
    """Final metrics as `<section>/<metric>`: every mapping of numbers in the evaluation
    (`base`, `finetuned`, `improvement`, and `production` when it is compared too).

    Accepts the evaluation dict or a pydantic model of it.
    """
    metrics: dict[str, float] = {}
    for section, values in _numeric_sections(evaluation).items():
        for key, value in values.items():
            metrics[metric_name(f"{section}/{key}")] = value
    return metrics


def gate_metrics(evaluation: Mapping[str, Any] | Any, metric: str | None) -> dict[str, float]:
    """The gate metric's final values, the only final values logged as MLflow metrics:
    `base/<metric>`, `finetuned/<metric>`, `improvement/<metric>` (and `production/...`,
    and any further section of numbers, such as an interval, that holds the metric).

    Empty when there is no gate metric or no section holds it (a misnamed gate metric is
    reported by the gate itself); the full comparison is still logged as a table.
    """
    if not metric:
        return {}
    return {
        metric_name(f"{section}/{metric}"): values[metric]
        for section, values in _numeric_sections(evaluation).items()
        if metric in values
    }


def evaluation_table(evaluation: Mapping[str, Any] | Any) -> dict[str, list[Any]]:
    """Every final metric, one row per metric and one column per section (`metric`,
    `base`, `finetuned`, `improvement`, `production`...), the table `log_evaluation`
    stores. Metric names stay as the evaluators report them (`ndcg@10`); a cell a section
    does not have is None."""
    sections = _numeric_sections(evaluation)
    names: dict[str, None] = {}
    for values in sections.values():
        names.update(dict.fromkeys(values))
    table: dict[str, list[Any]] = {"metric": list(names)}
    for section, values in sections.items():
        table[section] = [values.get(name) for name in names]
    return table


def _numeric_sections(evaluation: Mapping[str, Any] | Any) -> dict[str, dict[str, float]]:
    """The evaluation's mappings of numbers (`base`, `finetuned`, ...), in field order,
    without booleans and non-numeric entries."""
    if hasattr(evaluation, "model_dump"):
        evaluation = evaluation.model_dump()
    sections: dict[str, dict[str, float]] = {}
    for section, values in evaluation.items():
        if not isinstance(values, Mapping):
            continue
        numbers = {
            str(key): float(value)
            for key, value in values.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        if numbers:
            sections[section] = numbers
    return sections


def _active_run() -> Any:
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError(
            "no active MLflow run: tracking functions log into the run the orchestrator "
            "started (a step with experiment_tracker=...), they never start one"
        )
    return run


def log_run_parameters(
    config: RunConfig, train_rows: Mapping[str, int], eval_rows: Mapping[str, int] | None = None
) -> None:
    """Log `run_parameters` to the active MLflow run (values over MLflow's 6,000
    characters are cut, which only long prompts reach)."""
    import mlflow

    _active_run()
    parameters = {
        key: str(value)[:6000]
        for key, value in run_parameters(config, train_rows, eval_rows).items()
    }
    mlflow.log_params(parameters)


def run_tags(config: RunConfig, run_label: str | None = None) -> dict[str, str]:
    """What a runs table is filtered and grouped by: the model, its base, the datasets,
    the gate metric and the orchestrator run (`st_finetune.*`)."""
    tags = {
        "st_finetune.model": config.output.name,
        "st_finetune.base_model": config.model.name_or_path,
        "st_finetune.datasets": ", ".join(config.datasets),
    }
    if config.gate.metric:
        tags["st_finetune.gate_metric"] = config.gate.metric
    if run_label:
        tags["st_finetune.run"] = run_label
    return tags


def log_run_tags(tags: Mapping[str, str]) -> None:
    """Set tags on the active MLflow run (the run's facts, and later its verdicts)."""
    import mlflow

    _active_run()
    mlflow.set_tags(dict(tags))


def log_training_history(history: list[dict[str, Any]]) -> None:
    """Log the curves from `log_history` after the fact, step-indexed (for a training that
    ran without a reporting callback, e.g. in another process)."""
    import mlflow

    _active_run()
    for row in history:
        step = row.get("step")
        values = {
            metric_name(key): float(value)
            for key, value in row.items()
            if key not in ("step", "epoch")
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        }
        if values and step is not None:
            mlflow.log_metrics(values, step=int(step))


EVALUATION_TABLE = "evaluation/comparison.json"
"""Run artifact holding every final metric (`evaluation_table`), shown by the MLflow UI as
a table."""


def log_evaluation(evaluation: Mapping[str, Any] | Any, gate_metric: str | None) -> None:
    """Log the final evaluation: the gate metric's values as metrics, every metric in the
    `EVALUATION_TABLE` artifact.

    MLflow has no "summary value": a metric logged once is a one-point series with a chart
    of its own. Logging all ~36 final values that way put 36 single-bar charts ahead of the
    loss and learning-rate curves, so only the gate metric (what the runs table is sorted
    and compared by) is a metric; the full base / fine-tuned / improvement / production
    comparison is one table.
    """
    import mlflow

    _active_run()
    metrics = gate_metrics(evaluation, gate_metric)
    if metrics:
        mlflow.log_metrics(metrics)
    mlflow.log_table(evaluation_table(evaluation), EVALUATION_TABLE)


def log_model_card(card: str, artifact_file: str = "model_card/README.md") -> None:
    """Store the model card as a text artifact of the run (the MLflow UI renders it)."""
    import mlflow

    _active_run()
    mlflow.log_text(str(card), artifact_file)


def log_html(page: str, artifact_file: str) -> None:
    """Store an HTML report (evaluation report, training curves) as a run artifact; the
    MLflow UI shows HTML artifacts in a sandboxed frame, like ZenML's dashboard."""
    import mlflow

    _active_run()
    mlflow.log_text(str(page), artifact_file)
