"""A strategy for the paper tests that calls ccxt's unified API only (``exchange.<ccxt method>``).

One action per tick, by tick number, on BTC/USDT:USDT; every event and caught exception is kept
in ``seen`` / ``refusals`` for the test to check.
"""

from __future__ import annotations

from typing import Any

import ccxt

from guardbot.paper import Strategy

BTC = "BTC/USDT:USDT"


class Scripted(Strategy):
    async def on_start(self, exchange: Any) -> None:
        self.ticks = 0
        self.seen: list[dict[str, Any]] = []
        self.refusals: list[str] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.stopped = False
        markets = await exchange.load_markets()
        assert BTC in markets
        await exchange.set_leverage(20, BTC)

    async def on_tick(self, exchange: Any, ticker: dict[str, Any]) -> None:
        self.ticks += 1
        step = self.ticks
        if step == 1:  # long 1 with an attached stop-loss and take-profit
            self.orders["entry"] = await exchange.create_order(
                BTC,
                "market",
                "buy",
                1,
                None,
                {"stopLoss": {"triggerPrice": 29000}, "takeProfit": {"triggerPrice": 32000}},
            )
        elif step == 4:  # a resting limit below the market
            self.orders["limit"] = await exchange.create_limit_buy_order(BTC, 1, 31500)
        elif step == 7:  # all in: too big first, then what the margin carries
            try:
                await exchange.create_market_buy_order(BTC, 10)
            except ccxt.InsufficientFunds as exc:
                self.refusals.append(str(exc))
            self.orders["all_in"] = await exchange.create_market_buy_order(BTC, 6)

    async def on_event(self, exchange: Any, event: dict[str, Any]) -> None:
        self.seen.append(event)
        if event["type"] == "fill" and event["id"] == self.orders.get("limit", {}).get("id"):
            # the limit filled: protect it with a stand-alone reduce-only stop
            self.orders["stop"] = await exchange.create_stop_loss_order(
                BTC, "market", "sell", 1, None, 30000, {"reduceOnly": True}
            )

    async def on_stop(self, exchange: Any) -> None:
        self.stopped = True
        self.final_balance = await exchange.fetch_balance()
        self.final_positions = await exchange.fetch_positions()
        self.closed = await exchange.fetch_closed_orders(BTC)
        self.trades = await exchange.fetch_my_trades(BTC)
