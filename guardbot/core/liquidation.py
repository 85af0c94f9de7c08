"""Liquidation (docs/rules.md §7): cancel in scope, re-check, settle, insurance fund."""

from __future__ import annotations

from decimal import Decimal

from guardbot.core import margin
from guardbot.core.account import Account
from guardbot.core.bands import refresh_cross, set_band
from guardbot.core.num import ZERO, money
from guardbot.core.position import Position
from guardbot.core.state import EngineState
from guardbot.core.trading import check_daily_loss

__all__ = ["liquidate_cross", "liquidate_isolated"]


def liquidate_isolated(st: EngineState, account: Account, pos: Position) -> None:
    st.cancel_where(account, lambda o: o.symbol == pos.symbol, "liquidation")
    mark = st.mark_of(pos.symbol)
    req, _mm, _tier = margin.requirement(st.profile, pos, mark, account.fees.taker)
    balance = pos.isolated_wallet + margin.unrealized_pnl(pos, mark)
    if balance > 0 and req < balance:  # cured by the cancellations (docs/rules.md §7.1)
        set_band(st.profile, st.config.alerts, account, pos)
        return
    wallet = pos.isolated_wallet
    notional = pos.qty * mark
    bankrupt = margin.bankruptcy_price(pos, wallet)
    if st.profile.liquidation_settlement == "bankruptcy":
        price = bankrupt
        returned = ZERO
        # s*Q*(mark - P_bk) without the rounded P_bk: the position's equity at mark
        fund_delta = wallet + money(margin.unrealized_pnl(pos, mark))
        fee = ZERO
    else:
        price = mark
        left = wallet + money(margin.unrealized_pnl(pos, mark))
        fee = min(max(left, ZERO), st.profile.liquidation_fee_rate * notional)
        left -= fee
        returned = max(left, ZERO)
        fund_delta = fee + min(left, ZERO)  # the fund takes the fee and covers any deficit
    account.wallet += returned
    pos.isolated_wallet = ZERO
    _book_liquidation(
        st,
        account,
        pos,
        "position",
        mark=mark,
        price=price,
        bankrupt=bankrupt,
        fee=fee,
        loss=wallet - returned,
        fund_delta=fund_delta,
        isolatedWallet=wallet,
    )
    check_daily_loss(st, account)


def liquidate_cross(st: EngineState, account: Account) -> None:
    st.cancel_where(
        account,
        lambda o: st.settings(account, o.symbol).margin_mode != "isolated",
        "liquidation",
    )
    balance = account.wallet + account.c_upnl
    if balance > 0 and account.c_req < balance:
        return
    positions = [p for p in account.positions.values() if not p.isolated]
    marks = {p.symbol: st.mark_of(p.symbol) for p in positions}
    upnl = {p.symbol: money(margin.unrealized_pnl(p, marks[p.symbol])) for p in positions}
    # profitable positions first, so that a deficit shows on the last, losing one
    positions.sort(key=lambda p: (-upnl[p.symbol], p.symbol))
    rate = st.profile.liquidation_fee_rate
    bankruptcy_model = st.profile.liquidation_settlement == "bankruptcy"
    rest_upnl = sum(upnl.values(), ZERO)
    for i, pos in enumerate(positions):
        mark = marks[pos.symbol]
        rest_upnl -= upnl[pos.symbol]
        before = account.wallet
        bankrupt = margin.bankruptcy_price(pos, before + rest_upnl)
        last = i == len(positions) - 1
        if bankruptcy_model:
            price = bankrupt
            # closing at P_bk realizes -(wallet + rest_upnl); the fund gets the equity at mark,
            # s*Q*(mark - P_bk), computed without the rounded P_bk
            account.wallet = -rest_upnl
            fund_delta = before + rest_upnl + upnl[pos.symbol]
            fee = ZERO
        else:
            price = mark
            wallet = before + upnl[pos.symbol]
            fee = min(max(wallet, ZERO), rate * pos.qty * mark)
            wallet -= fee
            fund_delta = fee
            account.wallet = wallet
        if last and account.wallet < 0:  # negative balance protection
            fund_delta += account.wallet
            account.wallet = ZERO
        _book_liquidation(
            st,
            account,
            pos,
            "account",
            mark=mark,
            price=price,
            bankrupt=bankrupt,
            fee=fee,
            loss=before - account.wallet,
            fund_delta=fund_delta,
        )
    account.alert.reset(st.config.alerts)
    refresh_cross(st.profile, st.markets, account)
    check_daily_loss(st, account)


def _book_liquidation(
    st: EngineState,
    account: Account,
    pos: Position,
    scope: str,
    *,
    mark: Decimal,
    price: Decimal,
    bankrupt: Decimal,
    fee: Decimal,
    loss: Decimal,
    fund_delta: Decimal,
    **extra: object,
) -> None:
    """Book a settled liquidation (ledger, insurance fund, daily loss, event); drop it."""
    account.insurance_fund += fund_delta
    account.ledger.liquidation_losses += loss
    account.daily.add(st.ts, -loss)
    st.emit(
        "liquidation",
        account,
        scope=scope,
        symbol=pos.symbol,
        side=pos.side,
        contracts=pos.contracts,
        entryPrice=pos.entry_price,
        markPrice=mark,
        price=price,
        bankruptcyPrice=bankrupt,
        **extra,
        fee=fee,
        loss=loss,
        insuranceFundDelta=fund_delta,
    )
    st.close_out(account, pos, "liquidation")
