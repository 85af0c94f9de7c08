"""Fault: the broker stops while alerts are produced and starts again; every alertId arrives.

The daemon keeps evaluating while the broker is down (alerts go to the SQLite outbox); after the
broker is back, the publisher drains the outbox in order. A persistent-session subscriber (the
way a production alert consumer should subscribe) is queued everything by the broker, so the
test sees each alert that was journaled, by alertId.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
import pytest

from guardbot.config import Config
from guardbot.daemon.service import Daemon
from tests.broker import Mosquitto
from tests.daemon.test_daemon import SEED, EventFeed, config_for, journal_rows

pytestmark = pytest.mark.integration


async def collect(client: aiomqtt.Client, want: set[str], got: list[str]) -> None:
    async for message in client.messages:
        assert isinstance(message.payload, bytes)
        got.append(json.loads(message.payload)["alertId"])
        if want <= set(got):
            return


def persistent_client(broker: Mosquitto) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, identifier="outage-sub", clean_session=False)


async def test_every_alert_delivered_across_a_broker_restart(
    tmp_path: Path, persistent_mosquitto: Mosquitto
) -> None:
    broker = persistent_mosquitto
    config: Config = config_for(tmp_path, broker)
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED)
    stop = asyncio.Event()
    got: list[str] = []
    async with asyncio.timeout(60):
        # Register the persistent session and its subscription, then go offline.
        async with persistent_client(broker) as client:
            await client.subscribe("guardbot/t1/alerts/#", qos=1)
        task = asyncio.create_task(daemon.run(stop))
        await daemon.ready.wait()
        feed.push("59500")  # first warning level while the broker is up
        await feed.idle.wait()
        broker.stop()
        # Down to the margin call and past liquidation while nothing can be published.
        feed.push("59000", "58500", "58200", "58000", "57900", "57800", "57700", "57000")
        await feed.idle.wait()
        assert not task.done()
        stored = journal_rows(
            tmp_path / "data",
            "SELECT alert_id FROM outbox WHERE topic LIKE '%/alerts/%' ORDER BY id",
        )
        want = {alert_id for (alert_id,) in stored}
        kinds = [k for (k,) in journal_rows(tmp_path / "data", "SELECT type FROM events")]
        assert "liquidation" in kinds and kinds.count("margin_alert") >= 2
        broker.start()
        async with persistent_client(broker) as client:
            await collect(client, want, got)
        stop.set()
        assert await task == 0
    assert set(got) == want
    # Order is kept: the outbox is drained by id, so alertIds first arrive in outbox order
    # (a redelivered duplicate may follow later; only first arrivals count).
    order = [alert_id for (alert_id,) in stored]
    assert list(dict.fromkeys(got)) == order
    assert journal_rows(tmp_path / "data", "SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL") == [
        (0,)
    ]
