"""MEXC futures: the mark ("fair") price stays raw in the ticker; no bid/ask watch for swaps;
the risk levels of most contracts are in a field ccxt does not read.

``sub.ticker`` pushes ``fairPrice``, ``indexPrice``, ``fundingRate``, ``bid1``/``ask1`` per
symbol; ccxt unifies bid/ask/last and leaves the other three in ``info``. ``watch_tickers``
subscribes to every market (``sub.tickers``) and its entries have no bid/ask, so tickers are
watched one symbol at a time. ``watch_bids_asks`` raises NotSupported for swaps (dropped from the
plan at start). The next funding time comes from ``sub.funding.rate`` (``watch_funding_rate``).

Tiers: ``GET /api/v1/contract/detail`` describes a contract's risk limit in one of two modes.
``INCREASE`` (the older one): ``maintenanceMarginRate``/``initialMarginRate`` step up by
``riskIncrMmr``/``riskIncrImr`` every ``riskIncrVol`` contracts up to ``maxVol``; ccxt 4.5.90's
``mexc.parse_market_leverage_tiers`` builds its tiers from those. ``CUSTOM`` (BTC_USDT, ETH_USDT
and the other recorded large contracts since 2025): the levels are listed in ``riskLimitCustom``
(``level``, ``maxVol`` in contracts, ``mmr``, ``imr``, ``maxLeverage``) and the INCREASE fields
are 0, for which ccxt returns a single tier without bounds or rate. :func:`tier_rows` rebuilds the
rows from ``riskLimitCustom`` whenever the detail lists levels (docs/rules.md §14.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from guardbot.errors import InputError
from guardbot.feeds.venues import Venue

__all__ = ["VENUE", "tier_rows"]

_LEVEL_KEYS = ("level", "maxVol", "mmr", "maxLeverage")


def tier_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """ccxt's tier rows for one contract, rebuilt from the detail's ``riskLimitCustom`` levels
    when it lists any (ccxt keeps the detail in every row's ``info``); else as ccxt made them.

    Level k covers ``maxVol_{k-1} < contracts <= maxVol_k`` (level 1 from 0); bounds stay in
    contracts, as ccxt reports MEXC tiers (value = contracts x ``contractSize`` x price). Numbers
    are passed on as the strings of what the exchange sent.
    """
    info = rows[0].get("info") if rows else None
    levels = info.get("riskLimitCustom") if isinstance(info, Mapping) else None
    if not isinstance(levels, list) or not levels:
        return [dict(row) for row in rows]
    assert isinstance(info, Mapping)
    kind = info.get("riskLimitType")
    if kind not in (None, "BY_VOLUME"):
        # the recorded levels are BY_VOLUME (maxVol in contracts); what maxVol means under
        # another type is not documented, so such a table is refused rather than guessed at
        raise InputError("riskLimitType", f"only BY_VOLUME levels are understood, got {kind!r}")
    parsed: list[tuple[Decimal, Mapping[str, Any]]] = []
    for i, level in enumerate(levels):
        where = f"riskLimitCustom[{i}]"
        if not isinstance(level, Mapping):
            raise InputError(where, "must be an object")
        for key in _LEVEL_KEYS:
            if level.get(key) is None or isinstance(level.get(key), bool):
                raise InputError(f"{where}.{key}", "is required (a number)")
        try:
            number = Decimal(str(level["level"]))
        except InvalidOperation:
            shown = repr(level["level"])
            raise InputError(f"{where}.level", f"must be a number, got {shown}") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise InputError(f"{where}.level", f"must be a whole number, got {number}")
        parsed.append((number, level))
    parsed.sort(key=lambda item: item[0])
    symbol = rows[0].get("symbol")
    currency = rows[0].get("currency")
    out: list[dict[str, Any]] = []
    floor = "0"
    for number, level in parsed:
        cap = str(level["maxVol"])
        out.append(
            {
                "tier": int(number),
                "symbol": symbol,
                "currency": currency,
                "minNotional": floor,
                "maxNotional": cap,
                "maintenanceMarginRate": str(level["mmr"]),
                "maxLeverage": str(level["maxLeverage"]),
                "info": dict(level),
            }
        )
        floor = cap
    return out


VENUE = Venue(
    name="mexc",
    exchange_ids=("mexc",),
    raw={
        "ticker": {
            "mark": ("fairPrice",),
            "index": ("indexPrice",),
            "funding_rate": ("fundingRate",),
        },
    },
    ticker_has_mark=True,
    tickers_per_symbol=True,
    tier_rows=tier_rows,
)
