"""Margin evaluation: alert crossings, and liquidation when a scope's ratio reaches 1."""

from __future__ import annotations

from decimal import Decimal

from guardbot.core import margin
from guardbot.core.account import Account
from guardbot.core.alerts import Crossing
from guardbot.core.bands import (
    isolated_liquidation_price,
    nearest_cross_liquidation,
    refresh_cross,
    set_band,
)
from guardbot.core.liquidation import liquidate_cross, liquidate_isolated
from guardbot.core.market import HUNDRED
from guardbot.core.num import ONE, ZERO
from guardbot.core.position import Position
from guardbot.core.state import EngineState, set_cross_thresholds

__all__ = ["after_change", "evaluate_cross", "evaluate_isolated"]

_DISTANCE_QUANTUM = Decimal("0.0001")  # distance to liquidation in alerts, in percent


def evaluate_cross(st: EngineState, account: Account) -> None:
    """Alerts of the cross part of ``account`` at its cached sums; liquidate it when due."""
    config = st.config
    if account.n_cross == 0:
        crossings = account.alert.update(config.alerts, ZERO, ONE)
        _emit_crossings(st, account, None, crossings, ZERO, ONE)
        set_cross_thresholds(config, account)
        return
    balance = account.wallet + account.c_upnl
    req = account.c_req
    crossings = account.alert.update(config.alerts, req, balance)
    _emit_crossings(st, account, None, crossings, req, balance)
    due = balance <= 0 or req >= balance
    if account.mirror is not None:
        _imminent(st, account, None, due, req, balance)
    elif due:
        liquidate_cross(st, account)
    set_cross_thresholds(config, account)


def evaluate_isolated(st: EngineState, account: Account, pos: Position) -> None:
    """Alerts of the isolated ``pos`` at its mark; liquidate it when due, else set its band."""
    mark = st.mark_of(pos.symbol)
    req, _mm, _tier = margin.requirement(st.profile, pos, mark, account.fees.taker)
    balance = pos.isolated_wallet + margin.unrealized_pnl(pos, mark)
    crossings = pos.alert.update(st.config.alerts, req, balance)
    _emit_crossings(st, account, pos, crossings, req, balance)
    due = balance <= 0 or req >= balance
    if account.mirror is not None:
        _imminent(st, account, pos, due, req, balance)
    elif due:
        liquidate_isolated(st, account, pos)
        return
    set_band(st.profile, st.config.alerts, account, pos)


def _imminent(
    st: EngineState,
    account: Account,
    pos: Position | None,
    due: bool,
    req: Decimal,
    balance: Decimal,
) -> None:
    """A mirror account is never liquidated by guardbot: where it would be, the exchange is about
    to, and ``liquidation_imminent`` says so, once until the scope's ratio falls below 1 again."""
    assert account.mirror is not None
    scope = pos.key if pos is not None else ""
    if not due:
        account.mirror.imminent.discard(scope)
        return
    if scope in account.mirror.imminent:
        return
    account.mirror.imminent.add(scope)
    if pos is not None:
        liq: Decimal | None = isolated_liquidation_price(st.profile, account, pos)
        symbol: str | None = pos.symbol
        theirs = account.mirror.exchange_liquidation.get(pos.key)
    else:
        liq, symbol = nearest_cross_liquidation(st.profile, st.markets, account)
        # by symbol; in hedge mode both sides of a cross symbol share one liquidation price
        theirs = next(
            (
                price
                for key, price in sorted(account.mirror.exchange_liquidation.items())
                if symbol is not None and key.split("#")[0] == symbol and price is not None
            ),
            None,
        )
    st.emit(
        "liquidation_imminent",
        account,
        scope="position" if pos is not None else "account",
        symbol=symbol,
        marginRatio=req / balance if balance > 0 else None,
        liquidationPrice=liq,
        exchangeLiquidationPrice=theirs,
        markPrice=st.markets[symbol].mark if symbol else None,
    )


def _emit_crossings(
    st: EngineState,
    account: Account,
    pos: Position | None,
    crossings: list[Crossing],
    req: Decimal,
    balance: Decimal,
) -> None:
    if not crossings:
        return
    ratio = req / balance if balance > 0 else None
    alerts = st.config.alerts
    levels = alerts.levels
    if pos is not None:
        scope_fields: dict[str, object] = {"scope": "position", "symbol": pos.symbol}
        if pos.position_side is not None:
            scope_fields["positionSide"] = pos.position_side
        liq = isolated_liquidation_price(st.profile, account, pos)
        liq_symbol: str | None = pos.symbol
    else:
        scope_fields = {"scope": "account", "symbol": None}
        liq, liq_symbol = nearest_cross_liquidation(st.profile, st.markets, account)
    mark = st.markets[liq_symbol].mark if liq_symbol else None
    distance = (
        (abs(mark - liq) / mark * HUNDRED).quantize(_DISTANCE_QUANTUM)
        if liq is not None and mark is not None
        else None
    )
    for crossing in crossings:
        if crossing.recovered:
            st.emit(
                "margin_recovered",
                account,
                **scope_fields,
                level=crossing.level,
                threshold=levels[crossing.level],
                marginRatio=ratio,
            )
            continue
        st.emit(
            "margin_alert",
            account,
            **scope_fields,
            level=crossing.level,
            threshold=levels[crossing.level],
            severity=alerts.severity(crossing.level),
            marginRatio=ratio,
            liquidationPrice=liq,
            liquidationSymbol=liq_symbol,
            markPrice=mark,
            distancePercent=distance,
        )


def after_change(st: EngineState, account: Account, changed: Position | None = None) -> None:
    """Re-evaluate ``account`` after its cross wallet or the position ``changed`` moved.

    An isolated position depends only on its own wallet and mark, so only ``changed`` needs
    an isolated evaluation; the cross sums are recomputed from the positions.
    """
    refresh_cross(st.profile, st.markets, account)
    if changed is not None and changed.isolated and changed.is_open:
        evaluate_isolated(st, account, changed)
    if account.positions or account.alert.alerted:
        evaluate_cross(st, account)
    else:
        set_cross_thresholds(st.config, account)
