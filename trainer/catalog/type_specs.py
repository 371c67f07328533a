"""Type hints as JSON, and back, for checking config values without the library that
declared them.

`trainer.catalog.facts` caches the field types of sentence-transformers' training
arguments and loss constructors so that validating a config does not import it (and
torch). A hint becomes a JSON tree and is rebuilt into a hint that pydantic validates
the same way for anything a YAML file can hold (None, bools, numbers, strings, lists,
mappings):

* builtins, `None`, `Any`, unions, `Literal`, `list` / `set` / `tuple` / `dict` and
  the `collections.abc` types (`Sequence[int]`) with their arguments, and `Callable`
  are rebuilt as themselves;
* an `Enum` is rebuilt as an enum with the same members and base (`str`, `int`): in
  strict mode pydantic accepts only members of the enum itself, which YAML never holds,
  so the copy accepts and rejects exactly what the original does;
* any other class is kept by its import path and imported only when a value for that
  field is checked (`accelerate`'s `ParallelismConfig`, say).

`tests/test_library_facts.py` checks every cached hint against the original on a set
of YAML-like values.
"""

from __future__ import annotations

import collections.abc
import enum
import functools
import importlib
import json
import types
import typing
from typing import Any, Literal, Union

TypeSpec = Any
"""A JSON value: a name (`"int"`), or a one-key object (`{"union": [...]}`)."""

_NAMED: dict[str, Any] = {
    "bool": bool,
    "int": int,
    "float": float,
    "str": str,
    "bytes": bytes,
    "none": type(None),
    "any": Any,
}
_CONTAINERS: dict[Any, str] = {list: "list", set: "set", frozenset: "frozenset", dict: "dict"}


def _enum_spec(hint: type[enum.Enum]) -> TypeSpec:
    base = next((b.__name__ for b in hint.__mro__ if b in (str, int)), None)
    members = {member.name: member.value for member in hint}
    json.dumps(members)  # values must be plain data to be rebuilt
    return {"enum": {"name": hint.__name__, "base": base, "members": members}}


def to_spec(hint: Any) -> TypeSpec:
    """The JSON form of `hint` (see the module docstring)."""
    for name, named in _NAMED.items():
        if hint is named:
            return name
    if hint is None:
        return "none"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return {"union": [to_spec(arg) for arg in args]}
    if origin is Literal:
        json.dumps(list(args))
        return {"literal": list(args)}
    if hint is collections.abc.Callable or origin is collections.abc.Callable:
        return {"callable": []}
    abstract = origin or hint
    if getattr(abstract, "__module__", None) == "collections.abc":  # Sequence[int], Mapping
        return {"abc": [abstract.__name__, *(to_spec(arg) for arg in args)]}
    if hint in _CONTAINERS:
        return {_CONTAINERS[hint]: []}
    if hint is tuple:
        return {"tuple": []}
    if origin in _CONTAINERS:
        return {_CONTAINERS[origin]: [to_spec(arg) for arg in args]}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"tuple_of": to_spec(args[0])}
        return {"tuple": [to_spec(arg) for arg in args]}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_spec(hint)
    if isinstance(hint, type):
        return {"class": f"{hint.__module__}:{hint.__qualname__}"}
    raise TypeError(f"no JSON form for type hint {hint!r}")


def _import(path: str) -> type:
    module, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


@functools.cache
def _from_json(text: str) -> Any:
    return from_spec(json.loads(text), _cached=False)


def from_spec(spec: TypeSpec, *, _cached: bool = True) -> Any:
    """The hint `spec` stands for (rebuilt once per distinct spec)."""
    if _cached:
        return _from_json(json.dumps(spec, sort_keys=True))
    if isinstance(spec, str):
        return _NAMED[spec]
    ((kind, value),) = spec.items()
    if kind == "union":
        return Union[tuple(from_spec(arg, _cached=False) for arg in value)]  # noqa: UP007
    if kind == "literal":
        return Literal[tuple(value)]
    if kind == "callable":
        return collections.abc.Callable
    if kind == "abc":
        abstract = getattr(collections.abc, value[0])
        args = tuple(from_spec(arg, _cached=False) for arg in value[1:])
        return abstract[args] if args else abstract
    if kind == "class":
        return _import(value)
    if kind == "enum":
        base = {"str": str, "int": int}.get(value["base"])
        members = list(value["members"].items())
        return (
            enum.Enum(value["name"], members, type=base)
            if base
            else enum.Enum(value["name"], members)
        )
    if kind == "tuple_of":
        return tuple[from_spec(value, _cached=False), ...]
    container = {"list": list, "set": set, "frozenset": frozenset, "dict": dict, "tuple": tuple}[
        kind
    ]
    if not value:
        return container
    return container[tuple(from_spec(arg, _cached=False) for arg in value)]


def type_name(hint: Any) -> str:
    """How messages name a type: `float`, `int | None`, `Literal['joint', ...]`."""
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
