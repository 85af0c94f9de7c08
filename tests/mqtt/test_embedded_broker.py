"""The embedded amqtt broker with real aiomqtt clients and guardbot's own publisher.

Every broker listens on an OS-picked loopback port (``port=0``), every test is bounded by
``asyncio.timeout`` and waits on protocol acknowledgements (SUBACK, PUBACK, CONNACK) or on the
message itself, never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import aiomqtt
import pytest

from guardbot import __version__
from guardbot.errors import ConfigError
from guardbot.mqtt import MemoryOutbox, Message, Publisher, compact_json, status_topic
from guardbot.mqtt.broker import BrokerStartError, EmbeddedBroker, should_embed
from guardbot.mqtt.client import BrokerSettings
from guardbot.runtime.net import is_loopback_host
from tests.broker import _free_port as free_port

pytestmark = pytest.mark.integration

TIMEOUT = 10.0
NOW = 1_700_000_000.123
NOW_MS = 1_700_000_000_123
STATUS = status_topic("guardbot", "t1")


def text(message: aiomqtt.Message) -> str:
    payload = message.payload
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


def client(broker: EmbeddedBroker, name: str) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, identifier=name, timeout=5)


async def take(sub: aiomqtt.Client, count: int) -> list[aiomqtt.Message]:
    """The next ``count`` messages of ``sub`` (the caller's timeout bounds the wait)."""
    got: list[aiomqtt.Message] = []
    if count == 0:
        return got
    async for message in sub.messages:
        got.append(message)
        if len(got) == count:
            break
    return got


@asynccontextmanager
async def running_broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker("127.0.0.1", 0) as broker:
        yield broker


@contextmanager
def listening_socket(host: str = "127.0.0.1") -> Iterator[int]:
    """A plain TCP listener (not MQTT) on a free port; yields the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


# ----------------------------------------------------------------------------- messaging


async def test_retained_qos1_reaches_a_later_subscriber() -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        running_broker() as broker,
        client(broker, "pub") as pub,
    ):
        await pub.publish("guardbot/t1/accounts/a1", b'{"balance":"1.50"}', qos=1, retain=True)
        # the publisher is gone: only the broker still has the message
        async with client(broker, "late") as sub:
            await sub.subscribe("guardbot/#", qos=1)
            [message] = await take(sub, 1)
    assert message.topic.value == "guardbot/t1/accounts/a1"
    assert text(message) == '{"balance":"1.50"}'
    assert (message.retain, message.qos) == (True, 1)


async def test_qos1_between_two_clients_in_order() -> None:
    payloads = [f'{{"seq":{n}}}'.encode() for n in range(50)]
    async with (
        asyncio.timeout(TIMEOUT),
        running_broker() as broker,
        client(broker, "sub") as sub,
        client(broker, "pub") as pub,
    ):
        await sub.subscribe("guardbot/t1/events/#", qos=1)  # returns after SUBACK
        for payload in payloads:
            await pub.publish("guardbot/t1/events/fill", payload, qos=1)  # after PUBACK
        got = await take(sub, len(payloads))
    assert [m.payload for m in got] == payloads
    assert {(m.qos, m.retain) for m in got} == {(1, False)}


async def test_qos0_is_relayed() -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        running_broker() as broker,
        client(broker, "sub") as sub,
        client(broker, "pub") as pub,
    ):
        await sub.subscribe("x/+", qos=0)
        await pub.publish("x/y", b"zero", qos=0)
        [message] = await take(sub, 1)
    assert (message.topic.value, message.payload, message.qos) == ("x/y", b"zero", 0)


def _mqtt_string(value: bytes) -> bytes:
    return len(value).to_bytes(2, "big") + value


def _connect_with_will(client_id: str, topic: str, payload: bytes) -> bytes:
    """A raw MQTT 3.1.1 CONNECT with a QoS 1 retained will, as aiomqtt's Publisher sends."""
    clean_session, will, will_qos1, will_retain = 0x02, 0x04, 0x08, 0x20
    variable = (
        _mqtt_string(b"MQTT")
        + bytes([4, clean_session | will | will_qos1 | will_retain])
        + (30).to_bytes(2, "big")  # keepalive
    )
    body = (
        variable
        + _mqtt_string(client_id.encode())
        + _mqtt_string(topic.encode())
        + _mqtt_string(payload)
    )
    assert len(body) < 128  # one-byte remaining length
    return bytes([0x10, len(body)]) + body


async def test_last_will_is_published_and_retained_when_the_transport_is_aborted() -> None:
    will = compact_json({"state": "offline"}).encode()
    async with (
        asyncio.timeout(TIMEOUT),
        running_broker() as broker,
        client(broker, "watcher") as watcher,
    ):
        await watcher.subscribe(STATUS, qos=1)
        reader, writer = await asyncio.open_connection(broker.host, broker.port)
        writer.write(_connect_with_will("guardbot-t1", STATUS, will))
        await writer.drain()
        assert await reader.readexactly(4) == b"\x20\x02\x00\x00"  # CONNACK, accepted
        writer.transport.abort()  # no DISCONNECT: the broker must send the will
        [message] = await take(watcher, 1)
        assert (message.topic.value, message.payload, message.qos) == (STATUS, will, 1)
        async with client(broker, "late") as late:
            await late.subscribe(STATUS, qos=1)
            [retained] = await take(late, 1)
    assert (retained.payload, retained.retain) == (will, True)


async def test_clean_disconnect_discards_the_will() -> None:
    async with (
        asyncio.timeout(TIMEOUT),
        running_broker() as broker,
        client(broker, "watcher") as watcher,
    ):
        await watcher.subscribe("guardbot/#", qos=1)
        will = aiomqtt.Will(STATUS, b"gone", qos=1, retain=True)
        async with aiomqtt.Client(broker.host, broker.port, identifier="w", will=will):
            pass  # DISCONNECT
        # a marker published after the disconnect arrives first iff no will was sent
        async with client(broker, "marker") as marker:
            await marker.publish("guardbot/marker", b"m", qos=1)
        [message] = await take(watcher, 1)
    assert message.topic.value == "guardbot/marker"


async def test_guardbot_publisher_rows_arrive_in_order() -> None:
    wake = asyncio.Event()
    outbox = MemoryOutbox(wake=wake)
    expected = [
        Message("guardbot/t1/events/fill", compact_json({"seq": n}), 1, False) for n in range(20)
    ]
    expected.append(Message("guardbot/t1/accounts/acc1", '{"balance":"10.25"}', 1, True))
    async with (
        asyncio.timeout(TIMEOUT),
        running_broker() as broker,
        client(broker, "sub") as sub,
    ):
        await sub.subscribe("guardbot/#", qos=1)
        for message in expected[:5]:
            outbox.add(message)  # queued before the publisher connects
        publisher = Publisher(
            BrokerSettings(broker.host, broker.port),
            instance="t1",
            clock=lambda: NOW,
        )
        async with publisher:
            task = asyncio.create_task(publisher.run(outbox, wake=wake))
            got = await take(sub, 1 + 5)  # online, then the first rows
            for message in expected[5:]:
                outbox.add(message)  # added while it idles: ``wake`` gets them out
            got += await take(sub, len(expected) - 5)
        await task
        [offline] = await take(sub, 1)  # close() publishes offline before DISCONNECT
    status, rows = got[0], got[1:]
    assert status.topic.value == STATUS
    assert json.loads(text(status)) == {"state": "online", "ts": NOW_MS, "version": __version__}
    assert [(m.topic.value, text(m), m.qos) for m in rows] == [
        (m.topic, m.payload, m.qos) for m in expected
    ]
    assert sorted(outbox.sent) == [row.id for row in outbox.rows]
    assert json.loads(text(offline))["state"] == "offline"
    assert publisher.status().published == len(expected)


# ----------------------------------------------------------------------------- lifecycle


async def test_stop_frees_the_port_disconnects_clients_and_leaves_no_tasks() -> None:
    before = asyncio.all_tasks()
    async with asyncio.timeout(TIMEOUT):
        broker = EmbeddedBroker("127.0.0.1", 0)
        await broker.start()
        port = broker.port
        assert port > 0 and broker.running and broker.url == f"mqtt://127.0.0.1:{port}"
        assert broker.startup_s is not None
        sub = client(broker, "sub")
        await sub.__aenter__()
        await sub.subscribe("#", qos=1)
        # a TCP connection that never sends CONNECT: amqtt's shutdown does not know it
        _reader, idle_writer = await asyncio.open_connection(broker.host, port)
        await broker.wait_connections(2)
        await broker.stop()
        assert broker.connections == 0
        idle_writer.close()
        await idle_writer.wait_closed()
        assert not broker.running
        with pytest.raises(aiomqtt.MqttError):
            await take(sub, 1)  # the broker closed the connection
        await sub.__aexit__(None, None, None)

        # nothing listens any more: a listener can bind the port (SO_REUSEADDR only skips
        # TIME_WAIT of the closed connections; it never allows a second listener)...
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        # ...and a new broker can start on it
        async with EmbeddedBroker("127.0.0.1", port) as again, client(again, "c") as c:
            await c.publish("a", b"1", qos=1)
        await broker.stop()  # idempotent
    leftover = asyncio.all_tasks() - before
    assert leftover == set(), leftover


async def test_port_taken_is_a_clear_error(caplog: pytest.LogCaptureFixture) -> None:
    with listening_socket() as port:
        broker = EmbeddedBroker("127.0.0.1", port)
        with caplog.at_level(logging.WARNING), pytest.raises(BrokerStartError) as info:
            async with asyncio.timeout(TIMEOUT):
                await broker.start()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "in use" in message
    assert 'embedded_broker = "never"' in message
    assert not broker.running
    # amqtt's own traceback for the failed start is not logged on top of our error
    assert [r for r in caplog.records if r.name.startswith("amqtt")] == []


async def test_second_broker_on_the_same_port_fails() -> None:
    async with asyncio.timeout(TIMEOUT), running_broker() as broker:
        with pytest.raises(BrokerStartError, match=f"127.0.0.1:{broker.port}"):
            await EmbeddedBroker("127.0.0.1", broker.port).start()


async def test_localhost_binds_loopback_only() -> None:
    async with asyncio.timeout(TIMEOUT), EmbeddedBroker("localhost", 0) as broker:
        async with client(broker, "c") as c:
            await c.publish("a", b"1", qos=1)
        assert broker.url.startswith("mqtt://localhost:")


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python build")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured on this host")
    async with asyncio.timeout(TIMEOUT), EmbeddedBroker("::1", 0) as broker:
        assert broker.url == f"mqtt://[::1]:{broker.port}"
        async with aiomqtt.Client("::1", broker.port, identifier="v6", timeout=5) as c:
            await c.subscribe("a", qos=1)
            await c.publish("a", b"6", qos=1)
            [message] = await take(c, 1)
    assert message.payload == b"6"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "broker.example", ""])
def test_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        EmbeddedBroker(host, 1883)


@pytest.mark.parametrize("port", [-1, 65536])
def test_refuses_bad_ports(port: int) -> None:
    with pytest.raises(ConfigError, match="port"):
        EmbeddedBroker("127.0.0.1", port)


# ----------------------------------------------------------------------------- should_embed


def test_loopback_hosts() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback_host(host), host
    for host in ("0.0.0.0", "::", "10.0.0.1", "example.com", "localhost.example", ""):
        assert not is_loopback_host(host), host


def test_should_embed_auto_free_loopback_port() -> None:
    assert should_embed("auto", "127.0.0.1", free_port())
    assert should_embed("auto", "localhost", free_port())


def test_should_embed_auto_something_listens() -> None:
    with listening_socket() as port:
        assert not should_embed("auto", "127.0.0.1", port)
        assert should_embed("always", "127.0.0.1", port)  # and start would then fail clearly


def test_should_embed_auto_non_loopback_is_false() -> None:
    # no connection attempt is made: a remote broker is never replaced by a local one
    assert not should_embed("auto", "192.0.2.10", 1883)
    assert not should_embed("auto", "mqtt.example", 1883)


def test_should_embed_modes() -> None:
    port = free_port()
    assert should_embed("always", "192.0.2.10", 1883)
    assert not should_embed("never", "127.0.0.1", port)
    with pytest.raises(ConfigError, match="auto, always, never"):
        should_embed("sometimes", "127.0.0.1", port)


async def test_should_embed_sees_a_running_embedded_broker(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with asyncio.timeout(TIMEOUT), running_broker() as broker:
        with caplog.at_level(logging.DEBUG, logger="amqtt"):
            assert not await asyncio.to_thread(should_embed, "auto", broker.host, broker.port)
            # the probe's server side is closed (amqtt alone would leak it) ...
            await broker.wait_connections(0)
            assert broker.connections == 0
    # ... and a probe is not an error in the daemon's log
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
