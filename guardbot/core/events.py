"""Engine events: plain dicts with ``type``, ``ts`` and ``account`` first, values exact.

Events are dicts so that adapters (JSON Lines, MQTT, SQLite) serialize them without a schema
layer; :func:`to_jsonable` turns their Decimals into exact strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from guardbot.core.num import fmt

__all__ = ["ALERT_TYPES", "Event", "severity_of", "to_jsonable"]

Event = dict[str, Any]

#: Event types that are also alerts (published under ``alerts/<severity>/<type>``).
ALERT_TYPES = frozenset(
    {
        "margin_alert",
        "margin_recovered",
        "liquidation",
        "stop_triggered",
        "order_rejected",
        "trading_state",
        "feed_stale",
        "feed_recovered",
        # Daemon-level: the tier tables in use are a fallback (cache or bundled snapshot).
        "tier_tables",
        # Mirror accounts (guardbot.core.mirroring): the exchange would liquidate now, a
        # position the exchange closed, guardbot's liquidation price off the exchange's, a
        # guard the real account breaks.
        "liquidation_imminent",
        "position_closed",
        "mirror_drift",
        "guard_violation",
        # Daemon-level: the exchange refused a mirror account's keys.
        "mirror_failed",
        # Daemon-level: a checkpoint could not be used at start (damaged, another format or
        # configuration); the state came from an older one or from the journal.
        "checkpoint",
    }
)


def severity_of(event: Mapping[str, Any]) -> str:
    kind = event.get("type")
    if kind in ("margin_alert", "tier_tables"):
        return str(event.get("severity", "warning"))
    if kind in ("liquidation", "liquidation_imminent", "mirror_failed"):
        return "critical"
    if kind == "position_closed":
        return "warning" if event.get("reason") in ("liquidation", "adl") else "info"
    if kind in ("order_rejected", "feed_stale", "trading_state", "mirror_drift", "guard_violation"):
        return "warning"
    return "info"


def to_jsonable(value: Any) -> Any:
    """Decimals to exact strings, recursively; other JSON values unchanged."""
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value
