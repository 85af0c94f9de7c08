"""What one ccxt entry (ticker, mark price, bid/ask, funding rate) contributes to a symbol.

Generic: ccxt's unified keys first; a venue's raw ``info`` keys (:mod:`guardbot.feeds.venues`)
only where the unified key is absent. Each stream kind may contribute only its own fields, so a
key that means something else in another stream never leaks in.
"""

from __future__ import annotations

import functools
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


#: Per (venue, kind, fields read): (guardbot field, unified key, raw info keys) in order, the
#: names that make an entry of that kind, and the raw next-funding keys. Built once per venue
#: and kind: a frame then costs one pass over its fields, no table lookups.
_Field = tuple[str, str, tuple[str, ...]]
_Plan = tuple[tuple[_Field, ...], frozenset[str], tuple[_Field, ...], tuple[str, ...], bool]
_PLANS: dict[tuple[int, Kind, tuple[str, ...]], tuple[Venue, _Plan]] = {}


def _plan(kind: Kind, venue: Venue, names: tuple[str, ...]) -> _Plan:
    key = (id(venue), kind, names)
    cached = _PLANS.get(key)
    # the venue is kept with its plan: an id is only unique while its object lives
    if cached is not None and cached[0] is venue:
        return cached[1]
    raw_keys = venue.raw.get(kind, {})

    def spec(name: str) -> _Field:
        return (name, _UNIFIED[name], tuple(raw_keys.get(name, ())))

    plan = (
        tuple(spec(name) for name in names),
        frozenset(_REQUIRED[kind]),
        # what makes an entry of the kind but is not read (a ticker's bid/ask): looked for only
        # when nothing read does
        tuple(spec(name) for name in _REQUIRED[kind] if name not in names),
        tuple(raw_keys.get("next_funding_ts", ())),
        venue.next_funding_raw_first,
    )
    _PLANS[key] = (venue, plan)
    return plan


def extract(
    kind: Kind, entry: object, venue: Venue, names: tuple[str, ...] | None = None
) -> Extracted | None:
    """The contribution of ``entry`` to its symbol, or ``None`` if it is not of ``kind``.

    ``names``: the fields of the kind to read (default all of them); a field the caller would
    discard (a ticker's bid/ask where a book stream owns them) is then not even looked up."""
    if type(entry) is not dict and not isinstance(entry, Mapping):
        return None
    fields, required, unread, next_keys, raw_first = _plan(
        kind, venue, KIND_FIELDS[kind] if names is None else names
    )
    info = entry.get("info")
    if type(info) is not dict and not isinstance(info, Mapping):
        info = None
    values: dict[str, object] = {}
    for name, unified, raw_keys in fields:
        value = _field(entry, info, unified, raw_keys)
        if value is not None:
            values[name] = value
    if required.isdisjoint(values) and not any(
        _field(entry, info, unified, raw_keys) is not None for _n, unified, raw_keys in unread
    ):
        return None
    next_ts = None
    if kind != "book":
        if not raw_first:
            next_ts = _positive_int(entry.get("fundingTimestamp"))
        if next_ts is None and info is not None:
            for key in next_keys:
                next_ts = _positive_int(info.get(key))
                if next_ts is not None:
                    break
        if next_ts is None and raw_first:
            next_ts = _positive_int(entry.get("fundingTimestamp"))
    interval = entry.get("interval")
    return Extracted(values, next_ts, None if interval is None else interval_ms(interval))


def _field(
    entry: Mapping[str, Any],
    info: Mapping[str, Any] | None,
    unified: str,
    raw_keys: tuple[str, ...],
) -> object:
    """The unified value, else the first raw ``info`` value that is neither absent nor empty."""
    value = entry.get(unified)
    if value is None and raw_keys and info is not None:
        for key in raw_keys:
            value = info.get(key)
            if value is not None and value != "":
                return value
        return None
    return value


def interval_ms(value: Any) -> int | None:
    """ccxt's funding ``interval`` ("8h", "4h", "1h", "30m") in ms; ``None`` if absent or odd."""
    if not isinstance(value, str):
        return None
    return _interval_text(value)


@functools.lru_cache(maxsize=64)  # a venue says a handful of intervals, every funding frame
def _interval_text(value: str) -> int | None:
    match = _INTERVAL.match(value.strip())
    if match is None or int(match.group(1)) <= 0:
        return None
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def _positive_int(value: object) -> int | None:
    """A positive whole number of ms from an int, an integral float or a digit string."""
    # the usual shapes first, exactly and without a Decimal: an int, or a string of digits
    if type(value) is int:
        return value if value > 0 else None
    if type(value) is str and value.isascii() and value.isdigit():
        whole = int(value)
        return whole if whole > 0 else None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or number <= 0 or number != number.to_integral_value():
        return None
    return int(number)
