"""Breakout momentum with a stop-loss and a take-profit: ccxt's unified API only.

Buys when the last price breaks above the highest price of the previous ``window`` ticks by
``breakout_percent``, with a stop-loss ``stop_percent`` below and a take-profit
``take_profit_percent`` above the entry, attached the ccxt way
(``params={"stopLoss": {"triggerPrice": ...}, "takeProfit": {"triggerPrice": ...}}``).
Every exchange call is a ccxt method, so the class runs unchanged on ``ccxt.pro.binanceusdm``
(for real money: don't) and on guardbot's paper exchange::

    guardbot replay --ticks examples/ticks/btc_eth_crash.jsonl \
        --strategy examples/strategies/momentum.py:Momentum --out runs/momentum
"""

from __future__ import annotations

from collections import deque
from typing import Any

import ccxt

from guardbot.paper import Strategy


class Momentum(Strategy):
    async def on_start(self, exchange: Any) -> None:
        self.symbol = str(self.params.get("symbol", "ETH/USDT:USDT"))
        self.window = int(self.params.get("window", 120))
        self.breakout = float(self.params.get("breakout_percent", 0.1)) / 100
        self.stop = float(self.params.get("stop_percent", 1.5)) / 100
        self.take = float(self.params.get("take_profit_percent", 3.0)) / 100
        self.amount = float(self.params.get("amount", 1))
        self.prices: deque[float] = deque(maxlen=self.window)
        await exchange.load_markets()
        await exchange.set_margin_mode("isolated", self.symbol)
        await exchange.set_leverage(int(self.params.get("leverage", 5)), self.symbol)

    async def on_tick(self, exchange: Any, ticker: dict[str, Any]) -> None:
        if ticker["symbol"] != self.symbol or ticker["last"] is None:
            return
        last = float(ticker["last"])
        full = len(self.prices) == self.window
        high = max(self.prices) if self.prices else last
        self.prices.append(last)
        if not full or last <= high * (1 + self.breakout):
            return
        if await exchange.fetch_positions([self.symbol]):
            return  # already in
        try:
            await exchange.create_order(
                self.symbol,
                "market",
                "buy",
                self.amount,
                None,
                {
                    "stopLoss": {
                        "triggerPrice": exchange.price_to_precision(
                            self.symbol, last * (1 - self.stop)
                        )
                    },
                    "takeProfit": {
                        "triggerPrice": exchange.price_to_precision(
                            self.symbol, last * (1 + self.take)
                        )
                    },
                },
            )
        except ccxt.InsufficientFunds:
            return  # wait for the next breakout

    async def on_stop(self, exchange: Any) -> None:
        # leave flat: close what is open at market, cancel what rests
        for position in await exchange.fetch_positions([self.symbol]):
            side = "sell" if position["side"] == "long" else "buy"
            await exchange.create_order(
                self.symbol, "market", side, position["contracts"], None, {"reduceOnly": True}
            )
        await exchange.cancel_all_orders(self.symbol)
