"""Per-symbol market state: latest prices and what a tick of the symbol must visit."""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import TYPE_CHECKING

from guardbot.core.orders import Order
from guardbot.core.tiers import TierTable

if TYPE_CHECKING:
    from guardbot.core.account import Account
    from guardbot.core.position import Position

__all__ = ["BPS", "HUNDRED", "INF", "NEG_INF", "Market"]

INF = Decimal("Infinity")
NEG_INF = Decimal("-Infinity")
BPS = Decimal(10000)
HUNDRED = Decimal(100)


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
        self.cross: dict[Position, Account] = {}
        # triggers[source] = (fire-when-price-falls heap, fire-when-price-rises heap)
        self.triggers: dict[str, tuple[list[tuple[Decimal, int, Order]], ...]] = {
            "mark": ([], []),
            "last": ([], []),
        }
        self.buy_limits: list[tuple[Decimal, int, Order]] = []  # fire when ask <= price
        self.sell_limits: list[tuple[Decimal, int, Order]] = []  # fire when bid >= price
        self.trailing: list[Order] = []

    def unrest(self, order: Order) -> None:
        """Take ``order`` out of the heap or list it rests in (nothing if it is not there: a
        fired order was popped already).

        Called when an order leaves the book. Left to the heaps' lazy pops, a cancelled order
        far from the price (a stop-loss cancelled with its position) stayed referenced until
        the price reached it, so a daemon opening and closing protected positions kept every
        one of them (issue 16's RSS slope). The scan is as long as the market's resting orders
        of that side, on a cancel, never on a tick.
        """
        if order.kind == "trailing_stop":
            for i, resting in enumerate(self.trailing):
                if resting is order:
                    del self.trailing[i]  # a list in placement order, not a heap
                    return
            return
        if order.kind is not None:
            falls, rises = self.triggers[order.trigger_source]
            heap = rises if order.trigger_dir > 0 else falls
        else:
            heap = self.buy_limits if order.side > 0 else self.sell_limits
        for i, entry in enumerate(heap):
            if entry[2] is order:
                last = heap.pop()
                if i < len(heap):
                    heap[i] = last
                    heapq.heapify(heap)
                return

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
