"""OKX: every field the feed needs is unified by ccxt.

``mark-price`` channel (``watch_mark_prices``: ``markPx``), ``bbo-tbt`` (``watch_bids_asks``),
``tickers`` (last, bid/ask) and ``funding-rate`` (``watch_funding_rates``: ``fundingRate`` and
``fundingTime``, the next settlement, as ccxt's ``fundingTimestamp``). The tickers channel has no
mark price.
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(name="okx", exchange_ids=("okx", "okex", "okex5"))
