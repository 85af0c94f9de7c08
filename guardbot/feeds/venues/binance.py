"""Binance USDⓈ-M: the funding rate and next funding time stay raw in the mark-price stream.

``<symbol>@markPrice`` frames carry ``r`` (funding rate) and ``T`` (next funding time, ms);
``/fapi/v1/premiumIndex`` (``fetch_mark_prices``) carries ``lastFundingRate`` and
``nextFundingTime``. ccxt parses neither into the ticker it returns. The full 24 h ticker is
asked for by name (``watch_tickers`` defaults to the mini ticker, which has no bid/ask either).
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(
    name="binance",
    exchange_ids=("binanceusdm", "binance"),
    raw={
        "mark": {
            "funding_rate": ("r", "lastFundingRate"),
            "next_funding_ts": ("T", "nextFundingTime"),
        },
    },
    ticker_params={"name": "ticker"},
)
