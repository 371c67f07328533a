"""What the installed sentence-transformers accepts, known without importing it.

Validating a `RunConfig` checks the `training` block against the fields of
`SentenceTransformerTrainingArguments` and each loss's `params` against its constructor.
Reading those from the classes imports sentence-transformers, and with it torch: about
570 MiB of resident memory and seconds of start-up in every process that validates a
config, including each ZenML step pod that only stores data. So the facts are read once
per installed version set, in a separate process, and kept as JSON:

* `<cache>/library-facts-<key>.json`, `<cache>` being `$ST_FINETUNE_CACHE` or
  `~/.cache/st-finetune`; the key covers the versions of python, pydantic, transformers,
  sentence-transformers and accelerate and the source of this module, so any change makes
  a new file (never a stale answer);
* a process that has imported sentence-transformers anyway reads the facts from it
  directly; one that has not runs `python -m trainer.catalog.facts` once (the image
  build does it ahead: `k8s/Dockerfile`); if that fails, it imports the library itself,
  which is what every process did before.

Each field's type is kept as pydantic's JSON Schema of its hint (`_StrictPythonSchema`)
and values are checked against it with `jsonschema`: the same answers as strict pydantic
validation against the hint itself, for every value a YAML file can hold
(`tests/test_library_facts.py` compares the two on every cached field).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import inspect
import json
import logging
import os
import subprocess
import sys
import tempfile
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.errors import PydanticSchemaGenerationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

if typing.TYPE_CHECKING:
    from jsonschema.protocols import Validator

logger = logging.getLogger(__name__)

_VERSIONED = ("pydantic", "transformers", "sentence-transformers", "accelerate")
_SOURCES = ("facts.py",)
DISTANCE_ENUMS: dict[str, str] = {
    "TripletLoss": "TripletDistanceMetric",
    "ContrastiveLoss": "SiameseDistanceMetric",
    "OnlineContrastiveLoss": "SiameseDistanceMetric",
    "BatchAllTripletLoss": "BatchHardTripletLossDistanceFunction",
    "BatchHardTripletLoss": "BatchHardTripletLossDistanceFunction",
    "BatchSemiHardTripletLoss": "BatchHardTripletLossDistanceFunction",
    "BatchHardSoftMarginTripletLoss": "BatchHardTripletLossDistanceFunction",
}
"""Loss -> the class in `sentence_transformer.losses` whose attributes name its
`distance_metric` values."""


# --- types as JSON Schema -----------------------------------------------------------


class _StrictPythonSchema(GenerateJsonSchema):
    """pydantic's JSON Schema of a hint, as strict validation of Python values reads it.

    For the values a YAML file holds (None, bools, numbers, strings, lists, mappings),
    strict validation of the hint and its standard JSON Schema agree but for three things:

    * an enum, a dataclass, a set and a callable take only instances of their own class
      in strict mode, and no YAML value is one: they get the schema that accepts nothing,
      `{"not": {}}`, with a description naming the class;
    * a `Literal` matches by Python equality (`0` is `Literal[False]`): its schema names
      the values without a JSON type, and `_validator` compares them with `==`;
    * a YAML mapping may have keys that are not text (`1: a`): a dict's key type is
      stated (`propertyNames`), where JSON needs none.

    (A list fills a tuple here, as the config checks let it.)
    """

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        json_schema = super().literal_schema(schema)
        json_schema.pop("type", None)
        return json_schema

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema = super().dict_schema(schema)
        keys = self.generate_inner(schema["keys_schema"]) if "keys_schema" in schema else {}
        if keys:
            json_schema.setdefault("propertyNames", keys)
        return json_schema

    def _instances_only(self, what: str) -> JsonSchemaValue:
        return {"not": {}, "description": f"only {what}, which no YAML value is"}

    def enum_schema(self, schema: core_schema.EnumSchema) -> JsonSchemaValue:
        return self._instances_only(f"members of the enum {schema['cls'].__name__}")

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> JsonSchemaValue:
        return self._instances_only(f"{schema['cls'].__name__} instances")

    def set_schema(self, schema: core_schema.SetSchema) -> JsonSchemaValue:
        return self._instances_only("sets")

    def frozenset_schema(self, schema: core_schema.FrozenSetSchema) -> JsonSchemaValue:
        return self._instances_only("frozensets")

    def callable_schema(self, schema: core_schema.CallableSchema) -> JsonSchemaValue:
        return self._instances_only("callables")


def type_name(hint: Any) -> str:
    """How messages name a type: `float`, `int | None`, `Literal['joint', ...]`."""
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _mismatch(options: list[Any], instance: Any) -> Iterator[Exception]:
    """`enum` / `const` compared as pydantic compares `Literal` values: by Python equality
    (`0 == False`, `1.0 == 1`), where JSON Schema keeps bools and numbers apart."""
    from jsonschema.exceptions import ValidationError

    if not any(instance == option for option in options):
        yield ValidationError(f"{instance!r} is not one of {options!r}")


def _enum(validator: Any, enums: list[Any], instance: Any, schema: Any) -> Iterator[Exception]:
    return _mismatch(enums, instance)


def _const(validator: Any, const: Any, instance: Any, schema: Any) -> Iterator[Exception]:
    return _mismatch([const], instance)


@functools.cache
def _validator(schema: str) -> Validator:
    """A validator for one JSON Schema (given as JSON text) with the strict types of Python
    values: `integer` is an `int` (not `2.0`, not `True`), `array` a list or a tuple."""
    from jsonschema import Draft202012Validator, validators

    types = Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "integer": lambda _, value: isinstance(value, int) and not isinstance(value, bool),
            "array": lambda _, value: isinstance(value, list | tuple),
        }
    )
    strict = validators.extend(
        Draft202012Validator,
        validators={"enum": _enum, "const": _const},
        type_checker=types,
    )
    return strict(json.loads(schema))


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterFacts(_Facts):
    """One field or constructor parameter: its type as JSON Schema (None when pydantic
    cannot check it, or it has no annotation), how messages name the type, whether required."""

    type: dict[str, Any] | None = None
    type_name: str | None = None
    required: bool = False

    @classmethod
    def of(cls, hint: Any, *, required: bool = False) -> ParameterFacts:
        """The facts of a parameter annotated `hint` (None: not annotated)."""
        if hint is None:
            return cls(required=required)
        try:
            schema = TypeAdapter(hint).json_schema(schema_generator=_StrictPythonSchema)
        except PydanticSchemaGenerationError:
            return cls(required=required)  # nothing a YAML value could be checked as
        except TypeError as error:  # tests/test_library_facts.py would fail on such a field
            logger.warning("type %r not cached (%s): values for it are not checked", hint, error)
            return cls(required=required)
        return cls(type=schema, type_name=type_name(hint), required=required)

    def problem(self, value: Any) -> str | None:
        """Why `value` (from YAML) does not fit the type, or None (it fits, or there is
        no type to check)."""
        if self.type is None:
            return None
        from jsonschema.exceptions import best_match

        validator = _validator(json.dumps(self.type, sort_keys=True))
        error = best_match(validator.iter_errors(value))
        return None if error is None else error.message


class LibraryFacts(_Facts):
    """Names, types and choices of the installed sentence-transformers' training
    arguments and losses, as config validation reads them."""

    key: str
    training_arguments: dict[str, ParameterFacts]
    batch_samplers: list[str]
    multi_dataset_batch_samplers: list[str]
    losses: dict[str, dict[str, ParameterFacts]] = Field(
        description="loss class -> its constructor parameters in order (without self)"
    )
    util_names: list[str]
    """Attributes of `sentence_transformers.util` (`similarity_fct: cos_sim`)."""
    distance_metrics: dict[str, list[str]]
    """Class of `DISTANCE_ENUMS` -> its attribute names (`distance_metric: COSINE`)."""


# --- reading the facts from the library ---------------------------------------------


def _hints(target: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(target)
    except Exception:  # annotations naming objects only importable for type checkers
        return {}


def _loss_parameters(loss_class: type[Any]) -> dict[str, ParameterFacts]:
    init = loss_class.__init__
    hints = _hints(init)
    parameters = list(inspect.signature(init).parameters.values())[1:]  # without self
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {
        p.name: ParameterFacts.of(
            hints.get(p.name),
            required=p.default is inspect.Parameter.empty and p.kind in keyword,
        )
        for p in parameters
    }


def _attribute_names(target: Any) -> list[str]:
    """Every name `hasattr(target, name)` is true for, as far as `dir` and the class
    dictionaries list them (enum classes hide lambdas defined in their body from `dir`)."""
    names = set(dir(target))
    for klass in getattr(target, "__mro__", (target,)):
        names |= set(vars(klass))
    return sorted(name for name in names if hasattr(target, name))


def read_facts(key: str = "") -> LibraryFacts:
    """The facts, read from the imported library (imports sentence-transformers)."""
    from sentence_transformers import util
    from sentence_transformers.base.training_args import BatchSamplers, MultiDatasetBatchSamplers
    from sentence_transformers.sentence_transformer import losses
    from sentence_transformers.sentence_transformer.training_args import (
        SentenceTransformerTrainingArguments,
    )

    hints = _hints(SentenceTransformerTrainingArguments)
    loss_classes = {
        name: getattr(losses, name)
        for name in losses.__all__
        if isinstance(getattr(losses, name), type)
    }
    return LibraryFacts(
        key=key,
        training_arguments={
            f.name: ParameterFacts.of(hints.get(f.name))
            for f in dataclasses.fields(SentenceTransformerTrainingArguments)
        },
        batch_samplers=[member.value for member in BatchSamplers],
        multi_dataset_batch_samplers=[member.value for member in MultiDatasetBatchSamplers],
        losses={name: _loss_parameters(cls) for name, cls in loss_classes.items()},
        util_names=_attribute_names(util),
        distance_metrics={
            name: _attribute_names(getattr(losses, name)) for name in set(DISTANCE_ENUMS.values())
        },
    )


# --- the cache ----------------------------------------------------------------------


def cache_key() -> str:
    """Digest of everything the facts depend on: library versions and this code."""
    parts = {"python": sys.version.split()[0]}
    for package in _VERSIONED:
        try:
            parts[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            parts[package] = "absent"
    here = Path(__file__).parent
    for source in _SOURCES:
        parts[source] = hashlib.sha256((here / source).read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(key: str | None = None) -> Path:
    root = os.environ.get("ST_FINETUNE_CACHE") or Path.home() / ".cache" / "st-finetune"
    return Path(root) / f"library-facts-{key or cache_key()}.json"


def _write(facts: LibraryFacts, path: Path) -> bool:
    """Write atomically (several processes may race); False when the cache is read-only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8"
        ) as file:
            file.write(facts.model_dump_json())
        os.chmod(file.name, 0o644)  # readable by the other users of a shared cache
        os.replace(file.name, path)
    except OSError as error:
        logger.info("library facts not cached at %s: %s", path, error)
        return False
    return True


def _read(path: Path, key: str) -> LibraryFacts | None:
    try:
        facts = LibraryFacts.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return facts if facts.key == key else None


def _in_a_subprocess(path: Path, key: str) -> LibraryFacts | None:
    """Read the facts in a child process (its torch import dies with it)."""
    package_root = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    try:
        subprocess.run(
            [sys.executable, "-m", "trainer.catalog.facts", str(path)],
            env=env,
            capture_output=True,
            check=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as error:
        logger.warning("reading library facts in a subprocess failed (%s); importing", error)
        return None
    return _read(path, key)


@functools.cache
def library_facts() -> LibraryFacts:
    """The facts for the installed libraries: from the cache, else computed once."""
    key = cache_key()
    path = cache_path(key)
    facts = _read(path, key)
    if facts is not None:
        return facts
    if "sentence_transformers" not in sys.modules:
        facts = _in_a_subprocess(path, key)
        if facts is not None:
            return facts
    facts = read_facts(key)
    _write(facts, path)
    return facts


def main(argv: list[str] | None = None) -> int:
    """`python -m trainer.catalog.facts [PATH]`: compute and cache the facts."""
    args = sys.argv[1:] if argv is None else argv
    key = cache_key()
    path = Path(args[0]) if args else cache_path(key)
    if not _write(read_facts(key), path):
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
