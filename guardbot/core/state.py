"""The engine's state and the bookkeeping every part of it shares.

:class:`EngineState` holds what the engine knows (configuration, markets, accounts, the order
sequence, the time of the input being applied and the events it raised) and the small operations
that keep its indexes consistent: emitting an event, releasing and cancelling orders, registering
a position with its market and forgetting it when it goes flat. The engine's parts
(:mod:`~guardbot.core.admission`, :mod:`~guardbot.core.orderflow`,
:mod:`~guardbot.core.evaluation`, :mod:`~guardbot.core.liquidation`,
:mod:`~guardbot.core.account_ops`) receive it as a plain object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from guardbot.core.account import Account, SymbolSettings
from guardbot.core.config import AccountConfig, EngineConfig
from guardbot.core.events import Event
from guardbot.core.guards import Decision
from guardbot.core.market import Market
from guardbot.core.mirror import MirrorState
from guardbot.core.num import ONE, ZERO, decimal_context
from guardbot.core.orders import Order
from guardbot.core.position import Position
from guardbot.core.profiles import Profile
from guardbot.errors import InputError

__all__ = [
    "EngineState",
    "default_settings",
    "market_of",
    "set_cross_thresholds",
    "symbol_settings",
]


def market_of(config: EngineConfig, markets: dict[str, Market], symbol: str) -> Market:
    """The market of ``symbol``, created on first use with its tier table and contract size."""
    market = markets.get(symbol)
    if market is None:
        table = config.tiers.get(symbol)
        size = config.contract_sizes.get(symbol, ONE)
        market = markets[symbol] = Market(symbol, table, size)
    return market


def default_settings(config: EngineConfig, account: AccountConfig, symbol: str) -> SymbolSettings:
    """The margin mode and leverage an account with ``account`` starts with in ``symbol``: its
    own for that symbol, else its defaults; the leverage capped by the guards and by the first
    tier's maximum."""
    own = account.symbols.get(symbol)
    mode = own.margin_mode if own is not None and own.margin_mode else account.default_margin_mode
    leverage = own.leverage if own is not None and own.leverage else account.default_leverage
    cap = config.guards.leverage_cap(symbol)
    table = config.tiers.get(symbol)
    if cap is not None:
        leverage = min(leverage, cap)
    if table is not None:
        leverage = min(leverage, table.tiers[0].max_leverage)
    return SymbolSettings(mode, leverage)


def symbol_settings(config: EngineConfig, account: Account, symbol: str) -> SymbolSettings:
    """``account``'s margin mode and leverage in ``symbol`` (the defaults until set)."""
    settings = account.settings.get(symbol)
    if settings is None:
        settings = account.settings[symbol] = default_settings(config, account.config, symbol)
    return settings


def set_cross_thresholds(config: EngineConfig, account: Account) -> None:
    """Cache the ratio levels at which the cross part of ``account`` needs an exact evaluation."""
    up, down = account.alert.thresholds(config.alerts)
    account.up_level = min(up, ONE) if up is not None else ONE
    account.down_level = down


@dataclass(slots=True, eq=False)
class EngineState:
    """Configuration, markets, accounts, the order sequence, the clock and the event buffer."""

    config: EngineConfig
    markets: dict[str, Market] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    #: Sequence number of the last order accepted (orders fire in this order on one tick).
    seq: int = 0
    #: Time (ms) of the input being applied: the engine has no clock of its own.
    ts: int = 0
    #: Events of the input being applied.
    out: list[Event] = field(default_factory=list)
    #: Whether the last tick changed an open order without raising an event (a trailing
    #: stop's extreme or activation). A journal that keeps only the ticks with events must
    #: keep these too, or a replay rebuilds the trailing stops at other trigger prices.
    tick_moved_orders: bool = False
    #: Whether the last input started or cancelled a mirror drift's wait for confirmation
    #: (``MirrorState.pending``) without raising an event. Like ``tick_moved_orders``, a journal
    #: that keeps only the ticks with events must keep such ticks, or a replay confirms a drift
    #: from another start (an alert the live run did not raise, or the reverse).
    drift_wait_changed: bool = False
    #: symbol -> (source, asOf) of the tier table in force, as the last ``tiers`` input named
    #: them (guardbot.core.tier_inputs); empty until one was applied.
    tier_sources: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    profile: Profile = field(init=False)

    def __post_init__(self) -> None:
        self.profile = self.config.profile
        with decimal_context():
            for account_id, account_config in self.config.accounts.items():
                self.new_account(account_id, account_config)

    # -- lookups -----------------------------------------------------------------------------

    def market(self, symbol: str) -> Market:
        return market_of(self.config, self.markets, symbol)

    def mark_of(self, symbol: str) -> Decimal:
        mark = self.markets[symbol].mark
        assert mark is not None, "a position exists only where a price was seen"
        return mark

    def settings(self, account: Account, symbol: str) -> SymbolSettings:
        return symbol_settings(self.config, account, symbol)

    def new_account(self, account_id: str, config: AccountConfig) -> Account:
        account = Account(
            id=account_id,
            config=config,
            fees=config.fees or self.config.fees,
            wallet=config.wallet,
            position_mode=config.position_mode,
        )
        account.ledger.initial = config.wallet
        if config.mirror:
            account.mirror = MirrorState(
                tolerance=config.mirror_tolerance,
                confirm_ms=int(config.mirror_drift_confirm_s * 1000),
            )
        account.alert.reset(self.config.alerts)
        set_cross_thresholds(self.config, account)
        self.accounts[account_id] = account
        return account

    def account(self, account_id: str | None) -> Account:
        """The account of ``account_id``; with None, the only account there is."""
        if account_id is None:
            if len(self.accounts) == 1:
                return next(iter(self.accounts.values()))
            if not self.accounts and self.config.auto_create_accounts:
                return self.new_account("default", self.config.default_account)
            raise InputError("account", "is required when there is more than one account")
        account = self.accounts.get(account_id)
        if account is None:
            if not self.config.auto_create_accounts:
                known = ", ".join(sorted(self.accounts)) or "none"
                raise InputError("account", f"unknown account {account_id!r} (known: {known})")
            with decimal_context():
                account = self.new_account(account_id, self.config.default_account)
        return account

    # -- events ------------------------------------------------------------------------------

    def emit(self, event_type: str, account: Account | None, /, **fields: object) -> Event:
        event: Event = {
            "type": event_type,
            "ts": self.ts,
            "account": account.id if account else None,
        }
        event.update(fields)
        self.out.append(event)
        return event

    def reject(
        self, account: Account, order_id: str | None, decision: Decision, **extra: object
    ) -> None:
        self.emit(
            "order_rejected",
            account,
            id=order_id,
            code=decision.code,
            reason=decision.reason,
            **extra,
        )

    # -- orders and positions ----------------------------------------------------------------

    def release(self, account: Account, order: Order, status: str) -> None:
        """Take ``order`` off the book with ``status``; its reserved margin goes back."""
        order.status = status
        account.orders.pop(order.id, None)
        if order.reserved:
            account.order_margin -= order.reserved
            order.reserved = ZERO
        market = self.markets.get(order.symbol)
        if market is not None:
            market.unrest(order)

    def cancel_where(
        self, account: Account, predicate: Callable[[Order], bool], reason: str
    ) -> None:
        for order in sorted(account.orders.values(), key=lambda o: o.seq):
            if predicate(order):
                self.release(account, order, "canceled")
                self.emit("order_cancelled", account, id=order.id, reason=reason)

    def register(self, account: Account, pos: Position) -> None:
        """Index an open position in its market, so that the symbol's ticks visit it."""
        market = self.markets[pos.symbol]
        if not pos.is_open:
            return
        if pos.isolated:
            market.isolated[pos] = account
            market.cross.pop(pos, None)
        else:
            market.cross[pos] = account
            market.isolated.pop(pos, None)

    def close_out(self, account: Account, pos: Position, reason: str) -> None:
        """Forget a position that went flat: its protective and reduce-only orders go too."""
        self.cancel_where(
            account, lambda o: o.key == pos.key and (o.reduce_only or o.close_position), reason
        )
        pos.set_size(0, ZERO, ZERO)
        pos.alert.reset(self.config.alerts)
        account.positions.pop(pos.key, None)
        market = self.markets[pos.symbol]
        market.isolated.pop(pos, None)
        market.cross.pop(pos, None)
