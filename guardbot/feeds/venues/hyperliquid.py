"""Hyperliquid: not followed live; ccxt 4.5.90 lacks what the engine needs.

``has`` reports no ``fetchLeverageTiers`` / ``fetchMarketLeverageTiers`` (Hyperliquid's margin
tables are not published through ccxt), no mark-price watch (``watch_tickers`` reads ``allMids``,
mid prices) and no ``watchBidsAsks``; only ``fetch_funding_rates`` carries a mark (``markPx``) by
REST. A replay file with the ``generic`` profile and user-supplied tiers still works.
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(
    name="hyperliquid",
    exchange_ids=("hyperliquid",),
    missing=(
        "ccxt 4.5.90 publishes no leverage tiers for hyperliquid (fetchLeverageTiers and "
        "fetchMarketLeverageTiers are missing) and no mark-price stream (watch_tickers gives mid "
        'prices); use feed.mode = "replay" with profile = "generic" and your own tiers'
    ),
)
