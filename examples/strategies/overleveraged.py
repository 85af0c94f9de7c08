"""How not to trade: averaging down a long with doubled size at high leverage.

It asks for more leverage than the guards allow (refused: LEVERAGE_EXCEEDS_MAX, it takes the
cap), then buys again every ``step_percent`` the price falls, doubling the size each time. The
guards refuse what the margin cannot carry (MARGIN_INSUFFICIENT, NOTIONAL_EXCEEDS_MAX; it
retries with half), the margin ratio climbs through the alert levels and, in the sell-off of the
example ticks, the account is liquidated. ccxt's unified API only::

    guardbot replay --ticks examples/ticks/btc_eth_crash.jsonl \
        --config examples/strategies/replay.toml \
        --strategy examples/strategies/overleveraged.py:Overleveraged --out runs/overleveraged
"""

from __future__ import annotations

from typing import Any

import ccxt

from guardbot.paper import Strategy


class Overleveraged(Strategy):
    async def on_start(self, exchange: Any) -> None:
        self.symbol = str(self.params.get("symbol", "BTC/USDT:USDT"))
        self.size = float(self.params.get("amount", 0.2))
        self.step = float(self.params.get("step_percent", 0.75)) / 100
        self.next_buy: float | None = None
        self.wiped_out = False
        await exchange.load_markets()
        for leverage in (int(self.params.get("leverage", 50)), 20, 10):
            try:
                await exchange.set_leverage(leverage, self.symbol)
                break
            except ccxt.OperationRejected:
                continue  # above the guard's cap: try less

    async def on_tick(self, exchange: Any, ticker: dict[str, Any]) -> None:
        if ticker["symbol"] != self.symbol or self.wiped_out:
            return
        price = float(ticker["markPrice"])
        if self.next_buy is not None and price > self.next_buy:
            return
        amount = self.size
        while amount >= 0.001:
            try:
                await exchange.create_market_buy_order(self.symbol, round(amount, 3))
            except (ccxt.InsufficientFunds, ccxt.OperationRejected):
                amount /= 2  # a guard says no (margin, notional cap): try half
                continue
            self.size = amount * 2  # double down next time
            self.next_buy = price * (1 - self.step)
            return
        self.next_buy = price * (1 - self.step)  # nothing fits: wait for the next step

    async def on_event(self, exchange: Any, event: dict[str, Any]) -> None:
        if event["type"] == "liquidation":
            self.wiped_out = True  # nothing left to trade with
