"""How the engine treats a mirror account (``[accounts.<name>] mirror = true``).

A mirror account's wallet, positions and protective orders are what the exchange reports
(:class:`~guardbot.core.mirror.MirrorCmd`, a complete picture each time); the engine evaluates
them on every tick like paper positions (margin ratio, liquidation price, the graded alerts) but
never trades, triggers, funds or liquidates them:

- where it would liquidate, ``liquidation_imminent`` (critical; evaluation.py);
- a position the exchange no longer reports: ``position_closed`` with the exchange's reason;
- the exchange's liquidation price farther from guardbot's than ``mirror_tolerance`` of the mark
  at every comparison for ``mirror_drift_confirm_s`` of input time: ``mirror_drift`` (once per
  position until it is back within), both values carried. A comparison is made on each exchange
  report and, while a drift waits for confirmation, on each tick of the symbol. The wait is
  there because an exchange sends the positions (with its liquidation price) and the wallet it
  computed them from separately (two stream frames, or a REST balance read before the
  positions): for a moment guardbot can hold the exchange's new figure beside the old wallet.
  That mismatch ends with the next frame or reconciliation, whereas a real drift lasts;
- guards become alerts: ``guard_violation`` for a position without a stop-loss while
  ``require_stop_loss`` is on, leverage above its cap, notional or exposure above theirs, the
  day's loss past ``daily_loss_limit`` (each once until it clears);
- commands that would change the account are refused with ``MIRROR_READ_ONLY``.

Positions in a symbol without a price (or tier table) yet are kept in ``unpriced`` and adopted
on the symbol's first tick. A hedge-mode account is mirrored in hedge mode (positions kept by
``symbol#side``); the mode follows the exchange's while the account is flat.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from guardbot.core.account import Account, SymbolSettings
from guardbot.core.bands import cross_liquidation_price, isolated_liquidation_price
from guardbot.core.codes import Code
from guardbot.core.commands import (
    BalanceCmd,
    CancelCmd,
    Command,
    MarginCmd,
    OrderCmd,
    SetLeverageCmd,
    SetMarginModeCmd,
    SetPositionModeCmd,
)
from guardbot.core.evaluation import after_change, evaluate_isolated
from guardbot.core.guards import Decision, utc_day
from guardbot.core.market import HUNDRED
from guardbot.core.mirror import MirrorCmd, MirrorPosition, MirrorState
from guardbot.core.num import ZERO
from guardbot.core.position import Position, position_key
from guardbot.core.state import EngineState
from guardbot.errors import InputError

__all__ = ["adopt_priced", "apply_mirror", "mirror_tick", "mirror_view", "refuse_if_mirror"]

_CHANGING = (
    OrderCmd,
    CancelCmd,
    SetLeverageCmd,
    SetMarginModeCmd,
    SetPositionModeCmd,
    MarginCmd,
    BalanceCmd,
)
_PERCENT = Decimal("0.0001")


def refuse_if_mirror(st: EngineState, command: Command) -> bool:
    """Refuse (``order_rejected``, ``MIRROR_READ_ONLY``) a command that would change a mirror
    account; True when it was refused."""
    if not isinstance(command, _CHANGING) or not st.accounts:
        return False
    account = st.accounts.get(command.account) if command.account is not None else None
    if account is None and command.account is None and len(st.accounts) == 1:
        account = next(iter(st.accounts.values()))
    if account is None or account.mirror is None:
        return False
    decision = Decision(
        Code.MIRROR_READ_ONLY,
        f"account {account.id!r} mirrors a real exchange account; guardbot never changes it",
    )
    extra: dict[str, object] = {}
    symbol = getattr(command, "symbol", None)
    if symbol is not None:
        extra["symbol"] = symbol
    order_id = command.id if isinstance(command, (OrderCmd, CancelCmd)) else None
    st.reject(account, order_id, decision, **extra)
    return True


def apply_mirror(st: EngineState, cmd: MirrorCmd) -> None:
    account = st.account(cmd.account)
    state = account.mirror
    if state is None:
        raise InputError("account", f"{account.id!r} is not a mirror account (mirror = true)")
    state.updates += 1
    account.wallet = cmd.wallet
    state.orders = cmd.orders
    state.hedged = cmd.hedged
    reasons = {(c.symbol, c.side): c.reason for c in cmd.closes}
    hedged = cmd.hedged
    if account.hedged != hedged and not account.positions:
        account.position_mode = "hedged" if hedged else "oneway"
    hedged = account.hedged  # the mode changes only while flat, as on the exchange

    # where each reported position goes: its symbol (one-way) or symbol#side (hedge mode)
    wanted: dict[str, MirrorPosition] = {}
    aside: dict[str, MirrorPosition] = {}
    for p in sorted(cmd.positions, key=lambda p: (p.symbol, -p.contracts, p.side)):
        key = position_key(p.symbol, p.side if hedged else None)
        if key in wanted:  # both sides in one symbol while the account is one-way: one modelled
            aside[position_key(p.symbol, p.side)] = p
        else:
            wanted[key] = p

    before = {(pos.symbol, str(pos.side)): pos for pos in account.positions.values()}
    now = {p.key for p in cmd.positions}
    for symbol, side in sorted(before.keys() - now):
        pos = before[(symbol, side)]
        _closed(st, account, symbol, side, pos.contracts, pos.entry_price, reasons)
    for p in sorted(state.unpriced.values(), key=lambda p: p.key):
        if p.key not in now and (p.symbol, p.side) not in before:
            _closed(st, account, p.symbol, p.side, p.contracts, p.entry_price, reasons)
    for key in sorted(account.positions):
        pos = account.positions[key]
        target = wanted.get(key)
        if target is None or target.side != pos.side:
            _forget(st, account, pos)
    state.unpriced = dict(aside)
    for key in list(state.exchange_liquidation):
        if key not in wanted:
            for table in (state.exchange_liquidation, state.liquidation, state.drift):
                table.pop(key, None)
            state.pending.pop(key, None)
            state.drifting.discard(key)
            state.imminent.discard(key)

    for key, p in sorted(wanted.items()):
        market = st.market(p.symbol)
        if market.mark is None or market.table is None:
            state.unpriced[key] = p
            continue
        _adopt(st, account, key, p)
    _evaluate(st, account)


def mirror_tick(st: EngineState, symbol: str) -> None:
    """After a tick of ``symbol``: the guards whose figures move with the price (notional,
    exposure) are checked again for the mirror accounts holding it, as they are on every update
    from the exchange (an unchanged account sends none)."""
    market = st.markets[symbol]
    holders = {a.id: a for a in market.cross.values() if a.mirror is not None}
    holders.update({a.id: a for a in market.isolated.values() if a.mirror is not None})
    for account_id in sorted(holders):
        account = holders[account_id]
        assert account.mirror is not None
        if account.mirror.pending:  # a drift waiting for confirmation: compared again now
            _drift(st, account, only=account.mirror.pending.keys())
        _guards(st, account)


def adopt_priced(st: EngineState, symbol: str) -> None:
    """The first price of ``symbol``: adopt the mirror positions that waited for it."""
    market = st.markets[symbol]
    if market.table is None:
        return
    for account in [st.accounts[k] for k in sorted(st.accounts)]:
        state = account.mirror
        if state is None:
            continue
        waiting = [k for k in sorted(state.unpriced) if state.unpriced[k].symbol == symbol]
        for key in waiting:
            if key in account.positions or (not account.hedged and symbol in account.positions):
                continue  # the other side of a one-way symbol already modelled
            _adopt(st, account, key, state.unpriced.pop(key))
        if waiting:
            _evaluate(st, account)


def _adopt(st: EngineState, account: Account, key: str, p: MirrorPosition) -> None:
    assert account.mirror is not None
    market = st.market(p.symbol)
    assert market.table is not None
    pos = account.positions.get(key)
    if pos is None:
        pos = Position(
            symbol=p.symbol,
            table=market.table,
            contract_size=market.contract_size,
            position_side=p.side if account.hedged else None,
        )
        pos.alert.reset(st.config.alerts)
    pos.margin_mode = p.margin_mode
    pos.leverage = p.leverage
    pos.set_size(1 if p.side == "long" else -1, p.contracts, p.entry_price)
    pos.isolated_wallet = p.isolated_wallet if p.margin_mode == "isolated" else ZERO
    account.positions[pos.key] = pos
    account.settings[p.symbol] = SymbolSettings(p.margin_mode, p.leverage)
    st.register(account, pos)
    account.mirror.exchange_liquidation[pos.key] = p.liquidation_price


def _forget(st: EngineState, account: Account, pos: Position) -> None:
    """Drop a position the exchange no longer reports (no orders to cancel: a mirror has none)."""
    pos.set_size(0, ZERO, ZERO)
    pos.alert.reset(st.config.alerts)
    account.positions.pop(pos.key, None)
    market = st.markets[pos.symbol]
    market.isolated.pop(pos, None)
    market.cross.pop(pos, None)


def _closed(
    st: EngineState,
    account: Account,
    symbol: str,
    side: str,
    contracts: Decimal,
    entry: Decimal,
    reasons: dict[tuple[str, str], str],
) -> None:
    market = st.markets.get(symbol)
    st.emit(
        "position_closed",
        account,
        symbol=symbol,
        side=side,
        contracts=contracts,
        entryPrice=entry,
        markPrice=market.mark if market is not None else None,
        reason=reasons.get((symbol, side), "unknown"),
    )


def _evaluate(st: EngineState, account: Account) -> None:
    for key in sorted(account.positions):
        pos = account.positions[key]
        if pos.isolated:
            evaluate_isolated(st, account, pos)
    after_change(st, account)
    _drift(st, account)
    _guards(st, account)


def _liquidation(st: EngineState, account: Account, pos: Position) -> Decimal | None:
    if pos.isolated:
        return isolated_liquidation_price(st.profile, account, pos)
    return cross_liquidation_price(st.profile, st.markets, account, pos)


def _drift(st: EngineState, account: Account, only: Iterable[str] | None = None) -> None:
    """Compare both liquidation prices of each position (of those in ``only``); alert a drift
    beyond tolerance once it has lasted ``confirm_ms`` (see the module docstring)."""
    state = account.mirror
    assert state is not None
    keys = (
        sorted(account.positions) if only is None else sorted(set(only) & account.positions.keys())
    )
    for key in keys:
        pos = account.positions[key]
        theirs = state.exchange_liquidation.get(key)
        ours = _liquidation(st, account, pos)
        state.liquidation[key] = ours
        mark = st.mark_of(pos.symbol)
        if theirs is None:  # nothing to compare with (the exchange gave none, or not yet)
            state.drift[key] = None
            _cancel_wait(st, state, key)
            continue
        drift = (ours - theirs) / mark if ours is not None else None
        state.drift[key] = drift
        beyond = drift is None or abs(drift) > state.tolerance
        if not beyond:
            state.drifting.discard(key)
            _cancel_wait(st, state, key)
            continue
        if key in state.drifting:
            continue
        since = state.pending.get(key)
        if since is None:
            since = state.pending[key] = st.ts
            st.drift_wait_changed = True
        if st.ts - since < state.confirm_ms:
            continue  # not yet shown to last: it may be the two halves of one change
        del state.pending[key]
        state.drifting.add(key)
        st.emit(
            "mirror_drift",
            account,
            symbol=pos.symbol,
            side=pos.side,
            liquidationPrice=ours,
            exchangeLiquidationPrice=theirs,
            markPrice=mark,
            driftPercent=(drift * HUNDRED).quantize(_PERCENT) if drift is not None else None,
            tolerancePercent=state.tolerance * HUNDRED,
        )


def _cancel_wait(st: EngineState, state: MirrorState, key: str) -> None:
    """End ``key``'s wait for confirmation, if it had one; flagged (``drift_wait_changed``) so
    that the daemon journals the tick that did it, which raises no event."""
    if state.pending.pop(key, None) is not None:
        st.drift_wait_changed = True


def _guards(st: EngineState, account: Account) -> None:
    """Each guard the real account breaks, once until it no longer does."""
    state = account.mirror
    assert state is not None
    guards = st.config.guards
    found: dict[str, dict[str, object]] = {}
    exposure = ZERO
    for key in sorted(account.positions):
        pos = account.positions[key]
        symbol = pos.symbol
        notional = pos.qty * st.mark_of(symbol)
        exposure += notional
        if guards.require_stop_loss and not _has_stop(state, pos):
            found[f"STOP_LOSS_REQUIRED {key}"] = {
                "symbol": symbol,
                "reason": f"{symbol} {pos.side} has no stop-loss on the exchange",
            }
        cap = guards.leverage_cap(symbol)
        if cap is not None and pos.leverage > cap:
            found[f"LEVERAGE_EXCEEDS_MAX {key}"] = {
                "symbol": symbol,
                "value": pos.leverage,
                "limit": cap,
                "reason": f"{symbol} leverage {pos.leverage} is above the cap {cap}",
            }
        limit = guards.max_position_notional
        if limit is not None and notional > limit:
            found[f"NOTIONAL_EXCEEDS_MAX {key}"] = {
                "symbol": symbol,
                "value": notional,
                "limit": limit,
                "reason": f"{symbol} notional {notional} is above {limit}",
            }
    limit = guards.max_account_exposure
    if limit is not None and exposure > limit:
        found["EXPOSURE_EXCEEDS_MAX"] = {
            "symbol": None,
            "value": exposure,
            "limit": limit,
            "reason": f"exposure {exposure} is above {limit}",
        }
    total = account.total_wallet()
    day = utc_day(st.ts)
    if state.day != day or state.day_start_wallet is None:
        state.day, state.day_start_wallet = day, total
        state.violations = {v for v in state.violations if not v.startswith("DAILY_LOSS")}
    loss = state.day_start_wallet - total
    limit = guards.daily_loss_limit
    if limit is not None and loss >= limit:
        found["DAILY_LOSS_LIMIT"] = {
            "symbol": None,
            "value": loss,
            "limit": limit,
            "reason": f"today's loss {loss} (wallet change since the day's first report) "
            f"reached {limit}",
        }
    for key in sorted(found.keys() - state.violations):
        fields = found[key]
        st.emit("guard_violation", account, rule=key.split(" ")[0], **fields)
    state.violations = set(found)


def _has_stop(state: MirrorState, pos: Position) -> bool:
    closing = "sell" if pos.sign > 0 else "buy"
    return any(
        o.symbol == pos.symbol
        and o.kind in ("stop_loss", "trailing_stop")
        and o.side == closing
        and o.position_side in (None, pos.side)
        for o in state.orders
    )


def mirror_view(account: Account) -> dict[str, object] | None:
    """The mirror part of an account snapshot: both liquidation prices, orders, what waits."""
    state = account.mirror
    if state is None:
        return None
    return {
        "hedged": state.hedged,
        "positions": {
            key: {
                "liquidationPrice": state.liquidation.get(key),
                "exchangeLiquidationPrice": state.exchange_liquidation.get(key),
                "drift": state.drift.get(key),
                "drifting": key in state.drifting,
            }
            for key in sorted(state.exchange_liquidation)
        },
        "orders": [
            {
                "id": o.id,
                "symbol": o.symbol,
                "kind": o.kind,
                "side": o.side,
                "triggerPrice": o.trigger_price,
                "amount": o.amount,
                "positionSide": o.position_side,
            }
            for o in state.orders
        ],
        "unmodelled": [
            {"symbol": p.symbol, "side": p.side, "contracts": p.contracts}
            for p in state.unpriced.values()
        ],
        "updates": state.updates,
    }
