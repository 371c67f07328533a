"""Evaluators built on the rows they will read, the metric names they will report, and
the gate metric checked against those names."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainer.config import EVALUATOR_TEXT_COLUMNS, RunConfig
from trainer.preflight.report import Findings
from trainer.problems import DataValidationError

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

    from trainer.config import EvaluatorConfig


def _missing_columns(
    evaluator: EvaluatorConfig, rows: Dataset, where: str, found: Findings
) -> bool:
    """Information retrieval reads two named columns: name each one that is missing."""
    if evaluator.type != "information_retrieval":
        return False
    origin = (
        f"the held-out split of dataset {evaluator.dataset!r}"
        if evaluator.dataset is not None
        else "its source after columns mapping"
    )
    missing = False
    for key in ("query_column", "document_column"):
        column = getattr(evaluator, key)
        if column not in rows.column_names:
            found.problem(
                f"{where}.{key}",
                f"evaluator {evaluator.display_name!r} reads column {column!r}, which "
                f"{origin} does not have; it has: {', '.join(rows.column_names)}",
            )
            missing = True
    return missing


def _stand_in_rows(evaluator: EvaluatorConfig) -> Dataset:
    """One row shaped as `evaluator` reads it: metric names depend on the evaluator's
    params, not on the rows, so they stay known when the real rows have a problem."""
    from datasets import Dataset

    if evaluator.type == "information_retrieval":
        return Dataset.from_dict({evaluator.query_column: ["q"], evaluator.document_column: ["d"]})
    if evaluator.type == "triplet":
        return Dataset.from_dict({"anchor": ["a"], "positive": ["p"], "negative": ["n"]})
    if evaluator.type in EVALUATOR_TEXT_COLUMNS:
        texts, _ = EVALUATOR_TEXT_COLUMNS[evaluator.type]
        return Dataset.from_dict({f"text{i}": [f"t{i}"] for i in range(texts)})
    label = {"score": [0.5]} if evaluator.type == "embedding_similarity" else {"label": [1]}
    return Dataset.from_dict({"sentence1": ["a"], "sentence2": ["b"], **label})


def _would_be_default(config: RunConfig, name: str) -> bool:
    """Whether a dataset that failed to load would have had a default evaluator:
    held-out rows of label-free texts, at least two of them (`evaluator_configs`)."""
    from trainer.catalog import LOSS_SPECS

    dataset = config.datasets[name]
    spec = LOSS_SPECS[dataset.loss.name]
    has_held_out = dataset.eval_source is not None or dataset.eval_size is not None
    return has_held_out and spec.label == "none" and spec.min_texts >= 2


def _real_rows(
    evaluator: EvaluatorConfig, held_out: DatasetDict, where: str, found: Findings
) -> Dataset | None:
    """The rows the evaluate stage will give `evaluator`, or None (problem recorded, or
    the dataset it reads failed its own check)."""
    from trainer.data import load_evaluator_rows

    if evaluator.dataset is not None and evaluator.dataset not in held_out:
        return None
    try:
        rows = load_evaluator_rows(evaluator, held_out, field=where)
    except DataValidationError as error:
        found.problems.append(error.as_problem(default_field=where))
        return None
    return None if _missing_columns(evaluator, rows, where, found) else rows


@dataclass(frozen=True)
class EvaluatorMetrics:
    """What the evaluators will report: every possible name (all similarity functions
    when the model's is unknown), the names to show a user, the first evaluator's
    primary metric, and evaluators whose names are unknown (invalid params)."""

    names: list[str]
    shown: list[str]
    primary: str | None
    unknown: list[str]


def _build(
    evaluator: EvaluatorConfig, held_out: DatasetDict, where: str, found: Findings
) -> tuple[Any, str | None]:
    """The evaluator as the evaluate stage will build it, and what it was checked on
    (None: built on stand-in rows because its real rows are unusable, problem recorded).

    A BEIR evaluator reads its own folder; the others read their rows, or a one-row
    stand-in so their metric names are still known."""
    from trainer.evaluation import build_evaluator

    if evaluator.type == "beir":
        return build_evaluator(evaluator, None), str(evaluator.path)
    rows = _real_rows(evaluator, held_out, where, found)
    if rows is not None:
        try:
            return build_evaluator(evaluator, rows), f"{len(rows)} rows"
        except DataValidationError as error:
            found.problem(where, str(error))
    return build_evaluator(evaluator, _stand_in_rows(evaluator)), None


def check_evaluators(
    config: RunConfig,
    held_out: DatasetDict,
    similarity: str | None,
    failed_datasets: list[str],
    found: Findings,
    *,
    offline: bool = False,
) -> EvaluatorMetrics:
    """Build every evaluator on the rows it will read, as the evaluate stage will, and
    list the metric names they will report (`offline`: reach no Hub repo for NanoBEIR)."""
    from trainer.config import EvaluatorConfig
    from trainer.evaluation import (
        DEFAULT_SIMILARITY,
        SIMILARITY_FUNCTIONS,
        evaluator_configs,
        metric_names,
        primary_metric_name,
    )

    similarities = [similarity] if similarity else list(SIMILARITY_FUNCTIONS)
    configs = evaluator_configs(config, held_out)
    if not config.evaluators:
        configs += [
            EvaluatorConfig(dataset=name)
            for name in failed_datasets
            if _would_be_default(config, name)
        ]
    metrics: list[str] = []
    shown: list[str] = []  # with an unknown similarity: the names a cosine model reports
    unknown: list[str] = []
    primary: str | None = None
    for index, evaluator in enumerate(configs):
        where = f"evaluators.{index}" if config.evaluators else "evaluators"
        name = evaluator.display_name
        if evaluator.type == "nanobeir":
            check_nanobeir(evaluator, where, found, offline=offline)
            unknown.append(name)
            continue
        if evaluator.type == "mse":
            names = check_mse(config, evaluator, held_out, where, found)
            metrics.extend(names)
            shown.extend(names)
            if index == 0:
                primary = names[0]
            continue
        try:
            built, checked = _build(evaluator, held_out, where, found)
        except (TypeError, ValueError, AssertionError) as error:
            if isinstance(error, DataValidationError) or evaluator.type == "beir":
                # The stand-in fails the same way as the real rows (its own files): once.
                if str(error) not in {problem.message for problem in found.problems}:
                    found.problem(where, str(error))
            else:
                detail = str(error).strip().splitlines()[0] if str(error).strip() else "invalid"
                found.problem(
                    f"{where}.params",
                    f"sentence-transformers rejects evaluator {name!r}: "
                    f"{type(error).__name__}: {detail}",
                )
            unknown.append(name)
            continue
        names = sorted({key for fn in similarities for key in metric_names(built, fn)})
        metrics.extend(names)
        shown.extend(metric_names(built, similarity or DEFAULT_SIMILARITY))
        if index == 0 and similarity:
            primary = primary_metric_name(built, similarity)
        if checked:
            found.checked.append(f"evaluator {name}: {checked}, {len(names)} metrics")
    if not configs and not failed_datasets:
        found.problem(
            "evaluators",
            "nothing to evaluate: no evaluator is configured and no dataset holds "
            "held-out (query, document) pairs; set datasets.<name>.eval_size or "
            "eval_source, or configure evaluators",
        )
    return EvaluatorMetrics(names=metrics, shown=shown, primary=primary, unknown=unknown)


def check_gate(config: RunConfig, metrics: EvaluatorMetrics, found: Findings) -> str | None:
    _check_guards(config, metrics, found)
    metric = config.gate.metric or metrics.primary
    if metric is None or metric in metrics.names:
        if metric is not None:
            found.checked.append(f"gate metric {metric}")
        return metric
    if metrics.unknown or not metrics.names:
        found.skipped.append(
            f"gate.metric {metric!r}: the params of evaluator(s) "
            f"{', '.join(metrics.unknown) or '(none)'} are invalid, so their metric names "
            "are unknown"
        )
        return metric
    valid = ", ".join(metrics.shown)
    close = difflib.get_close_matches(metric, metrics.shown, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    if config.gate.metric:
        found.problem(
            "gate.metric",
            f"{metric!r} is not reported by any evaluator; {hint}they report: {valid}",
        )
    else:
        found.problem(
            "gate.metric",
            f"not set, so the gate would use the first evaluator's primary metric "
            f"{metric!r}, which it does not report (check its params); set gate.metric to "
            f"one of: {valid}",
        )
    return metric


def _check_guards(config: RunConfig, metrics: EvaluatorMetrics, found: Findings) -> None:
    """Every `gate.guards[i].metric` must be a metric the evaluators report."""
    if metrics.unknown or not metrics.names:
        return
    for index, guard in enumerate(config.gate.guards):
        if guard.metric in metrics.names:
            found.checked.append(f"gate guard {guard.metric}")
            continue
        close = difflib.get_close_matches(guard.metric, metrics.shown, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        found.problem(
            f"gate.guards[{index}].metric",
            f"{guard.metric!r} is not reported by any evaluator; {hint}they report: "
            f"{', '.join(metrics.shown)}",
        )


def check_best_model_metric(config: RunConfig, metrics: EvaluatorMetrics, found: Findings) -> None:
    """`training.metric_for_best_model` (with `load_best_model_at_end`) must be a metric the
    evaluators report during training, or the held-out loss (`loss`, per dataset
    `<dataset>_loss`); the Trainer would otherwise fail at its first evaluation."""
    training = config.training
    metric = training.get("metric_for_best_model")
    if not training.get("load_best_model_at_end") or not isinstance(metric, str):
        return
    key = metric.removeprefix("eval_")
    losses = ["loss"] if not config.is_multi_dataset else [f"{n}_loss" for n in config.datasets]
    if key in losses or key in metrics.names:
        found.checked.append(f"best-model metric {metric}")
        return
    if metrics.unknown:
        return
    choices = [*metrics.shown, *losses]
    close = difflib.get_close_matches(key, choices, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    found.problem(
        "training.metric_for_best_model",
        f"{metric!r} is not reported during training, so load_best_model_at_end could not "
        f"compare checkpoints by it; {hint}use one of: {', '.join(choices)}",
    )


def check_mse(
    config: RunConfig,
    evaluator: EvaluatorConfig,
    held_out: DatasetDict,
    where: str,
    found: Findings,
) -> list[str]:
    """MSE is checked without building it (that encodes the source texts with the teacher):
    its rows' columns, and its teacher's source like the base model's. Its one metric."""
    from trainer.evaluation import evaluator_texts
    from trainer.models import model_source_problems

    rows = _real_rows(evaluator, held_out, where, found)
    if rows is not None:
        try:
            evaluator_texts(rows, evaluator)
            found.checked.append(f"evaluator {evaluator.display_name}: {len(rows)} rows")
        except DataValidationError as error:
            found.problem(where, str(error))
    if evaluator.teacher is not None:
        for problem in model_source_problems(evaluator.teacher):
            found.problem(f"{where}.teacher", problem.message)
    return [f"{evaluator.display_name}_negative_mse"]


NANOBEIR_CONFIGS = ("corpus", "queries", "qrels")
"""The configs of a NanoBEIR dataset repo NanoBEIREvaluator reads, each with one split per
set (`Nano<Name>`)."""


def check_nanobeir(
    evaluator: EvaluatorConfig, where: str, found: Findings, *, offline: bool = False
) -> None:
    """NanoBEIR's datasets come from the Hub when it is built: its dataset names are
    checked here; online, so are the repo's configs and the chosen sets' splits (from its
    file listing, no rows read); offline (`HF_HUB_OFFLINE=1` or `offline`) that is said
    as skipped."""
    from huggingface_hub import constants
    from sentence_transformers.sentence_transformer.evaluation.nano_beir import (
        DATASET_NAME_TO_HUMAN_READABLE,
    )

    names = evaluator.params.get("dataset_names") or list(DATASET_NAME_TO_HUMAN_READABLE)
    names = names if isinstance(names, list) else [names]
    known = list(DATASET_NAME_TO_HUMAN_READABLE)
    for name in names:
        if str(name).lower() not in known:
            close = difflib.get_close_matches(str(name).lower(), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            found.problem(
                f"{where}.params.dataset_names",
                f"{name!r} is not a NanoBEIR dataset; {hint}NanoBEIR has: {', '.join(known)}",
            )
    dataset_id = evaluator.params.get("dataset_id", "sentence-transformers/NanoBEIR-en")
    chosen = ", ".join(map(str, names))
    if constants.HF_HUB_OFFLINE or offline:
        why = "HF_HUB_OFFLINE=1 here" if constants.HF_HUB_OFFLINE else "the preflight is offline"
        found.skipped.append(
            f"{where}: NanoBEIR downloads {dataset_id} ({chosen}) from the Hugging Face Hub "
            f"when it runs; {why}, so it is not checked, and the evaluate stage needs Hub "
            "access (or those datasets in the local cache)"
        )
        return
    splits = [
        f"Nano{DATASET_NAME_TO_HUMAN_READABLE[str(name).lower()]}"
        for name in names
        if str(name).lower() in known
    ]
    if splits and _nanobeir_splits_found(dataset_id, splits, where, found):
        found.checked.append(
            f"{where}: NanoBEIR's {dataset_id} has {', '.join(splits)} in "
            f"{', '.join(NANOBEIR_CONFIGS)} (Hub file listing; rows are read when it runs)"
        )


def _nanobeir_splits_found(dataset_id: str, splits: list[str], where: str, found: Findings) -> bool:
    """Whether each config of `dataset_id` NanoBEIR reads lists every split in `splits`
    (read from the repo's card and file listing: `load_dataset_builder` reads no rows)."""
    from datasets import load_dataset_builder

    field = f"{where}.params.dataset_id"
    for config in NANOBEIR_CONFIGS:
        try:
            listed = set(load_dataset_builder(dataset_id, config).config.data_files or {})
        except Exception as error:
            found.problem(
                field,
                f"NanoBEIR reads config {config!r} of the Hub dataset {dataset_id!r}, which "
                f"cannot be read: {(str(error) or type(error).__name__).splitlines()[0]}",
            )
            return False
        missing = [split for split in splits if split not in listed]
        if missing:
            found.problem(
                field,
                f"the Hub dataset {dataset_id!r} has no split {', '.join(missing)} in config "
                f"{config!r}, which NanoBEIR reads for the chosen dataset_names; it has: "
                f"{', '.join(sorted(listed)) or '(none)'}",
            )
            return False
    return True
