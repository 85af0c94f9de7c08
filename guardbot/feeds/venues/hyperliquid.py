"""Hyperliquid: not followed live; ccxt 4.5.90 lacks two things the engine needs.

Read from ccxt 4.5.90's ``hyperliquid`` classes:

* **Leverage tiers**: ``has`` reports neither ``fetchLeverageTiers`` nor
  ``fetchMarketLeverageTiers``; Hyperliquid's margin tables are not parsed into the markets
  either (only ``maxLeverage``), so there is no table to fetch, cache or refresh.
* **Best bid/ask**: no ``watchBidsAsks`` / ``fetchBidsAsks``. ``watch_ticker`` (the per-coin
  ``activeAssetCtx`` channel) fills ccxt's ``bid``/``ask`` with ``impactPxs``, the prices of an
  impact-sized order, not the book's best quotes; ``watch_tickers`` (``allMids``) carries mids
  only. Paper orders fill at the ask, so a wrong ask would be a wrong fill.

What ccxt does carry, raw in ``watch_ticker``'s ``info``: the mark (``markPx``), the oracle price
(``oraclePx``) and the hourly funding rate (``funding``); ``fetch_funding_rates`` the same by REST
with the next hour as the funding time. The markets settle in USDC (``BTC/USDC:USDC``). A replay
file or a feed plugin with the ``generic`` profile and the user's ``tiers_file`` still works.
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(
    name="hyperliquid",
    exchange_ids=("hyperliquid",),
    missing=(
        "ccxt 4.5.90 carries no leverage tiers for hyperliquid (no fetchLeverageTiers or "
        "fetchMarketLeverageTiers; its margin tables are not parsed) and no best bid/ask (no "
        "watchBidsAsks or fetchBidsAsks; watch_ticker's bid/ask are the impact prices impactPxs, "
        'watch_tickers gives mids); use feed.mode = "replay" or "plugin" with '
        'profile = "generic" and your own tiers_file'
    ),
)
