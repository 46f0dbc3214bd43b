"""Imports point one way: no cycle among the package's modules, and the layers (model, reports, commands) keep
to their side. Static (ast): an import inside a function counts as much as one at the top.

Two graphs. ``GRAPH``: every import statement, function bodies included (what a module may ever run).
``LOADS``: what ``import module`` runs (module and class bodies, not functions, not ``if TYPE_CHECKING``), with
the packages above each module (their ``__init__`` runs first) and third-party top-level names; followed
transitively it is exactly the set of modules an import brings in, which is what a machine without torch feels.
"""

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


def _load_time(nodes: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements among ``nodes`` that run at import time (not in functions or TYPE_CHECKING)."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found += _load_time(node.orelse)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                found += _load_time(getattr(node, field, None) or [])
    return found


def _packages_above(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def load_graph() -> dict[str, set[str]]:
    """Module -> what importing it runs directly: package modules (and the packages above them) and the
    top-level names of third-party imports (``torch`` for ``from torch import nn``)."""
    files = {_module_name(f): f for f in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        edges = set(_packages_above(module))
        for node in _load_time(ast.parse(path.read_text()).body):
            targets = _targets(module, path.name == "__init__.py", node)
            if targets[0].split(".")[0] != "scalesearch":
                edges.add(targets[0].split(".")[0])
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                edges.update([target, *_packages_above(target)] if target else [])
        graph[module] = edges - {module}
    return graph


LOADS = load_graph()


def reached(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """Everything ``start`` reaches in ``graph``, transitively: node -> the node that first led to it."""
    via: dict[str, str] = {}
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt != start and nxt not in via:
                via[nxt] = node
                stack.append(nxt)
    return via


def _forbidden_paths(graph: dict[str, set[str]], start: str, forbidden: tuple[str, ...]) -> list[str]:
    """One import chain (``start -> ... -> target``) per forbidden module or third-party name ``start`` reaches."""
    via = reached(graph, start)
    chains = []
    for target in sorted(t for t in via if any(t == f or t.startswith(f + ".") for f in forbidden)):
        chain = [target]
        while chain[-1] != start:
            chain.append(via[chain[-1]])
        chains.append(" -> ".join(reversed(chain)))
    return chains


def _reaches(module: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(t for t in GRAPH[module] if any(t == f or t.startswith(f + ".") for f in forbidden))


def test_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    assert find_cycle(GRAPH) is None


def test_the_graph_sees_imports_inside_functions():
    assert "scalesearch.topology_drawing" in GRAPH["scalesearch.commands.topologies"]  # imported inside ``run``


def test_the_load_graph_runs_module_bodies_only():
    assert "scalesearch.training.draw" not in LOADS["scalesearch.commands.topologies"]  # imported inside ``run``
    assert "scalesearch.records" not in LOADS["scalesearch.commands.trials"]  # under TYPE_CHECKING, in ``run``
    assert "torch" in LOADS["scalesearch.model.fpn"]
    assert "scalesearch.report" in LOADS["scalesearch.report.runs"]  # the package's ``__init__`` runs first


def test_forbidden_paths_follow_imports_transitively():
    graph = {"a": {"b", "json"}, "b": {"c"}, "c": {"torch"}}
    assert _forbidden_paths(graph, "a", ("torch",)) == ["a -> b -> c -> torch"]
    assert _forbidden_paths(graph, "a", ("tor",)) == []  # names, not prefixes


# The model and the pure functions that build it: specs, scaling, topologies, costs, detection.
BUILDERS = sorted(m for m in GRAPH if m.startswith("scalesearch.model") or m in (
    "scalesearch.spec", "scalesearch.scaling", "scalesearch.backbones", "scalesearch.topology",
    "scalesearch.topology_graph", "scalesearch.measure.cost", "scalesearch.training.detection"))


@pytest.mark.parametrize("module", BUILDERS)
def test_model_reaches_no_search_retraining_report_or_command(module):
    """Through every import, function bodies included: a model never depends on who searches, retrains or
    reports."""
    forbidden = ("scalesearch.search", "scalesearch.retrain", "scalesearch.report", "scalesearch.commands",
                 "scalesearch.cli", "scalesearch.pareto", "scalesearch.fidelity", "scalesearch.extrapolate")
    assert _forbidden_paths(GRAPH, module, forbidden) == []


REPORT_MODULES = sorted(m for m in GRAPH if m.startswith("scalesearch.report") or m == "scalesearch.pareto")


@pytest.mark.parametrize("module", REPORT_MODULES)
def test_reports_import_no_backend_training_or_model(module):
    forbidden = ("scalesearch.search.optuna_backend", "scalesearch.search.ray_backend", "scalesearch.training.train",
                 "scalesearch.model")
    assert _reaches(module, forbidden) == []


# What trains, builds models or samples: the engines by their top-level names, and the package modules that
# drive them (imported inside their own functions, so they load nothing heavy themselves).
ENGINES = ("torch", "timm", "optuna", "ray", "torchvision", "fvcore")
TRAINING = ("scalesearch.training.train", "scalesearch.model", "scalesearch.retrain", "scalesearch.measure.cost",
            "scalesearch.training.detection", "scalesearch.data", "scalesearch.training.checkpoint", "scalesearch.search.objective",
            "scalesearch.search.optuna_backend", "scalesearch.search.ray_backend", "scalesearch.search.estimators")
# The records and statistics reports read, below the retrainer that writes them.
RECORD_MODULES = ("scalesearch.records", "scalesearch.fidelity", "scalesearch.extrapolate", "scalesearch.backbones")


@pytest.mark.parametrize("module", [*REPORT_MODULES, *RECORD_MODULES])
def test_reports_and_records_load_nothing_that_trains_builds_or_samples(module):
    """Transitively: importing a report or record module brings in no engine and no module that drives one."""
    assert _forbidden_paths(LOADS, module, ENGINES + TRAINING) == []


@pytest.mark.parametrize("module", ["scalesearch.config", "scalesearch.config_parts"])
def test_config_loads_no_torch_timm_or_search_engine(module):
    assert _forbidden_paths(LOADS, module, ENGINES + TRAINING) == []


@pytest.mark.parametrize("module", RECORD_MODULES)
def test_records_reach_nothing_that_trains_even_inside_functions(module):
    assert _forbidden_paths(GRAPH, module, ENGINES + TRAINING) == []


RETRAINING = ("scalesearch.retrain", "scalesearch.training.train", "scalesearch.search.objective",
              "scalesearch.search.optuna_backend", "scalesearch.search.ray_backend")


@pytest.mark.parametrize("module", [*REPORT_MODULES, "scalesearch.config", "scalesearch.config_parts"])
def test_reports_and_config_reach_no_training_even_inside_functions(module):
    """Function bodies included: a report or a study check never trains, retrains or runs a backend. (Their
    validators may still import registries that live beside torch code, such as ``latency.RUNTIMES``; what
    actually loads is bounded by the load-time tests above and ``tests/test_without_engines.py``.)"""
    assert _forbidden_paths(GRAPH, module, RETRAINING) == []


ENTRY_POINTS = ("scalesearch.commands", "scalesearch.cli", "scalesearch.__main__")


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not m.startswith(ENTRY_POINTS)))
def test_library_reaches_no_command(module):
    """Transitively, function bodies included."""
    assert _forbidden_paths(GRAPH, module, ENTRY_POINTS) == []


LIBRARY_BELOW_RETRAINING = sorted(m for m in GRAPH if not m.startswith((*ENTRY_POINTS, "scalesearch.retrain")))


@pytest.mark.parametrize("module", LIBRARY_BELOW_RETRAINING)
def test_only_commands_reach_the_retrainer(module):
    """The retrainer sits above the records it writes: nothing in the library depends on it."""
    assert _forbidden_paths(GRAPH, module, ("scalesearch.retrain",)) == []


HEAVY = ("torch", "optuna", "ray", "timm", "matplotlib", "torchvision", "pycocotools", "fvcore")


def test_help_and_trials_import_nothing_heavy():
    """``scalesearch --help`` builds every command's parser; ``trials`` reads records: neither needs torch."""
    code = ("import sys; from scalesearch.cli import build_parser; from scalesearch.records import load_records; "
            "build_parser(); print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in %r)))" % (HEAVY,))
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
