"""Gate (USDT futures): the ``futures.tickers`` stream carries the mark price, unified by ccxt.

The funding rate stays raw (``funding_rate``); the next funding time is not in the stream, so it
comes from the REST funding poll (``fetch_funding_rates``: ``funding_next_apply``).
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(
    name="gate",
    exchange_ids=("gate", "gateio"),
    raw={"ticker": {"funding_rate": ("funding_rate",)}},
    ticker_has_mark=True,
)
