"""Per-venue quirks of the ccxt feed, one small module each; the feed itself is generic.

ccxt parses most of what guardbot needs into its unified structures (``markPrice``,
``indexPrice``, ``bid``, ``ask``, ``last``, ``fundingRate``, ``fundingTimestamp``). What it leaves
in the raw ``info`` dict on some venues, and the stream options a venue needs, are declared here
as data: :class:`Venue`. A venue without a module gets :data:`GENERIC` (unified fields only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = ["FIELDS", "GENERIC", "Kind", "Venue", "venue_for"]

#: Which stream an entry came from: a mark-price watch, a best bid/ask watch, a (24 h) ticker,
#: or a funding-rate structure.
Kind = Literal["mark", "book", "ticker", "funding"]

#: Fields a raw ``info`` key may fill (``next_funding_ts`` in ms).
FIELDS = ("mark", "index", "bid", "ask", "last", "funding_rate", "next_funding_ts")


@dataclass(frozen=True, slots=True)
class Venue:
    """What the generic feed must know about one venue beyond ccxt's unified structures."""

    name: str
    #: ccxt exchange ids that behave like this venue.
    exchange_ids: tuple[str, ...]
    #: Per stream kind: guardbot field -> raw ``info`` keys tried in order, used only when the
    #: unified field is absent. Keyed by kind because one raw key means different things in
    #: different streams (Binance ``T``: next funding time in the mark stream, transaction time
    #: in the book ticker).
    raw: Mapping[Kind, Mapping[str, tuple[str, ...]]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: The venue's ticker stream carries the mark price (unified or raw), so a venue without a
    #: mark-price watch still gets marks over the websocket.
    ticker_has_mark: bool = False
    #: Extra params of ``watch_ticker(s)``.
    ticker_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Watch tickers one symbol at a time (``watch_tickers`` subscribes to something else there).
    tickers_per_symbol: bool = False
    #: The raw ``next_funding_ts`` keys win over ccxt's unified ``fundingTimestamp`` (KuCoin's
    #: funding stream: ccxt puts the funding time of the period in force there, the next one
    #: stays raw).
    next_funding_raw_first: bool = False
    #: REST methods (``has`` names) the fallback must not use on this venue (KuCoin's
    #: ``fetchMarkPrices`` lists spot margin marks, not the contracts').
    rest_skip: tuple[str, ...] = ()
    #: Data guardbot needs that ccxt 4.5.90 does not carry for this venue; non-empty: live
    #: (``[feed] mode = "ccxt"``) is refused at config load with this text.
    missing: str = ""
    #: Rebuilds one symbol's fetched ccxt tier rows where ccxt 4.5.90 parses the venue's answer
    #: incompletely (MEXC ``riskLimitCustom``); rows it cannot improve come back unchanged.
    #: Raises :class:`guardbot.errors.InputError` for an answer it cannot read.
    tier_rows: Callable[[Sequence[Mapping[str, Any]]], list[dict[str, Any]]] | None = None

    def __post_init__(self) -> None:
        for kind, fields in self.raw.items():
            unknown = set(fields) - set(FIELDS)
            if unknown:
                raise ValueError(
                    f"venue {self.name}: unknown raw fields {sorted(unknown)} ({kind})"
                )


GENERIC = Venue("generic", ())


def _registry() -> dict[str, Venue]:
    from guardbot.feeds.venues import (
        binance,
        bitget,
        bybit,
        gate,
        hyperliquid,
        kucoinfutures,
        mexc,
        okx,
    )

    table: dict[str, Venue] = {}
    for module in (binance, bybit, okx, mexc, bitget, gate, kucoinfutures, hyperliquid):
        venue: Venue = module.VENUE
        for exchange_id in venue.exchange_ids:
            table[exchange_id] = venue
    return table


_VENUES: dict[str, Venue] | None = None


def venue_for(exchange_id: str | None) -> Venue:
    """The quirks of ccxt exchange ``exchange_id`` (:data:`GENERIC` when guardbot has none)."""
    global _VENUES
    if _VENUES is None:
        _VENUES = _registry()
    return _VENUES.get((exchange_id or "").lower(), GENERIC)
