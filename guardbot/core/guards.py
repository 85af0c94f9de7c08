"""Guard policies: leverage caps, notional and exposure limits, stop-loss requirement, daily loss.

Policies are data plus small pure functions; the engine asks them before an order reaches the
book and gets a :class:`Decision`. They never raise on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from guardbot.core.codes import Code
from guardbot.core.settings import setting
from guardbot.errors import InputError

__all__ = ["DailyLoss", "Decision", "GuardConfig", "TradingState", "utc_day"]

DAY_MS = 86_400_000


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCING = "reducing"  # only orders that reduce exposure
    HALTED = "halted"  # cancels only


@dataclass(frozen=True, slots=True)
class Decision:
    code: Code | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.code is None


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """The ``[guards]`` section: policies the engine checks before an order reaches the book."""

    max_leverage: Decimal | None = setting(
        None,
        ge=1,
        example="20",
        doc="Orders that would put a position above this leverage are rejected.",
    )
    max_leverage_per_symbol: Mapping[str, Decimal] = setting(
        factory=dict,
        ge=1,
        example='{ "ETH/USDT:USDT" = 15 }',
        doc="Per-symbol leverage caps; the lower of this and max_leverage applies.",
    )
    require_stop_loss: bool = setting(
        False, doc="Require a stop-loss on every order that opens or increases a position."
    )
    max_position_notional: Decimal | None = setting(
        None,
        gt=0,
        example="50000",
        doc="Largest notional of one position, in USDT (omit for no limit).",
    )
    max_account_exposure: Decimal | None = setting(
        None,
        gt=0,
        example="100000",
        doc="Largest total notional of all positions of an account, in USDT (omit for no limit).",
    )
    daily_loss_limit: Decimal | None = setting(
        None,
        gt=0,
        example="500",
        doc="Loss within one UTC day (realized PnL, fees, funding) that halts trading, in USDT.",
    )
    #: ``trim`` or ``reject`` oversize reduce-only orders; None: the profile's rule.
    reduce_only_oversize: str | None = setting(
        None,
        choices=("trim", "reject"),
        example='"trim"',
        doc='Oversize reduce-only orders: "trim" or "reject". Defaults to the profile\'s rule.',
    )
    #: Applied where ccxt's orders are translated (the paper exchange): the engine's own
    #: stand-alone stop-loss and take-profit orders are reduce-only already.
    close_only_stops: bool = setting(
        True,
        doc="Stop-loss and take-profit orders (ccxt's stopLossPrice/takeProfitPrice orders) are"
        " reduce-only: one that fires after its position closed never opens a new one.",
    )

    def __post_init__(self) -> None:
        if self.max_leverage is not None and self.max_leverage < 1:
            raise InputError("max_leverage", f"must be >= 1, got {self.max_leverage}")
        for symbol, cap in self.max_leverage_per_symbol.items():
            if cap < 1:
                raise InputError(f"max_leverage_per_symbol[{symbol!r}]", f"must be >= 1, got {cap}")
        for name in ("max_position_notional", "max_account_exposure", "daily_loss_limit"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InputError(name, f"must be > 0, got {value}")
        if self.reduce_only_oversize not in (None, "trim", "reject"):
            raise InputError(
                "reduce_only_oversize", f"must be trim or reject, got {self.reduce_only_oversize!r}"
            )

    def leverage_cap(self, symbol: str) -> Decimal | None:
        """The policy's leverage cap for ``symbol``: the lower of the global and symbol caps."""
        caps = [c for c in (self.max_leverage, self.max_leverage_per_symbol.get(symbol)) if c]
        return min(caps) if caps else None


def utc_day(ts: int) -> int:
    return ts // DAY_MS


@dataclass(slots=True)
class DailyLoss:
    """Profit and loss of the current UTC day: realized PnL, fees, funding, liquidation losses."""

    day: int | None = None
    pnl: Decimal = Decimal(0)

    def roll(self, ts: int) -> bool:
        """Start a new day if ``ts`` is in one; True when the day changed."""
        day = utc_day(ts)
        if self.day != day:
            changed = self.day is not None
            self.day = day
            self.pnl = Decimal(0)
            return changed
        return False

    def add(self, ts: int, amount: Decimal) -> None:
        self.roll(ts)
        self.pnl += amount

    def breached(self, limit: Decimal | None) -> bool:
        return limit is not None and self.pnl <= -limit
