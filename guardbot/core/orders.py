"""Orders as the engine keeps them, with ccxt's unified field names on the way out."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from guardbot.core.commands import OrderCmd
from guardbot.core.num import ZERO
from guardbot.core.position import position_key

__all__ = ["Order"]


@dataclass(slots=True, eq=False)
class Order:
    """An open order of one account.

    ``trigger_dir`` is +1 when the order fires as the watched price rises to ``trigger_price``
    (buy stop, sell take-profit) and -1 when it falls to it. ``close_position`` orders are the
    protective stop-loss / take-profit attached to a position: they close whatever is open when
    they fire.
    """

    id: str
    account: str
    symbol: str
    side: int  # +1 buy, -1 sell
    order_type: str  # market | limit
    amount: Decimal  # contracts; for close_position orders, 0 until they fire
    price: Decimal | None
    reduce_only: bool
    seq: int
    ts: int
    time_in_force: str = "GTC"
    post_only: bool = False
    kind: str | None = None  # None (plain), stop_loss, take_profit, trigger, trailing_stop
    trigger_price: Decimal | None = None
    trigger_dir: int = 0
    trigger_source: str = "mark"
    trailing_percent: Decimal | None = None
    trailing_activation: Decimal | None = None
    trailing_extreme: Decimal | None = None
    close_position: bool = False
    stop_loss_price: Decimal | None = None  # attach to the position when this order fills
    take_profit_price: Decimal | None = None
    parent: str | None = None
    reserved: Decimal = ZERO  # initial margin held for a resting order
    status: str = "open"
    position_side: str | None = None  # long | short in a hedged account
    #: Where the position this order opens or reduces is kept (``position_key``).
    key: str = ""
    #: Its attached ``stop_loss_price`` may replace the position's tighter stop.
    widen_stop_loss: bool = False

    def __post_init__(self) -> None:
        if not self.key:
            self.key = position_key(self.symbol, self.position_side)

    def as_command(self, amount: Decimal) -> OrderCmd:
        """This order, for ``amount`` contracts, as a plain order command (for re-checks)."""
        return OrderCmd(
            account=self.account,
            id=self.id,
            symbol=self.symbol,
            order_type=self.order_type,
            side=self.side,
            amount=amount,
            price=self.price,
            position_side=self.position_side,
        )

    @property
    def side_name(self) -> str:
        return "buy" if self.side > 0 else "sell"

    def describe(self) -> dict[str, object]:
        """ccxt-style fields (values as Decimal; the caller formats)."""
        out: dict[str, object] = {
            "id": self.id,
            "symbol": self.symbol,
            "orderType": self.order_type,
            "side": self.side_name,
            "amount": None if self.close_position else self.amount,
            "price": self.price,
            "reduceOnly": self.reduce_only,
            "status": self.status,
            "timeInForce": self.time_in_force,
        }
        if self.post_only:
            out["postOnly"] = True
        if self.kind is not None:
            out["kind"] = self.kind
            out["triggerPrice"] = self.trigger_price
        if self.trailing_percent is not None:
            out["trailingPercent"] = self.trailing_percent
        if self.close_position:
            out["closePosition"] = True
        if self.stop_loss_price is not None:
            out["stopLossPrice"] = self.stop_loss_price
        if self.take_profit_price is not None:
            out["takeProfitPrice"] = self.take_profit_price
        if self.parent is not None:
            out["parent"] = self.parent
        if self.position_side is not None:
            out["positionSide"] = self.position_side
        if self.widen_stop_loss:
            out["widenStopLoss"] = True
        return out

    def widened_by(self, stop_loss: Decimal) -> bool:
        """Whether ``stop_loss`` in place of this protective stop-loss would lose more before
        closing: lower for a long (this order sells), higher for a short."""
        assert self.trigger_price is not None
        return stop_loss < self.trigger_price if self.side < 0 else stop_loss > self.trigger_price
