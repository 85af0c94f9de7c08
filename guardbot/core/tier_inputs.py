"""Tier tables as inputs (issue 16 ask 3): a ``tiers`` input replaces symbols' tier tables and
contract sizes in the engine's state, at that input.

Exchanges change their leverage tiers at any time. The daemon journals the tables in force as a
``tiers`` input (when resolved at start and when a refresh finds a change), so that a replay
rebuilds every liquidation with the table that was in force when it happened, never with the one
resolved today. Applying one:

* the symbols whose rows or contract size differ get the new table; the others (and where a
  table came from, kept as :attr:`EngineState.tier_sources`) are only recorded;
* every open position in a changed symbol moves to the new table at once: its tier,
  maintenance margin, liquidation price and the tier's max leverage are re-evaluated at this
  input (not at the symbol's next tick), so alert levels, hysteresis and liquidation follow
  from this input exactly as from a tick at the same mark. The leverage in force is not
  lowered: an order above the new tier maximum is refused by admission as usual;
* a changed contract size keeps every position's and resting order's base quantity: contracts
  are restated in the new size (what a venue does when it redenominates a contract);
* one ``tier_tables`` event of severity ``info`` names what changed: per symbol the number of
  tiers before and after, the first tier that differs with its maintenance rates, the contract
  sizes, and per moved position its tiers and liquidation prices before and after. Its
  ``sources`` and ``reason`` fields are those of the daemon's fallback warning of the same
  type. A ``tiers`` input that changes nothing raises nothing.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from guardbot.core import margin
from guardbot.core.account import Account
from guardbot.core.bands import (
    cross_liquidation_price,
    isolated_liquidation_price,
    refresh_cross,
)
from guardbot.core.commands import TiersCmd
from guardbot.core.evaluation import after_change, evaluate_isolated
from guardbot.core.num import ONE, fmt
from guardbot.core.position import Position
from guardbot.core.state import EngineState
from guardbot.core.tiers import TierTable

__all__ = ["apply_tiers"]


def apply_tiers(st: EngineState, cmd: TiersCmd) -> bool:
    """Apply ``cmd`` to ``st``; whether the configuration changed (the engine re-wires then)."""
    config = st.config
    tables = dict(config.tiers)
    sizes = dict(config.contract_sizes)
    changes: list[dict[str, object]] = []
    changed: dict[str, tuple[TierTable | None, Decimal, Decimal]] = {}
    sources: dict[str, str] = {}
    for spec in cmd.tables:
        symbol = spec.symbol
        new = TierTable.from_ccxt(symbol, spec.rows, derive_cum=st.profile.deducts_cum)
        st.tier_sources[symbol] = (spec.source, spec.as_of)
        sources[symbol] = spec.source or "input"
        old = tables.get(symbol)
        old_size = sizes.get(symbol, ONE)
        new_size = spec.contract_size if spec.contract_size is not None else old_size
        same_rows = old is not None and old.tiers == new.tiers
        if same_rows and new_size == old_size:
            continue
        if not same_rows:
            tables[symbol] = new
        if spec.contract_size is not None:
            sizes[symbol] = new_size
        changed[symbol] = (old, old_size, new_size)
        changes.append(_describe(symbol, old, tables[symbol], old_size, new_size, spec.as_of))
    if not changed:
        return False
    st.config = dataclasses.replace(config, tiers=tables, contract_sizes=sizes)
    for symbol, (_old, _old_size, new_size) in changed.items():
        market = st.markets.get(symbol)
        if market is not None:
            market.table = tables[symbol]
            market.contract_size = new_size
    moved = _move_positions(st, changed, tables)
    positions = [
        {**before, **_after(st, account, pos)}
        for account, entries in moved.items()
        for pos, before in entries
    ]
    reason = "; ".join(_sentence(c) for c in changes)
    if positions:
        reason += f"; {len(positions)} open position{'s' if len(positions) != 1 else ''} moved"
    # the alert comes before what it causes (margin alerts, liquidations at this input)
    st.emit(
        "tier_tables",
        None,
        severity="info",
        sources=sources,
        reason=reason,
        changes=changes,
        positions=positions,
    )
    _evaluate(st, moved)
    return True


def _move_positions(
    st: EngineState,
    changed: dict[str, tuple[TierTable | None, Decimal, Decimal]],
    tables: dict[str, TierTable],
) -> dict[Account, list[tuple[Position, dict[str, object]]]]:
    """Point every open position of a changed symbol at its new table (and contract size), with
    what it was before; the cross sums are recomputed under the new tables."""
    moved: dict[Account, list[tuple[Position, dict[str, object]]]] = {}
    for account_id in sorted(st.accounts):
        account = st.accounts[account_id]
        mine = [
            account.positions[k]
            for k in sorted(account.positions)
            if account.positions[k].symbol in changed and account.positions[k].is_open
        ]
        resized = {s for s, (_t, a, b) in changed.items() if a != b}
        for order in account.orders.values():
            if order.symbol in resized and not order.close_position:
                _old, old_size, new_size = changed[order.symbol]
                order.amount = order.amount * old_size / new_size
        if not mine:
            continue
        entries = moved[account] = []
        for pos in mine:
            entries.append((pos, _before(st, account, pos)))
        for pos in mine:
            _old, old_size, new_size = changed[pos.symbol]
            pos.table = tables[pos.symbol]
            if new_size != old_size:
                # the base quantity (and so cost, notional, PnL) stays; contracts are restated
                pos.contracts = pos.qty / new_size
                pos.contract_size = new_size
        refresh_cross(st.profile, st.markets, account)
    return moved


def _before(st: EngineState, account: Account, pos: Position) -> dict[str, object]:
    mark = st.mark_of(pos.symbol)
    _req, _mm, tier = margin.requirement(st.profile, pos, mark, account.fees.taker)
    out: dict[str, object] = {"account": account.id, "symbol": pos.symbol, "side": pos.side}
    if pos.position_side is not None:
        out["positionSide"] = pos.position_side
    out.update(
        marginMode=pos.margin_mode,
        markPrice=mark,
        oldTier=tier.tier,
        oldMaintenanceMarginRate=tier.mmr,
        oldMaxLeverage=tier.max_leverage,
        oldLiquidationPrice=_liquidation_price(st, account, pos),
    )
    return out


def _after(st: EngineState, account: Account, pos: Position) -> dict[str, object]:
    mark = st.mark_of(pos.symbol)
    _req, _mm, tier = margin.requirement(st.profile, pos, mark, account.fees.taker)
    return {
        "tier": tier.tier,
        "maintenanceMarginRate": tier.mmr,
        "maxLeverage": tier.max_leverage,
        "leverage": pos.leverage,
        "liquidationPrice": _liquidation_price(st, account, pos),
    }


def _liquidation_price(st: EngineState, account: Account, pos: Position) -> Decimal | None:
    if pos.isolated:
        return isolated_liquidation_price(st.profile, account, pos)
    return cross_liquidation_price(st.profile, st.markets, account, pos)


def _evaluate(
    st: EngineState, moved: dict[Account, list[tuple[Position, dict[str, object]]]]
) -> None:
    """Alerts and liquidations of the moved positions at this input, as a tick at the same
    marks would raise them: isolated positions one by one, then each cross account once."""
    for account, positions in moved.items():
        for pos, _b in positions:
            if pos.isolated and pos.is_open and pos.key in account.positions:
                evaluate_isolated(st, account, pos)
        if any(not pos.isolated for pos, _b in positions):
            after_change(st, account)


def _describe(
    symbol: str,
    old: TierTable | None,
    new: TierTable,
    old_size: Decimal,
    new_size: Decimal,
    as_of: str | None,
) -> dict[str, object]:
    old_tiers = old.tiers if old is not None else ()
    first = next(
        (i for i, (a, b) in enumerate(zip(old_tiers, new.tiers, strict=False)) if a != b),
        min(len(old_tiers), len(new.tiers)),
    )
    before = old_tiers[first] if first < len(old_tiers) else None
    after = new.tiers[first] if first < len(new.tiers) else None
    same = old is not None and old.tiers == new.tiers
    return {
        "symbol": symbol,
        "oldTiers": len(old_tiers),
        "newTiers": len(new.tiers),
        # 1-based position in the table; None when only the contract size changed
        "firstChangedTier": None if same else first + 1,
        "oldMaintenanceMarginRate": None if same or before is None else before.mmr,
        "newMaintenanceMarginRate": None if same or after is None else after.mmr,
        "oldContractSize": old_size,
        "newContractSize": new_size,
        "asOf": as_of,
    }


def _sentence(change: dict[str, object]) -> str:
    symbol = change["symbol"]
    parts: list[str] = []
    if change["firstChangedTier"] is not None:
        text = (
            f"{change['oldTiers']} -> {change['newTiers']} tiers, "
            f"first change at tier {change['firstChangedTier']}"
        )
        old_rate, new_rate = change["oldMaintenanceMarginRate"], change["newMaintenanceMarginRate"]
        if old_rate is not None or new_rate is not None:
            text += f" (maintenance rate {_shown(old_rate)} -> {_shown(new_rate)})"
        parts.append(text)
    if change["oldContractSize"] != change["newContractSize"]:
        parts.append(
            f"contract size {_shown(change['oldContractSize'])} -> "
            f"{_shown(change['newContractSize'])}"
        )
    return f"{symbol}: tier table changed: {', '.join(parts)}"


def _shown(value: object) -> str:
    return fmt(value) if isinstance(value, Decimal) else "none"
