"""The account's trading state (active, reducing, halted) and the daily loss limit that moves it."""

from __future__ import annotations

from guardbot.core.account import Account
from guardbot.core.guards import TradingState, utc_day
from guardbot.core.num import fmt
from guardbot.core.state import EngineState

__all__ = ["check_daily_loss", "roll_day", "set_state"]


def set_state(st: EngineState, account: Account, state: TradingState, reason: str) -> None:
    if account.state == state:
        return
    if state != TradingState.REDUCING:
        account.daily_limit_day = None
    account.state = state
    account.state_reason = reason
    st.emit("trading_state", account, state=state.value, reason=reason)


def check_daily_loss(st: EngineState, account: Account) -> None:
    """Move ``account`` to ``reducing`` once today's loss reaches the guard's limit."""
    limit = st.config.guards.daily_loss_limit
    if limit is not None and account.state == TradingState.ACTIVE and account.daily.breached(limit):
        account.daily_limit_day = utc_day(st.ts)
        set_state(
            st,
            account,
            TradingState.REDUCING,
            f"daily loss limit {fmt(limit)} reached (today's PnL {fmt(account.daily.pnl)})",
        )


def roll_day(st: EngineState, account: Account) -> None:
    """Lift the daily-loss ``reducing`` state once a new UTC day has begun."""
    account.daily.roll(st.ts)
    if (
        account.state == TradingState.REDUCING
        and account.daily_limit_day is not None
        and account.daily_limit_day != utc_day(st.ts)
    ):
        account.daily_limit_day = None
        set_state(st, account, TradingState.ACTIVE, "new UTC day")
