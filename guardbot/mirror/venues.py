"""What differs between venues when reading an account through ccxt: one small class per venue.

ccxt unifies the structures, not every field guardbot needs. The pieces a venue fills its own way
are here and nowhere else: which calls list the open stop / take-profit orders, where the cross
wallet balance is (ccxt's unified ``total`` is not a wallet balance on every venue), where an
isolated position's wallet is, and how a closing order tells why it closed.

Only Binance USDⓈ-M is implemented (verified against the local stand-in of its private REST
endpoints and user data stream, tests/standin/binance_private.py). Other venues are refused at
configuration load, naming them: the ones whose ccxt class cannot read positions at all, and the
others until their quirks are written down and verified here.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from guardbot.errors import ConfigError

__all__ = ["BinanceUsdm", "MirrorVenue", "mirror_venue", "to_decimal"]


def to_decimal(value: object) -> Decimal | None:
    """An exchange number as an exact Decimal (floats through ``str``); None for missing/bad."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _info(structure: Mapping[str, Any]) -> Mapping[str, Any]:
    info = structure.get("info")
    return info if isinstance(info, Mapping) else {}


class MirrorVenue:
    """Reading one venue's account through ccxt; see the module docstring."""

    id: str = ""
    settle: str = "USDT"
    #: Constructor options the mirror adds to ``[exchange.ccxt]``.
    ccxt_options: Mapping[str, Any] = {}

    async def fetch_open_orders(self, exchange: Any) -> list[dict[str, Any]]:
        return list(await exchange.fetch_open_orders())

    async def fetch_settings(self, exchange: Any) -> dict[str, tuple[Decimal | None, str | None]]:
        """symbol -> (leverage, margin mode) as the account has them set."""
        leverages = await exchange.fetch_leverages()
        result: dict[str, tuple[Decimal | None, str | None]] = {}
        for symbol, item in leverages.items():
            leverage = to_decimal(item.get("longLeverage") or item.get("shortLeverage"))
            result[symbol] = (leverage, item.get("marginMode"))
        return result

    async def fetch_hedged(self, exchange: Any) -> bool | None:
        """Whether the account is in hedge (two-sided) mode; None if the venue cannot tell."""
        if not exchange.has.get("fetchPositionMode"):
            return None
        mode = await exchange.fetch_position_mode()
        return bool(mode.get("hedged"))

    async def maintain(self, exchange: Any) -> None:
        """Keep the private stream's session alive; called after every REST reconciliation."""

    def cross_wallet(self, balance: Mapping[str, Any]) -> Decimal | None:
        raise NotImplementedError

    def isolated_wallet(self, position: Mapping[str, Any]) -> Decimal:
        return to_decimal(position.get("positionMargin")) or Decimal(0)

    def order_kind(self, order: Mapping[str, Any]) -> str | None:
        if order.get("takeProfitPrice") is not None:
            return "take_profit"
        if order.get("stopLossPrice") is not None or order.get("triggerPrice") is not None:
            return "stop_loss"
        return None

    def order_position_side(self, order: Mapping[str, Any]) -> str | None:
        return None

    def closes_whole_position(self, order: Mapping[str, Any]) -> bool:
        return False

    def close_reason(self, order: Mapping[str, Any]) -> str:
        """Why a filled order closed a position (see ``CLOSE_REASONS``)."""
        kind = self.order_kind(order)
        if kind in ("stop_loss", "trailing_stop"):
            return "stop_loss"
        if kind == "take_profit":
            return "take_profit"
        return "order"


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

    async def fetch_open_orders(self, exchange: Any) -> list[dict[str, Any]]:
        plain = await exchange.fetch_open_orders()
        algo = await exchange.fetch_open_orders(params={"trigger": True})
        return [*plain, *algo]

    def cross_wallet(self, balance: Mapping[str, Any]) -> Decimal | None:
        info = _info(balance)
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
        info = _info(position)
        return to_decimal(info.get("isolatedWallet", info.get("iw"))) or Decimal(0)

    @staticmethod
    def _raw_type(order: Mapping[str, Any]) -> str:
        info = _info(order)
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
        info = _info(order)
        side = str(info.get("positionSide", info.get("ps", "BOTH"))).lower()
        return side if side in ("long", "short") else None

    def closes_whole_position(self, order: Mapping[str, Any]) -> bool:
        info = _info(order)
        return bool(info.get("closePosition", info.get("cp", False)))

    def close_reason(self, order: Mapping[str, Any]) -> str:
        client_id = str(order.get("clientOrderId") or _info(order).get("c") or "")
        if client_id.startswith("autoclose-") or self._raw_type(order) == "LIQUIDATION":
            return "liquidation"
        if client_id.startswith("adl_autoclose"):
            return "adl"
        return super().close_reason(order)


VENUES: dict[str, MirrorVenue] = {"binanceusdm": BinanceUsdm()}


def mirror_venue(exchange_id: str, *, where: str = "exchange.id") -> MirrorVenue:
    """The venue's mirror support, or :class:`ConfigError` naming the venue and why not."""
    venue = VENUES.get(exchange_id)
    if venue is not None:
        return venue
    import ccxt.pro

    cls = getattr(ccxt.pro, exchange_id, None)
    # the class attribute ``has`` is the base class's; an instance merges the venue's own
    has = cls().describe().get("has", {}) if cls is not None else {}
    if not has.get("fetchPositions"):
        raise ConfigError(
            f"{where}: a mirror account needs private position data, and ccxt cannot read "
            f"positions on {exchange_id!r}"
        )
    raise ConfigError(
        f"{where}: mirror accounts are not supported on {exchange_id!r} yet "
        f"(supported: {', '.join(sorted(VENUES))})"
    )
