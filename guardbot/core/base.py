"""The engine's shared state and helpers; its parts are mixins over this base.

The engine is split by subject (admission, order flow, liquidation, account commands, ticks and
evaluation) into mixins that all work on the state declared here. The signatures under
``TYPE_CHECKING`` let each part call the others with full type checking.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from guardbot.core.account import Account, SymbolSettings
from guardbot.core.alerts import Crossing
from guardbot.core.commands import (
    BalanceCmd,
    CancelCmd,
    FundingCmd,
    MarginCmd,
    OrderCmd,
    SetLeverageCmd,
    SetMarginModeCmd,
    TickCmd,
)
from guardbot.core.config import AccountConfig, EngineConfig
from guardbot.core.events import Event
from guardbot.core.guards import Decision, TradingState
from guardbot.core.market import Market
from guardbot.core.num import ONE, ZERO, decimal_context
from guardbot.core.orders import Order
from guardbot.core.position import Position
from guardbot.errors import InputError

__all__ = ["EngineBase"]


class EngineBase:
    """State of the engine: configuration, markets, accounts, the event buffer, the clock."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.profile = config.profile
        self.markets: dict[str, Market] = {}
        self.accounts: dict[str, Account] = {}
        self._seq = 0
        self._ts = 0
        self._out: list[Event] = []
        #: Whether the last tick changed an open order without raising an event (a trailing
        #: stop's extreme or activation). A journal that keeps only the ticks with events must
        #: keep these too, or a replay rebuilds the trailing stops at other trigger prices.
        self.tick_moved_orders = False
        with decimal_context():
            for account_id, account_config in config.accounts.items():
                self._new_account(account_id, account_config)

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
            settings = account.settings[symbol] = self.default_settings(account.config, symbol)
        return settings

    def default_settings(self, config: AccountConfig, symbol: str) -> SymbolSettings:
        """The margin mode and leverage an account with ``config`` starts with in ``symbol``: its
        default leverage, capped by the guards and by the first tier's maximum."""
        leverage = config.default_leverage
        cap = self.config.guards.leverage_cap(symbol)
        table = self.config.tiers.get(symbol)
        if cap is not None:
            leverage = min(leverage, cap)
        if table is not None:
            leverage = min(leverage, table.tiers[0].max_leverage)
        return SymbolSettings(config.default_margin_mode, leverage)

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

    def _new_account(self, account_id: str, config: AccountConfig) -> Account:
        account = Account(
            id=account_id, config=config, fees=config.fees or self.config.fees, wallet=config.wallet
        )
        account.ledger.initial = config.wallet
        account.alert.reset(self.config.alerts)
        self._set_cross_thresholds(account)
        self.accounts[account_id] = account
        return account

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

    if TYPE_CHECKING:
        # implemented by the parts of Engine
        def _adjust_margin(self, cmd: MarginCmd) -> None: ...

        def _after_change(self, account: Account, changed: Position | None = None) -> None: ...

        def _after_order(
            self, account: Account, symbol: str, side: int, amount: Decimal
        ) -> tuple[Decimal, Decimal]: ...

        def _attach_protection(
            self, account: Account, market: Market, pos: Position, order: Order
        ) -> None: ...

        def _available(self, account: Account) -> Decimal: ...

        def _balance(self, cmd: BalanceCmd) -> None: ...

        def _cancel(self, cmd: CancelCmd) -> None: ...

        def _check_daily_loss(self, account: Account) -> None: ...

        def _check_order(self, account: Account, cmd: OrderCmd) -> Decision: ...

        @staticmethod
        def _conditional(cmd: OrderCmd) -> bool: ...

        def _cross_liquidation_price(self, account: Account, pos: Position) -> Decimal | None: ...

        def _cross_mm(self, account: Account) -> Decimal: ...

        def _crossed_triggers(self, cmd: OrderCmd, watched: Decimal) -> Decision | None: ...

        def _emit_crossings(
            self,
            account: Account,
            pos: Position | None,
            crossings: list[Crossing],
            req: Decimal,
            balance: Decimal,
        ) -> None: ...

        def _evaluate_cross(self, account: Account) -> None: ...

        def _evaluate_isolated(self, account: Account, pos: Position) -> None: ...

        def _execute(
            self, account: Account, order: Order, contracts: Decimal, price: Decimal, liquidity: str
        ) -> None: ...

        def _expected_fill_price(self, market: Market, cmd: OrderCmd) -> Decimal | None: ...

        def _exposure(
            self, account: Account, symbol: str, side: int, amount: Decimal, price: Decimal
        ) -> Decimal: ...

        def _fill_margin_decision(
            self, account: Account, market: Market, order: Order, amount: Decimal
        ) -> Decision: ...

        def _fire(self, market: Market, order: Order) -> None: ...

        def _funding(self, cmd: FundingCmd) -> None: ...

        def _has_stop(self, account: Account, symbol: str, side: int) -> bool: ...

        def _isolated_liquidation_price(
            self, account: Account, pos: Position
        ) -> Decimal | None: ...

        def _isolated_price_at(
            self, account: Account, pos: Position, level: Decimal
        ) -> Decimal | None: ...

        def _leverage_decision(
            self, account: Account, cmd: SetLeverageCmd
        ) -> tuple[Decision, Decimal, list[tuple[Order, Decimal]]]: ...

        def _limit_fill_amount(self, account: Account, order: Order) -> Decimal | None: ...

        def _liquidate_cross(self, account: Account) -> None: ...

        def _liquidate_isolated(self, account: Account, pos: Position) -> None: ...

        def _max_addable(self, account: Account) -> Decimal: ...

        def _nearest_cross_liquidation(
            self, account: Account
        ) -> tuple[Decimal | None, str | None]: ...

        def _open_order_value(self, account: Account, symbol: str) -> Decimal: ...

        def _opening_contracts(
            self, pos: Position | None, side: int, amount: Decimal
        ) -> Decimal: ...

        def _order_reserve(self, account: Account, order: Order) -> Decimal: ...

        def _oversize_decision(
            self, account: Account, pos: Position, cmd: OrderCmd
        ) -> Decision | None: ...

        def _place_order(self, cmd: OrderCmd) -> None: ...

        @staticmethod
        def _push_trigger(market: Market, order: Order) -> None: ...

        def _reduce_only_room(
            self, account: Account, pos: Position, side: int, amount: Decimal, *, resting: bool
        ) -> Decimal: ...

        def _refresh_cross(self, account: Account) -> None: ...

        def _rest_or_take_limit(self, account: Account, market: Market, order: Order) -> None: ...

        def _rest_trigger(self, account: Account, market: Market, order: Order) -> None: ...

        @staticmethod
        def _resting_reduce_only(account: Account, symbol: str, side: int) -> Decimal: ...

        def _retier(self, account: Account, pos: Position, notional: Decimal) -> None: ...

        def _risk_decision(
            self,
            account: Account,
            market: Market,
            cmd: OrderCmd,
            opening: Decimal,
            *,
            check_margin: bool,
        ) -> Decision: ...

        def _roll_day(self, account: Account) -> None: ...

        def _run_triggers(self, market: Market) -> None: ...

        def _set_band(self, account: Account, pos: Position) -> None: ...

        def _set_cross_thresholds(self, account: Account) -> None: ...

        def _set_leverage(self, cmd: SetLeverageCmd) -> None: ...

        def _set_margin_mode(self, cmd: SetMarginModeCmd) -> None: ...

        def _set_state(self, account: Account, state: TradingState, reason: str) -> None: ...

        def _taker_price(self, market: Market, side: int) -> Decimal | None: ...

        def _tick(self, tick: TickCmd) -> None: ...

        def _trailing_fired(self, market: Market) -> list[Order]: ...

        def _trim_reduce_only(self, account: Account, pos: Position) -> None: ...

    def _release(self, account: Account, order: Order, status: str) -> None:
        order.status = status
        account.orders.pop(order.id, None)
        if order.reserved:
            account.order_margin -= order.reserved
            order.reserved = ZERO

    def _cancel_where(self, account: Account, predicate: object, reason: str) -> None:
        assert callable(predicate)
        for order in sorted(account.orders.values(), key=lambda o: o.seq):
            if predicate(order):
                self._release(account, order, "canceled")
                self._emit("order_cancelled", account, id=order.id, reason=reason)

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
