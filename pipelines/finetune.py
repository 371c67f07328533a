"""The fine-tuning pipeline: load -> train -> evaluate -> model card -> gated push.

Run it with `zenml pipeline run pipelines.finetune.finetune_pipeline -c <config.yaml>`.
The YAML's `parameters.config` is the whole `RunConfig`; ZenML validates it against the
pydantic model when the run is compiled, before any step starts.
"""

from __future__ import annotations

from zenml import pipeline

from steps.evaluate import evaluate
from steps.load_datasets import load_datasets
from steps.model_card import model_card
from steps.train import train
from trainer.config import RunConfig


@pipeline
def finetune_pipeline(config: RunConfig) -> None:
    """Fine-tune `config.model` on `config.datasets` and compare it with the base model."""
    train_datasets, eval_datasets, stats = load_datasets(config=config)
    model, training = train(
        config=config, train_datasets=train_datasets, eval_datasets=eval_datasets
    )
    evaluation, _ = evaluate(config=config, model=model, eval_datasets=eval_datasets)
    model_card(config=config, evaluation=evaluation, training=training, dataset_stats=stats)
