"""MQTT topic grammar (docs/contracts.md §3) and the messages one engine event publishes.

Topics are ``<prefix>/<instance>/...``. Every function here is pure: no I/O, no clock. Names
that become topic levels are validated so that a crafted account, instance or request id cannot
inject wildcards (``+``, ``#``) or extra levels (``/``) into a topic::

    status_topic("guardbot", "main")        -> "guardbot/main/status"
    alert_topic("guardbot", "main", event)  -> "guardbot/main/alerts/critical/liquidation"
    event_topic("guardbot", "main", event)  -> "guardbot/main/events/fill"
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from guardbot.core.events import ALERT_TYPES, severity_of, to_jsonable
from guardbot.formats.alert_text import alert_text

__all__ = [
    "Message",
    "account_topic",
    "alert_topic",
    "cmd_topic",
    "compact_json",
    "event_messages",
    "event_topic",
    "reply_topic",
    "status_topic",
]

#: Largest topic the MQTT wire format can carry (a two-byte length prefix on UTF-8 bytes).
_MAX_TOPIC_BYTES = 65535
_FORBIDDEN = ("+", "#", "\x00")


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publication: what an outbox row holds."""

    topic: str
    payload: str
    qos: int = 1
    retain: bool = False


def compact_json(value: Any) -> str:
    """Compact UTF-8 JSON (no spaces) of ``value`` with Decimals as exact strings."""
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False)


def _level(what: str, value: object) -> str:
    """``value`` as one topic level: a non-empty str without ``/``, ``+``, ``#`` or NUL."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"MQTT {what} must be a non-empty string, got {value!r}")
    if "/" in value:
        raise ValueError(f"MQTT {what} must not contain '/': {value!r}")
    for char in _FORBIDDEN:
        if char in value:
            raise ValueError(f"MQTT {what} must not contain {char!r}: {value!r}")
    return value


def _prefix(prefix: object) -> str:
    """The prefix may span levels (``site/guardbot``) but no level may be empty or a wildcard."""
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"MQTT prefix must be a non-empty string, got {prefix!r}")
    if prefix.startswith("$"):
        raise ValueError(f"MQTT prefix must not start with '$' (reserved topics): {prefix!r}")
    for part in prefix.split("/"):
        if not part:
            raise ValueError(f"MQTT prefix has an empty level: {prefix!r}")
        _level("prefix", part)
    return prefix


def _join(prefix: str, instance: str, *levels: str) -> str:
    topic = "/".join((_prefix(prefix), _level("instance", instance), *levels))
    if len(topic.encode("utf-8")) > _MAX_TOPIC_BYTES:
        raise ValueError(f"MQTT topic longer than {_MAX_TOPIC_BYTES} bytes")
    return topic


def _event_type(event: Mapping[str, Any]) -> str:
    return _level("event type", event.get("type"))


def status_topic(prefix: str, instance: str) -> str:
    """``<prefix>/<instance>/status`` (retained; ``offline`` is the last will)."""
    return _join(prefix, instance, "status")


def alert_topic(prefix: str, instance: str, event: Mapping[str, Any]) -> str:
    """``<prefix>/<instance>/alerts/<severity>/<type>`` for an alert event."""
    severity = _level("severity", severity_of(event))
    return _join(prefix, instance, "alerts", severity, _event_type(event))


def event_topic(prefix: str, instance: str, event: Mapping[str, Any]) -> str:
    """``<prefix>/<instance>/events/<type>`` for any engine event."""
    return _join(prefix, instance, "events", _event_type(event))


def account_topic(prefix: str, instance: str, account: str) -> str:
    """``<prefix>/<instance>/accounts/<account>`` (retained account snapshot)."""
    return _join(prefix, instance, "accounts", _level("account id", account))


def cmd_topic(prefix: str, instance: str) -> str:
    """``<prefix>/<instance>/cmd`` (control commands, when enabled)."""
    return _join(prefix, instance, "cmd")


def reply_topic(prefix: str, instance: str, request_id: str) -> str:
    """``<prefix>/<instance>/reply/<requestId>``."""
    return _join(prefix, instance, "reply", _level("request id", request_id))


def event_messages(
    prefix: str,
    instance: str,
    event: Mapping[str, Any],
    alert_id: str | None,
    *,
    text: str | None = None,
) -> list[Message]:
    """What one engine event publishes, in order.

    For the types in :data:`~guardbot.core.events.ALERT_TYPES` first ``.../alerts/<severity>/
    <type>`` (QoS 1) whose payload is the event plus ``alertId`` and ``text`` (one sentence for
    people, :func:`~guardbot.formats.alert_text.alert_text` unless the caller, who may know the
    position, gives one): the alert is what someone waits for, so it does not queue behind the
    event row. Then always ``.../events/<type>`` (QoS 1, the event as compact JSON). An alert
    event without ``alert_id`` is refused.
    """
    messages: list[Message] = []
    if event.get("type") in ALERT_TYPES:
        if not isinstance(alert_id, str) or not alert_id:
            raise ValueError(f"alert event {event.get('type')!r} needs a non-empty alert_id")
        payload = {
            **event,
            "alertId": alert_id,
            "text": alert_text(event) if text is None else text,
        }
        messages.append(Message(alert_topic(prefix, instance, event), compact_json(payload)))
    messages.append(Message(event_topic(prefix, instance, event), compact_json(dict(event))))
    return messages
