"""The Kubernetes settings every cluster run shares, each said once, in one of two files:

- `k8s/orchestrator.yaml`: the ZenML stack's Kubernetes orchestrator configuration, the
  cluster-wide part (service accounts, pod failure policy, security context, the
  orchestrator pod, TTL). `k8s/setup-stack.sh` registers the orchestrator with it, and
  ZenML applies its settings fields to every run as the base under the run config.
- `k8s/pipeline-defaults.yaml`: what the pipeline brings (its image build, the CPU steps'
  resources), applied in code by `pipelines/finetune.py` under the run config.

Plain data, no ZenML: the Kubeflow build reads the same files (`pipelines.kfp_settings`),
and the ZenML side turns them into settings objects (`pipelines.k8s_settings`,
`pipelines.k8s_stack`). The run configs under `configs/` then say only what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from trainer.config import read_config_document
from trainer.stages import TRAINING_HARDWARE_STAGES, PipelinePlan, Stage

K8S_DIR = Path(__file__).resolve().parent.parent / "k8s"
ORCHESTRATOR_FILE = K8S_DIR / "orchestrator.yaml"
"""The stack orchestrator's configuration (cluster-wide settings)."""
PIPELINE_DEFAULTS_FILE = K8S_DIR / "pipeline-defaults.yaml"
"""The pipeline's own defaults: docker settings and the CPU steps' resources."""


class Resources(BaseModel):
    """Requests and limits of one pod's container, as Kubernetes spells them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: dict[str, str] = {}
    limits: dict[str, str] = {}

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _quantities(cls, values: Any) -> Any:
        # Kubernetes quantities are strings; YAML reads `cpu: 2` as a number.
        if isinstance(values, dict):
            return {name: str(value) for name, value in values.items()}
        return values

    def manifest(self) -> dict[str, dict[str, str]]:
        """The `resources` mapping of a container (empty parts left out)."""
        return {kind: dict(values) for kind, values in self if values}


class PipelineDefaults(BaseModel):
    """`k8s/pipeline-defaults.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    docker: dict[str, Any] = {}
    """ZenML `DockerSettings` of every run (pipeline level)."""
    step_resources: dict[Stage, Resources] = {}
    """Requests and limits of the stages that run on CPU nodes."""

    @field_validator("step_resources")
    @classmethod
    def _not_on_the_training_hardware(cls, value: dict[Stage, Resources]) -> dict[Stage, Resources]:
        hardware = sorted(stage.value for stage in value if stage in TRAINING_HARDWARE_STAGES)
        if hardware:
            raise ValueError(
                f"{', '.join(hardware)}: these stages run on parameters.config.hardware, "
                "which gives them their resources; set them there (or in a run config's "
                "steps.<name>.settings for a multi-node train step)"
            )
        return value

    def stage_resources(self, plan: PipelinePlan, stage: Stage) -> Resources | None:
        """The default resources of `stage`'s pod in `plan`'s run, or None.

        Only for runs that put their training on cluster hardware (`config.hardware`):
        a run config without it describes no cluster placement, so its steps get no
        Kubernetes settings from code (on any stack, as before), and a local run logs no
        "settings not used" lines. Training stages take theirs from the hardware.
        """
        if plan.config.hardware is None or stage in TRAINING_HARDWARE_STAGES:
            return None
        return self.step_resources.get(stage)


def read_pipeline_defaults(path: str | Path = PIPELINE_DEFAULTS_FILE) -> PipelineDefaults:
    """`k8s/pipeline-defaults.yaml`, validated (unknown keys and stages are errors)."""
    try:
        return PipelineDefaults.model_validate(read_config_document(path))
    except ValidationError as error:
        raise ValueError(f"{path}: {error}") from None


@dataclass(frozen=True)
class ClusterDefaults:
    """Both files, as every orchestrator path reads them."""

    orchestrator: dict[str, Any]
    """`k8s/orchestrator.yaml` as written (ZenML validates it: `pipelines.k8s_stack`)."""
    pipeline: PipelineDefaults

    @classmethod
    def read(
        cls,
        orchestrator_file: str | Path = ORCHESTRATOR_FILE,
        pipeline_defaults_file: str | Path = PIPELINE_DEFAULTS_FILE,
    ) -> ClusterDefaults:
        return cls(
            orchestrator=read_config_document(orchestrator_file),
            pipeline=read_pipeline_defaults(pipeline_defaults_file),
        )

    def pod_resources(self) -> dict[str, Any]:
        """`pod_settings.resources` of the orchestrator: every step pod's base resources."""
        return (self.orchestrator.get("pod_settings") or {}).get("resources") or {}
