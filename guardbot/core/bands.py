"""What a tick compares against: the cross sums by tier and the isolated quiet bands, and the
liquidation prices that alerts report.

A cross account keeps the sums of its positions' unrealized PnL and requirement at the last
marks, with each position's tier piece cached, so that a tick moves them by the ticked position's
delta. An isolated position keeps the band of marks inside which no alert level and no
liquidation can be crossed, so that a tick inside it costs two comparisons.
"""

from __future__ import annotations

from decimal import Decimal

from guardbot.core import margin
from guardbot.core.account import Account
from guardbot.core.alerts import AlertConfig
from guardbot.core.market import INF, NEG_INF, Market
from guardbot.core.num import ONE, ZERO
from guardbot.core.position import Position
from guardbot.core.profiles import Profile

__all__ = [
    "cross_liquidation_price",
    "isolated_liquidation_price",
    "isolated_price_at",
    "nearest_cross_liquidation",
    "refresh_cross",
    "retier",
    "set_band",
]

# Quiet bands are narrowed by this relative amount so that a rounded threshold never lets a real
# crossing through; the exact evaluation then decides.
_BAND_EPS = Decimal("1e-25")


def _mark(markets: dict[str, Market], symbol: str) -> Decimal:
    mark = markets[symbol].mark
    assert mark is not None, "a position exists only where a price was seen"
    return mark


def retier(profile: Profile, account: Account, pos: Position, notional: Decimal) -> None:
    """Cache the requirement's rate, deduction and notional bounds of ``pos``'s tier."""
    # a side tiered with its peer (docs/rules.md §8.6) sees the tier's bounds and deduction
    # scaled by its share of the combined size, so a tick still moves only its own notional
    share = pos.contracts / (pos.contracts + pos.tier_peer) if pos.tier_peer else ONE
    if profile.tier_basis == "contracts":
        tier = pos.table.tier_for(pos.contracts + pos.tier_peer)
        pos.c_floor, pos.c_cap = NEG_INF, INF  # a price move never changes the tier
    else:
        table = pos.table
        combined = notional * (pos.contracts + pos.tier_peer) / pos.contracts
        i = table.index_for(combined if pos.tier_peer else notional)
        tier = table.tiers[i]
        pos.c_floor = tier.floor * share if i else NEG_INF
        pos.c_cap = tier.cap * share if i < len(table.tiers) - 1 else INF
    fee = account.fees.taker if profile.taker_fee_in_requirement else ZERO
    pos.c_rate = tier.mmr + fee
    pos.c_cum = tier.cum * share if profile.deducts_cum else ZERO


def refresh_cross(profile: Profile, markets: dict[str, Market], account: Account) -> None:
    """Recompute the cross sums of ``account`` from scratch at the current marks."""
    upnl_sum = req_sum = ZERO
    count = 0
    if account.position_mode == "hedged":
        margin.link_hedge_sides(profile, account.positions.values())
    for pos in account.positions.values():
        if pos.isolated:
            continue
        count += 1
        notional = pos.qty * _mark(markets, pos.symbol)
        retier(profile, account, pos, notional)
        pos.c_n = notional
        upnl_sum += pos.sign * (notional - pos.cost)
        req_sum += notional * pos.c_rate - pos.c_cum
    account.c_upnl, account.c_req, account.n_cross = upnl_sum, req_sum, count


def cross_liquidation_price(
    profile: Profile, markets: dict[str, Market], account: Account, pos: Position
) -> Decimal | None:
    mark = _mark(markets, pos.symbol)
    legs = [p for p in account.symbol_positions(pos.symbol) if not p.isolated]
    if len(legs) > 1:  # both sides of a hedged symbol share one price (docs/rules.md §5.6)
        req = upnl = ZERO
        for leg in legs:
            req += margin.requirement(profile, leg, mark, account.fees.taker)[0]
            upnl += margin.unrealized_pnl(leg, mark)
        wallet = account.wallet - (account.c_req - req) + (account.c_upnl - upnl)
        return margin.shared_level_price(profile, legs, wallet, account.fees.taker, mark)
    upnl = margin.unrealized_pnl(pos, mark)
    req, _mm, _tier = margin.requirement(profile, pos, mark, account.fees.taker)
    wallet = account.wallet - (account.c_req - req) + (account.c_upnl - upnl)
    solved = margin.liquidation_price(profile, pos, wallet, account.fees.taker)
    if solved is None or (pos.sign > 0 and solved[0] <= 0):
        return None
    return solved[0]


def isolated_price_at(
    profile: Profile, account: Account, pos: Position, level: Decimal
) -> Decimal | None:
    solved = margin.level_price(profile, pos, pos.isolated_wallet, account.fees.taker, level)
    return None if solved is None else solved[0]


def set_band(profile: Profile, alerts: AlertConfig, account: Account, pos: Position) -> None:
    """Prices between which the isolated position needs no exact evaluation."""
    up, down = pos.alert.thresholds(alerts)
    rising = min(up, ONE) if up is not None else ONE
    worse = isolated_price_at(profile, account, pos, rising)
    better = isolated_price_at(profile, account, pos, down) if down is not None else None
    if worse is None:
        pos.band_lo, pos.band_hi = INF, NEG_INF  # evaluate on every tick
        return
    if pos.sign > 0:  # the ratio rises as the price falls
        pos.band_lo = worse + abs(worse) * _BAND_EPS
        pos.band_hi = better - abs(better) * _BAND_EPS if better is not None else INF
    else:
        pos.band_hi = worse - abs(worse) * _BAND_EPS
        pos.band_lo = better + abs(better) * _BAND_EPS if better is not None else NEG_INF


def isolated_liquidation_price(profile: Profile, account: Account, pos: Position) -> Decimal | None:
    price = isolated_price_at(profile, account, pos, ONE)
    if price is None or (pos.sign > 0 and price <= 0):
        return None
    return price


def nearest_cross_liquidation(
    profile: Profile, markets: dict[str, Market], account: Account
) -> tuple[Decimal | None, str | None]:
    """The cross liquidation price closest to its mark, relatively, and its symbol."""
    best: tuple[Decimal, Decimal, str] | None = None
    for key in sorted(account.positions):
        pos = account.positions[key]
        if pos.isolated:
            continue
        liq = cross_liquidation_price(profile, markets, account, pos)
        if liq is None:
            continue
        mark = _mark(markets, pos.symbol)
        distance = abs(mark - liq) / mark
        if best is None or distance < best[0]:
            best = (distance, liq, pos.symbol)
    if best is None:
        return None, None
    return best[1], best[2]
