"""MQTT control commands end to end against a private Mosquitto: the daemon side
(:class:`ControlListener` + :func:`handle_command` + a real engine) and the client side
(``guardbot order`` / ``cancel`` / ``leverage`` / ``status`` called in-process).

The CLI functions call ``asyncio.run`` themselves, so they run in a worker thread
(``asyncio.to_thread``) while the listener serves on the test's loop. Every wait is bounded by
``asyncio.timeout``; readiness is the listener's ``subscribed`` event, never a sleep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from guardbot.cli.control import (
    add_cancel_arguments,
    add_leverage_arguments,
    add_order_arguments,
    add_status_arguments,
    run_cancel,
    run_leverage,
    run_order,
    run_status,
)
from guardbot.core.commands import parse_command
from guardbot.core.events import Event
from guardbot.errors import ConfigError, StoreError
from guardbot.mqtt.client import BrokerSettings
from guardbot.mqtt.commands import CommandGate, RecentReplies
from guardbot.mqtt.listener import ControlListener, handle_command
from tests.broker import Mosquitto, _free_port
from tests.core.enginekit import BTC, ETH, Sim

pytestmark = pytest.mark.integration

BASE = "guardbot/t1"
TOKEN = "tok-" + "x" * 28
TOKEN_ENV = "GUARDBOT_TEST_CONTROL_TOKEN"
LIMIT = 30.0
NOW_MS = 1_700_000_000_000


class Daemonish:
    """The daemon's side without the daemon: a real engine, a journal that is a list."""

    def __init__(self, *, fail_with: Exception | None = None) -> None:
        self.sim = Sim(wallet=10_000, leverage=10)
        self.sim.tick(30_000, BTC, bid=29_999, ask=30_001)
        self.sim.tick(2_000, ETH)
        self.journal: list[dict[str, Any]] = []
        self.gate = CommandGate(TOKEN, [BTC, ETH], accounts=["a"])
        self.recent = RecentReplies()
        self.fail_with = fail_with

    async def apply(self, body: Mapping[str, Any]) -> Sequence[Event]:
        if self.fail_with is not None:
            raise self.fail_with
        events = self.sim.engine.apply(self.sim.ts, parse_command(body))
        self.journal.append(dict(body))
        return events

    async def handler(self, payload: bytes) -> Mapping[str, Any]:
        return await handle_command(self.gate, payload, self.apply, recent=self.recent)


@asynccontextmanager
async def serving(
    broker: Mosquitto, daemon: Daemonish, **kwargs: Any
) -> AsyncIterator[tuple[ControlListener, asyncio.Task[None]]]:
    settings = BrokerSettings(
        broker.host,
        broker.port,
        **{k: kwargs.pop(k) for k in ("timeout", "keepalive") if k in kwargs},
    )
    listener = ControlListener(settings, BASE, daemon.handler, **kwargs)
    task = asyncio.create_task(listener.run())
    try:
        await listener.subscribed.wait()
        yield listener, task
    finally:
        await listener.close(timeout=5.0)
        if not task.done():
            task.cancel()
        await asyncio.wait([task])


@asynccontextmanager
async def client(broker: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port) as c:
        yield c


async def request(
    c: aiomqtt.Client, obj: Mapping[str, Any] | bytes | str, reply_level: str
) -> dict[str, Any]:
    """Publish ``obj`` on ``.../cmd`` and return the reply on ``.../reply/<reply_level>``."""
    topic = f"{BASE}/reply/{reply_level}"
    await c.subscribe(topic, qos=1)
    raw = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    await c.publish(f"{BASE}/cmd", raw, qos=1)
    async for message in c.messages:
        if message.topic.value == topic:
            assert message.retain is False
            await c.unsubscribe(topic)
            reply: dict[str, Any] = json.loads(bytes(message.payload))
            return reply
    raise AssertionError("unreachable")


def order(rid: str, token: str = TOKEN, **fields: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "requestId": rid,
        "token": token,
        "type": "order",
        "account": "a",
        "id": f"o-{rid}",
        "symbol": BTC,
        "orderType": "market",
        "side": "buy",
        "amount": "0.1",
    }
    obj.update(fields)
    return obj


# --- the listener ------------------------------------------------------------------------------


async def test_order_is_applied_and_replied(mosquitto: Mosquitto) -> None:
    daemon = Daemonish()
    async with asyncio.timeout(LIMIT), serving(mosquitto, daemon), client(mosquitto) as c:
        reply = await request(c, order("r1"), "r1")
    assert reply["requestId"] == "r1" and reply["ok"] is True
    types = [e["type"] for e in reply["events"]]
    assert types[:2] == ["order_accepted", "fill"]
    fill = reply["events"][1]
    assert (fill["price"], fill["amount"]) == ("30001", "0.1")  # exact strings, the ask
    assert daemon.sim.position(BTC).contracts == Decimal("0.1")
    assert daemon.journal == [
        {k: v for k, v in order("r1").items() if k not in ("requestId", "token")}
    ]
    assert "token" not in json.dumps(reply)


async def test_bad_token_is_refused_and_changes_nothing(mosquitto: Mosquitto) -> None:
    daemon = Daemonish()
    before = daemon.sim.engine.state(daemon.sim.account())
    async with asyncio.timeout(LIMIT), serving(mosquitto, daemon), client(mosquitto) as c:
        wrong = await request(c, order("r2", token="nope"), "r2")
        missing = await request(c, {k: v for k, v in order("r3").items() if k != "token"}, "r3")
    assert wrong == {"requestId": "r2", "ok": False, "code": "unauthorized",
                     "reason": "token: missing or wrong"}  # fmt: skip
    assert missing["code"] == "unauthorized"
    assert daemon.journal == []
    assert daemon.sim.engine.state(daemon.sim.account()) == before


async def test_malformed_commands_get_coded_replies(mosquitto: Mosquitto) -> None:
    daemon = Daemonish()
    async with asyncio.timeout(LIMIT), serving(mosquitto, daemon), client(mosquitto) as c:
        garbage = await request(c, b"{oops", "invalid")
        bad_id = await request(c, order("no/good"), "invalid")
        nan = await request(c, json.dumps(order("r4")).replace('"0.1"', "NaN"), "r4")
        tick = await request(c, {"requestId": "r5", "token": TOKEN, "type": "tick"}, "r5")
        symbol = await request(c, order("r6", symbol="DOGE/USDT:USDT"), "r6")
        engine_refusal = await request(c, order("r7", amount="10"), "r7")
    assert (garbage["requestId"], garbage["code"]) == (None, "bad_json")
    assert bad_id["code"] == "bad_request_id"
    assert (nan["code"], nan["reason"]) == ("bad_json", "amount: must be a finite number")
    assert tick["code"] == "forbidden_command"
    assert symbol["code"] == "unknown_symbol"
    assert daemon.journal[0]["amount"] == "10"  # the engine's refusal is journaled, ...
    assert engine_refusal["ok"] is False and engine_refusal["code"] == "MARGIN_INSUFFICIENT"
    assert [e["type"] for e in engine_refusal["events"]] == ["order_rejected"]
    assert daemon.sim.position(BTC) is None  # ... and changed nothing


async def test_commands_are_answered_in_order_and_request_ids_are_idempotent(
    mosquitto: Mosquitto,
) -> None:
    daemon = Daemonish()
    rids = [f"seq-{i}" for i in range(5)]
    async with (
        asyncio.timeout(LIMIT),
        serving(mosquitto, daemon) as (listener, _),
        client(mosquitto) as c,
    ):
        await c.subscribe(f"{BASE}/reply/+", qos=1)
        for rid in [*rids, rids[0]]:  # the last is a redelivery of the first
            await c.publish(f"{BASE}/cmd", json.dumps(order(rid)), qos=1)
        replies = []
        async for message in c.messages:
            replies.append(json.loads(bytes(message.payload)))
            if len(replies) == len(rids) + 1:
                break
    assert [r["requestId"] for r in replies] == [*rids, rids[0]]
    assert replies[-1] == replies[0]
    assert len(daemon.journal) == len(rids)  # applied once each
    assert daemon.sim.position(BTC).contracts == Decimal("0.5")
    assert listener.handled == len(rids) + 1


async def test_apply_failure_ends_run(mosquitto: Mosquitto) -> None:
    daemon = Daemonish(fail_with=StoreError(Path("journal.db"), "disk I/O error"))
    listener = ControlListener(BrokerSettings(mosquitto.host, mosquitto.port), BASE, daemon.handler)
    async with asyncio.timeout(LIMIT):
        task = asyncio.create_task(listener.run())
        await listener.subscribed.wait()
        async with client(mosquitto) as c:
            await c.publish(f"{BASE}/cmd", json.dumps(order("boom")), qos=1)
        with pytest.raises(StoreError, match="disk I/O error"):
            await task


async def test_apply_oserror_is_not_mistaken_for_a_lost_connection(mosquitto: Mosquitto) -> None:
    daemon = Daemonish(fail_with=OSError(28, "No space left on device"))
    listener = ControlListener(BrokerSettings(mosquitto.host, mosquitto.port), BASE, daemon.handler)
    async with asyncio.timeout(LIMIT):
        task = asyncio.create_task(listener.run())
        await listener.subscribed.wait()
        async with client(mosquitto) as c:
            await c.publish(f"{BASE}/cmd", json.dumps(order("boom")), qos=1)
        with pytest.raises(OSError, match="No space left"):
            await task


async def test_reconnects_after_broker_restart(mosquitto: Mosquitto) -> None:
    daemon = Daemonish()
    delays: list[float] = []
    backing_off = asyncio.Event()
    restarted = asyncio.Event()

    async def sleep(delay: float) -> None:
        delays.append(delay)
        backing_off.set()
        await restarted.wait()  # retry only once the broker is back: no polling

    async with (
        asyncio.timeout(LIMIT),
        serving(mosquitto, daemon, sleep=sleep, random=lambda: 0.5, timeout=2.0, keepalive=2) as (
            listener,
            _,
        ),
    ):
        mosquitto.stop()
        await backing_off.wait()  # the session ended and the listener waits to retry
        assert not listener.subscribed.is_set()
        mosquitto.start()
        restarted.set()
        await listener.subscribed.wait()
        async with client(mosquitto) as c:
            reply = await request(c, order("after"), "after")
    assert reply["ok"] is True
    assert delays and delays[0] == 0.25  # backoff_delay(0) with random 0.5
    assert listener.last_error is not None


# --- the CLI -----------------------------------------------------------------------------------


def write_config(tmp_path: Path, port: int, *, instance: str = "t1") -> str:
    path = tmp_path / "control.toml"
    path.write_text(
        f"""
[guardbot]
instance = "{instance}"

[exchange]
symbols = ["{BTC}", "{ETH}"]

[mqtt]
url = "mqtt://127.0.0.1:{port}"
embedded_broker = "never"

[control]
token_env = "{TOKEN_ENV}"
""",
        encoding="utf-8",
    )
    return str(path)


def args_for(add: Callable[[argparse.ArgumentParser], None], argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


async def run_cli(run: Callable[..., int], args: argparse.Namespace) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(run, args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.mark.usefixtures("token_env")
async def test_cli_order_leverage_cancel(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path, mosquitto.port)
    daemon = Daemonish()
    async with asyncio.timeout(LIMIT), serving(mosquitto, daemon):
        argv = [
            BTC,
            "buy",
            "0.2",
            "--price",
            "29000",
            "--account",
            "a",
            "--leverage",
            "20",
            "--margin-mode",
            "isolated",
            "--client-order-id",
            "lim-1",
            "-c",
            config,
        ]
        placed = await run_cli(run_order, args_for(add_order_arguments, argv))
        as_json = await run_cli(
            run_leverage,
            args_for(add_leverage_arguments, [ETH, "15", "--account", "a", "-c", config, "--json"]),
        )
        cancelled = await run_cli(
            run_cancel, args_for(add_cancel_arguments, ["lim-1", "--account", "a", "-c", config])
        )
    code, out, err = placed
    assert (code, err) == (0, "")
    assert out.count("ok (request ") == 3  # margin mode, leverage, order
    assert "lim-1: limit buy 0.2 BTC/USDT:USDT @ 29,000" in out
    assert [b["type"] for b in daemon.journal] == [
        "set_margin_mode",
        "set_leverage",
        "order",
        "set_leverage",
        "cancel",
    ]
    assert daemon.journal[2]["price"] == "29000" and daemon.journal[2]["amount"] == "0.2"
    code, out, err = as_json
    assert (code, err) == (0, "")
    reply = json.loads(out)
    assert reply["ok"] is True and reply["events"][0]["leverage"] == "15"
    code, out, err = cancelled
    assert (code, err) == (0, "")
    assert "order_cancelled" in out
    assert daemon.sim.account().orders == {}


@pytest.mark.usefixtures("token_env")
async def test_cli_refusal_exits_1(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path, mosquitto.port)
    daemon = Daemonish()
    async with asyncio.timeout(LIMIT), serving(mosquitto, daemon):
        code, out, err = await run_cli(
            run_order,
            args_for(add_order_arguments, [BTC, "buy", "10", "--account", "a", "-c", config]),
        )
    assert code == 1
    assert "refused MARGIN_INSUFFICIENT" in out
    assert err.startswith("guardbot order: refused: MARGIN_INSUFFICIENT: ")
    assert err.count("\n") == 1


@pytest.mark.usefixtures("token_env")
async def test_cli_wrong_token_exits_1(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    config = write_config(tmp_path, mosquitto.port)
    daemon = Daemonish()
    async with asyncio.timeout(LIMIT), serving(mosquitto, daemon):
        code, _, err = await run_cli(
            run_cancel, args_for(add_cancel_arguments, ["x", "-c", config])
        )
    assert code == 1 and "unauthorized" in err and "not-the-token" not in err


@pytest.mark.usefixtures("token_env")
async def test_cli_no_daemon_times_out(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path, mosquitto.port)
    async with asyncio.timeout(LIMIT):
        code, out, err = await run_cli(
            run_cancel, args_for(add_cancel_arguments, ["x", "-c", config, "--timeout", "0.5"])
        )
    assert (code, out) == (1, "")
    assert err.startswith("guardbot cancel: no reply from the daemon within 0.5 s")


@pytest.mark.usefixtures("token_env")
async def test_cli_unreachable_broker_exits_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, _free_port())
    async with asyncio.timeout(LIMIT):
        code, out, err = await run_cli(
            run_cancel, args_for(add_cancel_arguments, ["x", "-c", config, "--timeout", "5"])
        )
    assert (code, out) == (1, "")
    assert err.startswith("guardbot cancel: cannot connect to mqtt://127.0.0.1:")
    assert err.count("\n") == 1


async def test_cli_missing_token_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    config = write_config(tmp_path, _free_port())
    with pytest.raises(ConfigError, match=TOKEN_ENV):
        run_cancel(args_for(add_cancel_arguments, ["x", "-c", config]))


async def publish_retained(broker: Mosquitto, messages: Mapping[str, Any]) -> None:
    async with client(broker) as c:
        for topic, obj in messages.items():
            await c.publish(topic, json.dumps(obj), qos=1, retain=True)


async def test_cli_status_table_from_retained_messages(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    instance = f"s{uuid.uuid4().hex[:8]}"
    base = f"guardbot/{instance}"
    config = write_config(tmp_path, mosquitto.port, instance=instance)
    status = {
        "state": "online",
        "ts": NOW_MS,
        "version": "0.9.1",
        # A tick of just now: status calls a feed fresh only within feed.stale_after_s.
        "feeds": {
            BTC: {"stale": False, "lastTs": int(time.time() * 1000)},
            ETH: {"stale": True, "lastTs": None},
        },
        "outbox": {"depth": 2, "oldestAgeMs": 1500},
    }
    snapshot = {
        "account": "demo",
        "ts": NOW_MS,
        "wallet": "10000",
        "balance": {"USDT": {"free": "8000", "used": "2000", "total": "10000"}},
        "marginRatio": "0.05",
        "tradingState": "active",
        "positions": [
            {"symbol": BTC, "side": "short", "contracts": "0.25", "entryPrice": "30000",
             "markPrice": "30500", "unrealizedPnl": "-125", "liquidationPrice": "61000"},
        ],
    }  # fmt: skip
    async with asyncio.timeout(LIMIT):
        await publish_retained(
            mosquitto, {f"{base}/status": status, f"{base}/accounts/demo": snapshot}
        )
        code, out, err = await run_cli(run_status, args_for(add_status_arguments, ["-c", config]))
        as_json = await run_cli(
            run_status, args_for(add_status_arguments, ["-c", config, "--json"])
        )
    assert (code, err) == (0, "")
    assert out.startswith("daemon   online  version 0.9.1  status age ")
    assert f"{BTC}  fresh" in out and f"{ETH}  stale  -" in out
    assert "outbox   depth 2  oldest 1.5s" in out
    assert "demo     10,000  9,875   5%" in out
    assert "short  0.25       30,000  30,500  61,000     100%" in out
    code, out, err = as_json
    assert (code, err) == (0, "")
    assert json.loads(out) == {"status": status, "accounts": {"demo": snapshot}}


async def test_cli_status_without_daemon_exits_1(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path, mosquitto.port, instance=f"none{uuid.uuid4().hex[:6]}")
    async with asyncio.timeout(LIMIT):
        code, out, err = await run_cli(
            run_status, args_for(add_status_arguments, ["-c", config, "--timeout", "0.5"])
        )
    assert (code, out) == (1, "")
    assert "no status for" in err


async def test_cli_status_does_not_wait_for_live_traffic(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    instance = f"live{uuid.uuid4().hex[:6]}"
    base = f"guardbot/{instance}"
    config = write_config(tmp_path, mosquitto.port, instance=instance)
    stop = asyncio.Event()

    async def chatter() -> None:
        """A busy daemon: a live (not retained on delivery) status every 50 ms until stopped."""
        async with client(mosquitto) as c:
            for _ in range(2000):  # bounded: 100 s at most, stopped long before
                await c.publish(f"{base}/status", json.dumps({"state": "online"}), retain=True)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await stop.wait()
                if stop.is_set():
                    return

    async with asyncio.timeout(LIMIT):
        task = asyncio.create_task(chatter())
        try:
            started = asyncio.get_running_loop().time()
            code, out, _ = await run_cli(
                run_status, args_for(add_status_arguments, ["-c", config, "--timeout", "20"])
            )
            elapsed = asyncio.get_running_loop().time() - started
        finally:
            stop.set()
            await task
    assert code == 0 and out.startswith("daemon   online")
    assert elapsed < 10  # the quiet period counts retained messages only, not live ones
