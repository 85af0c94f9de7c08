"""Home Assistant MQTT discovery (``[homeassistant] enabled = true``): the messages, no I/O.

Home Assistant subscribes to ``<discovery_prefix>/+/+/+/config``; a retained JSON config there
creates an entity, an empty retained payload removes it. guardbot announces one device,
``guardbot_<instance>``, with:

- per account: ``sensor`` margin ratio (``%``, ``measurement``), equity and available balance
  (``USDT``);
- per open position: ``sensor`` liquidation price (``USDT``) and distance to it (``%``); the
  configs of a position that closes are removed;
- ``binary_sensor`` price feed (``connectivity``: ``ON`` while every symbol's feed is fresh);
- ``event`` alerts: each alert is one event whose ``event_type`` is the alert type, with its
  ``severity``, ``text``, ``account``, ``symbol`` and ``alertId`` as attributes.

Config topics: ``<discovery_prefix>/<component>/guardbot_<instance>/<object_id>/config``. State
topics, under ``<prefix>/<instance>/ha/...``, carry plain values (``81.23``, ``ON``): no
template needed; ``None`` is Home Assistant's "unknown". Every entity is available while the
daemon's retained ``<prefix>/<instance>/status`` is not ``offline`` (its last will included).
Facts from Home Assistant's MQTT documentation (discovery topic, ``availability`` list with
``value_template``, ``event_types`` and the ``event_type`` key of an event payload, the
``None`` payload) are the contract here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from guardbot.core.events import ALERT_TYPES
from guardbot.mqtt.topics import Message, compact_json, status_topic

__all__ = ["Discovery", "DiscoveryState", "object_slug"]

_SLUG = re.compile(r"[^a-z0-9]+")
_UNKNOWN = "None"


def object_slug(*parts: str) -> str:
    """``BTC/USDT:USDT``, ``long`` -> ``btc_usdt_usdt_long``: HA's ``[a-zA-Z0-9_-]`` ids."""
    return "_".join(_SLUG.sub("_", part.lower()).strip("_") for part in parts if part)


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _plain(value: object, places: int) -> str:
    number = _decimal(value)
    if number is None:
        return _UNKNOWN
    rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return format(rounded.normalize() if rounded != 0 else Decimal(0), "f")


@dataclass(frozen=True, slots=True)
class Discovery:
    """The topics and configs of one daemon (``prefix``/``instance``)."""

    discovery_prefix: str
    prefix: str
    instance: str
    version: str

    @property
    def node(self) -> str:
        return f"guardbot_{self.instance}"

    @property
    def state_base(self) -> str:
        return f"{self.prefix}/{self.instance}/ha"

    @property
    def birth_topic(self) -> str:
        """Home Assistant publishes ``online`` here when it (re)starts."""
        return f"{self.discovery_prefix}/status"

    @property
    def alerts_topic(self) -> str:
        return f"{self.state_base}/alerts"

    @property
    def feed_topic(self) -> str:
        return f"{self.state_base}/feed"

    def config_topic(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node}/{object_id}/config"

    def _base_config(self, object_id: str, name: str, state_topic: str) -> dict[str, Any]:
        return {
            "unique_id": f"{self.node}_{object_id}",
            "object_id": f"{self.node}_{object_id}",
            "name": name,
            "state_topic": state_topic,
            "device": {
                "identifiers": [self.node],
                "name": f"guardbot {self.instance}",
                "manufacturer": "guardbot",
                "model": "margin guard daemon",
                "sw_version": self.version,
            },
            "availability": [
                {
                    "topic": status_topic(self.prefix, self.instance),
                    "value_template": "{{ 'offline' if value_json.state == 'offline' "
                    "else 'online' }}",
                }
            ],
            "qos": 1,
        }

    def _config(self, component: str, object_id: str, body: Mapping[str, Any]) -> Message:
        return Message(self.config_topic(component, object_id), compact_json(body), 1, True)

    # -- entities -------------------------------------------------------------------------------

    def account_configs(self, account: str) -> list[Message]:
        messages = []
        for key, name, unit, extra in (
            ("margin_ratio", "margin ratio", "%", {"suggested_display_precision": 1}),
            ("equity", "equity", "USDT", {"suggested_display_precision": 2}),
            ("available", "available", "USDT", {"suggested_display_precision": 2}),
        ):
            object_id = object_slug(account, key)
            body = self._base_config(
                object_id, f"{account} {name}", f"{self.state_base}/{account}/{key}"
            )
            body.update(unit_of_measurement=unit, state_class="measurement", **extra)
            if key == "margin_ratio":
                body["icon"] = "mdi:gauge"
            messages.append(self._config("sensor", object_id, body))
        return messages

    def _position_entities(self, account: str, symbol: str, side: str) -> list[tuple[str, str]]:
        base = object_slug(account, symbol, side)
        return [
            (f"{base}_liquidation_price", "liquidation_price"),
            (f"{base}_liquidation_distance", "liquidation_distance"),
        ]

    def _position_state_topic(self, account: str, symbol: str, side: str, key: str) -> str:
        return f"{self.state_base}/{account}/{object_slug(symbol, side)}/{key}"

    def position_configs(self, account: str, symbol: str, side: str) -> list[Message]:
        messages = []
        for object_id, key in self._position_entities(account, symbol, side):
            price = key == "liquidation_price"
            name = f"{account} {symbol} {side} liquidation {'price' if price else 'distance'}"
            body = self._base_config(
                object_id, name, self._position_state_topic(account, symbol, side, key)
            )
            body.update(
                unit_of_measurement="USDT" if price else "%",
                state_class="measurement",
                suggested_display_precision=2,
                icon="mdi:skull-crossbones" if price else "mdi:arrow-expand-vertical",
            )
            messages.append(self._config("sensor", object_id, body))
        return messages

    def position_removal(self, account: str, symbol: str, side: str) -> list[Message]:
        """Empty retained payloads: the configs (HA removes the entities) and the states."""
        messages = [
            Message(self.config_topic("sensor", object_id), "", 1, True)
            for object_id, _key in self._position_entities(account, symbol, side)
        ]
        messages += [
            Message(self._position_state_topic(account, symbol, side, key), "", 1, True)
            for _object_id, key in self._position_entities(account, symbol, side)
        ]
        return messages

    def feed_config(self) -> Message:
        body = self._base_config("feed", "price feed", self.feed_topic)
        body.update(device_class="connectivity", payload_on="ON", payload_off="OFF")
        return self._config("binary_sensor", "feed", body)

    def alerts_config(self) -> Message:
        body = self._base_config("alerts", "alerts", self.alerts_topic)
        body.update(event_types=sorted(ALERT_TYPES), icon="mdi:alert")
        return self._config("event", "alerts", body)

    # -- states ---------------------------------------------------------------------------------

    def account_states(self, account: str, snapshot: Mapping[str, Any]) -> list[Message]:
        """Plain values from an account snapshot (``engine.state``: Decimals or strings)."""
        usdt = _mapping(_mapping(snapshot.get("balance")).get("USDT"))
        total = _decimal(usdt.get("total"))
        equity = total
        for position in _positions(snapshot):
            pnl = _decimal(position.get("unrealizedPnl"))
            equity = None if equity is None or pnl is None else equity + pnl
        ratio = _decimal(snapshot.get("marginRatio"))
        values = {
            "margin_ratio": _plain(None if ratio is None else ratio * 100, 2),
            "equity": _plain(equity, 2),
            "available": _plain(usdt.get("free"), 2),
        }
        messages = [
            Message(f"{self.state_base}/{account}/{key}", value, 1, True)
            for key, value in values.items()
        ]
        for position in _positions(snapshot):
            symbol, side = str(position.get("symbol")), str(position.get("side"))
            liq = _decimal(position.get("liquidationPrice"))
            mark = _decimal(position.get("markPrice"))
            distance = abs(mark - liq) / mark * 100 if liq is not None and mark else None
            for key, value in (
                ("liquidation_price", _plain(liq, 8)),
                ("liquidation_distance", _plain(distance, 2)),
            ):
                topic = self._position_state_topic(account, symbol, side, key)
                messages.append(Message(topic, value, 1, True))
        return messages

    def feed_state(self, healthy: bool) -> Message:
        return Message(self.feed_topic, "ON" if healthy else "OFF", 1, True)

    def alert_event(self, alert: Mapping[str, Any]) -> Message:
        """The event entity's payload for one alert payload (not retained: an event happens
        once, and a retained one would fire again at every Home Assistant restart)."""
        body = {
            "event_type": alert.get("type"),
            **{
                key: alert.get(key)
                for key in ("severity", "text", "account", "symbol", "alertId")
                if alert.get(key) is not None
            },
        }
        return Message(self.alerts_topic, json.dumps(body, separators=(",", ":")), 1, False)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _positions(snapshot: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    positions = snapshot.get("positions")
    if not isinstance(positions, list):
        return []
    return [p for p in positions if isinstance(p, Mapping) and p.get("symbol") and p.get("side")]


@dataclass
class DiscoveryState:
    """Which entities are announced, so that closing positions lose theirs and Home
    Assistant's birth message gets every config again."""

    discovery: Discovery
    #: account -> {(symbol, side)}
    positions: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def static_configs(self) -> list[Message]:
        return [self.discovery.feed_config(), self.discovery.alerts_config()]

    def all_configs(self) -> list[Message]:
        """Every config for what is open now (republished on ``<discovery_prefix>/status``)."""
        messages = self.static_configs()
        for account, open_positions in sorted(self.positions.items()):
            messages += self.discovery.account_configs(account)
            for symbol, side in sorted(open_positions):
                messages += self.discovery.position_configs(account, symbol, side)
        return messages

    def update(self, account: str, snapshot: Mapping[str, Any]) -> list[Message]:
        """Configs for a new account or position, removals for closed positions, then the
        state values (a config before its first value, so the value is not missed)."""
        d = self.discovery
        messages: list[Message] = []
        now = {(str(p["symbol"]), str(p["side"])) for p in _positions(snapshot)}
        before = self.positions.get(account)
        if before is None:
            messages += d.account_configs(account)
            before = set()
        for symbol, side in sorted(now - before):
            messages += d.position_configs(account, symbol, side)
        for symbol, side in sorted(before - now):
            messages += d.position_removal(account, symbol, side)
        self.positions[account] = now
        return messages + d.account_states(account, snapshot)

    def accounts(self) -> Iterable[str]:
        return self.positions.keys()
