"""Order flow: placing orders, resting limits and triggers, fills and their settlement."""

from __future__ import annotations

import heapq
from decimal import Decimal

from guardbot.core.account import Account
from guardbot.core.admission import Admission
from guardbot.core.codes import Code
from guardbot.core.commands import (
    CancelCmd,
    OrderCmd,
)
from guardbot.core.evaluation import after_change
from guardbot.core.guards import Decision
from guardbot.core.market import BPS, HUNDRED, Market
from guardbot.core.num import ZERO, money
from guardbot.core.orders import Order
from guardbot.core.position import Position, position_key
from guardbot.core.state import EngineState
from guardbot.core.trading import check_daily_loss, roll_day

__all__ = ["OrderFlow"]


def _push(heap: list[tuple[Decimal, int, Order]], entry: tuple[Decimal, int, Order]) -> None:
    """``heappush``, and drop the entries of orders no longer open when they are the majority.

    An order leaving the book leaves its heap at once (:meth:`Market.unrest`); this is the
    backstop for an entry that did not (the pops skip entries of orders no longer open). Checking
    at powers of two keeps the cost amortized O(1) per push and the heap within twice its open
    orders (plus 64).
    """
    heapq.heappush(heap, entry)
    size = len(heap)
    if size >= 64 and size & (size - 1) == 0:
        live = [e for e in heap if e[2].status == "open"]
        if 2 * len(live) < size:
            heap[:] = live
            heapq.heapify(heap)


def _side_field(position_side: str | None) -> dict[str, object]:
    """``positionSide`` for the events of a hedged account's positions (none in one-way)."""
    return {"positionSide": position_side} if position_side is not None else {}


class OrderFlow:
    """Places and cancels orders, rests limits and triggers, fires them and settles fills.

    Admission decides whether an order may trade; after a fill, :func:`after_change` evaluates
    the account (alerts, liquidation).
    """

    __slots__ = ("_admission", "_st")

    def __init__(self, st: EngineState, admission: Admission) -> None:
        self._st = st
        self._admission = admission

    def place(self, cmd: OrderCmd) -> None:
        account = self._st.account(cmd.account)
        roll_day(self._st, account)
        if cmd.id in account.orders:
            self._st.reject(
                account,
                cmd.id,
                Decision(Code.INVALID_ORDER, f"an open order already has id {cmd.id!r}"),
                symbol=cmd.symbol,
            )
            return
        cmd = self._admission.as_placed(account, cmd)
        decision = self._admission.check(account, cmd)
        if not decision.ok:
            self._st.reject(account, cmd.id, decision, symbol=cmd.symbol)
            return
        market = self._st.markets[cmd.symbol]
        amount = cmd.amount
        pos = account.positions.get(position_key(cmd.symbol, cmd.position_side))
        if cmd.reduce_only and pos is not None and not self._admission.conditional(cmd):
            amount = self._admission.reduce_only_room(
                account, pos, cmd.side, amount, resting=cmd.order_type == "limit"
            )
        self._st.seq += 1
        order = Order(
            id=cmd.id,
            account=account.id,
            symbol=cmd.symbol,
            side=cmd.side,
            order_type=cmd.order_type,
            amount=amount,
            price=cmd.price,
            reduce_only=cmd.reduce_only,
            seq=self._st.seq,
            ts=self._st.ts,
            time_in_force=cmd.time_in_force,
            post_only=cmd.post_only,
            stop_loss_price=cmd.stop_loss_price,
            take_profit_price=cmd.take_profit_price,
            trigger_source=cmd.trigger_price_type or self._st.config.trigger_price,
            position_side=cmd.position_side,
            widen_stop_loss=cmd.widen_stop_loss,
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
        self._st.emit("order_accepted", account, **order.describe(), **amount_note)
        if order.kind is not None:
            self._rest_trigger(account, market, order)
            return
        if order.order_type == "market":
            fill_price = self._admission.taker_price(market, order.side)
            assert fill_price is not None  # checked by _check_order
            self._execute(account, order, order.amount, fill_price, "taker")
            return
        self._rest_or_take_limit(account, market, order)

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
            self._st.emit(
                "order_cancelled",
                account,
                id=order.id,
                reason=f"{order.time_in_force} order did not fill",
            )
            return
        order.reserved = self._admission.order_reserve(account, order)
        account.order_margin += order.reserved
        account.orders[order.id] = order
        heap = market.buy_limits if order.side > 0 else market.sell_limits
        _push(heap, (-price if order.side > 0 else price, order.seq, order))

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
            _push(rises, (order.trigger_price, order.seq, order))
        else:
            _push(falls, (-order.trigger_price, order.seq, order))

    def run_triggers(self, market: Market) -> None:
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
                account = self._st.accounts[order.account]
                self._st.release(account, order, "filled")
                assert order.price is not None
                amount = self._limit_fill_amount(account, order)
                if amount is None:
                    continue
                decision = self._admission.check_fill(account, market, order, amount)
                if decision.ok:
                    self._execute(account, order, amount, order.price, "maker")
                else:
                    self._st.reject(account, order.id, decision)

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
                self._st.tick_moved_orders = True
            assert order.trailing_percent is not None
            extreme = order.trailing_extreme if order.trailing_extreme is not None else price
            # a sell trails the highest price seen, a buy the lowest
            extreme = max(extreme, price) if order.side < 0 else min(extreme, price)
            if extreme != order.trailing_extreme:
                order.trailing_extreme = extreme
                self._st.tick_moved_orders = True
            offset = extreme * order.trailing_percent / HUNDRED
            trigger = extreme - offset if order.side < 0 else extreme + offset
            order.trigger_price = trigger
            if (order.side < 0 and price <= trigger) or (order.side > 0 and price >= trigger):
                fired.append(order)
            else:
                keep.append(order)
        market.trailing = keep
        return fired

    def _fire(self, market: Market, order: Order) -> None:
        account = self._st.accounts[order.account]
        price = market.price(order.trigger_source)
        assert price is not None
        order.status = "triggered"
        account.orders.pop(order.id, None)
        self._st.emit(
            "stop_triggered",
            account,
            id=order.id,
            symbol=order.symbol,
            side=order.side_name,
            kind=order.kind,
            triggerPrice=order.trigger_price,
            price=price,
            priceType=order.trigger_source,
            **_side_field(order.position_side),
        )
        pos = account.positions.get(order.key)
        amount = order.amount
        if order.reduce_only or order.close_position:
            if pos is None or pos.sign == order.side:
                self._st.emit(
                    "order_cancelled", account, id=order.id, reason="no position left to reduce"
                )
                return
            amount = pos.contracts if order.close_position else min(amount, pos.contracts)
        else:
            decision = self._admission.check_fill(account, market, order, amount)
            if not decision.ok:
                self._st.reject(account, order.id, decision)
                return
        if order.price is not None and order.order_type == "limit":
            order.amount = amount
            order.kind = None
            order.status = "open"
            self._rest_or_take_limit(account, market, order)
            return
        slip = self._st.config.slippage_bps
        fill_price = price * (1 + order.side * slip / BPS) if slip else price
        self._execute(account, order, amount, fill_price, "taker")

    def _limit_fill_amount(self, account: Account, order: Order) -> Decimal | None:
        if not order.reduce_only:
            return order.amount
        pos = account.positions.get(order.key)
        if pos is None or pos.sign == order.side:
            self._st.emit(
                "order_cancelled", account, id=order.id, reason="no position left to reduce"
            )
            return None
        return min(order.amount, pos.contracts)

    def _execute(
        self, account: Account, order: Order, contracts: Decimal, price: Decimal, liquidity: str
    ) -> None:
        """Fill ``contracts`` of ``order`` at ``price`` and settle wallets, fees and margin."""
        if contracts <= 0:
            self._st.emit("order_cancelled", account, id=order.id, reason="nothing left to fill")
            return
        symbol = order.symbol
        market = self._st.markets[symbol]
        table = market.table
        assert table is not None
        settings = self._st.settings(account, symbol)
        pos = account.positions.get(order.key)
        if pos is None:
            pos = Position(
                symbol=symbol,
                table=table,
                margin_mode=settings.margin_mode,
                leverage=settings.leverage,
                contract_size=market.contract_size,
                position_side=order.position_side,
            )
            pos.alert.reset(self._st.config.alerts)
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
        account.daily.add(self._st.ts, fill.realized_pnl - fee)
        self._st.emit(
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
            # the side the position is on after the fill; a hedged side keeps its name at 0
            positionSide=pos.position_side or pos.side,
            positionContracts=pos.contracts,
        )
        if not pos.is_open:
            self._st.close_out(account, pos, "position closed")
        else:
            account.positions[pos.key] = pos
            if fill.flipped or (before_sign != 0 and before_sign != pos.sign):
                self._st.cancel_where(
                    account,
                    lambda o: o.key == pos.key and (o.reduce_only or o.close_position),
                    "position flipped",
                )
            if fill.opened_qty:
                self._attach_protection(account, market, pos, order)
            self._trim_reduce_only(account, pos)
        self._st.register(account, pos)
        after_change(self._st, account, pos)
        check_daily_loss(self._st, account)

    def _attach_protection(
        self, account: Account, market: Market, pos: Position, order: Order
    ) -> None:
        for kind, price in (
            ("stop_loss", order.stop_loss_price),
            ("take_profit", order.take_profit_price),
        ):
            if price is None:
                continue
            if kind == "stop_loss" and not order.widen_stop_loss:
                # a resting order that fills after the position got a tighter stop
                widened = self._admission.widening(account, pos, price)
                if widened is not None:
                    self._st.reject(account, f"{order.id}-sl", widened, symbol=pos.symbol)
                    continue
            for old in [
                o
                for o in account.orders.values()
                if o.key == pos.key and o.close_position and o.kind == kind
            ]:
                self._st.release(account, old, "canceled")
                self._st.emit("order_cancelled", account, id=old.id, reason="replaced")
            self._st.seq += 1
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
                seq=self._st.seq,
                ts=self._st.ts,
                kind=kind,
                trigger_price=price,
                trigger_dir=close_side if kind == "stop_loss" else -close_side,
                trigger_source=order.trigger_source,
                close_position=True,
                parent=order.id,
                position_side=pos.position_side,
            )
            self._st.emit("order_accepted", account, **protective.describe())
            self._rest_trigger(account, market, protective)

    def _trim_reduce_only(self, account: Account, pos: Position) -> None:
        """Keep resting reduce-only orders within the position: the farthest from the market go
        first (docs/rules.md §9.1)."""
        side = -pos.sign
        resting = [
            o
            for o in account.orders.values()
            if o.key == pos.key and o.reduce_only and o.kind is None and o.side == side
        ]
        total = sum((o.amount for o in resting), ZERO)
        if total <= pos.contracts:
            return
        mark = self._st.mark_of(pos.symbol)
        resting.sort(key=lambda o: (-(abs((o.price or mark) - mark)), -o.seq))
        excess = total - pos.contracts
        for order in resting:
            if excess <= 0:
                break
            if order.amount <= excess:
                excess -= order.amount
                self._st.release(account, order, "canceled")
                self._st.emit(
                    "order_cancelled",
                    account,
                    id=order.id,
                    reason="reduce-only orders exceed the position",
                )
            else:
                order.amount -= excess
                self._st.emit(
                    "order_amended",
                    account,
                    id=order.id,
                    amount=order.amount,
                    reason="reduce-only orders exceed the position",
                )
                excess = ZERO

    def cancel(self, cmd: CancelCmd) -> None:
        account = self._st.account(cmd.account)
        order = account.orders.get(cmd.id)
        if order is None:
            self._st.reject(
                account, cmd.id, Decision(Code.INVALID_ORDER, f"no open order with id {cmd.id!r}")
            )
            return
        self._st.release(account, order, "canceled")
        self._st.emit("order_cancelled", account, id=order.id, reason="cancelled by request")
