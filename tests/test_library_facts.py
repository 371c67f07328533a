"""The cached library facts answer every config check exactly as the library would,
and validating a config with them does not import sentence-transformers or torch."""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import inspect
import json
import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError

from tests.conftest import REPO_ROOT
from trainer.catalog import (
    DISTANCE_ENUMS,
    LibraryFacts,
    ParameterFacts,
    cache_path,
    library_facts,
    read_facts,
    type_name,
)

PROBES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    3,
    2.5,
    -0.5,
    "x",
    "1e-5",
    "steps",
    "epoch",
    "no",
    "linear",
    "cosine",
    "adamw_torch",
    "joint",
    "query_to_doc",
    "in_batch_negatives",
    "all_negatives",
    [],
    ["a"],
    [1, 2],
    ["query_to_doc", "doc_to_query"],
    {},
    {"a": "b"},
    {"a": 1.0},
    {"a": {"b": "c"}},
    {"a": True},
]
"""Values a YAML config can hold, chosen to hit every kind of field on both sides."""


def _accepts(hint: Any, value: Any) -> bool | None:
    """What the config checks do with `value` for a field typed `hint` (None: no check);
    a list may fill a tuple, as loss params allow."""
    if hint is None:
        return None
    try:
        adapter = TypeAdapter(hint)
    except PydanticSchemaGenerationError:
        return None
    for candidate in [value, tuple(value)] if isinstance(value, list) else [value]:
        try:
            adapter.validate_python(candidate, strict=True)
            return True
        except ValidationError:
            continue
    return False


def _cached_accepts(facts: ParameterFacts, value: Any) -> bool | None:
    """What the config checks do with `value` from the cached facts (None: no check)."""
    return None if facts.type is None else facts.problem(value) is None


def _enum_values(hint: Any) -> list[Any]:
    """The values of every enum in `hint` (`IntervalStrategy | str` -> no, steps, epoch)."""
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return [member.value for member in hint]
    return [value for arg in typing.get_args(hint) for value in _enum_values(arg)]


def _live_hints(target: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target)
    except Exception:
        return {}


def _assert_same(field: str, live_hint: Any, facts: ParameterFacts) -> None:
    probes = PROBES + _enum_values(live_hint)
    for value in probes:
        live = _accepts(live_hint, value)
        cached = _cached_accepts(facts, value)
        assert live == cached, f"{field}: {value!r} live {live}, cached {cached}"
    if facts.type is not None:
        assert facts.type_name == type_name(live_hint), field


def test_training_arguments_are_checked_as_the_dataclass_would() -> None:
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments as Arguments,
    )

    facts = library_facts()
    hints = _live_hints(Arguments)
    assert list(facts.training_arguments) == [f.name for f in dataclasses.fields(Arguments)]
    for name, field in facts.training_arguments.items():
        _assert_same(f"training.{name}", hints.get(name), field)
    # Fields of each kind were really checked, not skipped: floats, bools, and unions
    # with a member that is not a plain scalar (an enum, a mapping).
    schemas = [f.type for f in facts.training_arguments.values() if f.type is not None]
    assert {"number", "boolean"} <= {schema.get("type") for schema in schemas}
    assert any(
        "type" not in member or member["type"] in ("object", "array")
        for schema in schemas
        for member in schema.get("anyOf", [])
    )


def test_loss_parameters_are_checked_as_the_constructors_would() -> None:
    from sentence_transformers.sentence_transformer import losses

    facts = library_facts()
    assert set(facts.losses) == {n for n in losses.__all__ if isinstance(getattr(losses, n), type)}
    for name, parameters in facts.losses.items():
        init = getattr(losses, name).__init__
        signature = list(inspect.signature(init).parameters.values())[1:]
        assert list(parameters) == [p.name for p in signature], name
        hints = _live_hints(init)
        for parameter in signature:
            required = parameter.default is inspect.Parameter.empty and parameter.kind in (
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                inspect.Parameter.KEYWORD_ONLY,
            )
            cached = parameters[parameter.name]
            assert cached.required == required, (name, parameter.name)
            _assert_same(f"{name}.{parameter.name}", hints.get(parameter.name), cached)


def test_names_resolved_from_text_are_the_library_attributes() -> None:
    from sentence_transformers import util
    from sentence_transformers.base.training_args import BatchSamplers, MultiDatasetBatchSamplers
    from sentence_transformers.sentence_transformer import losses

    facts = library_facts()
    assert facts.batch_samplers == [m.value for m in BatchSamplers]
    assert facts.multi_dataset_batch_samplers == [m.value for m in MultiDatasetBatchSamplers]
    for name in ["cos_sim", "dot_score", "pairwise_cos_sim", "cosine", "manhattan_sim", "nope"]:
        assert (name in facts.util_names) == hasattr(util, name), name
    for enum_name in set(DISTANCE_ENUMS.values()):
        enum = getattr(losses, enum_name)
        for name in ["COSINE", "EUCLIDEAN", "MANHATTAN", "cosine_distance", "eucledian_distance"]:
            assert (name in facts.distance_metrics[enum_name]) == hasattr(enum, name)


@pytest.mark.parametrize(
    "hint",
    [
        int,
        float | None,
        typing.Literal["a", "b"] | None,
        tuple[typing.Literal["x", "y"], ...],
        dict[str, dict[str, str]] | str | None,
        list[int],
        collections.abc.Sequence[int],
        tuple[int, str],
        typing.Any,
        typing.Union[str, None, typing.Literal[False]],  # noqa: UP007
    ],
    ids=str,
)
def test_type_schemas_round_trip(hint: Any) -> None:
    facts = ParameterFacts.of(hint)
    assert facts.type is not None
    assert ParameterFacts.model_validate(json.loads(json.dumps(facts.model_dump()))) == facts
    for value in PROBES:
        assert _accepts(hint, value) == _cached_accepts(facts, value), value


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("ST_FINETUNE_CACHE", str(tmp_path / "cache"))
    library_facts.cache_clear()
    yield tmp_path / "cache"
    library_facts.cache_clear()


def test_a_damaged_cache_file_is_replaced(empty_cache: Path) -> None:
    path = cache_path()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    facts = library_facts()
    assert LibraryFacts.model_validate_json(path.read_text()) == facts
    assert facts == read_facts(facts.key)


VALIDATE = """
import sys
import trainer.catalog.facts as facts
if sys.argv[1] == "warm":  # must read the cache, not compute anything
    facts._in_a_subprocess = facts.read_facts = None
from trainer.config.run import RunConfig
try:
    RunConfig.model_validate({
        "model": {"name_or_path": "x"},
        "datasets": {"d": {"source": {"path": "a.jsonl"}, "loss": {
            "name": "TripletLoss", "params": {"distance_metric": "cosine", "triplet_margin": 5}}}},
        "training": {"learning_rate": "1e-5", "lr_scheduler_type": "linear",
                     "per_device_train_batch_size": 0, "batch_sampler": "no_duplicates"},
    })
except ValueError as error:
    from trainer.problems import problems_from_validation_error
    for problem in problems_from_validation_error(error):
        print(problem)
print("imported:", sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules))
"""


@pytest.mark.slow
def test_validating_a_config_imports_neither_torch_nor_sentence_transformers(
    tmp_path: Path,
) -> None:
    """The first process computes the facts in a child and caches them; the next reads
    the cache. Neither imports torch itself."""
    env = {**os.environ, "ST_FINETUNE_CACHE": str(tmp_path / "cache")}
    outputs = []
    for mode in ("cold", "warm"):
        result = subprocess.run(
            [sys.executable, "-c", VALIDATE, mode],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(result.stdout.splitlines())
    for lines in outputs:
        assert lines == [
            "training.per_device_train_batch_size: must be at least 1, got 0",
            "imported: []",
        ]
    assert len(list((tmp_path / "cache").glob("library-facts-*.json"))) == 1
