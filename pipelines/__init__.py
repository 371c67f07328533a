"""Pipeline definitions: the ZenML fine-tuning pipeline and the Kubeflow Pipelines build."""
