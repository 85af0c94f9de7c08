"""Reading one TOML table against its schema: typed values, every problem collected.

A bad value is reported as ``<key path>: <what is wrong>`` (plus ``(from GUARDBOT_...)`` when an
environment variable supplied it) and replaced by the key's default, so one pass finds every
problem of a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from guardbot.config.schema import Field, keys
from guardbot.core.keys import unknown_key
from guardbot.core.num import parse_decimal
from guardbot.errors import InputError

__all__ = ["Problems", "Table", "describe", "read_decimal", "read_table"]


class Problems:
    """Collects ``<key path>: <message>`` lines; notes the variable a value came from."""

    def __init__(self, sources: Mapping[str, str], *, first: bool = False) -> None:
        self.sources = sources
        self.items: list[str] = []
        #: Raise :class:`InputError` at the first problem (one-line inputs such as simulate's).
        self.first = first

    def add(self, path: str, message: str) -> None:
        if self.first:
            raise InputError(path, message)
        var = self.sources.get(path) or self.sources.get(path.split("[", 1)[0])
        self.items.append(f"{path}: {message}" + (f" (from {var})" if var else ""))

    def add_input(self, exc: InputError, prefix: str) -> None:
        err = exc.under(prefix)
        self.add(err.field, err.message)


def describe(value: object) -> str:
    """What a TOML value is, for messages: ``a number``, ``a table``..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _range(value: Decimal, ge: int | None, gt: int | None, lt: int | None) -> str | None:
    """The complaint about ``value`` against the bounds, or None when it is within them."""
    parts = []
    if ge is not None:
        parts.append(f">= {ge}")
    if gt is not None:
        parts.append(f"> {gt}")
    if lt is not None:
        parts.append(f"< {lt}")
    ok = (ge is None or value >= ge) and (gt is None or value > gt) and (lt is None or value < lt)
    return None if ok else f"must be {' and '.join(parts)}, got {value}"


def read_decimal(
    value: object,
    where: str,
    problems: Problems,
    ge: int | None = None,
    gt: int | None = None,
    lt: int | None = None,
) -> Decimal | None:
    """``value`` as an exact Decimal within the bounds, or None after reporting the problem."""
    # TOML ints and floats go through str, so 0.1 is Decimal("0.1"), not the binary float.
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        number = parse_decimal(text, where)
    except InputError as exc:
        problems.add(exc.field, exc.message)
        return None
    complaint = _range(number, ge, gt, lt)
    if complaint:
        problems.add(where, complaint)
        return None
    return number


def read_table(raw: object, where: str, cls: type) -> dict[str, Any]:
    """The values of one JSON object holding ``cls``'s keys (null: the default), by field name;
    :class:`InputError` at the first problem, with the messages of the TOML file."""
    if isinstance(raw, Mapping):
        raw = {k: v for k, v in raw.items() if v is not None}
    return Table(raw, where, Problems({}, first=True), cls).values()


class Table:
    """One TOML table being read against the keys of ``cls``."""

    def __init__(self, raw: object, path: str, problems: Problems, cls: type) -> None:
        self.path = path
        self.problems = problems
        self.fields = {f.name: f for f in keys(cls)}
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            problems.add(path, f"must be a table, got {describe(raw)}")
            raw = {}
        self.raw: dict[str, Any] = raw
        for key in raw:
            if key not in self.fields:
                self.problems.add(self.where(key), unknown_key(key, self.fields))

    def where(self, key: str) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return key in self.raw

    def values(self) -> dict[str, Any]:
        """Every key's value (its default where the file has none or a bad one), by field name;
        a required key that is missing is left out."""
        out: dict[str, Any] = {}
        for f in self.fields.values():
            if f.name in self.raw:
                value = self._read(f, self.raw[f.name])
                if value is not None:
                    out[f.attr] = value
                elif not f.required:
                    out[f.attr] = f.default
            elif not f.required:
                out[f.attr] = f.default
        return out

    def _read(self, f: Field, value: Any) -> Any:
        """The value of ``f`` converted and checked, or None after reporting a problem."""
        where, key, add = self.where(f.name), f.key, self.problems.add
        kind = f.kind
        if kind in ("str", "path"):
            if not isinstance(value, str):
                add(where, f"must be a string, got {describe(value)}")
                return None
            if key.lower:
                value = value.lower()
            if key.choices and value not in key.choices:
                add(where, f"must be one of {', '.join(key.choices)}, got {value!r}")
                return None
            if key.pattern is not None and not re.match(key.pattern, value):
                add(where, f"must be {key.what}, got {value!r}")
                return None
            return Path(value) if kind == "path" else value
        if kind == "bool":
            if not isinstance(value, bool):
                add(where, f"must be true or false, got {describe(value)}")
                return None
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                add(where, f"must be an integer, got {describe(value)}")
                return None
            if key.choices and value not in key.choices:
                add(where, f"must be one of {', '.join(map(str, key.choices))}, got {value}")
                return None
            return value
        if kind in ("num", "float"):
            number = read_decimal(value, where, self.problems, key.ge, key.gt, key.lt)
            if number is None:
                return None
            return float(number) if kind == "float" else number
        if kind == "strs":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                add(where, f"must be a list of strings, got {describe(value)}")
                return None
            return tuple(value)
        if kind == "nums":
            if not isinstance(value, list):
                add(where, f"must be a list of {key.what or 'numbers'}, got {describe(value)}")
                return None
            parsed = [
                read_decimal(v, f"{where}[{i}]", self.problems, key.ge, key.gt, key.lt)
                for i, v in enumerate(value)
            ]
            if any(v is None for v in parsed):
                return None
            return tuple(parsed)
        if not isinstance(value, dict):
            add(where, f"must be a table, got {describe(value)}")
            return None
        if kind == "tables":
            assert f.each is not None
            tables = {}
            for name, spec in value.items():
                at = (
                    f"{where}.{name}"
                    if re.fullmatch(r"[A-Za-z0-9_-]+", name)
                    else (f'{where}["{name}"]')
                )
                table = Table(spec, at, self.problems, f.each)
                read = table.values()
                missing = [k.name for k in keys(f.each) if k.required and k.attr not in read]
                for key_name in missing:
                    if not table.has(key_name):  # a bad value is reported already
                        self.problems.add(f"{at}.{key_name}", "required")
                if missing:
                    continue
                try:
                    tables[name] = f.each(**read)
                except InputError as exc:  # a rule the dataclass itself checks
                    self.problems.add_input(exc, at)
            return tables
        if kind == "num_table":
            numbers = {}
            for name, item in value.items():
                at = f'{where}["{name}"]'
                number = read_decimal(item, at, self.problems, key.ge, key.gt, key.lt)
                if number is not None:
                    numbers[name] = number
            return numbers
        return value
