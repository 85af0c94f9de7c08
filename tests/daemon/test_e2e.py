"""End to end, the daemon as a user runs it: ``python -m guardbot run -c FILE`` in a subprocess.

Stand-in Binance USDⓈ-M (real ccxt.pro code path) -> daemon -> private Mosquitto -> this test.
A position is opened through the MQTT command topic, the stand-in's mark is pushed down, and the
test receives ``margin_alert`` then ``liquidation``; the daemon is stopped (SIGTERM, or kill -9)
and restarted on the same data directory, and its state must be what it was.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Self

import aiomqtt
import pytest

from tests.broker import Mosquitto
from tests.daemon.test_daemon import REPO, journal_rows
from tests.daemon.test_daemon_ccxt import exchange_toml
from tests.standin.binance import StandinBinance

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
TOKEN = "e2e-" + uuid.uuid4().hex
BASE = "guardbot/e2e"


def write_config(tmp_path: Path, broker: Mosquitto, standin: StandinBinance) -> Path:
    path = tmp_path / "e2e.toml"
    path.write_text(
        f"""
[guardbot]
instance = "e2e"
data_dir = "{tmp_path / "data"}"
log_format = "json"
log_level = "info"

{exchange_toml(standin)}

[feed]
mode = "ccxt"
stale_after_s = 5

[accounts.main]
wallet = 1000
default_margin_mode = "cross"
default_leverage = 20
taker_fee = 0.0005
maker_fee = 0.0002

[accounts.keep]
wallet = 5000
default_margin_mode = "isolated"
default_leverage = 5
taker_fee = 0.0005
maker_fee = 0.0002

[mqtt]
url = "mqtt://{broker.host}:{broker.port}"
embedded_broker = "never"

[control]
enabled = true
token_env = "E2E_TOKEN"

[metrics]
listen = "127.0.0.1:0"
""",
        encoding="utf-8",
    )
    return path


class DaemonProcess:
    """``python -m guardbot run -c FILE``; stderr/stdout kept for failure messages."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self.log = config.parent / "daemon.log"

    async def start(self) -> Self:
        env = {**os.environ, "E2E_TOKEN": TOKEN}
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "guardbot", "run", "-c", str(self.config),
                cwd=REPO, env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        return self

    async def stop(self, signum: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        return await self.process.wait()

    def tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-3000:]

    async def kill_if_running(self) -> None:
        """What a test's ``finally`` does: a daemon it left running is killed and reaped."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


class Mqtt:
    """One client for the whole test: collects every message of its subscriptions in order."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = aiomqtt.Client(broker.host, broker.port)
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.client.__aenter__()
        for topic in (
            f"{BASE}/alerts/#",
            f"{BASE}/status",
            f"{BASE}/accounts/+",
            f"{BASE}/reply/+",
        ):
            await self.client.subscribe(topic, qos=1)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._reader is not None
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self.client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            item = (str(message.topic), json.loads(message.payload))
            async with self._changed:
                self.messages.append(item)
                self._changed.notify_all()

    async def wait(
        self, predicate: Callable[[str, dict[str, Any]], bool], *, start: int = 0
    ) -> tuple[str, dict[str, Any]]:
        """The first message at index >= ``start`` satisfying ``predicate`` (waits for it)."""
        async with self._changed:
            while True:
                for topic, payload in self.messages[start:]:
                    if predicate(topic, payload):
                        return topic, payload
                await self._changed.wait()

    def alerts(self) -> list[dict[str, Any]]:
        return [p for t, p in self.messages if "/alerts/" in t]

    async def command(self, body: dict[str, Any]) -> dict[str, Any]:
        request_id = uuid.uuid4().hex
        mark = len(self.messages)
        payload = {"token": TOKEN, **body, "requestId": request_id}
        await self.client.publish(f"{BASE}/cmd", json.dumps(payload), qos=1)
        _topic, reply = await self.wait(lambda t, _p: t == f"{BASE}/reply/{request_id}", start=mark)
        return reply

    async def command_when_priced(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send ``body`` until the daemon has a price for it (PRICE_STALE before the first tick)."""
        for _ in range(100):
            reply = await self.command(body)
            if reply.get("code") != "PRICE_STALE":
                return reply
            await asyncio.sleep(0.05)  # bounded: 100 tries
        raise AssertionError("the daemon never got a price")

    async def online(self, *, start: int) -> None:
        await self.wait(lambda t, p: t.endswith("/status") and p["state"] != "offline", start=start)


def order(account: str, oid: str, symbol: str, side: str, amount: str, **params: Any) -> Any:
    body: dict[str, Any] = {
        "type": "order", "account": account, "id": oid, "symbol": symbol,
        "orderType": "market", "side": side, "amount": amount,
    }  # fmt: skip
    if params:
        body["params"] = params
    return body


async def prices(standin: StandinBinance, btc: str, eth: str = "3000") -> None:
    await standin.set_price(BTC, mark=btc, bid=str(Decimal(btc) - 1), ask=str(Decimal(btc) + 1))
    await standin.set_price(ETH, mark=eth, bid=str(Decimal(eth) - 1), ask=str(Decimal(eth) + 1))


def snapshot(mqtt: Mqtt, account: str, *, start: int = 0) -> dict[str, Any]:
    found = [p for t, p in mqtt.messages[start:] if t == f"{BASE}/accounts/{account}"]
    assert found, f"no snapshot of {account}"
    latest = dict(found[-1])
    latest.pop("ts")
    return latest


async def open_positions(mqtt: Mqtt, standin: StandinBinance) -> None:
    await standin.wait_subscribed("btcusdt@markPrice@1s", timeout=20)
    await standin.wait_subscribed("ethusdt@markPrice@1s", timeout=20)
    await prices(standin, "60000")
    reply = await mqtt.command_when_priced(order("main", "m1", BTC, "buy", "0.3"))
    assert reply["ok"], reply
    assert [e["type"] for e in reply["events"]].count("fill") == 1
    # An isolated ETH short with a stop-loss in the other account: it must survive a restart.
    reply = await mqtt.command(
        order("keep", "k1", ETH, "sell", "1", stopLossPrice="3300", takeProfitPrice="2700")
    )
    assert reply["ok"], reply
    # A refused command changes nothing and says why.
    reply = await mqtt.command({**order("keep", "k2", ETH, "buy", "1"), "token": "wrong"})
    assert reply["ok"] is False and reply["code"] == "unauthorized"


async def started_with_positions(
    daemon: DaemonProcess, mqtt: Mqtt, standin: StandinBinance
) -> None:
    """Start ``daemon`` and, once it is online, open the positions of :func:`open_positions`."""
    await daemon.start()
    await mqtt.online(start=0)
    await open_positions(mqtt, standin)


async def positions_shown(mqtt: Mqtt) -> None:
    """Both accounts' snapshots show their positions (once :func:`open_positions` is done)."""
    for account in ("main", "keep"):
        await mqtt.wait(lambda t, p, a=account: t.endswith(f"/accounts/{a}") and p["positions"])


async def restarted(daemon: DaemonProcess, mqtt: Mqtt) -> dict[str, dict[str, Any]]:
    """Start ``daemon`` again; both accounts' first snapshots after it is online."""
    restart = len(mqtt.messages)
    await daemon.start()
    await mqtt.online(start=restart)
    for account in ("main", "keep"):
        await mqtt.wait(lambda t, _p, a=account: t.endswith(f"/accounts/{a}"), start=restart)
    return {a: snapshot(mqtt, a, start=restart) for a in ("main", "keep")}


def fill_ids(data: Path) -> list[str]:
    """The order ids of every fill journaled in ``data``, in journal order."""
    rows = journal_rows(data, "SELECT body FROM events WHERE type = 'fill'")
    return [json.loads(body)["id"] for (body,) in rows]


async def test_command_alerts_liquidation_sigterm_restart(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinance
) -> None:
    daemon = DaemonProcess(write_config(tmp_path, mosquitto, standin))
    try:
        async with asyncio.timeout(120), Mqtt(mosquitto) as mqtt:
            await started_with_positions(daemon, mqtt, standin)
            # 0.3 BTC long at 20x on 1,000 USDT: push the mark down until it is liquidated.
            for mark in range(59500, 55000, -250):
                await prices(standin, str(mark))
                if any(p["type"] == "liquidation" for p in mqtt.alerts()):
                    break
                await mqtt.wait(lambda t, p: t.endswith("/accounts/main"), start=len(mqtt.messages))
            await mqtt.wait(lambda t, p: "/alerts/" in t and p["type"] == "liquidation")
            kinds = [p["type"] for p in mqtt.alerts() if p.get("account") == "main"]
            assert kinds.index("margin_alert") < kinds.index("liquidation")
            assert [p["severity"] for p in mqtt.alerts() if p["type"] == "margin_alert"][-1] == (
                "margin_call"
            )
            # Let the final state be published, then stop cleanly.
            await mqtt.wait(
                lambda t, p: t.endswith("/accounts/main") and p["positions"] == [],
            )
            await mqtt.wait(lambda t, p: t.endswith("/accounts/keep") and p["positions"] != [])
            assert await daemon.stop(signal.SIGTERM) == 0, daemon.tail()
            await mqtt.wait(lambda t, p: t.endswith("/status") and p["state"] == "offline")
            before = {a: snapshot(mqtt, a, start=0) for a in ("main", "keep")}
            assert before["main"]["positions"] == []
            (keep,) = before["keep"]["positions"]
            assert keep["side"] == "short" and keep["marginMode"] == "isolated"

            after = await restarted(daemon, mqtt)
            assert after == before
            assert await daemon.stop(signal.SIGTERM) == 0, daemon.tail()
    finally:
        await daemon.kill_if_running()
    # Nothing applied twice: one fill per command order.
    fills = fill_ids(tmp_path / "data")
    assert fills.count("m1") == 1 and fills.count("k1") == 1


async def test_kill_9_mid_stream_loses_nothing_and_applies_nothing_twice(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinance
) -> None:
    data = tmp_path / "data"
    daemon = DaemonProcess(write_config(tmp_path, mosquitto, standin))
    try:
        async with asyncio.timeout(150), Mqtt(mosquitto) as mqtt:
            await started_with_positions(daemon, mqtt, standin)
            # Swing the mark across the first alert levels and back, over and over: alerts flow
            # continuously, and the daemon is killed in the middle of that stream.
            path = [str(m) for m in (57600, 57400, 57100, 57000, 57300, 57600)]
            for step in range(6 * len(path)):
                await prices(standin, path[step % len(path)])
                await asyncio.sleep(0.01)  # a live-like pace; the daemon keeps up
                if step == 3 * len(path) + 2:
                    assert await daemon.stop(signal.SIGKILL) == -signal.SIGKILL
                    killed_at = len(mqtt.messages)
                    await daemon.start()
                    await mqtt.online(start=killed_at)
            # Everything journaled reaches the subscriber, and the run ends cleanly.
            assert await daemon.stop(signal.SIGTERM) == 0, daemon.tail()
            await mqtt.wait(lambda t, p: t.endswith("/status") and p["state"] == "offline",
                            start=killed_at)  # fmt: skip
    finally:
        await daemon.kill_if_running()
    journaled = [
        a
        for (a,) in journal_rows(
            data, "SELECT alert_id FROM outbox WHERE topic LIKE '%/alerts/%' ORDER BY id"
        )
    ]
    unsent = journal_rows(data, "SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL")
    assert unsent == [(0,)]
    delivered = [p["alertId"] for p in mqtt.alerts()]
    assert set(delivered) == set(journaled)
    assert len(journaled) >= 4, "the scenario must produce alerts on both sides of the kill"
    # At least once: rows acknowledged by the broker but not yet marked sent when the kill came
    # are published again after the restart (same alertId, so consumers drop them). Rows are
    # marked a batch (one read of the outbox) at a time, so those are consecutive rows of one
    # batch, under load more than one; nothing else is doubled.
    doubled = sorted(journaled.index(a) for a in set(delivered) if delivered.count(a) > 1)
    assert doubled == list(range(doubled[0], doubled[0] + len(doubled))) if doubled else True, (
        doubled
    )
    assert sorted(fill_ids(data)) == ["k1", "m1"]
    # The restarted daemon carried the positions over: the last snapshot still has both.
    main = snapshot(mqtt, "main")
    keep = snapshot(mqtt, "keep")
    assert [(p["symbol"], p["side"], p["contracts"]) for p in main["positions"]] == [
        (BTC, "long", "0.3")
    ]
    assert [(p["symbol"], p["side"], p["contracts"]) for p in keep["positions"]] == [
        (ETH, "short", "1")
    ]
