"""Imports point one way: no cycle among the package's modules, and the layers (model, reports, commands) keep
to their side. Static (ast): an import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "scalesearch"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names an import statement may refer to (``from a import b``: ``a`` and ``a.b``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module.split(".")
    if node.level:  # relative: drop one part per dot beyond the package itself
        base = base[: len(base) - node.level + is_package]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (the longest known name; the package root excluded)."""
    files = {_module_name(f): f for f in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, path.name == "__init__.py", node):
                    while target and target not in files:
                        target = target.rpartition(".")[0]
                    if target and target not in (module, "scalesearch"):
                        edges.add(target)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle (``[a, b, ..., a]``) by depth-first search, or None. A package ``__init__`` that re-exports
    its submodules is no cycle of interest, so edges into ``__init__`` modules from their own children are skipped."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if node.startswith(nxt + "."):  # a submodule importing its own package
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


GRAPH = import_graph()


def _reaches(module: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(t for t in GRAPH[module] if any(t == f or t.startswith(f + ".") for f in forbidden))


def test_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert find_cycle(GRAPH) is None


def test_the_graph_sees_imports_inside_functions():
    assert "scalesearch.draw" in GRAPH["scalesearch.commands.topologies"]  # imported inside ``run``


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("scalesearch.model")))
def test_model_imports_no_search_report_or_command(module):
    assert _reaches(module, ("scalesearch.search", "scalesearch.commands", "scalesearch.pareto")) == []
    assert [t for t in GRAPH[module] if t.startswith("scalesearch.report")] == []


REPORT_MODULES = sorted(m for m in GRAPH if m.startswith("scalesearch.report") or m == "scalesearch.pareto")


@pytest.mark.parametrize("module", REPORT_MODULES)
def test_reports_import_no_backend_training_or_model(module):
    forbidden = ("scalesearch.search.optuna_backend", "scalesearch.search.ray_backend", "scalesearch.train",
                 "scalesearch.model")
    assert _reaches(module, forbidden) == []


ENTRY_POINTS = ("scalesearch.commands", "scalesearch.cli", "scalesearch.__main__")


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not m.startswith(ENTRY_POINTS)))
def test_library_imports_no_command(module):
    assert _reaches(module, ("scalesearch.commands", "scalesearch.cli")) == []


HEAVY = ("torch", "optuna", "ray", "timm", "matplotlib", "torchvision", "pycocotools", "fvcore")


def test_help_and_trials_import_nothing_heavy():
    """``scalesearch --help`` builds every command's parser; ``trials`` reads records: neither needs torch."""
    code = ("import sys; from scalesearch.cli import build_parser; from scalesearch.records import load_records; "
            "build_parser(); print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in %r)))" % (HEAVY,))
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
