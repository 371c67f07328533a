"""Benchmarks write their results only where `--output` says: a smoke run must never
overwrite the committed results in `benchmarks/results/`."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO_ROOT

SCRIPTS = sorted((REPO_ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_output_defaults_to_nowhere(script) -> None:  # type: ignore[no-untyped-def]
    outputs = [
        node
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", None) == "add_argument"
        and any(isinstance(a, ast.Constant) and a.value in ("--output", "--out") for a in node.args)
    ]
    for call in outputs:
        default = next((k.value for k in call.keywords if k.arg == "default"), None)
        assert isinstance(default, ast.Constant) and default.value is None, script.name
    if "write_text(" in script.read_text(encoding="utf-8") and "results" in script.read_text():
        assert outputs, f"{script.name} writes results without an --output option"
