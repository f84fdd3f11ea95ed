"""The package's import graph: no circle anywhere in ``streams``, Faust only behind the worker's adapter.

Every import counts, at any depth of a module (function bodies, ``if TYPE_CHECKING:`` blocks): a circle
that only typing closes still ties two modules together for a reader. Read from the source with ``ast``,
so nothing is imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import streams

ROOT = Path(streams.__file__).parent
ADAPTER = "streams.worker.faust_adapter"
FRAMEWORK = ("faust", "mode", "aiokafka")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in ROOT.rglob("*.py")}


def _imports(name: str, path: Path, modules: frozenset[str] = frozenset()) -> set[str]:
    """Every module ``name`` imports: ``from a import b`` is ``a.b`` when that is one of ``modules``
    (the package ``a`` is then only its parent, as ``import a.b`` runs ``a`` first), else ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    names = frozenset(modules)
    return {name: _imports(name, path, names) & names - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_the_whole_package() -> None:
    graph = _graph()
    assert len(graph) > 100
    assert "streams.worker.runner" in graph["streams.worker.stage"]
    assert f"{ADAPTER}.agents" in graph["streams.worker.topology"]


def test_the_cycle_finder_finds_a_circle() -> None:
    """The checker itself: a two-module circle and a longer one are found, a chain is not."""
    graph = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert sorted(_cycles(graph)) == [["a", "b"], ["c", "d", "e"]]


def test_no_import_circle_in_the_package() -> None:
    assert _cycles(_graph()) == []


@pytest.mark.parametrize("name", sorted(n for n in _modules() if n.startswith("streams.worker")))
def test_only_the_adapter_imports_the_framework(name: str) -> None:
    if name == ADAPTER or name.startswith(f"{ADAPTER}."):
        return
    framework = {
        imported for imported in _imports(name, _modules()[name]) if imported.split(".")[0] in FRAMEWORK
    }
    assert framework == set(), f"{name} imports {sorted(framework)}: that belongs in {ADAPTER}"


def test_the_engagement_core_imports_no_io() -> None:
    io = (*FRAMEWORK, "kafka", "clickhouse_connect", "chdb", "aiohttp", "streams.worker", "streams.sinks")
    for name, path in _modules().items():
        if name.startswith("streams.engagement"):
            bad = {i for i in _imports(name, path) if i.startswith(io)}
            assert bad == set(), f"{name} imports {sorted(bad)}"
