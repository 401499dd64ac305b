"""The layout's promise, checked on the import graph: no import cycles, and no module
imports from a layer above its own (README, "Architecture")."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "memory_proxy"
# Bottom up; a module may import from its own layer or below.
LAYERS: dict[str, int] = {
    "records": 0,
    "errors": 0,
    "logging_setup": 0,
    "config": 1,
    "stores": 2,
    "forwarding": 3,
    "identity": 3,
    "memory": 3,
    "accounting": 3,
    "api": 4,
    "browser_guard": 4,
    "proxied_request": 4,
    "pipeline": 4,
    "app": 5,
    "cli": 6,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each module of the package and the modules of ours it imports."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("memory_proxy"):
                assert node.module is not None
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[module_name(path)] = found
    return {name: {d for d in deps if d in graph and d != name} for name, deps in graph.items()}


def layer(module: str) -> int:
    top = module.split(".")[1]
    assert top in LAYERS, f"{module}: put it in a layer (tests/test_layering.py)"
    return LAYERS[top]


def test_every_module_has_a_layer() -> None:
    for module in imports():
        if module != "memory_proxy":
            layer(module)


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = [
        f"{module} -> {dependency}"
        for module, dependencies in imports().items()
        if module != "memory_proxy"
        for dependency in dependencies
        if layer(dependency) > layer(module)
    ]
    assert upward == []


def test_there_are_no_import_cycles() -> None:
    graph = imports()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(" -> ".join([*path[path.index(module) :], module]))
        if module not in done:
            for dependency in sorted(graph[module]):
                visit(dependency, [*path, module])
            done.add(module)

    for module in sorted(graph):
        visit(module, [])
