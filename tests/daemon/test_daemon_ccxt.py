"""The daemon on the real ccxt code path: stand-in Binance -> ccxt.pro -> daemon -> Mosquitto.

The daemon is configured the way a user would configure it, with ``[feed] mode = "ccxt"`` and the
stand-in's URLs in ``[exchange.ccxt]``; nothing of the feed is injected.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guardbot.config import load_config
from guardbot.daemon import tier_tables
from guardbot.daemon.service import Daemon
from tests.broker import Mosquitto
from tests.daemon.test_daemon import Subscriber, journal_rows
from tests.standin.binance import StandinBinance

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def toml_value(value: Any) -> str:
    """A TOML inline value (enough for ccxt constructor configs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def exchange_toml(standin: StandinBinance) -> str:
    """``[exchange]`` (BTC and ETH on binanceusdm) and ``[exchange.ccxt]`` aimed at ``standin``."""
    ccxt_lines = "\n".join(
        f"{key} = {toml_value(value)}" for key, value in standin.ccxt_config().items()
    )
    return f"""[exchange]
id = "binanceusdm"
symbols = ["{BTC}", "{ETH}"]

[exchange.ccxt]
enableRateLimit = false
{ccxt_lines}"""


def daemon_sections(broker: Mosquitto) -> str:
    """The [feed], [accounts.main], [alerts], [mqtt] and [metrics] tables every live test uses."""
    return f"""[feed]
mode = "ccxt"
stale_after_s = 1.5
rest_poll_s = 0.2

[accounts.main]
wallet = 1000
default_margin_mode = "cross"
default_leverage = 20
maker_fee = 0.0002
taker_fee = 0.0005

[alerts]
margin_ratio_levels = [0.5, 0.7, 0.8]
hysteresis = 0.05

[mqtt]
url = "mqtt://{broker.host}:{broker.port}"
embedded_broker = "never"

[metrics]
enabled = false
"""


def write_ccxt_config(
    tmp_path: Path,
    broker: Mosquitto,
    standin: StandinBinance,
    *,
    instance: str = "live",
    seed: str = "",
    extra: str = "",
) -> Path:
    path = tmp_path / "live.toml"
    path.write_text(
        f"""
[guardbot]
instance = "{instance}"
data_dir = "{tmp_path / "data"}"
log_format = "json"
log_level = "warning"

{exchange_toml(standin)}

{daemon_sections(broker)}
{seed}
{extra}
""",
        encoding="utf-8",
    )
    return path


LONG_BTC = """
[[seed]]
type = "order"
account = "main"
id = "seed-long"
symbol = "BTC/USDT:USDT"
orderType = "market"
side = "buy"
amount = 0.3
"""


async def test_ccxt_feed_drives_alerts_and_liquidation(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinance
) -> None:
    config = load_config(write_ccxt_config(tmp_path, mosquitto, standin, seed=LONG_BTC), {})
    daemon = Daemon(config)
    stop = asyncio.Event()
    async with asyncio.timeout(40):
        async with Subscriber(mosquitto, ["guardbot/live/alerts/#"]) as sub:
            task = asyncio.create_task(daemon.run(stop))
            await seeded_position(standin, daemon)
            # 0.3 BTC long at 20x on 1,000 USDT: falls to 57,000 are margin alerts, then
            # liquidation somewhere below.
            for mark in range(59000, 55000, -50):  # fine steps: no alert level skipped
                await standin.set_price(BTC, mark=str(mark), bid=str(mark - 1), ask=str(mark + 1))
                if any(t.endswith("/liquidation") for t, _ in sub.received):
                    break
                # each mark reaches the engine before the next: ccxt folds frames that arrive
                # between two awaits, and a folded mark would skip an alert level under load
                await _until(lambda m=mark: _mark_seen(daemon, m), f"BTC at {mark}")
            await sub.until(lambda topic, _p: topic.endswith("/liquidation"))
            stop.set()
            assert await task == 0
    kinds = [p["type"] for p in sub.alerts()]
    assert kinds[0] == "tier_tables"  # no API keys: the bundled snapshot, with a warning
    margin = [p for p in sub.alerts() if p["type"] == "margin_alert"]
    levels = [p["level"] for p in margin]
    # One alert per input at the highest level reached (8a469cc, issue 11 item 6): a 250 USDT
    # step can pass two levels at once, so a level may be skipped; they still only climb.
    assert levels == sorted(set(levels)) and levels[-1] == 2
    assert kinds[-1] == "liquidation"
    assert not _positions(daemon)
    inputs = [k for (k,) in journal_rows(tmp_path / "data", "SELECT kind FROM inputs")]
    assert inputs.count("seed") == 1 and "tick" in inputs


async def test_websocket_drop_and_refusal_raise_feed_stale_then_recovered(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinance
) -> None:
    config = load_config(write_ccxt_config(tmp_path, mosquitto, standin, instance="flaky"), {})
    daemon = Daemon(config)
    stop = asyncio.Event()
    topics = ["guardbot/flaky/alerts/+/feed_stale", "guardbot/flaky/alerts/+/feed_recovered"]
    async with asyncio.timeout(60):
        async with Subscriber(mosquitto, topics) as sub:
            task = asyncio.create_task(daemon.run(stop))
            await standin.wait_subscribed("btcusdt@markPrice@1s")
            await standin.set_price(BTC, mark="60000")
            await standin.set_price(ETH, mark="3000")
            await _until(lambda: BTC in daemon.pipeline.last_tick, "a first BTC tick")
            # The exchange goes away: websockets dropped, every reconnect refused.
            standin.refuse_connections(True)
            await standin.drop_websockets()
            await sub.until(lambda topic, p: p.get("type") == "feed_stale")
            assert daemon.status_info()["state"] == "degraded"
            # It comes back: ccxt reconnects (backoff), and marks flow again.
            standin.refuse_connections(False)
            subscribed = standin.subscriptions["btcusdt@markPrice@1s"]
            await standin.wait_subscribed("btcusdt@markPrice@1s", subscribed + 1, timeout=40)
            await standin.set_price(BTC, mark="60100")
            await standin.set_price(ETH, mark="3010")
            health = daemon.feed_health
            await sub.until(
                lambda _t, _p: (
                    {p["type"] for p in sub.alerts()} >= {"feed_recovered"} and not health.stale
                )
            )
            stop.set()
            assert await task == 0
    kinds = [p["type"] for p in sub.alerts()]
    assert kinds.index("feed_stale") < len(kinds) - 1 - kinds[::-1].index("feed_recovered")


async def test_funding_is_settled_when_the_funding_time_passes(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinance
) -> None:
    config = load_config(write_ccxt_config(tmp_path, mosquitto, standin, seed=LONG_BTC), {})
    daemon = Daemon(config)
    stop = asyncio.Event()
    async with asyncio.timeout(30):
        async with Subscriber(mosquitto, ["guardbot/live/events/funding"]) as sub:
            task = asyncio.create_task(daemon.run(stop))
            await seeded_position(standin, daemon)
            # The exchange announces a funding time a moment ahead at 0.01 %, then passes it.
            funding_at = _now_ms() + 300
            await standin.set_price(BTC, funding_rate="0.0001", next_funding_time=funding_at)
            await _until(lambda: _now_ms() > funding_at + 5, "the funding time", poll=0.05)
            await standin.set_price(
                BTC,
                mark="60010",
                funding_rate="0.0002",
                next_funding_time=funding_at + 8 * 3600_000,
            )
            await sub.until(lambda _t, _p: True)
            stop.set()
            assert await task == 0
    (_topic, event), *_ = sub.received
    assert event["symbol"] == BTC and Decimal(event["rate"]) == Decimal("0.0001")
    # A long pays: 0.3 contracts x mark x rate, at the mark known when funding settled.
    assert Decimal(event["amount"]) == -Decimal("0.3") * Decimal("60000") * Decimal("0.0001")


async def seeded_position(standin: StandinBinance, daemon: Daemon) -> None:
    """Price both symbols once the daemon subscribed, and wait for the LONG_BTC seed to fill
    (both symbols need a price before the seed order fills)."""
    await standin.wait_subscribed("btcusdt@markPrice@1s")
    await standin.wait_subscribed("ethusdt@markPrice@1s")
    await standin.set_price(ETH, mark="3000", bid="2999.9", ask="3000.1", last="3000")
    await standin.set_price(BTC, mark="60000", bid="59999.9", ask="60000.1", last="60000")
    await _until(lambda: _positions(daemon), "the seeded position")


def _mark_seen(daemon: Daemon, mark: int) -> bool:
    """BTC's last tick has ``mark`` (or the position is gone: liquidated on an earlier tick)."""
    last = daemon.pipeline.last_tick.get(BTC)
    return (last is not None and last[1].mark == Decimal(mark)) or not _positions(daemon)


def _positions(daemon: Daemon) -> list[Any]:
    return [p for a in daemon.engine.iter_accounts() for p in daemon.engine.state(a)["positions"]]


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


async def _until(check: Any, what: str, *, poll: float = 0.02, limit: int = 1000) -> None:
    """Poll a cheap in-process condition (bounded); the daemon has no event for these."""
    for _ in range(limit):
        if check():
            return
        await asyncio.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


async def test_live_tier_tables_are_fetched_cached_and_used(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinance
) -> None:
    """With API keys the daemon fetches the leverage brackets through ccxt (the signed Binance
    endpoint), caches them, and the engine uses them; without keys the next start uses the
    cache, and no start warns about a fallback."""
    path = write_ccxt_config(tmp_path, mosquitto, standin, instance="tiers")
    keys = {"GUARDBOT_EXCHANGE_API_KEY": "standin-key", "GUARDBOT_EXCHANGE_SECRET": "s3cret"}
    for env, expected in ((keys, "exchange"), ({}, "cache")):
        daemon = Daemon(load_config(path, env))
        stop = asyncio.Event()
        async with asyncio.timeout(30):
            task = asyncio.create_task(daemon.run(stop))
            await daemon.ready.wait()
            stop.set()
            assert await task == 0
        assert daemon.tier_sources == {BTC: expected, ETH: expected}
        table = daemon.engine.config.tiers[BTC]
        # The stand-in's brackets (125x up to 50,000), not the bundled snapshot (150x).
        assert [(t.cap, t.max_leverage, t.cum) for t in table.tiers[:2]] == [
            (Decimal(50000), Decimal(125), Decimal(0)),
            (Decimal(250000), Decimal(100), Decimal(50)),
        ]
    assert standin.requests["/fapi/v1/leverageBracket"] == 1
    kinds = [k for (k,) in journal_rows(tmp_path / "data", "SELECT kind FROM inputs")]
    assert "tier_tables" not in kinds


async def test_a_tier_change_at_the_daily_refresh_is_journaled_and_applied_live(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16 ask 3 through the real ccxt path: the refresh task refetches the brackets (the
    refresh period shortened), finds the exchange changed them, journals a ``tiers`` input and
    applies it at once: the position's liquidation price moves and a ``tier_tables`` info alert
    is published."""
    monkeypatch.setattr(tier_tables, "TIER_REFRESH_S", 0.05)
    path = write_ccxt_config(tmp_path, mosquitto, standin, instance="live", seed=LONG_BTC)
    keys = {"GUARDBOT_EXCHANGE_API_KEY": "standin-key", "GUARDBOT_EXCHANGE_SECRET": "s3cret"}
    daemon = Daemon(load_config(path, keys))
    stop = asyncio.Event()
    async with asyncio.timeout(40), Subscriber(mosquitto, ["guardbot/live/alerts/#"]) as sub:
        task = asyncio.create_task(daemon.run(stop))
        await seeded_position(standin, daemon)
        assert daemon.tier_sources == {BTC: "exchange", ETH: "exchange"}
        [before] = _positions(daemon)
        # the exchange raises tier 1's rate and cuts it to 5,000 (0.3 BTC = 18,000: tier 2)
        standin.leverage_brackets = (
            (0, 5_000, 0.01, 50, 0.0),
            (5_000, 1_000_000, 0.02, 25, 50.0),
        )
        await sub.until(lambda t, _p: t == "guardbot/live/alerts/info/tier_tables")
        [after] = _positions(daemon)
        stop.set()
        assert await task == 0
    alert = sub.received[-1][1]
    assert {c["symbol"] for c in alert["changes"]} == {BTC, ETH}
    [moved] = alert["positions"]
    assert (moved["oldTier"], moved["tier"]) == (1, 2)
    assert moved["oldLiquidationPrice"] == before["liquidationPrice"]
    assert moved["liquidationPrice"] == after["liquidationPrice"]
    assert Decimal(after["liquidationPrice"]) > Decimal(before["liquidationPrice"])
    assert after["maintenanceMarginRate"] == "0.02"
    rows = journal_rows(tmp_path / "data", "SELECT kind, body FROM inputs ORDER BY seq")
    tiers = [json.loads(body) for kind, body in rows if kind == "tiers"]
    assert len(tiers) == 2  # the start's tables, then the changed ones (later refreshes: none)
    assert [r["maintenanceMarginRate"] for r in tiers[1]["tables"][BTC]["tiers"]] == [
        "0.01",
        "0.02",
    ]
