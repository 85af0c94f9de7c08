"""Operations against a real in-process :class:`Daemon` and a private Mosquitto: the ``/metrics``
scrape, systemd notifications and the watchdog, ``guardbot health``, and MQTT control with a
restart on the same data directory.

Every test is bounded by ``asyncio.timeout``; waits are on MQTT messages, notify datagrams, feed
idleness or daemon events. The only loops that poll are bounded and check an in-process condition
that cannot be awaited (``daemon.control`` being assigned).
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import aiohttp
import aiomqtt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from structlog.testing import capture_logs

from guardbot.cli.health import HealthReport, check_health
from guardbot.config import Config, load_config
from guardbot.daemon.sdnotify import Notifier
from guardbot.daemon.service import Daemon
from guardbot.daemon.status import evaluate_status
from guardbot.feeds.base import FeedRecovered, FeedStale
from guardbot.metrics.prometheus import engine_margin_rows
from tests.broker import Mosquitto
from tests.daemon.test_daemon import (
    BTC,
    REPO,
    SEED,
    EventFeed,
    Subscriber,
    journal_rows,
    states,
    write_config,
)

pytestmark = pytest.mark.integration

LIMIT = 40.0
#: Down through every alert level to the liquidation of SEED's 0.4 BTC long (25x cross).
TO_LIQUIDATION = ("59500", "59000", "58500", "58000", "57900", "57800", "57700")
STATUS = "guardbot/t1/status"
ALERTS = "guardbot/t1/alerts/#"
TOKEN = "ops-" + "k" * 28
TOKEN_ENV = "GUARDBOT_OPS_TEST_TOKEN"

T = TypeVar("T")


def make_config(tmp_path: Path, broker: Mosquitto, *, extra: str = "") -> Config:
    return load_config(write_config(tmp_path, broker, extra=extra), {TOKEN_ENV: TOKEN})


def start(daemon: Daemon, stop: asyncio.Event) -> asyncio.Task[int]:
    return asyncio.create_task(daemon.run(stop), name="daemon")


async def alive(task: asyncio.Task[int], awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` unless the daemon ``task`` ends first (a crash fails the test at
    once instead of at its time limit)."""
    waiter = asyncio.ensure_future(awaitable)
    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if waiter.done():
        return waiter.result()
    waiter.cancel()
    await asyncio.wait({waiter})
    raise AssertionError(f"the daemon ended early, returning {task.result()}")


async def finish(task: asyncio.Task[int], stop: asyncio.Event) -> None:
    stop.set()
    assert await task == 0


@asynccontextmanager
async def running(config: Config, feed: EventFeed, **kwargs: Any) -> AsyncIterator[Daemon]:
    """A daemon on ``feed``, started and ready; stopped cleanly (exit status 0) at the end."""
    daemon = Daemon(config, feed_factory=lambda _c: feed, **kwargs)
    stop = asyncio.Event()
    task = start(daemon, stop)
    try:
        await alive(task, daemon.ready.wait())
        yield daemon
    finally:
        await finish(task, stop)


def unsent(data_dir: Path) -> int:
    [(count,)] = journal_rows(data_dir, "SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL")
    return int(count)


# --------------------------------------------------------------------------- /metrics


async def scrape(daemon: Daemon) -> list[Sample]:
    assert daemon.metrics_server is not None
    url = f"http://127.0.0.1:{daemon.metrics_server.port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def values(samples: list[Sample], name: str, **labels: str) -> list[float]:
    """Values of the samples called ``name`` whose labels include ``labels``."""
    return [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = values(samples, name, **labels)
    assert len(found) == 1, (name, labels, found)
    return found[0]


def margin_ratios(daemon: Daemon) -> dict[tuple[str, str], float]:
    rows, _counts = engine_margin_rows(daemon.engine)
    return {
        (r.account, r.symbol or ""): math.inf if r.margin_ratio is None else float(r.margin_ratio)
        for r in rows
    }


def alert_counts(sub: Subscriber) -> dict[tuple[str, str], int]:
    """``(type, severity)`` -> alerts received, from ``.../alerts/<severity>/<type>``."""
    counts: dict[tuple[str, str], int] = {}
    for topic, payload in sub.received:
        if "/alerts/" not in topic:
            continue
        severity, kind = topic.split("/")[-2:]
        assert payload["type"] == kind
        counts[(kind, severity)] = counts.get((kind, severity), 0) + 1
    return counts


async def run_to_liquidation(
    tmp_path: Path, broker: Mosquitto, check_open: Callable[[Daemon, list[Sample]], None]
) -> tuple[Daemon, EventFeed, Subscriber, list[Sample]]:
    """Seed a position, scrape while it is open (``check_open``), push ticks to its
    liquidation, wait until every alert is on MQTT and the outbox is drained, and scrape."""
    config = make_config(tmp_path, broker)
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED)
    stop = asyncio.Event()
    async with Subscriber(broker, [ALERTS, STATUS]) as sub:
        task = start(daemon, stop)
        try:
            await alive(task, sub.until(lambda t, p: t == STATUS and p["state"] == "online"))
            await feed.pushed(TO_LIQUIDATION[0])
            check_open(daemon, await scrape(daemon))
            feed.push(*TO_LIQUIDATION[1:])
            await sub.until(lambda topic, _p: topic.endswith("/liquidation"))
            await feed.idle.wait()
            assert daemon.outbox is not None
            await daemon.outbox.wait_drained()
            [(journaled,)] = journal_rows(
                tmp_path / "data", "SELECT COUNT(*) FROM outbox WHERE topic LIKE '%/alerts/%'"
            )
            if len(sub.alerts()) < journaled:
                await sub.until(lambda _t, _p: len(sub.alerts()) == journaled)
            assert len(sub.alerts()) == journaled
            samples = await scrape(daemon)
        finally:
            await finish(task, stop)
    return daemon, feed, sub, samples


async def test_metrics_scrape_matches_what_happened(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """Alerts, liquidations, outbox, positions, margin ratios and process metrics of a live
    daemon agree with the alerts received on MQTT and with the engine."""

    def while_open(daemon: Daemon, samples: list[Sample]) -> None:
        assert value(samples, "guardbot_open_positions", account="demo") == 1
        ratios = margin_ratios(daemon)
        cross = ratios[("demo", "")]
        assert 0 < cross < 1
        assert value(samples, "guardbot_margin_ratio", account="demo", symbol="") == cross
        assert value(samples, "guardbot_mqtt_connected") == 1

    async with asyncio.timeout(LIMIT):
        daemon, feed, sub, samples = await run_to_liquidation(tmp_path, mosquitto, while_open)

    received = alert_counts(sub)
    assert ("liquidation", "critical") in received
    assert ("margin_alert", "margin_call") in received
    scraped = {
        (s.labels["type"], s.labels["severity"]): int(s.value)
        for s in samples
        if s.name == "guardbot_alerts_total"
    }
    assert scraped == received
    assert sum(values(samples, "guardbot_liquidations_total", account="demo")) == 1
    assert value(samples, "guardbot_outbox_depth") == 0
    assert value(samples, "guardbot_outbox_oldest_unsent_age_seconds") == 0
    assert value(samples, "guardbot_open_positions", account="demo") == 0
    # The cross part stays, at 0 without positions; no isolated series were ever created.
    assert {(s.labels["account"], s.labels["symbol"]): s.value for s in samples
            if s.name == "guardbot_margin_ratio"} == {("demo", ""): 0.0}  # fmt: skip
    assert margin_ratios(daemon) == {("demo", ""): 0.0}
    assert value(samples, "guardbot_feed_stale", symbol=BTC) == 0
    assert value(samples, "guardbot_mqtt_connected") == 1
    assert value(samples, "guardbot_metrics_refresh_errors_total") == 0
    # The database: its size, the journal's length, no checkpoint yet (interval 300 s).
    assert value(samples, "guardbot_db_bytes") > 0
    stored = len(journal_rows(tmp_path / "data", "SELECT seq FROM inputs"))
    assert 0 < value(samples, "guardbot_journal_inputs") <= stored  # a clean stop adds ticks
    assert value(samples, "guardbot_checkpoint_age_seconds") == -1
    assert value(samples, "process_resident_memory_bytes") > 0
    assert values(samples, "guardbot_build_info") == [1.0]
    # Tick metrics: every pushed tick was received and applied once.
    assert feed.ticks == len(TO_LIQUIDATION)
    assert value(samples, "guardbot_ticks_received_total", symbol=BTC) == feed.ticks
    assert value(samples, "guardbot_ticks_applied_total", symbol=BTC) == feed.ticks
    assert value(samples, "guardbot_engine_tick_seconds_count") == feed.ticks
    assert value(samples, "guardbot_engine_tick_seconds_bucket", le="+Inf") == feed.ticks
    assert values(samples, "guardbot_feed_lag_seconds", symbol=BTC)  # T0 is years ago: large
    assert values(samples, "guardbot_ticks_dropped_total") == []  # this feed cannot drop any
    # The ticks from the first alert on raised events that were published and acknowledged.
    assert value(samples, "guardbot_tick_to_publish_seconds_count") > 0
    assert value(samples, "guardbot_tick_to_publish_seconds_sum") > 0


async def test_metrics_outbox_gauges_while_the_broker_is_down(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = make_config(tmp_path, mosquitto)
    mosquitto.stop()
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED, drain_timeout=0.2)
    stop = asyncio.Event()
    async with asyncio.timeout(LIMIT):
        task = start(daemon, stop)
        try:
            await alive(task, daemon.ready.wait())
            await feed.pushed(*TO_LIQUIDATION)
            samples = await scrape(daemon)
        finally:
            await finish(task, stop)
    depth = unsent(tmp_path / "data")
    assert depth > 0
    assert value(samples, "guardbot_outbox_depth") == depth
    assert value(samples, "guardbot_outbox_oldest_unsent_age_seconds") >= 0
    assert value(samples, "guardbot_mqtt_connected") == 0
    assert sum(values(samples, "guardbot_liquidations_total")) == 1


# --------------------------------------------------------------------------- systemd notify


class NotifySocket:
    """The service manager's end: an ``AF_UNIX`` datagram socket collecting notifications."""

    def __init__(self, path: Path) -> None:
        assert len(str(path)) < 100, "AF_UNIX paths are limited to 107 bytes"
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.log: list[dict[str, str]] = []

    def close(self) -> None:
        self.sock.close()

    def notifier(self, watchdog_usec: int) -> Notifier:
        env = {"NOTIFY_SOCKET": str(self.path), "WATCHDOG_USEC": str(watchdog_usec)}
        return Notifier.from_env(env)

    @staticmethod
    def _parse(data: bytes) -> dict[str, str]:
        text = data.decode("utf-8")
        assert text.endswith("\n")
        return dict(line.split("=", 1) for line in text.splitlines())

    async def next(self) -> dict[str, str]:
        data = await asyncio.get_running_loop().sock_recv(self.sock, 4096)
        message = self._parse(data)
        self.log.append(message)
        return message

    async def until(self, key: str) -> dict[str, str]:
        """Read datagrams until one sets ``key``."""
        while True:
            message = await self.next()
            if key in message:
                return message

    def drain(self) -> list[dict[str, str]]:
        """Every datagram already sent (sending is synchronous in this thread)."""
        out: list[dict[str, str]] = []
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                self.log.extend(out)
                return out
            out.append(self._parse(data))


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    try:
        yield sock
    finally:
        sock.close()


@contextmanager
def time_shifted(daemon: Daemon, seconds: float) -> Iterator[None]:
    """The feed health's monotonic clock ``seconds`` later (the event loop and everything else
    keep the real clock)."""
    health = daemon.feed_health
    real = health.monotonic
    health.monotonic = lambda: time.monotonic() + seconds
    try:
        yield
    finally:
        health.monotonic = real


def forget_checkpoints(data_dir: Path) -> None:
    """Delete every checkpoint, so that the next start replays the whole journal."""
    with sqlite3.connect(data_dir / "guardbot.db") as conn:
        conn.execute("DELETE FROM checkpoints")


class HealthSpy:
    """Wraps ``daemon.feed_health.healthy`` (the watchdog's judgement) to count its verdicts."""

    def __init__(self, daemon: Daemon) -> None:
        self._healthy = daemon.feed_health.healthy
        daemon.feed_health.healthy = self  # type: ignore[method-assign]
        self.unhealthy = 0
        self.twice_unhealthy = asyncio.Event()
        self.on_first_unhealthy: Callable[[], None] = lambda: None

    def __call__(self) -> bool:
        ok = self._healthy()
        if not ok:
            self.unhealthy += 1
            if self.unhealthy == 1:
                self.on_first_unhealthy()
            if self.unhealthy >= 2:
                self.twice_unhealthy.set()
        return ok


TRAILING_SEED = [
    *SEED,
    {
        "type": "order",
        "account": "demo",
        "id": "trail",
        "symbol": BTC,
        "orderType": "market",
        "side": "sell",
        "amount": "0.4",
        "params": {"reduceOnly": True, "trailingPercent": "5"},
    },
]


def trail_trigger(daemon: Daemon) -> Decimal | None:
    return daemon.engine.accounts["demo"].orders["trail"].trigger_price


async def test_trailing_stop_peak_survives_a_restart(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # The peak that sets a trailing stop's trigger comes from ticks that raise no event; the
    # daemon journals them anyway, so the restarted daemon trails from the same peak.
    config = make_config(tmp_path, mosquitto)
    feed, feed2 = EventFeed(), EventFeed()
    async with asyncio.timeout(LIMIT):
        async with running(config, feed, initial_commands=TRAILING_SEED) as daemon:
            await feed.pushed("61000", "62000", "61500", "61400")  # peak 62000, no events
            assert trail_trigger(daemon) == Decimal("58900.00")  # 62000 * (1 - 5 %)
        async with running(config, feed2) as second:
            assert trail_trigger(second) == trail_trigger(daemon)
            feed2.ts = feed.ts
            await feed2.pushed("58950")  # above the trigger: nothing fires
            assert "trail" in second.engine.accounts["demo"].orders
            await feed2.pushed("58900")
            assert "trail" not in second.engine.accounts["demo"].orders
            assert second.engine.accounts["demo"].positions == {}


async def test_systemd_ready_watchdog_and_stopping(
    tmp_path: Path, mosquitto: Mosquitto, notify_socket: NotifySocket
) -> None:
    config = make_config(tmp_path, mosquitto)
    ns = notify_socket
    feed = EventFeed()
    daemon = Daemon(
        config,
        feed_factory=lambda _c: feed,
        initial_commands=SEED,
        notifier=ns.notifier(200_000),  # WatchdogSec=0.2: a ping every 0.1 s
    )
    spy = HealthSpy(daemon)
    stop = asyncio.Event()
    async with asyncio.timeout(LIMIT):
        task = start(daemon, stop)
        try:
            first = await alive(task, ns.next())
            assert first["READY"] == "1" and daemon.ready.is_set()
            assert first["STATUS"] == "recovered 0 inputs"
            assert states(daemon)["demo"]["positions"]  # the seed is applied before READY
            for _ in range(2):
                assert await ns.next() == {"WATCHDOG": "1"}

            # A stale feed within the grace period: the pings go on.
            feed.send(FeedStale(BTC, feed.ts, "test: no ticks"))
            await feed.idle.wait()
            ns.drain()
            assert await ns.next() == {"WATCHDOG": "1"}

            # Stale beyond the grace (max(60, 6 * stale_after_s) = 60 s): no more pings.
            assert config.feed.stale_after_s == 10
            stuck: list[dict[str, str]] = []
            spy.on_first_unhealthy = lambda: stuck.extend(ns.drain())
            with time_shifted(daemon, 59):
                assert daemon.feed_health.healthy()
            with time_shifted(daemon, 61):
                await spy.twice_unhealthy.wait()
            assert ns.drain() == []  # nothing between two unhealthy verdicts
            assert all(m == {"WATCHDOG": "1"} for m in stuck)

            # The feed recovers: pings resume.
            feed.send(FeedRecovered(BTC, feed.next_ts()))
            await feed.idle.wait()
            assert await ns.until("WATCHDOG") == {"WATCHDOG": "1"}
            stop.set()
            stopping = await ns.until("STOPPING")
        finally:
            await finish(task, stop)
    assert stopping["STOPPING"] == "1" and "STATUS" in stopping
    assert ns.drain() == [], "no notification after STOPPING=1"
    assert [m for m in ns.log if "READY" in m] == [first]

    # A restart: READY only after the journal was replayed; while it is, each progress report
    # (here after every input) pushes systemd's start deadline back.
    feed2 = EventFeed()
    forget_checkpoints(tmp_path / "data")  # as after a kill before the first checkpoint
    second = Daemon(config, feed_factory=lambda _c: feed2, notifier=ns.notifier(200_000))
    second.recovery_progress_s = 0.0
    stop2 = asyncio.Event()
    async with asyncio.timeout(LIMIT):
        task = start(second, stop2)
        try:
            progress: list[dict[str, str]] = []
            while "READY" not in (ready := await alive(task, ns.next())):
                progress.append(ready)
            assert ready["READY"] == "1"
            assert second.recovered_inputs > 0
            assert ready["STATUS"] == f"recovered {second.recovered_inputs} inputs"
            assert len(progress) >= second.recovered_inputs
            assert progress[-1] == {
                "EXTEND_TIMEOUT_USEC": "60000000",
                "STATUS": f"recovering: {len(progress)} inputs read",
            }
            assert states(second) == states(daemon)
        finally:
            await finish(task, stop2)


def test_watchdog_grace_follows_stale_after_s(tmp_path: Path) -> None:
    """``FeedHealth.healthy``: a feed stale for longer than max(60 s, 6 * stale_after_s) is
    unhealthy; the grace restarts after a recovery."""
    broker: Any = SimpleNamespace(host="127.0.0.1", port=1)  # never connected to
    path = write_config(tmp_path, broker)
    text = path.read_text(encoding="utf-8").replace(
        'mode = "sim"', 'mode = "sim"\nstale_after_s = 20'
    )
    path.write_text(text, encoding="utf-8")
    config = load_config(path, {})
    assert config.feed.stale_after_s == 20
    daemon = Daemon(config)
    health = daemon.feed_health
    assert health.healthy()
    health.mark(FeedStale(BTC, 0, "test"))
    with time_shifted(daemon, 0):
        assert health.healthy()  # the stale period starts now
    with time_shifted(daemon, 119):
        assert health.healthy()
    with time_shifted(daemon, 121):
        assert not health.healthy()
    health.mark(FeedRecovered(BTC, 0))
    assert health.healthy()
    health.mark(FeedStale(None, 0, "test"))  # the whole feed
    with time_shifted(daemon, 121):
        assert health.healthy()  # a new stale period


# --------------------------------------------------------------------------- guardbot health


async def test_health_of_a_running_daemon(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = make_config(tmp_path, mosquitto)
    feed = EventFeed()
    daemon = Daemon(
        config, feed_factory=lambda _c: feed, initial_commands=SEED, status_interval=0.2
    )
    stop = asyncio.Event()
    async with asyncio.timeout(LIMIT), Subscriber(mosquitto, [STATUS]) as sub:
        task = start(daemon, stop)
        try:
            await alive(task, feed.pushed("60000"))
            # Republished every status_interval, with a fresh ts each time.
            await sub.until(lambda _t, p: p["state"] == "online")
            await sub.until(lambda _t, p: p["state"] == "online")
            [first, second] = [p for _t, p in sub.received[-2:]]
            assert second["ts"] > first["ts"]
            assert second["feeds"][BTC] == {"stale": False, "lastTs": feed.ts}
            store = second["store"]  # what guardbot status --json shows of the database
            assert store["dbBytes"] > 0 and store["journalInputs"] >= 1
            assert store["checkpointAgeS"] is None  # none yet: the first comes after 300 s
            assert await check_health(config, timeout=5) == HealthReport(True, "healthy")
            assert await health_cli(tmp_path) == (0, "healthy\n")

            feed.send(FeedStale(BTC, feed.ts, "test: no ticks"))
            await sub.until(lambda _t, p: p["state"] == "degraded")
            assert await check_health(config, timeout=5) == HealthReport(
                False, f"daemon is degraded: stale feeds: {BTC}"
            )
            feed.send(FeedRecovered(BTC, feed.next_ts()))
            await sub.until(lambda _t, p: p["state"] == "online")
            assert await check_health(config, timeout=5) == HealthReport(True, "healthy")
        finally:
            await finish(task, stop)
        await sub.until(lambda _t, p: p["state"] == "offline")
    report = await asyncio.wait_for(check_health(config, timeout=5), LIMIT)
    assert not report.healthy
    assert report.reason == "daemon is offline (it stopped, or the broker lost its connection)"
    code, out = await health_cli(tmp_path)
    assert (code, out) == (1, f"unhealthy: {report.reason}\n")


async def health_cli(tmp_path: Path) -> tuple[int, str]:
    """``guardbot health -c FILE`` as a subprocess: exit status and stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "guardbot", "health", "-c", str(tmp_path / "guardbot.toml"),
        "--timeout", "5", cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(LIMIT):
        out, err = await process.communicate()
    assert process.returncode is not None and err == b"", err.decode()
    return process.returncode, out.decode()


async def test_health_reports_an_outbox_backlog(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """A daemon that starts with undelivered alerts says so in its first status: at or above
    ``max_outbox`` the check is unhealthy."""
    config = make_config(tmp_path, mosquitto)
    data_dir = tmp_path / "data"
    mosquitto.stop()
    feed = EventFeed()
    first = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED, drain_timeout=0.2)
    stop = asyncio.Event()
    async with asyncio.timeout(LIMIT):
        task = start(first, stop)
        try:
            await alive(task, first.ready.wait())
            await feed.pushed(*TO_LIQUIDATION[:4])
        finally:
            await finish(task, stop)
    backlog = unsent(data_dir)
    assert backlog > 1

    mosquitto.start()
    feed2 = EventFeed()
    second = Daemon(config, feed_factory=lambda _c: feed2, status_interval=60)
    stop2 = asyncio.Event()
    async with asyncio.timeout(LIMIT), Subscriber(mosquitto, [STATUS]) as sub:
        task = start(second, stop2)
        try:
            await alive(task, sub.until(lambda _t, p: p["state"] == "online"))
            status = sub.received[-1][1]
            assert status["outbox"]["depth"] == backlog
            # The status is republished as soon as the backlog drains, so the health check is
            # applied to the first status (what `guardbot health` read at that moment).
            payload = json.dumps(status)
            now = status["ts"]
            (problem,) = evaluate_status(payload, now_ms=now, max_outbox=backlog, max_status_age=30)
            assert problem.startswith(
                f"outbox holds {backlog} unsent messages (limit {backlog}, oldest "
            )
            assert problem.endswith("s): alerts are not reaching the broker")
            assert not evaluate_status(
                payload, now_ms=now, max_outbox=backlog + 1, max_status_age=30
            )
            # Drained: a fresh status says so, and the live check is healthy.
            await alive(
                task,
                sub.until(lambda _t, p: p["state"] == "online" and p["outbox"]["depth"] == 0),
            )
            healthy = await check_health(config, timeout=5, max_outbox=1)
            assert healthy == HealthReport(True, "healthy")
        finally:
            await finish(task, stop2)
    assert unsent(data_dir) == 0


# --------------------------------------------------------------------------- MQTT control


CONTROL = f"""
[control]
enabled = true
token_env = "{TOKEN_ENV}"
"""


def command(rid: str, token: str = TOKEN, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "requestId": rid,
        "token": token,
        "type": "order",
        "account": "demo",
        "id": f"o-{rid}",
        "symbol": BTC,
        "orderType": "market",
        "side": "buy",
        "amount": "0.1",
    }
    obj.update(fields)
    return obj


async def request(client: aiomqtt.Client, payload: dict[str, Any] | str, level: str) -> Any:
    topic = f"guardbot/t1/reply/{level}"
    await client.subscribe(topic, qos=1)
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    await client.publish("guardbot/t1/cmd", raw, qos=1)
    async for message in client.messages:
        if message.topic.value == topic:
            await client.unsubscribe(topic)
            assert isinstance(message.payload, bytes)
            return json.loads(message.payload)
    raise AssertionError("the connection ended before the reply")


async def control_ready(daemon: Daemon) -> None:
    await daemon.ready.wait()
    for _ in range(500):  # assigned just after READY, within a few loop iterations
        if daemon.control is not None:
            break
        await asyncio.sleep(0.01)
    assert daemon.control is not None
    await daemon.control.subscribed.wait()


def inputs(data_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        (kind, json.loads(body))
        for kind, body in journal_rows(data_dir, "SELECT kind, body FROM inputs ORDER BY seq")
    ]


async def test_control_commands_and_restart(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # The feed's ticks are stamped years before the commands (the daemon's clock): a retention
    # that keeps them, so that the journal alone can rebuild the state below.
    keep = "\n[store]\nretention_days = 100000\n"
    config = make_config(tmp_path, mosquitto, extra=CONTROL + keep)
    assert config.control.enabled and config.topic_base == "guardbot/t1"
    data_dir = tmp_path / "data"
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed)
    stop = asyncio.Event()
    async with asyncio.timeout(LIMIT):
        task = start(daemon, stop)
        try:
            await alive(task, control_ready(daemon))
            await feed.pushed("60000")
            async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
                opened = await request(client, command("r1"), "r1")
                assert opened["requestId"] == "r1" and opened["ok"] is True
                fills = [e for e in opened["events"] if e["type"] == "fill"]
                assert len(fills) == 1 and fills[0]["amount"] == "0.1"
                assert "token" not in json.dumps(opened)
                after_order = states(daemon)
                [position] = after_order["demo"]["positions"]
                entry = position["entryPrice"]
                journaled = inputs(data_dir)
                # the first start journals the tier tables in force (issue 16 ask 3)
                assert [k for k, _b in journaled] == ["tiers", "tick", "order"]
                assert journaled[2][1] == {
                    k: v for k, v in command("r1").items() if k not in ("requestId", "token")
                }

                refused = {
                    "r2": (command("r2", token="wrong"), "r2", "unauthorized"),
                    "json": ('{"requestId": "r3", "token": ', "invalid", "bad_json"),
                    "r4": (command("r4", symbol="ETH/USDT:USDT"), "r4", "unknown_symbol"),
                    "r5": (
                        json.dumps(command("r5")).replace('"0.1"', "NaN"),
                        "r5",
                        "bad_json",
                    ),
                    "r6": (command("r6", amount="NaN"), "r6", "bad_command"),
                }
                with capture_logs() as logged:
                    for name, (payload, level, code) in refused.items():
                        reply = await request(client, payload, level)
                        assert reply["ok"] is False and reply["code"] == code, (name, reply)
                        assert reply["requestId"] == (None if level == "invalid" else level)
                        assert TOKEN not in json.dumps(reply)
                        assert states(daemon) == after_order, name
                assert inputs(data_dir) == journaled  # nothing journaled for refusals
                # Each refusal is logged with its code and request id, never the token.
                lines = [e for e in logged if e["event"] == "command refused"]
                assert [(e["code"], e["requestId"]) for e in lines] == [
                    (code, None if level == "invalid" else level)
                    for payload, level, code in refused.values()
                ]
                assert all(e["log_level"] == "warning" for e in lines)
                assert TOKEN not in repr(logged)

                # The engine's refusal is journaled, but as a refused_command recovery skips.
                big = await request(client, command("r7", amount="1000"), "r7")
                assert big["ok"] is False and big["code"].isupper(), big
                assert states(daemon) == after_order
                kinds = [k for k, _b in inputs(data_dir)]
                assert kinds == ["tiers", "tick", "order", "refused_command"]
        finally:
            await finish(task, stop)
    final = states(daemon)

    # The clean stop wrote a checkpoint: the restart re-applies nothing and has the same state.
    async with asyncio.timeout(LIMIT), running(config, EventFeed()) as from_checkpoint:
        assert from_checkpoint.recovered_inputs == 0
        assert from_checkpoint.recovered is not None
        assert from_checkpoint.recovered.checkpoint_seq == 4
        assert states(from_checkpoint) == final
    forget_checkpoints(data_dir)  # the journal alone rebuilds the same state
    with capture_logs() as logged:
        async with asyncio.timeout(LIMIT), running(config, EventFeed()) as second:
            restored = states(second)
    # the tiers input, the tick and the order; not the refused command
    assert second.recovered_inputs == 3
    # The start line says what the daemon runs against (issue 11 item 7).
    [started] = [e for e in logged if e["event"] == "guardbot daemon started"]
    assert started["broker"] == "external"
    assert started["broker_url"] == f"mqtt://{mosquitto.host}:{mosquitto.port}"
    assert started["control"] == "enabled"
    assert started["tier_sources"]["BTC/USDT:USDT"].startswith("bundled")
    assert TOKEN not in repr(logged)
    [position] = restored["demo"]["positions"]
    assert position["entryPrice"] == entry
    assert restored == final
