"""What every venue's mirror support shares: :class:`MirrorVenue` (the defaults a venue overrides)
and the exact-number conversion of exchange fields."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["MirrorVenue", "info_of", "to_decimal"]


def to_decimal(value: object) -> Decimal | None:
    """An exchange number as an exact Decimal (floats through ``str``); None for missing/bad."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def info_of(structure: Mapping[str, Any]) -> Mapping[str, Any]:
    info = structure.get("info")
    return info if isinstance(info, Mapping) else {}


class MirrorVenue:
    """Reading one venue's account through ccxt; see the module docstring."""

    id: str = ""
    settle: str = "USDT"
    #: Constructor options the mirror adds to ``[exchange.ccxt]``.
    ccxt_options: Mapping[str, Any] = {}
    #: ``has`` switches the mirror's own ccxt instance overrides (calls it must not make).
    ccxt_has: Mapping[str, bool] = {}
    #: The venue's keys come with a passphrase (``password_env`` must be set).
    needs_password: bool = False
    #: The position and balance streams ccxt.pro has for the venue (``watch_positions``,
    #: ``watch_balance``); what it lacks is followed by the REST reconciliation alone. The order
    #: streams are :meth:`order_streams`.
    streams: tuple[str, ...] = ("positions", "balance")
    #: Each positions push lists every open position: one that is missing asks for a REST
    #: refresh (the stream alone is not trusted to close a position).
    stream_positions_complete: bool = False
    #: The streams tell that the account changed, not how (no wallet, no positions): each
    #: update asks for a complete REST picture soon after.
    stream_triggers_rest: bool = False

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

    def in_scope(self, item: Mapping[str, Any]) -> bool:
        """Whether a position or order belongs to what the mirror reads (a private stream may
        also carry the account's other products, which REST is not asked about)."""
        return True

    def order_streams(self, exchange: Any) -> list[Callable[[], Awaitable[Any]]]:
        """The ccxt.pro calls that stream the account's orders, each watched on its own."""
        return [exchange.watch_orders]

    def position(self, raw: Mapping[str, Any]) -> Mapping[str, Any]:
        """A ccxt position with what ccxt leaves out filled in from ``info`` (side, hedged,
        leverage); unchanged by default."""
        return raw

    def stream_positions(self, exchange: Any, returned: Any) -> list[Mapping[str, Any]]:
        """The positions a ``watch_positions`` answer tells: what it returned, by default."""
        return list(returned or ())

    async def maintain(self, exchange: Any) -> None:
        """Keep the private stream's session alive; called after every REST reconciliation."""

    def attach(self, exchange: Any, resync: Callable[[str], None]) -> None:
        """Hook the venue's stream events that ccxt leaves unhandled and that call for a REST
        reconciliation (``resync(why)``); called once, before the first stream is opened."""

    def cross_wallet(self, balance: Mapping[str, Any]) -> Decimal | None:
        raise NotImplementedError

    def cross_wallet_with(
        self, balance: Mapping[str, Any], isolated_margin: Decimal
    ) -> Decimal | None:
        """The cross wallet, for venues that report it only with the isolated positions' margin
        inside (``isolated_margin``: the sum of their isolated wallets, as the book has them)."""
        return self.cross_wallet(balance)

    def isolated_wallet(self, position: Mapping[str, Any]) -> Decimal:
        return to_decimal(position.get("positionMargin")) or Decimal(0)

    def order_kind(self, order: Mapping[str, Any]) -> str | None:
        if order.get("takeProfitPrice") is not None:
            return "take_profit"
        if order.get("stopLossPrice") is not None or order.get("triggerPrice") is not None:
            return "stop_loss"
        return None

    def order_side(self, order: Mapping[str, Any]) -> str | None:
        """``buy`` / ``sell``: the side the order trades (the closing side for a closing one)."""
        side = order.get("side")
        return str(side) if side in ("buy", "sell") else None

    def order_status(self, order: Mapping[str, Any]) -> Any:
        """ccxt's order status (``open``, ``closed``, ``canceled``, ...)."""
        return order.get("status")

    def reduce_only(self, order: Mapping[str, Any]) -> bool:
        """The order can only reduce a position."""
        return bool(order.get("reduceOnly"))

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
