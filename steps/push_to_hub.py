"""Step: publish the fine-tuned model to the Hugging Face Hub, only if the gate passes.

The gate is decided first and logged as one sentence; a failed gate or a disabled hub
returns before any secret is read or any request is made. The token comes from the
ZenML secret `config.hub.secret_name` (key HF_TOKEN) and never reaches logs or metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from sentence_transformers import SentenceTransformer
from zenml import log_metadata, step
from zenml.logger import get_logger
from zenml.types import MarkdownString

from steps._context import run_ref
from steps._secrets import hub_token
from trainer.config import HF_TOKEN_KEY, RunConfig
from trainer.models import save_model
from trainer.release import gated_push
from trainer.results import Evaluation, ExportReport, PushOutcome

logger = get_logger(__name__)


def _hub_token(secret_name: str) -> str:
    """HF_TOKEN of the named ZenML secret; else the env var `@step(secrets=[...])` sets."""
    token = hub_token(secret_name)
    if not token:
        raise RuntimeError(
            f"no Hugging Face token: create the secret with `zenml secret create "
            f"{secret_name} --{HF_TOKEN_KEY}=<token>`"
        )
    return token


@step
def push_to_hub(
    config: RunConfig,
    model: SentenceTransformer,
    evaluation: Evaluation,
    model_card: MarkdownString,
    export_report: ExportReport | None = None,
    onnx: Path | None = None,
) -> Annotated[PushOutcome, "hub_push"]:
    """The gate decision (with the export's parity when the run exports), and where the
    model landed when it was pushed (with the exported `onnx/` folder)."""

    def write_folder(folder: Path) -> None:
        save_model(model, folder, create_model_card=False)
        (folder / "README.md").write_text(str(model_card), encoding="utf-8")

    outcome = gated_push(
        config,
        evaluation,
        write_folder=write_folder,
        token=lambda: _hub_token(config.hub.secret_name),
        run_label=run_ref().label(),
        log=logger.info,
        export=export_report,
        export_folder=onnx,
    )
    log_metadata(metadata={"hub_push": outcome.model_dump(mode="json", exclude_none=True)})
    return outcome
