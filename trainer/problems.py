"""A problem found in a run's inputs, named by the config field a user has to change.

Checks that can run without a model return `list[Problem]` instead of raising at the
first one, so a preflight can print everything that is wrong with a config in one go.
Code that must stop raises `DataValidationError`, which carries the same field.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, ValidationError


class Problem(BaseModel):
    """One thing to fix: `field` is the dotted config path, `message` says what and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class DataValidationError(ValueError):
    """A dataset does not fit its configuration; the message names dataset, file and column.

    `field` is the config path to change (`datasets.<name>.source`, ...), for a preflight
    that reports problems by field. The error of the library that failed underneath
    (`datasets`, `pyarrow`, `json`, ...) is kept as `__cause__` for the debug log.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def as_problem(self, default_field: str = "datasets") -> Problem:
        return Problem(field=self.field or default_field, message=str(self))


def raise_problems(problems: Iterable[Problem]) -> None:
    """Raise a `ValueError` listing every problem (one per line); do nothing if none."""
    found = list(problems)
    if found:
        raise ValueError("\n".join(str(problem) for problem in found))


def problems_from_validation_error(error: ValidationError) -> list[Problem]:
    """Pydantic's errors as problems with dotted fields (`datasets.docs.eval_size`).

    Our validators report several problems at once as lines `<field>: <message>`
    (see `raise_problems`); each such line becomes its own problem.
    """
    problems = []
    for detail in error.errors():
        location = ".".join(str(part) for part in detail["loc"]) or "config"
        for line in detail["msg"].removeprefix("Value error, ").splitlines():
            field, separator, message = line.partition(": ")
            if separator and location and field.startswith(location.split(".")[0]):
                problems.append(Problem(field=field, message=message))
            else:
                problems.append(Problem(field=location, message=line))
    return problems
