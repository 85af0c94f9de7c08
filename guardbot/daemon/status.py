"""The daemon's retained status: the payload it republishes and how a reader judges it.

Writer (the daemon) and reader (``guardbot health``) share this module so that the two cannot
drift apart. Pure; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NamedTuple, TypeGuard

__all__ = ["FeedStatus", "evaluate_status", "status_payload"]


class FeedStatus(NamedTuple):
    """One symbol's entry in the status payload."""

    stale: bool
    #: Epoch ms of the symbol's last price, None before the first one.
    last_ts: int | None


def status_payload(
    *,
    ts: int,
    version: str,
    feeds: Mapping[str, FeedStatus],
    outbox_depth: int,
    outbox_oldest_age_ms: int | None,
) -> dict[str, object]:
    """The retained status the daemon republishes, in the shape :func:`evaluate_status` reads.

    ``state`` follows from the feeds: ``degraded`` while any is stale, else ``online``
    (``offline`` is published on a clean stop and is the broker's last will). Kept here, beside
    the reader, so that writer and reader cannot drift apart.
    """
    stale = any(feed.stale for feed in feeds.values())
    return {
        "state": "degraded" if stale else "online",
        "ts": ts,
        "version": version,
        "feeds": {
            symbol: {"stale": feed.stale, "lastTs": feed.last_ts} for symbol, feed in feeds.items()
        },
        "outbox": {"depth": outbox_depth, "oldestAgeMs": outbox_oldest_age_ms},
    }


def evaluate_status(
    payload: str | bytes, *, now_ms: int, max_outbox: int, max_status_age: float
) -> list[str]:
    """The problems with one status payload (an empty list: healthy). Pure; no I/O."""
    try:
        status = json.loads(payload)
    except (ValueError, RecursionError):
        return [f"malformed status payload (not JSON): {_excerpt(payload)}"]
    if not isinstance(status, dict):
        return [f"malformed status payload (not a JSON object): {_excerpt(payload)}"]
    state = status.get("state")
    if state == "offline":
        # The daemon's clean stop or the broker's last will for it: nothing else to judge.
        return ["daemon is offline (it stopped, or the broker lost its connection)"]
    problems: list[str] = []
    if state == "degraded":
        stale = _stale_feeds(status.get("feeds"))
        named = f": stale feeds: {', '.join(stale)}" if stale else " (no stale feed named)"
        problems.append(f"daemon is degraded{named}")
    elif state != "online":
        problems.append(f"unknown daemon state {state!r} (expected online)")
    else:
        stale = _stale_feeds(status.get("feeds"))
        if stale:  # "online" with stale feeds contradicts itself; believe the feeds
            problems.append(f"stale feeds: {', '.join(stale)}")

    ts = status.get("ts")
    if not _is_int(ts):
        problems.append("status has no valid ts (epoch milliseconds)")
    else:
        age = (now_ms - ts) / 1000
        if age > max_status_age:
            problems.append(
                f"status is {age:.0f} s old (limit {max_status_age:g} s): the daemon stopped "
                "republishing it (hung, or cut off from the broker)"
            )

    outbox = status.get("outbox")
    depth = outbox.get("depth") if isinstance(outbox, dict) else None
    if not _is_int(depth) or depth < 0:
        problems.append("status has no valid outbox.depth (is the daemon older than this check?)")
    elif depth >= max_outbox:
        oldest = outbox.get("oldestAgeMs") if isinstance(outbox, dict) else None
        since = f", oldest {oldest / 1000:.0f} s" if _is_int(oldest) else ""
        problems.append(
            f"outbox holds {depth} unsent messages (limit {max_outbox}{since}): "
            "alerts are not reaching the broker"
        )
    return problems


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _stale_feeds(feeds: object) -> list[str]:
    if not isinstance(feeds, dict):
        return []
    return sorted(
        str(symbol)
        for symbol, feed in feeds.items()
        if isinstance(feed, dict) and feed.get("stale") is True
    )


def _excerpt(payload: str | bytes, limit: int = 80) -> str:
    text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())
