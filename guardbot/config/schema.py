"""The configuration's schema, derived from the section dataclasses' :func:`setting` fields.

:func:`keys` lists a section's keys (TOML name, field name, rules, default); :func:`sections`
lists the file's top-level tables. The loader, the environment overrides, ``guardbot init`` and
``guardbot config check`` all read the schema from here, so a key is declared once, on its field.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from guardbot.core.settings import KEY, SECTION, Key, SectionInfo

__all__ = ["Field", "Section", "keys", "sections"]


@dataclass(frozen=True, slots=True)
class Field:
    """One key of a section: where it lives, its kind and rules, its default."""

    name: str  # the key in the file
    attr: str  # the dataclass field
    kind: str
    key: Key
    #: The default value, or ``dataclasses.MISSING`` for a required key.
    default: Any
    #: For ``tables``: the dataclass each named table is read into.
    each: type | None = None

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    @property
    def optional(self) -> bool:
        """No value unless the file sets one (the default is None)."""
        return self.default is None


@dataclass(frozen=True, slots=True)
class Section:
    """A top-level table of the file: ``[name]``, ``[name.<each>]`` or ``[[seed]]``."""

    name: str
    info: SectionInfo
    #: The dataclass read from the table (for ``accounts``: the class of each named table).
    cls: type | None


def _kind_of(hint: Any) -> str:
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _kind_of(args[0])
    simple = {bool: "bool", int: "int", float: "float", Decimal: "num", str: "str", Path: "path"}
    if hint in simple:
        return simple[hint]
    if origin is tuple and args:
        return "nums" if args[0] is Decimal else "strs"
    if origin in (dict, Mapping) or hint is dict:
        if len(args) == 2 and args[1] is Decimal:
            return "num_table"
        if len(args) == 2 and dataclasses.is_dataclass(args[1]):
            return "tables"  # name -> a table of its own keys (per-symbol settings)
        return "table"
    raise TypeError(f"no configuration kind for the type {hint!r}; give kind= in setting()")


@functools.cache
def keys(cls: type) -> tuple[Field, ...]:
    """The keys of a section dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    found: list[Field] = []
    for f in dataclasses.fields(cls):
        key = f.metadata.get(KEY)
        if key is None:
            continue
        default: Any = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        kind = key.kind or _kind_of(hints[f.name])
        each = typing.get_args(hints[f.name])[1] if kind == "tables" else None
        found.append(Field(key.toml or f.name, f.name, kind, key, default, each))
    return tuple(found)


@functools.cache
def sections(root: type) -> tuple[Section, ...]:
    """The top-level tables of the configuration class ``root``."""
    hints = typing.get_type_hints(root)
    found = []
    for f in dataclasses.fields(root):
        info = f.metadata.get(SECTION)
        if info is None:
            continue
        cls = info.each
        if cls is None:
            hint = hints[f.name]
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            candidate = args[0] if len(args) == 1 else hint
            cls = candidate if dataclasses.is_dataclass(candidate) else None
        found.append(Section(f.name, info, cls))
    return tuple(found)
