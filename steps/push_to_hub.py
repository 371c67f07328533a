"""Step: publish the fine-tuned model to the Hugging Face Hub, only if the gate passes.

The gate is decided first and logged as one sentence; a failed gate or a disabled hub
returns before any secret is read or any request is made. The token comes from the
ZenML secret `config.hub.secret_name` (key HF_TOKEN) and never reaches logs or metadata.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

from sentence_transformers import SentenceTransformer
from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger
from zenml.types import MarkdownString

from trainer.config import RunConfig
from trainer.gate import decide
from trainer.hub import push_model_folder

logger = get_logger(__name__)
TOKEN_KEY = "HF_TOKEN"


def _hub_token(secret_name: str) -> str:
    """HF_TOKEN of the named ZenML secret; else the env var `@step(secrets=[...])` sets."""
    from zenml.client import Client

    try:
        token = Client().get_secret(secret_name).secret_values.get(TOKEN_KEY)
    except KeyError:
        token = None
    token = token or os.environ.get(TOKEN_KEY)
    if not token:
        raise RuntimeError(
            f"no Hugging Face token: create the secret with `zenml secret create "
            f"{secret_name} --{TOKEN_KEY}=<token>`"
        )
    return token


@step
def push_to_hub(
    config: RunConfig,
    model: SentenceTransformer,
    evaluation: dict[str, Any],
    model_card: MarkdownString,
) -> Annotated[dict[str, Any], "hub_push"]:
    """{"pushed": bool, "reason" | "repo_id", "commit_url", ...} plus the gate decision."""
    decision = decide(config.gate, evaluation)
    logger.info(decision.log_line())
    outcome: dict[str, Any] = {"pushed": False, "gate": decision.to_dict()}
    if not decision.passed:
        outcome["reason"] = "; ".join(decision.reasons)
    elif not config.hub.enabled:
        outcome["reason"] = "hub.enabled is false"
    else:
        run_name = get_step_context().pipeline_run.name
        message = config.hub.commit_message or "Fine-tuned embedding model"
        with tempfile.TemporaryDirectory(prefix="hub-push-") as tmp:
            folder = Path(tmp) / "model"
            model.save(str(folder), create_model_card=False)
            (folder / "README.md").write_text(str(model_card), encoding="utf-8")
            result = push_model_folder(
                folder,
                config.hub,
                token=_hub_token(config.hub.secret_name),
                commit_message=f"{message} (ZenML run {run_name})",
            )
        outcome.update(
            pushed=True,
            repo_id=result.repo_id,
            revision=result.revision,
            commit_url=result.commit_url,
            pr_url=result.pr_url,
            no_changes=result.no_changes,
        )
        logger.info("Hub: %s", result.pr_url or result.commit_url)
    log_metadata(metadata={"hub_push": outcome})
    return outcome
