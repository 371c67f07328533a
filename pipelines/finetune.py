"""The fine-tuning pipeline: load -> train -> evaluate -> card -> gated push -> promotion.

Run it with `zenml pipeline run pipelines.finetune.finetune_pipeline -c <config.yaml>`.
The YAML's `parameters.config` is the whole `RunConfig`; ZenML validates it against the
pydantic model when the run is compiled, before any step starts. Facts the YAML's ZenML
part could repeat are derived from it here, once: the model name and license come from
`model:` (an explicit `output.model_name` / `card.license` must agree), and the steps
that may talk to the Hugging Face Hub get the secret `hub.secret_name` as HF_TOKEN.
"""

from __future__ import annotations

from typing import Any

from zenml import get_pipeline_context, pipeline

from pipelines.k8s_settings import kubernetes_settings
from steps.evaluate import evaluate
from steps.load_datasets import load_datasets
from steps.model_card import model_card
from steps.preflight import preflight
from steps.promote import promote
from steps.push_to_hub import push_to_hub
from steps.train import train
from trainer.config import RunConfig
from trainer.run import reconcile_model_facts, uses_hub


def _with_zenml_model(config: RunConfig) -> RunConfig:
    model = get_pipeline_context().model
    if model is None:
        return config
    return reconcile_model_facts(config, model_name=model.name, license=model.license)


@pipeline
def finetune_pipeline(config: RunConfig) -> None:
    """Fine-tune `config.model` on `config.datasets` and compare it with the base model."""
    config = _with_zenml_model(config)
    hub: dict[str, Any] = {"secrets": [config.hub.secret_name]} if uses_hub(config) else {}
    # Nothing heavy starts before the preflight has passed.
    checked = preflight.with_options(**hub)(config=config)
    train_datasets, eval_datasets, data_report = load_datasets.with_options(**hub)(
        config=config, after=checked
    )
    # On a Kubernetes orchestrator the training pod lands on a GPU node; the local
    # orchestrator skips these settings with an info message, so one config serves both.
    train_on_hardware = train.with_options(settings=kubernetes_settings(config.hardware), **hub)
    model, training = train_on_hardware(
        config=config, train_datasets=train_datasets, eval_datasets=eval_datasets
    )
    evaluation, _ = evaluate.with_options(**hub)(
        config=config, model=model, eval_datasets=eval_datasets
    )
    card = model_card(
        config=config, evaluation=evaluation, training=training, data_report=data_report
    )
    hub_push = push_to_hub(config=config, model=model, evaluation=evaluation, model_card=card)
    promote(config=config, evaluation=evaluation, hub_push=hub_push)
