"""The package is layered: cli -> daemon -> adapters -> formats/runtime -> core.

Each folder of ``guardbot`` may import only from its own layer or the layers below it, and the
adapters may use one another only without a cycle. Imports inside functions count too: a lazy
import that runs against the layers is still a dependency.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import guardbot

PACKAGE = Path(guardbot.__file__).parent

#: Layer of each top-level part of the package; a part may import parts of a lower or equal rank.
RANK: dict[str, int] = {
    "errors": 0,
    "__init__": 0,
    "core": 1,
    "formats": 2,
    "runtime": 2,
    "config": 3,
    "feeds": 3,
    "store": 3,
    "mqtt": 3,
    "metrics": 3,
    "notify": 3,
    "paper": 3,
    "tiers": 3,
    "report": 3,
    "mirror": 3,
    "daemon": 4,
    "cli": 5,
    "__main__": 5,
}
ADAPTERS = {part for part, rank in RANK.items() if rank == 3}


def _part(module: str) -> str | None:
    """``guardbot.core.num`` -> ``core``; ``guardbot`` -> ``__init__``; others -> None."""
    names = module.split(".")
    if names[0] != "guardbot":
        return None
    return names[1] if len(names) > 1 else "__init__"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _owner(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_parts(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "guardbot":
                names += [f"guardbot.{a.name}" for a in node.names if a.name in RANK]
        for name in names:
            part = _part(name)
            if part is not None:
                found.add(part)
    return found


def test_every_part_of_the_package_has_a_layer() -> None:
    unknown = {_owner(path) for path in _modules()} - RANK.keys()
    assert not unknown, f"give these a layer in RANK: {sorted(unknown)}"


def test_no_relative_imports() -> None:
    relative = [
        str(path.relative_to(PACKAGE))
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level
    ]
    assert not relative


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    owner = _owner(path)
    upward = sorted(
        part
        for part in _imported_parts(path)
        if part != owner and part != "__init__" and RANK.get(part, 99) > RANK[owner]
    )
    assert not upward, f"{owner} (layer {RANK[owner]}) imports a higher layer: {upward}"


def test_adapters_form_no_cycle() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in _modules():
        owner = _owner(path)
        if owner in ADAPTERS:
            edges[owner] |= (_imported_parts(path) & ADAPTERS) - {owner}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(a for a in ADAPTERS if reaches(a, a, {a}))
    assert not cycles, f"adapters in an import cycle: {cycles} (edges {dict(edges)})"


def test_every_folder_says_what_it_holds() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(PACKAGE)} needs a docstring: what it holds, what it imports"
