"""The shape of the code: no import circle anywhere in the project's packages (counting
every import statement, function-local and TYPE_CHECKING ones too), and the README's
layout of `trainer/` naming exactly the packages and modules that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGES = ("trainer", "steps", "pipelines")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            modules[".".join(part for part in parts if part != "__init__")] = path
    return modules


def _import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package counts as its `__init__`)."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")
                    parts = parts[: len(parts) - node.level + (1 if is_package else 0)]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    edges[name].add(target)
    return edges


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_no_import_circle_counting_every_import_statement() -> None:
    edges = _import_graph(_modules())
    assert sum(len(targets) for targets in edges.values()) > 200  # the graph is real
    assert _circles(edges) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _readme_layout() -> dict[str, set[str]]:
    """`trainer/` entries of the README's layout block: package -> its listed modules."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    listed: dict[str, set[str]] = {}
    for line in block.splitlines():
        match = re.match(r"^  (\w+)(/|\.py)\s+(.*?)\s*--", line)
        if match is None:
            continue
        name, kind, modules = match.groups()
        listed[name + kind] = {m.strip() for m in modules.split(",") if m.strip()}
    return listed


def test_readme_layout_lists_every_trainer_package_and_module() -> None:
    trainer = REPO_ROOT / "trainer"
    actual: dict[str, set[str]] = {}
    for path in sorted(trainer.iterdir()):
        if path.is_dir() and (path / "__init__.py").exists():
            actual[path.name + "/"] = {
                module.stem
                for module in path.glob("*.py")
                if module.stem not in ("__init__", "__main__")
            }
        elif path.suffix == ".py" and path.stem != "__init__":
            actual[path.name] = set()
    assert _readme_layout() == actual
