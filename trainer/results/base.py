"""The base of every stage result."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Result(BaseModel):
    """Base of all stage results: unknown keys are errors, so both sides stay in step."""

    model_config = ConfigDict(extra="forbid")


class FrozenResult(BaseModel):
    """A result that is never updated after it is made (reports, records)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
