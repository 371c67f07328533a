"""Publish a saved model folder to the Hugging Face Hub: retried, idempotent, token-safe.

Facts about huggingface_hub 2.4.0 this module is built on (checked against the loopback
fake Hub in tests/hub_server.py and the client source):

- `create_repo` and `create_branch` send one POST and never retry; without hf_xet the
  commit POST of `upload_folder` is not retried either (the Xet path retries it). The
  client's default HTTP client has no timeout. So transient failures (408, 429, 5xx,
  timeouts, dropped connections) are retried here, with exponential backoff.
- `upload_folder` asks the Hub for the remote oid of every file first and drops unchanged
  files; when nothing changed it makes no commit and returns the head commit of the
  revision. Retrying the whole upload is therefore idempotent: a commit whose response
  was lost is not repeated. We detect "nothing changed" by comparing the returned commit
  with the head read before the upload.
- `upload_folder(create_pr=True)` refuses any revision but the default branch (HubConfig
  rejects that combination when the config is validated).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from trainer.config import HubConfig, RunConfig
from trainer.release.export import ONNX_FOLDER
from trainer.release.gate import decide_release
from trainer.results import Evaluation, ExportReport, PushOutcome

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BRANCH = "main"
RETRY_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 60.0


class HubPushError(RuntimeError):
    """The push failed for good: bad credentials, a client error, or retries exhausted."""


@dataclass(frozen=True)
class PushResult:
    """Where the model landed; `no_changes` when the Hub already had identical files."""

    repo_id: str
    commit_url: str
    pr_url: str | None
    revision: str
    no_changes: bool
    commit_oid: str | None = None


def redact(text: str, token: str | None) -> str:
    """`text` with every occurrence of `token` replaced, for messages built from errors."""
    return text.replace(token, "***") if token else text


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def is_transient(error: BaseException) -> bool:
    """Whether retrying may help: 408/429/5xx, timeouts and connection errors.

    The cause chain is followed because the client wraps LFS upload errors. Offline mode
    (a ConnectionError subclass) and every other 4xx are final.
    """
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    current: BaseException | None = error
    while current is not None:
        if isinstance(current, OfflineModeIsEnabled):
            return False
        if isinstance(current, HfHubHTTPError):
            return _status(current) in RETRY_STATUS_CODES
        if isinstance(
            current,
            httpx2.TimeoutException
            | httpx2.NetworkError
            | httpx2.RemoteProtocolError
            | TimeoutError
            | ConnectionError,
        ):
            return True
        current = current.__cause__
    return False


def _describe(error: BaseException) -> str:
    status = _status(error)
    return f"HTTP {status}" if status is not None else type(error).__name__


def with_retries(
    what: str,
    call: Callable[[], T],
    *,
    max_retries: int,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying transient failures `max_retries` times (backoff_s * 2**n)."""
    for attempt in range(max_retries + 1):
        try:
            return call()
        except Exception as error:
            if not is_transient(error) or attempt == max_retries:
                raise
            delay = min(backoff_s * 2**attempt, MAX_BACKOFF_S)
            logger.warning(
                "%s failed (%s); retry %d/%d in %.1f s",
                what,
                _describe(error),
                attempt + 1,
                max_retries,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _final_error(what: str, error: Exception, hub: HubConfig, token: str) -> HubPushError:
    status = _status(error)
    if status in (401, 403):
        hint = (
            f"the Hub refused the token (HTTP {status}) for {hub.repo_id!r}: check that the "
            f"ZenML secret {hub.secret_name!r} holds a valid HF_TOKEN with write access"
        )
    elif is_transient(error):
        hint = f"{what} still failing after {hub.max_retries} retries ({_describe(error)})"
    else:
        hint = f"{what} failed ({_describe(error)})"
    return HubPushError(redact(f"push to {hub.repo_id!r}: {hint}: {error}", token))


def push_model_folder(
    folder: Path,
    hub: HubConfig,
    *,
    token: str,
    commit_message: str,
    backoff_s: float = 1.0,
) -> PushResult:
    """Upload every file of `folder` to `hub.repo_id` in one commit (or none if unchanged).

    Creates the repo (`hub.private`) and the branch `hub.revision` if missing; with
    `hub.create_pr` the commit becomes a pull request against the default branch.
    The token goes to the client only; logs and errors never contain it.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RevisionNotFoundError

    if not hub.repo_id:
        raise ValueError("hub.repo_id is required to push")
    if not token:
        raise ValueError(f"no Hugging Face token: set HF_TOKEN in the secret {hub.secret_name!r}")
    revision = hub.revision or DEFAULT_BRANCH  # HubConfig rejects create_pr with a branch
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")

    api = HfApi(endpoint=hub.endpoint, token=token)
    repo_id = hub.repo_id

    def retried(what: str, call: Callable[[], T]) -> T:
        try:
            return with_retries(what, call, max_retries=hub.max_retries, backoff_s=backoff_s)
        except Exception as error:
            raise _final_error(what, error, hub, token) from error

    def head() -> str | None:
        try:
            return api.repo_info(repo_id, revision=revision).sha
        except RevisionNotFoundError:
            return None

    logger.info("pushing %s to %s@%s (private=%s)", folder, repo_id, revision, hub.private)
    retried("create_repo", lambda: api.create_repo(repo_id, private=hub.private, exist_ok=True))
    if revision != DEFAULT_BRANCH:
        retried(
            "create_branch",
            lambda: api.create_branch(repo_id, branch=revision, exist_ok=True),
        )
    head_before = retried("repo_info", head)
    commit = retried(
        "upload_folder",
        lambda: api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            revision=revision,
            create_pr=hub.create_pr,
            commit_message=commit_message,
        ),
    )
    no_changes = commit.pr_url is None and commit.oid == head_before
    result = PushResult(
        repo_id=repo_id,
        commit_url=str(commit.commit_url),
        pr_url=commit.pr_url,
        revision=revision,
        no_changes=no_changes,
        commit_oid=commit.oid,
    )
    if no_changes:
        logger.info("%s@%s already has these files; no new commit", repo_id, revision)
    else:
        logger.info("pushed %s@%s: %s", repo_id, revision, result.pr_url or result.commit_url)
    return result


def gated_push(
    config: RunConfig,
    evaluation: Evaluation,
    *,
    write_folder: Callable[[Path], None],
    token: Callable[[], str],
    run_label: str,
    log: Callable[[str], None] = logger.info,
    export: ExportReport | None = None,
    export_folder: Path | None = None,
) -> PushOutcome:
    """Decide the gate, then push only a passing model to an enabled Hub target.

    Shared by the ZenML step and the Kubeflow component, which differ only in how they
    write the model folder and where the token comes from. Both are callables, so a
    failing gate or a disabled target reads no secret and makes no request at all.
    `log` receives the one-line gate decision and the pushed URL (the orchestrator's
    logger, so the line shows in the step's logs). With the export stage's `export`
    report, its parity check is part of the gate, and the exported folder
    (`export_folder`: graphs, tokenizer, export.json) is published as `onnx/`.
    """
    decision = decide_release(config, evaluation, export)
    log(decision.log_line())
    if not decision.passed:
        return PushOutcome(pushed=False, gate=decision, reason="; ".join(decision.reasons))
    if not config.hub.enabled:
        return PushOutcome(pushed=False, gate=decision, reason="hub.enabled is false")
    message = config.hub.commit_message or "Fine-tuned embedding model"
    with tempfile.TemporaryDirectory(prefix="hub-push-") as tmp:
        folder = Path(tmp) / "model"
        write_folder(folder)
        if config.export.onnx:
            if export_folder is None or not export_folder.is_dir():
                raise ValueError(
                    f"export.onnx is set but the exported folder {export_folder} is missing: "
                    "the push would publish the model without its ONNX files"
                )
            shutil.copytree(export_folder, folder / ONNX_FOLDER, dirs_exist_ok=True)
        result = push_model_folder(
            folder, config.hub, token=token(), commit_message=f"{message} ({run_label})"
        )
    log(f"pushed to the Hub: {result.pr_url or result.commit_url}")
    return PushOutcome(
        pushed=True,
        gate=decision,
        repo_id=result.repo_id,
        revision=result.revision,
        commit_url=result.commit_url,
        pr_url=result.pr_url,
        no_changes=result.no_changes,
    )
