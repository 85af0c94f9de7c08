"""guardbot.core is sans-I/O: no asyncio, no network or database clients, no clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import guardbot.core

CORE = Path(guardbot.core.__file__).parent
FORBIDDEN = {
    "asyncio",
    "ccxt",
    "aiomqtt",
    "aiosqlite",
    "structlog",
    "sqlite3",
    "socket",
    "time",
    "datetime",
    "os",
    "random",
    "threading",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io_and_no_clock(path: Path) -> None:
    assert not _imports(path) & FORBIDDEN


def test_core_modules_are_found() -> None:
    assert len(list(CORE.glob("*.py"))) >= 15
