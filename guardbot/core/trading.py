"""The account's trading state (active, reducing, halted) and the daily loss limit that moves it."""

from __future__ import annotations

from guardbot.core.account import Account
from guardbot.core.base import EngineBase
from guardbot.core.guards import TradingState, utc_day
from guardbot.core.num import fmt

__all__ = ["TradingMixin"]


class TradingMixin(EngineBase):
    """Part of :class:`~guardbot.core.engine.Engine`."""

    def _set_state(self, account: Account, state: TradingState, reason: str) -> None:
        if account.state == state:
            return
        if state != TradingState.REDUCING:
            account.daily_limit_day = None
        account.state = state
        account.state_reason = reason
        self._emit("trading_state", account, state=state.value, reason=reason)

    def _check_daily_loss(self, account: Account) -> None:
        limit = self.config.guards.daily_loss_limit
        if (
            limit is not None
            and account.state == TradingState.ACTIVE
            and account.daily.breached(limit)
        ):
            account.daily_limit_day = utc_day(self._ts)
            self._set_state(
                account,
                TradingState.REDUCING,
                f"daily loss limit {fmt(limit)} reached (today's PnL {fmt(account.daily.pnl)})",
            )

    def _roll_day(self, account: Account) -> None:
        """Lift the daily-loss ``reducing`` state once a new UTC day has begun."""
        account.daily.roll(self._ts)
        if (
            account.state == TradingState.REDUCING
            and account.daily_limit_day is not None
            and account.daily_limit_day != utc_day(self._ts)
        ):
            account.daily_limit_day = None
            self._set_state(account, TradingState.ACTIVE, "new UTC day")
