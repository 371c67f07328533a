"""The config as the preflight reads it: every invalid part is a problem, and the rest
is still checked (a bad training argument does not hide a missing data file)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trainer.config import (
    RunConfig,
    model_entry,
    read_config_document,
    reconcile_model_facts,
    run_config_part,
)
from trainer.preflight.report import Findings
from trainer.problems import Problem, problems_from_validation_error


def _leave_out(document: dict[str, Any], problem: Problem, found: Findings) -> bool:
    """Remove the part of the config document that `problem` is about, so the checks
    that do not read it can still run; False when nothing could be removed.

    A bad loss param goes alone (the data check does not read it), a dataset with any
    other problem goes whole (its data would be checked against the wrong mapping or
    loss), a bad training argument goes alone, an invalid base model becomes a
    placeholder, and any other section (`gate`, `hub`, `evaluators`...) goes whole.
    """
    parts = problem.field.split(".")
    section = "evaluators" if problem.field == "config" else parts[0]
    container = document.get(section)
    if section == "datasets":
        if len(parts) < 2 or not isinstance(container, dict) or parts[1] not in container:
            return False
        dataset = container[parts[1]]
        loss = dataset.get("loss") if isinstance(dataset, dict) else None
        params = loss.get("params") if isinstance(loss, dict) and len(parts) > 4 else None
        if parts[2:4] == ["loss", "params"] and isinstance(params, dict) and parts[4] in params:
            params.pop(parts[4])
            found.dropped.add("loss params")
        else:
            container.pop(parts[1])
            found.dropped.add(f"datasets.{parts[1]}")
        return True
    if section == "training" and len(parts) > 1 and isinstance(container, dict):
        found.dropped.add("training")
        return container.pop(parts[1], None) is not None
    if section == "model":
        document["model"] = {"name_or_path": "(invalid)"}
        found.dropped.add("model")
        return True
    found.dropped.add(section)
    return document.pop(section, None) is not None


def _validate_what_is_valid(part: dict[str, Any], found: Findings) -> RunConfig | None:
    """The config, or, when parts of it are invalid, the config without them (their
    problems are recorded; problems the removal itself causes are not)."""
    try:
        return RunConfig.model_validate(part)
    except ValidationError as error:
        problems = problems_from_validation_error(error)
    found.problems.extend(problems)
    document = copy.deepcopy(part)
    for _ in range(4):  # leaving out a dataset can invalidate an evaluator that used it
        removed = [_leave_out(document, problem, found) for problem in problems]
        if not any(removed):
            break
        try:
            return RunConfig.model_validate(document)
        except ValidationError as error:
            problems = problems_from_validation_error(error)
    found.skipped.append("everything else: the config is too broken to check what it names")
    return None


def zenml_run_config_keys() -> frozenset[str] | None:
    """The top-level keys ZenML's `PipelineRunConfiguration` accepts, read from the
    installed ZenML's source without importing it (seconds and a database client); None
    when ZenML is not installed (the Kubeflow image)."""
    import ast
    import importlib.metadata

    try:
        source = importlib.metadata.distribution("zenml").locate_file(
            "zenml/config/pipeline_run_configuration.py"
        )
        tree = ast.parse(Path(str(source)).read_text(encoding="utf-8"))
    except (importlib.metadata.PackageNotFoundError, OSError, SyntaxError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "PipelineRunConfiguration":
            return frozenset(
                item.target.id
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
            )
    return None


def _check_zenml_keys(document: dict[str, Any], found: Findings) -> None:
    """Unknown top-level keys of a ZenML run config, with the nearest known one."""
    import difflib

    known = zenml_run_config_keys()
    if known is None:
        found.skipped.append("top-level keys of the ZenML run config: ZenML is not installed")
        return
    for key in sorted(str(key) for key in set(document) - known):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        found.problem(
            key,
            f"not a key of a ZenML run config, so the setting would be ignored{hint} known "
            f"keys: {', '.join(sorted(known))}",
        )


def read_config(path: str | Path, found: Findings) -> RunConfig | None:
    """The run config at `path` (bare, or a ZenML run config's `parameters.config`), with
    its invalid parts left out; None when nothing can be checked beyond the file."""
    try:
        document = read_config_document(path)
        part = run_config_part(document, path)
    except ValueError as error:
        found.problem(str(path), str(error).removeprefix(f"{path}: "))
        return None
    if "parameters" in document:
        _check_zenml_keys(document, found)
    if not isinstance(part, dict):
        found.problem("config", f"expected a mapping of run settings, got {type(part).__name__}")
        return None
    config = _validate_what_is_valid(part, found)
    if config is None:
        return None
    found.checked.append(f"config {path}")
    return _with_orchestrator_model(config, document, found)


def _with_orchestrator_model(
    config: RunConfig, document: dict[str, Any], found: Findings
) -> RunConfig:
    """A ZenML run config may name the model (`model: {name, license}`) outside
    `parameters.config`; the two must agree, as the pipeline requires."""
    if "parameters" not in document:
        return config
    name, license_ = model_entry(document)
    try:
        return reconcile_model_facts(config, model_name=name, license=license_)
    except ValueError as error:
        found.problem("output.model_name", str(error))
        return config
