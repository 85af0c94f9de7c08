"""Feed events, the :class:`Feed` protocol and the per-symbol merged price state.

ccxt keeps one ``tickers[symbol]`` entry that mark-price and ticker updates overwrite in turn, so
guardbot keeps its own :class:`SymbolState` and merges mark, last, bid/ask, index and funding rate
field by field. Exchange numbers (floats or strings) become ``Decimal(str(x))`` here, once.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Protocol, Self

from guardbot.core.commands import TickCmd

__all__ = [
    "PRICE_FIELDS",
    "Feed",
    "FeedEvent",
    "FeedRecovered",
    "FeedStale",
    "SymbolState",
    "TickUpdate",
    "to_decimal",
]

#: Fields that must be finite and > 0; ``funding_rate`` only has to be finite.
PRICE_FIELDS = ("mark", "last", "bid", "ask", "index")
_ALL_FIELDS = (*PRICE_FIELDS, "funding_rate")
_FIELD_SET = frozenset(_ALL_FIELDS)

# Reasons an update is dropped (keys of ``SymbolState.dropped``).
NON_NUMERIC = "non_numeric"
NON_FINITE = "non_finite"
NON_POSITIVE = "non_positive"
TIME_BACK = "time_back"


@dataclass(frozen=True, slots=True)
class TickUpdate:
    """A merged tick; ``ts`` is the exchange's event time in ms (the local clock if it had none).

    ``next_funding_ts`` is the exchange's next funding time (ms) when the feed knows it.
    """

    ts: int
    tick: TickCmd
    next_funding_ts: int | None = None


@dataclass(frozen=True, slots=True)
class FeedStale:
    """No update for ``symbol`` (``None``: the whole feed) since ``since_ts`` (ms)."""

    symbol: str | None
    since_ts: int
    reason: str


@dataclass(frozen=True, slots=True)
class FeedRecovered:
    """Updates for ``symbol`` (``None``: the whole feed) resumed at ``ts`` (ms)."""

    symbol: str | None
    ts: int


FeedEvent = TickUpdate | FeedStale | FeedRecovered


class Feed(Protocol):
    """An async context manager that yields feed events while it is entered.

    Implementations write ``async def updates(self) -> AsyncIterator[FeedEvent]`` as an async
    generator; iteration ends when the feed ends (a replay file is exhausted) or never (live).
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    def updates(self) -> AsyncIterator[FeedEvent]: ...


class _Drop(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def to_decimal(value: object, *, positive: bool = True) -> Decimal:
    """``Decimal(str(value))``, refusing bools, non-numbers, NaN/inf and (if ``positive``) <= 0.

    Raises ``ValueError`` whose message is the drop reason.
    """
    try:
        return _convert(value, positive=positive)
    except _Drop as exc:
        raise ValueError(exc.reason) from None


def _convert(value: object, *, positive: bool) -> Decimal:
    # exchange values are floats or strings: their text directly (str of a float is its repr),
    # without the general checks below
    kind = type(value)
    if kind is str:
        text: str = value.strip()  # type: ignore[attr-defined]
    elif kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise _Drop(NON_FINITE)
        text = repr(value)
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise _Drop(NON_NUMERIC)
        if isinstance(value, float) and not math.isfinite(value):
            raise _Drop(NON_FINITE)
        text = str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _Drop(NON_NUMERIC) from None
    if not number.is_finite():
        raise _Drop(NON_FINITE)
    if positive and number <= 0:
        raise _Drop(NON_POSITIVE)
    return number


class SymbolState:
    """Latest known prices of one symbol, merged field by field from several sources.

    Each source (``"mark"``, ``"book"``, ``"ticker"``: one exchange stream each) has its own
    clock; an update older than the last accepted one *of the same source* is dropped
    (``time_back``), because different streams carry unrelated event times. An update with any
    bad field is dropped whole and counted by reason in :attr:`dropped`.
    """

    __slots__ = (
        "_raw",
        "dropped",
        "fields",
        "last_ts",
        "source_ts",
        "symbol",
    )

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.fields: dict[str, Decimal] = {}
        self.source_ts: dict[str, int] = {}
        self.last_ts: int | None = None
        self.dropped: Counter[str] = Counter()
        #: The exchange value each field was last converted from: most frames repeat most
        #: fields (a ticker that only moved its bid), and an equal value needs no conversion.
        self._raw: dict[str, object] = {}

    def apply(self, source: str, ts: int | None, values: Mapping[str, object]) -> bool:
        """Merge ``values`` (keys from ``mark, last, bid, ask, index, funding_rate``; ``None`` =
        not in this update); return ``False`` if the update was dropped."""
        if ts is not None:
            previous = self.source_ts.get(source)
            if previous is not None and ts < previous:
                self.dropped[TIME_BACK] += 1
                return False
        converted: dict[str, Decimal] = {}
        seen = self._raw
        try:
            for name, raw in values.items():
                if name not in _FIELD_SET:
                    raise KeyError(f"unknown tick fields: {sorted(set(values) - _FIELD_SET)}")
                if raw is None:
                    continue
                last_raw = seen.get(name)
                if type(raw) is type(last_raw) and raw == last_raw:
                    converted[name] = self.fields[name]
                else:
                    converted[name] = _convert(raw, positive=name != "funding_rate")
        except _Drop as exc:
            self.dropped[exc.reason] += 1
            return False
        self.fields.update(converted)
        for name in converted:
            seen[name] = values[name]
        if ts is not None:
            self.source_ts[source] = ts
            self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        return True

    def tick(self) -> TickCmd | None:
        """The merged tick, or ``None`` while no mark price is known."""
        mark = self.fields.get("mark")
        if mark is None:
            return None
        get = self.fields.get
        return TickCmd(
            symbol=self.symbol,
            mark=mark,
            last=get("last"),
            bid=get("bid"),
            ask=get("ask"),
            index=get("index"),
            funding_rate=get("funding_rate"),
        )
