"""Margin math of USDT-margined linear perpetuals (docs/rules.md §1-§8), exact in Decimal.

Every function is pure: positions, prices and wallets in, numbers out. Notation follows the rules:
``s`` side sign, ``Q`` size in base units, ``EP`` entry, ``MP`` mark, ``N = Q*P`` notional.

The *requirement* is what the margin balance is compared with to decide liquidation: the
maintenance margin, plus the taker fee on the notional for OKX (its liquidation fee, §4.2).
Every profile's margin ratio is ``requirement / margin balance`` and ``>= 1`` means liquidated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from itertools import product
from typing import Protocol

from guardbot.core.num import ONE, ZERO
from guardbot.core.profiles import Profile
from guardbot.core.tiers import Tier, TierTable

__all__ = [
    "Piece",
    "PositionLike",
    "bankruptcy_price",
    "initial_margin",
    "level_price",
    "link_hedge_sides",
    "liquidation_price",
    "maintenance",
    "margin_ratio",
    "max_removable",
    "order_cost",
    "requirement",
    "requirement_pieces",
    "shared_level_price",
    "solve_level_price",
    "unrealized_pnl",
]


class PositionLike(Protocol):
    """What the margin functions read from a position (one-way mode)."""

    @property
    def sign(self) -> int: ...
    @property
    def contracts(self) -> Decimal: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def entry_price(self) -> Decimal: ...
    @property
    def leverage(self) -> Decimal: ...
    @property
    def isolated(self) -> bool: ...
    @property
    def isolated_wallet(self) -> Decimal: ...
    @property
    def table(self) -> TierTable: ...
    @property
    def tier_peer(self) -> Decimal: ...


class HedgeSide(Protocol):
    """What :func:`link_hedge_sides` reads and sets."""

    symbol: str
    contracts: Decimal
    tier_peer: Decimal
    position_side: str | None

    @property
    def isolated(self) -> bool: ...
    @property
    def is_open(self) -> bool: ...


def link_hedge_sides(profile: Profile, positions: Iterable[HedgeSide]) -> None:
    """Set each position's ``tier_peer``: with ``hedge_tier_basis = "combined"``, the contracts
    of the other open cross side of its symbol (docs/rules.md §8.6); 0 otherwise."""
    sides = list(positions)
    if profile.hedge_tier_basis == "side":
        for pos in sides:
            pos.tier_peer = ZERO
        return
    cross: dict[str, list[HedgeSide]] = {}
    for pos in sides:
        pos.tier_peer = ZERO
        if pos.position_side is not None and pos.is_open and not pos.isolated:
            cross.setdefault(pos.symbol, []).append(pos)
    for pair in cross.values():
        if len(pair) == 2:
            pair[0].tier_peer, pair[1].tier_peer = pair[1].contracts, pair[0].contracts


def _share(pos: PositionLike) -> Decimal:
    """This side's part of the size its tier is chosen on (1 unless tiered with its peer)."""
    if not pos.tier_peer:
        return ONE
    return pos.contracts / (pos.contracts + pos.tier_peer)


@dataclass(frozen=True, slots=True)
class Piece:
    """A linear piece of the requirement, ``R(N) = N*rate - amount`` for ``floor < N <= cap``.

    ``floor``/``cap`` are notionals; ``None`` means the piece holds at every price (the tier does
    not depend on price, as with OKX tiers keyed on contracts).
    """

    rate: Decimal
    amount: Decimal
    floor: Decimal | None
    cap: Decimal | None
    tier: Tier


def unrealized_pnl(pos: PositionLike, mark: Decimal) -> Decimal:
    return pos.sign * pos.qty * (mark - pos.entry_price)


def _tier(profile: Profile, pos: PositionLike, notional: Decimal) -> Tier:
    if profile.tier_basis == "contracts":
        return pos.table.tier_for(pos.contracts + pos.tier_peer)
    if pos.tier_peer:
        return pos.table.tier_for(notional * (pos.contracts + pos.tier_peer) / pos.contracts)
    return pos.table.tier_for(notional)


def maintenance(profile: Profile, pos: PositionLike, mark: Decimal) -> tuple[Decimal, Tier]:
    """The exchange's maintenance margin and the tier it uses.

    Tier at mark (Binance, Bybit cross), at entry for Bybit isolated (its closed form), by
    contracts for OKX (flat rate, no deduction). A side tiered with its peer (``tier_peer``)
    takes its share of the tier's deduction, so that the two sides add up to the requirement
    of one position of their combined size.
    """
    price = pos.entry_price if _at_entry(profile, pos) else mark
    notional = pos.qty * price
    tier = _tier(profile, pos, notional)
    if profile.deducts_cum:
        return notional * tier.mmr - tier.cum * _share(pos), tier
    return notional * tier.mmr, tier


def _at_entry(profile: Profile, pos: PositionLike) -> bool:
    return pos.isolated and profile.isolated_mm_price == "at_entry"


def requirement(
    profile: Profile, pos: PositionLike, mark: Decimal, taker_fee: Decimal
) -> tuple[Decimal, Decimal, Tier]:
    """(requirement, maintenance margin, tier) at ``mark``."""
    mm, tier = maintenance(profile, pos, mark)
    if profile.taker_fee_in_requirement:
        return mm + pos.qty * mark * taker_fee, mm, tier
    return mm, mm, tier


def initial_margin(profile: Profile, pos: PositionLike, mark: Decimal) -> Decimal:
    """Position initial margin: notional at mark over leverage (at entry for Bybit isolated)."""
    price = pos.entry_price if _at_entry(profile, pos) else mark
    return pos.qty * price / pos.leverage


def margin_ratio(req: Decimal, margin_balance: Decimal) -> Decimal | None:
    """``req / margin balance``; None when the margin balance is <= 0 (liquidated)."""
    if margin_balance <= 0:
        return None
    return req / margin_balance


def requirement_pieces(
    profile: Profile, pos: PositionLike, taker_fee: Decimal
) -> tuple[Piece, ...]:
    """The requirement of ``pos`` as a function of its own notional, piece by piece.

    A side tiered with its peer has the tier bounds and the deduction scaled by its share of the
    combined size: its own notional is in a piece exactly when the combined one is in the tier.
    """
    fee = taker_fee if profile.taker_fee_in_requirement else ZERO
    share = _share(pos)
    if profile.tier_basis == "contracts":
        tier = pos.table.tier_for(pos.contracts + pos.tier_peer)
        amount = tier.cum * share if profile.deducts_cum else ZERO
        return (Piece(tier.mmr + fee, amount, None, None, tier),)
    return _table_pieces(pos.table, profile.deducts_cum, fee, share)


@lru_cache(maxsize=4096)
def _table_pieces(
    table: TierTable, deducts_cum: bool, fee: Decimal, share: Decimal = ONE
) -> tuple[Piece, ...]:
    # tables are immutable, so their pieces are built once per (table, formula, fee, share)
    return tuple(
        Piece(
            tier.mmr + fee,
            tier.cum * share if deducts_cum else ZERO,
            tier.floor * share,
            tier.cap * share,
            tier,
        )
        for tier in table.tiers
    )


def solve_level_price(
    sign: int,
    qty: Decimal,
    entry: Decimal,
    wallet: Decimal,
    pieces: Sequence[Piece],
    level: Decimal = ONE,
) -> tuple[Decimal, Piece] | None:
    """The price ``P`` where ``requirement(P) = level * (wallet + s*Q*(P - EP))``.

    ``wallet`` is everything else that backs the position, net of the other positions'
    requirement (Binance's ``WB - TMM1 + UPNL1``). The tier must be the one containing ``Q*P``
    (docs/rules.md §5.2): each piece's solution is kept only if it lands in that piece, and the
    first piece also takes solutions at or below zero. The solution is unique because the margin
    surplus is strictly monotone in ``P`` (for ``level`` above every MMR). None when no piece
    has a solution (a degenerate table).
    """
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        den = qty * piece.rate - level * sign * qty
        if den == 0:
            continue
        price = (level * wallet + piece.amount - level * sign * qty * entry) / den
        if piece.floor is None or piece.cap is None:
            return price, piece
        notional = qty * price
        if (notional <= piece.cap or i == last) and (notional > piece.floor or i == 0):
            return price, piece
    return None


def liquidation_price(
    profile: Profile, pos: PositionLike, wallet: Decimal, taker_fee: Decimal
) -> tuple[Decimal, Tier] | None:
    """The formula's liquidation price (may be <= 0) and the tier it uses.

    ``wallet``: the isolated wallet for an isolated position; for a cross position the cross
    wallet minus the other cross positions' requirement plus their unrealized PnL.
    """
    return level_price(profile, pos, wallet, taker_fee, ONE)


def level_price(
    profile: Profile, pos: PositionLike, wallet: Decimal, taker_fee: Decimal, level: Decimal
) -> tuple[Decimal, Tier] | None:
    """The price where the margin ratio of ``pos`` equals ``level`` (1: the liquidation price)."""
    if _at_entry(profile, pos):
        # Bybit isolated: requirement frozen at entry, so the ratio is MM_e / (IWB + UPNL(P)).
        mm_e, tier = maintenance(profile, pos, pos.entry_price)
        price = pos.entry_price + pos.sign * (mm_e / level - wallet) / pos.qty
        return price, tier
    solved = solve_level_price(
        pos.sign,
        pos.qty,
        pos.entry_price,
        wallet,
        requirement_pieces(profile, pos, taker_fee),
        level,
    )
    if solved is None:
        return None
    return solved[0], solved[1].tier


def shared_level_price(
    profile: Profile,
    legs: Sequence[PositionLike],
    wallet: Decimal,
    taker_fee: Decimal,
    near: Decimal,
    level: Decimal = ONE,
) -> Decimal | None:
    """The price where the cross positions ``legs`` of one symbol (the long and the short of a
    hedged account), moving together, bring the ratio to ``level``: Binance's hedge-mode
    formula (docs/rules.md §5.6), each leg in the tier that contains its own notional at that
    price (§5.2). ``wallet`` backs them net of everything else, as in :func:`solve_level_price`.

    The margin surplus of a hedged pair need not be monotone in the price (a nearly balanced
    pair can be liquidated by a rise and by a fall), so every self-consistent solution is found
    and the one nearest to ``near`` (the mark: the one the price reaches first) is returned;
    None when there is none above zero.
    """
    found: list[Decimal] = []
    pieces = [requirement_pieces(profile, leg, taker_fee) for leg in legs]
    for combo in product(*pieces):
        den = ZERO
        num = level * wallet
        for leg, piece in zip(legs, combo, strict=True):
            den += leg.qty * piece.rate - level * leg.sign * leg.qty
            num += piece.amount - level * leg.sign * leg.qty * leg.entry_price
        if den == 0:
            continue
        price = num / den
        if price > 0 and all(
            _in_piece(leg.qty * price, piece, options)
            for leg, piece, options in zip(legs, combo, pieces, strict=True)
        ):
            found.append(price)
    return min(found, key=lambda p: abs(p - near)) if found else None


def _in_piece(notional: Decimal, piece: Piece, pieces: Sequence[Piece]) -> bool:
    if piece.floor is None or piece.cap is None:
        return True
    first, last = piece is pieces[0], piece is pieces[-1]
    return (notional <= piece.cap or last) and (notional > piece.floor or first)


def bankruptcy_price(pos: PositionLike, wallet: Decimal) -> Decimal:
    """Where the margin backing the position reaches zero: ``EP - s*W/Q`` (docs/rules.md §6)."""
    return pos.entry_price - pos.sign * wallet / pos.qty


def max_removable(
    profile: Profile, pos: PositionLike, mark: Decimal, taker_fee: Decimal
) -> Decimal:
    """Most isolated margin that may be taken out of ``pos`` (docs/rules.md §8.4)."""
    iwb = pos.isolated_wallet
    upnl = unrealized_pnl(pos, mark)
    req, _mm, _tier = requirement(profile, pos, mark, taker_fee)
    im_at_mark = pos.qty * mark / pos.leverage
    rule = profile.max_removable_rule
    if rule == "binance_current":
        limit = min(iwb - req, iwb + upnl - im_at_mark)
    elif rule == "binance_older":
        limit = min(iwb, iwb + upnl - im_at_mark)
    else:
        # Bybit: keep IM at entry plus the fee to close at the bankruptcy price, and stay above MM.
        im_entry = pos.qty * pos.entry_price / pos.leverage
        p_bk = pos.entry_price * (1 - pos.sign / pos.leverage)
        close_fee = pos.qty * p_bk * taker_fee
        limit = min(iwb - im_entry - close_fee, iwb + upnl - req)
    return max(ZERO, limit)


def order_cost(
    profile: Profile,
    side_sign: int,
    qty: Decimal,
    price: Decimal,
    mark: Decimal,
    leverage: Decimal,
    taker_fee: Decimal,
) -> Decimal:
    """What opening ``qty`` at ``price`` reserves from the available balance (docs/rules.md §3.2).

    ``side_sign`` is +1 for a buy, -1 for a sell.
    """
    notional = qty * price
    im = notional / leverage
    model = profile.order_cost_model
    if model == "im_plus_open_loss":
        open_loss = qty * abs(min(ZERO, side_sign * (mark - price)))
        return im + open_loss
    if model == "im_plus_two_way_fee":
        close_price = price * (1 - side_sign / leverage)
        return im + notional * taker_fee + qty * close_price * taker_fee
    return im
