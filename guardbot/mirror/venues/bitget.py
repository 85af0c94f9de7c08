"""Bitget USDT-M futures' account as the mirror reads it.

Verified against the stand-in of its private endpoints, tests/standin/bitget_private.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from guardbot.mirror.venues.base import MirrorVenue, info_of, to_decimal

__all__ = ["Bitget"]

ZERO = Decimal(0)
_INST_TYPE = "USDT-FUTURES"

#: ``planType`` of Bitget's plan orders -> the protective kind (``normal_plan``: see order_kind)
_PLAN_KINDS = {
    "pos_loss": "stop_loss",
    "loss_plan": "stop_loss",
    "pos_profit": "take_profit",
    "profit_plan": "take_profit",
    "moving_plan": "trailing_stop",
    "track_plan": "trailing_stop",
}
#: plan types that close the whole position whatever its size
_WHOLE_POSITION = ("pos_loss", "pos_profit")


class Bitget(MirrorVenue):
    """Bitget USDT-M futures (classic account, API v2) through ``ccxt.pro.bitget`` (4.5.90).

    - Keys: API key, secret and the key's **passphrase** (``password_env``); a read-only key
      (permission "Read" only) is enough. ccxt signs with ``ACCESS-KEY`` / ``ACCESS-SIGN`` /
      ``ACCESS-PASSPHRASE`` headers and logs the private socket in with ``op: login``.
    - REST: ``GET /api/v2/mix/position/all-position`` (positions: ``total`` in base units,
      ``openPriceAvg``, ``leverage``, ``marginMode`` crossed/isolated, ``posMode``
      one_way_mode/hedge_mode, ``marginSize``, ``liquidationPrice``), ``GET
      /api/v2/mix/account/accounts`` (balance), ``GET /api/v2/mix/order/orders-pending`` (plain
      orders) and ``GET /api/v2/mix/order/orders-plan-pending`` three times (``planType``
      ``normal_plan`` trigger orders, ``profit_loss`` TP/SL orders, ``track_plan`` trailing
      stops). Leverage, margin mode and the position mode come with every position, REST and
      stream, so no per-symbol leverage call is made (ccxt has no ``fetchLeverages`` or
      ``fetchPositionMode`` for Bitget); an account without positions is taken as one-way.
      ``uta`` is set off: unified trading accounts answer on other (v3) endpoints, not verified.
    - Stream (``/v2/ws/private``, channels ``positions``, ``account``, ``orders`` with
      ``instType`` USDT-FUTURES): ``watch_positions``, ``watch_balance``, ``watch_orders``.
      Every ``positions`` push is a ``snapshot`` of the open positions (ccxt resets its cache on
      each), so a position that is missing asks for a REST refresh (``stream_positions_complete``)
      rather than closing it on the stream's word. Plan orders (stops, take-profits)
      stream on ``orders-algo`` (``watch_orders(params={'trigger': True})``). ccxt 4.5.90
      resolves those pushes under ``order:linear``, the plain ``watch_orders``' key, never
      under the trigger call's own ``triggerOrder:linear``: the plain watcher hands them on (and
      the trigger watcher would, were that fixed); either way the ids keep them apart.
    - Wallet: neither ``accountEquity`` (REST) nor ``equity`` (stream) is a wallet balance: both
      hold every unrealized PnL and the isolated margins. The cross wallet is equity minus
      ``unrealizedPL`` minus the isolated positions' ``marginSize`` (the isolated wallet).
    - Closing orders say why in ``tradeSide``: ``burst_close_long/short`` (hedge) and
      ``burst_buy/sell_single`` (one-way) are liquidations, ``reduce_close_*`` a forced
      reduction (also a liquidation), ``offset_close_*`` auto-deleveraging; a triggered TP/SL
      says it in ``orderSource`` (``pos_loss_market``, ``profit_market``, ...) or ``planType``.
    - In hedge mode Bitget's ``side`` names the position's direction (close a long: ``buy`` +
      ``tradeSide: close``); the side that closes is taken from ``posSide``.
    """

    id = "bitget"
    needs_password = True
    stream_positions_complete = True
    ccxt_options: Mapping[str, Any] = {"defaultType": "swap", "uta": False}

    def stream_positions(self, exchange: Any, returned: Any) -> list[Mapping[str, Any]]:
        """ccxt's cache of the USDT-FUTURES positions (reset on every snapshot), not the
        answer: a ccxt future resolved by one push and not yet awaited ignores the next push,
        so the answer can be a snapshot older than the newest the cache already holds."""
        cache = (getattr(exchange, "positions", None) or {}).get(_INST_TYPE)
        return list(cache) if cache is not None else list(returned or ())

    def order_streams(self, exchange: Any) -> list[Callable[[], Awaitable[Any]]]:
        async def plan_orders() -> Any:
            return await exchange.watch_orders(params={"trigger": True})

        return [exchange.watch_orders, plan_orders]

    async def fetch_open_orders(self, exchange: Any) -> list[dict[str, Any]]:
        orders = list(await exchange.fetch_open_orders())
        for plan in ("normal_plan", "profit_loss", "track_plan"):
            orders += await exchange.fetch_open_orders(params={"planType": plan})
        return orders

    async def fetch_settings(self, exchange: Any) -> dict[str, tuple[Decimal | None, str | None]]:
        return {}

    async def fetch_hedged(self, exchange: Any) -> bool | None:
        return None

    def cross_wallet(self, balance: Mapping[str, Any]) -> Decimal | None:
        return self.cross_wallet_with(balance, ZERO)

    def cross_wallet_with(
        self, balance: Mapping[str, Any], isolated_margin: Decimal
    ) -> Decimal | None:
        info = balance.get("info")
        # REST: the ``data`` list itself; stream: the whole push, its ``data`` list inside
        entries = info.get("data") if isinstance(info, Mapping) else info
        if not isinstance(entries, list):
            return None
        for entry in entries:
            if not isinstance(entry, Mapping) or entry.get("marginCoin") != self.settle:
                continue
            equity = to_decimal(entry.get("accountEquity", entry.get("equity")))
            upnl = to_decimal(entry.get("unrealizedPL")) or ZERO
            if equity is None:
                return None
            return equity - upnl - isolated_margin
        return None

    def isolated_wallet(self, position: Mapping[str, Any]) -> Decimal:
        info = info_of(position)
        if info.get("marginMode") != "isolated":
            return ZERO
        return to_decimal(info.get("marginSize")) or ZERO

    @staticmethod
    def _plan_type(order: Mapping[str, Any]) -> str:
        return str(info_of(order).get("planType") or "")

    def _closing(self, order: Mapping[str, Any]) -> bool:
        info = info_of(order)
        trade_side = str(info.get("tradeSide") or "")
        return (
            self._plan_type(order) in _PLAN_KINDS
            or "close" in trade_side
            or trade_side.startswith(("reduce_", "burst_"))
            or str(info.get("reduceOnly") or "").upper() in ("YES", "TRUE")
        )

    def reduce_only(self, order: Mapping[str, Any]) -> bool:
        # plan orders carry no ``reduceOnly``: a TP/SL plan or a closing trigger only reduces
        return self._closing(order)

    def order_kind(self, order: Mapping[str, Any]) -> str | None:
        plan = self._plan_type(order)
        if plan in _PLAN_KINDS:
            return _PLAN_KINDS[plan]
        if plan == "normal_plan":
            # a trigger order guards a position only when it closes one
            return "stop_loss" if self._closing(order) else None
        return None

    def order_side(self, order: Mapping[str, Any]) -> str | None:
        info = info_of(order)
        pos_side = info.get("posSide")
        if pos_side in ("long", "short") and self._closing(order):
            return "sell" if pos_side == "long" else "buy"
        side = info.get("side", order.get("side"))
        return str(side) if side in ("buy", "sell") else None

    def order_position_side(self, order: Mapping[str, Any]) -> str | None:
        side = info_of(order).get("posSide")
        return str(side) if side in ("long", "short") else None

    def closes_whole_position(self, order: Mapping[str, Any]) -> bool:
        return self._plan_type(order) in _WHOLE_POSITION

    def close_reason(self, order: Mapping[str, Any]) -> str:
        info = info_of(order)
        trade_side = str(info.get("tradeSide") or "")
        source = str(info.get("orderSource") or "")
        if trade_side.startswith(("burst_", "reduce_")) or "liquidation" in source:
            return "liquidation"
        if trade_side.startswith("offset_"):
            return "adl"
        if "loss" in source or self.order_kind(order) in ("stop_loss", "trailing_stop"):
            return "stop_loss"
        if "profit" in source or self.order_kind(order) == "take_profit":
            return "take_profit"
        return "order"
