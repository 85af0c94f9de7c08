"""KuCoin futures: ``watch_mark_price`` per symbol (``/contract/instrument`` mark-price
messages); funding through ``watch_funding_rate`` and the REST funding poll. Unified fields only.
"""

from __future__ import annotations

from guardbot.feeds.venues import Venue

VENUE = Venue(name="kucoinfutures", exchange_ids=("kucoinfutures",))
