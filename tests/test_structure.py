"""The package's shape: layers import downwards only."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SOURCE / "sessionware").rglob("*.py"):
        name = ".".join(path.relative_to(SOURCE).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The sessionware modules ``name`` imports, TYPE_CHECKING imports included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            submodules = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
            found |= submodules or ({base} & modules.keys())
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names} & modules.keys()
    found.discard(name)
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    cycles = []
    for start in graph:
        # a path from one of start's imports back to start is a cycle
        seen: set[str] = set()
        pending: list[tuple[str, tuple[str, ...]]] = [(dep, (start, dep)) for dep in graph[start]]
        while pending:
            name, trail = pending.pop()
            if name == start:
                cycles.append(" -> ".join(trail))
                break
            if name in seen:
                continue
            seen.add(name)
            pending.extend((dep, (*trail, dep)) for dep in graph[name])
    assert cycles == []


def test_the_sans_io_core_imports_no_framework_and_no_store_client() -> None:
    core = [
        "_engine",
        "_loading",
        "_plan",
        "_closing",
        "_lifecycle",
        "_steps",
        "_session",
        "_record",
        "_codec",
    ]
    forbidden = ("starlette", "flask", "werkzeug", "redis", "psycopg", "sqlite3", "asyncio", "socket")
    for name in core:
        tree = ast.parse((SOURCE / "sessionware" / f"{name}.py").read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and not node.level
        }
        assert not imported & set(forbidden), (name, imported & set(forbidden))
