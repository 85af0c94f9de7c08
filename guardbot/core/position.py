"""A position: signed size, average entry, margin mode, leverage, isolated wallet.

In a one-way account the position of a symbol is long, short or flat; in a hedged account each
side of a symbol is a position of its own that only its own orders open and reduce.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from guardbot.core.alerts import AlertState
from guardbot.core.num import ONE, ZERO, money
from guardbot.core.tiers import TierTable

__all__ = ["Fill", "Position", "position_key"]


def position_key(symbol: str, position_side: str | None) -> str:
    """Where an account keeps a position: the symbol, and in a hedged account its side too
    (``BTC/USDT:USDT#long``)."""
    return symbol if position_side is None else f"{symbol}#{position_side}"


@dataclass(slots=True)
class Fill:
    """The effect of one execution on a position (docs/rules.md §1)."""

    closed_qty: Decimal  # base units closed (realized)
    opened_qty: Decimal  # base units opened or added
    realized_pnl: Decimal  # before fees
    flipped: bool


@dataclass(slots=True, eq=False)
class Position:
    """``sign`` is +1 long, -1 short, 0 flat; ``contracts`` is the absolute size in contracts."""

    symbol: str
    table: TierTable
    margin_mode: str = "cross"
    leverage: Decimal = Decimal(10)
    contract_size: Decimal = ONE
    sign: int = 0
    contracts: Decimal = ZERO
    qty: Decimal = ZERO  # contracts * contract_size, base units
    entry_price: Decimal = ZERO
    isolated_wallet: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    # Engine caches, kept up to date by the engine (not part of the position's identity):
    cost: Decimal = ZERO  # qty * entry_price
    # cross positions: notional at the last mark, and the current tier's requirement terms
    # (requirement = c_n * c_rate - c_cum while c_floor < c_n <= c_cap)
    c_n: Decimal = ZERO
    c_rate: Decimal = ZERO
    c_cum: Decimal = ZERO
    c_floor: Decimal = ZERO
    c_cap: Decimal = ZERO
    band_lo: Decimal = ZERO  # isolated: mark prices strictly inside (band_lo, band_hi)
    band_hi: Decimal = ZERO  # change no alert level and liquidate nothing
    alert: AlertState = field(default_factory=AlertState)
    #: ``long`` or ``short`` in a hedged account (the side never changes); None in one-way.
    position_side: str | None = None
    key: str = ""  # where the account keeps it: symbol, or symbol#side when hedged
    #: Contracts of the other cross side of this symbol that count in this side's tier (a
    #: hedged account on a profile with ``hedge_tier_basis = "combined"``); set by
    #: :func:`guardbot.core.margin.link_hedge_sides`, 0 otherwise.
    tier_peer: Decimal = ZERO

    def __post_init__(self) -> None:
        if not self.key:
            self.key = position_key(self.symbol, self.position_side)

    @property
    def isolated(self) -> bool:
        return self.margin_mode == "isolated"

    @property
    def is_open(self) -> bool:
        return self.sign != 0

    @property
    def side(self) -> str | None:
        return "long" if self.sign > 0 else "short" if self.sign < 0 else None

    @property
    def signed_qty(self) -> Decimal:
        return self.sign * self.qty

    def set_size(self, sign: int, contracts: Decimal, entry: Decimal) -> None:
        self.sign = sign if contracts else 0
        self.contracts = contracts if sign else ZERO
        self.qty = self.contracts * self.contract_size
        self.entry_price = entry if self.sign else ZERO
        self.cost = self.qty * self.entry_price

    def apply_fill(self, side_sign: int, contracts: Decimal, price: Decimal) -> Fill:
        """Apply an execution of ``contracts`` on side ``side_sign`` (+1 buy, -1 sell) at ``price``.

        Same direction: average the entry. Opposite: reduce and realize; past zero, the rest
        opens a new position at ``price`` (the caller checks margin for that part first).
        """
        size = self.contract_size
        if self.sign == 0 or self.sign == side_sign:
            total = self.contracts + contracts
            entry = (self.contracts * self.entry_price + contracts * price) / total
            self.set_size(side_sign, total, entry)
            return Fill(ZERO, contracts * size, ZERO, False)
        closing = min(contracts, self.contracts)
        realized = money(self.sign * closing * size * (price - self.entry_price))
        self.realized_pnl += realized
        rest = contracts - closing
        if rest > 0:
            self.set_size(side_sign, rest, price)
            return Fill(closing * size, rest * size, realized, True)
        self.set_size(self.sign, self.contracts - closing, self.entry_price)
        return Fill(closing * size, ZERO, realized, False)
