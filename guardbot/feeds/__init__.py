"""Price feeds: ccxt websocket/REST, a seeded simulator and a JSON Lines replay.

Every feed is an async context manager whose ``updates()`` yields :data:`FeedEvent` values:
:class:`TickUpdate` (a merged :class:`~guardbot.core.commands.TickCmd`), :class:`FeedStale` and
:class:`FeedRecovered`.
"""

from __future__ import annotations

from guardbot.feeds.base import (
    Feed,
    FeedEvent,
    FeedRecovered,
    FeedStale,
    SymbolState,
    TickUpdate,
)

__all__ = ["Feed", "FeedEvent", "FeedRecovered", "FeedStale", "SymbolState", "TickUpdate"]
