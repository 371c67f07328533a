"""The whole run configuration, validated before any model or dataset is loaded.

A run is described by one YAML document (the `parameters.config` block of a ZenML
run config, or a standalone file for the KFP path and the trainer CLI). Every field
is checked here, up front, against what the installed libraries accept
(`trainer.catalog`, read without importing them), so a typo in a loss name or a
training argument fails in a second with a message naming the field instead of after a
model download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from trainer.catalog import (
    LOSS_SPECS,
    coerce_yaml_numbers,
    library_facts,
    loss_param_problems,
    training_value_problems,
)
from trainer.config.base import StrictModel
from trainer.config.cluster import DistributedConfig, HardwareConfig
from trainer.config.data import DatasetConfig, LeakageConfig, mining_losses
from trainer.config.evaluation import EvaluatorConfig, GateConfig
from trainer.config.export import ExportConfig
from trainer.config.model import ModelConfig
from trainer.config.release import CardConfig, HubConfig, OutputConfig
from trainer.config.training import (
    HUB_MANAGED_MESSAGE,
    MANAGED_ARGUMENTS,
    CheckpointConfig,
    SearchConfig,
    SpeedConfig,
    is_hub_argument,
)
from trainer.problems import raise_problems


def _training_argument_names() -> frozenset[str]:
    """Fields of `SentenceTransformerTrainingArguments` (read without importing it)."""
    return frozenset(library_facts().training_arguments)


class RunConfig(StrictModel):
    """Everything one fine-tuning run needs."""

    model: ModelConfig
    datasets: dict[str, DatasetConfig]
    evaluators: list[EvaluatorConfig] = Field(default_factory=list)
    training: dict[str, Any] = Field(default_factory=dict)
    output: OutputConfig = Field(default_factory=OutputConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    hub: HubConfig = Field(default_factory=HubConfig)
    card: CardConfig = Field(default_factory=CardConfig)
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    hardware: HardwareConfig | None = None
    speed: SpeedConfig = Field(default_factory=SpeedConfig)
    leakage: LeakageConfig = Field(default_factory=LeakageConfig)
    seed: int = 42
    search: SearchConfig | None = None
    export: ExportConfig = Field(default_factory=ExportConfig)

    @field_validator("datasets")
    @classmethod
    def _some_datasets(cls, value: dict[str, DatasetConfig]) -> dict[str, DatasetConfig]:
        if not value:
            raise ValueError("at least one training dataset is required")
        for name in value:
            if not name.replace("-", "_").isidentifier():
                raise ValueError(
                    f"dataset name {name!r} must be letters, digits, '_' or '-': it becomes "
                    "the dataset_name column and a metric prefix"
                )
        return value

    @field_validator("training")
    @classmethod
    def _known_training_arguments(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - _training_argument_names())
        if unknown:
            raise ValueError(
                f"unknown SentenceTransformerTrainingArguments field(s): {', '.join(unknown)}"
            )
        for name in sorted(set(value) & set(MANAGED_ARGUMENTS)):
            raise ValueError(
                f"{name} is set from {MANAGED_ARGUMENTS[name]}; remove it from training"
            )
        hub = sorted(name for name in value if is_hub_argument(name))
        if hub:
            raise ValueError(f"{', '.join(hub)}: {HUB_MANAGED_MESSAGE}")
        facts = library_facts()
        for key, choices in (
            ("batch_sampler", facts.batch_samplers),
            ("multi_dataset_batch_sampler", facts.multi_dataset_batch_samplers),
        ):
            if key in value and value[key] not in choices:
                raise ValueError(f"{key} {value[key]!r} is not one of: {', '.join(choices)}")
        return value

    @field_validator("training", mode="before")
    @classmethod
    def _yaml_numbers(cls, value: Any) -> Any:
        """`learning_rate: 1e-5` is text to PyYAML (YAML 1.1) and a number to the user."""
        return coerce_yaml_numbers(value) if isinstance(value, dict) else value

    @field_validator("training")
    @classmethod
    def _training_values_make_sense(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Types and ranges the training-arguments dataclass accepts but training fails on."""
        raise_problems(training_value_problems(value))
        return value

    @field_validator("datasets")
    @classmethod
    def _loss_params_fit(cls, value: dict[str, DatasetConfig]) -> dict[str, DatasetConfig]:
        """Loss params are checked against the loss class signature, without a model."""
        raise_problems(
            problem
            for name, dataset in value.items()
            for problem in loss_param_problems(
                dataset.loss.name,
                dataset.loss.params,
                cached=dataset.loss.cached,
                field=f"datasets.{name}.loss",
            )
        )
        return value

    @model_validator(mode="after")
    def _evaluators_reference_datasets(self) -> RunConfig:
        for evaluator in self.evaluators:
            if evaluator.dataset is None:
                continue
            if evaluator.dataset not in self.datasets:
                raise ValueError(
                    f"evaluator {evaluator.display_name!r} uses dataset {evaluator.dataset!r}, "
                    f"which is not among datasets: {', '.join(self.datasets)}"
                )
            dataset = self.datasets[evaluator.dataset]
            if dataset.eval_source is None and dataset.eval_size is None:
                raise ValueError(
                    f"evaluator {evaluator.display_name!r} needs held-out rows: set "
                    f"datasets.{evaluator.dataset}.eval_size or eval_source"
                )
        return self

    @model_validator(mode="after")
    def _search_fits_run(self) -> RunConfig:
        if self.search is None:
            return self
        if self.evaluators:
            evaluator_names = [evaluator.display_name for evaluator in self.evaluators]
        else:  # the default: information retrieval on each dataset's held-out split
            evaluator_names = [
                EvaluatorConfig(dataset=name).display_name
                for name, dataset in self.datasets.items()
                if dataset.eval_source is not None or dataset.eval_size is not None
            ]
        if not evaluator_names:
            raise ValueError(
                "search needs held-out rows to score trials: configure evaluators, or give a "
                "dataset eval_size or eval_source"
            )
        self.search.check_against(
            {name: dataset.loss.name for name, dataset in self.datasets.items()},
            evaluator_names,
            _training_argument_names(),
            frozenset(MANAGED_ARGUMENTS)
            | {name for name in _training_argument_names() if is_hub_argument(name)},
        )
        return self

    @model_validator(mode="after")
    def _nodes_share_storage(self) -> RunConfig:
        """Training nodes of a TrainJob only see each other's files on shared storage."""
        if not self.trains_on_nodes:
            return self
        volume = self.distributed.shared_volume
        for key, uri in (
            ("checkpoints.uri", self.checkpoints.uri),
            ("distributed.shared_uri", self.distributed.shared_uri),
        ):
            if uri is None or "://" in uri:
                continue
            if volume is None or not Path(uri).is_relative_to(volume.mount_path):
                raise ValueError(
                    f"{key} {uri!r} is a local path, but hardware.nodes "
                    f"({self.training_nodes}) training nodes do not share local disks: use "
                    "an s3:// / gs:// URL, leave it empty for the artifact store, or put it "
                    "under distributed.shared_volume.mount_path (a ReadWriteMany volume)"
                )
        return self

    @model_validator(mode="after")
    def _hard_negatives_fit(self) -> RunConfig:
        held_out_paths = {ds.eval_source.path for ds in self.datasets.values() if ds.eval_source}
        held_out_paths |= {ev.source.path for ev in self.evaluators if ev.source is not None}
        for name, dataset in self.datasets.items():
            mining = dataset.hard_negatives
            if mining is None:
                continue
            field = f"datasets.{name}.hard_negatives"
            texts = 2 + mining.num_negatives
            with_teacher = dataset.loss.teacher is not None
            if not LOSS_SPECS[dataset.loss.name].accepts_texts(texts, with_teacher=with_teacher):
                raise ValueError(
                    f"{field}: {dataset.loss.name} cannot train on (anchor, positive, "
                    f"{mining.num_negatives} negative(s)) rows; mining works with "
                    f"{', '.join(mining_losses(texts))}"
                )
            if mining.corpus is not None and mining.corpus.source.path in held_out_paths:
                raise ValueError(
                    f"{field}.corpus: {mining.corpus.source.path!r} holds held-out rows; "
                    "mining from it would train on evaluation documents"
                )
        return self

    @model_validator(mode="after")
    def _router_mapping_needs_a_router(self) -> RunConfig:
        """`router_mapping` sends columns to a Router's routes: only an asymmetric model
        has them, and an asymmetric model trains nothing without it."""
        mapping = self.training.get("router_mapping")
        if mapping and not self.model.asymmetric:
            raise ValueError(
                "training.router_mapping routes columns to a Router model's query/document "
                "modules, and the base model is not one: set model.asymmetric: true, or "
                "remove router_mapping"
            )
        if self.model.asymmetric:
            if not isinstance(mapping, dict) or not mapping:
                raise ValueError(
                    "model.asymmetric: true needs training.router_mapping, e.g. {anchor: "
                    "query, positive: document}: which column each route encodes"
                )
            bad = sorted({str(v) for v in mapping.values()} - {"query", "document"})
            if bad:
                raise ValueError(f"training.router_mapping: routes {bad} are not query or document")
            wrapped = [
                name for name, ds in self.datasets.items() if ds.loss.adaptive_layer is not None
            ]
            if wrapped:
                raise ValueError(
                    f"datasets.{wrapped[0]}.loss.adaptive_layer needs the model's first "
                    "module to be a Transformer; an asymmetric model's is a Router"
                )
        return self

    @property
    def is_multi_dataset(self) -> bool:
        return len(self.datasets) > 1

    @property
    def training_nodes(self) -> int:
        """How many nodes training runs on (`hardware.nodes`, 1 without `hardware`)."""
        return self.hardware.nodes if self.hardware is not None else 1

    @property
    def trains_on_nodes(self) -> bool:
        """Whether training runs on several nodes (a Kubeflow Trainer TrainJob)."""
        return self.training_nodes > 1

    @property
    def matryoshka_dims(self) -> list[int]:
        """Every Matryoshka dimension any dataset's loss trains, largest first (the
        evaluation scores the primary metric at each)."""
        dims = {dim for ds in self.datasets.values() for dim in ds.loss.matryoshka_dims or []}
        return sorted(dims, reverse=True)
