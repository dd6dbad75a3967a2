"""The code's structure holds: dependencies between the packages run one way, the engine layer
depends on no step, and only the engine layer tells the engines apart."""

from __future__ import annotations

import ast
from pathlib import Path

import justice

ROOT = Path(justice.__file__).parent

# The steps and the applications built on them: the engine layer sits below every one.
STEPS = {"cli", "ingest", "link", "transform", "evaluate", "project", "explore", "web", "safety",
         "sim", "policy", "datasets"}


def _unit(path: Path) -> str:
    """The top-level package or module of justice a file belongs to."""
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """The top-level justice packages or modules a file imports, at any depth (a function's
    lazy import is a dependency too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "justice":
                names = [f"justice.{a.name}" for a in node.names]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        out |= {n.split(".")[1] for n in names if n.startswith("justice.")}
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        unit = _unit(path)
        graph.setdefault(unit, set()).update(_imports(path) - {unit})
    return graph


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_the_graph_is_read_from_the_code():
    graph = _graph()
    assert {"engine", "settings"} <= graph["transform"]
    assert "engine" in graph["ingest"] and "settings" in graph["engine"]


def test_no_import_circles_between_packages():
    graph = _graph()
    cycles = {unit: cycle for unit in graph if (cycle := _cycle_through(graph, unit))}
    assert cycles == {}


def test_the_engine_layer_depends_on_no_step():
    assert _graph()["engine"] & STEPS == set()


def test_only_the_engine_layer_tells_engines_apart():
    """No `if settings.engine == "spark"` (or a comparison with an engine's name) outside
    justice.engine and the settings that validate the name."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if _unit(path) in {"engine", "settings"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Compare):
                continue
            parts = [node.left, *node.comparators]
            named = any(isinstance(p, ast.Constant) and p.value in ("duckdb", "spark") for p in parts)
            engine = any(isinstance(p, ast.Attribute) and p.attr == "engine" for p in parts)
            if named or engine:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
