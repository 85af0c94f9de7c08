"""Order admission: the guard policies and margin checks an order passes before the book.

Every check returns a :class:`Decision` with a code from docs/contracts.md §2; nothing raises.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from guardbot.core import margin
from guardbot.core.account import Account
from guardbot.core.codes import Code
from guardbot.core.commands import (
    OrderCmd,
)
from guardbot.core.config import EngineConfig
from guardbot.core.guards import Decision, TradingState
from guardbot.core.market import BPS, Market
from guardbot.core.num import ZERO, fmt, fmt_brief
from guardbot.core.orders import Order
from guardbot.core.position import Position, position_key
from guardbot.core.state import market_of, symbol_settings

__all__ = ["Admission"]


class Admission:
    """Decides whether an order may trade, and what it and the account's positions hold.

    A pure checker: configuration and markets in at construction, an account and a command in
    per call, a :class:`Decision` out. It changes nothing but the lazily created defaults of a
    symbol (its market and the account's settings there).
    """

    __slots__ = ("config", "markets", "profile")

    def __init__(self, config: EngineConfig, markets: dict[str, Market]) -> None:
        self.config = config
        self.profile = config.profile
        self.markets = markets

    def _mark(self, symbol: str) -> Decimal:
        mark = self.markets[symbol].mark
        assert mark is not None, "a position exists only where a price was seen"
        return mark

    @staticmethod
    def as_placed(account: Account, cmd: OrderCmd) -> OrderCmd:
        """``cmd`` as the account's position mode reads it: in a hedged account an order against
        its side (``sell`` + ``long``, ``buy`` + ``short``) only reduces that side, so it is
        reduce-only (docs/rules.md §8.6)."""
        if (
            account.hedged
            and cmd.position_side is not None
            and not cmd.reduce_only
            and (cmd.side < 0) == (cmd.position_side == "long")
        ):
            return replace(cmd, reduce_only=True)
        return cmd

    def check(self, account: Account, cmd: OrderCmd) -> Decision:
        table = self.config.tiers.get(cmd.symbol)
        if table is None:
            return Decision(
                Code.UNKNOWN_SYMBOL, f"no tier table for {cmd.symbol}: the engine does not trade it"
            )
        sided = self._position_side_decision(account, cmd)
        if sided is not None:
            return sided
        market = market_of(self.config, self.markets, cmd.symbol)
        conditional = self.conditional(cmd)
        if cmd.post_only and cmd.order_type == "market":
            return Decision(Code.INVALID_ORDER, "postOnly needs a limit order")
        if cmd.post_only and cmd.price is not None and not conditional:
            touch = market.buy_price() if cmd.side > 0 else market.sell_price()
            if touch is not None and (touch <= cmd.price if cmd.side > 0 else touch >= cmd.price):
                return Decision(
                    Code.INVALID_ORDER,
                    f"post-only order at {fmt(cmd.price)} would take liquidity at {fmt(touch)}"
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
        key = position_key(cmd.symbol, cmd.position_side)
        pos = account.positions.get(key)
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
                    f"a {'buy' if cmd.side > 0 else 'sell'} would increase the {pos.side} position"
                    + (" (a reduce-only order must close its side)" if account.hedged else ""),
                )
            if not conditional:
                oversize = self._oversize_decision(account, pos, cmd)
                if oversize is not None:
                    return oversize
        opening = ZERO if cmd.reduce_only else self.opening_contracts(pos, cmd.side, cmd.amount)
        guards = self.config.guards
        has_stop = cmd.stop_loss_price is not None or self._has_stop(account, key, -cmd.side)
        if guards.require_stop_loss and opening > 0 and not has_stop and not conditional:
            return Decision(Code.STOP_LOSS_REQUIRED, "an opening order needs params.stopLossPrice")
        crossed = self._crossed_triggers(cmd, watched)
        if crossed is not None:
            return crossed
        if (
            cmd.stop_loss_price is not None
            and not cmd.reduce_only  # reduce-only: a stand-alone stop, which replaces nothing
            and not cmd.widen_stop_loss
            and pos is not None
            and pos.sign == cmd.side  # an added order: its stop replaces the position's
        ):
            widened = self.widening(account, pos, cmd.stop_loss_price)
            if widened is not None:
                return widened
        if opening <= 0 or (conditional and cmd.reduce_only):
            return Decision()
        return self._risk(account, market, cmd, opening, check_margin=not conditional)

    @staticmethod
    def _position_side_decision(account: Account, cmd: OrderCmd) -> Decision | None:
        """A hedged account needs ``params.positionSide`` long or short; a one-way account takes
        none or ``both`` (docs/contracts.md §2)."""
        invalid = cmd.position_side_invalid
        if invalid is not None:
            return Decision(
                Code.INVALID_ORDER,
                f"params.positionSide must be long, short or both, got {invalid!r}",
            )
        if account.hedged and cmd.position_side is None:
            return Decision(
                Code.POSITION_SIDE_REQUIRED,
                "the account is in hedge mode: params.positionSide must be long or short",
            )
        if not account.hedged and cmd.position_side is not None:
            return Decision(
                Code.INVALID_ORDER,
                f"params.positionSide {cmd.position_side!r} needs hedge mode; the account is"
                " one-way (positionSide absent or both)",
            )
        return None

    def _oversize_decision(self, account: Account, pos: Position, cmd: OrderCmd) -> Decision | None:
        policy = self.config.guards.reduce_only_oversize or self.profile.reduce_only_excess
        resting = (
            self._resting_reduce_only(account, pos.key, cmd.side)
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
                f"amount {fmt(cmd.amount)} exceeds the {fmt(room)} contracts"
                " a reduce-only order may close",
            )
        return None

    @staticmethod
    def widening(account: Account, pos: Position, stop_loss: Decimal) -> Decision | None:
        """A refusal when an attached ``stop_loss`` would replace ``pos``'s close-all stop with
        one farther from the price (issue 11: an added order's 55,000 stop silently replaced a
        57,000 one); None when there is none or the new one is as tight or tighter."""
        old = next(
            (
                o
                for o in account.orders.values()
                if o.key == pos.key and o.close_position and o.kind == "stop_loss"
            ),
            None,
        )
        if old is None or not old.widened_by(stop_loss):
            return None
        assert old.trigger_price is not None
        return Decision(
            Code.STOP_LOSS_WOULD_WIDEN,
            f"stopLossPrice {fmt(stop_loss)} would widen the {pos.side} position's stop at"
            f" {fmt(old.trigger_price)} (order {old.id}); set params.widenStopLoss to replace it",
        )

    @staticmethod
    def _has_stop(account: Account, key: str, side: int) -> bool:
        return any(
            o.key == key and o.kind in ("stop_loss", "trailing_stop") and o.side == side
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
                    f"{name} {fmt(price)} is already crossed by the "
                    f"{cmd.trigger_price_type or self.config.trigger_price} price {fmt(watched)}",
                )
        return None

    @staticmethod
    def _after_order(
        account: Account, key: str, side: int, amount: Decimal
    ) -> tuple[Decimal, Decimal]:
        """(contracts of the position that stay, contracts the order opens) if it fills."""
        pos = account.positions.get(key)
        if pos is None or pos.sign == 0 or pos.sign == side:
            return (pos.contracts if pos else ZERO), amount
        return max(ZERO, pos.contracts - amount), max(ZERO, amount - pos.contracts)

    def exposure(
        self, account: Account, key: str, symbol: str, side: int, amount: Decimal, price: Decimal
    ) -> Decimal:
        """What selects the tier for the leverage check: the position ``key`` left after the
        order (at mark) plus what the order and the other resting opening orders add (at their
        prices); contracts for tiers keyed on contracts. Binance counts position and open orders
        (-2027), and long and short together in hedge mode (docs/rules.md §2.2)."""
        market = self.markets[symbol]
        stay, opening = self._after_order(account, key, side, amount)
        if account.hedged:
            for other in account.symbol_positions(symbol):
                if other.key != key:
                    stay += other.contracts
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

    def _risk(
        self,
        account: Account,
        market: Market,
        cmd: OrderCmd,
        opening: Decimal,
        *,
        check_margin: bool,
    ) -> Decision:
        symbol = cmd.symbol
        settings = symbol_settings(self.config, account, symbol)
        leverage = settings.leverage
        cap = self.config.guards.leverage_cap(symbol)
        if cap is not None and leverage > cap:
            return Decision(
                Code.LEVERAGE_EXCEEDS_MAX,
                f"leverage {fmt(leverage)} is above the policy cap {fmt(cap)} for {symbol}",
            )
        price = self._expected_fill_price(market, cmd)
        if price is None:
            return Decision(Code.PRICE_STALE, f"no price to fill {cmd.symbol}")
        table = market.table
        assert table is not None
        key = position_key(symbol, cmd.position_side)
        exposure = self.exposure(account, key, symbol, cmd.side, cmd.amount, price)
        tier_max = table.max_leverage_for(exposure)
        if leverage > tier_max:
            unit = "contracts" if self.profile.tier_basis == "contracts" else "USDT"
            if exposure > table.max_value:
                # a table (bundled ones may be partial) says nothing about sizes beyond its last
                # tier: refused, never priced with the last tier's rate
                return Decision(
                    Code.LEVERAGE_EXCEEDS_MAX,
                    f"{fmt(exposure)} {unit} of {symbol} is beyond its tier table, whose last "
                    f"tier ends at {fmt(table.max_value)} {unit}",
                )
            return Decision(
                Code.LEVERAGE_EXCEEDS_MAX,
                f"leverage {fmt(leverage)} is above the tier maximum {fmt(tier_max)}"
                f" for {fmt(exposure)} {unit} of {symbol}",
            )
        size = market.contract_size
        guards = self.config.guards
        stay, opens = self._after_order(account, key, cmd.side, cmd.amount)
        assert market.mark is not None
        after = (stay * market.mark + opens * price) * size
        if guards.max_position_notional is not None and after > guards.max_position_notional:
            return Decision(
                Code.NOTIONAL_EXCEEDS_MAX,
                f"position notional {fmt(after)} would exceed max_position_notional"
                f" {fmt(guards.max_position_notional)}",
            )
        if guards.max_account_exposure is not None:
            total = after + self._open_order_value(account, symbol)
            seen = {symbol}
            for other, p in account.positions.items():
                if other != key:
                    orders = ZERO if p.symbol in seen else self._open_order_value(account, p.symbol)
                    seen.add(p.symbol)
                    total += p.qty * self._mark(p.symbol) + orders
            if total > guards.max_account_exposure:
                return Decision(
                    Code.EXPOSURE_EXCEEDS_MAX,
                    f"account exposure {fmt(total)} would exceed max_account_exposure"
                    f" {fmt(guards.max_account_exposure)}",
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
            available = self.available(account)
            if settings.margin_mode == "isolated":
                # an isolated wallet is funded from the cross wallet itself, never from
                # unrealized profit (Binance's max-addable rule, docs/rules.md §8.4)
                available = min(available, self.max_addable(account))
            if cost > available:
                return Decision(
                    Code.MARGIN_INSUFFICIENT,
                    f"order cost {fmt_brief(cost)} exceeds the available balance "
                    f"{fmt_brief(available)}",
                )
        return Decision()

    def _expected_fill_price(self, market: Market, cmd: OrderCmd) -> Decimal | None:
        """The price the order's value and margin are checked at: the touch for a market order;
        a limit's own price (Binance values orders at their price), except a marketable sell
        limit, which sells at the bid and needs the margin of that larger notional."""
        touch = self.taker_price(market, cmd.side)
        if cmd.price is None:
            return touch
        if cmd.side < 0 and touch is not None and touch > cmd.price:
            return touch  # a marketable sell: it trades at the bid, above its limit
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

    def available(self, account: Account) -> Decimal:
        """Available balance for orders (docs/rules.md §3.3): unrealized profit counts by
        profile."""
        total = account.wallet - account.order_margin
        counts_profit = self.profile.upnl_profit_counts_for_available
        for pos in account.positions.values():
            if pos.isolated:
                continue
            mark = self._mark(pos.symbol)
            upnl = margin.unrealized_pnl(pos, mark)
            total += (upnl if counts_profit else min(upnl, ZERO)) - margin.initial_margin(
                self.profile, pos, mark
            )
        return total

    @staticmethod
    def conditional(cmd: OrderCmd) -> bool:
        return (
            cmd.trigger_price is not None
            or cmd.trailing_percent is not None
            or (cmd.reduce_only and bool(cmd.stop_loss_price or cmd.take_profit_price))
        )

    def opening_contracts(self, pos: Position | None, side: int, amount: Decimal) -> Decimal:
        if pos is None or pos.sign == 0 or pos.sign == side:
            return amount
        return max(ZERO, amount - pos.contracts)

    def reduce_only_room(
        self, account: Account, pos: Position, side: int, amount: Decimal, *, resting: bool
    ) -> Decimal:
        """Trim a reduce-only amount to what the position (less resting reduce-only) allows."""
        room = pos.contracts
        if resting:
            room -= self._resting_reduce_only(account, pos.key, side)
        return min(amount, room)

    @staticmethod
    def _resting_reduce_only(account: Account, key: str, side: int) -> Decimal:
        return sum(
            (
                o.amount
                for o in account.orders.values()
                if o.key == key and o.side == side and o.reduce_only and o.kind is None
            ),
            ZERO,
        )

    def taker_price(self, market: Market, side: int) -> Decimal | None:
        base = market.buy_price() if side > 0 else market.sell_price()
        if base is None:
            return None
        if self.config.slippage_bps:
            base = base * (1 + side * self.config.slippage_bps / BPS)
        return base

    def cross_mm(self, account: Account) -> Decimal:
        """Sum of the exchange maintenance margin of the cross positions at their marks."""
        total = ZERO
        for pos in account.positions.values():
            if not pos.isolated:
                total += margin.maintenance(self.profile, pos, self._mark(pos.symbol))[0]
        return total

    def max_addable(self, account: Account) -> Decimal:
        iso_orders = sum(
            (
                o.reserved
                for o in account.orders.values()
                if symbol_settings(self.config, account, o.symbol).margin_mode == "isolated"
            ),
            ZERO,
        )
        return max(
            ZERO,
            min(account.wallet - iso_orders - self.cross_mm(account), self.available(account)),
        )

    def order_reserve(self, account: Account, order: Order) -> Decimal:
        if order.reduce_only or order.price is None:
            return ZERO
        pos = account.positions.get(order.key)
        opening = self.opening_contracts(pos, order.side, order.amount)
        if opening <= 0:
            return ZERO
        market = self.markets[order.symbol]
        settings = symbol_settings(self.config, account, order.symbol)
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

    def check_fill(
        self, account: Account, market: Market, order: Order, amount: Decimal
    ) -> Decision:
        """Re-check margin when a resting order fills: the position it meets may have changed
        since it was placed (a flip it was to close is gone), so its opening part may have grown."""
        if order.reduce_only:
            return Decision()
        opening = self.opening_contracts(account.positions.get(order.key), order.side, amount)
        if opening <= 0:
            return Decision()
        return self._risk(account, market, order.as_command(amount), opening, check_margin=True)
