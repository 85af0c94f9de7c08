"""ccxt unified structures (market, ticker, order, trade, position, balance, ...) from engine state.

ccxt returns numbers in its unified structures as floats (``safe_number``); the paper exchange
does the same so that strategy code written for ccxt behaves identically, and keeps the exact
Decimal values as strings under ``info``. These are pure functions: no engine, no I/O.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from guardbot.core.events import to_jsonable
from guardbot.core.market import Market
from guardbot.core.num import fmt, fmt_opt
from guardbot.core.snapshot import PositionView
from guardbot.core.tiers import TierTable

__all__ = [
    "balance_structure",
    "flat_position_structure",
    "funding_rate_structure",
    "iso8601",
    "leverage_tiers_structure",
    "market_structure",
    "num",
    "position_structure",
    "ticker_structure",
]

SETTLE = "USDT"


def num(value: Decimal | None) -> float | None:
    """A Decimal as ccxt's ``safe_number`` gives it: a float (``None`` stays ``None``)."""
    return None if value is None else float(value)


def iso8601(ts: int | None) -> str | None:
    """``2024-01-01T00:00:00.000Z``, ccxt's ``iso8601`` format (milliseconds, UTC)."""
    if ts is None:
        return None
    seconds, millis = divmod(ts, 1000)
    return f"{_second(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=256)
def _second(seconds: int) -> str:
    # ticks come many per second: format each second once (a ticker per tick needs a datetime)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def market_structure(
    symbol: str,
    *,
    contract_size: Decimal,
    table: TierTable | None,
    maker: Decimal,
    taker: Decimal,
) -> dict[str, Any]:
    """A ccxt market for a USDT-margined perpetual ``BASE/USDT:USDT``.

    The engine knows no tick or lot sizes, so ``precision`` is ``None`` (no rounding) unless the
    host injects real markets into the paper exchange.
    """
    base, _, rest = symbol.partition("/")
    quote, _, settle = rest.partition(":")
    market_id = f"{base}{quote}"
    max_leverage = max((t.max_leverage for t in table.tiers), default=None) if table else None
    return {
        "id": market_id,
        "lowercaseId": market_id.lower(),
        "symbol": symbol,
        "base": base,
        "quote": quote,
        "settle": settle or quote,
        "baseId": base,
        "quoteId": quote,
        "settleId": settle or quote,
        "type": "swap",
        "spot": False,
        "margin": False,
        "swap": True,
        "future": False,
        "option": False,
        "stock": False,
        "index": None,
        "active": True,
        "contract": True,
        "linear": True,
        "inverse": False,
        "subType": "linear",
        "taker": num(taker),
        "maker": num(maker),
        "contractSize": num(contract_size),
        "expiry": None,
        "expiryDatetime": None,
        "strike": None,
        "optionType": None,
        "precision": {"amount": None, "price": None, "base": None, "quote": None},
        "limits": {
            "leverage": {"min": 1.0, "max": num(max_leverage)},
            "amount": {"min": None, "max": None},
            "price": {"min": None, "max": None},
            "cost": {"min": None, "max": None},
            "market": {"min": None, "max": None},
        },
        "marginModes": {"cross": True, "isolated": True},
        "created": None,
        "tierBased": False,
        "percentage": True,
        "feeSide": "get",
        "info": {"symbol": market_id, "contractSize": fmt(contract_size), "paper": True},
    }


def _forms(value: Decimal) -> tuple[float, str]:
    """A price as a ticker shows it: (float, exact text). The float is read from the text
    (what ``float(Decimal)`` does itself), the text is :func:`fmt`'s. No cache: prices seldom
    repeat exactly for long, and looking a ``Decimal`` up hashes it, which costs more than
    converting it."""
    text = str(value)
    if len(text) <= 40 and "E" not in text and ("." not in text or text[-1] != "0") and value:
        return float(text), text  # fmt's own fast case (plain already), inline
    return float(value), fmt(value)


def ticker_structure(market: Market) -> dict[str, Any]:
    """A ccxt ticker of ``market``'s latest prices (mark price included, as Binance's is).

    Built for every tick a strategy's ``on_tick`` sees, so it is built directly (no generic
    ``to_jsonable`` walk) and equal prices are converted to float and text once
    (:func:`_forms`).
    """
    m, la, b, a, x = market.mark, market.last, market.bid, market.ask, market.index
    mark = last = bid = ask = index = None
    mark_text = last_text = bid_text = ask_text = index_text = None
    if m is not None:
        mark, mark_text = _forms(m)
    # last, ask and index often equal the mark or the bid: converted once then
    if la is not None:
        last, last_text = (mark, mark_text) if la == m else _forms(la)
    if b is not None:
        bid, bid_text = _forms(b)
    if a is not None:
        ask, ask_text = (bid, bid_text) if a == b else _forms(a)
    if x is not None:
        index, index_text = (mark, mark_text) if x == m else _forms(x)
    symbol = market.symbol
    ts = market.ts
    if ts is None:
        stamp = None
    else:
        seconds, millis = divmod(ts, 1000)
        stamp = f"{_second(seconds)}.{millis:03d}Z"  # iso8601(ts), inline
    info: dict[str, Any] = {
        "symbol": symbol,
        "mark": mark_text,
        "last": last_text,
        "bid": bid_text,
        "ask": ask_text,
        "index": index_text,
        "fundingRate": fmt_opt(market.funding_rate),
        "ts": ts,
    }
    return {
        "symbol": symbol,
        "timestamp": ts,
        "datetime": stamp,
        "high": None,
        "low": None,
        "bid": bid,
        "bidVolume": None,
        "ask": ask,
        "askVolume": None,
        "vwap": None,
        "open": None,
        "close": last,
        "last": last,
        "previousClose": None,
        "change": None,
        "percentage": None,
        "average": None,
        "baseVolume": None,
        "quoteVolume": None,
        "markPrice": mark,
        "indexPrice": index,
        "info": info,
    }


def position_structure(
    view: PositionView,
    *,
    timestamp: int | None,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
) -> dict[str, Any]:
    """A ccxt position from the engine's margin view of it (``hedged`` in a hedged account)."""
    notional = view.notional
    percentage = view.unrealized_pnl / view.initial_margin * 100 if view.initial_margin else None
    return {
        "info": to_jsonable(view.to_json()),
        "id": None,
        "symbol": view.symbol,
        "contracts": num(view.contracts),
        "contractSize": num(view.contract_size),
        "unrealizedPnl": num(view.unrealized_pnl),
        "leverage": num(view.leverage),
        "liquidationPrice": num(view.liquidation_price),
        "collateral": num(view.collateral),
        "notional": num(notional),
        "markPrice": num(view.mark_price),
        "entryPrice": num(view.entry_price),
        "timestamp": timestamp,
        "initialMargin": num(view.initial_margin),
        "initialMarginPercentage": num(view.initial_margin / notional) if notional else None,
        "maintenanceMargin": num(view.maintenance_margin),
        "maintenanceMarginPercentage": num(view.maintenance_margin_rate),
        "marginRatio": num(view.margin_ratio),
        "datetime": iso8601(timestamp),
        "marginMode": view.margin_mode,
        "side": view.side,
        "hedged": view.hedged,
        "percentage": num(percentage),
        "stopLossPrice": num(stop_loss),
        "takeProfitPrice": num(take_profit),
        "positionMargin": num(view.isolated_wallet),
    }


def flat_position_structure(
    symbol: str, *, timestamp: int | None, margin_mode: str, leverage: Decimal
) -> dict[str, Any]:
    """The position of a flat symbol: ccxt's keys, no side and zero contracts."""
    return {
        "info": {"symbol": symbol, "contracts": "0", "marginMode": margin_mode},
        "id": None,
        "symbol": symbol,
        "contracts": 0.0,
        "contractSize": None,
        "unrealizedPnl": 0.0,
        "leverage": num(leverage),
        "liquidationPrice": None,
        "collateral": 0.0,
        "notional": 0.0,
        "markPrice": None,
        "entryPrice": None,
        "timestamp": timestamp,
        "initialMargin": 0.0,
        "initialMarginPercentage": None,
        "maintenanceMargin": 0.0,
        "maintenanceMarginPercentage": None,
        "marginRatio": None,
        "datetime": iso8601(timestamp),
        "marginMode": margin_mode,
        "side": None,
        "hedged": False,
        "percentage": None,
        "stopLossPrice": None,
        "takeProfitPrice": None,
        "positionMargin": None,
    }


def balance_structure(
    balance: Mapping[str, Mapping[str, Decimal]], *, timestamp: int | None, info: Any
) -> dict[str, Any]:
    """A ccxt balance: ``free/used/total`` per currency and the per-field maps."""
    out: dict[str, Any] = {"info": to_jsonable(info), "timestamp": timestamp}
    out["datetime"] = iso8601(timestamp)
    frees: dict[str, float | None] = {}
    useds: dict[str, float | None] = {}
    totals: dict[str, float | None] = {}
    for code, row in balance.items():
        account = {
            "free": num(row["free"]),
            "used": num(row["used"]),
            "total": num(row["total"]),
        }
        out[code] = account
        frees[code], useds[code], totals[code] = account["free"], account["used"], account["total"]
    out["free"], out["used"], out["total"] = frees, useds, totals
    return out


def leverage_tiers_structure(table: TierTable) -> list[dict[str, Any]]:
    """ccxt leverage tiers of ``table`` (notional bounds; ``info`` holds the exact values)."""
    return [
        {
            "tier": float(tier.tier),
            "symbol": table.symbol,
            "currency": SETTLE,
            "minNotional": num(tier.floor),
            "maxNotional": num(tier.cap),
            "maintenanceMarginRate": num(tier.mmr),
            "maxLeverage": num(tier.max_leverage),
            "info": to_jsonable(tier.to_ccxt(table.symbol)),
        }
        for tier in table.tiers
    ]


def funding_rate_structure(market: Market) -> dict[str, Any]:
    """A ccxt funding rate from the latest tick (the engine knows no funding schedule)."""
    return {
        "info": to_jsonable(
            {"symbol": market.symbol, "fundingRate": market.funding_rate, "mark": market.mark}
        ),
        "symbol": market.symbol,
        "markPrice": num(market.mark),
        "indexPrice": num(market.index),
        "interestRate": None,
        "estimatedSettlePrice": None,
        "timestamp": market.ts,
        "datetime": iso8601(market.ts),
        "fundingRate": num(market.funding_rate),
        "fundingTimestamp": None,
        "fundingDatetime": None,
        "nextFundingRate": None,
        "nextFundingTimestamp": None,
        "nextFundingDatetime": None,
        "previousFundingRate": None,
        "previousFundingTimestamp": None,
        "previousFundingDatetime": None,
        "interval": None,
    }
