"""An account: one cross wallet, positions (cross or isolated), open orders, ledger and state."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from guardbot.core.alerts import AlertState
from guardbot.core.config import AccountConfig, Fees
from guardbot.core.guards import DailyLoss, TradingState
from guardbot.core.mirror import MirrorState
from guardbot.core.num import ZERO
from guardbot.core.orders import Order
from guardbot.core.position import Position, position_key

__all__ = ["Account", "Ledger", "SymbolSettings", "position_key"]


@dataclass(slots=True)
class SymbolSettings:
    margin_mode: str
    leverage: Decimal


@dataclass(slots=True)
class Ledger:
    """Running totals that explain the wallet to the last digit.

    ``cross wallet + isolated wallets == initial + deposits - withdrawals + realized_pnl - fees
    + funding - liquidation_losses`` at every point.
    """

    initial: Decimal = ZERO
    deposits: Decimal = ZERO
    withdrawals: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    liquidation_losses: Decimal = ZERO

    def expected_total(self) -> Decimal:
        return (
            self.initial
            + self.deposits
            - self.withdrawals
            + self.realized_pnl
            - self.fees
            + self.funding
            - self.liquidation_losses
        )


@dataclass(slots=True, eq=False)
class Account:
    id: str
    config: AccountConfig
    fees: Fees
    wallet: Decimal  # cross wallet balance
    #: Open positions only, by :func:`position_key`: the symbol in a one-way account, the symbol
    #: and side in a hedged one.
    positions: dict[str, Position] = field(default_factory=dict)
    settings: dict[str, SymbolSettings] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)  # open orders by client id
    state: TradingState = TradingState.ACTIVE
    state_reason: str = ""
    daily_limit_day: int | None = None  # UTC day on which the daily loss limit was reached
    insurance_fund: Decimal = ZERO
    daily: DailyLoss = field(default_factory=DailyLoss)
    ledger: Ledger = field(default_factory=Ledger)
    alert: AlertState = field(default_factory=AlertState)  # the cross part
    # cross sums at the last marks, maintained by deltas on each tick
    c_upnl: Decimal = ZERO
    c_req: Decimal = ZERO
    n_cross: int = 0
    # ratio thresholds that need an exact evaluation (requirement vs level * margin balance)
    up_level: Decimal = ZERO
    down_level: Decimal | None = None
    order_margin: Decimal = ZERO  # initial margin reserved by resting orders
    position_mode: str = "oneway"  # oneway | hedged (set_position_mode)

    @property
    def hedged(self) -> bool:
        return self.position_mode == "hedged"

    def symbol_positions(self, symbol: str) -> list[Position]:
        """The open positions in ``symbol``: one in a one-way account, up to two hedged."""
        if self.position_mode != "hedged":
            pos = self.positions.get(symbol)
            return [pos] if pos is not None else []
        keys = (position_key(symbol, "long"), position_key(symbol, "short"))
        return [p for p in map(self.positions.get, keys) if p is not None]

    mirror: MirrorState | None = None  # set for a mirror of a real exchange account

    def total_wallet(self) -> Decimal:
        return self.wallet + sum(
            (p.isolated_wallet for p in self.positions.values() if p.isolated), ZERO
        )
