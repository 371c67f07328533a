"""The pipeline plan: which stages a run has, in which order, which config each gets,
which of them may reach the Hugging Face Hub and which run on the training hardware.

Both orchestrators translate this one plan into their DAG (`pipelines/finetune.py` for
ZenML, `pipelines/kfp_pipeline.py` for Kubeflow Pipelines), so a stage added, made
optional or given the Hub token here changes both at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from trainer.cluster import PodHardware, PodKind, stage_pod
from trainer.config import RunConfig, hub_repo_id


class Stage(StrEnum):
    """A stage of the fine-tuning pipeline; the value is the step / task name."""

    PREFLIGHT = "preflight"
    LOAD = "load_datasets"
    MINE = "mine_hard_negatives"
    TEACHER = "teacher_targets"
    SEARCH = "hyperparameter_search"
    TRAIN = "train"
    EVALUATE = "evaluate"
    EXPORT = "export"
    CARD = "model_card"
    PUSH = "push_to_hub"
    PROMOTE = "promote"


class ConfigVariant(StrEnum):
    """Which config a stage receives."""

    RUN = "run"
    """The run's config as written."""
    TUNED = "tuned"
    """The config the model is trained with: the best search trial's parameters applied
    when a search runs, else the run's config."""


TRAINING_HARDWARE_STAGES = frozenset({Stage.MINE, Stage.TEACHER, Stage.SEARCH, Stage.TRAIN})
"""Stages that encode or train with the model: on Kubernetes they run on `config.hardware`
(GPU node, tolerations, resources), in ZenML and in Kubeflow alike. The others run on CPU
nodes with the resources their orchestrator config gives them."""


@dataclass(frozen=True)
class StagePlan:
    """One stage of a run's pipeline."""

    stage: Stage
    config: ConfigVariant = ConfigVariant.RUN
    hub_token: bool = False
    """The stage gets the Hub token (secret `hub.secret_name`, key `HF_TOKEN`): only stages
    that download from the Hub (a Hub base model or dataset) or publish to it."""
    needs_model_registry: bool = False
    """Runs only where the orchestrator has a model registry (ZenML's Model Control Plane)."""

    @property
    def name(self) -> str:
        return self.stage.value

    @property
    def pod(self) -> PodKind:
        return PodKind.TRAINING if self.stage in TRAINING_HARDWARE_STAGES else PodKind.CPU


@dataclass(frozen=True)
class PipelinePlan:
    """The stages of one run, in order."""

    config: RunConfig
    stages: tuple[StagePlan, ...]

    def __contains__(self, stage: Stage) -> bool:
        return any(plan.stage is stage for plan in self.stages)

    def __getitem__(self, stage: Stage) -> StagePlan:
        for plan in self.stages:
            if plan.stage is stage:
                return plan
        raise KeyError(f"stage {stage.value!r} is not part of this run's plan")

    def names(self, *, model_registry: bool = True) -> list[str]:
        """Step / task names in order (without registry stages where there is none)."""
        return [
            plan.name for plan in self.stages if model_registry or not plan.needs_model_registry
        ]

    def pod(self, stage: Stage) -> PodHardware | None:
        """What the run's hardware gives `stage`'s pod on Kubernetes (None: a CPU pod)."""
        config = self.config
        return stage_pod(
            config.hardware,
            config.distributed,
            StagePlan(stage).pod,
            submits_trainjob=stage is Stage.TRAIN and config.trains_on_nodes,
        )


def _downloads_from_hub(config: RunConfig) -> tuple[bool, bool]:
    """(a Hub base model or mining model, a Hub dataset or evaluator source)."""
    models = [config.model.name_or_path] + [
        dataset.hard_negatives.model.name_or_path
        for dataset in config.datasets.values()
        if dataset.hard_negatives is not None and dataset.hard_negatives.model is not None
    ]
    sources = [
        source
        for dataset in config.datasets.values()
        for source in (dataset.source, dataset.eval_source)
        if source is not None
    ] + [evaluator.source for evaluator in config.evaluators if evaluator.source is not None]
    sources += [
        dataset.hard_negatives.corpus.source
        for dataset in config.datasets.values()
        if dataset.hard_negatives is not None and dataset.hard_negatives.corpus is not None
    ]
    models += [
        model.name_or_path
        for dataset in config.datasets.values()
        for model in (dataset.loss.guide, dataset.loss.teacher)
        if model is not None
    ]
    return (
        any(hub_repo_id(name) is not None for name in models),
        any(source.resolved_format == "hub" for source in sources),
    )


def uses_hub(config: RunConfig) -> bool:
    """Whether any stage may talk to the Hugging Face Hub."""
    return any(plan.hub_token for plan in pipeline_plan(config).stages)


def pipeline_plan(config: RunConfig) -> PipelinePlan:
    """The stages `config` runs: mining only when a dataset asks for hard negatives,
    teacher targets only when a dataset's loss has a teacher, a search only with a
    `search` block, the export only with `export.onnx`; the others always."""
    hub_model, hub_data = _downloads_from_hub(config)
    reads_hub = hub_model or hub_data
    stages = [
        # Checks the Hub data and the token's presence before anything heavy starts.
        StagePlan(Stage.PREFLIGHT, hub_token=reads_hub or config.hub.enabled),
        StagePlan(Stage.LOAD, hub_token=hub_data),
    ]
    if any(dataset.hard_negatives for dataset in config.datasets.values()):
        # Negatives are mined from the training splits only, with the base model.
        stages.append(StagePlan(Stage.MINE, hub_token=reads_hub))
    if any(dataset.loss.teacher for dataset in config.datasets.values()):
        # The teacher labels the (mined) training and held-out rows once; training,
        # a search and every resume read the labelled artifact.
        stages.append(StagePlan(Stage.TEACHER, hub_token=reads_hub))
    if config.search is not None:
        stages.append(StagePlan(Stage.SEARCH, hub_token=reads_hub))
    stages += [
        # Trained with the best trial's parameters; evaluation, push and promotion judge
        # the model against the run's own config.
        StagePlan(Stage.TRAIN, ConfigVariant.TUNED, hub_token=reads_hub),
        StagePlan(Stage.EVALUATE, hub_token=reads_hub),
    ]
    if config.export.onnx:
        # ONNX (and int8) with a parity check against the evaluated model; the gate of
        # the push and the promotion includes it, the card shows sizes and speed.
        stages.append(StagePlan(Stage.EXPORT, hub_token=reads_hub))
    stages += [
        StagePlan(Stage.CARD, ConfigVariant.TUNED),
        StagePlan(Stage.PUSH, hub_token=config.hub.enabled),
        StagePlan(Stage.PROMOTE, needs_model_registry=True),
    ]
    return PipelinePlan(config=config, stages=tuple(stages))
