"""The Kubernetes cluster a multi-node training step submits its TrainJob to.

Only used with `hardware.nodes > 1`. ZenML knows two facts the core does not: the
Kubernetes orchestrator's namespace and the image it built for this step;
`trainer.cluster.cluster_for` decides the rest, as for Kubeflow.
"""

from __future__ import annotations

from zenml import get_step_context
from zenml.client import Client

from trainer.cluster import Cluster, cluster_for
from trainer.config import RunConfig


def _build_image() -> str | None:
    context = get_step_context()
    build = context.pipeline_run.snapshot.build if context.pipeline_run.snapshot else None
    if build is None:
        return None
    return build.get_image(component_key="orchestrator", step=context.step_run.name)


def current_cluster(config: RunConfig) -> Cluster:
    """The cluster, namespace and image for this run's TrainJob."""
    orchestrator = Client().active_stack.orchestrator
    namespace = getattr(orchestrator.config, "kubernetes_namespace", None)
    return cluster_for(config, namespace=namespace, image=_build_image())
