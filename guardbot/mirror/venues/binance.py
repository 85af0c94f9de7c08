"""Binance USDⓈ-M's account as the mirror reads it.

Verified against the stand-in of its private endpoints, tests/standin/binance_private.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from guardbot.mirror.venues.base import MirrorVenue, info_of, to_decimal

__all__ = ["BinanceUsdm"]


class BinanceUsdm(MirrorVenue):
    """Binance USDⓈ-M through ``ccxt.pro.binanceusdm`` (4.5.90).

    - Stops and take-profits are "algo" orders since Binance moved conditional orders
      (``GET /fapi/v1/openAlgoOrders``, ccxt's ``fetch_open_orders(params={'trigger': True})``;
      ``ALGO_UPDATE`` frames on the stream); plain orders are ``GET /fapi/v1/openOrders``.
      Listing all symbols at once costs 40 weight per call: once per ``mirror_poll_s`` is far
      inside the 2,400/minute budget.
    - ccxt's unified balance ``total`` is the margin balance (wallet + uPnL) over REST but the
      wallet balance over the stream; the cross wallet is read from the raw fields instead:
      ``crossWalletBalance`` (REST ``/fapi/v3/account``) / ``cw`` (``ACCOUNT_UPDATE``).
    - The isolated wallet is ``isolatedWallet`` (REST) / ``iw`` (stream).
    - ``listenKeyExpired`` on the user data stream (Binance: "no more user data event will be
      updated after this event received until a new valid listenKey used") is ignored by
      ccxt 4.5.90, which would leave a silent socket open: the mirror drops the key, fails that
      connection like a broken one (its watchers retry, ccxt creates a new key and connects
      with it) and reconciles through REST at once.
    - A liquidation's closing order has a client id starting ``autoclose-`` (type
      ``LIQUIDATION``); auto-deleveraging ``adl_autoclose``. The raw order type says stop
      (``STOP``, ``STOP_MARKET``), take-profit (``TAKE_PROFIT[_MARKET]``) or trailing stop.
    """

    id = "binanceusdm"
    ccxt_options: Mapping[str, Any] = {
        "warnOnFetchOpenOrdersWithoutSymbol": False,
        # watch_positions' first answer is a REST snapshot; the mirror does its own
        "watchPositions": {"fetchPositionsSnapshot": False, "awaitPositionsSnapshot": False},
    }

    async def maintain(self, exchange: Any) -> None:
        """Keep the listen key alive. ccxt 4.5.90 (Python) sends the first keep-alive and then
        never reschedules it (``keep_alive_listen_key`` looks for its subscription with
        ``safe_dict`` on a ``Client`` object, which is not a dict), so a quiet account's key would
        expire after 60 minutes and its stream fall silent. The mirror sends the keep-alive
        (``PUT /fapi/v1/listenKey``) itself once ccxt's refresh interval has passed."""
        bucket = exchange.options.get("linear")
        if not isinstance(bucket, Mapping) or not bucket.get("listenKey"):
            return
        refresh_ms = int(exchange.options.get("listenKeyRefreshRate", 1_200_000))
        if exchange.milliseconds() - int(bucket.get("lastAuthenticatedTime") or 0) >= refresh_ms:
            await exchange.keep_alive_listen_key({"type": "linear"})

    def attach(self, exchange: Any, resync: Callable[[str], None]) -> None:
        original = exchange.handle_message

        def handle_message(client: Any, message: Any) -> Any:
            if isinstance(message, Mapping) and message.get("e") == "listenKeyExpired":
                self._listen_key_expired(exchange, client, message)
                resync("listenKeyExpired")
                return None
            return original(client, message)

        exchange.handle_message = handle_message

    @staticmethod
    def _listen_key_expired(exchange: Any, client: Any, message: Mapping[str, Any]) -> None:
        import ccxt

        bucket = exchange.options.get("linear")
        if isinstance(bucket, dict) and bucket.get("listenKey") in (None, message.get("listenKey")):
            # ccxt's authenticate() creates a key once its refresh interval has passed since
            # the last one: forget both, so the next watch asks for a new key
            bucket.pop("listenKey", None)
            bucket["lastAuthenticatedTime"] = 0
        # the way ccxt fails a broken connection: pending watches rejected (they are retried),
        # the client forgotten, the socket closed
        asyncio.get_running_loop().call_soon(
            client.on_error, ccxt.NetworkError("binanceusdm: the listen key expired")
        )

    async def fetch_open_orders(self, exchange: Any) -> list[dict[str, Any]]:
        plain = await exchange.fetch_open_orders()
        algo = await exchange.fetch_open_orders(params={"trigger": True})
        return [*plain, *algo]

    def cross_wallet(self, balance: Mapping[str, Any]) -> Decimal | None:
        info = info_of(balance)
        for asset in info.get("assets") or ():  # REST /fapi/v3/account
            if isinstance(asset, Mapping) and asset.get("asset") == self.settle:
                return to_decimal(asset.get("crossWalletBalance"))
        update = info.get("a")  # ACCOUNT_UPDATE
        if isinstance(update, Mapping):
            for entry in update.get("B") or ():
                if isinstance(entry, Mapping) and entry.get("a") == self.settle:
                    return to_decimal(entry.get("cw"))
        return None

    def isolated_wallet(self, position: Mapping[str, Any]) -> Decimal:
        info = info_of(position)
        return to_decimal(info.get("isolatedWallet", info.get("iw"))) or Decimal(0)

    @staticmethod
    def _raw_type(order: Mapping[str, Any]) -> str:
        info = info_of(order)
        for key in ("orderType", "origType", "ot", "o", "type"):
            value = info.get(key)
            if isinstance(value, str):
                return value.upper()
        return str(order.get("type") or "").upper()

    def order_kind(self, order: Mapping[str, Any]) -> str | None:
        raw = self._raw_type(order)
        if raw.startswith("TAKE_PROFIT"):
            return "take_profit"
        if raw.startswith("TRAILING_STOP"):
            return "trailing_stop"
        if raw.startswith("STOP"):
            return "stop_loss"
        return None

    def order_position_side(self, order: Mapping[str, Any]) -> str | None:
        info = info_of(order)
        side = str(info.get("positionSide", info.get("ps", "BOTH"))).lower()
        return side if side in ("long", "short") else None

    def closes_whole_position(self, order: Mapping[str, Any]) -> bool:
        info = info_of(order)
        return bool(info.get("closePosition", info.get("cp", False)))

    def close_reason(self, order: Mapping[str, Any]) -> str:
        client_id = str(order.get("clientOrderId") or info_of(order).get("c") or "")
        if client_id.startswith("autoclose-") or self._raw_type(order) == "LIQUIDATION":
            return "liquidation"
        if client_id.startswith("adl_autoclose"):
            return "adl"
        return super().close_reason(order)
