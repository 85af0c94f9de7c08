"""OKX's USDT-margined perpetual swaps (v5 API, trading account) as the mirror reads them.

Verified against the stand-in of its private endpoints, tests/standin/okx_private.py; where
each field comes from, and what was only read in the venue's documentation:
docs/mirror-venues.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from guardbot.mirror.venues.base import MirrorVenue, info_of, to_decimal

__all__ = ["Okx"]

#: ``ordType`` values of algo orders and what they guard (v5 "Get algo order list").
_ALGO_TYPES = ("conditional", "oco", "trigger", "move_order_stop")


class Okx(MirrorVenue):
    """OKX v5 through ``ccxt.pro.okx`` (4.5.90), ``instType=SWAP``, settle USDT.

    - Stops and take-profits are algo orders, listed by ``GET /api/v5/trade/orders-algo-pending``
      one ``ordType`` per call (ccxt's ``fetch_open_orders(params={'trigger': True, 'ordType':
      ...})``): ``conditional`` (a stop-loss and/or take-profit), ``oco``, ``trigger`` and
      ``move_order_stop`` (trailing). Plain orders are ``GET /api/v5/trade/orders-pending``;
      a plain order's attached TP/SL (``attachAlgoOrds``) guards nothing until it fills, so it
      is not kept. Five GETs per reconciliation, far inside the 20 per 2 s of each endpoint. The
      private socket's ``orders`` channel carries plain orders only; algo orders stream on the
      business socket's ``orders-algo`` (ccxt's ``watch_orders(params={'trigger': True})``, its
      own login), which the mirror follows too, so a new or cancelled stop shows at once.
    - What an algo order guards comes from its raw fields: ``slTriggerPx`` only is a stop-loss,
      ``tpTriggerPx`` only a take-profit, both (an ``oco`` or a two-sided ``conditional``) count
      as the stop-loss; ``trigger`` is a stop (as Binance's ``STOP``), ``move_order_stop`` a
      trailing stop. ``closeFraction = 1`` closes the whole position.
    - The cross wallet is the settle currency's cash not set aside for isolated positions:
      ``cashBal - (isoEq - isoUpl)`` of its ``details`` entry (REST ``/api/v5/account/balance``
      and the ``account`` channel alike). ccxt's unified ``total`` is ``eq`` (cash plus
      unrealised PnL). This rests on OKX's field definitions (``eq`` = cash balance plus the
      unrealised PnL of cross and isolated positions, ``isoEq`` = isolated margin equity);
      without isolated positions it is ``cashBal`` exactly.
    - An isolated position's wallet is its ``margin``; leverage (``lever``) and margin mode
      (``mgnMode``) come with each position, so no separate leverage call is made.
    - Hedge mode is the account's ``posMode`` (``GET /api/v5/account/config``: ``long_short_mode``
      or ``net_mode``), ccxt's ``fetch_position_mode``; positions and orders carry ``posSide``.
    - Why a position closed: the order's ``category`` (``full_liquidation``,
      ``partial_liquidation``: liquidation; ``adl``), else an order triggered by an algo order
      (``algoId`` set) is a stop-loss or a take-profit by the trigger it carries.
    - The API passphrase is the account's ``password_env`` variable (ccxt's ``password``).
    """

    id = "okx"
    needs_password = True
    ccxt_options: Mapping[str, Any] = {}
    #: ccxt lists currencies through a signed ``GET /api/v5/asset/currencies`` once a key is set
    #: (part of ``load_markets``); the mirror needs none of it
    ccxt_has: Mapping[str, bool] = {"fetchCurrencies": False}

    async def fetch_open_orders(self, exchange: Any) -> list[dict[str, Any]]:
        orders = list(await exchange.fetch_open_orders())
        for ord_type in _ALGO_TYPES:
            orders += await exchange.fetch_open_orders(
                params={"trigger": True, "ordType": ord_type}
            )
        return orders

    def order_streams(self, exchange: Any) -> list[Callable[[], Awaitable[Any]]]:
        async def algo_orders() -> Any:
            return await exchange.watch_orders(params={"trigger": True})

        return [exchange.watch_orders, algo_orders]

    async def fetch_settings(self, exchange: Any) -> dict[str, tuple[Decimal | None, str | None]]:
        return {}  # each position says its own lever and mgnMode

    def cross_wallet(self, balance: Mapping[str, Any]) -> Decimal | None:
        data = info_of(balance).get("data")
        for entry in _mappings(data):
            for detail in _mappings(entry.get("details")):
                if detail.get("ccy") != self.settle:
                    continue
                cash = to_decimal(detail.get("cashBal"))
                if cash is None:
                    return None
                iso_eq = to_decimal(detail.get("isoEq")) or Decimal(0)
                iso_upl = to_decimal(detail.get("isoUpl")) or Decimal(0)
                return cash - (iso_eq - iso_upl)
        return None

    def isolated_wallet(self, position: Mapping[str, Any]) -> Decimal:
        info = info_of(position)
        if info.get("mgnMode") != "isolated":
            return Decimal(0)
        return to_decimal(info.get("margin")) or Decimal(0)

    def order_kind(self, order: Mapping[str, Any]) -> str | None:
        info = info_of(order)
        ord_type = info.get("ordType")
        if ord_type == "move_order_stop":
            return "trailing_stop"
        if ord_type == "trigger":
            return "stop_loss"
        if ord_type in ("conditional", "oco"):
            if _given(info.get("slTriggerPx")) or not _given(info.get("tpTriggerPx")):
                return "stop_loss"
            return "take_profit"
        return None

    def order_position_side(self, order: Mapping[str, Any]) -> str | None:
        side = info_of(order).get("posSide")
        return side if side in ("long", "short") else None

    def closes_whole_position(self, order: Mapping[str, Any]) -> bool:
        return str(info_of(order).get("closeFraction") or "") == "1"

    def close_reason(self, order: Mapping[str, Any]) -> str:
        info = info_of(order)
        category = info.get("category")
        if category in ("full_liquidation", "partial_liquidation"):
            return "liquidation"
        if category == "adl":
            return "adl"
        if _given(info.get("algoId")):
            if _given(info.get("tpTriggerPx")) and not _given(info.get("slTriggerPx")):
                return "take_profit"
            return "stop_loss"
        return super().close_reason(order)


def _given(value: object) -> bool:
    return value not in (None, "", "0")


def _mappings(value: object) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, Mapping)]
    return ()
