"""One human sentence per alert: the ``text`` field of every alert payload.

Used by notifications (a phone screen) and ``guardbot alerts``; the exact values stay in their
own fields. Numbers are rounded for people: prices to five significant digits with thousands
separators, ratios to whole percent (one decimal under 10 %), distances to one decimal::

    BTC/USDT:USDT long 0.3 @ 58,950: margin ratio 81 % (margin call at 80 %), liquidation 56,210,
    4.6 % away

Numbers may come as :class:`~decimal.Decimal` (engine events) or as decimal strings (the wire).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from guardbot.formats.pretty import num

__all__ = ["alert_text", "people_number", "people_percent", "people_price"]

_HUNDRED = Decimal(100)


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, (int, str, float)):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
    else:
        return None
    return number if number.is_finite() else None


def people_price(value: object) -> str:
    """Five significant digits, thousands separated: 58,950 · 3,012.5 · 0.12346 · ``-``."""
    number = _decimal(value)
    if number is None:
        return "-"
    if number == 0:
        return "0"
    places = max(0, 4 - number.adjusted())
    return num(number, places)


def people_number(value: object) -> str:
    """An amount as given, without trailing zeros (0.300 -> 0.3), thousands separated."""
    number = _decimal(value)
    if number is None:
        return "-"
    exponent = number.normalize().as_tuple().exponent
    places = max(0, -exponent) if isinstance(exponent, int) else 0
    return num(number, min(places, 8))


def people_percent(ratio: object, *, is_percent: bool = False) -> str:
    """``0.8123`` -> ``81 %``; under 10 % one decimal (``0.046`` -> ``4.6 %``)."""
    number = _decimal(ratio)
    if number is None:
        return "- %"
    value = number if is_percent else number * _HUNDRED
    places = 1 if abs(value) < 10 else 0
    return f"{num(value, places)} %"


def _words(name: object) -> str:
    return str(name).replace("_", " ")


def _where(event: Mapping[str, Any], position: Mapping[str, Any] | None) -> str:
    """``BTC/USDT:USDT long 0.3 @ 58,950`` (a cross alert: the position nearest to liquidation,
    then ``(main cross)``), or the symbol, or ``main cross margin`` without a position."""
    symbol = event.get("symbol")
    cross = f"{event.get('account') or 'account'} cross"
    known = position is not None and position.get("side") and _decimal(position.get("contracts"))
    if not known or position is None:
        return str(symbol) if symbol else f"{cross} margin"
    mark = event.get("markPrice")
    at = f" @ {people_price(mark)}" if _decimal(mark) is not None else ""
    lead = f"{symbol or event.get('liquidationSymbol')} {position['side']}"
    lead += f" {people_number(position['contracts'])}{at}"
    return lead if symbol else f"{lead} ({cross})"


def alert_text(event: Mapping[str, Any], position: Mapping[str, Any] | None = None) -> str:
    """The sentence for ``event``. ``position`` (``side``, ``contracts``), when the caller knows
    the position a margin alert is about (for a cross alert: the one nearest to liquidation),
    adds "long 0.3 @ mark"."""
    kind = event.get("type")
    g = event.get
    if kind == "margin_alert":
        text = (
            f"{_where(event, position)}: margin ratio {people_percent(g('marginRatio'))} "
            f"({_words(g('severity') or 'alert')} at {people_percent(g('threshold'))})"
        )
        if _decimal(g("liquidationPrice")) is not None:
            liq_symbol = g("liquidationSymbol")
            named = g("symbol") or (position is not None and not g("symbol"))
            of = f" {liq_symbol}" if liq_symbol and not named else ""
            text += f", liquidation{of} {people_price(g('liquidationPrice'))}"
            if _decimal(g("distancePercent")) is not None:
                text += f", {people_percent(g('distancePercent'), is_percent=True)} away"
        return text
    if kind == "margin_recovered":
        where = g("symbol") or f"{g('account') or 'account'} cross margin"
        return f"{where}: margin ratio back to {people_percent(g('marginRatio'))}"
    if kind == "liquidation":
        return (
            f"{g('symbol')} {g('side') or ''} {people_number(g('contracts'))} liquidated at "
            f"{people_price(g('price'))} (mark {people_price(g('markPrice'))}), "
            f"loss {people_price(g('loss'))}"
        ).replace("  ", " ")
    if kind == "stop_triggered":
        return (
            f"{g('symbol')} {_words(g('kind') or 'stop')} {g('id')} triggered: "
            f"{g('priceType') or 'price'} {people_price(g('price'))} crossed "
            f"{people_price(g('triggerPrice'))}"
        )
    if kind == "order_rejected":
        order = f"order {g('id')}" if g("id") else "order"
        return f"{order} rejected: {g('reason')} ({g('code')})"
    if kind == "trading_state":
        return f"trading {_words(g('state'))}: {g('reason')}"
    if kind == "feed_stale":
        reason = f": {g('reason')}" if g("reason") else ""
        return f"price feed stale for {g('symbol') or 'every symbol'}{reason}"
    if kind == "feed_recovered":
        return f"price feed back for {g('symbol') or 'every symbol'}"
    if kind == "tier_tables":
        return f"tier tables: {g('reason')}"
    if kind == "liquidation_imminent":
        where = g("symbol") or f"{g('account') or 'account'} cross margin"
        return (
            f"{where}: liquidation imminent on the exchange: margin ratio "
            f"{people_percent(g('marginRatio'))}, mark {people_price(g('markPrice'))}, "
            f"liquidation {people_price(g('liquidationPrice'))} "
            f"(exchange {people_price(g('exchangeLiquidationPrice'))})"
        )
    if kind == "position_closed":
        return (
            f"{g('symbol')} {g('side')} {people_number(g('contracts'))} closed on the exchange "
            f"({_words(g('reason') or 'unknown')})"
        )
    if kind == "mirror_drift":
        return (
            f"{g('symbol')}: guardbot's liquidation price {people_price(g('liquidationPrice'))} "
            f"differs from the exchange's {people_price(g('exchangeLiquidationPrice'))} by "
            f"{people_percent(g('driftPercent'), is_percent=True)} of mark "
            f"(tolerance {people_percent(g('tolerancePercent'), is_percent=True)})"
        )
    if kind == "guard_violation":
        return f"guard {g('rule')}: {g('reason')}"
    if kind == "mirror_failed":
        return f"mirror account {g('account')} stopped: {g('reason')}"
    if kind == "checkpoint":
        return f"checkpoint: {g('reason')}"
    return _words(kind or "alert")
