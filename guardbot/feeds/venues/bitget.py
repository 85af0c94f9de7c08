"""Bitget (USDT-M futures): the websocket ticker keeps mark, index and funding in ``info``.

The ``ticker`` channel's contract entries carry ``markPrice``, ``indexPrice``, ``fundingRate`` and
``nextFundingTime`` (ms) beside ``bidPr``/``askPr``/``lastPr``; ccxt's websocket ticker parser
unifies only the latter three.
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(
    name="bitget",
    exchange_ids=("bitget",),
    raw={
        "ticker": {
            "mark": ("markPrice",),
            "index": ("indexPrice",),
            "funding_rate": ("fundingRate",),
            "next_funding_ts": ("nextFundingTime",),
        },
    },
    ticker_has_mark=True,
)
