"""Training arguments checked the way training will use them, before any model loads.

`SentenceTransformerTrainingArguments` is a dataclass: it stores `learning_rate: -0.001`,
`per_device_train_batch_size: 0` or `num_train_epochs: "one"` without complaint, and the
run fails minutes later inside the optimizer or the dataloader. Two checks close that gap:

* `training_value_problems`: each value of the config's `training` block against the
  dataclass field's type and against the ranges training needs. Pure and cheap;
  `RunConfig` runs it, after `coerce_yaml_numbers` (PyYAML reads `1e-5` as a string).
* `training_argument_problems`: constructs the real arguments from the effective ones
  (defaults + seed + config), on the CPU so nothing probes a device, and turns the
  dataclass's own errors (unknown scheduler, strategies that do not match, ...) into
  problems naming `training.<field>`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from trainer.problems import Problem

if TYPE_CHECKING:
    from trainer.catalog.facts import ParameterFacts

_FIELD = "training"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(value: Any) -> bool:
    return value > 0


def _at_least_one(value: Any) -> bool:
    return value >= 1


def _not_negative(value: Any) -> bool:
    return value >= 0


_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "learning_rate": (_positive, "must be greater than 0"),
    "per_device_train_batch_size": (_at_least_one, "must be at least 1"),
    "per_device_eval_batch_size": (_at_least_one, "must be at least 1"),
    "gradient_accumulation_steps": (_at_least_one, "must be at least 1"),
    "num_train_epochs": (_positive, "must be greater than 0 (or set max_steps)"),
    "max_steps": (lambda v: v == -1 or v > 0, "must be a positive step count, or -1"),
    "warmup_steps": (_not_negative, "must be 0 or more (a count, or a fraction below 1)"),
    "warmup_ratio": (lambda v: 0 <= v < 1, "must be a fraction in [0, 1)"),
    "weight_decay": (_not_negative, "must be 0 or more"),
    "max_grad_norm": (_not_negative, "must be 0 or more"),
    "logging_steps": (_positive, "must be greater than 0"),
    "eval_steps": (_positive, "must be greater than 0"),
    "save_steps": (_positive, "must be greater than 0"),
    "dataloader_num_workers": (_not_negative, "must be 0 or more"),
}
"""Numeric ranges outside which training fails late or silently does nothing useful."""


def _field(name: str) -> ParameterFacts | None:
    from trainer.catalog.facts import library_facts

    return library_facts().training_arguments.get(name)


def _type_problem(name: str, value: Any) -> Problem | None:
    field = _field(name)
    if field is None or field.problem(value) is None:
        return None  # e.g. batch_sampler also takes sampler classes; checked by RunConfig
    message = f"expected {field.type_name}, got {type(value).__name__} {value!r}"
    return Problem(field=f"{_FIELD}.{name}", message=message)


_FLOAT = {"type": "number"}
_INT = {"type": "integer"}
"""The JSON Schemas of fields typed exactly `float` and `int`."""


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def coerce_yaml_numbers(training: Mapping[str, Any]) -> dict[str, Any]:
    """`training` with numbers PyYAML left as text turned back into numbers.

    PyYAML follows YAML 1.1, where `1e-5` (no dot) is a string; the user meant the
    number. Only fields typed `float` or `int` are touched, and only strings that parse
    as one; anything else is left for `training_value_problems` to report.
    """
    coerced = dict(training)
    for name, value in training.items():
        field = _field(name) if isinstance(value, str) else None
        schema = field.type if field is not None else None
        if schema not in (_FLOAT, _INT) or not _looks_numeric(value):
            continue
        number = float(value)
        if schema == _FLOAT:
            coerced[name] = number
        elif number.is_integer():
            coerced[name] = int(number)
    return coerced


def training_value_problems(training: Mapping[str, Any]) -> list[Problem]:
    """Problems with the values of a config's `training` block, without constructing anything.

    Unknown keys are left to `RunConfig` (which lists them); this checks the known ones.
    """
    problems = [p for name, value in training.items() if (p := _type_problem(name, value))]
    typed_wrong = {p.field for p in problems}
    for name, (in_range, rule) in _RANGES.items():
        value = training.get(name)
        if value is None or not _is_number(value) or f"{_FIELD}.{name}" in typed_wrong:
            continue
        max_steps = training.get("max_steps", -1)
        if name == "num_train_epochs" and _is_number(max_steps) and max_steps > 0:
            continue  # max_steps overrides the epoch count
        if not in_range(value) or (isinstance(value, float) and not math.isfinite(value)):
            problems.append(Problem(field=f"{_FIELD}.{name}", message=f"{rule}, got {value!r}"))
    if "warmup_ratio" in training and "warmup_steps" in training:
        problems.append(
            Problem(
                field=f"{_FIELD}.warmup_ratio",
                message="give warmup_steps (a step count, or a fraction of the training "
                "steps below 1) or warmup_ratio, not both",
            )
        )
    problems += _pattern_problems(training.get("learning_rate_mapping"))
    return problems


def _pattern_problems(mapping: Any) -> list[Problem]:
    """`learning_rate_mapping` keys are regular expressions over parameter names
    (`re.search`): one that does not compile would fail only when the optimizer is built,
    after the model loaded."""
    if not isinstance(mapping, Mapping):
        return []
    problems = []
    for pattern in mapping:
        try:
            re.compile(str(pattern))
        except re.error as error:
            problems.append(
                Problem(
                    field=f"{_FIELD}.learning_rate_mapping.{pattern}",
                    message=f"not a regular expression over parameter names ({error}); "
                    r"e.g. 'embeddings' or 'encoder\.layer\.(0|1)\.'",
                )
            )
    return problems
