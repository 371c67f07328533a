"""Which orchestrator run produced a result: for logs, checkpoints and the model card."""

from __future__ import annotations

from trainer.results.base import Result

_ORCHESTRATOR_NAMES = {"zenml": "ZenML", "kubeflow": "Kubeflow"}


class RunRef(Result):
    """The orchestrator run a stage belongs to (shown in logs, metadata and the card)."""

    orchestrator: str
    name: str
    id: str | None = None
    pipeline: str | None = None
    model_version: str | None = None
    dashboard_url: str | None = None

    def label(self) -> str:
        """`ZenML run <name>`: how logs, checkpoints and commit messages name the run."""
        orchestrator = _ORCHESTRATOR_NAMES.get(self.orchestrator, self.orchestrator)
        return f"{orchestrator} run {self.name}"
