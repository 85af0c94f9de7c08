"""Notifications from the journal's outbox through apprise to a JSON webhook on loopback.

The webhook is a real HTTP server (aiohttp) that apprise's ``json://`` service posts to; the
outbox is a real SQLite journal written by ``commit_step`` as the daemon writes it. No broker:
notifications read the outbox directly, so a broker outage cannot hold them back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from guardbot.mqtt.topics import event_messages
from guardbot.notify.notifier import STATE_KEY, AlertFilter, Notifier
from guardbot.notify.sender import AppriseSender, describe_url, split_urls
from guardbot.store.journal import Journal, OutboxRow
from tests.broker import _free_port

LIMIT = 20.0
T0 = 1_700_000_000_000


class Webhook:
    """``POST /hook`` records the JSON body; can be started and stopped on one port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.received: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def _post(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        self.arrived.set()
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._post)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    async def wait_for(self, count: int) -> None:
        while len(self.received) < count:
            self.arrived.clear()
            await self.arrived.wait()


def margin_call(account: str = "demo", ratio: str = "0.81") -> dict[str, Any]:
    from decimal import Decimal as D

    return {
        "type": "margin_alert",
        "ts": T0,
        "account": account,
        "scope": "position",
        "symbol": "BTC/USDT:USDT",
        "level": 2,
        "threshold": D("0.8"),
        "severity": "margin_call",
        "marginRatio": D(ratio),
        "liquidationPrice": D("56210"),
        "liquidationSymbol": "BTC/USDT:USDT",
        "markPrice": D("58950"),
        "distancePercent": D("4.65"),
    }


def fill() -> dict[str, Any]:
    return {"type": "fill", "ts": T0, "account": "demo", "symbol": "BTC/USDT:USDT"}


async def commit(journal: Journal, ts: int, *events: dict[str, Any]) -> None:
    rows: list[OutboxRow] = []
    for n, event in enumerate(events):
        for message in event_messages("guardbot", "t1", event, f"t1-{ts}-{n}"):
            rows.append(OutboxRow(message.topic, message.payload, alert_id=f"t1-{ts}-{len(rows)}"))
    await journal.commit_step(ts=ts, kind="test", body={}, events=list(events), outbox=rows)


@asynccontextmanager
async def notifying(journal: Journal, urls: list[str], **kwargs: Any) -> AsyncIterator[Notifier]:
    notifier = Notifier(
        journal,
        AppriseSender(urls, timeout=2.0),
        alerts_prefix="guardbot/t1/alerts",
        instance="t1",
        filter=kwargs.pop("filter", AlertFilter()),
        **kwargs,
    )
    await notifier.prepare()
    task = asyncio.create_task(notifier.run())
    try:
        yield notifier
    finally:
        notifier.close()  # the message in hand is finished and its cursor saved
        done, _ = await asyncio.wait([task], timeout=5.0)
        if not done:
            task.cancel()
            await asyncio.wait([task])
        elif not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    async with Journal(tmp_path / "guardbot.db", instance="t1") as j:
        yield j


async def test_an_alert_arrives_with_its_text(journal: Journal) -> None:
    hook = Webhook()
    await hook.start()
    try:
        async with asyncio.timeout(LIMIT), notifying(journal, [hook.url]) as notifier:
            await commit(journal, T0, fill(), margin_call())
            notifier.wake()
            await hook.wait_for(1)
    finally:
        await hook.stop()
    [body] = hook.received
    assert body["message"] == (
        "BTC/USDT:USDT: margin ratio 81 % (margin call at 80 %), liquidation 56,210, 4.6 % away"
    )
    assert body["title"] == "guardbot demo: margin call (margin_alert)"
    assert body["type"] == "failure"


async def test_endpoint_down_then_back_gets_it_once(journal: Journal) -> None:
    hook = Webhook()  # its port is free: nothing listens yet
    retrying = asyncio.Event()
    back = asyncio.Event()
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)
        retrying.set()
        if len(delays) >= 2:
            await back.wait()  # the endpoint comes back after two failed tries

    try:
        async with (
            asyncio.timeout(LIMIT),
            notifying(journal, [hook.url], sleep=sleep, random=lambda: 1.0) as notifier,
        ):
            await commit(journal, T0, margin_call())
            notifier.wake()
            while len(delays) < 2:
                retrying.clear()
                await retrying.wait()
            assert hook.received == [] and notifier.failures == 2
            await commit(journal, T0 + 500, fill(), margin_call(account="queued"))
            assert await notifier.backlog() == 2  # the one retried and the one behind it
            await hook.start()
            back.set()
            await hook.wait_for(2)
            await commit(journal, T0 + 1000, margin_call(account="other"))
            notifier.wake()
            await hook.wait_for(3)
    finally:
        await hook.stop()
    assert await notifier.backlog() == 0  # closed: the cursor is past the last one delivered
    assert [b["title"] for b in hook.received] == [
        "guardbot demo: margin call (margin_alert)",
        "guardbot queued: margin call (margin_alert)",
        "guardbot other: margin call (margin_alert)",
    ]
    assert delays[:2] == [0.5, 1.0]  # the one backoff, full jitter at its ceiling
    assert notifier.last_error == "delivery failed: json://…"


async def test_restart_resumes_after_the_last_delivered(journal: Journal, tmp_path: Path) -> None:
    """The cursor is durable: alerts committed while no notifier ran are sent after the
    restart, each once; the first start ever does not replay older history."""
    await commit(journal, T0 - 5000, margin_call(account="history"))  # before notify existed
    hook = Webhook()
    await hook.start()
    try:
        async with asyncio.timeout(LIMIT):
            async with notifying(journal, [hook.url]) as notifier:
                await commit(journal, T0, margin_call(account="a"))
                notifier.wake()
                await hook.wait_for(1)
            await commit(journal, T0 + 1000, margin_call(account="b"))  # while it is down
            async with notifying(journal, [hook.url]) as notifier:
                await hook.wait_for(2)
    finally:
        await hook.stop()
    assert [b["title"].split(":")[0] for b in hook.received] == ["guardbot a", "guardbot b"]
    state = await journal.get_state(STATE_KEY)
    alerts = await journal.outbox_after(0, "guardbot/t1/alerts/", 100)
    assert state["cursor"] == alerts[-1].id  # past the last alert row, event rows not its own


async def test_repeats_are_coalesced_into_one_message_that_says_how_many(
    journal: Journal,
) -> None:
    now = [T0 / 1000]
    hook = Webhook()
    await hook.start()
    try:
        async with (
            asyncio.timeout(LIMIT),
            notifying(journal, [hook.url], coalesce_s=60, clock=lambda: now[0]) as notifier,
        ):
            await commit(journal, T0, margin_call(ratio="0.81"))
            notifier.wake()
            await hook.wait_for(1)
            for n, ratio in enumerate(("0.82", "0.83", "0.84")):
                await commit(journal, T0 + 10_000 * (n + 1), margin_call(ratio=ratio))
            notifier.wake()
            await asyncio.sleep(0.3)  # let it read them: they must be held, not sent
            assert len(hook.received) == 1
            now[0] = (T0 + 60_000) / 1000  # the window closes
            notifier.wake()
            await hook.wait_for(2)
    finally:
        await hook.stop()
    summary = hook.received[1]["message"]
    assert summary.startswith("3 more within 60 s; the latest: BTC/USDT:USDT")
    assert "margin ratio 84 %" in summary


async def test_filter_by_severity_and_type(journal: Journal) -> None:
    hook = Webhook()
    await hook.start()
    feed_back = {"type": "feed_recovered", "ts": T0, "account": None, "symbol": None}
    liquidation = {
        "type": "liquidation", "ts": T0, "account": "demo", "symbol": "BTC/USDT:USDT",
        "side": "long", "contracts": "1", "price": "50000", "markPrice": "50000", "loss": "10",
    }  # fmt: skip
    try:
        async with (
            asyncio.timeout(LIMIT),
            notifying(
                journal, [hook.url], filter=AlertFilter("warning", ("liquidation",))
            ) as notifier,
        ):
            await commit(journal, T0, feed_back, margin_call(), liquidation)
            notifier.wake()
            await hook.wait_for(1)
            await asyncio.sleep(0.2)
    finally:
        await hook.stop()
    assert [b["title"] for b in hook.received] == ["guardbot demo: critical (liquidation)"]


def test_urls_are_split_and_never_named_beyond_their_scheme() -> None:
    assert split_urls(" ntfy://tok@host/topic,\n tgram://123:abc/456 ") == [
        "ntfy://tok@host/topic",
        "tgram://123:abc/456",
    ]
    assert describe_url("tgram://123:abc/456") == "tgram://…"


def test_a_url_apprise_does_not_know_is_a_config_error() -> None:
    from guardbot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"notify.urls_env: URL 1 \(nope://…\)"):
        AppriseSender(["nope://secret-token"])


def test_state_is_plain_json() -> None:
    assert json.loads(json.dumps({"cursor": 1, "windows": {}}))["cursor"] == 1
