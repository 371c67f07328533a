"""Run config files: the one YAML reader every entry point uses (ZenML run configs,
bare configs, the Kubeflow build, the preflight), with errors that name the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trainer.config.run import RunConfig


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that names a key twice (PyYAML keeps the
    last silently: two `docs:` datasets would train on one). Keys a `<<` merge brings in
    may still be overridden, as YAML intends."""


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in first:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first at line {first[key] + 1}): the second "
                    "would silently replace the first",
                    key_node.start_mark,
                )
            first[key] = key_node.start_mark.line
        except TypeError:  # an unhashable key: the safe constructor reports it
            break
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_config_document(path: str | Path) -> dict[str, Any]:
    """The YAML mapping at `path`; a missing file, bad YAML (a key named twice in one
    mapping included) or a document that is not a mapping raise `ValueError` naming the
    file (and line)."""
    try:
        document = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=UniqueKeyLoader)
    except FileNotFoundError:
        raise ValueError(f"{path}: config file not found") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ValueError(f"{path}: not valid YAML{where}: {problem}") from error
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a YAML mapping, got {type(document).__name__}")
    return document


def run_config_part(document: dict[str, Any], path: str | Path) -> Any:
    """The RunConfig part of a config document: a ZenML run config's `parameters.config`,
    or the whole document for a bare config."""
    if "parameters" not in document:
        return document
    try:
        return document["parameters"]["config"]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: a ZenML run config must hold parameters.config") from None


def load_run_config(path: str | Path) -> RunConfig:
    """Read a RunConfig from YAML: a bare config, or a ZenML run config's `parameters.config`."""
    return RunConfig.model_validate(run_config_part(read_config_document(path), path))


def model_entry(document: dict[str, Any]) -> tuple[str | None, str | None]:
    """`model.name` and `model.license` of a ZenML run config's `model:` entry, if any."""
    model = document.get("model") or {}
    if not isinstance(model, dict):
        return None, None
    return model.get("name"), model.get("license")


def reconcile_model_facts(
    config: RunConfig, *, model_name: str | None, license: str | None
) -> RunConfig:
    """Fill `output.model_name` and `card.license` from the orchestrator's model entry
    (ZenML's `model:` block), or fail when the two places disagree.

    A run config says each fact once: the orchestrator's `model.name` / `model.license`
    or the run config's own keys. Saying both is allowed only when they agree.
    """
    updates: dict[str, Any] = {}
    pairs = (
        ("name", model_name, "output.model_name", config.output.model_name),
        ("license", license, "card.license", config.card.license),
    )
    for key, outer, inner_key, inner in pairs:
        if outer is not None and inner is not None and outer != inner:
            raise ValueError(
                f"model.{key} ({outer!r}) and parameters.config.{inner_key} ({inner!r}) "
                f"disagree: set it in one place (model.{key} is enough)"
            )
        if outer is not None and inner is None:
            updates[inner_key] = outer
    if not updates:
        return config
    output = config.output.model_copy(
        update={"model_name": updates.get("output.model_name", config.output.model_name)}
    )
    card = config.card.model_copy(
        update={"license": updates.get("card.license", config.card.license)}
    )
    return config.model_copy(update={"output": output, "card": card})
