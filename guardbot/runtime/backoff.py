"""Reconnect backoff shared by every retry loop (MQTT clients, feeds, notifications).

Full jitter (delays uniform in ``[0, min(cap, base * 2**attempt))``): many clients losing the
same broker or exchange at once do not come back in lock step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "backoff_delay", "until_set"]

#: Reconnect delays: full jitter over ``min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)`` seconds.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


def backoff_delay(attempt: int, random: Callable[[], float]) -> float:
    """Full jitter: uniform in ``[0, min(cap, base * 2**attempt))`` for ``attempt`` >= 0."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** min(attempt, 32))
    return ceiling * random()


async def until_set(awaitable: Awaitable[None], stop: asyncio.Event) -> None:
    """Await ``awaitable`` unless ``stop`` is set first (then ``awaitable`` is cancelled): a
    reconnect backoff that a shutdown must not wait out."""
    work = asyncio.ensure_future(awaitable)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((work, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, stopped):
            task.cancel()
