"""How a configuration key is described, attached to the dataclass field that holds it.

A field made with :func:`setting` *is* the key: its name (or ``toml``), its default, its type
(read from the annotation), its rules (choices, bounds, a pattern) and its documentation live in
one place. ``guardbot.config`` derives the TOML schema, the unknown-key checks, the
``GUARDBOT_<SECTION>_<KEY>`` overrides, ``guardbot init``'s commented file and the key reference
from these fields; a field without the metadata is not a key (secrets read from the environment).

Pure data: no I/O, importable from the core.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["KEY", "SECTION", "Key", "SectionInfo", "section", "setting"]

#: The ``dataclasses.field`` metadata names.
KEY = "guardbot.key"
SECTION = "guardbot.section"


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key's rules and documentation."""

    doc: str
    #: The key's name in the file when it differs from the field's (``margin_ratio_levels``).
    toml: str | None = None
    #: ``str``, ``path``, ``num`` (Decimal), ``float``, ``int``, ``bool``, ``strs``/``nums``
    #: (lists), ``table`` (kept as read), ``num_table`` (name -> number); None: from the type.
    kind: str | None = None
    choices: tuple[Any, ...] = ()
    #: Lower-case a string before checking ``choices`` (log levels).
    lower: bool = False
    ge: int | None = None
    gt: int | None = None
    lt: int | None = None
    #: A regular expression a string must match, and how to say it (``"an environment variable
    #: name"``).
    pattern: str | None = None
    what: str = ""
    #: A value to show in the commented file when the default is None (``"/etc/ca.pem"``).
    example: str | None = None
    #: False: no ``GUARDBOT_*`` override.
    env: bool = True


@dataclass(frozen=True, slots=True)
class SectionInfo:
    """A ``[section]`` of the file: its documentation, and for ``[accounts.<name>]`` the class of
    each named table."""

    doc: str
    each: type | None = None
    #: Built only when the file has the table (``[strategy]``).
    optional: bool = False


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    factory: Callable[[], Any] | None = None,
    toml: str | None = None,
    kind: str | None = None,
    choices: tuple[Any, ...] = (),
    lower: bool = False,
    ge: int | None = None,
    gt: int | None = None,
    lt: int | None = None,
    pattern: str | None = None,
    what: str = "",
    example: str | None = None,
    env: bool = True,
) -> Any:
    """A dataclass field that is a configuration key (no default: the key is required)."""
    key = Key(doc, toml, kind, choices, lower, ge, gt, lt, pattern, what, example, env)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={KEY: key})
    return dataclasses.field(default=default, metadata={KEY: key})


def section(
    default: Callable[[], Any] | None = None,
    *,
    doc: str,
    each: type | None = None,
    optional: bool = False,
) -> Any:
    """A dataclass field that is a ``[section]`` of the file."""
    info = SectionInfo(doc, each, optional)
    if default is None:
        return dataclasses.field(default=None, metadata={SECTION: info})
    return dataclasses.field(default_factory=default, metadata={SECTION: info})
