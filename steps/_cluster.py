"""The Kubernetes cluster a multi-node training step submits its TrainJob to.

Only used with `hardware.nodes > 1`. The namespace is `distributed.namespace`, else the
Kubernetes orchestrator's, else this pod's own; the nodes run `hardware.image`, else the
image ZenML built for this step; the API credentials are the pod's service account (in
a cluster) or the local kubeconfig.
"""

from __future__ import annotations

from zenml import get_step_context
from zenml.client import Client

from trainer.config import RunConfig
from trainer.trainjob import Cluster, own_namespace


def _namespace(config: RunConfig) -> str:
    if config.distributed.namespace:
        return config.distributed.namespace
    orchestrator = Client().active_stack.orchestrator
    return getattr(orchestrator.config, "kubernetes_namespace", None) or own_namespace()


def _image(config: RunConfig) -> str:
    if config.hardware is not None and config.hardware.image:
        return config.hardware.image
    context = get_step_context()
    build = context.pipeline_run.snapshot.build if context.pipeline_run.snapshot else None
    if build is not None:
        return build.get_image(component_key="orchestrator", step=context.step_run.name)
    raise ValueError(
        "hardware.image is not set and this run has no container image build (a local "
        "run?): set parameters.config.hardware.image to the image the training nodes run"
    )


def current_cluster(config: RunConfig) -> Cluster:
    """The cluster, namespace and image for this run's TrainJob."""
    from kubernetes import client
    from kubernetes import config as kube_config

    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    return Cluster(
        api=client.CustomObjectsApi(), namespace=_namespace(config), image=_image(config)
    )
