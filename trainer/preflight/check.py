"""`preflight`: every check of a run that needs no model, with all problems collected."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.config import RunConfig
from trainer.preflight.config import read_config
from trainer.preflight.evaluators import check_best_model_metric, check_evaluators, check_gate
from trainer.preflight.export import check_export
from trainer.preflight.locations import check_checkpoints, check_hub, check_output
from trainer.preflight.loss_models import check_loss_models
from trainer.preflight.report import Findings, PreflightReport
from trainer.problems import Problem
from trainer.results import DataReport

if TYPE_CHECKING:
    from datasets import DatasetDict
    from fsspec import AbstractFileSystem


def _check_data(config: RunConfig, found: Findings) -> tuple[DataReport, DatasetDict]:
    from trainer.data import check_data_keeping_splits

    check, train, held_out = check_data_keeping_splits(config)
    found.problems.extend(check.problems)
    found.warnings.extend(check.report.warnings)
    for name, report in check.report.datasets.items():
        found.checked.append(
            f"dataset {name}: {report.train_rows} training rows, {report.eval_rows} held out"
        )
    return _check_leakage(config, check.report, train, held_out, found), held_out


def _check_leakage(
    config: RunConfig,
    report: DataReport,
    train: DatasetDict,
    held_out: DatasetDict,
    found: Findings,
) -> DataReport:
    """The load stage's leakage check on the same rows: a held-out query that also occurs
    in training is a problem here too (unless `leakage.on_query_overlap: warn`)."""
    from trainer.data import LeakageError, check_leakage, enforce_leakage_policy

    if not held_out:
        return report
    leakage = check_leakage(train, held_out)
    try:
        warnings = enforce_leakage_policy(leakage, config.leakage)
    except LeakageError as error:
        found.problems.append(Problem(field="leakage.on_query_overlap", message=str(error)))
        warnings = []
    else:
        found.checked.append(f"leakage: held-out rows of {', '.join(held_out)} vs training")
    found.warnings.extend(warnings)
    return report.model_copy(update={"leakage": leakage, "leakage_warnings": warnings})


IN_BATCH_NEGATIVES_FEW = 8
"""Below this batch size an in-batch-negatives loss sees few negatives per anchor."""


def _check_training(config: RunConfig, found: Findings) -> None:
    from trainer.catalog import CACHED_VARIANTS
    from trainer.training import effective_training_arguments, training_argument_problems

    problems = training_argument_problems(config)
    found.problems.extend(problems)
    if not problems:
        found.checked.append("training arguments (constructed)")
        batch = effective_training_arguments(config).get("per_device_train_batch_size")
        in_batch = [name for name, ds in config.datasets.items() if ds.loss.name in CACHED_VARIANTS]
        if in_batch and isinstance(batch, int) and batch < IN_BATCH_NEGATIVES_FEW:
            losses = ", ".join(f"{name} ({config.datasets[name].loss.name})" for name in in_batch)
            what = (
                "no negatives at all: the loss is constant and nothing is learned"
                if batch == 1
                else f"only {batch - 1} negative(s) per anchor"
            )
            found.warnings.append(
                f"training.per_device_train_batch_size {batch}: the in-batch-negatives loss of "
                f"{losses} takes the other rows of a batch as negatives, so it has {what}; use "
                f"{IN_BATCH_NEGATIVES_FEW} or more (the measured default is 32)"
            )


def planned_steps(config: RunConfig, data: DataReport) -> int | None:
    """About how many optimizer steps the run will take on one process: `max_steps`,
    else batches of every dataset per epoch over gradient accumulation (None when a
    dataset did not load or an argument is not a plain number)."""
    from trainer.training import effective_training_arguments

    arguments = effective_training_arguments(config)
    max_steps = arguments.get("max_steps")
    if isinstance(max_steps, int) and max_steps > 0:
        return max_steps
    batch = arguments.get("per_device_train_batch_size")
    epochs = arguments.get("num_train_epochs")
    accumulation = arguments.get("gradient_accumulation_steps", 1)
    rows = [
        data.datasets[name].train_rows if name in data.datasets else None
        for name in config.datasets
    ]
    if not (
        isinstance(batch, int) and isinstance(epochs, int | float) and isinstance(accumulation, int)
    ):
        return None
    if any(count is None for count in rows) or batch < 1 or accumulation < 1:
        return None
    batches = sum(math.ceil(count / batch) for count in rows if count is not None)
    return math.ceil(batches * epochs / accumulation)


def _check_steps(config: RunConfig, data: DataReport, found: Findings) -> None:
    """Warn when the run will train fewer steps than the gate's `min_steps`."""
    steps = planned_steps(config, data)
    if steps is not None and steps < config.gate.min_steps:
        found.warnings.append(
            f"the run will train about {steps} optimizer step(s), fewer than gate.min_steps "
            f'{config.gate.min_steps}: the gate will fail it with "no meaningful training" '
            "(more rows or epochs, a smaller batch, or a lower gate.min_steps)"
        )


def _check_model(
    config: RunConfig,
    found: Findings,
    model_version_exists: Callable[[str], str | None] | None,
) -> str | None:
    """Problems with the base model's source; its similarity function when known."""
    from trainer.evaluation import model_similarity
    from trainer.models import model_length_problems, model_source_problems

    if config.model.zenml_ref is not None:
        # Only the orchestrator can look up a ZenML model version.
        if model_version_exists is None:
            found.skipped.append(
                f"model {config.model.name_or_path!r}: a ZenML model version, checked by "
                "the pipeline's preflight step"
            )
            return None
        problem = model_version_exists(config.model.name_or_path)
        if problem is not None:
            found.problems.append(Problem(field="model.name_or_path", message=problem))
        else:
            found.checked.append(f"base model {config.model.name_or_path}")
        return None
    problems = model_source_problems(config.model)
    found.problems.extend(problems)
    if problems:
        return None
    found.checked.append(f"base model {config.model.name_or_path}")
    found.problems.extend(model_length_problems(config.model))
    if config.model.trust_remote_code:
        found.warnings.append(
            f"model.trust_remote_code is true: loading {config.model.name_or_path!r} runs "
            "Python code from its repository on every machine the run uses; set it only for "
            "a model whose code you have read (the model card records it)"
        )
    _check_model_options(config, found)
    similarity = model_similarity(config.model)
    if similarity is None:
        found.skipped.append(
            f"model {config.model.name_or_path!r} is not in the local cache: metric names "
            "are checked for every similarity function it might use"
        )
    return similarity


def _check_model_options(config: RunConfig, found: Findings) -> None:
    """Matryoshka dims, adaptive layers and pooling against the base model's files."""
    from trainer.models import model_facts
    from trainer.preflight.models import model_option_problems

    facts = model_facts(config.model)
    if facts is None:
        return
    problems = model_option_problems(config, facts)
    found.problems.extend(problems)
    if not problems:
        found.checked.append(
            f"model options (embedding dimension {facts.embedding_dimension}, "
            f"{facts.num_layers} layers)"
        )


_NOT_CACHED = ("not cached", "not in the local Hugging Face cache", "cannot load")
"""How a problem reads when a Hub dataset or model could not be reached offline."""


def _hub_fields(config: RunConfig) -> dict[str, str]:
    """Config fields that name something on the Hugging Face Hub -> what it is."""
    from trainer.config import hub_repo_id

    fields: dict[str, str] = {}
    for name, dataset in config.datasets.items():
        for part, source in (("source", dataset.source), ("eval_source", dataset.eval_source)):
            if source is not None and source.resolved_format == "hub":
                fields[f"datasets.{name}.{part}"] = f"Hub dataset {source.path!r}"
        mining = dataset.hard_negatives
        corpus = mining.corpus if mining is not None else None
        if corpus is not None and corpus.source.resolved_format == "hub":
            fields[f"datasets.{name}.hard_negatives.corpus"] = f"Hub dataset {corpus.source.path!r}"
        model = mining.model if mining is not None else None
        if model is not None and hub_repo_id(model.name_or_path) is not None:
            fields[f"datasets.{name}.hard_negatives.model"] = f"Hub model {model.name_or_path!r}"
        for role, loss_model in (("guide", dataset.loss.guide), ("teacher", dataset.loss.teacher)):
            if loss_model is not None and hub_repo_id(loss_model.name_or_path) is not None:
                fields[f"datasets.{name}.loss.{role}"] = f"Hub model {loss_model.name_or_path!r}"
    for index, evaluator in enumerate(config.evaluators):
        if evaluator.source is not None and evaluator.source.resolved_format == "hub":
            fields[f"evaluators.{index}.source"] = f"Hub dataset {evaluator.source.path!r}"
    if hub_repo_id(config.model.name_or_path) is not None:
        fields["model.name_or_path"] = f"Hub model {config.model.name_or_path!r}"
    return fields


def _offline_unchecked(config: RunConfig, found: Findings) -> int:
    """Offline: a Hub dataset or model that is not in the local cache is reported as not
    checked (it may be fine), not as a problem and not as passed. Returns how many."""
    fields = _hub_fields(config)
    kept: list[Problem] = []
    for problem in found.problems:
        what = next(
            (what for field, what in fields.items() if problem.field.startswith(field)), None
        )
        if what is not None and any(mark in problem.message for mark in _NOT_CACHED):
            found.skipped.append(
                f"{problem.field}: {what} is not in the local cache (--offline); checked "
                "where the Hub can be reached (the pipeline's preflight step)"
            )
        else:
            kept.append(problem)
    moved = len(found.problems) - len(kept)
    found.problems[:] = kept
    return moved


def preflight(
    config: RunConfig | str | Path,
    *,
    secret_exists: Callable[[str], bool] | None = None,
    artifact_root: str | None = None,
    filesystem: AbstractFileSystem | None = None,
    model_version_exists: Callable[[str], str | None] | None = None,
    offline: bool = False,
) -> PreflightReport:
    """Check everything about a run that needs no model; collect every problem.

    `config` is a validated `RunConfig` or the path of a YAML config (bare, or a ZenML
    run config with `parameters.config`). `secret_exists(name)` says whether the Hub
    token secret exists (not checked without it). `artifact_root` is where checkpoints
    go when `checkpoints.uri` is unset, and `filesystem` the fsspec filesystem that
    carries the artifact store's credentials. `model_version_exists(reference)` looks a
    `zenml:<model>@<version>` base up and returns what is wrong with it (None: found).
    `offline`: Hub datasets and models missing from the local cache are listed as not
    checked instead of as problems (everything else is checked as usual).
    """
    started = time.perf_counter()
    found = Findings()
    source = None if isinstance(config, RunConfig) else str(config)
    run_config = config if isinstance(config, RunConfig) else read_config(config, found)
    data = None
    unchecked = 0
    metrics: list[str] = []
    gate_metric = None
    if run_config is not None:
        data, held_out = _check_data(run_config, found)
        similarity = (
            None
            if "model" in found.dropped
            else _check_model(run_config, found, model_version_exists)
        )
        if "model" not in found.dropped:
            check_loss_models(run_config, found, model_version_exists)
        if "training" not in found.dropped:
            _check_training(run_config, found)
            if "gate" not in found.dropped:
                _check_steps(run_config, data, found)
        if not found.dropped & {"evaluators", "gate"} and not any(
            part.startswith("datasets.") for part in found.dropped
        ):
            failed = [name for name in run_config.datasets if name not in data.datasets]
            found_metrics = check_evaluators(
                run_config, held_out, similarity, failed, found, offline=offline
            )
            metrics = found_metrics.names
            gate_metric = check_gate(run_config, found_metrics, found)
            if "training" not in found.dropped:
                check_best_model_metric(run_config, found_metrics, found)
        else:
            found.skipped.append(
                "evaluators and gate.metric: the config parts they use are invalid"
            )
        if "hub" not in found.dropped:
            check_hub(run_config, secret_exists, found)
        if "output" not in found.dropped:
            check_output(run_config, found)
        if "checkpoints" not in found.dropped:
            check_checkpoints(run_config, artifact_root, filesystem, found)
        if "export" not in found.dropped:
            check_export(run_config, found)
        if offline:
            unchecked = _offline_unchecked(run_config, found)
    return PreflightReport(
        source=source,
        problems=found.problems,
        warnings=found.warnings,
        checked=found.checked,
        skipped=found.skipped,
        metrics=metrics,
        gate_metric=gate_metric,
        data=data,
        seconds=round(time.perf_counter() - started, 2),
        unchecked_offline=unchecked,
    )
