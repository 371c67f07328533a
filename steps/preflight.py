"""Step: check the whole run before anything heavy starts.

The pipeline runs it first and starts `load_datasets` only after it, so a config with
problems fails here within seconds, before data is stored, a model loads or a GPU pod is
scheduled. It is thin: the checks are `trainer.preflight`; this step hands them the
run's secret store (does the Hub token secret exist?) and artifact store (the default
checkpoint location), logs warnings, records the report as metadata and, when there are
problems, raises one error that lists them all.
"""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger

from steps._context import artifact_store_location
from steps._models import find_model_version
from steps._secrets import hub_token
from trainer.config import RunConfig, parse_zenml_model_ref
from trainer.preflight import PreflightFailed, PreflightReport
from trainer.preflight import preflight as check_run

logger = get_logger(__name__)


def _token_secret_exists(secret_name: str) -> bool:
    """What `push_to_hub` will find: the secret's HF_TOKEN, or the env var."""
    return hub_token(secret_name) is not None


def _model_version_problem(reference: str) -> str | None:
    """What the train step will hit resolving a `zenml:` base (None: it resolves)."""
    try:
        name, version = parse_zenml_model_ref(reference)  # type: ignore[misc]
        find_model_version(name, version, reference=reference)
    except ValueError as error:
        return str(error)
    return None


@step
def preflight(config: RunConfig) -> Annotated[PreflightReport, "preflight_report"]:
    """Every problem of the run config, found without a model; raises if there are any."""
    root, filesystem = artifact_store_location()
    report = check_run(
        config,
        secret_exists=_token_secret_exists,
        artifact_root=root,
        filesystem=filesystem,
        model_version_exists=_model_version_problem,
    )
    log_metadata(metadata=report.metadata())
    for warning in report.warnings:
        logger.warning(warning)
    for skipped in report.skipped:
        logger.info("not checked: %s", skipped)
    if not report.ok:
        # The message is the list of problems: ZenML prints it as the step's failure.
        raise PreflightFailed(report)
    logger.info(report.verdict())
    return report
