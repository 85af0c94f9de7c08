"""The daemon end to end against a private Mosquitto: feed -> engine -> journal -> MQTT.

Every test is bounded by ``asyncio.timeout``; waits are on messages, events or process exit,
never blind sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import aiomqtt
import pytest
import structlog

from guardbot.config import Config, load_config
from guardbot.core.commands import TickCmd
from guardbot.core.events import to_jsonable
from guardbot.daemon.service import Daemon, tick_body
from guardbot.feeds.base import FeedEvent, TickUpdate
from guardbot.runtime.logs import REDACTED, configure_logging
from guardbot.store.journal import DB_FILENAME
from tests.broker import Mosquitto

BTC = "BTC/USDT:USDT"
T0 = 1_700_000_000_000
REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")

SEED = [
    {"type": "tick", "symbol": BTC, "mark": "60000"},
    {
        "type": "order",
        "account": "demo",
        "id": "o1",
        "symbol": BTC,
        "orderType": "market",
        "side": "buy",
        "amount": "0.4",
    },
]


def write_config(tmp_path: Path, broker: Mosquitto, *, extra: str = "") -> Path:
    path = tmp_path / "guardbot.toml"
    path.write_text(
        f"""
[guardbot]
instance = "t1"
data_dir = "{tmp_path / "data"}"
log_format = "json"
log_level = "warning"

[exchange]
id = "binanceusdm"
symbols = ["{BTC}"]

[feed]
# The tests inject their own feed; "sim" keeps the daemon from fetching tiers from the exchange.
mode = "sim"

[accounts.demo]
wallet = 1000
default_margin_mode = "cross"
default_leverage = 25
maker_fee = 0.0002
taker_fee = 0.0005

[alerts]
margin_ratio_levels = [0.5, 0.7, 0.8]
hysteresis = 0.05

[mqtt]
url = "mqtt://{broker.host}:{broker.port}"
embedded_broker = "never"

[metrics]
# A free port: tests run beside each other and beside a real daemon on 9108.
listen = "127.0.0.1:0"
{extra}
""",
        encoding="utf-8",
    )
    return path


def config_for(tmp_path: Path, broker: Mosquitto) -> Config:
    return load_config(write_config(tmp_path, broker), {})


class ScriptFeed:
    """Yields ``TickUpdate`` for each mark in order; then sets ``done`` and, with ``hold``,
    waits until cancelled (a live feed that went quiet)."""

    def __init__(self, marks: Sequence[str], *, hold: bool = True) -> None:
        self.marks = list(marks)
        self.hold = hold
        self.done = asyncio.Event()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def updates(self) -> AsyncIterator[FeedEvent]:
        for i, mark in enumerate(self.marks):
            yield TickUpdate(T0 + 1000 * (i + 1), TickCmd(BTC, Decimal(mark)))
        self.done.set()
        if self.hold:
            await asyncio.Event().wait()


def factory(feed: ScriptFeed) -> Callable[[Config], ScriptFeed]:
    return lambda _config: feed


class EventFeed:
    """Feed events pushed by the test (ticks by mark, or ``FeedStale``/``FeedRecovered``);
    ``idle`` is set whenever every pushed event was processed by the daemon."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[FeedEvent] = asyncio.Queue()
        self.idle = asyncio.Event()
        self.ticks = 0
        self.ts = T0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def next_ts(self) -> int:
        self.ts += 1000
        return self.ts

    def push(self, *marks: str) -> None:
        for mark in marks:
            self.send(TickUpdate(self.next_ts(), TickCmd(BTC, Decimal(mark))))

    def send(self, event: FeedEvent) -> None:
        self.idle.clear()
        self.queue.put_nowait(event)

    async def updates(self) -> AsyncIterator[FeedEvent]:
        while True:
            if self.queue.empty():
                # The daemon asks for the next item only after it processed (and journaled)
                # the previous one: an empty queue here means everything pushed is done.
                self.idle.set()
            event = await self.queue.get()
            if isinstance(event, TickUpdate):
                self.ticks += 1
            yield event

    async def pushed(self, *marks: str) -> None:
        """Push ticks and wait until the daemon has processed them."""
        self.push(*marks)
        await self.idle.wait()


class Collector(Generic[T]):
    """An MQTT client subscribed (QoS 1) to ``topics`` while entered; subclasses say what they
    keep of each message in ``received``."""

    def __init__(self, broker: Mosquitto, topics: Sequence[str]) -> None:
        self.client = aiomqtt.Client(broker.host, broker.port)
        self.topics = topics
        self.received: list[T] = []

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        for topic in self.topics:
            await self.client.subscribe(topic, qos=1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.__aexit__(None, None, None)


class Subscriber(Collector[tuple[str, dict[str, Any]]]):
    """Collects ``(topic, payload)`` from its subscriptions."""

    async def until(self, predicate: Callable[[str, dict[str, Any]], bool]) -> None:
        """Collect messages until one satisfies ``predicate``."""
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            item = (str(message.topic), json.loads(message.payload))
            self.received.append(item)
            if predicate(*item):
                return

    def alerts(self) -> list[dict[str, Any]]:
        return [p for t, p in self.received if "/alerts/" in t]


def states(daemon: Daemon) -> dict[str, Any]:
    return {a.id: daemon.engine.state(a) for a in daemon.engine.iter_accounts()}


def journal_rows(data_dir: Path, sql: str) -> list[Any]:
    with sqlite3.connect(data_dir / DB_FILENAME) as conn:
        return list(conn.execute(sql))


@pytest.mark.integration
async def test_alerts_published_after_journaling(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = config_for(tmp_path, mosquitto)
    feed = ScriptFeed(["59500", "59000", "58500", "58000", "57900", "57800", "57700"])
    daemon = Daemon(config, feed_factory=factory(feed), initial_commands=SEED)
    stop = asyncio.Event()
    async with asyncio.timeout(20):
        async with Subscriber(mosquitto, ["guardbot/t1/alerts/#"]) as sub:
            task = asyncio.create_task(daemon.run(stop))
            await sub.until(lambda topic, _p: topic.endswith("/liquidation"))
            stop.set()
            assert await task == 0
    kinds = [p["type"] for p in sub.alerts()]
    assert kinds[0] == "margin_alert"
    assert kinds[-1] == "liquidation"
    assert all(p["alertId"].startswith("t1-") for p in sub.alerts())
    assert len({p["alertId"] for p in sub.alerts()}) == len(kinds)
    # Every published alert is in the journal, with the same alertId on its outbox row.
    data_dir = tmp_path / "data"
    stored = journal_rows(
        data_dir, "SELECT alert_id, payload FROM outbox WHERE topic LIKE '%/alerts/%'"
    )
    by_id = {alert_id: json.loads(payload) for alert_id, payload in stored}
    for payload in sub.alerts():
        assert by_id[payload["alertId"]] == payload
    events = [t for (t,) in journal_rows(data_dir, "SELECT type FROM events ORDER BY seq")]
    assert "margin_alert" in events and "liquidation" in events
    assert journal_rows(data_dir, "SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL") == [(0,)]
    # The retained account snapshot shows the final state: liquidated, no position.
    async with asyncio.timeout(10), Subscriber(mosquitto, ["guardbot/t1/accounts/#"]) as snap:
        await snap.until(lambda _t, _p: True)
    topic, snapshot = snap.received[0]
    assert topic == "guardbot/t1/accounts/demo"
    assert snapshot["account"] == "demo" and snapshot["positions"] == []
    assert Decimal(snapshot["ledger"]["liquidationLosses"]) > 0


@pytest.mark.integration
async def test_restart_rebuilds_state_and_delivers_unsent_once(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = config_for(tmp_path, mosquitto)
    data_dir = tmp_path / "data"
    mosquitto.stop()  # first run: no broker, so every alert stays unsent in the outbox
    # Falls to the alert levels, then recovers a little without an event (the last tick is
    # only journaled by the clean stop).
    feed1 = ScriptFeed(["59500", "58500", "58000", "57950", "57990"])
    first = Daemon(config, feed_factory=factory(feed1), initial_commands=SEED, drain_timeout=0.2)
    stop1 = asyncio.Event()
    async with asyncio.timeout(20):
        task = asyncio.create_task(first.run(stop1))
        await feed1.done.wait()
        stop1.set()
        assert await task == 0
    before = states(first)
    assert before["demo"]["positions"], "the position must still be open"
    assert before["demo"]["positions"][0]["markPrice"] == "57990"
    unsent = {
        alert_id: json.loads(payload)
        for alert_id, payload in journal_rows(
            data_dir,
            "SELECT alert_id, payload FROM outbox "
            "WHERE sent_ts IS NULL AND topic LIKE '%/alerts/%'",
        )
    }
    assert unsent, "the first run must leave alerts in the outbox"

    mosquitto.start()
    feed2 = ScriptFeed([])
    second = Daemon(config, feed_factory=factory(feed2), initial_commands=SEED)
    stop2 = asyncio.Event()
    async with asyncio.timeout(20):
        topics = ["guardbot/t1/alerts/#", "guardbot/t1/status"]
        async with Subscriber(mosquitto, topics) as sub:
            task = asyncio.create_task(second.run(stop2))
            await second.ready.wait()
            assert states(second) == before  # initial_commands were not applied again
            await sub.until(lambda _t, _p: len(sub.alerts()) == len(unsent))
            stop2.set()
            assert await task == 0
            # Mosquitto keeps one publisher's order: offline comes after every alert.
            await sub.until(lambda t, p: t.endswith("/status") and p["state"] == "offline")
    delivered = [p["alertId"] for p in sub.alerts()]
    assert sorted(delivered) == sorted(unsent)  # each once, with its stored alertId
    assert {p["alertId"]: p for p in sub.alerts()} == unsent
    assert journal_rows(data_dir, "SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL") == [(0,)]


@pytest.mark.integration
async def test_run_subprocess_sigterm(tmp_path: Path, mosquitto: Mosquitto) -> None:
    ticks = tmp_path / "ticks.jsonl"
    lines = [
        json.dumps({"ts": T0 + i * 10, **to_jsonable(tick_body(TickCmd(BTC, Decimal(60000 - i))))})
        for i in range(20)
    ]
    ticks.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = write_config(tmp_path, mosquitto)
    text = path.read_text(encoding="utf-8")
    text = text.replace('mode = "sim"', f'mode = "replay"\nreplay_file = "{ticks}"\nspeed = 100\n')
    path.write_text(text, encoding="utf-8")
    status = "guardbot/t1/status"
    async with asyncio.timeout(30):
        async with Subscriber(mosquitto, [status]) as sub:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "guardbot",
                "run",
                "-c",
                str(path),
                cwd=REPO,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            await sub.until(lambda _t, p: p["state"] == "online")
            process.send_signal(signal.SIGTERM)
            _out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
        async with Subscriber(mosquitto, [status]) as fresh:
            await fresh.until(lambda _t, _p: True)  # the retained status
    assert fresh.received[0][1]["state"] == "offline"
    assert (tmp_path / "data" / DB_FILENAME).exists()


@pytest.mark.integration
async def test_embedded_broker_always_on_a_taken_port_fails_in_one_line(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    path = write_config(tmp_path, mosquitto)
    text = path.read_text(encoding="utf-8").replace('"never"', '"always"')
    path.write_text(text, encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "guardbot", "run", "-c", str(path), cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        _out, err = await process.communicate()
    assert process.returncode == 1
    lines = err.decode().splitlines()
    assert len(lines) == 1 and f"{mosquitto.host}:{mosquitto.port}" in lines[0], lines


async def test_embedded_broker_serves_a_fresh_machine(tmp_path: Path) -> None:
    """``embedded_broker = "auto"`` with nothing listening: the daemon brings its own broker."""
    from tests.broker import _free_port

    class NoBroker:
        host = "127.0.0.1"
        port = _free_port()

    broker: Any = NoBroker()
    config = config_for(tmp_path, broker)
    config = dataclasses.replace(
        config, mqtt=dataclasses.replace(config.mqtt, embedded_broker="auto")
    )
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED)
    stop = asyncio.Event()
    async with asyncio.timeout(30):
        task = asyncio.create_task(daemon.run(stop))
        await daemon.ready.wait()
        async with Subscriber(broker, ["guardbot/t1/alerts/#", "guardbot/t1/status"]) as sub:
            feed.push("59500", "59000", "58500", "58000", "57900", "57800", "57700")
            await sub.until(lambda topic, _p: topic.endswith("/liquidation"))
        stop.set()
        assert await task == 0
    assert [p["type"] for p in sub.alerts()][-1] == "liquidation"
    assert any(t.endswith("/status") and p["state"] == "online" for t, p in sub.received)


async def test_bad_config_one_problem_per_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[feed]\nmode = 'nope'\n", encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "guardbot", "run", "-c", str(path), cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(20):
        _out, err = await process.communicate()
    assert process.returncode == 2
    lines = err.decode().splitlines()
    # The header, then one problem per line (issue 11: they were joined into one line).
    assert lines == [
        f"guardbot run: invalid configuration {path} (1 problem):",
        "  feed.mode: must be one of ccxt, replay, sim, plugin, got 'nope'",
    ], lines


# --------------------------------------------------------------------------- logging (no broker)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_logging_redacts_secrets(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("auto", "info", stream=out)  # a StringIO is not a TTY: JSON
    log = structlog.get_logger("t")
    log.info("connect", token="S3CR1", apiKey="S3CR2", nested={"Password": "S3CR3", "ok": 1}, n=2)
    log.debug("hidden below the level")
    logging.getLogger("guardbot.x").warning("stdlib %s", "too")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert first["event"] == "connect" and first["level"] == "info" and first["n"] == 2
    assert first["token"] == first["apiKey"] == REDACTED
    assert first["nested"] == {"Password": REDACTED, "ok": 1}
    assert lines[1]["event"] == "stdlib too" and lines[1]["level"] == "warning"
    assert "S3CR" not in out.getvalue()


def test_console_logging(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("console", "debug", stream=out)
    structlog.get_logger("t").debug("hello", password="S3CR4")
    text = out.getvalue()
    assert "hello" in text and REDACTED in text and "S3CR" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_console_logs_show_numbers_for_people_json_logs_exact(restore_logging: None) -> None:
    # Issue 11 item 8: a liquidation price to 40 digits in a log line people read.
    liq = "56924.36412315930388219544846050870147256"
    fields = {"liquidationPrice": liq, "marginRatio": Decimal("0.75164835164835164835"),
              "markPrice": "57000", "contracts": "0.3", "id": "o-1.1"}  # fmt: skip
    out = io.StringIO()
    configure_logging("console", "info", stream=out)
    structlog.get_logger("t").warning("margin_alert", **fields)
    text = out.getvalue()
    assert "liquidationPrice=56924.364 " in text and liq not in text
    assert "marginRatio=0.75164835 " in text
    assert "markPrice=57000" in text and "contracts=0.3" in text and "id=o-1.1" in text
    out = io.StringIO()
    configure_logging("json", "info", stream=out)
    structlog.get_logger("t").warning("margin_alert", **{**fields, "marginRatio": "0.1234567891"})
    line = json.loads(out.getvalue())
    assert line["liquidationPrice"] == liq and line["marginRatio"] == "0.1234567891"


@pytest.mark.integration
async def test_feed_crash_is_logged_and_the_feed_restarted(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """An unexpected error in the feed (a library bug, say) restarts the feed with backoff; the
    daemon, its state and its alerts go on."""

    class CrashOnce(ScriptFeed):
        async def updates(self) -> AsyncIterator[FeedEvent]:
            yield TickUpdate(T0 + 500, TickCmd(BTC, Decimal("59900")))
            raise RuntimeError("feed library bug")

    feeds: list[ScriptFeed] = [
        CrashOnce([]),
        ScriptFeed(["59500", "59000", "58500", "58000", "57900", "57800", "57700"]),
    ]
    config = config_for(tmp_path, mosquitto)
    daemon = Daemon(config, feed_factory=lambda _c: feeds.pop(0), initial_commands=SEED)
    stop = asyncio.Event()
    async with asyncio.timeout(20):
        async with Subscriber(mosquitto, ["guardbot/t1/alerts/#"]) as sub:
            task = asyncio.create_task(daemon.run(stop))
            await sub.until(lambda topic, _p: topic.endswith("/liquidation"))
            stop.set()
            assert await task == 0
    assert daemon.feed_restarts == 1 and not feeds


STRATEGY = '''
import ccxt
from guardbot.paper import Strategy


class BuyOnce(Strategy):
    """Buys on the first tick with a stop-loss; keeps what it was told."""

    seen = []

    async def on_tick(self, exchange, ticker):
        if not self.params.get("done"):
            self.params["done"] = True
            order = await exchange.create_order(
                ticker["symbol"], "market", "buy", self.params["amount"], None,
                {"stopLoss": {"triggerPrice": (ticker["last"] or ticker["markPrice"]) * 0.9}},
            )
            BuyOnce.seen.append(("order", order["status"], order["filled"]))
            try:
                await exchange.create_order(ticker["symbol"], "market", "buy", 1000)
            except ccxt.InsufficientFunds as exc:
                BuyOnce.seen.append(("refused", str(exc).split(":")[0]))

    async def on_event(self, exchange, event):
        BuyOnce.seen.append(("event", event["type"]))
'''


@pytest.mark.integration
async def test_strategy_runs_live_in_the_daemon(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """A ccxt strategy inside the daemon: its orders are journaled (a restart keeps them), its
    refusals raise ccxt exceptions and are alerts, and it hears the daemon's events."""
    path = tmp_path / "buy_once.py"
    path.write_text(STRATEGY, encoding="utf-8")
    config_path = write_config(
        tmp_path, mosquitto, extra=f'[strategy]\npath = "{path}:BuyOnce"\nparams = {{amount = 0.1}}'
    )
    config = load_config(config_path, {})
    feed = ScriptFeed(["60000", "59000", "58000"])
    daemon = Daemon(config, feed_factory=factory(feed))
    stop = asyncio.Event()
    async with asyncio.timeout(20):
        task = asyncio.create_task(daemon.run(stop))
        await feed.done.wait()
        stop.set()
        assert await task == 0
    assert daemon.runner is not None and daemon.runner.errors == 0
    seen = daemon.runner.strategy.seen  # type: ignore[attr-defined]
    assert ("order", "closed", 0.1) in seen
    assert ("refused", "guardbot MARGIN_INSUFFICIENT") in seen
    before = states(daemon)
    assert before["demo"]["positions"][0]["contracts"] == "0.1"
    kinds = [k for (k,) in journal_rows(tmp_path / "data", "SELECT kind FROM inputs")]
    assert "order" in kinds and "refused_command" in kinds
    # Restart without the strategy: the position it opened is still there.
    plain = dataclasses.replace(config, strategy=None)
    again = Daemon(plain, feed_factory=factory(ScriptFeed([])))
    stop = asyncio.Event()
    async with asyncio.timeout(20):
        task = asyncio.create_task(again.run(stop))
        await again.ready.wait()
        stop.set()
        assert await task == 0
    assert states(again) == before
