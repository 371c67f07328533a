"""The orchestrator-neutral core of st-finetune: everything a fine-tuning run does, with
no ZenML or Kubeflow import. The ZenML steps (`steps/`) and the Kubeflow components
(`pipelines/kfp_pipeline.py`) are thin adapters over `trainer.stages`.

Packages, from the top layer down (a package imports only packages below it; the contract
is in pyproject.toml and `lint-imports` checks it): stages | preflight; cluster | release |
reports; training; speed | evaluation; data; models; results; config; catalog; problems.

Importing it keeps library progress bars out of the logs (`trainer.logs`;
`ST_FINETUNE_PROGRESS_BARS=1` keeps them): every step and task imports it first.
"""

from trainer.logs import quiet_libraries

quiet_libraries()
