"""guardbot.mqtt: topic grammar (pure) and the outbox publisher against a real Mosquitto.

The topic and backoff tests need no broker; the ``integration`` ones use the private broker of
``conftest.py``. Every test is bounded by ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiomqtt
import pytest

from guardbot import __version__
from guardbot.formats.alert_text import alert_text
from guardbot.mqtt import (
    MemoryOutbox,
    Message,
    Publisher,
    account_topic,
    alert_topic,
    cmd_topic,
    compact_json,
    event_messages,
    event_topic,
    reply_topic,
    status_topic,
)
from guardbot.mqtt.client import BrokerSettings
from guardbot.runtime.backoff import backoff_delay
from tests.broker import Mosquitto, _free_port

NOW = 1_700_000_000.123
NOW_MS = 1_700_000_000_123
STATUS = "guardbot/t1/status"
OFFLINE_WILL = '{"state":"offline"}'


def fill(seq: int) -> dict[str, Any]:
    return {"type": "fill", "ts": 1000 + seq, "account": "acc1", "price": Decimal("30000.50")}


def margin_alert(seq: int) -> dict[str, Any]:
    return {
        "type": "margin_alert",
        "ts": 1000 + seq,
        "account": "acc1",
        "severity": "critical",
        "marginRatio": Decimal("0.95"),
        "seq": seq,
    }


# --------------------------------------------------------------------------- topics (no broker)


def test_fixed_topics() -> None:
    assert status_topic("guardbot", "main") == "guardbot/main/status"
    assert cmd_topic("guardbot", "main") == "guardbot/main/cmd"
    assert account_topic("guardbot", "main", "acc-1") == "guardbot/main/accounts/acc-1"
    assert reply_topic("guardbot", "main", "r42") == "guardbot/main/reply/r42"
    assert status_topic("site/guardbot", "main") == "site/guardbot/main/status"


def test_event_and_alert_topics() -> None:
    liquidation = {"type": "liquidation", "ts": 1, "account": "a"}
    assert event_topic("g", "i", liquidation) == "g/i/events/liquidation"
    assert alert_topic("g", "i", liquidation) == "g/i/alerts/critical/liquidation"
    assert alert_topic("g", "i", margin_alert(1)) == "g/i/alerts/critical/margin_alert"
    recovered = {"type": "feed_recovered", "ts": 1, "account": None}
    assert alert_topic("g", "i", recovered) == "g/i/alerts/info/feed_recovered"


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x\x00y"])
def test_levels_refuse_injection(bad: str) -> None:
    with pytest.raises(ValueError, match="MQTT instance"):
        status_topic("guardbot", bad)
    with pytest.raises(ValueError, match="MQTT account id"):
        account_topic("guardbot", "main", bad)
    with pytest.raises(ValueError, match="MQTT request id"):
        reply_topic("guardbot", "main", bad)
    with pytest.raises(ValueError, match="MQTT event type"):
        event_topic("guardbot", "main", {"type": bad})


@pytest.mark.parametrize("bad", ["", "/guardbot", "guardbot/", "a//b", "a/+/b", "g#", "$SYS"])
def test_prefix_refuses_injection(bad: str) -> None:
    with pytest.raises(ValueError, match="MQTT prefix"):
        status_topic(bad, "main")


def test_event_messages_plain_event() -> None:
    [message] = event_messages("guardbot", "main", fill(1), None)
    assert message == Message(
        "guardbot/main/events/fill",
        '{"type":"fill","ts":1001,"account":"acc1","price":"30000.5"}',
        qos=1,
        retain=False,
    )


def test_event_messages_alert_adds_alert_id_to_alert_only() -> None:
    event = margin_alert(7)
    alert_msg, events_msg = event_messages("guardbot", "main", event, "al-7")
    assert events_msg.topic == "guardbot/main/events/margin_alert"
    assert alert_msg.topic == "guardbot/main/alerts/critical/margin_alert"
    assert (events_msg.qos, events_msg.retain, alert_msg.qos, alert_msg.retain) == (
        1,
        False,
        1,
        False,
    )
    assert json.loads(events_msg.payload) == {**compact_dict(event)}
    body = json.loads(alert_msg.payload)
    assert body == {**compact_dict(event), "alertId": "al-7", "text": alert_text(event)}
    assert body["text"].startswith("acc1 cross margin: margin ratio 95 %")
    assert json.dumps(body, separators=(",", ":"), ensure_ascii=False) == alert_msg.payload
    given = event_messages("guardbot", "main", event, "al-7", text="caller's sentence")[0]
    assert json.loads(given.payload)["text"] == "caller's sentence"
    assert "alertId" not in event  # the engine's event is not mutated


def compact_dict(event: dict[str, Any]) -> Any:
    return json.loads(compact_json(event))


def test_event_messages_alert_needs_id() -> None:
    with pytest.raises(ValueError, match="alert_id"):
        event_messages("guardbot", "main", margin_alert(1), None)


def test_backoff_full_jitter_capped() -> None:
    assert [backoff_delay(n, lambda: 1.0) for n in range(8)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
    ]
    assert backoff_delay(3, lambda: 0.0) == 0.0
    assert backoff_delay(10_000, lambda: 0.5) == 15.0


async def test_reconnect_backoff_without_broker() -> None:
    """Refused connections back off 0.5 s doubling to 30 s, scaled by the injected random."""
    delays: list[float] = []
    eight = asyncio.Event()

    async def record(delay: float) -> None:
        delays.append(delay)
        if len(delays) >= 8:
            eight.set()
        await asyncio.sleep(0)

    async with asyncio.timeout(10):
        publisher = Publisher(
            BrokerSettings("127.0.0.1", _free_port()),  # nothing listens there
            instance="t1",
            sleep=record,
            random=lambda: 0.5,
            clock=lambda: NOW,
        )
        async with publisher:
            task = asyncio.create_task(publisher.run(MemoryOutbox(), wake=asyncio.Event()))
            await eight.wait()
        await task  # close() made run() return
    assert delays[:8] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    status = publisher.status()
    assert (status.connected, status.reconnects, status.published) == (False, 0, 0)
    assert status.last_error is not None


# --------------------------------------------------------------------------- real broker


@dataclass
class Collector:
    """Subscribes to ``guardbot/#`` and records every message; resubscribes after an outage."""

    broker: Mosquitto
    name: str
    messages: list[aiomqtt.Message] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.broker.host, self.broker.port, identifier=self.name, timeout=5
                ) as client:
                    await client.subscribe("guardbot/#", qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        self.messages.append(message)
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.05)

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        # predicates watch messages, the subscription and the outbox alike, so this polls;
        # ``what`` names the wait in the traceback when the caller's timeout expires
        while not predicate():
            await asyncio.sleep(0.01)


def text(message: aiomqtt.Message) -> str:
    payload = message.payload
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


@contextlib.asynccontextmanager
async def collecting(broker: Mosquitto, name: str) -> AsyncIterator[Collector]:
    collector = Collector(broker, name)
    task = asyncio.create_task(collector.run())
    try:
        await collector.subscribed.wait()
        yield collector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def retained_status(broker: Mosquitto) -> tuple[str, bool]:
    """What a new subscriber gets on the status topic: the retained message."""
    async with aiomqtt.Client(broker.host, broker.port, identifier="late", timeout=5) as client:
        await client.subscribe(STATUS, qos=1)
        async for message in client.messages:
            return text(message), message.retain
    raise AssertionError("no retained status")


def make_publisher(broker: Mosquitto, **kwargs: Any) -> Publisher:
    settings = BrokerSettings(
        broker.host,
        broker.port,
        **{k: kwargs.pop(k) for k in ("timeout", "keepalive") if k in kwargs},
    )
    return Publisher(settings, instance="t1", clock=lambda: NOW, **kwargs)


def received(
    collector: Collector, topic_prefix: str = "guardbot/t1/"
) -> list[tuple[str, str, int]]:
    return [
        (m.topic.value, text(m), m.qos)
        for m in collector.messages
        if m.topic.value.startswith(topic_prefix) and m.topic.value != STATUS
    ]


@pytest.mark.integration
async def test_publishes_online_then_outbox_in_order(mosquitto: Mosquitto) -> None:
    async with asyncio.timeout(10), collecting(mosquitto, "sub1") as sub:
        wake = asyncio.Event()
        outbox = MemoryOutbox(wake=wake)
        expected: list[Message] = []
        for seq in range(3):
            expected += event_messages("guardbot", "t1", fill(seq), None)
            expected += event_messages("guardbot", "t1", margin_alert(seq), f"al-{seq}")
        expected.append(
            Message(account_topic("guardbot", "t1", "acc1"), '{"balance":"1"}', 1, True)
        )
        for message in expected[:4]:
            outbox.add(message)  # some rows before the publisher starts

        async with make_publisher(mosquitto) as publisher:
            task = asyncio.create_task(publisher.run(outbox, wake=wake))
            await sub.wait_for(lambda: len(received(sub)) >= 4, "first rows")
            for message in expected[4:]:
                outbox.add(message)  # and some while it idles: ``wake`` must get them out
            await sub.wait_for(lambda: len(received(sub)) >= len(expected), "all rows")
            assert publisher.status().connected
        await task

        first = sub.messages[0]
        assert first.topic.value == STATUS
        assert json.loads(text(first)) == {"state": "online", "ts": NOW_MS, "version": __version__}
        assert first.qos == 1
        assert received(sub) == [(m.topic, m.payload, m.qos) for m in expected]
        assert sorted(outbox.sent) == [row.id for row in outbox.rows]
        assert set(outbox.sent.values()) == {NOW_MS}
        status = publisher.status()
        assert (status.connected, status.reconnects, status.published) == (False, 0, len(expected))


@pytest.mark.integration
async def test_clean_close_publishes_offline_retained(mosquitto: Mosquitto) -> None:
    async with asyncio.timeout(10), collecting(mosquitto, "sub2") as sub:
        async with make_publisher(mosquitto) as publisher:
            task = asyncio.create_task(publisher.run(MemoryOutbox(), wake=asyncio.Event()))
            await sub.wait_for(lambda: len(sub.messages) >= 1, "online")
            assert await retained_status(mosquitto) == (
                compact_json({"state": "online", "ts": NOW_MS, "version": __version__}),
                True,
            )
        await task
        await sub.wait_for(lambda: len(sub.messages) >= 2, "offline")
        states = [json.loads(text(m))["state"] for m in sub.messages if m.topic.value == STATUS]
        assert states == ["online", "offline"]  # offline once: the will was not also sent
        payload, retained = await retained_status(mosquitto)
        assert retained
        assert json.loads(payload) == {"state": "offline", "ts": NOW_MS, "version": __version__}


_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from guardbot.mqtt import MemoryOutbox, Publisher
    from guardbot.mqtt.client import BrokerSettings

    async def main() -> None:
        publisher = Publisher(BrokerSettings("127.0.0.1", int(sys.argv[1])), instance="t1")
        await publisher.run(MemoryOutbox(), wake=asyncio.Event())

    asyncio.run(main())
    """
)


@pytest.mark.integration
async def test_last_will_on_abrupt_death(mosquitto: Mosquitto) -> None:
    """SIGKILL the publishing process: no DISCONNECT, so the broker publishes the will."""
    async with asyncio.timeout(15), collecting(mosquitto, "sub3") as sub:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(mosquitto.port)])
        try:
            await sub.wait_for(lambda: len(sub.messages) >= 1, "online")
            assert json.loads(text(sub.messages[0]))["state"] == "online"
        finally:
            child.kill()
            child.wait(timeout=5)
        await sub.wait_for(lambda: len(sub.messages) >= 2, "will")
        will = sub.messages[1]
        assert (will.topic.value, text(will), will.qos) == (STATUS, OFFLINE_WILL, 1)
        assert await retained_status(mosquitto) == (OFFLINE_WILL, True)


@pytest.mark.integration
async def test_cancelled_run_still_says_offline(mosquitto: Mosquitto) -> None:
    async with asyncio.timeout(10), collecting(mosquitto, "sub4") as sub:
        publisher = make_publisher(mosquitto)
        task = asyncio.create_task(publisher.run(MemoryOutbox(), wake=asyncio.Event()))
        await sub.wait_for(lambda: len(sub.messages) >= 1, "online")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sub.wait_for(lambda: len(sub.messages) >= 2, "offline")
        assert json.loads(text(sub.messages[1]))["state"] == "offline"


class BrokenOutbox(MemoryOutbox):
    async def pending(self, limit: int) -> list[Any]:
        raise RuntimeError("disk full")


@pytest.mark.integration
async def test_outbox_failure_is_fatal_and_says_offline(mosquitto: Mosquitto) -> None:
    async with asyncio.timeout(10), collecting(mosquitto, "sub6") as sub:
        publisher = make_publisher(mosquitto)
        with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="disk full")):
            await publisher.run(BrokenOutbox(), wake=asyncio.Event())
        await sub.wait_for(lambda: len(sub.messages) >= 2, "offline")
        states = [json.loads(text(m))["state"] for m in sub.messages]
        assert states == ["online", "offline"]


@pytest.mark.integration
async def test_broker_outage_loses_and_reorders_nothing(mosquitto: Mosquitto) -> None:
    total, down_at, up_at = 200, 60, 140
    gate = asyncio.Event()  # the publisher's backoff sleep waits for the subscriber to be back
    delays: list[float] = []

    async def gated_sleep(delay: float) -> None:
        delays.append(delay)
        await gate.wait()

    async with asyncio.timeout(20), collecting(mosquitto, "sub5") as sub:
        wake = asyncio.Event()
        outbox = MemoryOutbox(wake=wake)
        added = asyncio.Event()
        count = 0

        async def produce() -> None:
            nonlocal count
            for seq in range(total):
                for message in event_messages("guardbot", "t1", margin_alert(seq), f"{seq:06d}"):
                    outbox.add(message)
                count = seq + 1
                added.set()
                await asyncio.sleep(0.003)

        async def until_added(n: int) -> None:
            while count < n:
                added.clear()
                await added.wait()

        async with make_publisher(mosquitto, sleep=gated_sleep, random=lambda: 0.5) as publisher:
            task = asyncio.create_task(publisher.run(outbox, wake=wake))
            producer = asyncio.create_task(produce())
            await until_added(down_at)
            mosquitto.stop()
            await until_added(up_at)
            assert not publisher.status().connected
            mosquitto.start()
            await sub.wait_for(lambda: sub.subscribed.is_set(), "resubscribed")
            gate.set()
            await producer
            await sub.wait_for(lambda: outbox.depth == 0, "outbox drained")
            ids = [f"{seq:06d}" for seq in range(total)]
            await sub.wait_for(lambda: set(ids) <= set(alert_ids(sub)), "every alert")
            status = publisher.status()
        await task

        got = alert_ids(sub)
        first_seen = list(dict.fromkeys(got))
        assert first_seen == ids  # every alertId, first arrivals in increasing order
        duplicates = len(got) - len(set(got))
        assert duplicates <= 1  # at most the one in flight when the broker went away
        assert status.connected and status.reconnects == 1 and status.last_error
        assert delays == [0.25]  # first backoff: 0.5 s x random()


def alert_ids(collector: Collector) -> list[str]:
    return [
        json.loads(text(m))["alertId"]
        for m in collector.messages
        if m.topic.value.startswith("guardbot/t1/alerts/")
    ]


@pytest.mark.integration
@pytest.mark.parametrize("qos", [0, 2])
async def test_configured_qos_is_what_goes_out(mosquitto: Mosquitto, qos: int) -> None:
    """``[mqtt] qos`` applies to every publication (rows say 1): a QoS 2 subscriber receives
    each message at the publisher's QoS, the minimum of the two."""
    async with (
        asyncio.timeout(10),
        aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="sub-qos", timeout=5) as sub,
    ):
        await sub.subscribe("guardbot/#", qos=2)
        wake = asyncio.Event()
        outbox = MemoryOutbox(wake=wake)
        outbox.add(event_messages("guardbot", "t1", fill(1), None)[0])
        got: list[aiomqtt.Message] = []
        async with make_publisher(mosquitto, qos=qos) as publisher:
            task = asyncio.create_task(publisher.run(outbox, wake=wake))
            async for message in sub.messages:
                got.append(message)
                if len(got) == 2:  # online, then the row
                    break
        await task
    assert [m.qos for m in got] == [qos, qos]
    assert got[1].topic.value == "guardbot/t1/events/fill"
    assert sorted(outbox.sent) == [1]


def test_publisher_refuses_a_qos_mqtt_has_not() -> None:
    with pytest.raises(ValueError, match="qos must be 0, 1 or 2"):
        Publisher(BrokerSettings("127.0.0.1", 1883), instance="t1", qos=3)
