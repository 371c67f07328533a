"""The fine-tuning pipeline: preflight -> load -> [mine hard negatives] -> [teacher
targets] -> [search] -> train -> evaluate -> [export] -> card -> gated push -> promotion.

Run it with `zenml pipeline run pipelines.finetune.finetune_pipeline -c <config.yaml>`.
The YAML's `parameters.config` is the whole `RunConfig`; ZenML validates it against the
pydantic model when the run is compiled, before any step starts. Facts the YAML's ZenML
part could repeat are derived from it here, once: the model name and license come from
`model:` (an explicit `output.model_name` / `card.license` must agree), and the steps
that may talk to the Hugging Face Hub get the secret `hub.secret_name` as HF_TOKEN.
With an experiment tracker in the active stack, training, evaluation and the card are
logged to it (one tracker run per pipeline run); without one nothing changes.

What a cluster run needs from the pipeline itself comes from `k8s/pipeline-defaults.yaml`,
applied here in code so that no run config repeats it: the image build (pipeline-level
docker settings) and the CPU steps' resources (step settings, for runs with `hardware`).
A run config's `settings.docker` / `steps.<name>.settings` merge over both.
"""

from __future__ import annotations

from typing import Any

from zenml import get_pipeline_context, pipeline
from zenml.client import Client
from zenml.enums import ExecutionMode

from pipelines.k8s_defaults import PipelineDefaults, read_pipeline_defaults
from pipelines.k8s_settings import docker_settings, stage_settings
from steps._tracking import tracked
from steps.evaluate import evaluate
from steps.export import export
from steps.hyperparameter_search import hyperparameter_search
from steps.load_datasets import load_datasets
from steps.mine_hard_negatives import mine_hard_negatives
from steps.model_card import model_card
from steps.preflight import preflight
from steps.promote import promote
from steps.push_to_hub import push_to_hub
from steps.teacher_targets import teacher_targets
from steps.train import train
from trainer.config import RunConfig, reconcile_model_facts
from trainer.stages import ConfigVariant, PipelinePlan, Stage, pipeline_plan


def _hub_secret(plan: PipelinePlan, stage: Stage) -> dict[str, Any]:
    """`secrets=[hub.secret_name]` for the stages the plan gives the Hub token, when that
    secret exists (ZenML refuses a run naming a missing one; public models need no token,
    and the preflight says when publishing lacks it)."""
    config = plan.config
    if stage not in plan or not plan[stage].hub_token:
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


def _options(plan: PipelinePlan, stage: Stage, defaults: PipelineDefaults) -> dict[str, Any]:
    """A step's options from the plan: its pod on Kubernetes (the local orchestrator
    skips these settings with an info message, so one config serves both) and the Hub
    token secret where the stage needs it."""
    return {"settings": stage_settings(plan, stage, defaults), **_hub_secret(plan, stage)}


# Fail fast: a failing step ends the run at once, and what it says (for the preflight, the
# list of problems) is the last thing on screen rather than lines about skipped steps.
# Docker settings: the image containerized orchestrators (Kubernetes, local_docker) build;
# the local one builds nothing.
@pipeline(execution_mode=ExecutionMode.FAIL_FAST, settings={"docker": docker_settings()})
def finetune_pipeline(config: RunConfig) -> None:
    """Fine-tune `config.model` on `config.datasets` and compare it with the base model.

    The steps, their order, which config each gets and which may reach the Hub come
    from `trainer.stages.pipeline_plan`, which the Kubeflow build follows too."""
    config = _with_zenml_model(config)
    plan = pipeline_plan(config)
    defaults = read_pipeline_defaults()

    def options(stage: Stage) -> dict[str, Any]:
        return _options(plan, stage, defaults)

    # Nothing heavy starts before the preflight has passed.
    checked = preflight.with_options(**options(Stage.PREFLIGHT))(config=config)
    train_datasets, eval_datasets, data_report = load_datasets.with_options(**options(Stage.LOAD))(
        config=config, after=checked
    )
    mining = None
    if Stage.MINE in plan:
        train_datasets, mining = mine_hard_negatives.with_options(**options(Stage.MINE))(
            config=config, train_datasets=train_datasets
        )
    # Training reads the labelled splits; evaluation keeps the load step's held-out rows
    # (its evaluators need no teacher labels).
    train_eval_datasets = eval_datasets
    if Stage.TEACHER in plan:
        train_datasets, train_eval_datasets, _ = teacher_targets.with_options(
            **options(Stage.TEACHER)
        )(config=config, train_datasets=train_datasets, eval_datasets=eval_datasets)
    search, tuned = None, config
    if Stage.SEARCH in plan:
        search, _, tuned = hyperparameter_search.with_options(**options(Stage.SEARCH))(
            config=config, train_datasets=train_datasets, eval_datasets=train_eval_datasets
        )
    configs = {ConfigVariant.RUN: config, ConfigVariant.TUNED: tuned}
    model, training = tracked(train).with_options(**options(Stage.TRAIN))(
        config=configs[plan[Stage.TRAIN].config],
        train_datasets=train_datasets,
        eval_datasets=train_eval_datasets,
    )
    evaluation, _ = tracked(evaluate).with_options(**options(Stage.EVALUATE))(
        config=configs[plan[Stage.EVALUATE].config],
        model=model,
        eval_datasets=eval_datasets,
        training=training,
    )
    export_report, onnx = None, None
    if Stage.EXPORT in plan:
        export_report, onnx = export.with_options(**options(Stage.EXPORT))(
            config=configs[plan[Stage.EXPORT].config],
            model=model,
            eval_datasets=eval_datasets,
            evaluation=evaluation,
        )
    card = tracked(model_card).with_options(**options(Stage.CARD))(
        config=configs[plan[Stage.CARD].config],
        evaluation=evaluation,
        training=training,
        data_report=data_report,
        search=search,
        mining=mining,
        export_report=export_report,
    )
    hub_push = push_to_hub.with_options(**options(Stage.PUSH))(
        config=configs[plan[Stage.PUSH].config],
        model=model,
        evaluation=evaluation,
        model_card=card,
        export_report=export_report,
        onnx=onnx,
    )
    promote.with_options(**options(Stage.PROMOTE))(
        config=configs[plan[Stage.PROMOTE].config],
        evaluation=evaluation,
        hub_push=hub_push,
        export_report=export_report,
    )
