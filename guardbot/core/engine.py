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
from decimal import Decimal, getcontext, setcontext

from guardbot.core.account import Account, SymbolSettings
from guardbot.core.account_ops import AccountOps
from guardbot.core.admission import Admission
from guardbot.core.bands import retier
from guardbot.core.commands import (
    BalanceCmd,
    CancelCmd,
    Command,
    FundingCmd,
    MarginCmd,
    OrderCmd,
    SetLeverageCmd,
    SetMarginModeCmd,
    SetPositionModeCmd,
    SetTradingStateCmd,
    TickCmd,
    TiersCmd,
)
from guardbot.core.config import AccountConfig, EngineConfig
from guardbot.core.evaluation import evaluate_cross, evaluate_isolated
from guardbot.core.events import Event
from guardbot.core.guards import TradingState
from guardbot.core.market import Market
from guardbot.core.mirror import MirrorCmd
from guardbot.core.mirroring import (
    adopt_priced,
    apply_mirror,
    mirror_tick,
    mirror_view,
    refuse_if_mirror,
)
from guardbot.core.num import CONTEXT, ZERO, decimal_context
from guardbot.core.orderflow import OrderFlow
from guardbot.core.position import Position
from guardbot.core.snapshot import AccountView, Level, PositionView, levels, snapshot
from guardbot.core.state import EngineState, default_settings
from guardbot.core.tier_inputs import apply_tiers
from guardbot.core.trading import set_state

__all__ = ["Engine", "Market"]

#: The context a tick runs in (the engine's, :data:`~guardbot.core.num.CONTEXT`; a copy of its
#: own, as ``decimal_context`` makes, so that the flags a tick raises stay here).
_TICK_CONTEXT = CONTEXT.copy()


class Engine:
    """The shadow margin engine. Not thread-safe; one instance per event loop or process.

    Its parts are plain objects over one :class:`EngineState`: :class:`Admission` (may this
    order trade?), :class:`OrderFlow` (orders, triggers, fills), :class:`AccountOps` (leverage,
    margin mode, transfers, funding); evaluation and liquidation are functions of the state.
    """

    def __init__(self, config: EngineConfig) -> None:
        self._wire(EngineState(config))

    @classmethod
    def from_state(cls, state: EngineState) -> Engine:
        """An engine over ``state`` as it is (a checkpoint's, see :mod:`guardbot.core.checkpoint`):
        nothing is created or reset."""
        engine = cls.__new__(cls)
        engine._wire(state)
        return engine

    @property
    def state_root(self) -> EngineState:
        """Everything the engine knows, in one object (what a checkpoint saves)."""
        return self._st

    def _wire(self, st: EngineState) -> None:
        self._st = st
        config = st.config
        self.config = config
        self.profile = config.profile
        self.markets = st.markets
        self.accounts = st.accounts
        self.admission = Admission(config, st.markets)
        self._orders = OrderFlow(st, self.admission)
        self._ops = AccountOps(st, self.admission)
        #: mirror accounts come from the configuration only (never auto-created)
        self._mirrors = any(a.mirror for a in config.accounts.values())

    @property
    def tick_moved_orders(self) -> bool:
        """Whether the last tick changed an open order without raising an event (a trailing
        stop's extreme or activation): a journal that keeps only ticks with events keeps it."""
        return self._st.tick_moved_orders

    @property
    def tick_changed_drift_wait(self) -> bool:
        """Whether the last tick started or cancelled a mirror drift's wait for confirmation
        without raising an event: a journal that keeps only ticks with events keeps it too."""
        return self._st.drift_wait_changed

    def account(self, account_id: str | None) -> Account:
        """The account of ``account_id``; with None, the only account there is."""
        return self._st.account(account_id)

    def default_settings(self, config: AccountConfig, symbol: str) -> SymbolSettings:
        """The margin mode and leverage an account with ``config`` starts with in ``symbol``."""
        return default_settings(self.config, config, symbol)

    def apply(self, ts: int | None, command: Command) -> list[Event]:
        """Apply one tick or command at time ``ts`` (ms); return the events it caused."""
        st = self._st
        if ts is not None:
            st.ts = ts
        out: list[Event] = []
        st.out = out
        st.drift_wait_changed = False
        with decimal_context():
            if isinstance(command, TickCmd):
                self._tick(
                    command.symbol,
                    command.mark,
                    command.last,
                    command.bid,
                    command.ask,
                    command.index,
                    command.funding_rate,
                )
            elif isinstance(command, TiersCmd):
                if apply_tiers(st, command):
                    self._wire(st)  # the parts hold the configuration, which has new tables
            elif self._mirrors and refuse_if_mirror(st, command):
                pass
            elif isinstance(command, MirrorCmd):
                apply_mirror(st, command)
            elif isinstance(command, OrderCmd):
                self._orders.place(command)
            elif isinstance(command, CancelCmd):
                self._orders.cancel(command)
            elif isinstance(command, SetLeverageCmd):
                self._ops.set_leverage(command)
            elif isinstance(command, SetMarginModeCmd):
                self._ops.set_margin_mode(command)
            elif isinstance(command, SetPositionModeCmd):
                self._ops.set_position_mode(command)
            elif isinstance(command, MarginCmd):
                self._ops.adjust_margin(command)
            elif isinstance(command, BalanceCmd):
                self._ops.balance(command)
            elif isinstance(command, FundingCmd):
                self._ops.funding(command)
            elif isinstance(command, SetTradingStateCmd):
                account = st.account(command.account)
                set_state(st, account, TradingState(command.state), command.reason)
            else:  # pragma: no cover - the Command union is closed
                raise TypeError(f"not an engine command: {command!r}")
        return out

    def tick(self, ts: int, tick: TickCmd) -> list[Event]:
        """The hot path, without the dispatch of :meth:`apply`."""
        return self.quote(
            ts,
            tick.symbol,
            tick.mark,
            tick.last,
            tick.bid,
            tick.ask,
            tick.index,
            tick.funding_rate,
        )

    def quote(
        self,
        ts: int,
        symbol: str,
        mark: Decimal,
        last: Decimal | None = None,
        bid: Decimal | None = None,
        ask: Decimal | None = None,
        index: Decimal | None = None,
        funding_rate: Decimal | None = None,
    ) -> list[Event]:
        """:meth:`tick` of a tick given by its fields (a replay's rows: no ``TickCmd`` made)."""
        st = self._st
        st.ts = ts
        out: list[Event] = []
        st.out = out
        # the engine's context in force for the tick, the caller's back after it: what
        # ``with decimal_context()`` does, without copying a context and a manager per tick
        saved = getcontext()
        setcontext(_TICK_CONTEXT)
        try:
            self._tick(symbol, mark, last, bid, ask, index, funding_rate)
        finally:
            setcontext(saved)
        return out

    def set_price_stale(self, symbol: str, stale: bool) -> None:
        """Mark a symbol's price stale (the feed lost it): new orders get ``PRICE_STALE``."""
        self._st.market(symbol).stale = stale

    def views(self, account: Account) -> tuple[list[PositionView], AccountView]:
        """Margin snapshot of ``account`` at the current marks (positions by symbol)."""
        with decimal_context():
            positions = [account.positions[s] for s in sorted(account.positions)]
            marks = [self._st.mark_of(p.symbol) for p in positions]
            return snapshot(
                self.profile,
                account.fees.taker,
                account.wallet,
                positions,
                marks,
                open_order_margin=account.order_margin,
                hedged=account.hedged,
            )

    def levels(self, account: Account) -> tuple[list[Position], list[Level], Decimal | None]:
        """The positions of a one-way ``account`` (by symbol), each one's unrealized PnL,
        isolated margin ratio and liquidation price, and the cross margin ratio: the part of
        :meth:`views` a periodic sample prints (:func:`~guardbot.core.snapshot.levels`)."""
        if account.hedged:
            raise ValueError("levels() is for one-way accounts: use views()")
        with decimal_context():
            positions = [account.positions[s] for s in sorted(account.positions)]
            marks = [self._st.mark_of(p.symbol) for p in positions]
            rows, ratio = levels(self.profile, account.fees.taker, account.wallet, positions, marks)
            return positions, rows, ratio

    def state(self, account: Account) -> dict[str, object]:
        """The account as the ``final`` line of ``simulate`` reports it (values as Decimal)."""
        views, view = self.views(account)
        with decimal_context():
            isolated = sum(
                (p.isolated_wallet for p in account.positions.values() if p.isolated), ZERO
            )
            total = account.wallet + isolated
            # free is what orders may use, but never unrealized profit: that is not in the
            # wallet (total) yet, and counting it made used negative and free exceed total
            free = min(
                view.available_balance,
                account.wallet - view.initial_margin - account.order_margin,
            )
            ledger = account.ledger
            mirror = mirror_view(account)
            extra: dict[str, object] = {"mirror": mirror} if mirror is not None else {}
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
                **extra,
            }

    def _tick(
        self,
        symbol: str,
        mark: Decimal,
        last: Decimal | None,
        bid: Decimal | None,
        ask: Decimal | None,
        index: Decimal | None,
        funding_rate: Decimal | None,
    ) -> None:
        st = self._st
        st.tick_moved_orders = False
        market = st.markets.get(symbol) or st.market(symbol)
        first_price = market.mark is None
        market.mark = mark
        if last is not None:
            market.last = last
        if bid is not None:
            market.bid = bid
        if ask is not None:
            market.ask = ask
        if index is not None:
            market.index = index
        if funding_rate is not None:
            market.funding_rate = funding_rate
        market.ts = st.ts
        if first_price and self._mirrors:
            adopt_priced(st, symbol)  # mirror positions that waited for a price
        if market.isolated:
            # a position leaves its quiet band only when something may change: evaluate those
            due = [
                (pos, account)
                for pos, account in market.isolated.items()
                if mark <= pos.band_lo or mark >= pos.band_hi
            ]
            for pos, account in due:
                if pos.is_open:
                    evaluate_isolated(st, account, pos)
        if market.cross:
            # an account holds one cross position per symbol, two when hedged: the last one
            # visited sees its complete sums, and a dict evaluates the account once
            due_accounts: dict[Account, None] = {}
            for pos, account in market.cross.items():
                # cross sums move by this position's delta; the requirement is linear in the
                # notional inside a tier (R = n * rate - cum), so the delta is exact
                notional = pos.qty * mark
                if pos.c_floor < notional <= pos.c_cap:
                    account.c_req += (notional - pos.c_n) * pos.c_rate
                else:
                    before = pos.c_n * pos.c_rate - pos.c_cum
                    retier(st.profile, account, pos, notional)
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
                    due_accounts[account] = None
            for account in due_accounts:
                evaluate_cross(st, account)
        if market.has_due_triggers():
            self._orders.run_triggers(market)
        if self._mirrors:
            mirror_tick(st, symbol)

    def iter_accounts(self) -> Iterable[Account]:
        return (self.accounts[k] for k in sorted(self.accounts))
