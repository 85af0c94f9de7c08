"""The code blocks of README.md, by section, for the tests that check the README's snippets work."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["README", "blocks"]

README = Path(__file__).resolve().parents[1] / "README.md"
_HEADING = re.compile(r"(#{1,6}) (.+)")


def blocks(heading: str, lang: str, path: Path = README) -> list[str]:
    """The ```lang blocks of the section titled ``heading`` (up to the next heading of the same
    or a higher level; its subsections included), in order."""
    found: list[str] = []
    level: int | None = None
    seen = False
    fence: str | None = None
    body: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if fence is not None:
            if line.startswith("```"):
                if level is not None and fence == lang:
                    found.append("\n".join(body) + "\n")
                fence = None
            else:
                body.append(line)
            continue
        if line.startswith("```"):
            fence, body = line[3:].strip(), []
            continue
        match = _HEADING.fullmatch(line)
        if match:
            depth = len(match.group(1))
            if match.group(2).strip() == heading:
                level, seen = depth, True
            elif level is not None and depth <= level:
                level = None
    assert seen, f"README.md has no section {heading!r}"
    return found
