"""The fine-tuning pipeline: preflight -> load -> [mine hard negatives] -> [search] ->
train -> evaluate -> card -> gated push -> promotion.

Run it with `zenml pipeline run pipelines.finetune.finetune_pipeline -c <config.yaml>`.
The YAML's `parameters.config` is the whole `RunConfig`; ZenML validates it against the
pydantic model when the run is compiled, before any step starts. Facts the YAML's ZenML
part could repeat are derived from it here, once: the model name and license come from
`model:` (an explicit `output.model_name` / `card.license` must agree), and the steps
that may talk to the Hugging Face Hub get the secret `hub.secret_name` as HF_TOKEN.
With an experiment tracker in the active stack, training, evaluation and the card are
logged to it (one tracker run per pipeline run); without one nothing changes.
"""

from __future__ import annotations

from typing import Any

from zenml import get_pipeline_context, pipeline
from zenml.client import Client
from zenml.enums import ExecutionMode

from pipelines.k8s_settings import stage_settings
from steps._tracking import tracked
from steps.evaluate import evaluate
from steps.hyperparameter_search import hyperparameter_search
from steps.load_datasets import load_datasets
from steps.mine_hard_negatives import mine_hard_negatives
from steps.model_card import model_card
from steps.preflight import preflight
from steps.promote import promote
from steps.push_to_hub import push_to_hub
from steps.train import train
from trainer.config import RunConfig
from trainer.run import reconcile_model_facts, uses_hub


def _hub_secret(config: RunConfig) -> dict[str, Any]:
    """`secrets=[hub.secret_name]` for steps that may reach the Hub, when that secret
    exists (ZenML refuses a run naming a missing one; public models need no token, and
    the preflight says when publishing lacks it)."""
    if not uses_hub(config):
        return {}
    try:
        Client().get_secret(config.hub.secret_name)
    except KeyError:
        return {}
    return {"secrets": [config.hub.secret_name]}


def _with_zenml_model(config: RunConfig) -> RunConfig:
    model = get_pipeline_context().model
    if model is None:
        return config
    return reconcile_model_facts(config, model_name=model.name, license=model.license)


# Fail fast: a failing step ends the run at once, and what it says (for the preflight, the
# list of problems) is the last thing on screen rather than lines about skipped steps.
@pipeline(execution_mode=ExecutionMode.FAIL_FAST)
def finetune_pipeline(config: RunConfig) -> None:
    """Fine-tune `config.model` on `config.datasets` and compare it with the base model."""
    config = _with_zenml_model(config)
    hub = _hub_secret(config)
    # Nothing heavy starts before the preflight has passed.
    checked = preflight.with_options(**hub)(config=config)
    train_datasets, eval_datasets, data_report = load_datasets.with_options(**hub)(
        config=config, after=checked
    )
    # On a Kubernetes orchestrator the stages that train land on a GPU node; the local
    # orchestrator skips these settings with an info message, so one config serves both.
    mining = None
    if any(dataset.hard_negatives for dataset in config.datasets.values()):
        # Negatives are mined from the training splits only, with the base model.
        train_datasets, mining = mine_hard_negatives.with_options(
            settings=stage_settings(config, "mine_hard_negatives"), **hub
        )(config=config, train_datasets=train_datasets)
    search, train_config = None, config
    if config.search is not None:
        # The final training uses the best trial's parameters (the search block cleared).
        searching = stage_settings(config, "hyperparameter_search")
        search, _, train_config = hyperparameter_search.with_options(settings=searching, **hub)(
            config=config, train_datasets=train_datasets, eval_datasets=eval_datasets
        )
    # With hardware.nodes > 1 the train step's pod only submits the TrainJob.
    training_pod = stage_settings(config, "train")
    model, training = tracked(train).with_options(settings=training_pod, **hub)(
        config=train_config, train_datasets=train_datasets, eval_datasets=eval_datasets
    )
    evaluation, _ = tracked(evaluate).with_options(**hub)(
        config=config, model=model, eval_datasets=eval_datasets, training=training
    )
    card = tracked(model_card)(
        config=train_config,
        evaluation=evaluation,
        training=training,
        data_report=data_report,
        search=search,
        mining=mining,
    )
    hub_push = push_to_hub(config=config, model=model, evaluation=evaluation, model_card=card)
    promote(config=config, evaluation=evaluation, hub_push=hub_push)
