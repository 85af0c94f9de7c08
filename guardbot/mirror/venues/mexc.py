"""MEXC USDT-M perpetual futures' ("contract") account as the mirror reads it.

Verified against the stand-in of its private endpoints, tests/standin/mexc_private.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from guardbot.mirror.venues.base import MirrorVenue, info_of, to_decimal

__all__ = ["Mexc"]

ZERO = Decimal(0)
#: contract order ``side``: 1 open long, 2 close short, 3 open short, 4 close long
_SIDES = {
    "1": ("buy", "long"),
    "2": ("buy", "short"),
    "3": ("sell", "short"),
    "4": ("sell", "long"),
}
_CLOSING = ("2", "4")


class Mexc(MirrorVenue):
    """MEXC USDT-M perpetual futures (contract API v1) through ``ccxt.pro.mexc`` (4.5.90).

    - Keys: API key and secret (no passphrase), permission "View Order Details" / read only.
      REST requests carry ``ApiKey``, ``Request-Time`` and ``Signature`` (HMAC-SHA256 of key +
      time + sorted query); the private socket logs in with ``method: login``.
    - REST: ``GET /api/v1/private/position/open_positions`` (``holdVol`` in **contracts** of
      ``contractSize``, ``positionType`` 1 long / 2 short, ``openType`` 1 isolated / 2 cross,
      ``leverage``, ``im``, ``liquidatePrice``), ``GET /api/v1/private/account/assets``,
      ``GET /api/v1/private/position/position_mode`` (1 hedge, 2 one-way), open orders
      ``GET /api/v1/private/order/list/open_orders``, trigger orders
      ``GET /api/v1/private/planorder/list/orders?states=1`` and the position TP/SL orders
      ``GET /api/v1/private/stoporder/list/orders?is_finished=0`` (not reachable through
      ``fetch_open_orders``: called raw, each order's ``stopLossPrice`` / ``takeProfitPrice``
      kept as a stop-loss / take-profit of the whole position). No leverage call: each
      position says its own.
    - Stream: ccxt 4.5.90 has **no** ``watch_positions`` for MEXC (it drops
      ``push.personal.position``), and ``push.personal.asset`` carries no equity or
      unrealised PnL, so no wallet; ``watch_balance`` and ``watch_orders`` are followed as
      signals: every push they bring asks for a complete REST picture ``refresh_s`` later
      (``stream_triggers_rest``), and an order push applies at once (stops placed or
      cancelled; a closing order's reason). Positions, wallet and the exchange's liquidation
      price are REST: at start, after a reconnect, every ``mirror_poll_s`` and after a push.
    - Wallet: ``equity`` less ``unrealized`` less the isolated positions' ``im``.
    - Orders: ccxt reads the contract ``side`` as if it were spot's (1 buy, 2 sell): the venue
      reads it itself (1 open long, 2 close short, 3 open short, 4 close long). A trigger
      order that closes is a stop-loss or take-profit by its ``triggerType`` (1: price >=,
      2: price <=) against the side it closes.
    - Close reasons: the filled order's ``category``: 2 "system take-over delegate"
      (liquidation), 4 "ADL reduction"; 3 "close delegate" (what a TP/SL places) says no more
      than a close, read as ``order``.
    """

    id = "mexc"
    streams: tuple[str, ...] = ("balance",)
    stream_triggers_rest = True
    #: the currency list is a signed spot call the mirror does not need
    ccxt_has: Mapping[str, bool] = {"fetchCurrencies": False}
    ccxt_options: Mapping[str, Any] = {"defaultType": "swap"}

    async def fetch_settings(self, exchange: Any) -> dict[str, tuple[Decimal | None, str | None]]:
        return {}  # each position says its leverage and openType

    def order_streams(self, exchange: Any) -> list[Callable[[], Awaitable[Any]]]:
        return [exchange.watch_orders]

    async def fetch_open_orders(self, exchange: Any) -> list[dict[str, Any]]:
        orders = list(await exchange.fetch_open_orders())
        orders += await exchange.fetch_open_orders(params={"trigger": True})
        response = await exchange.contractPrivateGetStoporderListOrders({"is_finished": 0})
        for entry in response.get("data") or () if isinstance(response, Mapping) else ():
            orders += self._stop_legs(exchange, entry)
        return orders

    @staticmethod
    def _stop_legs(exchange: Any, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A position TP/SL order as one order per price it sets (ccxt has no parser for it)."""
        market = exchange.safe_market(entry.get("symbol"), None, None, "swap")
        closes_long = str(entry.get("positionType")) == "1"
        prices = [
            (leg, price)
            for leg, price in (
                ("stop_loss", to_decimal(entry.get("stopLossPrice"))),
                ("take_profit", to_decimal(entry.get("takeProfitPrice"))),
            )
            if price
        ]
        legs = []
        for leg, price in prices:
            legs.append(
                {
                    # one order with both prices is two orders here, told apart by their leg
                    "id": str(entry.get("id")) if len(prices) == 1 else f"{entry.get('id')}:{leg}",
                    "symbol": market["symbol"],
                    "status": "open",
                    "side": "sell" if closes_long else "buy",
                    "triggerPrice": str(price),
                    "amount": entry.get("vol"),
                    "reduceOnly": True,
                    "info": {**entry, "leg": leg},
                }
            )
        return legs

    def cross_wallet(self, balance: Mapping[str, Any]) -> Decimal | None:
        return self.cross_wallet_with(balance, ZERO)

    def cross_wallet_with(
        self, balance: Mapping[str, Any], isolated_margin: Decimal
    ) -> Decimal | None:
        info = balance.get("info")
        entries: Any = info.get("data") if isinstance(info, Mapping) and "data" in info else info
        if isinstance(entries, Mapping):
            entries = [entries]
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, Mapping) or entry.get("currency") != self.settle:
                continue
            equity = to_decimal(entry.get("equity"))
            if equity is None:
                return None  # push.personal.asset: no equity, no wallet
            return equity - (to_decimal(entry.get("unrealized")) or ZERO) - isolated_margin
        return None

    # ---- orders --------------------------------------------------------------------------
    @staticmethod
    def _side_code(order: Mapping[str, Any]) -> str:
        return str(info_of(order).get("side") or "")

    def order_side(self, order: Mapping[str, Any]) -> str | None:
        code = self._side_code(order)
        if code in _SIDES:
            return _SIDES[code][0]
        side = order.get("side")
        return str(side) if side in ("buy", "sell") else None

    def order_position_side(self, order: Mapping[str, Any]) -> str | None:
        info = info_of(order)
        if "leg" in info:
            return "long" if str(info.get("positionType")) == "1" else "short"
        code = self._side_code(order)
        return _SIDES[code][1] if code in _SIDES else None

    def reduce_only(self, order: Mapping[str, Any]) -> bool:
        info = info_of(order)
        return bool(order.get("reduceOnly") or info.get("reduceOnly")) or (
            self._side_code(order) in _CLOSING
        )

    def order_kind(self, order: Mapping[str, Any]) -> str | None:
        info = info_of(order)
        if info.get("leg") in ("stop_loss", "take_profit"):
            return str(info["leg"])
        trigger_type = str(info.get("triggerType") or "")
        if not trigger_type or self._side_code(order) not in _CLOSING:
            return None  # a plain order, or a trigger that opens: guards nothing
        closes = self.order_position_side(order)
        rises = trigger_type == "1"
        return "take_profit" if rises == (closes == "long") else "stop_loss"

    def closes_whole_position(self, order: Mapping[str, Any]) -> bool:
        return "leg" in info_of(order) and not to_decimal(info_of(order).get("vol"))

    def close_reason(self, order: Mapping[str, Any]) -> str:
        category = str(info_of(order).get("category") or "")
        if category == "2":
            return "liquidation"
        if category == "4":
            return "adl"
        return super().close_reason(order)
