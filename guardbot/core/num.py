"""Exact decimal helpers: parsing at the boundary and formatting for output."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import Any

from guardbot.errors import InputError

__all__ = [
    "CONTEXT",
    "ONE",
    "ZERO",
    "decimal_context",
    "fmt",
    "fmt_opt",
    "money",
    "parse_decimal",
    "shown",
]

ZERO = Decimal(0)
ONE = Decimal(1)

#: Arithmetic context of the engine. Sums and products of exchange numbers stay exact well within
#: 40 significant digits; only divisions (liquidation prices, ratios) round, at the 40th digit.
CONTEXT = Context(
    prec=40,
    rounding=ROUND_HALF_EVEN,
    Emin=-999999,
    Emax=999999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)


#: Amounts moved between wallets are kept to this many decimal places (far below any exchange's
#: precision), so that wallet sums stay exact within :data:`CONTEXT` even when an amount comes
#: from a division (isolated margin at leverage 3, PnL against an averaged entry price).
MONEY_QUANTUM = Decimal("1e-16")


def money(value: Decimal) -> Decimal:
    """``value`` rounded (half even) to :data:`MONEY_QUANTUM`."""
    return value.quantize(MONEY_QUANTUM, context=CONTEXT)


def decimal_context() -> Any:
    """A context manager that puts :data:`CONTEXT` in force for the calling thread."""
    return localcontext(CONTEXT)


#: Input numbers are bounded so that exact arithmetic on them stays within :data:`CONTEXT`.
MAX_INPUT = Decimal("1e18")
MIN_INPUT = Decimal("1e-18")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z", re.ASCII)


def parse_decimal(value: object, field: str) -> Decimal:
    """Convert a JSON number or decimal string to an exact, finite ``Decimal``.

    Floats are converted through their shortest repr: ``0.1`` becomes ``Decimal('0.1')``.
    """
    if isinstance(value, bool):
        raise InputError(field, f"must be a number, got {shown(value)}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not _NUMBER.match(text):
            if text.lower().lstrip("+-") in {"inf", "infinity", "nan", "snan"}:
                raise InputError(field, f"must be a finite number, got {shown(value)}")
            raise InputError(field, f"must be a number, got {shown(value)}")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise InputError(field, f"must be a number, got {shown(value)}") from None
        if text.lower().lstrip("+-") in {"inf", "infinity", "nan", "snan"} or not text:
            raise InputError(field, f"must be a finite number, got {shown(value)}")
    else:
        raise InputError(field, f"must be a number, got {shown(value)}")
    if not result.is_finite():
        raise InputError(field, f"must be a finite number, got {shown(value)}")
    magnitude = result.copy_abs()  # abs() would round in the caller's context and may overflow
    if magnitude > MAX_INPUT or (magnitude and magnitude < MIN_INPUT):
        raise InputError(field, f"is out of range (1e-18 to 1e18 in magnitude), got {shown(value)}")
    return result


def shown(value: object) -> str:
    """A short JSON-like rendering of an input value for error messages (always one line)."""
    if isinstance(value, str):
        text = json.dumps(value[:40], ensure_ascii=False)
        return text if len(value) <= 40 else text[:-1] + '..."'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return str(value)[:40]


def fmt(value: Decimal) -> str:
    """Plain decimal string, no exponent or trailing zeros: ``Decimal('1.50E+3')`` -> ``'1500'``."""
    text = str(value)
    # Most values (prices, amounts) already print that way: no exponent, no trailing zero after
    # a dot, few enough digits that normalize() would not round them, not zero (no "-0").
    # str() is several times cheaper than normalize() + format(), and events, samples and
    # tickers format every price they carry.
    if (
        len(text) <= 40
        and "E" not in text
        and ("." not in text or text[-1] != "0")
        and not value.is_zero()
    ):
        return text
    if value.is_zero():
        return "0"
    return format(value.normalize(CONTEXT), "f")


_BRIEF = Decimal("1e-8")


def fmt_brief(value: Decimal) -> str:
    """``value`` rounded to 8 decimal places for messages people read (reasons, logs); the
    exact value stays in the event's own fields. A value too large to carry 8 decimals within
    :data:`CONTEXT` (quantize would trap InvalidOperation) is shown whole."""
    if value.adjusted() < CONTEXT.prec - 9:
        value = value.quantize(_BRIEF, rounding=ROUND_HALF_EVEN, context=CONTEXT)
    return fmt(value)


def fmt_opt(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)
