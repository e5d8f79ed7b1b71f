"""The package's import graph: no cycles, and the bundled exchange kept apart from the pipeline.

Read from the source with `ast` (nothing is imported), so every import counts: module level,
inside functions, and under `if TYPE_CHECKING:`. Counting TYPE_CHECKING imports is the stricter
choice, on purpose: a cycle that only type hints close is still two modules that each need the
other (the issue's RecordWriter cycle was one), and one edit away from a runtime import cycle.
"""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import orderbook_pipeline

PACKAGE = "orderbook_pipeline"
ROOT = Path(orderbook_pipeline.__file__).resolve().parent
SIMULATOR = f"{PACKAGE}.simulator"
# The one module of the pipeline allowed to import the bundled exchange: the command line starts
# it for local runs (`serve-sim`, `demo`). Nothing Dagster loads does.
SIMULATOR_IMPORTERS = {f"{PACKAGE}.cli"}
# What the exchange may import besides itself: shared, pure definitions (venue rules, kline
# intervals), nothing of capture, storage, compaction or orchestration.
# dagster_warnings: the package's __init__ silences Dagster's known warnings (standard library
# only), so every import of any part of the package loads it.
SIMULATOR_MAY_IMPORT = (f"{PACKAGE}.venues", f"{PACKAGE}.core", f"{PACKAGE}.dagster_warnings")


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    # Names bound by `from <submodule> import name` in a package's __init__: name -> submodule.
    reexports: dict[str, str] = field(default_factory=dict)


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def load_modules(root: Path = ROOT) -> dict[str, Module]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        name, is_package = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        modules[name] = Module(name, path, is_package, tree)
    for mod in modules.values():
        if mod.is_package:
            for node in mod.tree.body:
                if isinstance(node, ast.ImportFrom):
                    source = _absolute(mod, node)
                    if source in modules and source.startswith(mod.name + "."):
                        for alias in node.names:
                            mod.reexports[alias.asname or alias.name] = source
    return modules


def _absolute(mod: Module, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = mod.name.split(".")
    if not mod.is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _packages_of(name: str) -> Iterator[str]:
    """The packages Python initialises before `name`: a.b.c -> a, a.b."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        yield ".".join(parts[:i])


def imports_of(mod: Module, modules: dict[str, Module]) -> set[str]:
    """The package's modules that `mod` imports, anywhere in its body."""
    targets: set[str] = set()
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            named = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(mod, node)
            named = []
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:  # `from package import submodule`
                    named.append(sub)
                elif source in modules and source in {*_packages_of(mod.name), mod.name}:
                    # A module importing a name from its own package's __init__: that __init__
                    # already runs (Python starts it before any of its submodules), so what is
                    # needed is the submodule that defines the name.
                    named.append(modules[source].reexports.get(alias.name, source))
                else:
                    named.append(source)
        else:
            continue
        for name in named:
            if name not in modules:
                continue  # stdlib or third party
            targets.add(name)
            # Importing a.b.c also runs a.b's __init__ (unless `mod` is inside a.b: then it
            # already runs, see above).
            targets.update(
                p for p in _packages_of(name) if p in modules and not _inside(mod.name, p)
            )
    targets.discard(mod.name)
    return targets


def _inside(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = load_modules(root)
    return {name: imports_of(mod, modules) for name, mod in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other, directly or around a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for w in graph.get(todo.pop(), ()):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


# --- the graph itself -------------------------------------------------------------------------
def test_the_graph_is_the_package_s(graph: dict[str, set[str]]) -> None:
    """Guards the tests below against passing on an empty or unresolved graph."""
    assert len(graph) > 50
    assert {f"{PACKAGE}.capture.routing", f"{PACKAGE}.capture.snapshots"} <= graph[
        f"{PACKAGE}.capture.burst"
    ]
    assert f"{PACKAGE}.capture.ports" in graph[f"{PACKAGE}.capture.symbol"]  # TYPE_CHECKING only


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        # graphlib lists each node before the one that needs it: reversed, each imports the next.
        cycle = " imports ".join(reversed(exc.args[1]))
        groups = "\n".join("  " + ", ".join(g) for g in strongly_connected(graph))
        pytest.fail(f"import cycle: {cycle}\nmodules importing each other:\n{groups}")


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The reader itself: function-level, TYPE_CHECKING, relative and `from pkg import module`
    imports make edges, a package's re-exports resolve to their submodule, and a cycle fails."""
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from orderbook_pipeline.sub.a import A\n")
    (pkg / "sub" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from orderbook_pipeline.sub.b import B\nA = 1\n"
    )
    (pkg / "sub" / "b.py").write_text("from orderbook_pipeline.sub import A\nB = 2\n")
    (pkg / "c.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "d.py").write_text("import orderbook_pipeline.c\n")
    g = import_graph(pkg)
    assert g[f"{PACKAGE}.sub.a"] == {f"{PACKAGE}.sub.b"}
    assert g[f"{PACKAGE}.sub.b"] == {f"{PACKAGE}.sub.a"}  # via the re-export, not sub/__init__
    assert g[f"{PACKAGE}.c"] == {f"{PACKAGE}.sub", f"{PACKAGE}.sub.b"}
    assert g[f"{PACKAGE}.d"] == {f"{PACKAGE}.c"}
    assert strongly_connected(g) == [[f"{PACKAGE}.sub.a", f"{PACKAGE}.sub.b"]]
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter(g).static_order())


# --- the bundled exchange apart -----------------------------------------------------------------
def _simulator_modules(graph: Iterable[str]) -> set[str]:
    return {m for m in graph if _inside(m, SIMULATOR)}


def test_only_the_command_line_imports_the_exchange(graph: dict[str, set[str]]) -> None:
    sim = _simulator_modules(graph)
    importers = {m for m, targets in graph.items() if m not in sim and targets & sim}
    assert importers <= SIMULATOR_IMPORTERS, sorted(importers - SIMULATOR_IMPORTERS)
    # And nothing reaches it through them: no pipeline module imports the command line.
    via_cli = {m for m, targets in graph.items() if m not in sim and targets & importers}
    assert not via_cli, sorted(via_cli)


def test_the_exchange_imports_nothing_of_the_pipeline(graph: dict[str, set[str]]) -> None:
    sim = _simulator_modules(graph)
    needed = set().union(*(reachable(graph, m) for m in sim)) - sim - {PACKAGE}
    foreign = {m for m in needed if not any(_inside(m, ok) for ok in SIMULATOR_MAY_IMPORT)}
    assert not foreign, sorted(foreign)


def test_importing_the_exchange_loads_no_pipeline_module() -> None:
    """The same rule as Python sees it (third-party imports included): a fresh interpreter that
    imports the whole exchange has loaded none of capture, storage, Dagster and the rest."""
    code = (
        "import sys, orderbook_pipeline.simulator as s, pkgutil, importlib\n"
        "for m in pkgutil.walk_packages(s.__path__, s.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT.parent
    ).stdout.split()
    ours = {m for m in out if _inside(m, PACKAGE) and not _inside(m, SIMULATOR)} - {PACKAGE}
    foreign = {m for m in ours if not any(_inside(m, ok) for ok in SIMULATOR_MAY_IMPORT)}
    assert not foreign, sorted(foreign)
    assert "dagster" not in out
