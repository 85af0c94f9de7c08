"""MEXC futures: the mark ("fair") price stays raw in the ticker; no bid/ask watch for swaps.

``sub.ticker`` pushes ``fairPrice``, ``indexPrice``, ``fundingRate``, ``bid1``/``ask1`` per
symbol; ccxt unifies bid/ask/last and leaves the other three in ``info``. ``watch_tickers``
subscribes to every market (``sub.tickers``) and its entries have no bid/ask, so tickers are
watched one symbol at a time. ``watch_bids_asks`` raises NotSupported for swaps (dropped from the
plan at start). The next funding time comes from ``sub.funding.rate`` (``watch_funding_rate``).
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(
    name="mexc",
    exchange_ids=("mexc",),
    raw={
        "ticker": {
            "mark": ("fairPrice",),
            "index": ("indexPrice",),
            "funding_rate": ("fundingRate",),
        },
    },
    ticker_has_mark=True,
    tickers_per_symbol=True,
)
