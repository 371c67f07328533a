"""What a run leaves behind: the output folder, the model card's metadata, the Hub target."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from trainer.config.base import StrictModel

DEFAULT_MODEL_NAME = "finetuned-embedder"


class OutputConfig(StrictModel):
    """Where a run leaves files a user can open: the model (with the project's model card
    as its README.md), `evaluation.json`, the HTML report and the run summary.

    `model_name` may stay empty when the orchestrator names the model (ZenML's `model:`
    block): the run takes that name, so it is said once.
    """

    model_name: str | None = None
    dir: str | None = "outputs/run"
    save_model: bool = True

    @property
    def name(self) -> str:
        """The model's name: `model_name`, or a generic one when nothing named it."""
        return self.model_name or DEFAULT_MODEL_NAME

    @property
    def model_dir(self) -> Path | None:
        return Path(self.dir) / "model" if self.dir else None

    @property
    def evaluation_path(self) -> Path | None:
        return Path(self.dir) / "evaluation.json" if self.dir else None

    @property
    def report_path(self) -> Path | None:
        """The HTML evaluation report (metrics table and training curves)."""
        return Path(self.dir) / "report.html" if self.dir else None

    @property
    def card_path(self) -> Path | None:
        """The project's model card, as the model folder's README.md (what a push publishes)."""
        return self.model_dir / "README.md" if self.model_dir else None

    @property
    def summary_path(self) -> Path | None:
        """What the run decided and where its results are (`summary.md` beside it)."""
        return Path(self.dir) / "summary.json" if self.dir else None


HF_TOKEN_KEY = "HF_TOKEN"
"""The key of the Hub token in the secret `hub.secret_name` and the environment variable
it becomes in the steps and tasks that reach the Hub."""


class HubConfig(StrictModel):
    """Publishing to the Hugging Face Hub; the token comes from a ZenML secret, never config."""

    enabled: bool = False
    repo_id: str | None = None
    private: bool = True
    revision: str | None = None
    create_pr: bool = False
    commit_message: str | None = None
    secret_name: str = "huggingface"
    endpoint: str | None = None
    max_retries: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _repo_when_enabled(self) -> HubConfig:
        if self.enabled and not self.repo_id:
            raise ValueError("hub.enabled needs hub.repo_id (e.g. 'my-org/my-embedder')")
        if self.create_pr and self.revision not in (None, "main"):
            raise ValueError("hub.create_pr opens a pull request against main; drop hub.revision")
        return self


class CardConfig(StrictModel):
    """Model card metadata a Hub page shows (front matter of README.md).

    `license` may stay empty when the orchestrator's model entry (ZenML `model.license`)
    gives it; a card without either has no license field.
    """

    license: str | None = None
    language: list[str] = Field(default_factory=lambda: ["en"])
    tags: list[str] = Field(default_factory=list)
