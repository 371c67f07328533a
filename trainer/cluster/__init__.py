"""Running on a cluster: the hardware as Kubernetes pod parts, torchrun in a pod, the
entrypoint every rank runs, and Kubeflow Trainer TrainJobs across nodes.
"""

from trainer.cluster.pods import (
    READ_ONLY_ROOT,
    SCRATCH_MOUNTS,
    PodHardware,
    PodKind,
    pod_hardware,
    scratch_volume_parts,
    stage_pod,
    to_manifest,
)
from trainer.cluster.torchrun import train_with_torchrun
from trainer.cluster.trainjob import (
    Cluster,
    TrainJobFailed,
    build_train_job,
    cluster_for,
    shared_root,
    submit,
    train_job_image,
    train_job_name,
    train_job_namespace,
    train_on_nodes,
    wait,
)

__all__ = [
    "READ_ONLY_ROOT",
    "SCRATCH_MOUNTS",
    "Cluster",
    "PodHardware",
    "PodKind",
    "TrainJobFailed",
    "build_train_job",
    "cluster_for",
    "pod_hardware",
    "scratch_volume_parts",
    "shared_root",
    "stage_pod",
    "submit",
    "to_manifest",
    "train_job_image",
    "train_job_name",
    "train_job_namespace",
    "train_on_nodes",
    "train_with_torchrun",
    "wait",
]
