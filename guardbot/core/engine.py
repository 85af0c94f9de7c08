"""The shadow margin engine: ticks and commands in, events out. Pure and deterministic.

Evaluation is incremental. A tick for symbol S touches only S's isolated positions (each compares
the mark with a precomputed quiet band of prices and does exact work only when it leaves it), the
cross accounts holding S (their sums are updated by the delta of S's position), and S's resting
triggers (heaps: one comparison when nothing fires). Nothing else is visited, so the cost of a tick
does not grow with positions in other symbols.

Every decision that matters is exact: margin ratios are compared as products of Decimals
(``requirement >= level * margin balance``), so a ratio of exactly 1 liquidates.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from guardbot.core import margin
from guardbot.core.account import Account
from guardbot.core.account_ops import AccountOpsMixin
from guardbot.core.admission import AdmissionMixin
from guardbot.core.alerts import Crossing
from guardbot.core.commands import (
    BalanceCmd,
    CancelCmd,
    Command,
    FundingCmd,
    MarginCmd,
    OrderCmd,
    SetLeverageCmd,
    SetMarginModeCmd,
    SetTradingStateCmd,
    TickCmd,
)
from guardbot.core.events import Event
from guardbot.core.guards import TradingState
from guardbot.core.liquidation import LiquidationMixin
from guardbot.core.market import HUNDRED, INF, NEG_INF, Market
from guardbot.core.num import ONE, ZERO, decimal_context
from guardbot.core.orderflow import OrderFlowMixin
from guardbot.core.position import Position
from guardbot.core.snapshot import AccountView, PositionView, snapshot

__all__ = ["Engine", "Market"]

# Quiet bands are narrowed by this relative amount so that a rounded threshold never lets a real
# crossing through; the exact evaluation then decides.
_BAND_EPS = Decimal("1e-25")
_DISTANCE_QUANTUM = Decimal("0.0001")  # distance to liquidation in alerts, in percent


class Engine(AdmissionMixin, OrderFlowMixin, LiquidationMixin, AccountOpsMixin):
    """The shadow margin engine. Not thread-safe; one instance per event loop or process."""

    def apply(self, ts: int | None, command: Command) -> list[Event]:
        """Apply one tick or command at time ``ts`` (ms); return the events it caused."""
        if ts is not None:
            self._ts = ts
        self._out = []
        with decimal_context():
            if isinstance(command, TickCmd):
                self._tick(command)
            elif isinstance(command, OrderCmd):
                self._place_order(command)
            elif isinstance(command, CancelCmd):
                self._cancel(command)
            elif isinstance(command, SetLeverageCmd):
                self._set_leverage(command)
            elif isinstance(command, SetMarginModeCmd):
                self._set_margin_mode(command)
            elif isinstance(command, MarginCmd):
                self._adjust_margin(command)
            elif isinstance(command, BalanceCmd):
                self._balance(command)
            elif isinstance(command, FundingCmd):
                self._funding(command)
            elif isinstance(command, SetTradingStateCmd):
                account = self.account(command.account)
                self._set_state(account, TradingState(command.state), command.reason)
            else:  # pragma: no cover - the Command union is closed
                raise TypeError(f"not an engine command: {command!r}")
        return self._out

    def tick(self, ts: int, tick: TickCmd) -> list[Event]:
        """The hot path, without the dispatch of :meth:`apply`."""
        self._ts = ts
        self._out = []
        with decimal_context():
            self._tick(tick)
        return self._out

    def set_price_stale(self, symbol: str, stale: bool) -> None:
        """Mark a symbol's price stale (the feed lost it): new orders get ``PRICE_STALE``."""
        self._market(symbol).stale = stale

    def views(self, account: Account) -> tuple[list[PositionView], AccountView]:
        """Margin snapshot of ``account`` at the current marks (positions by symbol)."""
        with decimal_context():
            positions = [account.positions[s] for s in sorted(account.positions)]
            marks = [self._mark_of(p.symbol) for p in positions]
            return snapshot(
                self.profile,
                account.fees.taker,
                account.wallet,
                positions,
                marks,
                open_order_margin=account.order_margin,
            )

    def state(self, account: Account) -> dict[str, object]:
        """The account as the ``final`` line of ``simulate`` reports it (values as Decimal)."""
        views, view = self.views(account)
        with decimal_context():
            isolated = sum(
                (p.isolated_wallet for p in account.positions.values() if p.isolated), ZERO
            )
            total = account.wallet + isolated
            free = view.available_balance
            ledger = account.ledger
            return {
                "wallet": account.wallet,
                "balance": {"USDT": {"free": free, "used": total - free, "total": total}},
                "insuranceFund": account.insurance_fund,
                "tradingState": account.state.value,
                "marginRatio": view.margin_ratio,
                "openOrders": [
                    o.describe() for o in sorted(account.orders.values(), key=lambda o: o.seq)
                ],
                "positions": [v.to_json() for v in views],
                "ledger": {
                    "initial": ledger.initial,
                    "deposits": ledger.deposits,
                    "withdrawals": ledger.withdrawals,
                    "realizedPnl": ledger.realized_pnl,
                    "fees": ledger.fees,
                    "funding": ledger.funding,
                    "liquidationLosses": ledger.liquidation_losses,
                },
            }

    def _tick(self, tick: TickCmd) -> None:
        self.tick_moved_orders = False
        market = self._market(tick.symbol)
        mark = market.mark = tick.mark
        if tick.last is not None:
            market.last = tick.last
        if tick.bid is not None:
            market.bid = tick.bid
        if tick.ask is not None:
            market.ask = tick.ask
        if tick.index is not None:
            market.index = tick.index
        if tick.funding_rate is not None:
            market.funding_rate = tick.funding_rate
        market.ts = self._ts
        if market.isolated:
            # a position leaves its quiet band only when something may change: evaluate those
            due = [
                (pos, account)
                for pos, account in market.isolated.items()
                if mark <= pos.band_lo or mark >= pos.band_hi
            ]
            for pos, account in due:
                if pos.is_open:
                    self._evaluate_isolated(account, pos)
        if market.cross:
            due_accounts = []
            for account, pos in market.cross.items():
                # cross sums move by this position's delta; the requirement is linear in the
                # notional inside a tier (R = n * rate - cum), so the delta is exact
                notional = pos.qty * mark
                if pos.c_floor < notional <= pos.c_cap:
                    account.c_req += (notional - pos.c_n) * pos.c_rate
                else:
                    before = pos.c_n * pos.c_rate - pos.c_cum
                    self._retier(account, pos, notional)
                    account.c_req += notional * pos.c_rate - pos.c_cum - before
                if pos.sign > 0:
                    account.c_upnl += notional - pos.c_n
                else:
                    account.c_upnl -= notional - pos.c_n
                pos.c_n = notional
                balance = account.wallet + account.c_upnl
                req = account.c_req
                down = account.down_level
                if (
                    balance <= 0
                    or req >= account.up_level * balance
                    or (down is not None and req < down * balance)
                ):
                    due_accounts.append(account)
            for account in due_accounts:
                self._evaluate_cross(account)
        if market.has_due_triggers():
            self._run_triggers(market)

    def _retier(self, account: Account, pos: Position, notional: Decimal) -> None:
        """Cache the requirement's rate, deduction and notional bounds of ``pos``'s tier."""
        profile = self.profile
        if profile.tier_basis == "contracts":
            tier = pos.table.tier_for(pos.contracts)
            pos.c_floor, pos.c_cap = NEG_INF, INF  # a price move never changes the tier
        else:
            table = pos.table
            i = table.index_for(notional)
            tier = table.tiers[i]
            pos.c_floor = tier.floor if i else NEG_INF
            pos.c_cap = tier.cap if i < len(table.tiers) - 1 else INF
        fee = account.fees.taker if profile.taker_fee_in_requirement else ZERO
        pos.c_rate = tier.mmr + fee
        pos.c_cum = tier.cum if profile.deducts_cum else ZERO

    def _refresh_cross(self, account: Account) -> None:
        """Recompute the cross sums of ``account`` from scratch at the current marks."""
        upnl_sum = req_sum = ZERO
        count = 0
        for pos in account.positions.values():
            if pos.isolated:
                continue
            count += 1
            notional = pos.qty * self._mark_of(pos.symbol)
            self._retier(account, pos, notional)
            pos.c_n = notional
            upnl_sum += pos.sign * (notional - pos.cost)
            req_sum += notional * pos.c_rate - pos.c_cum
        account.c_upnl, account.c_req, account.n_cross = upnl_sum, req_sum, count

    def _cross_mm(self, account: Account) -> Decimal:
        """Sum of the exchange maintenance margin of the cross positions at their marks."""
        total = ZERO
        for pos in account.positions.values():
            if not pos.isolated:
                total += margin.maintenance(self.profile, pos, self._mark_of(pos.symbol))[0]
        return total

    def _set_cross_thresholds(self, account: Account) -> None:
        up, down = account.alert.thresholds(self.config.alerts)
        account.up_level = min(up, ONE) if up is not None else ONE
        account.down_level = down

    def _evaluate_cross(self, account: Account) -> None:
        if account.n_cross == 0:
            crossings = account.alert.update(self.config.alerts, ZERO, ONE)
            self._emit_crossings(account, None, crossings, ZERO, ONE)
            self._set_cross_thresholds(account)
            return
        balance = account.wallet + account.c_upnl
        req = account.c_req
        crossings = account.alert.update(self.config.alerts, req, balance)
        self._emit_crossings(account, None, crossings, req, balance)
        if balance <= 0 or req >= balance:
            self._liquidate_cross(account)
        self._set_cross_thresholds(account)

    def _cross_liquidation_price(self, account: Account, pos: Position) -> Decimal | None:
        mark = self._mark_of(pos.symbol)
        upnl = margin.unrealized_pnl(pos, mark)
        req, _mm, _tier = margin.requirement(self.profile, pos, mark, account.fees.taker)
        wallet = account.wallet - (account.c_req - req) + (account.c_upnl - upnl)
        solved = margin.liquidation_price(self.profile, pos, wallet, account.fees.taker)
        if solved is None or (pos.sign > 0 and solved[0] <= 0):
            return None
        return solved[0]

    def _evaluate_isolated(self, account: Account, pos: Position) -> None:
        mark = self._mark_of(pos.symbol)
        req, _mm, _tier = margin.requirement(self.profile, pos, mark, account.fees.taker)
        balance = pos.isolated_wallet + margin.unrealized_pnl(pos, mark)
        crossings = pos.alert.update(self.config.alerts, req, balance)
        self._emit_crossings(account, pos, crossings, req, balance)
        if balance <= 0 or req >= balance:
            self._liquidate_isolated(account, pos)
            return
        self._set_band(account, pos)

    def _isolated_price_at(self, account: Account, pos: Position, level: Decimal) -> Decimal | None:
        solved = margin.level_price(
            self.profile, pos, pos.isolated_wallet, account.fees.taker, level
        )
        return None if solved is None else solved[0]

    def _set_band(self, account: Account, pos: Position) -> None:
        """Prices between which the isolated position needs no exact evaluation."""
        up, down = pos.alert.thresholds(self.config.alerts)
        rising = min(up, ONE) if up is not None else ONE
        worse = self._isolated_price_at(account, pos, rising)
        better = self._isolated_price_at(account, pos, down) if down is not None else None
        if worse is None:
            pos.band_lo, pos.band_hi = INF, NEG_INF  # evaluate on every tick
            return
        if pos.sign > 0:  # the ratio rises as the price falls
            pos.band_lo = worse + abs(worse) * _BAND_EPS
            pos.band_hi = better - abs(better) * _BAND_EPS if better is not None else INF
        else:
            pos.band_hi = worse - abs(worse) * _BAND_EPS
            pos.band_lo = better + abs(better) * _BAND_EPS if better is not None else NEG_INF

    def _isolated_liquidation_price(self, account: Account, pos: Position) -> Decimal | None:
        price = self._isolated_price_at(account, pos, ONE)
        if price is None or (pos.sign > 0 and price <= 0):
            return None
        return price

    def _emit_crossings(
        self,
        account: Account,
        pos: Position | None,
        crossings: list[Crossing],
        req: Decimal,
        balance: Decimal,
    ) -> None:
        if not crossings:
            return
        ratio = req / balance if balance > 0 else None
        levels = self.config.alerts.levels
        if pos is not None:
            scope_fields: dict[str, object] = {"scope": "position", "symbol": pos.symbol}
            liq = self._isolated_liquidation_price(account, pos)
            liq_symbol: str | None = pos.symbol
        else:
            scope_fields = {"scope": "account", "symbol": None}
            liq, liq_symbol = self._nearest_cross_liquidation(account)
        mark = self.markets[liq_symbol].mark if liq_symbol else None
        distance = (
            (abs(mark - liq) / mark * HUNDRED).quantize(_DISTANCE_QUANTUM)
            if liq is not None and mark is not None
            else None
        )
        for crossing in crossings:
            if crossing.recovered:
                self._emit("margin_recovered", account, **scope_fields, marginRatio=ratio)
                continue
            self._emit(
                "margin_alert",
                account,
                **scope_fields,
                level=crossing.level,
                threshold=levels[crossing.level],
                severity=self.config.alerts.severity(crossing.level),
                marginRatio=ratio,
                liquidationPrice=liq,
                liquidationSymbol=liq_symbol,
                markPrice=mark,
                distancePercent=distance,
            )

    def _nearest_cross_liquidation(self, account: Account) -> tuple[Decimal | None, str | None]:
        best: tuple[Decimal, Decimal, str] | None = None
        for symbol in sorted(account.positions):
            pos = account.positions[symbol]
            if pos.isolated:
                continue
            liq = self._cross_liquidation_price(account, pos)
            if liq is None:
                continue
            mark = self._mark_of(symbol)
            distance = abs(mark - liq) / mark
            if best is None or distance < best[0]:
                best = (distance, liq, symbol)
        if best is None:
            return None, None
        return best[1], best[2]

    def _after_change(self, account: Account, changed: Position | None = None) -> None:
        """Re-evaluate ``account`` after its cross wallet or the position ``changed`` moved.

        An isolated position depends only on its own wallet and mark, so only ``changed`` needs
        an isolated evaluation; the cross sums are recomputed from the positions.
        """
        self._refresh_cross(account)
        if changed is not None and changed.isolated and changed.is_open:
            self._evaluate_isolated(account, changed)
        if account.positions or account.alert.alerted:
            self._evaluate_cross(account)
        else:
            self._set_cross_thresholds(account)

    def iter_accounts(self) -> Iterable[Account]:
        return (self.accounts[k] for k in sorted(self.accounts))
