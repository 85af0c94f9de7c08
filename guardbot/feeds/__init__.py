"""Price feeds: ccxt websocket/REST, a seeded simulator and a JSON Lines replay.

Every feed is an async context manager whose ``updates()`` yields :data:`FeedEvent` values:
:class:`TickUpdate` (a merged :class:`~guardbot.core.commands.TickCmd`), :class:`FeedStale` and
:class:`FeedRecovered`.
"""

from __future__ import annotations

from guardbot.runtime.ccxt_lazy import install as _install_ccxt_lazy

# Before any module of this package imports ccxt: only the exchange modules used are loaded
# (guardbot.runtime.ccxt_lazy).
_install_ccxt_lazy()

from guardbot.feeds.base import (  # noqa: E402
    Feed,
    FeedEvent,
    FeedRecovered,
    FeedStale,
    SymbolState,
    TickUpdate,
)

__all__ = ["Feed", "FeedEvent", "FeedRecovered", "FeedStale", "SymbolState", "TickUpdate"]
