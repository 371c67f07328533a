"""Where a run's base model came from, when it is a version of a ZenML model.

Retraining from production (`model.name_or_path: zenml:<model>@production`) starts from
whatever version is in production at the time of the run. The run records which one,
so the metadata, the model card and the evaluation can say "fine-tuned from version 7
of stdlib-docs-minilm" instead of a temp folder path.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ModelLineage(BaseModel):
    """The ZenML model version a base model was taken from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reference: str
    """As written in the config: `zenml:<model>@<version>`."""
    model_name: str
    version_name: str
    version_number: int
    stage: str | None
    """The version's stage when it was resolved (`production`, ...), if any."""
    artifact_id: str
    """The `model` artifact version the weights came from."""
    producer_run_id: str | None = None
    """The pipeline run that trained it."""

    def describe(self) -> str:
        """One line for logs and the model card: `version 7 of ZenML model 'x' (production)`."""
        version = self.version_name
        if version != str(self.version_number):
            version += f" (#{self.version_number})"
        stage = f" ({self.stage})" if self.stage else ""
        return f"version {version} of ZenML model {self.model_name!r}{stage}"
