"""Liquidation (docs/rules.md §7): cancel in scope, re-check, step down the tiers, settle.

When a scope (an isolated position, or the cross part of an account) is due, its open orders
that hold margin are cancelled first and the scope is evaluated again. With the profile's
``liquidation_steps = "tiered"``, a position above its lowest tier is then reduced at the mark
into the tier below, one tier at a time while the scope is still due (a ``liquidation`` event
with ``partial: true``); what is still due at the lowest tier goes whole, settled by the
profile's model. The insurance fund takes the fees and covers deficits; a deficit larger than
the fund holds is recorded as an ``adl`` event (the counterparties are not simulated).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal

from guardbot.core import margin
from guardbot.core.account import Account
from guardbot.core.bands import refresh_cross, set_band
from guardbot.core.num import ZERO, money
from guardbot.core.orders import Order
from guardbot.core.position import Position
from guardbot.core.profiles import Profile
from guardbot.core.state import EngineState
from guardbot.core.trading import check_daily_loss

__all__ = ["liquidate_cross", "liquidate_isolated", "step_down_contracts"]

# A partial liquidation leaves a whole number of these contracts (size precision is not known
# to the engine; 1e-8 is finer than any venue's lot).
_LOT = Decimal("1e-8")


def step_down_contracts(pos: Position, profile: Profile, price: Decimal) -> Decimal | None:
    """The size a tiered liquidation step reduces ``pos`` to: the most contracts that sit in the
    tier ``liquidation_step_tiers`` below the current one (the lowest at most), valued at
    ``price`` (the price its requirement is taken at); None below the profile's
    ``liquidation_partial_from_tier`` (the position goes whole).

    A side tiered with its peer (``tier_peer``, docs/rules.md §8.6) is reduced until the two
    sides together sit in that tier; None when that would take all of this side."""
    table = pos.table
    peer = pos.tier_peer
    if profile.tier_basis == "contracts":
        i = table.index_for(pos.contracts + peer)
    else:
        i = table.index_for((pos.contracts + peer) * pos.contract_size * price)
    if i + 1 < profile.liquidation_partial_from_tier:
        return None
    below = table.tiers[max(0, i - profile.liquidation_step_tiers)]
    if profile.tier_basis == "contracts":
        target = min(below.cap - peer, pos.contracts)
        return target if target > 0 else None
    cap = below.cap / (price * pos.contract_size) - peer
    target = cap.quantize(_LOT, ROUND_DOWN)
    return target if 0 < target < pos.contracts else None


def _holds_margin_in(
    st: EngineState, account: Account, isolated_key: str | None
) -> Callable[[Order], bool]:
    """The open orders of a scope that hold margin: the isolated position's (by key), or the
    account's cross orders."""
    if isolated_key is not None:
        return lambda o: o.key == isolated_key and o.reserved > 0
    return lambda o: o.reserved > 0 and st.settings(account, o.symbol).margin_mode != "isolated"


def _isolated_due(st: EngineState, account: Account, pos: Position) -> bool:
    mark = st.mark_of(pos.symbol)
    req, _mm, _tier = margin.requirement(st.profile, pos, mark, account.fees.taker)
    balance = pos.isolated_wallet + margin.unrealized_pnl(pos, mark)
    return balance <= 0 or req >= balance


def _cross_due(account: Account) -> bool:
    balance = account.wallet + account.c_upnl
    return balance <= 0 or account.c_req >= balance


def liquidate_isolated(st: EngineState, account: Account, pos: Position) -> None:
    """Liquidate the isolated ``pos``, due at its mark: only its own wallet is at stake."""
    st.cancel_where(account, _holds_margin_in(st, account, pos.key), "liquidation")
    mark = st.mark_of(pos.symbol)
    if st.profile.liquidation_steps == "tiered":
        # Bybit values an isolated position's tier at its entry (docs/rules.md §5.4)
        at_entry = st.profile.isolated_mm_price == "at_entry"
        while _isolated_due(st, account, pos):
            target = step_down_contracts(pos, st.profile, pos.entry_price if at_entry else mark)
            if target is None or not _partial(st, account, pos, target, mark, "position"):
                break
    if not _isolated_due(st, account, pos):  # cured (docs/rules.md §7.1)
        set_band(st.profile, st.config.alerts, account, pos)
        check_daily_loss(st, account)
        return
    st.cancel_where(account, lambda o: o.key == pos.key, "liquidation")
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
    """Liquidate the cross part of ``account``, due at its cached sums."""
    st.cancel_where(account, _holds_margin_in(st, account, None), "liquidation")
    if st.profile.liquidation_steps == "tiered":
        while _cross_due(account):
            step = _next_cross_step(st, account)
            if step is None:
                break
            pos, target, mark = step
            if not _partial(st, account, pos, target, mark, "account"):
                break
            refresh_cross(st.profile, st.markets, account)
    if not _cross_due(account):  # cured (docs/rules.md §7.1)
        check_daily_loss(st, account)
        return
    st.cancel_where(
        account,
        lambda o: st.settings(account, o.symbol).margin_mode != "isolated",
        "liquidation",
    )
    positions = [p for p in account.positions.values() if not p.isolated]
    marks = {p.key: st.mark_of(p.symbol) for p in positions}
    upnl = {p.key: money(margin.unrealized_pnl(p, marks[p.key])) for p in positions}
    # profitable positions first, so that a deficit shows on the last, losing one
    positions.sort(key=lambda p: (-upnl[p.key], p.key))
    rate = st.profile.liquidation_fee_rate
    bankruptcy_model = st.profile.liquidation_settlement == "bankruptcy"
    rest_upnl = sum(upnl.values(), ZERO)
    for i, pos in enumerate(positions):
        mark = marks[pos.key]
        rest_upnl -= upnl[pos.key]
        before = account.wallet
        bankrupt = margin.bankruptcy_price(pos, before + rest_upnl)
        last = i == len(positions) - 1
        if bankruptcy_model:
            price = bankrupt
            # closing at P_bk realizes -(wallet + rest_upnl); the fund gets the equity at mark,
            # s*Q*(mark - P_bk), computed without the rounded P_bk
            account.wallet = -rest_upnl
            fund_delta = before + rest_upnl + upnl[pos.key]
            fee = ZERO
        else:
            price = mark
            wallet = before + upnl[pos.key]
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
    account.ledger.liquidation_losses += loss
    account.daily.add(st.ts, -loss)
    _emit_liquidation(
        st,
        account,
        pos,
        scope,
        pos.contracts,
        ZERO,
        mark=mark,
        price=price,
        bankrupt=bankrupt,
        fee=fee,
        loss=loss,
        fund_delta=fund_delta,
        **extra,
    )
    st.close_out(account, pos, "liquidation")


def _next_cross_step(st: EngineState, account: Account) -> tuple[Position, Decimal, Decimal] | None:
    """The cross position a tiered step reduces next: of those above their lowest tier, the one
    with the largest requirement (ties: by key), with its target size and mark."""
    best: tuple[Decimal, str, Position, Decimal, Decimal] | None = None
    for pos in account.positions.values():
        if pos.isolated:
            continue
        mark = st.mark_of(pos.symbol)
        target = step_down_contracts(pos, st.profile, mark)
        if target is None:
            continue
        req, _mm, _tier = margin.requirement(st.profile, pos, mark, account.fees.taker)
        if best is None or (-req, pos.key) < (-best[0], best[1]):
            best = (req, pos.key, pos, target, mark)
    return None if best is None else (best[2], best[3], best[4])


def _partial(
    st: EngineState, account: Account, pos: Position, target: Decimal, mark: Decimal, scope: str
) -> bool:
    """Reduce ``pos`` to ``target`` contracts at ``mark``: the liquidated part realizes its PnL
    and pays the clearance fee on its own notional into the wallet that backs the position (its
    isolated wallet, or the cross wallet); entry, side and stops of the rest stay.

    False, and nothing done, when the scope is bankrupt at the mark (no margin balance left) or
    the part's loss exceeds the wallet: then the position goes whole, so that the insurance
    fund, not a later step, takes the deficit and no wallet is left below zero.
    """
    isolated = pos.isolated
    backing = pos.isolated_wallet if isolated else account.wallet
    upnl = margin.unrealized_pnl(pos, mark)
    others = ZERO if isolated else account.c_upnl - upnl
    if backing + others + upnl <= 0:
        return False
    contracts = pos.contracts - target
    qty = contracts * pos.contract_size
    realized = money(pos.sign * qty * (mark - pos.entry_price))
    left = backing + realized
    if left < 0:
        return False
    bankrupt = margin.bankruptcy_price(pos, backing + others)
    fee = min(max(left, ZERO), st.profile.liquidation_fee_rate * qty * mark)
    if isolated:
        pos.isolated_wallet = left - fee
    else:
        account.wallet = left - fee
    loss = fee - realized
    account.ledger.liquidation_losses += loss
    account.daily.add(st.ts, -loss)
    pos.set_size(pos.sign, target, pos.entry_price)
    extra: dict[str, object] = {"isolatedWallet": backing} if isolated else {}
    _emit_liquidation(
        st,
        account,
        pos,
        scope,
        contracts,
        target,
        mark=mark,
        price=mark,
        bankrupt=bankrupt,
        fee=fee,
        loss=loss,
        fund_delta=fee,
        **extra,
    )
    return True


def _emit_liquidation(
    st: EngineState,
    account: Account,
    pos: Position,
    scope: str,
    contracts: Decimal,
    remaining: Decimal,
    *,
    mark: Decimal,
    price: Decimal,
    bankrupt: Decimal,
    fee: Decimal,
    loss: Decimal,
    fund_delta: Decimal,
    **extra: object,
) -> None:
    """The ``liquidation`` event, then the insurance fund: what it cannot cover is an ``adl``."""
    side_field = {"positionSide": pos.position_side} if pos.position_side else {}
    st.emit(
        "liquidation",
        account,
        scope=scope,
        symbol=pos.symbol,
        side=pos.side,
        **side_field,
        partial=remaining > 0,
        contracts=contracts,
        remainingContracts=remaining,
        entryPrice=pos.entry_price,
        markPrice=mark,
        price=price,
        bankruptcyPrice=bankrupt,
        **extra,
        fee=fee,
        loss=loss,
        insuranceFundDelta=fund_delta,
    )
    fund = account.insurance_fund + fund_delta
    if fund < 0:
        # the fund holds less than the deficit: the venue would auto-deleverage opposite
        # positions for the rest (docs/rules.md §7.5); the counterparties are not simulated
        st.emit(
            "adl",
            account,
            symbol=pos.symbol,
            side=pos.side,
            **side_field,
            amount=-fund,
            insuranceFund=account.insurance_fund,
        )
        fund = ZERO
    account.insurance_fund = fund
