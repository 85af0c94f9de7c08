"""Bybit (v5 linear): no mark-price watch; the ``tickers.<symbol>`` stream carries everything.

ccxt parses ``markPrice``, ``indexPrice``, ``bid1Price``/``ask1Price`` (bid/ask) into the ticker and
leaves ``fundingRate`` and ``nextFundingTime`` (ms) in ``info``; the stream sends a snapshot, then
deltas that ccxt merges into the previous ``info``, so both stay present.
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(
    name="bybit",
    exchange_ids=("bybit",),
    raw={
        "ticker": {
            "funding_rate": ("fundingRate",),
            "next_funding_ts": ("nextFundingTime",),
        },
    },
    ticker_has_mark=True,
)
