"""The run configuration schema (pydantic): one `RunConfig` per run, validated before any
model or dataset loads, and the one YAML reader every entry point uses. It imports only
`trainer.catalog` (what the libraries accept) and `trainer.problems`.
"""

from trainer.config.base import StrictModel
from trainer.config.cluster import DistributedConfig, HardwareConfig, SharedVolume, Toleration
from trainer.config.data import (
    COMPRESSION_SUFFIXES,
    FILE_FORMATS,
    ColumnMapping,
    DatasetConfig,
    DataSource,
    DocumentsSource,
    HardNegativesConfig,
    LeakageConfig,
    LossConfig,
    data_file_suffix,
    mining_losses,
)
from trainer.config.evaluation import EvaluatorConfig, EvaluatorType, GateConfig, GuardConfig
from trainer.config.files import (
    load_run_config,
    model_entry,
    read_config_document,
    reconcile_model_facts,
    run_config_part,
)
from trainer.config.model import (
    PACKAGE_PREFIX,
    ZENML_MODEL_STAGES,
    ZENML_PREFIX,
    ModelConfig,
    hub_repo_id,
    parse_zenml_model_ref,
)
from trainer.config.release import (
    DEFAULT_MODEL_NAME,
    HF_TOKEN_KEY,
    CardConfig,
    HubConfig,
    OutputConfig,
)
from trainer.config.run import RunConfig
from trainer.config.training import (
    LOSS_PARAM_INFIX,
    LOSS_PARAM_PREFIX,
    RESUME_AUTO,
    RESUME_NEVER,
    TRIAL_TRAINING_OVERRIDES,
    CheckpointConfig,
    Choices,
    Dimension,
    Range,
    SearchConfig,
    SpeedConfig,
    is_loss_param,
    loss_parameters,
    split_loss_param,
)

__all__ = [
    "COMPRESSION_SUFFIXES",
    "DEFAULT_MODEL_NAME",
    "FILE_FORMATS",
    "HF_TOKEN_KEY",
    "LOSS_PARAM_INFIX",
    "LOSS_PARAM_PREFIX",
    "PACKAGE_PREFIX",
    "RESUME_AUTO",
    "RESUME_NEVER",
    "TRIAL_TRAINING_OVERRIDES",
    "ZENML_MODEL_STAGES",
    "ZENML_PREFIX",
    "CardConfig",
    "CheckpointConfig",
    "Choices",
    "ColumnMapping",
    "DataSource",
    "DatasetConfig",
    "Dimension",
    "DistributedConfig",
    "DocumentsSource",
    "EvaluatorConfig",
    "EvaluatorType",
    "GateConfig",
    "GuardConfig",
    "HardNegativesConfig",
    "HardwareConfig",
    "HubConfig",
    "LeakageConfig",
    "LossConfig",
    "ModelConfig",
    "OutputConfig",
    "Range",
    "RunConfig",
    "SearchConfig",
    "SharedVolume",
    "SpeedConfig",
    "StrictModel",
    "Toleration",
    "data_file_suffix",
    "hub_repo_id",
    "is_loss_param",
    "load_run_config",
    "loss_parameters",
    "mining_losses",
    "model_entry",
    "parse_zenml_model_ref",
    "read_config_document",
    "reconcile_model_facts",
    "run_config_part",
    "split_loss_param",
]
