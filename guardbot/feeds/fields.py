"""What one ccxt entry (ticker, mark price, bid/ask, funding rate) contributes to a symbol.

Generic: ccxt's unified keys first; a venue's raw ``info`` keys (:mod:`guardbot.feeds.venues`)
only where the unified key is absent. Each stream kind may contribute only its own fields, so a
key that means something else in another stream never leaks in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from guardbot.feeds.venues import Kind, Venue

__all__ = ["KIND_FIELDS", "Extracted", "extract", "interval_ms"]

#: The fields each stream kind may contribute (unified ccxt key in parentheses).
KIND_FIELDS: Mapping[Kind, tuple[str, ...]] = {
    "mark": ("mark", "index", "funding_rate"),
    "book": ("bid", "ask"),
    "ticker": ("last", "bid", "ask", "mark", "index", "funding_rate"),
    "funding": ("funding_rate",),
}

_UNIFIED = {
    "mark": "markPrice",
    "index": "indexPrice",
    "bid": "bid",
    "ask": "ask",
    "last": "last",
    "funding_rate": "fundingRate",
}

#: An entry belongs to its kind only if it carries one of these (ccxt's shared ``tickers``
#: cache can hold another stream's entry for the symbol).
_REQUIRED: Mapping[Kind, tuple[str, ...]] = {
    "mark": ("mark",),
    "book": ("bid", "ask"),
    "ticker": ("last", "bid", "ask", "mark"),
    "funding": ("funding_rate",),
}

_INTERVAL = re.compile(r"^(\d+)([mhd])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


@dataclass(frozen=True, slots=True)
class Extracted:
    """Price fields (raw, converted later by :class:`~guardbot.feeds.base.SymbolState`), the
    next funding time and the funding interval (ms) when the entry says them."""

    values: dict[str, object]
    next_funding_ts: int | None = None
    funding_interval_ms: int | None = None


def extract(kind: Kind, entry: object, venue: Venue) -> Extracted | None:
    """The contribution of ``entry`` to its symbol, or ``None`` if it is not of ``kind``."""
    if not isinstance(entry, Mapping):
        return None
    info = entry.get("info")
    raw_keys = venue.raw.get(kind, {})
    values: dict[str, object] = {}
    for name in KIND_FIELDS[kind]:
        value = entry.get(_UNIFIED[name])
        if value is None and isinstance(info, Mapping):
            for key in raw_keys.get(name, ()):
                value = info.get(key)
                if value not in (None, ""):
                    break
            else:
                value = None
        if value is not None:
            values[name] = value
    if not any(name in values for name in _REQUIRED[kind]):
        return None
    next_ts = None
    if kind != "book":
        if not venue.next_funding_raw_first:
            next_ts = _positive_int(entry.get("fundingTimestamp"))
        if next_ts is None and isinstance(info, Mapping):
            for key in raw_keys.get("next_funding_ts", ()):
                next_ts = _positive_int(info.get(key))
                if next_ts is not None:
                    break
        if next_ts is None and venue.next_funding_raw_first:
            next_ts = _positive_int(entry.get("fundingTimestamp"))
    return Extracted(values, next_ts, interval_ms(entry.get("interval")))


def interval_ms(value: Any) -> int | None:
    """ccxt's funding ``interval`` ("8h", "4h", "1h", "30m") in ms; ``None`` if absent or odd."""
    if not isinstance(value, str):
        return None
    match = _INTERVAL.match(value.strip())
    if match is None or int(match.group(1)) <= 0:
        return None
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def _positive_int(value: object) -> int | None:
    """A positive whole number of ms from an int, an integral float or a digit string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or number <= 0 or number != number.to_integral_value():
        return None
    return int(number)
