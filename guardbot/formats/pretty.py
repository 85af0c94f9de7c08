"""Readable one-line renderings of engine events, for ``simulate --pretty`` and logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from guardbot.core.num import fmt

__all__ = ["format_event", "format_prefix", "num", "pct", "price_at", "price_places"]


def num(value: Any, places: int = 4) -> str:
    """A number for people: at most ``places`` decimals, thousands separated."""
    if value is None:
        return "-"
    if not isinstance(value, Decimal):
        return str(value)
    quantum = Decimal(1).scaleb(-places)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_EVEN) if value.adjusted() < 28 else value
    text = f"{rounded:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


#: At most this many decimals for a price, whatever the samples say.
MAX_PRICE_PLACES = 8


def price_places(samples: Iterable[Any]) -> int:
    """The decimals a market quotes its prices in, from prices it quoted (mark, entry, order
    prices: the exchange sends them at its tick size): the most any normalised sample has, at
    most :data:`MAX_PRICE_PLACES`. Computed prices (a liquidation price) are not samples."""
    places = 0
    for sample in samples:
        if isinstance(sample, Decimal) and sample.is_finite():
            exponent = sample.normalize().as_tuple().exponent
            if isinstance(exponent, int):
                places = max(places, -exponent)
    return min(places, MAX_PRICE_PLACES)


def price_at(value: Any, places: int) -> str:
    """A price for people at the market's ``places`` decimals, thousands separated (trailing
    zeros kept: 29,000.50 for a 0.01 tick)."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return "-"
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = f"{rounded:,f}"
    return text.lstrip("-") if rounded.is_zero() else text


def pct(value: Any) -> str:
    return "-" if value is None else f"{num(value * 100, 2)}%"


def _time(ts: Any) -> str:
    if not isinstance(ts, int):
        return "--:--:--"
    moment = datetime.fromtimestamp(ts / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ts % 1000:03d}"


def _describe(event: Mapping[str, Any]) -> str:
    kind = event["type"]
    g = event.get
    if kind == "fill":
        return (
            f"{g('side')} {num(g('amount'))} {g('symbol')} @ {num(g('price'))} ({g('liquidity')})"
            f"  fee {num(g('fee'))}  realized {num(g('realizedPnl'))}"
            f"  -> {g('positionSide') or 'flat'} {num(g('positionContracts'))}"
        )
    if kind == "order_accepted":
        trigger = f" trigger {num(g('triggerPrice'))}" if g("triggerPrice") is not None else ""
        price = f" @ {num(g('price'))}" if g("price") is not None else ""
        amount = "all" if g("amount") is None else num(g("amount"))
        extra = "".join(
            f" {label} {num(g(key))}"
            for key, label in (("stopLossPrice", "SL"), ("takeProfitPrice", "TP"))
            if g(key) is not None
        )
        ro = " reduce-only" if g("reduceOnly") else ""
        kind_name = g("kind") or g("orderType")
        return (
            f"{g('id')}: {kind_name} {g('side')} {amount} {g('symbol')}{price}{trigger}{extra}{ro}"
        )
    if kind == "order_rejected":
        return f"{g('id') or '-'}: {g('code')}: {g('reason')}"
    if kind == "tier_tables":
        moved = "".join(
            f"; {p.get('account')} {p.get('symbol')} tier {p.get('oldTier')} -> {p.get('tier')}"
            f" liq {num(p.get('oldLiquidationPrice'))} -> {num(p.get('liquidationPrice'))}"
            for p in g("positions") or ()
        )
        return f"{g('severity') or 'warning'}: {g('reason')}{moved}"
    if kind in ("order_cancelled", "order_amended"):
        return f"{g('id')}: {g('reason')}"
    if kind == "stop_triggered":
        return (
            f"{g('id')}: {g('kind')} {g('symbol')} at {g('priceType')} {num(g('price'))}"
            f" (trigger {num(g('triggerPrice'))})"
        )
    if kind == "margin_alert":
        where = g("symbol") or "cross account"
        return (
            f"{str(g('severity')).upper()} {where}: margin ratio {pct(g('marginRatio'))}"
            f" >= {pct(g('threshold'))}; liquidation {g('liquidationSymbol') or ''}"
            f" {num(g('liquidationPrice'))} ({num(g('distancePercent'), 2)}% away)"
        )
    if kind == "margin_recovered":
        where = g("symbol") or "cross account"
        below = f", below the {pct(g('threshold'))} level" if g("threshold") is not None else ""
        return f"{where}: margin ratio back to {pct(g('marginRatio'))}{below}"
    if kind == "liquidation":
        step = f" (partial: {num(g('remainingContracts'))} left)" if event.get("partial") else ""
        return (
            f"{g('scope')} {g('symbol')} {g('side')} {num(g('contracts'))} at {num(g('price'))}"
            f" (mark {num(g('markPrice'))}){step}  loss {num(g('loss'))}"
            f"  insurance fund {num(g('insuranceFundDelta'))}"
        )
    if kind == "adl":
        return f"{g('symbol')} {g('side')}: {num(g('amount'))} beyond the insurance fund"
    if kind == "funding":
        side = f" {event['positionSide']}" if event.get("positionSide") else ""
        return (
            f"{g('symbol')}{side} rate {g('rate')} at mark {num(g('markPrice'))}:"
            f" {num(g('amount'))}"
        )
    if kind == "leverage_changed":
        return f"{g('symbol')} leverage {num(g('leverage'))}x"
    if kind == "margin_mode_changed":
        return f"{g('symbol')} {g('marginMode')}"
    if kind == "margin_changed":
        return f"{g('symbol')} {num(g('amount'))} -> isolated wallet {num(g('isolatedWallet'))}"
    if kind == "balance_changed":
        return f"{num(g('amount'))} -> wallet {num(g('wallet'))}"
    if kind == "trading_state":
        return f"{g('state')}: {g('reason')}"
    fields = ", ".join(f"{k}={_plain(v)}" for k, v in event.items() if k not in ("type", "ts"))
    return fields


def _plain(value: Any) -> str:
    return fmt(value) if isinstance(value, Decimal) else str(value)


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _final(event: Mapping[str, Any]) -> str:
    lines = ["", "final state"]
    for account_id, state in event["accounts"].items():
        usdt = state["balance"]["USDT"]
        lines.append(
            f"  account {account_id}: wallet {num(state['wallet'])}  total {num(usdt['total'])}"
            f"  free {num(usdt['free'])}  state {state['tradingState']}"
            f"  insurance fund {num(state['insuranceFund'])}"
        )
        for pos in state["positions"]:
            lines.append(
                f"    {pos['symbol']} {pos['side']} {pos['contracts']} ({pos['marginMode']})"
                f" entry {num(Decimal(pos['entryPrice']))} mark {num(Decimal(pos['markPrice']))}"
                f" uPnL {num(Decimal(pos['unrealizedPnl']))}"
                f" ratio {pct(None if pos['marginRatio'] is None else Decimal(pos['marginRatio']))}"
                f" liq {num(_dec(pos['liquidationPrice']))}"
            )
        for order in state["openOrders"]:
            lines.append(
                f"    open {order['id']}: {order.get('kind') or order['orderType']} {order['side']}"
                f" {order['symbol']} trigger {num(order.get('triggerPrice'))}"
            )
    return "\n".join(lines)


def format_event(event: Mapping[str, Any]) -> str:
    if event["type"] == "final":
        return _final(event)
    return f"{format_prefix(event)} {_describe(event)}"


def format_prefix(event: Mapping[str, Any]) -> str:
    """``<time>  <account> <type>``, the columns every event line starts with."""
    account = event.get("account") or "-"
    return f"{_time(event.get('ts'))}  {account:<8} {event['type']:<17}"
