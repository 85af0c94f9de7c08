"""The daemon's side of the retained ``.../status``: what it carries besides ts/version
(docs/contracts.md §3, built by :func:`~guardbot.daemon.status.status_payload`, which the health
check reads back) and the loop that republishes it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import Any

from guardbot import __version__
from guardbot.daemon.feed_loop import FeedHealth
from guardbot.daemon.status import FeedStatus, status_payload
from guardbot.store.journal import Journal

__all__ = ["StatusReport"]


class StatusReport:
    """Outbox figures read from the journal, and the status payload built from them."""

    def __init__(
        self,
        symbols: tuple[str, ...],
        health: FeedHealth,
        last_ts: Callable[[str], int | None],
        tier_sources: Callable[[], Mapping[str, str]],
        now_ms: Callable[[], int],
        interval: float,
        checkpoint_ts: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._checkpoint_ts = checkpoint_ts
        #: Database size (file and WAL) and journal length, read by :meth:`refresh`.
        self.db_bytes = 0
        self.journal_inputs = 0
        self._symbols = symbols
        self._health = health
        self._last_ts = last_ts
        self._tier_sources = tier_sources
        self._now_ms = now_ms
        self.interval = interval
        self.journal: Journal | None = None
        self.outbox_depth = 0
        self.outbox_oldest_ms: int | None = None
        #: ``[notify]``'s backlog reader (set when notifications are on) and its last value.
        self.notify_backlog: Callable[[], Awaitable[int]] | None = None
        self.notify_pending = 0

    def info(self) -> dict[str, Any]:
        """What the retained status carries besides ts/version."""
        now = self._now_ms()
        feeds = {
            symbol: FeedStatus(self._health.is_stale(symbol), self._last_ts(symbol))
            for symbol in self._symbols
        }
        oldest = self.outbox_oldest_ms
        info = status_payload(
            ts=now,
            version=__version__,
            feeds=feeds,
            outbox_depth=self.outbox_depth,
            outbox_oldest_age_ms=None if oldest is None else max(0, now - oldest),
        )
        del info["ts"], info["version"]  # the publisher stamps its own
        info["tiers"] = dict(self._tier_sources())
        info["store"] = {
            "dbBytes": self.db_bytes,
            "journalInputs": self.journal_inputs,
            "checkpointAgeS": self.checkpoint_age_s(now),
        }
        if self.notify_backlog is not None:
            info["notify"] = {"backlog": self.notify_pending}
        return info

    def checkpoint_age_s(self, now_ms: int) -> float | None:
        """Seconds since the newest checkpoint (None before the first)."""
        ts = self._checkpoint_ts()
        return None if ts is None else max(0.0, (now_ms - ts) / 1000)

    async def refresh(self) -> None:
        """Read the outbox depth, its oldest row's age and the notification backlog from the
        journal."""
        assert self.journal is not None
        self.outbox_depth = await self.journal.outbox_depth()
        self.outbox_oldest_ms = await self.journal.oldest_pending_ts()
        stats = await self.journal.stats()
        self.db_bytes = stats["db_bytes"]
        self.journal_inputs = stats["inputs"]
        if self.notify_backlog is not None:
            self.notify_pending = await self.notify_backlog()

    async def run(self, emptied: asyncio.Event, republish: Callable[[], None]) -> None:
        """Republish the retained status every ``interval`` s (health checks read its ``ts`` to
        tell a live daemon from a stale retained message), and as soon as the outbox empties."""
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await emptied.wait()
            emptied.clear()
            await self.refresh()
            republish()
