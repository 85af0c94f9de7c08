"""The daemon with Home Assistant discovery and notifications, against a real Mosquitto and a JSON
webhook on loopback (apprise's ``json://``).

Home Assistant is played by an MQTT client: it reads the retained discovery configs and states
the way Home Assistant's MQTT integration does, and publishes its birth message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from guardbot.config import load_config
from guardbot.daemon.service import Daemon
from tests.broker import Mosquitto
from tests.daemon.test_daemon import SEED, Collector, EventFeed, write_config
from tests.daemon.test_daemon_ops import scrape, value
from tests.notify.test_notifier import Webhook
from tests.readme import blocks

pytestmark = pytest.mark.integration

LIMIT = 30.0
NODE = "homeassistant/{component}/guardbot_t1/{object_id}/config"
POSITION = "demo_btc_usdt_usdt_long"


class RawSubscriber(Collector[tuple[str, str, bool]]):
    """Collects ``(topic, payload text, retain)`` from its subscriptions."""

    async def until(self, predicate: Callable[[], bool]) -> None:
        if predicate():
            return
        async for message in self.client.messages:
            payload = message.payload
            assert isinstance(payload, (bytes, bytearray))
            self.received.append((str(message.topic), bytes(payload).decode(), message.retain))
            if predicate():
                return

    def latest(self) -> dict[str, str]:
        return {topic: payload for topic, payload, _retain in self.received}


def ha_config(tmp_path: Path, broker: Mosquitto, extra: str = "") -> Path:
    [snippet] = blocks("Home Assistant", "toml")  # the README's config, as printed
    return write_config(tmp_path, broker, extra=f"\n{snippet}{extra}")


def notify_config(tmp_path: Path, broker: Mosquitto) -> Path:
    [snippet] = blocks("Notifications", "toml")  # the README's config, as printed
    assert 'urls_env = "GUARDBOT_NOTIFY_URLS"' in snippet
    return write_config(tmp_path, broker, extra=f"\n{snippet}")


async def test_home_assistant_discovers_the_daemon(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = load_config(ha_config(tmp_path, mosquitto), {})
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED)
    stop = asyncio.Event()
    liq_config = NODE.format(component="sensor", object_id=f"{POSITION}_liquidation_price")
    async with asyncio.timeout(LIMIT):
        async with RawSubscriber(
            mosquitto, ["homeassistant/#", "guardbot/t1/ha/#", "guardbot/t1/status"]
        ) as ha:
            task = asyncio.create_task(daemon.run(stop))
            await daemon.ready.wait()
            await feed.pushed("60000")
            wanted = {
                liq_config,
                NODE.format(component="event", object_id="alerts"),
                "guardbot/t1/ha/feed",
                *(f"guardbot/t1/ha/demo/{key}" for key in ("margin_ratio", "equity", "available")),
                "guardbot/t1/ha/demo/btc_usdt_usdt_long/liquidation_price",
                "guardbot/t1/ha/demo/btc_usdt_usdt_long/liquidation_distance",
            }
            await ha.until(lambda: wanted <= set(ha.latest()))
            latest = ha.latest()
            # The configs: every entity of the issue, each with the fields it names.
            expected = (
                {
                    NODE.format(component="sensor", object_id=f"demo_{key}")
                    for key in ("margin_ratio", "equity", "available")
                }
                | {
                    NODE.format(component="sensor", object_id=f"{POSITION}_{key}")
                    for key in ("liquidation_price", "liquidation_distance")
                }
                | {
                    NODE.format(component="binary_sensor", object_id="feed"),
                    NODE.format(component="event", object_id="alerts"),
                }
            )
            configs = {t: json.loads(p) for t, p in latest.items() if t.endswith("/config")}
            assert set(configs) == expected
            for body in configs.values():
                assert {"unique_id", "name", "state_topic", "device", "availability"} <= set(body)
                assert body["device"]["identifiers"] == ["guardbot_t1"]
                assert body["availability"][0]["topic"] == "guardbot/t1/status"
            # States: plain numbers, and ON for a fresh feed.
            for key in ("margin_ratio", "equity", "available"):
                float(latest[f"guardbot/t1/ha/demo/{key}"])
            assert float(latest["guardbot/t1/ha/demo/equity"]) == pytest.approx(1000, abs=20)
            assert float(ha.latest()["guardbot/t1/ha/demo/btc_usdt_usdt_long/liquidation_price"])
            assert ha.latest()["guardbot/t1/ha/feed"] == "ON"

            # Home Assistant restarts: its birth message brings every config again.
            seen = len(ha.received)
            await ha.client.publish("homeassistant/status", "online", qos=1)
            await ha.until(
                lambda: {t for t, _p, _r in ha.received[seen:] if t.endswith("/config")} == expected
            )

            # An alert is an event of the event entity; the liquidation closes the position,
            # and its entities are removed (empty retained configs).
            await feed.pushed("59000", "58500", "58000", "57800", "57700", "57600", "57500")
            await ha.until(
                lambda: any(
                    t == "guardbot/t1/ha/alerts" and json.loads(p)["event_type"] == "liquidation"
                    for t, p, _r in ha.received
                )
            )
            await ha.until(lambda: ha.latest().get(liq_config) == "")
            stop.set()
            assert await task == 0
    events = [json.loads(p) for t, p, _r in ha.received if t == "guardbot/t1/ha/alerts"]
    margin = [e for e in events if e["event_type"] == "margin_alert"]
    assert margin and margin[0]["text"].startswith("BTC/USDT:USDT long 0.4 @ ")
    assert {"severity", "alertId", "account"} <= set(margin[0])
    assert all(not r for t, _p, r in ha.received if t == "guardbot/t1/ha/alerts")  # not retained
    # The retained state of the closed position is cleared too.
    async with RawSubscriber(mosquitto, ["guardbot/t1/ha/#", "homeassistant/#"]) as fresh:
        # The broker sends the retained messages right after the subscription; a message
        # published after it arrives after them: when it is in, every retained one is.
        await fresh.client.publish("guardbot/t1/ha/test_end", "end", qos=1)
        await fresh.until(lambda: "guardbot/t1/ha/test_end" in fresh.latest())
        assert "guardbot/t1/ha/demo/margin_ratio" in fresh.latest()
    assert not any(POSITION in t or "btc_usdt_usdt_long" in t for t in fresh.latest())


async def test_an_alert_reaches_the_webhook_with_its_text(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    hook = Webhook()
    await hook.start()
    config = load_config(notify_config(tmp_path, mosquitto), {"GUARDBOT_NOTIFY_URLS": hook.url})
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED)
    stop = asyncio.Event()
    try:
        async with asyncio.timeout(LIMIT):
            task = asyncio.create_task(daemon.run(stop))
            await daemon.ready.wait()
            await feed.pushed("60000", "59000", "58500", "58000", "57800")
            await hook.wait_for(1)
            stop.set()
            assert await task == 0
    finally:
        await hook.stop()
    first = hook.received[0]
    assert first["title"].startswith("guardbot demo: ")
    assert first["message"].startswith("BTC/USDT:USDT long 0.4 @ ")
    assert "margin ratio" in first["message"]


async def test_the_notification_backlog_while_the_webhook_is_down(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """guardbot_notify_backlog (and the status' notify.backlog) counts the alerts held back by
    a failing service, and falls to 0 once they are delivered."""
    hook = Webhook()  # its port is free: nothing listens until start()
    config = load_config(notify_config(tmp_path, mosquitto), {"GUARDBOT_NOTIFY_URLS": hook.url})
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED)
    stop = asyncio.Event()

    async def backlog_until(done: Callable[[float], bool]) -> float:
        while True:  # bounded by the caller's timeout
            found = value(await scrape(daemon), "guardbot_notify_backlog")
            if done(found):
                return found
            await asyncio.sleep(0.05)

    def failed() -> bool:
        return daemon.notify is not None and daemon.notify.failures >= 1

    try:
        async with asyncio.timeout(LIMIT):
            task = asyncio.create_task(daemon.run(stop))
            await daemon.ready.wait()
            assert await backlog_until(lambda n: True) == 0
            await feed.pushed("60000", "59000", "58500", "58000", "57800")
            # Held back: a delivery failed and the alert is still waiting (the price steps may
            # raise more than one, so at least one).
            await backlog_until(lambda n: n >= 1 and failed())
            assert daemon.status.info()["notify"]["backlog"] >= 1
            await hook.start()
            await hook.wait_for(1)
            await backlog_until(lambda n: n == 0)
            assert daemon.status.info()["notify"] == {"backlog": 0}
            stop.set()
            assert await task == 0
    finally:
        await hook.stop()
    assert hook.received[0]["message"].startswith("BTC/USDT:USDT long 0.4 @ ")


def test_a_missing_notify_extra_is_named(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    from guardbot.errors import ConfigError
    from guardbot.notify.sender import AppriseSender

    real_import = builtins.__import__

    def no_apprise(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "apprise":
            raise ImportError("No module named 'apprise'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_apprise)
    with pytest.raises(ConfigError, match=r"pip install 'guardbot\[notify\]'"):
        AppriseSender(["json://127.0.0.1:9/x"])
