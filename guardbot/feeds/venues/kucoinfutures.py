"""KuCoin Futures: mark and funding on KuCoin's "Pro" websocket, bid/ask and last on the classic.

ccxt 4.5.90's ``kucoinfutures`` is KuCoin's unified class. ``watch_mark_price`` (channel
``mark-price``: ``mp``, ``ip``) and ``watch_funding_rate`` (``funding-fee``: ``fr``, ``ft``,
``nt``, ``gl``) run on the Pro websocket, one symbol each; ``watch_bids_asks``
(``/contractMarket/tickerV2``) and ``watch_tickers`` (``/contractMarket/ticker``, on a trade)
on the classic one, behind a ``bullet-public`` token. Everything is unified except the next
funding time of the stream: ccxt's ``fundingTimestamp`` there is ``ft``, the funding time of
the period in force (already passed), and ``nt``, the next one, stays raw; the REST funding
structures put the next time (``fundingTime``) in ``fundingTimestamp`` and have no ``nt``.
``fetch_mark_prices`` reads the spot margin mark list (``/api/v3/mark-price/all-symbols``), so
the REST fallback asks ``fetch_mark_price`` per contract instead.
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(
    name="kucoinfutures",
    exchange_ids=("kucoinfutures",),
    raw={"funding": {"next_funding_ts": ("nt",)}},
    next_funding_raw_first=True,
    rest_skip=("fetchMarkPrices",),
)
