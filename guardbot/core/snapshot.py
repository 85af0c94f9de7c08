"""Margin snapshot of one account: what ``guardbot calc`` prints and the engine reports.

Given the cross wallet, positions and their marks, compute per position and for the cross part of
the account: notional, PnL, IM, MM, margin ratio, liquidation and bankruptcy prices
(docs/contracts.md §1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from guardbot.core import margin
from guardbot.core.num import ZERO, fmt, fmt_opt
from guardbot.core.position import Position
from guardbot.core.profiles import Profile

__all__ = ["AccountView", "Level", "PositionView", "levels", "snapshot"]

#: One position in :func:`levels`: unrealized PnL, margin ratio (isolated only), liquidation price.
Level = tuple[Decimal, Decimal | None, Decimal | None]


@dataclass(frozen=True, slots=True)
class PositionView:
    symbol: str
    side: str
    margin_mode: str
    contracts: Decimal
    contract_size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    notional: Decimal
    unrealized_pnl: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    maintenance_margin_rate: Decimal
    requirement: Decimal
    collateral: Decimal
    isolated_wallet: Decimal | None
    margin_ratio: Decimal | None
    liquidation_price: Decimal | None
    bankruptcy_price: Decimal | None
    leverage: Decimal
    liquidated: bool
    #: ccxt's ``hedged``: the position is one side of a hedge-mode account.
    hedged: bool = False

    @property
    def distance_percent(self) -> Decimal | None:
        """How far the mark is from the liquidation price, in percent of the mark."""
        if self.liquidation_price is None or self.mark_price <= 0:
            return None
        return abs(self.mark_price - self.liquidation_price) / self.mark_price * 100

    def to_json(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "side": self.side,
            "hedged": self.hedged,
            "marginMode": self.margin_mode,
            "contracts": fmt(self.contracts),
            "contractSize": fmt(self.contract_size),
            "entryPrice": fmt(self.entry_price),
            "markPrice": fmt(self.mark_price),
            "notional": fmt(self.notional),
            "unrealizedPnl": fmt(self.unrealized_pnl),
            "initialMargin": fmt(self.initial_margin),
            "maintenanceMargin": fmt(self.maintenance_margin),
            "maintenanceMarginRate": fmt(self.maintenance_margin_rate),
            "collateral": fmt(self.collateral),
            "isolatedWallet": fmt_opt(self.isolated_wallet),
            "marginRatio": fmt_opt(self.margin_ratio),
            "liquidationPrice": fmt_opt(self.liquidation_price),
            "bankruptcyPrice": fmt_opt(self.bankruptcy_price),
            "leverage": fmt(self.leverage),
            "liquidated": self.liquidated,
        }


@dataclass(frozen=True, slots=True)
class AccountView:
    wallet: Decimal
    margin_balance: Decimal
    maintenance_margin: Decimal
    requirement: Decimal
    initial_margin: Decimal
    margin_ratio: Decimal | None
    available_balance: Decimal
    liquidated: bool
    unrealized_pnl: Decimal

    def to_json(self) -> dict[str, object]:
        return {
            "wallet": fmt(self.wallet),
            "marginBalance": fmt(self.margin_balance),
            "maintenanceMargin": fmt(self.maintenance_margin),
            "initialMargin": fmt(self.initial_margin),
            "marginRatio": fmt_opt(self.margin_ratio),
            "availableBalance": fmt(self.available_balance),
            "liquidated": self.liquidated,
        }


def _positive_or_none(sign: int, price: Decimal | None) -> Decimal | None:
    # A long whose solution is <= 0 can never be liquidated by its own price (docs/rules.md §5.3).
    if price is None or (sign > 0 and price <= 0):
        return None
    return price


def _shared_prices(
    profile: Profile,
    taker_fee: Decimal,
    cross_wallet: Decimal,
    cross_upnl: Decimal,
    cross_req: Decimal,
    positions: Sequence[Position],
    rows: Sequence[tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]],
) -> dict[str, Decimal | None]:
    """The one liquidation price of both cross sides of a hedged symbol (docs/rules.md §5.6):
    they move with the same mark, so neither can be solved with the other held still."""
    legs: dict[str, list[int]] = {}
    for i, pos in enumerate(positions):
        if not pos.isolated and pos.position_side is not None:
            legs.setdefault(pos.symbol, []).append(i)
    prices: dict[str, Decimal | None] = {}
    for symbol, index in legs.items():
        if len(index) < 2:
            continue
        pair = [positions[i] for i in index]
        wallet = cross_wallet - (cross_req - sum((rows[i][1] for i in index), ZERO))
        wallet += cross_upnl - sum((rows[i][0] for i in index), ZERO)
        mark = rows[index[0]][5]
        prices[symbol] = margin.shared_level_price(profile, pair, wallet, taker_fee, mark)
    return prices


def snapshot(
    profile: Profile,
    taker_fee: Decimal,
    cross_wallet: Decimal,
    positions: Sequence[Position],
    marks: Sequence[Decimal],
    *,
    open_order_margin: Decimal = ZERO,
    hedged: bool = False,
) -> tuple[list[PositionView], AccountView]:
    """Views of ``positions`` (in order) at ``marks`` and of the account's cross part.

    ``open_order_margin`` is the initial margin reserved by open orders, deducted from the
    available balance.
    """
    if hedged:
        margin.link_hedge_sides(profile, positions)
    cross_upnl = ZERO
    cross_upnl_for_available = ZERO
    cross_req = ZERO
    cross_mm = ZERO
    cross_im = ZERO
    has_cross = False
    rows: list[tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]] = []
    for pos, mark in zip(positions, marks, strict=True):
        upnl = margin.unrealized_pnl(pos, mark)
        req, mm, tier = margin.requirement(profile, pos, mark, taker_fee)
        im = margin.initial_margin(profile, pos, mark)
        rows.append((upnl, req, mm, tier.mmr, im, mark))
        if not pos.isolated:
            has_cross = True
            cross_upnl += upnl
            cross_upnl_for_available += (
                upnl if profile.upnl_profit_counts_for_available else min(upnl, ZERO)
            )
            cross_req += req
            cross_mm += mm
            cross_im += im

    margin_balance = cross_wallet + cross_upnl
    if not has_cross:
        account_ratio: Decimal | None = ZERO
        account_liquidated = False
    else:
        account_ratio = margin.margin_ratio(cross_req, margin_balance)
        account_liquidated = account_ratio is None or account_ratio >= 1
    account = AccountView(
        wallet=cross_wallet,
        margin_balance=margin_balance,
        maintenance_margin=cross_mm,
        requirement=cross_req,
        initial_margin=cross_im,
        margin_ratio=account_ratio,
        available_balance=cross_wallet + cross_upnl_for_available - cross_im - open_order_margin,
        liquidated=account_liquidated,
        unrealized_pnl=cross_upnl,
    )

    shared = _shared_prices(
        profile, taker_fee, cross_wallet, cross_upnl, cross_req, positions, rows
    )
    views = []
    for pos, (upnl, req, mm, mmr, im, mark) in zip(positions, rows, strict=True):
        if pos.isolated:
            collateral = pos.isolated_wallet + upnl
            ratio = margin.margin_ratio(req, collateral)
            liquidated = ratio is None or ratio >= 1
            lp_wallet = pos.isolated_wallet
            bk_wallet = pos.isolated_wallet
            isolated_wallet: Decimal | None = pos.isolated_wallet
        else:
            collateral = margin_balance
            ratio = account_ratio
            liquidated = account_liquidated
            others_upnl = cross_upnl - upnl
            lp_wallet = cross_wallet - (cross_req - req) + others_upnl
            bk_wallet = cross_wallet + others_upnl
            isolated_wallet = None
        if pos.symbol in shared:
            liq = shared[pos.symbol]
        else:
            solved = margin.liquidation_price(profile, pos, lp_wallet, taker_fee)
            liq = _positive_or_none(pos.sign, solved[0] if solved else None)
        bankrupt = _positive_or_none(pos.sign, margin.bankruptcy_price(pos, bk_wallet))
        views.append(
            PositionView(
                symbol=pos.symbol,
                side=pos.side or "long",
                margin_mode=pos.margin_mode,
                contracts=pos.contracts,
                contract_size=pos.contract_size,
                entry_price=pos.entry_price,
                mark_price=mark,
                notional=pos.qty * mark,
                unrealized_pnl=upnl,
                initial_margin=im,
                maintenance_margin=mm,
                maintenance_margin_rate=mmr,
                requirement=req,
                collateral=collateral,
                isolated_wallet=isolated_wallet,
                margin_ratio=ratio,
                liquidation_price=liq,
                bankruptcy_price=bankrupt,
                leverage=pos.leverage,
                liquidated=liquidated,
                hedged=hedged,
            )
        )
    return views, account


def levels(
    profile: Profile,
    taker_fee: Decimal,
    cross_wallet: Decimal,
    positions: Sequence[Position],
    marks: Sequence[Decimal],
) -> tuple[list[Level], Decimal | None]:
    """Part of :func:`snapshot` for a one-way account, the same values by the same arithmetic:
    per position (unrealized PnL, margin ratio if isolated else None, liquidation price) and
    the cross margin ratio. No initial margin, bankruptcy price or views: what a periodic
    sample (``guardbot replay``'s ``samples.jsonl``) prints, at a fraction of the cost.
    The sides of a hedged account share a liquidation price: :func:`snapshot` solves those.
    """
    cross_upnl = ZERO
    cross_req = ZERO
    has_cross = False
    rows: list[tuple[Decimal, Decimal]] = []
    for pos, mark in zip(positions, marks, strict=True):
        upnl = margin.unrealized_pnl(pos, mark)
        req = margin.requirement(profile, pos, mark, taker_fee)[0]
        rows.append((upnl, req))
        if not pos.isolated:
            has_cross = True
            cross_upnl += upnl
            cross_req += req
    account_ratio = margin.margin_ratio(cross_req, cross_wallet + cross_upnl) if has_cross else ZERO
    out: list[Level] = []
    for pos, (upnl, req) in zip(positions, rows, strict=True):
        if pos.isolated:
            ratio = margin.margin_ratio(req, pos.isolated_wallet + upnl)
            lp_wallet = pos.isolated_wallet
        else:
            ratio = None
            lp_wallet = cross_wallet - (cross_req - req) + (cross_upnl - upnl)
        solved = margin.liquidation_price(profile, pos, lp_wallet, taker_fee)
        out.append((upnl, ratio, _positive_or_none(pos.sign, solved[0] if solved else None)))
    return out, account_ratio
