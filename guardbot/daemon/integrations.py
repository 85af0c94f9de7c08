"""Where users already are: Home Assistant discovery and notifications, wired to the daemon.

:class:`HomeAssistantBridge` (``[homeassistant] enabled = true``) turns account snapshots and
feed health into the retained discovery configs and plain states of
:mod:`guardbot.mqtt.discovery`, puts them into the publisher's outbox (only the newest per topic
matters, like account snapshots: they are not journaled), adds an event row to each journaled
alert, and publishes every config again when Home Assistant announces itself.

:func:`build_notifier` (``[notify] urls_env``) builds the :class:`~guardbot.notify.notifier.
Notifier` that reads alerts from the journal's outbox on its own task.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from guardbot import __version__
from guardbot.config import Config
from guardbot.mqtt.client import BrokerSettings
from guardbot.mqtt.discovery import Discovery, DiscoveryState
from guardbot.mqtt.topics import Message
from guardbot.mqtt.watch import TopicWatcher
from guardbot.notify.notifier import AlertFilter, Notifier
from guardbot.notify.sender import AppriseSender, split_urls
from guardbot.store.journal import Journal

__all__ = ["HomeAssistantBridge", "build_notifier"]

_log = structlog.get_logger("guardbot.daemon")


class HomeAssistantBridge:
    """See the module docstring. ``put`` is the outbox's ``put_retained``."""

    def __init__(self, config: Config, put: Callable[[Message], None]) -> None:
        section = config.homeassistant
        self.discovery = Discovery(
            section.discovery_prefix,
            config.mqtt.topic_prefix,
            config.guardbot.instance,
            __version__,
        )
        self.state = DiscoveryState(self.discovery)
        self._put = put
        #: The newest state message per topic, to publish again after Home Assistant's birth.
        self._states: dict[str, Message] = {}
        self._feed_healthy = True
        self.births = 0
        self.watcher = TopicWatcher(
            BrokerSettings.from_section(config.mqtt),
            self.discovery.birth_topic,
            self._on_birth,
            role="homeassistant",
            instance=config.guardbot.instance,
        )

    def start(self) -> None:
        """The device's fixed entities (feed, alerts) and the feed's state."""
        for message in self.state.static_configs():
            self._put(message)
        self.feed_changed(healthy=self._feed_healthy)

    def _emit(self, message: Message) -> None:
        if not message.topic.endswith("/config"):
            if message.payload:
                self._states[message.topic] = message
            else:
                self._states.pop(message.topic, None)
        self._put(message)

    def on_snapshot(self, account: str, snapshot: Mapping[str, Any]) -> None:
        for message in self.state.update(account, snapshot):
            self._emit(message)

    def feed_changed(self, *, healthy: bool) -> None:
        self._feed_healthy = healthy
        self._emit(self.discovery.feed_state(healthy))

    def alert_messages(self, alert: Mapping[str, Any]) -> list[Message]:
        """The event entity's row, journaled right after the alert's own row."""
        return [self.discovery.alert_event(alert)]

    def _on_birth(self, payload: bytes) -> None:
        if payload.strip() != b"online":
            return
        self.births += 1
        _log.info("home assistant online: publishing discovery again", births=self.births)
        for message in self.state.all_configs():
            self._put(message)
        for message in list(self._states.values()):
            self._put(message)


def build_notifier(config: Config, journal: Journal) -> Notifier | None:
    """The notification loop of ``[notify]``, or None when ``urls_env`` is unset.

    Raises :class:`~guardbot.errors.ConfigError` when apprise (the ``notify`` extra) is missing
    or a URL is not one apprise knows: at start-up, not at the first alert.
    """
    section = config.notify
    if section.urls is None:
        return None
    sender = AppriseSender(split_urls(section.urls.reveal()))
    _log.info("notifications enabled", targets=list(sender.targets))
    return Notifier(
        journal,
        sender,
        alerts_prefix=f"{config.topic_base}/alerts",
        instance=config.guardbot.instance,
        filter=AlertFilter(section.min_severity, section.types),
        coalesce_s=section.coalesce_s,
    )


def alert_payload(message: Message) -> Mapping[str, Any] | None:
    """The alert object of an alert row (for the rows that follow it)."""
    try:
        body = json.loads(message.payload)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
