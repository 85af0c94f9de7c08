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

import heapq
from collections.abc import Iterable
from decimal import Decimal

from guardbot.core import margin
from guardbot.core.account import Account, SymbolSettings
from guardbot.core.codes import Code
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
from guardbot.core.config import AccountConfig, EngineConfig
from guardbot.core.events import Event
from guardbot.core.guards import Decision, TradingState, utc_day
from guardbot.core.num import ONE, ZERO, decimal_context, money
from guardbot.core.orders import Order
from guardbot.core.position import Position
from guardbot.core.snapshot import AccountView, PositionView, snapshot
from guardbot.core.tiers import TierTable
from guardbot.errors import InputError

__all__ = ["Engine", "Market"]

_INF = Decimal("Infinity")
_NEG_INF = Decimal("-Infinity")
# Quiet bands are narrowed by this relative amount so that a rounded threshold never lets a real
# crossing through; the exact evaluation then decides.
_BAND_EPS = Decimal("1e-25")
_BPS = Decimal(10000)
_HUNDRED = Decimal(100)
_DISTANCE_QUANTUM = Decimal("0.0001")  # distance to liquidation in alerts, in percent


class Market:
    """Prices of one symbol and what the engine must visit when it ticks."""

    __slots__ = (
        "ask",
        "bid",
        "buy_limits",
        "contract_size",
        "cross",
        "funding_rate",
        "index",
        "isolated",
        "last",
        "mark",
        "sell_limits",
        "stale",
        "symbol",
        "table",
        "trailing",
        "triggers",
        "ts",
    )

    def __init__(self, symbol: str, table: TierTable | None, contract_size: Decimal) -> None:
        self.symbol = symbol
        self.table = table
        self.contract_size = contract_size
        self.mark: Decimal | None = None
        self.last: Decimal | None = None
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None
        self.index: Decimal | None = None
        self.funding_rate: Decimal | None = None
        self.ts: int | None = None
        self.stale = False
        self.isolated: dict[Position, Account] = {}
        self.cross: dict[Account, Position] = {}
        # triggers[source] = (fire-when-price-falls heap, fire-when-price-rises heap)
        self.triggers: dict[str, tuple[list[tuple[Decimal, int, Order]], ...]] = {
            "mark": ([], []),
            "last": ([], []),
        }
        self.buy_limits: list[tuple[Decimal, int, Order]] = []  # fire when ask <= price
        self.sell_limits: list[tuple[Decimal, int, Order]] = []  # fire when bid >= price
        self.trailing: list[Order] = []

    def price(self, source: str) -> Decimal | None:
        if source == "last":
            return self.last if self.last is not None else self.mark
        return self.mark

    def buy_price(self) -> Decimal | None:
        """What a buyer pays now: ask, falling back to last, then mark."""
        return self.ask or self.last or self.mark

    def sell_price(self) -> Decimal | None:
        return self.bid or self.last or self.mark

    def has_due_triggers(self) -> bool:
        """Whether a resting trigger or limit order may fire at the current prices (cheap).

        A cancelled order left at a heap top also answers True; the full pass drops it.
        """
        if self.trailing:
            return True
        falls, rises = self.triggers["mark"]
        mark = self.mark
        if mark is not None and (
            (falls and -falls[0][0] >= mark) or (rises and rises[0][0] <= mark)
        ):
            return True
        falls, rises = self.triggers["last"]
        last = self.last if self.last is not None else mark
        if last is not None and (
            (falls and -falls[0][0] >= last) or (rises and rises[0][0] <= last)
        ):
            return True
        if self.buy_limits:
            touch = self.buy_price()
            if touch is not None and touch <= -self.buy_limits[0][0]:
                return True
        if self.sell_limits:
            touch = self.sell_price()
            if touch is not None and touch >= self.sell_limits[0][0]:
                return True
        return False

    def has_triggers(self) -> bool:
        t = self.triggers
        return bool(
            self.buy_limits
            or self.sell_limits
            or self.trailing
            or t["mark"][0]
            or t["mark"][1]
            or t["last"][0]
            or t["last"][1]
        )


class Engine:
    """The shadow margin engine. Not thread-safe; one instance per event loop or process."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.profile = config.profile
        self.markets: dict[str, Market] = {}
        self.accounts: dict[str, Account] = {}
        self._seq = 0
        self._ts = 0
        self._out: list[Event] = []
        with decimal_context():
            for account_id, account_config in config.accounts.items():
                self._new_account(account_id, account_config)

    # ------------------------------------------------------------------ entry points

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

    def account(self, account_id: str | None) -> Account:
        """The account of ``account_id``; with None, the only account there is."""
        if account_id is None:
            if len(self.accounts) == 1:
                return next(iter(self.accounts.values()))
            if not self.accounts and self.config.auto_create_accounts:
                return self._new_account("default", self.config.default_account)
            raise InputError("account", "is required when there is more than one account")
        account = self.accounts.get(account_id)
        if account is None:
            if not self.config.auto_create_accounts:
                known = ", ".join(sorted(self.accounts)) or "none"
                raise InputError("account", f"unknown account {account_id!r} (known: {known})")
            with decimal_context():
                account = self._new_account(account_id, self.config.default_account)
        return account

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

    # ------------------------------------------------------------------ setup helpers

    def _new_account(self, account_id: str, config: AccountConfig) -> Account:
        account = Account(
            id=account_id, config=config, fees=config.fees or self.config.fees, wallet=config.wallet
        )
        account.ledger.initial = config.wallet
        account.alert.reset(self.config.alerts)
        self._set_cross_thresholds(account)
        self.accounts[account_id] = account
        return account

    def _market(self, symbol: str) -> Market:
        market = self.markets.get(symbol)
        if market is None:
            table = self.config.tiers.get(symbol)
            size = self.config.contract_sizes.get(symbol, ONE)
            market = self.markets[symbol] = Market(symbol, table, size)
        return market

    def _mark_of(self, symbol: str) -> Decimal:
        mark = self.markets[symbol].mark
        assert mark is not None, "a position exists only where a price was seen"
        return mark

    def _settings(self, account: Account, symbol: str) -> SymbolSettings:
        settings = account.settings.get(symbol)
        if settings is None:
            leverage = account.config.default_leverage
            cap = self.config.guards.leverage_cap(symbol)
            table = self.config.tiers.get(symbol)
            if cap is not None:
                leverage = min(leverage, cap)
            if table is not None:
                leverage = min(leverage, table.tiers[0].max_leverage)
            settings = SymbolSettings(account.config.default_margin_mode, leverage)
            account.settings[symbol] = settings
        return settings

    def _emit(self, event_type: str, account: Account | None, /, **fields: object) -> Event:
        event: Event = {
            "type": event_type,
            "ts": self._ts,
            "account": account.id if account else None,
        }
        event.update(fields)
        self._out.append(event)
        return event

    def _reject(
        self, account: Account, order_id: str | None, decision: Decision, **extra: object
    ) -> None:
        self._emit(
            "order_rejected",
            account,
            id=order_id,
            code=decision.code,
            reason=decision.reason,
            **extra,
        )

    # ------------------------------------------------------------------ ticks

    def _tick(self, tick: TickCmd) -> None:
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
            pos.c_floor, pos.c_cap = _NEG_INF, _INF  # a price move never changes the tier
        else:
            table = pos.table
            i = table.index_for(notional)
            tier = table.tiers[i]
            pos.c_floor = tier.floor if i else _NEG_INF
            pos.c_cap = tier.cap if i < len(table.tiers) - 1 else _INF
        fee = account.fees.taker if profile.taker_fee_in_requirement else ZERO
        pos.c_rate = tier.mmr + fee
        pos.c_cum = tier.cum if profile.deducts_cum else ZERO

    # ------------------------------------------------------------------ cross accounts

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

    # ------------------------------------------------------------------ isolated positions

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
            pos.band_lo, pos.band_hi = _INF, _NEG_INF  # evaluate on every tick
            return
        if pos.sign > 0:  # the ratio rises as the price falls
            pos.band_lo = worse + abs(worse) * _BAND_EPS
            pos.band_hi = better - abs(better) * _BAND_EPS if better is not None else _INF
        else:
            pos.band_hi = worse - abs(worse) * _BAND_EPS
            pos.band_lo = better + abs(better) * _BAND_EPS if better is not None else _NEG_INF

    def _isolated_liquidation_price(self, account: Account, pos: Position) -> Decimal | None:
        price = self._isolated_price_at(account, pos, ONE)
        if price is None or (pos.sign > 0 and price <= 0):
            return None
        return price

    # ------------------------------------------------------------------ alerts

    def _emit_crossings(
        self,
        account: Account,
        pos: Position | None,
        crossings: list,  # type: ignore[type-arg]
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
            (abs(mark - liq) / mark * _HUNDRED).quantize(_DISTANCE_QUANTUM)
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

    # ------------------------------------------------------------------ liquidation

    def _liquidate_isolated(self, account: Account, pos: Position) -> None:
        self._cancel_where(account, lambda o: o.symbol == pos.symbol, "liquidation")
        mark = self._mark_of(pos.symbol)
        req, _mm, _tier = margin.requirement(self.profile, pos, mark, account.fees.taker)
        balance = pos.isolated_wallet + margin.unrealized_pnl(pos, mark)
        if balance > 0 and req < balance:  # cured by the cancellations (margin_rules §7.1)
            self._set_band(account, pos)
            return
        wallet = pos.isolated_wallet
        notional = pos.qty * mark
        bankrupt = margin.bankruptcy_price(pos, wallet)
        if self.profile.liquidation_settlement == "bankruptcy":
            price = bankrupt
            returned = ZERO
            # s*Q*(mark - P_bk) without the rounded P_bk: the position's equity at mark
            fund_delta = wallet + money(margin.unrealized_pnl(pos, mark))
            fee = ZERO
        else:
            price = mark
            left = wallet + money(margin.unrealized_pnl(pos, mark))
            fee = min(max(left, ZERO), self.profile.liquidation_fee_rate * notional)
            left -= fee
            returned = max(left, ZERO)
            fund_delta = fee + min(left, ZERO)  # the fund takes the fee and covers any deficit
        loss = wallet - returned
        account.wallet += returned
        account.insurance_fund += fund_delta
        account.ledger.liquidation_losses += loss
        account.daily.add(self._ts, -loss)
        self._emit(
            "liquidation",
            account,
            scope="position",
            symbol=pos.symbol,
            side=pos.side,
            contracts=pos.contracts,
            entryPrice=pos.entry_price,
            markPrice=mark,
            price=price,
            bankruptcyPrice=bankrupt,
            isolatedWallet=wallet,
            fee=fee,
            loss=loss,
            insuranceFundDelta=fund_delta,
        )
        pos.isolated_wallet = ZERO
        self._close_out(account, pos, "liquidation")
        self._check_daily_loss(account)

    def _liquidate_cross(self, account: Account) -> None:
        self._cancel_where(
            account,
            lambda o: self._settings(account, o.symbol).margin_mode != "isolated",
            "liquidation",
        )
        balance = account.wallet + account.c_upnl
        if balance > 0 and account.c_req < balance:
            return
        positions = [p for p in account.positions.values() if not p.isolated]
        marks = {p.symbol: self._mark_of(p.symbol) for p in positions}
        upnl = {p.symbol: money(margin.unrealized_pnl(p, marks[p.symbol])) for p in positions}
        # profitable positions first, so that a deficit shows on the last, losing one
        positions.sort(key=lambda p: (-upnl[p.symbol], p.symbol))
        rate = self.profile.liquidation_fee_rate
        bankruptcy_model = self.profile.liquidation_settlement == "bankruptcy"
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
            loss = before - account.wallet
            account.insurance_fund += fund_delta
            account.ledger.liquidation_losses += loss
            account.daily.add(self._ts, -loss)
            self._emit(
                "liquidation",
                account,
                scope="account",
                symbol=pos.symbol,
                side=pos.side,
                contracts=pos.contracts,
                entryPrice=pos.entry_price,
                markPrice=mark,
                price=price,
                bankruptcyPrice=bankrupt,
                fee=fee,
                loss=loss,
                insuranceFundDelta=fund_delta,
            )
            self._close_out(account, pos, "liquidation")
        account.alert.reset(self.config.alerts)
        self._refresh_cross(account)
        self._check_daily_loss(account)

    def _close_out(self, account: Account, pos: Position, reason: str) -> None:
        """Forget a position that went flat: its protective and reduce-only orders go too."""
        self._cancel_where(
            account,
            lambda o: o.symbol == pos.symbol and (o.reduce_only or o.close_position),
            reason,
        )
        pos.set_size(0, ZERO, ZERO)
        pos.alert.reset(self.config.alerts)
        account.positions.pop(pos.symbol, None)
        market = self.markets[pos.symbol]
        market.isolated.pop(pos, None)
        if market.cross.get(account) is pos:
            del market.cross[account]

    # ------------------------------------------------------------------ orders

    def _place_order(self, cmd: OrderCmd) -> None:
        account = self.account(cmd.account)
        self._roll_day(account)
        if cmd.id in account.orders:
            self._reject(
                account,
                cmd.id,
                Decision(Code.INVALID_ORDER, f"an open order already has id {cmd.id!r}"),
            )
            return
        decision = self._check_order(account, cmd)
        if not decision.ok:
            self._reject(account, cmd.id, decision)
            return
        market = self.markets[cmd.symbol]
        amount = cmd.amount
        pos = account.positions.get(cmd.symbol)
        if cmd.reduce_only and pos is not None and not self._conditional(cmd):
            amount = self._reduce_only_room(
                account, pos, cmd.side, amount, resting=cmd.order_type == "limit"
            )
        self._seq += 1
        order = Order(
            id=cmd.id,
            account=account.id,
            symbol=cmd.symbol,
            side=cmd.side,
            order_type=cmd.order_type,
            amount=amount,
            price=cmd.price,
            reduce_only=cmd.reduce_only,
            seq=self._seq,
            ts=self._ts,
            time_in_force=cmd.time_in_force,
            post_only=cmd.post_only,
            stop_loss_price=cmd.stop_loss_price,
            take_profit_price=cmd.take_profit_price,
            trigger_source=cmd.trigger_price_type or self.config.trigger_price,
        )
        if (
            cmd.reduce_only
            and (cmd.stop_loss_price or cmd.take_profit_price)
            and cmd.trigger_price is None
        ):
            # ccxt's stand-alone stop-loss / take-profit order: conditional and reduce-only
            order.kind = "stop_loss" if cmd.stop_loss_price else "take_profit"
            order.trigger_price = cmd.stop_loss_price or cmd.take_profit_price
            order.stop_loss_price = order.take_profit_price = None
            order.trigger_dir = cmd.side if order.kind == "stop_loss" else -cmd.side
        elif cmd.trigger_price is not None:
            order.kind = "trigger"
            order.trigger_price = cmd.trigger_price
            order.trigger_dir = cmd.trigger_direction or cmd.side
        elif cmd.trailing_percent is not None:
            order.kind = "trailing_stop"
            order.trailing_percent = cmd.trailing_percent
            order.trailing_activation = cmd.trailing_trigger_price
            order.trigger_dir = cmd.side
        amount_note = {"requestedAmount": cmd.amount} if amount != cmd.amount else {}
        self._emit("order_accepted", account, **order.describe(), **amount_note)
        if order.kind is not None:
            self._rest_trigger(account, market, order)
            return
        if order.order_type == "market":
            fill_price = self._taker_price(market, order.side)
            assert fill_price is not None  # checked by _check_order
            self._execute(account, order, order.amount, fill_price, "taker")
            return
        self._rest_or_take_limit(account, market, order)

    @staticmethod
    def _conditional(cmd: OrderCmd) -> bool:
        return (
            cmd.trigger_price is not None
            or cmd.trailing_percent is not None
            or (cmd.reduce_only and bool(cmd.stop_loss_price or cmd.take_profit_price))
        )

    def _taker_price(self, market: Market, side: int) -> Decimal | None:
        base = market.buy_price() if side > 0 else market.sell_price()
        if base is None:
            return None
        if self.config.slippage_bps:
            base = base * (1 + side * self.config.slippage_bps / _BPS)
        return base

    def _rest_or_take_limit(self, account: Account, market: Market, order: Order) -> None:
        price = order.price
        assert price is not None
        touch = market.buy_price() if order.side > 0 else market.sell_price()
        crosses = touch is not None and (touch <= price if order.side > 0 else touch >= price)
        if crosses:
            assert touch is not None
            self._execute(account, order, order.amount, touch, "taker")
            return
        if order.time_in_force in ("IOC", "FOK"):
            self._emit(
                "order_cancelled",
                account,
                id=order.id,
                reason=f"{order.time_in_force} order did not fill",
            )
            return
        order.reserved = self._order_reserve(account, order)
        account.order_margin += order.reserved
        account.orders[order.id] = order
        heap = market.buy_limits if order.side > 0 else market.sell_limits
        heapq.heappush(heap, (-price if order.side > 0 else price, order.seq, order))

    def _order_reserve(self, account: Account, order: Order) -> Decimal:
        if order.reduce_only or order.price is None:
            return ZERO
        pos = account.positions.get(order.symbol)
        opening = self._opening_contracts(pos, order.side, order.amount)
        if opening <= 0:
            return ZERO
        market = self.markets[order.symbol]
        settings = self._settings(account, order.symbol)
        assert market.mark is not None
        return margin.order_cost(
            self.profile,
            order.side,
            opening * market.contract_size,
            order.price,
            market.mark,
            settings.leverage,
            account.fees.taker,
        )

    def _rest_trigger(self, account: Account, market: Market, order: Order) -> None:
        account.orders[order.id] = order
        if order.kind == "trailing_stop":
            order.trailing_extreme = market.price(order.trigger_source)
            market.trailing.append(order)
            return
        self._push_trigger(market, order)

    @staticmethod
    def _push_trigger(market: Market, order: Order) -> None:
        assert order.trigger_price is not None
        falls, rises = market.triggers[order.trigger_source]
        if order.trigger_dir > 0:
            heapq.heappush(rises, (order.trigger_price, order.seq, order))
        else:
            heapq.heappush(falls, (-order.trigger_price, order.seq, order))

    def _opening_contracts(self, pos: Position | None, side: int, amount: Decimal) -> Decimal:
        if pos is None or pos.sign == 0 or pos.sign == side:
            return amount
        return max(ZERO, amount - pos.contracts)

    def _reduce_only_room(
        self, account: Account, pos: Position, side: int, amount: Decimal, *, resting: bool
    ) -> Decimal:
        """Trim a reduce-only amount to what the position (less resting reduce-only) allows."""
        room = pos.contracts
        if resting:
            room -= self._resting_reduce_only(account, pos.symbol, side)
        return min(amount, room)

    @staticmethod
    def _resting_reduce_only(account: Account, symbol: str, side: int) -> Decimal:
        return sum(
            (
                o.amount
                for o in account.orders.values()
                if o.symbol == symbol and o.side == side and o.reduce_only and o.kind is None
            ),
            ZERO,
        )

    # ------------------------------------------------------------------ admission

    def _check_order(self, account: Account, cmd: OrderCmd) -> Decision:
        table = self.config.tiers.get(cmd.symbol)
        if table is None:
            return Decision(
                Code.UNKNOWN_SYMBOL, f"no tier table for {cmd.symbol}: the engine does not trade it"
            )
        market = self._market(cmd.symbol)
        conditional = self._conditional(cmd)
        if cmd.post_only and cmd.order_type == "market":
            return Decision(Code.INVALID_ORDER, "postOnly needs a limit order")
        if cmd.post_only and cmd.price is not None and not conditional:
            touch = market.buy_price() if cmd.side > 0 else market.sell_price()
            if touch is not None and (touch <= cmd.price if cmd.side > 0 else touch >= cmd.price):
                return Decision(
                    Code.INVALID_ORDER,
                    f"post-only order at {cmd.price} would take liquidity at {touch}"
                    " (Binance -5022)",
                )
        if cmd.trailing_percent is not None and cmd.trigger_price is not None:
            return Decision(
                Code.INVALID_ORDER, "trailingPercent and triggerPrice exclude each other"
            )
        if (
            (cmd.stop_loss_price or cmd.take_profit_price)
            and conditional
            and cmd.trigger_price is not None
        ):
            return Decision(
                Code.INVALID_ORDER,
                "stopLossPrice/takeProfitPrice cannot be attached to a trigger order",
            )
        state = account.state
        pos = account.positions.get(cmd.symbol)
        reduces = (
            pos is not None
            and pos.sign == -cmd.side
            and (cmd.reduce_only or cmd.amount <= pos.contracts)
        )
        if state == TradingState.HALTED:
            return Decision(
                Code.TRADING_HALTED, f"trading is halted ({account.state_reason}): cancels only"
            )
        if state == TradingState.REDUCING and not (reduces or cmd.reduce_only):
            return Decision(
                Code.TRADING_STATE_REDUCING,
                f"only orders that reduce a position are accepted ({account.state_reason})",
            )
        watched = market.price(cmd.trigger_price_type or self.config.trigger_price)
        if market.stale or market.mark is None or watched is None:
            return Decision(Code.PRICE_STALE, f"no fresh price for {cmd.symbol}")
        if cmd.reduce_only:
            if pos is None:
                return Decision(
                    Code.REDUCE_ONLY_NO_POSITION, f"no open position in {cmd.symbol} to reduce"
                )
            if pos.sign == cmd.side:
                return Decision(
                    Code.REDUCE_ONLY_WOULD_INCREASE_POSITION,
                    f"a {'buy' if cmd.side > 0 else 'sell'} would increase the {pos.side} position",
                )
            if not conditional:
                oversize = self._oversize_decision(account, pos, cmd)
                if oversize is not None:
                    return oversize
        opening = ZERO if cmd.reduce_only else self._opening_contracts(pos, cmd.side, cmd.amount)
        guards = self.config.guards
        has_stop = cmd.stop_loss_price is not None or self._has_stop(account, cmd.symbol, -cmd.side)
        if guards.require_stop_loss and opening > 0 and not has_stop and not conditional:
            return Decision(Code.STOP_LOSS_REQUIRED, "an opening order needs params.stopLossPrice")
        crossed = self._crossed_triggers(cmd, watched)
        if crossed is not None:
            return crossed
        if opening <= 0 or (conditional and cmd.reduce_only):
            return Decision()
        return self._risk_decision(account, market, cmd, opening, check_margin=not conditional)

    def _oversize_decision(self, account: Account, pos: Position, cmd: OrderCmd) -> Decision | None:
        policy = self.config.guards.reduce_only_oversize or self.profile.reduce_only_excess
        resting = (
            self._resting_reduce_only(account, cmd.symbol, cmd.side)
            if cmd.order_type == "limit"
            else ZERO
        )
        room = pos.contracts - resting
        if room <= 0:
            return Decision(
                Code.REDUCE_ONLY_WOULD_INCREASE_POSITION,
                "resting reduce-only orders already cover the whole position",
            )
        if cmd.amount > room and policy == "reject":
            return Decision(
                Code.REDUCE_ONLY_WOULD_INCREASE_POSITION,
                f"amount {cmd.amount} exceeds the {room} contracts a reduce-only order may close",
            )
        return None

    def _has_stop(self, account: Account, symbol: str, side: int) -> bool:
        return any(
            o.symbol == symbol and o.kind in ("stop_loss", "trailing_stop") and o.side == side
            for o in account.orders.values()
        )

    def _crossed_triggers(self, cmd: OrderCmd, watched: Decimal) -> Decision | None:
        # Attached SL/TP protect the position the order opens: a long's stop sits below.
        position_side = cmd.side if not cmd.reduce_only else -cmd.side
        checks: list[tuple[str, Decimal | None, int]] = []
        if cmd.trigger_price is not None:
            checks.append(("triggerPrice", cmd.trigger_price, cmd.trigger_direction or cmd.side))
        else:
            checks.append(("stopLossPrice", cmd.stop_loss_price, -position_side))
            checks.append(("takeProfitPrice", cmd.take_profit_price, position_side))
        for name, price, direction in checks:
            if price is None:
                continue
            if (direction > 0 and watched >= price) or (direction < 0 and watched <= price):
                return Decision(
                    Code.ORDER_WOULD_TRIGGER_IMMEDIATELY,
                    f"{name} {price} is already crossed by the "
                    f"{cmd.trigger_price_type or self.config.trigger_price} price {watched}",
                )
        return None

    def _after_order(
        self, account: Account, symbol: str, side: int, amount: Decimal
    ) -> tuple[Decimal, Decimal]:
        """(contracts of the position that stay, contracts the order opens) if it fills."""
        pos = account.positions.get(symbol)
        if pos is None or pos.sign == 0 or pos.sign == side:
            return (pos.contracts if pos else ZERO), amount
        return max(ZERO, pos.contracts - amount), max(ZERO, amount - pos.contracts)

    def _exposure(
        self, account: Account, symbol: str, side: int, amount: Decimal, price: Decimal
    ) -> Decimal:
        """What selects the tier for the leverage check: the position left after the order (at
        mark) plus what the order and the other resting opening orders add (at their prices);
        contracts for tiers keyed on contracts. Binance counts position and open orders (-2027)."""
        market = self.markets[symbol]
        stay, opening = self._after_order(account, symbol, side, amount)
        others = ZERO
        other_value = ZERO
        for o in account.orders.values():
            if o.symbol == symbol and not o.reduce_only and o.kind is None and o.price is not None:
                others += o.amount
                other_value += o.amount * market.contract_size * o.price
        if self.profile.tier_basis == "contracts":
            return stay + opening + others
        mark = market.mark if market.mark is not None else price
        return (stay * mark + opening * price) * market.contract_size + other_value

    def _risk_decision(
        self,
        account: Account,
        market: Market,
        cmd: OrderCmd,
        opening: Decimal,
        *,
        check_margin: bool,
    ) -> Decision:
        symbol = cmd.symbol
        settings = self._settings(account, symbol)
        leverage = settings.leverage
        cap = self.config.guards.leverage_cap(symbol)
        if cap is not None and leverage > cap:
            return Decision(
                Code.LEVERAGE_EXCEEDS_MAX,
                f"leverage {leverage} is above the policy cap {cap} for {symbol}",
            )
        price = self._expected_fill_price(market, cmd)
        if price is None:
            return Decision(Code.PRICE_STALE, f"no price to fill {cmd.symbol}")
        table = market.table
        assert table is not None
        exposure = self._exposure(account, symbol, cmd.side, cmd.amount, price)
        tier_max = table.max_leverage_for(exposure)
        if leverage > tier_max:
            unit = "contracts" if self.profile.tier_basis == "contracts" else "USDT"
            return Decision(
                Code.LEVERAGE_EXCEEDS_MAX,
                f"leverage {leverage} is above the tier maximum {tier_max}"
                f" for {exposure} {unit} of {symbol}",
            )
        size = market.contract_size
        guards = self.config.guards
        account.positions.get(symbol)
        stay, opens = self._after_order(account, symbol, cmd.side, cmd.amount)
        assert market.mark is not None
        after = (stay * market.mark + opens * price) * size
        if guards.max_position_notional is not None and after > guards.max_position_notional:
            return Decision(
                Code.NOTIONAL_EXCEEDS_MAX,
                f"position notional {after} would exceed max_position_notional"
                f" {guards.max_position_notional}",
            )
        if guards.max_account_exposure is not None:
            total = after + self._open_order_value(account, symbol)
            for other, p in account.positions.items():
                if other != symbol:
                    total += p.qty * self._mark_of(other) + self._open_order_value(account, other)
            if total > guards.max_account_exposure:
                return Decision(
                    Code.EXPOSURE_EXCEEDS_MAX,
                    f"account exposure {total} would exceed max_account_exposure"
                    f" {guards.max_account_exposure}",
                )
        if check_margin:
            assert market.mark is not None
            cost = margin.order_cost(
                self.profile,
                cmd.side,
                opening * size,
                price,
                market.mark,
                leverage,
                account.fees.taker,
            )
            if self.profile.order_cost_model != "im_plus_two_way_fee":
                # the opening fee is debited at the fill: admit only what the wallet can pay
                cost += opening * size * price * account.fees.taker
            available = self._available(account)
            if settings.margin_mode == "isolated":
                # an isolated wallet is funded from the cross wallet itself, never from
                # unrealized profit (Binance's max-addable rule, margin_rules §8.4)
                available = min(available, self._max_addable(account))
            if cost > available:
                return Decision(
                    Code.MARGIN_INSUFFICIENT,
                    f"order cost {cost} exceeds the available balance {available}",
                )
        return Decision()

    def _expected_fill_price(self, market: Market, cmd: OrderCmd) -> Decimal | None:
        """Where the order will trade: the touch for a market or marketable limit order (a sell
        limit below the bid sells at the bid), otherwise its limit price."""
        touch = self._taker_price(market, cmd.side)
        if cmd.price is None:
            return touch
        if touch is not None and (touch <= cmd.price if cmd.side > 0 else touch >= cmd.price):
            return touch
        return cmd.price

    def _open_order_value(self, account: Account, symbol: str) -> Decimal:
        size = self.markets[symbol].contract_size
        return sum(
            (
                o.amount * size * o.price
                for o in account.orders.values()
                if o.symbol == symbol
                and not o.reduce_only
                and o.kind is None
                and o.price is not None
            ),
            ZERO,
        )

    def _available(self, account: Account) -> Decimal:
        """Available balance for orders (margin_rules §3.3): unrealized profit counts by profile."""
        total = account.wallet - account.order_margin
        counts_profit = self.profile.upnl_profit_counts_for_available
        for pos in account.positions.values():
            if pos.isolated:
                continue
            mark = self._mark_of(pos.symbol)
            upnl = margin.unrealized_pnl(pos, mark)
            total += (upnl if counts_profit else min(upnl, ZERO)) - margin.initial_margin(
                self.profile, pos, mark
            )
        return total

    # ------------------------------------------------------------------ triggers and fills

    def _run_triggers(self, market: Market) -> None:
        fired: list[Order] = []
        for source, (falls, rises) in market.triggers.items():
            price = market.price(source)
            if price is None:
                continue
            while falls and (falls[0][2].status != "open" or -falls[0][0] >= price):
                order = heapq.heappop(falls)[2]
                if order.status == "open":
                    fired.append(order)
            while rises and (rises[0][2].status != "open" or rises[0][0] <= price):
                order = heapq.heappop(rises)[2]
                if order.status == "open":
                    fired.append(order)
        if market.trailing:
            fired.extend(self._trailing_fired(market))
        buy_touch = market.buy_price()
        sell_touch = market.sell_price()
        limits: list[Order] = []
        heap = market.buy_limits
        while heap and (
            heap[0][2].status != "open" or (buy_touch is not None and buy_touch <= -heap[0][0])
        ):
            order = heapq.heappop(heap)[2]
            if order.status == "open":
                limits.append(order)
        heap = market.sell_limits
        while heap and (
            heap[0][2].status != "open" or (sell_touch is not None and sell_touch >= heap[0][0])
        ):
            order = heapq.heappop(heap)[2]
            if order.status == "open":
                limits.append(order)
        for order in sorted(fired, key=lambda o: o.seq):
            if order.status == "open":
                self._fire(market, order)
        for order in sorted(limits, key=lambda o: o.seq):
            if order.status == "open":
                account = self.accounts[order.account]
                self._release(account, order, "filled")
                assert order.price is not None
                amount = self._limit_fill_amount(account, order)
                if amount is None:
                    continue
                decision = self._fill_margin_decision(account, market, order, amount)
                if decision.ok:
                    self._execute(account, order, amount, order.price, "maker")
                else:
                    self._reject(account, order.id, decision)

    def _fill_margin_decision(
        self, account: Account, market: Market, order: Order, amount: Decimal
    ) -> Decision:
        """Re-check margin when a resting order fills: the position it meets may have changed
        since it was placed (a flip it was to close is gone), so its opening part may have grown."""
        if order.reduce_only:
            return Decision()
        opening = self._opening_contracts(account.positions.get(order.symbol), order.side, amount)
        if opening <= 0:
            return Decision()
        cmd = OrderCmd(
            account=account.id,
            id=order.id,
            symbol=order.symbol,
            order_type=order.order_type,
            side=order.side,
            amount=amount,
            price=order.price,
        )
        return self._risk_decision(account, market, cmd, opening, check_margin=True)

    def _trailing_fired(self, market: Market) -> list[Order]:
        fired = []
        keep = []
        for order in market.trailing:
            if order.status != "open":
                continue
            price = market.price(order.trigger_source)
            if price is None:
                keep.append(order)
                continue
            activation = order.trailing_activation
            if activation is not None:
                reached = price >= activation if order.side < 0 else price <= activation
                if not reached:
                    keep.append(order)
                    continue
                order.trailing_activation = None
                order.trailing_extreme = price
            assert order.trailing_percent is not None
            extreme = order.trailing_extreme if order.trailing_extreme is not None else price
            # a sell trails the highest price seen, a buy the lowest
            extreme = max(extreme, price) if order.side < 0 else min(extreme, price)
            order.trailing_extreme = extreme
            offset = extreme * order.trailing_percent / _HUNDRED
            trigger = extreme - offset if order.side < 0 else extreme + offset
            order.trigger_price = trigger
            if (order.side < 0 and price <= trigger) or (order.side > 0 and price >= trigger):
                fired.append(order)
            else:
                keep.append(order)
        market.trailing = keep
        return fired

    def _fire(self, market: Market, order: Order) -> None:
        account = self.accounts[order.account]
        price = market.price(order.trigger_source)
        assert price is not None
        order.status = "triggered"
        account.orders.pop(order.id, None)
        self._emit(
            "stop_triggered",
            account,
            id=order.id,
            symbol=order.symbol,
            side=order.side_name,
            kind=order.kind,
            triggerPrice=order.trigger_price,
            price=price,
            priceType=order.trigger_source,
        )
        pos = account.positions.get(order.symbol)
        amount = order.amount
        if order.reduce_only or order.close_position:
            if pos is None or pos.sign == order.side:
                self._emit(
                    "order_cancelled", account, id=order.id, reason="no position left to reduce"
                )
                return
            amount = pos.contracts if order.close_position else min(amount, pos.contracts)
        else:
            cmd = OrderCmd(
                account=account.id,
                id=order.id,
                symbol=order.symbol,
                order_type=order.order_type,
                side=order.side,
                amount=amount,
                price=order.price,
            )
            opening = self._opening_contracts(pos, order.side, amount)
            if opening > 0:
                decision = self._risk_decision(account, market, cmd, opening, check_margin=True)
                if not decision.ok:
                    self._reject(account, order.id, decision)
                    return
        if order.price is not None and order.order_type == "limit":
            order.amount = amount
            order.kind = None
            order.status = "open"
            self._rest_or_take_limit(account, market, order)
            return
        slip = self.config.slippage_bps
        fill_price = price * (1 + order.side * slip / _BPS) if slip else price
        self._execute(account, order, amount, fill_price, "taker")

    def _limit_fill_amount(self, account: Account, order: Order) -> Decimal | None:
        if not order.reduce_only:
            return order.amount
        pos = account.positions.get(order.symbol)
        if pos is None or pos.sign == order.side:
            self._emit("order_cancelled", account, id=order.id, reason="no position left to reduce")
            return None
        return min(order.amount, pos.contracts)

    def _release(self, account: Account, order: Order, status: str) -> None:
        order.status = status
        account.orders.pop(order.id, None)
        if order.reserved:
            account.order_margin -= order.reserved
            order.reserved = ZERO

    def _execute(
        self, account: Account, order: Order, contracts: Decimal, price: Decimal, liquidity: str
    ) -> None:
        """Fill ``contracts`` of ``order`` at ``price`` and settle wallets, fees and margin."""
        if contracts <= 0:
            self._emit("order_cancelled", account, id=order.id, reason="nothing left to fill")
            return
        symbol = order.symbol
        market = self.markets[symbol]
        table = market.table
        assert table is not None
        settings = self._settings(account, symbol)
        pos = account.positions.get(symbol)
        if pos is None:
            pos = Position(
                symbol=symbol,
                table=table,
                margin_mode=settings.margin_mode,
                leverage=settings.leverage,
                contract_size=market.contract_size,
            )
            pos.alert.reset(self.config.alerts)
        before_sign, before_qty, before_wallet = pos.sign, pos.qty, pos.isolated_wallet
        fill = pos.apply_fill(order.side, contracts, price)
        fee_rate = account.fees.maker if liquidity == "maker" else account.fees.taker
        fee = contracts * market.contract_size * price * fee_rate
        account.wallet -= fee
        account.ledger.fees += fee
        account.ledger.realized_pnl += fill.realized_pnl
        if pos.isolated:
            if fill.closed_qty:
                released = (
                    before_wallet
                    if fill.closed_qty >= before_qty
                    else money(before_wallet * fill.closed_qty / before_qty)
                )
                pos.isolated_wallet -= released
                account.wallet += released + fill.realized_pnl
            if fill.opened_qty:
                funded = money(fill.opened_qty * price / pos.leverage)
                pos.isolated_wallet += funded
                account.wallet -= funded
        else:
            account.wallet += fill.realized_pnl
        account.daily.add(self._ts, fill.realized_pnl - fee)
        self._emit(
            "fill",
            account,
            id=order.id,
            symbol=symbol,
            side=order.side_name,
            amount=contracts,
            price=price,
            fee=fee,
            realizedPnl=fill.realized_pnl,
            reduceOnly=order.reduce_only,
            liquidity=liquidity,
            positionSide=pos.side,
            positionContracts=pos.contracts,
        )
        if not pos.is_open:
            self._close_out(account, pos, "position closed")
        else:
            account.positions[symbol] = pos
            if fill.flipped or (before_sign != 0 and before_sign != pos.sign):
                self._cancel_where(
                    account,
                    lambda o: o.symbol == symbol and (o.reduce_only or o.close_position),
                    "position flipped",
                )
            if fill.opened_qty:
                self._attach_protection(account, market, pos, order)
            self._trim_reduce_only(account, pos)
        self._register(account, pos)
        self._after_change(account)
        self._check_daily_loss(account)

    def _register(self, account: Account, pos: Position) -> None:
        market = self.markets[pos.symbol]
        if not pos.is_open:
            return
        if pos.isolated:
            market.isolated[pos] = account
            market.cross.pop(account, None)
        else:
            market.cross[account] = pos
            market.isolated.pop(pos, None)

    def _attach_protection(
        self, account: Account, market: Market, pos: Position, order: Order
    ) -> None:
        for kind, price in (
            ("stop_loss", order.stop_loss_price),
            ("take_profit", order.take_profit_price),
        ):
            if price is None:
                continue
            for old in [
                o
                for o in account.orders.values()
                if o.symbol == pos.symbol and o.close_position and o.kind == kind
            ]:
                self._release(account, old, "canceled")
                self._emit("order_cancelled", account, id=old.id, reason="replaced")
            self._seq += 1
            close_side = -pos.sign
            protective = Order(
                id=f"{order.id}-{'sl' if kind == 'stop_loss' else 'tp'}",
                account=account.id,
                symbol=pos.symbol,
                side=close_side,
                order_type="market",
                amount=ZERO,
                price=None,
                reduce_only=True,
                seq=self._seq,
                ts=self._ts,
                kind=kind,
                trigger_price=price,
                trigger_dir=close_side if kind == "stop_loss" else -close_side,
                trigger_source=order.trigger_source,
                close_position=True,
                parent=order.id,
            )
            self._emit("order_accepted", account, **protective.describe())
            self._rest_trigger(account, market, protective)

    def _trim_reduce_only(self, account: Account, pos: Position) -> None:
        """Keep resting reduce-only orders within the position: the farthest from the market go
        first (margin_rules §9.1)."""
        side = -pos.sign
        resting = [
            o
            for o in account.orders.values()
            if o.symbol == pos.symbol and o.reduce_only and o.kind is None and o.side == side
        ]
        total = sum((o.amount for o in resting), ZERO)
        if total <= pos.contracts:
            return
        mark = self._mark_of(pos.symbol)
        resting.sort(key=lambda o: (-(abs((o.price or mark) - mark)), -o.seq))
        excess = total - pos.contracts
        for order in resting:
            if excess <= 0:
                break
            if order.amount <= excess:
                excess -= order.amount
                self._release(account, order, "canceled")
                self._emit(
                    "order_cancelled",
                    account,
                    id=order.id,
                    reason="reduce-only orders exceed the position",
                )
            else:
                order.amount -= excess
                self._emit(
                    "order_amended",
                    account,
                    id=order.id,
                    amount=order.amount,
                    reason="reduce-only orders exceed the position",
                )
                excess = ZERO

    def _after_change(self, account: Account) -> None:
        """Re-evaluate everything of ``account`` after its wallet or positions changed."""
        self._refresh_cross(account)
        for pos in list(account.positions.values()):
            if pos.isolated and pos.is_open:
                self._evaluate_isolated(account, pos)
        if account.positions or account.alert.alerted:
            self._evaluate_cross(account)
        else:
            self._set_cross_thresholds(account)

    # ------------------------------------------------------------------ cancels

    def _cancel_where(self, account: Account, predicate: object, reason: str) -> None:
        assert callable(predicate)
        for order in sorted(account.orders.values(), key=lambda o: o.seq):
            if predicate(order):
                self._release(account, order, "canceled")
                self._emit("order_cancelled", account, id=order.id, reason=reason)

    def _cancel(self, cmd: CancelCmd) -> None:
        account = self.account(cmd.account)
        order = account.orders.get(cmd.id)
        if order is None:
            self._reject(
                account, cmd.id, Decision(Code.INVALID_ORDER, f"no open order with id {cmd.id!r}")
            )
            return
        self._release(account, order, "canceled")
        self._emit("order_cancelled", account, id=order.id, reason="cancelled by request")

    # ------------------------------------------------------------------ account commands

    def _set_leverage(self, cmd: SetLeverageCmd) -> None:
        account = self.account(cmd.account)
        self._roll_day(account)
        decision, transfer, reserves = self._leverage_decision(account, cmd)
        if not decision.ok:
            self._reject(account, None, decision, symbol=cmd.symbol)
            return
        settings = self._settings(account, cmd.symbol)
        settings.leverage = cmd.leverage
        for order, reserve in reserves:
            account.order_margin += reserve - order.reserved
            order.reserved = reserve
        pos = account.positions.get(cmd.symbol)
        if pos is not None:
            pos.leverage = cmd.leverage
            pos.isolated_wallet += transfer
            account.wallet -= transfer
        self._emit("leverage_changed", account, symbol=cmd.symbol, leverage=cmd.leverage)
        if pos is not None:
            self._after_change(account)

    def _leverage_decision(
        self, account: Account, cmd: SetLeverageCmd
    ) -> tuple[Decision, Decimal, list[tuple[Order, Decimal]]]:
        """Whether ``cmd`` may set the leverage (margin_rules §8.3); with it, the margin moved into
        the isolated wallet and the resting orders' new reserves."""
        symbol, leverage = cmd.symbol, cmd.leverage
        nothing: list[tuple[Order, Decimal]] = []
        table = self.config.tiers.get(symbol)
        if table is None:
            return Decision(Code.UNKNOWN_SYMBOL, f"no tier table for {symbol}"), ZERO, nothing
        if account.state == TradingState.HALTED:
            return Decision(Code.TRADING_HALTED, "trading is halted: cancels only"), ZERO, nothing
        cap = self.config.guards.leverage_cap(symbol)
        if cap is not None and leverage > cap:
            reason = f"leverage {leverage} is above the policy cap {cap}"
            return Decision(Code.LEVERAGE_EXCEEDS_MAX, reason), ZERO, nothing
        market = self._market(symbol)
        mark = market.mark
        exposure = self._exposure(account, symbol, 0, ZERO, mark) if mark is not None else ZERO
        tier_max = table.max_leverage_for(exposure)
        if leverage > tier_max:
            reason = (
                f"leverage {leverage} is above the tier maximum {tier_max}"
                f" for the current exposure {exposure}"
            )
            return Decision(Code.LEVERAGE_EXCEEDS_MAX, reason), ZERO, nothing
        settings = self._settings(account, symbol)
        old = settings.leverage
        # resting orders reserve their initial margin at the leverage in force (Binance -2028)
        reserves = []
        extra = ZERO
        for order in account.orders.values():
            if order.symbol == symbol and order.reserved:
                settings.leverage = leverage
                reserve = self._order_reserve(account, order)
                settings.leverage = old
                reserves.append((order, reserve))
                extra += reserve - order.reserved
        transfer = ZERO
        pos = account.positions.get(symbol)
        if pos is not None and leverage != old:
            assert mark is not None
            if not pos.isolated:
                extra += pos.qty * mark * (1 / leverage - 1 / old)
            elif self.profile.isolated_leverage_change == "reject_decrease":
                if leverage < old:
                    reason = (
                        "leverage reduction is not supported in isolated mode with an open"
                        " position (Binance -4161)"
                    )
                    return Decision(Code.INVALID_ORDER, reason), ZERO, nothing
            else:
                transfer = money(pos.qty * pos.entry_price * (1 / leverage - 1 / old))
                extra += max(transfer, ZERO)
                if transfer < 0:
                    req, _mm, _tier = margin.requirement(
                        self.profile, pos, mark, account.fees.taker
                    )
                    if pos.isolated_wallet + transfer + margin.unrealized_pnl(pos, mark) <= req:
                        reason = "releasing margin at that leverage would liquidate the position"
                        return Decision(Code.MARGIN_INSUFFICIENT, reason), ZERO, nothing
        if extra > 0:
            available = self._available(account)
            if extra > available:
                reason = (
                    f"leverage {leverage} needs {extra} more margin than the available"
                    f" balance {available} (Binance -2028)"
                )
                return Decision(Code.MARGIN_INSUFFICIENT, reason), ZERO, nothing
        return Decision(), transfer, reserves

    def _set_margin_mode(self, cmd: SetMarginModeCmd) -> None:
        account = self.account(cmd.account)
        if cmd.symbol not in self.config.tiers:
            self._reject(
                account,
                None,
                Decision(Code.UNKNOWN_SYMBOL, f"no tier table for {cmd.symbol}"),
                symbol=cmd.symbol,
            )
            return
        if account.state == TradingState.HALTED:
            self._reject(
                account,
                None,
                Decision(Code.TRADING_HALTED, "trading is halted: cancels only"),
                symbol=cmd.symbol,
            )
            return
        settings = self._settings(account, cmd.symbol)
        if settings.margin_mode == cmd.margin_mode:
            return  # Binance -4046 "No need to change margin type": a no-op
        if cmd.symbol in account.positions:
            self._reject(
                account,
                None,
                Decision(
                    Code.MARGIN_MODE_CHANGE_WITH_OPEN_POSITION,
                    f"{cmd.symbol} has an open position (Binance -4048)",
                ),
                symbol=cmd.symbol,
            )
            return
        if any(o.symbol == cmd.symbol for o in account.orders.values()):
            self._reject(
                account,
                None,
                Decision(
                    Code.MARGIN_MODE_CHANGE_WITH_OPEN_POSITION,
                    f"{cmd.symbol} has open orders (Binance -4047)",
                ),
                symbol=cmd.symbol,
            )
            return
        settings.margin_mode = cmd.margin_mode
        self._emit("margin_mode_changed", account, symbol=cmd.symbol, marginMode=cmd.margin_mode)

    def _adjust_margin(self, cmd: MarginCmd) -> None:
        account = self.account(cmd.account)
        pos = account.positions.get(cmd.symbol)
        if pos is None or not pos.isolated:
            what = "no open position" if pos is None else "a cross position"
            self._reject(
                account,
                None,
                Decision(
                    Code.INVALID_ORDER,
                    f"{cmd.symbol} has {what}: margin can be moved only for an isolated"
                    " position (Binance -4049/-4054)",
                ),
                symbol=cmd.symbol,
            )
            return
        mark = self._mark_of(cmd.symbol)
        if cmd.add:
            limit = self._max_addable(account)
            if cmd.amount > limit:
                self._reject(
                    account,
                    None,
                    Decision(Code.MARGIN_INSUFFICIENT, f"at most {limit} can be added"),
                    symbol=cmd.symbol,
                )
                return
            delta = cmd.amount
        else:
            if account.state == TradingState.HALTED:
                self._reject(
                    account,
                    None,
                    Decision(Code.TRADING_HALTED, "trading is halted: cancels only"),
                    symbol=cmd.symbol,
                )
                return
            limit = margin.max_removable(self.profile, pos, mark, account.fees.taker)
            if cmd.amount > limit:
                self._reject(
                    account,
                    None,
                    Decision(Code.MARGIN_INSUFFICIENT, f"at most {limit} can be removed"),
                    symbol=cmd.symbol,
                )
                return
            delta = -cmd.amount
        pos.isolated_wallet += delta
        account.wallet -= delta
        self._emit(
            "margin_changed",
            account,
            symbol=cmd.symbol,
            amount=delta,
            isolatedWallet=pos.isolated_wallet,
        )
        self._after_change(account)

    def _max_addable(self, account: Account) -> Decimal:
        iso_orders = sum(
            (
                o.reserved
                for o in account.orders.values()
                if self._settings(account, o.symbol).margin_mode == "isolated"
            ),
            ZERO,
        )
        return max(
            ZERO,
            min(account.wallet - iso_orders - self._cross_mm(account), self._available(account)),
        )

    def _balance(self, cmd: BalanceCmd) -> None:
        account = self.account(cmd.account)
        if cmd.deposit:
            delta = cmd.amount
            account.ledger.deposits += delta
        else:
            iso_orders = sum(
                (
                    o.reserved
                    for o in account.orders.values()
                    if self._settings(account, o.symbol).margin_mode == "isolated"
                ),
                ZERO,
            )
            limit = max(
                ZERO,
                min(
                    account.wallet - iso_orders - self._cross_mm(account), self._available(account)
                ),
            )
            if cmd.amount > limit:
                self._reject(
                    account,
                    None,
                    Decision(Code.MARGIN_INSUFFICIENT, f"at most {limit} can be withdrawn"),
                )
                return
            delta = -cmd.amount
            account.ledger.withdrawals += cmd.amount
        account.wallet += delta
        self._emit("balance_changed", account, amount=delta, wallet=account.wallet)
        self._after_change(account)

    def _funding(self, cmd: FundingCmd) -> None:
        market = self._market(cmd.symbol)
        market.funding_rate = cmd.rate
        mark = market.mark
        holders = [(a, p) for a, p in market.cross.items()] + [
            (a, p) for p, a in market.isolated.items()
        ]
        holders.sort(key=lambda ap: ap[0].id)
        for account, pos in holders:
            if not pos.is_open:
                continue
            assert mark is not None
            amount = -pos.signed_qty * mark * cmd.rate
            if pos.isolated:
                pay_from_cross = self.profile.isolated_funding_source == "available_first" and (
                    amount >= 0 or self._available(account) >= -amount
                )
                if pay_from_cross:
                    account.wallet += amount
                else:
                    pos.isolated_wallet += amount
            else:
                account.wallet += amount
            account.ledger.funding += amount
            account.daily.add(self._ts, amount)
            self._emit(
                "funding", account, symbol=cmd.symbol, rate=cmd.rate, markPrice=mark, amount=amount
            )
            self._after_change(account)
            self._check_daily_loss(account)

    # ------------------------------------------------------------------ trading state

    def _set_state(self, account: Account, state: TradingState, reason: str) -> None:
        if account.state == state:
            return
        if state != TradingState.REDUCING:
            account.daily_limit_day = None
        account.state = state
        account.state_reason = reason
        self._emit("trading_state", account, state=state.value, reason=reason)

    def _check_daily_loss(self, account: Account) -> None:
        limit = self.config.guards.daily_loss_limit
        if account.state == TradingState.ACTIVE and account.daily.breached(limit):
            account.daily_limit_day = utc_day(self._ts)
            self._set_state(
                account,
                TradingState.REDUCING,
                f"daily loss limit {limit} reached (today's PnL {account.daily.pnl})",
            )

    def _roll_day(self, account: Account) -> None:
        """Lift the daily-loss ``reducing`` state once a new UTC day has begun."""
        account.daily.roll(self._ts)
        if (
            account.state == TradingState.REDUCING
            and account.daily_limit_day is not None
            and account.daily_limit_day != utc_day(self._ts)
        ):
            account.daily_limit_day = None
            self._set_state(account, TradingState.ACTIVE, "new UTC day")

    # ------------------------------------------------------------------ introspection

    def iter_accounts(self) -> Iterable[Account]:
        return (self.accounts[k] for k in sorted(self.accounts))
