"""Guard policies: leverage caps, notional and exposure limits, stop-loss requirement, daily loss.

Policies are data plus small pure functions; the engine asks them before an order reaches the
book and gets a :class:`Decision`. They never raise on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from guardbot.core.codes import Code
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
    max_leverage: Decimal | None = None
    max_leverage_per_symbol: Mapping[str, Decimal] = field(default_factory=dict)
    require_stop_loss: bool = False
    max_position_notional: Decimal | None = None
    max_account_exposure: Decimal | None = None
    daily_loss_limit: Decimal | None = None
    #: ``trim`` or ``reject`` oversize reduce-only orders; None: the profile's rule.
    reduce_only_oversize: str | None = None

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
