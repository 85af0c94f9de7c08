"""Exceptions raised by guardbot.

Guard policies and order admission never raise on the hot path: they return decisions with codes
(see :mod:`guardbot.core.codes`). Exceptions are for bad input, bad configuration and I/O::

    GuardbotError
     ├── InputError          bad user input (a JSON field, a CLI argument); carries the field path
     │    └── TierTableError a leverage-tier table that is not usable
     ├── ConfigError         an invalid configuration file or value
     └── StoreError          the journal database cannot be opened, read or written
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "GuardbotError", "InputError", "StoreError", "TierTableError"]


class GuardbotError(Exception):
    """Base class of every error guardbot raises on purpose."""


class InputError(GuardbotError, ValueError):
    """Bad input: ``field`` names where it is (``positions[1].entryPrice``), ``message`` what."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)

    def under(self, prefix: str) -> InputError:
        """The same error with ``prefix`` put in front of its field path."""
        if not prefix:
            return self
        if not self.field:
            field = prefix
        elif self.field.startswith("["):
            field = prefix + self.field
        else:
            field = f"{prefix}.{self.field}"
        return type(self)(field, self.message)


class TierTableError(InputError):
    """A leverage-tier table that is not contiguous, not ordered, or has impossible values."""


class ConfigError(GuardbotError):
    """An invalid configuration; the message lists every problem found."""


class StoreError(GuardbotError):
    """The journal database cannot be opened, read or written; ``path`` and ``reason`` say why."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")
