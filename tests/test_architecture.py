"""The import graph of `parlant_router`: no circles, and the lowest layers import nothing upward.

The graph is read from the source with `ast`, so it sees every import: at module level, inside
functions, and under `if TYPE_CHECKING:`. An import of `parlant_router.x.y` is an edge to the
module `parlant_router.x.y`; `from parlant_router.x import y` is an edge to
`parlant_router.x.y` when that is a module, else to `parlant_router.x` (a package's
`__init__` is its own module).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "parlant_router"

Graph = Mapping[str, set[str]]


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of `package` (under `root`) by dotted name; `__init__` names its package."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _known_prefix(name: str, modules: Iterable[str]) -> str | None:
    """The longest prefix of dotted `name` that is a module, if any."""
    known = set(modules)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def imported_modules(
    module: str, path: Path, modules: Mapping[str, Path], package: str
) -> set[str]:
    """The modules of `package` that `module` (the file `path`) imports, anywhere in it."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # Relative: level 1 is the module's own package.
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                names.append(submodule if submodule in modules else origin)
        for name in names:
            if name != package and not name.startswith(f"{package}."):
                continue
            target = _known_prefix(name, modules)
            if target is not None and target != module:
                targets.add(target)
    return targets


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of `package` it imports."""
    modules = module_files(root, package)
    return {
        module: imported_modules(module, path, modules, package) for module, path in modules.items()
    }


def strongly_connected_components(graph: Graph) -> list[list[str]]:
    """Tarjan's algorithm; components in reverse topological order, members sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _path_within(graph: Graph, start: str, members: set[str]) -> list[str]:
    """A circle from `start` back to `start` through `members` (a strongly connected set)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for successor in sorted(graph.get(node, ())):
                if successor not in members:
                    continue
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if successor not in parents:
                    parents[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"{start} is on no circle within {sorted(members)}")


def find_cycles(graph: Graph) -> list[list[str]]:
    """One circle per strongly connected component that has one, e.g. `[a, b, a]`."""
    cycles: list[list[str]] = []
    for component in strongly_connected_components(graph):
        first = component[0]
        if len(component) > 1 or first in graph.get(first, ()):
            cycles.append(_path_within(graph, first, set(component)))
    return cycles


def _edges_outside(graph: Graph, sources: str, allowed: tuple[str, ...]) -> list[str]:
    """`a -> b` for each import of a module under `sources` whose target is not `allowed`."""

    def under(name: str, prefixes: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(f"{p}.") for p in prefixes)

    return [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if under(module, (sources,))
        for target in sorted(targets)
        if not under(target, allowed)
    ]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    built = import_graph()
    assert f"{PACKAGE}.errors" in built and f"{PACKAGE}.snowflake" in built
    return built


def test_the_package_imports_form_no_circle(graph: dict[str, set[str]]) -> None:
    cycles = find_cycles(graph)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _layer(module: str) -> str:
    """The top-level part of the package a module belongs to (`config`, `router`, ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_the_layers_import_form_no_circle(graph: dict[str, set[str]]) -> None:
    # Folders are the architecture's layers: a circle between them means an arrow running
    # back up, even when no two files import each other.
    layers: Graph = {}
    for module, targets in graph.items():
        edges = layers.setdefault(_layer(module), set())
        edges.update(_layer(t) for t in targets if _layer(t) != _layer(module))
    cycles = find_cycles(layers)
    assert not cycles, "layer circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


#: Modules that import nothing of the package: every other module may use them.
BOTTOM = (f"{PACKAGE}.errors", f"{PACKAGE}.processes")


@pytest.mark.parametrize("module", BOTTOM)
def test_the_bottom_modules_import_no_other_module_of_the_package(
    graph: dict[str, set[str]], module: str
) -> None:
    assert graph[module] == set()


def test_snowflake_imports_only_itself_and_the_bottom_modules(
    graph: dict[str, set[str]],
) -> None:
    outside = _edges_outside(graph, f"{PACKAGE}.snowflake", (f"{PACKAGE}.snowflake", *BOTTOM))
    assert not outside, "\n".join(outside)


@pytest.mark.parametrize("upper", ["router", "cli", "check", "backends", "durable"])
def test_config_never_imports_an_upper_layer(graph: dict[str, set[str]], upper: str) -> None:
    forbidden = f"{PACKAGE}.{upper}"
    upward = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if module == f"{PACKAGE}.config" or module.startswith(f"{PACKAGE}.config.")
        for target in sorted(targets)
        if target == forbidden or target.startswith(f"{forbidden}.")
    ]
    assert not upward, "\n".join(upward)


# The instruments above, on graphs where the answer is known.


def test_find_cycles_finds_a_circle_and_only_its_members() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]


def test_find_cycles_finds_a_self_import_and_passes_a_tree() -> None:
    assert find_cycles({"a": {"a"}, "b": {"a"}}) == [["a", "a"]]
    assert find_cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_the_graph_sees_imports_in_functions_type_checking_and_relative(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub.leaf import VALUE\n")
    (package / "sub" / "leaf.py").write_text("VALUE = 1\n")
    (package / "a.py").write_text("def late():\n    from pkg import b\n    return b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.a import late\n"
        "from .sub import VALUE\n"
        "from . import sub\n"
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.a", "pkg.sub"},
        "pkg.sub": {"pkg.sub.leaf"},
        "pkg.sub.leaf": set(),
    }
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]
