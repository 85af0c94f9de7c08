"""``GUARDBOT_<SECTION>_<KEY>`` environment overrides, derived from the schema.

Each variable is parsed per its key's kind and put into the raw table before validation, so a
bad value is reported like one from the file, plus the variable's name. A variable that matches no
key is a problem too (a typo must not be silently ignored). Secrets and the variables named by
``token_env`` / ``password_env`` / ``urls_env`` are not overrides, nor are the documented default
names of those variables (``GUARDBOT_CONTROL_TOKEN``, ``GUARDBOT_NOTIFY_URLS``): compose files and
environment files pass them, possibly empty, whether or not the section uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guardbot.config.schema import Field, keys, sections
from guardbot.config.secret import EXCHANGE_SECRET_ENV

__all__ = ["ENV_PREFIX", "apply_env", "env_name"]

ENV_PREFIX = "GUARDBOT_"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}

#: Keys that name another environment variable, with their defaults: that variable is a secret.
_NAMED_SECRETS = (
    ("control", "token_env", "GUARDBOT_CONTROL_TOKEN"),
    ("mqtt", "password_env", None),
    ("notify", "urls_env", None),
)
#: The names the README and deploy/ use for those variables (GUARDBOT_NOTIFY_URLS would otherwise
#: read as the override of a key notify.urls, which does not exist).
_DEFAULT_SECRET_NAMES = ("GUARDBOT_CONTROL_TOKEN", "GUARDBOT_NOTIFY_URLS")


def env_name(*parts: str) -> str:
    """``GUARDBOT_<PART>_<PART>...``, upper-cased."""
    return ENV_PREFIX + "_".join(p.upper() for p in parts)


def _parse_bool(text: str) -> bool | None:
    lowered = text.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def targets(root: type, raw: Mapping[str, Any]) -> dict[str, tuple[tuple[str, ...], Field]]:
    """Variable name -> (key path, key) for every key that takes an override."""
    found: dict[str, tuple[tuple[str, ...], Field]] = {}
    for sec in sections(root):
        if sec.cls is None:
            continue
        if sec.info.each is not None:
            named = raw.get(sec.name)
            names = list(named) if isinstance(named, dict) else []
        else:
            names = [""]
        for name in names:
            for f in keys(sec.cls):
                if not f.key.env:
                    continue
                path = (sec.name, name, f.name) if name else (sec.name, f.name)
                found[env_name(*path)] = (path, f)
    return found


def apply_env(
    root: type, raw: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> dict[str, str]:
    """Put ``GUARDBOT_<SECTION>_<KEY>`` values into ``raw``; return key path -> variable name."""
    where = targets(root, raw)
    exempt = set(EXCHANGE_SECRET_ENV.values()) | set(_DEFAULT_SECRET_NAMES)
    for section, key, default in _NAMED_SECRETS:
        table = raw.get(section)
        name = env.get(env_name(section, key))
        if name is None:
            name = table.get(key, default) if isinstance(table, dict) else default
        if isinstance(name, str):
            exempt.add(name)
    prefixes = tuple(env_name(s.name) + "_" for s in sections(root))

    sources: dict[str, str] = {}
    for var in sorted(env):
        if not var.startswith(prefixes) or var in exempt:
            continue
        text = env[var]
        target = where.get(var)
        if target is None:
            if var.startswith(env_name("accounts") + "_"):
                hint = "GUARDBOT_ACCOUNTS_<NAME>_<KEY> for an account defined in the file"
                problems.append(f"{var}: matches no configuration key (use {hint})")
            else:
                problems.append(f"{var}: matches no configuration key")
            continue
        path, f = target
        value: Any
        if f.kind in ("table", "num_table", "tables"):
            problems.append(f"{var}: {'.'.join(path)} is a table; set it in the file")
            continue
        if f.kind == "bool":
            value = _parse_bool(text)
            if value is None:
                problems.append(f"{var}: must be one of true, false, 1, 0, yes, no, got {text!r}")
                continue
        elif f.kind == "int":
            try:
                value = int(text.strip())
            except ValueError:
                problems.append(f"{var}: must be an integer, got {text!r}")
                continue
        elif f.kind in ("strs", "nums"):
            value = [part.strip() for part in text.split(",") if part.strip()]
        elif f.kind in ("num", "float"):  # parsed (and reported with the variable) by the reader
            value = text.strip()
        else:
            value = text
        node = raw
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break  # the file has a non-table here; the reader reports it
            node = child
        else:
            node[path[-1]] = value
            sources[".".join(path)] = var
    return sources
