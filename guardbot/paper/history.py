"""The paper exchange's order history: ccxt orders and trades rebuilt from engine events.

The engine keeps open orders only; closed, cancelled and rejected orders, their fills as ccxt
trades and the liquidations as ``autoclose-`` orders live here, the last ``_HISTORY`` of each.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from guardbot.core.account import Account
from guardbot.core.engine import Engine
from guardbot.core.events import Event, to_jsonable
from guardbot.core.num import ONE, ZERO
from guardbot.core.orders import Order
from guardbot.paper import structures as st

__all__ = ["OrderHistory", "OrderRecord"]

_HISTORY = 10_000  # closed orders and trades kept for fetch_closed_orders / fetch_my_trades


@dataclass(slots=True)
class OrderRecord:
    id: str
    client_order_id: str | None
    symbol: str
    type: str
    side: str
    amount: Decimal | None
    price: Decimal | None
    reduce_only: bool
    time_in_force: str
    post_only: bool
    timestamp: int
    kind: str | None = None
    trigger_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    status: str = "open"
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    base_filled: Decimal = ZERO
    fee: Decimal = ZERO
    last_trade_ts: int | None = None
    last_update_ts: int | None = None
    trades: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


class OrderHistory:
    """Orders and trades of ``account`` as ccxt structures, fed one engine event at a time."""

    def __init__(self, engine: Engine, account: str, ids: Iterator[int]) -> None:
        self._engine = engine
        self.account = account
        self._ids = ids  # shared with the exchange's order ids (autoclose-N)
        self._trade_ids = itertools.count(1)
        self._orders: dict[str, OrderRecord] = {}
        self._client_ids: dict[str, str | None] = {}
        self._closed: deque[str] = deque()
        self._trades: deque[dict[str, Any]] = deque(maxlen=_HISTORY)

    def _account(self) -> Account | None:
        return self._engine.accounts.get(self.account)

    def get(self, order_id: str) -> OrderRecord | None:
        return self._orders.get(order_id)

    def by_client_id(self, client_id: str) -> OrderRecord | None:
        return next((r for r in self._orders.values() if r.client_order_id == client_id), None)

    def expect(self, order_id: str, client_id: str | None) -> None:
        """Order ``order_id`` is about to be placed with ``client_id`` (its acceptance has it)."""
        self._client_ids[order_id] = client_id

    def closed(self) -> list[OrderRecord]:
        """Filled orders, oldest first (cancelled, expired and rejected ones left out)."""
        return [self._orders[i] for i in self._closed if self._orders[i].status == "closed"]

    def trades(self) -> Iterator[dict[str, Any]]:
        return iter(self._trades)

    def adopt(self, order: Order) -> OrderRecord:
        """A record for an open order this exchange did not see placed (recovered after a
        restart, or placed by another command source)."""
        event: Event = {"type": "order_accepted", "ts": order.ts, "account": order.account}
        event.update(order.describe())
        self._accepted(event)
        return self._orders[order.id]

    # -- from events -------------------------------------------------------------

    def record(self, event: Event) -> None:
        """Update the history from one engine ``event`` (others' accounts are ignored)."""
        ts = event.get("ts")
        if event.get("account") != self.account:
            return
        kind = event.get("type")
        order_id = event.get("id")
        if kind == "order_accepted":
            self._accepted(event)
            return
        if kind == "liquidation":
            self._liquidated(event)
            return
        record = self._orders.get(str(order_id)) if order_id is not None else None
        if record is None:
            return
        record.last_update_ts = ts if isinstance(ts, int) else record.last_update_ts
        record.info = to_jsonable(event)
        if kind == "fill":
            self._filled(record, event)
        elif kind == "order_cancelled":
            reason = str(event.get("reason", ""))
            record.status = "expired" if ("IOC" in reason or "FOK" in reason) else "canceled"
            self._retire(record)
        elif kind == "order_amended":
            record.amount = event["amount"]
        elif kind == "order_rejected":
            record.status = "rejected"
            self._retire(record)
        elif kind == "stop_triggered":
            record.trigger_price = event.get("triggerPrice", record.trigger_price)

    def _accepted(self, event: Event) -> None:
        order_id = str(event["id"])
        ts = int(event["ts"])
        kind = event.get("kind")
        trigger = event.get("triggerPrice")
        record = OrderRecord(
            id=order_id,
            client_order_id=self._client_ids.pop(order_id, None),
            symbol=str(event["symbol"]),
            type=str(event["orderType"]),
            side=str(event["side"]),
            amount=event.get("amount"),
            price=event.get("price"),
            reduce_only=bool(event.get("reduceOnly")),
            time_in_force=str(event.get("timeInForce", "GTC")),
            post_only=bool(event.get("postOnly", False)),
            timestamp=ts,
            kind=kind,
            trigger_price=trigger,
            stop_loss_price=trigger if kind == "stop_loss" else event.get("stopLossPrice"),
            take_profit_price=trigger if kind == "take_profit" else event.get("takeProfitPrice"),
            last_update_ts=ts,
            info=to_jsonable(event),
        )
        self._orders[order_id] = record

    def _trade(
        self,
        record: OrderRecord,
        event: Event,
        amount: Decimal,
        price: Decimal,
        fee: Decimal,
        liquidity: str,
    ) -> None:
        """A fill of ``record``: a ccxt trade in the order and the history, and the order's sums."""
        size = self._engine.config.contract_sizes.get(record.symbol, ONE)
        cost = amount * size * price
        ts = int(event["ts"])
        trade = {
            "id": str(next(self._trade_ids)),
            "order": record.id,
            "timestamp": ts,
            "datetime": st.iso8601(ts),
            "symbol": event["symbol"],
            "type": record.type,
            "side": record.side,
            "takerOrMaker": liquidity,
            "price": float(price),
            "amount": float(amount),
            "cost": float(cost),
            "fee": {"cost": float(fee), "currency": st.SETTLE},
            "fees": [{"cost": float(fee), "currency": st.SETTLE}],
            "info": to_jsonable(event),
        }
        self._trades.append(trade)
        record.trades.append(trade)
        record.filled += amount
        record.base_filled += amount * size
        record.cost += cost
        record.fee += fee
        record.last_trade_ts = ts

    def _filled(self, record: OrderRecord, event: Event) -> None:
        self._trade(
            record,
            event,
            event["amount"],
            event["price"],
            event["fee"],
            str(event.get("liquidity")),
        )
        if record.amount is None:  # a close-position stop: it closed what was open
            record.amount = record.filled
        account = self._account()
        if account is None or record.id not in account.orders:
            record.status = "closed"
            self._retire(record)

    def _liquidated(self, event: Event) -> None:
        """The engine's forced close, as Binance reports it: an ``autoclose-`` market order."""
        order_id = f"autoclose-{next(self._ids)}"
        side = "sell" if event.get("side") == "long" else "buy"
        ts = int(event["ts"])
        contracts: Decimal = event["contracts"]
        record = OrderRecord(
            id=order_id,
            client_order_id=None,
            symbol=str(event["symbol"]),
            type="market",
            side=side,
            amount=contracts,
            price=None,
            reduce_only=True,
            time_in_force="IOC",
            post_only=False,
            timestamp=ts,
            last_update_ts=ts,
            info=to_jsonable(event),
        )
        self._orders[order_id] = record
        self._trade(record, event, contracts, event["price"], event.get("fee") or ZERO, "taker")
        record.status = "closed"
        self._retire(record)

    def _retire(self, record: OrderRecord) -> None:
        """Keep at most ``_HISTORY`` finished orders (a daemon runs for months)."""
        self._closed.append(record.id)
        while len(self._closed) > _HISTORY:
            self._orders.pop(self._closed.popleft(), None)

    @staticmethod
    def structure(record: OrderRecord) -> dict[str, Any]:
        """The ccxt order of ``record``."""
        amount = record.amount
        average = record.cost / record.base_filled if record.base_filled else None
        remaining = None if amount is None else max(amount - record.filled, ZERO)
        fee = {"cost": float(record.fee), "currency": st.SETTLE}
        return {
            "id": record.id,
            "clientOrderId": record.client_order_id,
            "timestamp": record.timestamp,
            "datetime": st.iso8601(record.timestamp),
            "lastTradeTimestamp": record.last_trade_ts,
            "lastUpdateTimestamp": record.last_update_ts,
            "symbol": record.symbol,
            "type": record.type,
            "timeInForce": record.time_in_force,
            "postOnly": record.post_only,
            "reduceOnly": record.reduce_only,
            "side": record.side,
            "price": st.num(record.price if record.price is not None else average),
            "triggerPrice": st.num(record.trigger_price),
            "stopLossPrice": st.num(record.stop_loss_price),
            "takeProfitPrice": st.num(record.take_profit_price),
            "amount": st.num(amount),
            "cost": float(record.cost),
            "average": st.num(average),
            "filled": float(record.filled),
            "remaining": st.num(remaining),
            "status": record.status,
            "fee": fee,
            "trades": [dict(t) for t in record.trades],
            "fees": [dict(fee)],
            "info": record.info,
        }
