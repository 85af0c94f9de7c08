"""Bybit's USDT linear perpetuals (v5 API, unified trading account) as the mirror reads them.

Verified against the stand-in of its private endpoints, tests/standin/bybit_private.py; where
each field comes from, and what was only read in the venue's documentation:
docs/mirror-venues.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from guardbot.mirror.venues.base import MirrorVenue, info_of, to_decimal

__all__ = ["Bybit"]

#: ``createType`` of an order the exchange placed itself (v5 enums, "createType").
_LIQUIDATION = ("CreateByLiq", "CreateByTakeOver_PassThrough")
_ADL = ("CreateByAdl_PassThrough",)
_STOP_CREATE = ("CreateByStopLoss", "CreateByPartialStopLoss", "CreateByTrailingStop")
_TP_CREATE = ("CreateByTakeProfit", "CreateByPartialTakeProfit")
#: ``/v5/order/realtime`` page size (its maximum) and the most pages read (1,000 orders)
_PAGE = 50
_MAX_PAGES = 20


class Bybit(MirrorVenue):
    """Bybit v5 through ``ccxt.pro.bybit`` (4.5.90), ``category=linear``, settle USDT.

    - Open orders are ``GET /v5/order/realtime`` (``settleCoin=USDT``); conditional orders are
      asked for again with ``orderFilter=StopOrder`` (ccxt's ``trigger=True``): a classic account
      lists them only there, a unified account may list them in both answers, so the two lists
      are merged by order id; each list is read page by page (``limit`` 50, ``cursor``: the
      default page is 20 orders). The private ``order`` topic carries both kinds.
    - What an order is comes from the raw ``stopOrderType``: ``StopLoss`` / ``PartialStopLoss``
      (stop), ``TakeProfit`` / ``PartialTakeProfit``, ``TrailingStop``; a plain conditional
      ``Stop`` that only reduces is a take-profit when it triggers on the profitable side
      (``triggerDirection`` 1 = rise, 2 = fall), a stop otherwise. ``tpslMode = Full`` position
      TP/SL close the whole position.
    - The cross wallet is the settle coin's ``walletBalance`` (REST ``/v5/account/wallet-balance``
      ``coin[]``, and the same entry in the ``wallet`` topic); ccxt's unified ``total`` is the
      ``equity`` on the stream, wallet plus unrealised PnL. An isolated position's wallet is its
      ``positionBalance`` (initial margin plus margin added).
    - ccxt reads no margin mode off a v5 position (``tradeMode`` is deprecated for unified
      accounts): the account's ``marginMode`` (``GET /v5/account/info``: ``REGULAR_MARGIN``
      cross, ``ISOLATED_MARGIN``) applies to every symbol. ``PORTFOLIO_MARGIN`` is not modelled
      and is read as cross. Leverage is each position's own ``leverage``.
    - The private topics carry every category of the unified account; only USDT linear
      positions and orders are read (``in_scope``), as REST is asked for no other.
    - Hedge mode shows as ``positionIdx`` 1 (long) / 2 (short) on positions and orders; ccxt has
      no position-mode fetch for Bybit, so an account is known to be hedged once it holds a
      hedge-mode position.
    - Why a position closed: the closing order's ``createType`` (``CreateByLiq``,
      ``CreateByTakeOver_PassThrough``: liquidation; ``CreateByAdl_PassThrough``: ADL;
      ``CreateByStopLoss``, ``CreateByTakeProfit``, ...).
    """

    id = "bybit"
    #: ccxt lists currencies through a signed ``GET /v5/asset/coin/query-info`` once a key is set
    #: (part of ``load_markets``); the mirror needs none of it, and a read-only key need not
    #: be allowed to ask
    ccxt_has: Mapping[str, bool] = {"fetchCurrencies": False}
    ccxt_options: Mapping[str, Any] = {
        "defaultType": "swap",
        "defaultSubType": "linear",
        # watch_positions' first answer would be two REST calls (linear and inverse); the mirror
        # takes its own REST picture
        "watchPositions": {"fetchPositionsSnapshot": False, "awaitPositionsSnapshot": False},
    }

    async def fetch_open_orders(self, exchange: Any) -> list[dict[str, Any]]:
        plain = await self._pages(exchange, {})
        conditional = await self._pages(exchange, {"trigger": True})
        merged: dict[str, dict[str, Any]] = {}
        for order in [*plain, *conditional]:
            merged.setdefault(str(order.get("id")), order)
        return list(merged.values())

    @staticmethod
    async def _pages(exchange: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every page of open orders: v5 answers 20 by default, at most 50 a page, with a
        ``nextPageCursor``. (ccxt's own ``paginate`` option cannot be used here: its cursor
        loop demands a ``since``.)"""
        found: list[dict[str, Any]] = []
        cursor: object = None
        for _ in range(_MAX_PAGES):
            page_params = dict(params)
            if cursor:
                page_params["cursor"] = cursor
            page = list(await exchange.fetch_open_orders(None, None, _PAGE, page_params))
            found += page
            # ccxt hands the cursor on in the first order's raw dict
            cursor = info_of(page[0]).get("nextPageCursor") if page else None
            if not cursor or len(page) < _PAGE:
                break
        return found

    async def fetch_settings(self, exchange: Any) -> dict[str, tuple[Decimal | None, str | None]]:
        symbols = [
            symbol
            for symbol, market in (exchange.markets or {}).items()
            if market.get("linear") and market.get("settle") == self.settle
        ]
        if not symbols:
            return {}
        mode = (await exchange.fetch_margin_mode(symbols[0])).get("marginMode")
        margin_mode = "isolated" if mode == "isolated" else "cross"
        return {symbol: (None, margin_mode) for symbol in symbols}

    async def fetch_hedged(self, exchange: Any) -> bool | None:
        return None  # ccxt 4.5.90 has no fetch_position_mode for Bybit: positionIdx tells

    def in_scope(self, item: Mapping[str, Any]) -> bool:
        """USDT linear contracts only: the private ``position`` and ``order`` topics carry every
        category of the unified account (inverse, USDC, spot, options), REST is asked for
        ``category=linear&settleCoin=USDT``; a stream-only position would be dropped again by
        the next REST answer and reported closed."""
        category = info_of(item).get("category")
        if category is not None and category != "linear":
            return False
        return str(item.get("symbol") or "").endswith(f":{self.settle}")

    def cross_wallet(self, balance: Mapping[str, Any]) -> Decimal | None:
        info = balance.get("info")
        if isinstance(info, Mapping):  # REST: the whole response
            result = info.get("result")
            accounts = result.get("list") if isinstance(result, Mapping) else None
        else:  # the ``wallet`` topic: its ``data`` list
            accounts = info
        for account in _mappings(accounts):
            for coin in _mappings(account.get("coin")):
                if coin.get("coin") == self.settle:
                    return to_decimal(coin.get("walletBalance"))
        return None

    def isolated_wallet(self, position: Mapping[str, Any]) -> Decimal:
        return to_decimal(info_of(position).get("positionBalance")) or Decimal(0)

    def order_kind(self, order: Mapping[str, Any]) -> str | None:
        info = info_of(order)
        kind = str(info.get("stopOrderType") or "")
        if kind in ("StopLoss", "PartialStopLoss"):
            return "stop_loss"
        if kind in ("TakeProfit", "PartialTakeProfit"):
            return "take_profit"
        if kind == "TrailingStop":
            return "trailing_stop"
        if kind in ("Stop", "tpslOrder", "OcoOrder", "BidirectionalTpslOrder"):
            reduces = bool(info.get("reduceOnly")) or bool(info.get("closeOnTrigger"))
            direction = str(info.get("triggerDirection", ""))
            side = str(info.get("side", ""))
            profitable = (side == "Sell" and direction == "1") or (
                side == "Buy" and direction == "2"
            )
            return "take_profit" if reduces and profitable else "stop_loss"
        return None

    def order_position_side(self, order: Mapping[str, Any]) -> str | None:
        return {"1": "long", "2": "short"}.get(str(info_of(order).get("positionIdx", "0")))

    def closes_whole_position(self, order: Mapping[str, Any]) -> bool:
        info = info_of(order)
        return info.get("tpslMode") == "Full" and info.get("stopOrderType") in (
            "StopLoss",
            "TakeProfit",
            "TrailingStop",
        )

    def close_reason(self, order: Mapping[str, Any]) -> str:
        created = str(info_of(order).get("createType") or "")
        if created in _LIQUIDATION:
            return "liquidation"
        if created in _ADL:
            return "adl"
        if created in _STOP_CREATE:
            return "stop_loss"
        if created in _TP_CREATE:
            return "take_profit"
        return super().close_reason(order)


def _mappings(value: object) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, Mapping)]
    return ()
