"""Which configuration file a command uses when ``-c`` is not given.

In order: ``$GUARDBOT_CONFIG``, ``./guardbot.toml``, ``$XDG_CONFIG_HOME/guardbot/guardbot.toml``
(``~/.config`` when unset), ``/etc/guardbot/guardbot.toml``; none of them: the embedded offline
defaults. The first that exists wins; ``$GUARDBOT_CONFIG`` naming a missing file is an error (a
typo there must not silently fall through to another file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from guardbot.errors import ConfigError

__all__ = ["CONFIG_ENV", "ConfigChoice", "candidates", "find_config"]

CONFIG_ENV = "GUARDBOT_CONFIG"
FILE_NAME = "guardbot.toml"


@dataclass(frozen=True, slots=True)
class ConfigChoice:
    """The file a command reads (None: the embedded defaults) and why it was chosen."""

    path: Path | None
    reason: str

    def describe(self) -> str:
        """``config/demo.toml (-c)``, ``<embedded defaults> (no configuration file found)``."""
        name = str(self.path) if self.path is not None else "<embedded defaults>"
        return f"{name} ({self.reason})"


def candidates(env: Mapping[str, str], cwd: Path) -> list[tuple[Path, str]]:
    """The places looked at without ``-c`` or ``$GUARDBOT_CONFIG``, in order, with their names."""
    xdg = env.get("XDG_CONFIG_HOME") or ""
    home = env.get("HOME")
    found = [(cwd / FILE_NAME, f"./{FILE_NAME}")]
    if xdg and Path(xdg).is_absolute():
        found.append((Path(xdg) / "guardbot" / FILE_NAME, "$XDG_CONFIG_HOME/guardbot"))
    elif home:
        found.append((Path(home) / ".config" / "guardbot" / FILE_NAME, "~/.config/guardbot"))
    found.append((Path("/etc/guardbot") / FILE_NAME, "/etc/guardbot"))
    return found


def find_config(
    explicit: str | Path | None,
    env: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> ConfigChoice:
    """The configuration file to use: ``explicit`` (``-c``) first, then the discovery order."""
    if explicit is not None:
        return ConfigChoice(Path(explicit), "-c")
    named = env.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"{CONFIG_ENV}={named}: no such file")
        return ConfigChoice(path, f"${CONFIG_ENV}")
    for path, where in candidates(env, cwd if cwd is not None else Path.cwd()):
        if path.is_file():
            return ConfigChoice(path, f"found in {where}")
    return ConfigChoice(None, "no configuration file found")
