"""Home Assistant discovery messages (pure): topics, config fields, plain states, removals."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from guardbot.core.events import ALERT_TYPES
from guardbot.mqtt.discovery import Discovery, DiscoveryState, object_slug

D = Decimal
HA = Discovery("homeassistant", "guardbot", "main", "1.2.3")


def snapshot(*positions: dict[str, Any], ratio: str | None = "0.8123") -> dict[str, Any]:
    return {
        "wallet": D("1000"),
        "balance": {"USDT": {"free": D("612.5"), "used": D("387.5"), "total": D("1000")}},
        "marginRatio": None if ratio is None else D(ratio),
        "positions": list(positions),
    }


BTC_LONG = {
    "symbol": "BTC/USDT:USDT",
    "side": "long",
    "unrealizedPnl": D("-12.25"),
    "markPrice": D("58950"),
    "liquidationPrice": D("56210.4"),
}
ETH_SHORT = {
    "symbol": "ETH/USDT:USDT",
    "side": "short",
    "unrealizedPnl": D("2"),
    "markPrice": D("3000"),
    "liquidationPrice": None,
}


def by_topic(messages: list[Any]) -> dict[str, Any]:
    return {m.topic: m for m in messages}


def test_slug_is_what_home_assistant_accepts() -> None:
    assert object_slug("main", "BTC/USDT:USDT", "long") == "main_btc_usdt_usdt_long"


def test_every_config_has_the_fields_the_issue_names() -> None:
    state = DiscoveryState(HA)
    messages = state.static_configs() + state.update("main", snapshot(BTC_LONG))
    configs = [m for m in messages if m.topic.endswith("/config")]
    assert len(configs) == 2 + 3 + 2
    for message in configs:
        component, node, object_id, tail = message.topic.split("/")[1:]
        assert message.topic.startswith("homeassistant/") and tail == "config"
        assert node == "guardbot_main" and component in ("sensor", "binary_sensor", "event")
        assert message.retain and message.qos == 1
        body = json.loads(message.payload)
        assert body["unique_id"] == f"guardbot_main_{object_id}"
        assert body["name"] and body["state_topic"].startswith("guardbot/main/ha/")
        assert body["device"]["identifiers"] == ["guardbot_main"]
        assert body["device"]["sw_version"] == "1.2.3" and body["device"]["name"]
        [availability] = body["availability"]
        assert availability["topic"] == "guardbot/main/status"
        assert "value_json.state" in availability["value_template"]
    ratio = json.loads(
        by_topic(configs)["homeassistant/sensor/guardbot_main/main_margin_ratio/config"].payload
    )
    assert (ratio["unit_of_measurement"], ratio["state_class"]) == ("%", "measurement")
    event = json.loads(by_topic(configs)["homeassistant/event/guardbot_main/alerts/config"].payload)
    assert set(event["event_types"]) == set(ALERT_TYPES)
    feed = json.loads(
        by_topic(configs)["homeassistant/binary_sensor/guardbot_main/feed/config"].payload
    )
    assert (feed["device_class"], feed["payload_on"], feed["payload_off"]) == (
        "connectivity",
        "ON",
        "OFF",
    )


def test_states_are_plain_numbers() -> None:
    messages = by_topic(DiscoveryState(HA).update("main", snapshot(BTC_LONG, ETH_SHORT)))
    values = {t: m.payload for t, m in messages.items() if not t.endswith("/config")}
    assert values == {
        "guardbot/main/ha/main/margin_ratio": "81.23",
        "guardbot/main/ha/main/equity": "989.75",  # 1000 - 12.25 + 2
        "guardbot/main/ha/main/available": "612.5",
        "guardbot/main/ha/main/btc_usdt_usdt_long/liquidation_price": "56210.4",
        "guardbot/main/ha/main/btc_usdt_usdt_long/liquidation_distance": "4.65",
        "guardbot/main/ha/main/eth_usdt_usdt_short/liquidation_price": "None",  # unknown
        "guardbot/main/ha/main/eth_usdt_usdt_short/liquidation_distance": "None",
    }
    for payload in values.values():
        if payload != "None":
            float(payload)  # a number Home Assistant parses without a template
    assert all(m.retain for m in messages.values())


def test_a_closed_position_loses_its_entities() -> None:
    state = DiscoveryState(HA)
    state.update("main", snapshot(BTC_LONG, ETH_SHORT))
    messages = state.update("main", snapshot(ETH_SHORT))
    removed = [m.topic for m in messages if m.payload == ""]
    assert removed == [
        "homeassistant/sensor/guardbot_main/main_btc_usdt_usdt_long_liquidation_price/config",
        "homeassistant/sensor/guardbot_main/main_btc_usdt_usdt_long_liquidation_distance/config",
        "guardbot/main/ha/main/btc_usdt_usdt_long/liquidation_price",
        "guardbot/main/ha/main/btc_usdt_usdt_long/liquidation_distance",
    ]
    assert all(m.retain for m in messages)
    assert not any(t.endswith("/config") and "eth" in t for t in by_topic(messages))  # kept
    configs = [m.topic for m in state.all_configs()]
    assert not any("btc" in t for t in configs) and any("eth" in t for t in configs)


def test_unknown_margin_ratio_is_none() -> None:
    messages = by_topic(DiscoveryState(HA).update("main", snapshot(ratio=None)))
    assert messages["guardbot/main/ha/main/margin_ratio"].payload == "None"


def test_alert_event_payload() -> None:
    message = HA.alert_event(
        {"type": "liquidation", "severity": "critical", "text": "BTC liquidated", "alertId": "a"}
    )
    assert message.topic == "guardbot/main/ha/alerts" and not message.retain
    assert json.loads(message.payload) == {
        "event_type": "liquidation",
        "severity": "critical",
        "text": "BTC liquidated",
        "alertId": "a",
    }


@pytest.mark.parametrize("healthy", [True, False])
def test_feed_state(healthy: bool) -> None:
    assert HA.feed_state(healthy).payload == ("ON" if healthy else "OFF")
