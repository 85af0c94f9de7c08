"""Gate USDT perpetual futures' account as the mirror reads it.

Verified against the stand-in of its private endpoints, tests/standin/gate_private.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from guardbot.mirror.venues.base import MirrorVenue, info_of, to_decimal

__all__ = ["Gate"]

ZERO = Decimal(0)


class Gate(MirrorVenue):
    """Gate USDT-settled perpetual swaps (API v4, classic futures account) through
    ``ccxt.pro.gate`` (4.5.90).

    - Keys: API key and secret (APIv4 key, "Perpetual futures" read-only). REST requests are
      signed with ``KEY`` / ``Timestamp`` / ``SIGN`` (HMAC-SHA512); private websocket channels
      carry an ``auth`` block on every subscribe and name the **user id** in their payload:
      ccxt refuses to subscribe without ``uid``, so the mirror reads it first from
      ``GET /api/v4/account/detail`` (``user_id``), and concludes the unified-account check ccxt
      would make there (``key.mode`` 2); a unified account is not verified (other endpoints).
    - REST: ``GET /futures/usdt/positions``, ``GET /futures/usdt/accounts`` (balance),
      ``GET /futures/usdt/orders?status=open`` and ``GET /futures/usdt/price_orders?status=open``
      (price-triggered orders: stops and take-profits). Sizes are **contracts**
      (``quanto_multiplier`` base units each): ccxt's ``contracts`` x ``contractSize`` is the
      base amount. No leverage call (ccxt's ``fetch_leverages`` is spot margin only on Gate):
      each position says ``leverage`` (isolated) or ``leverage`` 0 and ``cross_leverage_limit``
      (cross), and its ``mode``: ``single`` (one-way), ``dual_long`` / ``dual_short`` (hedge).
    - Stream (``/v4/ws/usdt``): ``futures.positions``, ``futures.balances``, ``futures.orders``
      and ``futures.autoorders`` (``watch_orders(params={'trigger': True})``). A position
      update names the side only by the sign of ``size``: a closed one (size 0) in hedge mode
      is told apart by its ``mode``.
    - Wallet: ``total`` (REST) / ``balance`` (``futures.balances``) is the wallet without
      unrealised PnL, but with the isolated positions' margin inside: the cross wallet is that
      less their ``margin`` (the isolated wallet).
    - Stops: a price-triggered order's ``order_type`` (``close-long-order``,
      ``close-short-position``, ``plan-close-long-position``, ...) says which side it closes
      and whether the whole position; stop-loss or take-profit is the trigger ``rule``
      against that side (``rule`` 1: price >= trigger, 2: price <= trigger; a long's stop
      triggers on a fall).
    - Close reasons: a filled order's ``text`` ``liquidation`` (or ``is_liq``), ``pm_liquidate``
      and the like are liquidations, ``auto_deleveraging`` (or ``finish_as``
      ``auto_deleveraged``) ADL; a stop or take-profit is told by its price-triggered order
      finishing (``futures.autoorders``), which comes before the order it placed.
    """

    id = "gate"
    #: the currency list is a call the mirror does not need (ccxt makes it in load_markets)
    ccxt_has: Mapping[str, bool] = {"fetchCurrencies": False}
    ccxt_options: Mapping[str, Any] = {
        "defaultType": "swap",
        # ccxt would read /account/detail in load_markets (for the unified-account check) and
        # throw the user id away; the mirror reads it once itself (fetch_settings)
        "unifiedAccount": False,
        "watchPositions": {"fetchPositionsSnapshot": False, "awaitPositionsSnapshot": False},
    }

    async def fetch_settings(self, exchange: Any) -> dict[str, tuple[Decimal | None, str | None]]:
        """No leverage call (each position says its own); the user id the private channels
        need, once."""
        if not getattr(exchange, "uid", None):
            detail = await exchange.privateAccountGetDetail()
            if isinstance(detail, Mapping):
                if detail.get("user_id") is not None:
                    exchange.uid = str(detail["user_id"])
                key = detail.get("key")
                # what ccxt's own check concludes (key mode 2: a unified account)
                mode = key.get("mode") if isinstance(key, Mapping) else None
                exchange.options["unifiedAccount"] = str(mode) == "2"
        return {}

    async def fetch_hedged(self, exchange: Any) -> bool | None:
        return None  # each position's ``mode`` says it

    def order_streams(self, exchange: Any) -> list[Callable[[], Awaitable[Any]]]:
        async def price_orders() -> Any:
            return await exchange.watch_orders(params={"trigger": True})

        return [exchange.watch_orders, price_orders]

    async def fetch_open_orders(self, exchange: Any) -> list[dict[str, Any]]:
        plain = await exchange.fetch_open_orders()
        triggered = await exchange.fetch_open_orders(params={"trigger": True})
        return [*plain, *triggered]

    def position(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        info = info_of(raw)
        mode = str(info.get("mode") or "")
        fixed = dict(raw)
        if mode in ("dual_long", "dual_short"):
            fixed["side"] = "long" if mode == "dual_long" else "short"
            fixed["hedged"] = True
        elif mode == "single":
            fixed["hedged"] = False
        if raw.get("marginMode") == "cross":
            fixed["leverage"] = info.get("cross_leverage_limit") or None
        return fixed

    def cross_wallet(self, balance: Mapping[str, Any]) -> Decimal | None:
        return self.cross_wallet_with(balance, ZERO)

    def cross_wallet_with(
        self, balance: Mapping[str, Any], isolated_margin: Decimal
    ) -> Decimal | None:
        info = balance.get("info")
        entries = info if isinstance(info, list) else [info]
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            if str(entry.get("currency") or "USDT").upper() != self.settle:
                continue
            total = to_decimal(entry.get("total", entry.get("balance")))
            if total is not None:
                return total - isolated_margin
        return None

    def isolated_wallet(self, position: Mapping[str, Any]) -> Decimal:
        if position.get("marginMode") != "isolated":
            return ZERO
        return to_decimal(info_of(position).get("margin")) or ZERO

    # ---- orders --------------------------------------------------------------------------
    @staticmethod
    def _initial(order: Mapping[str, Any]) -> Mapping[str, Any]:
        initial = info_of(order).get("initial")
        return initial if isinstance(initial, Mapping) else {}

    def _closes_side(self, order: Mapping[str, Any]) -> str | None:
        """The position side a price-triggered order closes, where it says so."""
        info = info_of(order)
        order_type = str(info.get("order_type") or "")
        auto = str(self._initial(order).get("auto_size") or info.get("auto_size") or "")
        for text in (order_type, auto):
            if "close-long" in text or text == "close_long":
                return "long"
            if "close-short" in text or text == "close_short":
                return "short"
        return None

    def _is_trigger(self, order: Mapping[str, Any]) -> bool:
        return isinstance(info_of(order).get("trigger"), Mapping)

    def order_status(self, order: Mapping[str, Any]) -> Any:
        # ccxt 4.5.90 leaves ``finish_as: auto_deleveraged`` raw: the order finished, by ADL
        status = order.get("status")
        return "closed" if status == "auto_deleveraged" else status

    def reduce_only(self, order: Mapping[str, Any]) -> bool:
        info = info_of(order)
        initial = self._initial(order)
        return bool(
            order.get("reduceOnly")
            or initial.get("is_reduce_only")
            or initial.get("is_close")
            or info.get("is_close")
            or self._closes_side(order)
        )

    def order_kind(self, order: Mapping[str, Any]) -> str | None:
        if not self._is_trigger(order) or not self.reduce_only(order):
            return None  # a plain order, or a trigger that opens: guards nothing
        trigger = info_of(order)["trigger"]
        rule = str(trigger.get("rule"))
        closes = self._closes_side(order) or ("long" if order.get("side") == "sell" else "short")
        rises = rule == "1"
        # a long's stop triggers on a fall, its take-profit on a rise; a short's the reverse
        return "take_profit" if rises == (closes == "long") else "stop_loss"

    def order_side(self, order: Mapping[str, Any]) -> str | None:
        closes = self._closes_side(order)
        if closes is not None:
            return "sell" if closes == "long" else "buy"
        side = order.get("side")
        return str(side) if side in ("buy", "sell") else None

    def order_position_side(self, order: Mapping[str, Any]) -> str | None:
        return self._closes_side(order)

    def closes_whole_position(self, order: Mapping[str, Any]) -> bool:
        info = info_of(order)
        initial = self._initial(order)
        return bool(initial.get("is_close")) or str(info.get("order_type") or "").endswith(
            "-position"
        )

    def close_reason(self, order: Mapping[str, Any]) -> str:
        info = info_of(order)
        text = str(info.get("text") or "")
        finish = str(info.get("finish_as") or "")
        system = not text.startswith("t-")  # "t-..." is a user's own order label
        if info.get("is_liq") or (system and ("liquidat" in text or text.endswith("-liq"))):
            return "liquidation"
        if finish == "auto_deleveraged" or (system and "auto_deleverag" in text):
            return "adl"
        return super().close_reason(order)
