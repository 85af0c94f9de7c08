"""MQTT adapter: the topic grammar and the outbox publisher."""

from guardbot.mqtt.publisher import (
    MemoryOutbox,
    OutboxEntry,
    OutboxRow,
    OutboxSource,
    Publisher,
    PublisherStatus,
)
from guardbot.mqtt.topics import (
    Message,
    account_topic,
    alert_topic,
    cmd_topic,
    compact_json,
    event_messages,
    event_topic,
    reply_topic,
    status_topic,
)

__all__ = [
    "MemoryOutbox",
    "Message",
    "OutboxEntry",
    "OutboxRow",
    "OutboxSource",
    "Publisher",
    "PublisherStatus",
    "account_topic",
    "alert_topic",
    "cmd_topic",
    "compact_json",
    "event_messages",
    "event_topic",
    "reply_topic",
    "status_topic",
]
