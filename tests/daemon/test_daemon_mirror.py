"""End to end on the real ccxt path: private stand-in -> ccxt.pro -> daemon -> Mosquitto.

The daemon is configured as a user would (``[accounts.real] mirror = true``, keys in the
environment it is given, the stand-in's URLs in ``[exchange.ccxt]``). The stand-in records every
request: nothing but GETs and the listen key may reach it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guardbot.cli.control import render_status
from guardbot.config import load_config
from guardbot.daemon.service import Daemon
from tests.broker import Mosquitto
from tests.daemon.test_daemon import Subscriber, journal_rows
from tests.daemon.test_daemon_ccxt import _until, write_ccxt_config
from tests.standin.binance_private import API_KEY, SECRET, StandinBinancePrivate

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
KEYS = {"GUARDBOT_EXCHANGE_API_KEY": API_KEY, "GUARDBOT_EXCHANGE_SECRET": SECRET}
MIRROR = """
[accounts.real]
mirror = true
mirror_poll_s = 1
"""


@pytest.fixture
async def standin() -> AsyncIterator[StandinBinancePrivate]:
    async with StandinBinancePrivate((BTC, ETH), wallet="1000") as server:
        yield server


@asynccontextmanager
async def running(
    tmp_path: Path,
    mosquitto: Mosquitto,
    standin: StandinBinancePrivate,
    env: dict[str, str] = KEYS,
    instance: str = "live",
) -> AsyncIterator[tuple[Daemon, Subscriber]]:
    # write_ccxt_config brings a paper account "main" too: paper and mirror side by side
    config = load_config(
        write_ccxt_config(tmp_path, mosquitto, standin, instance=instance, extra=MIRROR), env
    )
    daemon = Daemon(config, snapshot_interval=0.1)
    stop = asyncio.Event()
    async with Subscriber(mosquitto, [f"guardbot/{instance}/#"]) as sub:
        task = asyncio.create_task(daemon.run(stop))
        try:
            await standin.wait_subscribed("btcusdt@markPrice@1s")
            await standin.wait_subscribed("ethusdt@markPrice@1s")
            await standin.set_price(ETH, mark="3000", bid="2999.9", ask="3000.1", last="3000")
            await standin.set_price(BTC, mark="60000", bid="59999.9", ask="60000.1", last="60000")
            yield daemon, sub
        finally:
            stop.set()
            assert await task == 0


def snapshot_has(account: str, check: Callable[[dict[str, Any]], bool]) -> Any:
    def predicate(topic: str, payload: dict[str, Any]) -> bool:
        return topic.endswith(f"/accounts/{account}") and check(payload)

    return predicate


def severity_of(sub: Subscriber, kind: str) -> str:
    """The severity level of the first ``kind`` alert's topic (``.../alerts/<severity>/<type>``)."""
    topic = next(t for t, p in sub.received if "/alerts/" in t and p.get("type") == kind)
    return topic.split("/")[-2]


def alert_of(kind: str) -> Any:
    return lambda topic, payload: "/alerts/" in topic and payload.get("type") == kind


async def mark(standin: Any, price: int) -> None:
    await standin.set_price(BTC, mark=str(price), bid=str(price - 1), ask=str(price + 1))


def mark_seen(daemon: Daemon, price: int) -> bool:
    last = daemon.pipeline.last_tick.get(BTC)
    return last is not None and last[1].mark == Decimal(price)


# The steps every venue's mirror test walks (here for Binance, in test_daemon_mirror_venues.py
# for the others), one helper each.


async def mark_until_imminent(
    daemon: Daemon, standin: Any, sub: Subscriber, prices: Iterable[int]
) -> None:
    """Move BTC's mark along ``prices``, each step seen by the daemon, until it alerts
    liquidation_imminent."""
    for price in prices:
        await mark(standin, price)
        if any(p["type"] == "liquidation_imminent" for p in sub.alerts()):
            break
        await _until(lambda pr=price: mark_seen(daemon, pr), f"BTC at {price}")
    await sub.until(alert_of("liquidation_imminent"))


def margin_alerts_match(sub: Subscriber, theirs: Decimal) -> list[dict[str, Any]]:
    """The mirrored account's margin alerts, each liquidation price within mirror_tolerance
    (0.5 % of the mark) of the exchange's ``theirs``."""
    margin = [p for p in sub.alerts() if p["type"] == "margin_alert" and p["account"] == "real"]
    assert margin, "margin alerts before the liquidation"
    for alert in margin:
        ours = Decimal(alert["liquidationPrice"])
        assert abs(ours - theirs) <= Decimal("0.005") * Decimal(alert["markPrice"])
    return margin


def imminent_not_liquidated(sub: Subscriber, theirs: Decimal) -> None:
    """One critical liquidation_imminent carrying the exchange's price, and no liquidation,
    fill or stop of guardbot's own on the mirrored account."""
    (imminent,) = [p for p in sub.alerts() if p["type"] == "liquidation_imminent"]
    assert imminent["account"] == "real"
    assert severity_of(sub, "liquidation_imminent") == "critical"
    assert Decimal(imminent["exchangeLiquidationPrice"]) == theirs
    own = [t for t, p in sub.received if p.get("account") == "real" and
           p.get("type") in ("liquidation", "fill", "stop_triggered")]  # fmt: skip
    assert own == []


async def drift_alerted(standin: Any, sub: Subscriber, theirs: Decimal) -> None:
    """The exchange reports a liquidation price 10 % off: mirror_drift with both values."""
    off = (theirs * Decimal("0.9")).quantize(Decimal("0.01"))
    assert not [p for p in sub.alerts() if p["type"] == "mirror_drift"]
    standin.set_liquidation_price(BTC, off)
    # It is said once it has lasted mirror_drift_confirm_s (5 s) of input time, at the first
    # comparison after that: an exchange report or a BTC tick. Ticks keep coming meanwhile, as
    # from a live market (the awaited alert bounds it, under the caller's timeout).
    ticking = asyncio.create_task(ticks_until_cancelled(standin))
    try:
        await sub.until(alert_of("mirror_drift"))
    finally:
        ticking.cancel()
        await asyncio.gather(ticking, return_exceptions=True)
    (drift,) = [p for p in sub.alerts() if p["type"] == "mirror_drift"]
    assert Decimal(drift["exchangeLiquidationPrice"]) == off
    assert drift["liquidationPrice"] is not None
    assert severity_of(sub, "mirror_drift") == "warning"


async def ticks_until_cancelled(standin: Any, every_s: float = 0.2) -> None:
    """BTC ticks at 60,000 (the bid and ask moving, so each is a new quote), ``every_s`` apart."""
    for i in itertools.count():
        await standin.set_price(BTC, mark="60000", bid=str(59999 - i % 2), ask="60001")
        await asyncio.sleep(every_s)  # the pace of a market's quotes, not a wait for a result


async def settled_after_wallet(standin: Any, sub: Subscriber, wallet: int) -> None:
    """Until ``real``'s snapshot (the last received, or a later one: it is published only when it
    changes) shows ``wallet`` and the exchange's liquidation price for it, within
    mirror_tolerance of guardbot's, with no drift outstanding."""
    new = standin.liquidation_price(BTC)

    def check(p: dict[str, Any]) -> bool:
        view = p.get("mirror", {}).get("positions", {}).get(BTC)
        return (
            Decimal(p["wallet"]) == wallet
            and view is not None
            and view["exchangeLiquidationPrice"] is not None
            and Decimal(view["exchangeLiquidationPrice"]) == new
            and view["drift"] is not None
            and abs(Decimal(view["drift"])) <= Decimal("0.005")
            and not view["drifting"]
        )

    last = [p for t, p in sub.received if t.endswith("/accounts/real")][-1:]
    if not (last and check(last[0])):
        await sub.until(snapshot_has("real", check))


async def reconciled_after_drop(standin: Any, sub: Subscriber, loop: Any, eth: Decimal) -> None:
    """The private socket drops while an ETH short of ``eth`` contracts opens unseen: a REST
    reconciliation follows the reconnect and shows it."""
    assert loop.follower is not None
    full = loop.follower.rest_full
    connects = standin.private_connects
    standin.serve_private_ws = False
    await standin.drop_private_sockets()
    await standin.set_position(ETH, -eth, "3000", push=False)
    standin.serve_private_ws = True
    await standin.wait_private(lambda: standin.private_connects > connects, timeout=30)
    await sub.until(snapshot_has("real", lambda p: len(p.get("positions", [])) == 2))
    assert loop.follower.rest_full > full


async def rebuilt_from_the_exchange(daemon: Daemon, sub: Subscriber) -> None:
    """After a restart while, on the exchange, BTC closed and an ETH short opened: BTC reported
    closed, the ETH short mirrored. The old state was restored first (replayed, or from the
    checkpoint the first run wrote: usable now that fetched tiers and contract sizes come back
    from the cache unchanged), then replaced."""
    await sub.until(alert_of("position_closed"))
    await _until(lambda: ETH in daemon.engine.account("real").positions, "the ETH short")
    assert BTC not in daemon.engine.account("real").positions
    checkpointer = daemon.checkpointer
    restored = checkpointer is not None and checkpointer.latest is not None
    assert daemon.recovered_inputs > 0 or restored


async def hedged_mirror(daemon: Daemon, sub: Subscriber) -> Any:
    """The mirrored account once its snapshot shows a long and a short: in hedge mode."""

    def both_sides(p: dict[str, Any]) -> bool:
        return sorted(q["side"] for q in p.get("positions", [])) == ["long", "short"]

    await sub.until(snapshot_has("real", both_sides))
    account = daemon.engine.account("real")
    assert account.hedged
    return account


def secrets_kept(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, sub: Subscriber, secrets: Iterable[str]
) -> None:
    """Keys never in logs, the journal or MQTT; the mirror's inputs journaled."""
    logs = capfd.readouterr()
    database = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file())
    published = repr(sub.received)
    for secret in secrets:
        assert secret not in logs.out and secret not in logs.err
        assert secret.encode() not in database
        assert secret not in published
    kinds = [k for (k,) in journal_rows(tmp_path / "data", "SELECT kind FROM inputs")]
    assert "mirror" in kinds


async def test_mirror_end_to_end(
    tmp_path: Path,
    mosquitto: Mosquitto,
    standin: StandinBinancePrivate,
    capfd: pytest.CaptureFixture[str],
) -> None:
    async with asyncio.timeout(90), running(tmp_path, mosquitto, standin) as (daemon, sub):
        (loop,) = daemon.mirrors
        await _until(
            lambda: loop.follower is not None and standin.open_private_sockets > 0, "stream"
        )
        # 1. A position opened on the exchange appears in the retained snapshot within seconds.
        started = time.monotonic()
        await standin.set_position(BTC, "0.5", "60000", leverage=20)

        def has_btc(p: dict[str, Any]) -> bool:
            return any(q["symbol"] == BTC for q in p.get("positions", []))

        await sub.until(snapshot_has("real", has_btc))
        appeared_s = time.monotonic() - started
        assert appeared_s < 3.0
        print(f"position on the exchange -> retained snapshot: {appeared_s * 1000:.0f} ms")

        # 2. The mark falls: margin alerts with guardbot's liquidation price, which matches the
        #    exchange's within mirror_tolerance, then liquidation_imminent, never a liquidation.
        theirs = standin.liquidation_price(BTC)
        assert theirs is not None
        await sub.until(snapshot_has("real", lambda p: bool(p.get("mirror", {}).get("positions"))))
        await mark_until_imminent(daemon, standin, sub, range(59500, 57000, -250))
        margin_alerts_match(sub, theirs)
        imminent_not_liquidated(sub, theirs)
        assert daemon.engine.account("real").positions[BTC].contracts == Decimal("0.5")

        # guardbot status, from the retained snapshots: the mirror marked, both prices
        snaps = {t.rsplit("/", 1)[1]: p for t, p in sub.received if "/accounts/" in t}
        table = render_status({"state": "online"}, snaps, 0)
        assert "real (mirror)" in table and "main (mirror)" not in table
        row = next(
            line.split()
            for line in table.splitlines()
            if line.startswith("  real ") and BTC in line
        )
        assert row[-1] == f"{theirs:,.0f}"  # the exchange's, beside guardbot's

        # 3. An account update pushed by the exchange is reflected at once.
        await mark(standin, 60000)
        await standin.set_wallet("1500")
        await sub.until(snapshot_has("real", lambda p: Decimal(p["wallet"]) == 1500))
        # ... and once the positions are read again, the exchange's liquidation price for the
        # new wallet, within tolerance of guardbot's: no drift outstanding before step 4
        await settled_after_wallet(standin, sub, 1500)

        # 4. The exchange reports a liquidation price 10 % off: mirror_drift with both values.
        await drift_alerted(standin, sub, theirs)

        # 5. The private socket drops: a REST reconciliation follows the reconnect, and what the
        #    exchange did meanwhile arrives.
        await reconciled_after_drop(standin, sub, loop, Decimal(2))
        assert loop.follower is not None and loop.follower.connects >= 2

        # 6. The position closes on the exchange (a stop): position_closed with its reason.
        await standin.close_position(ETH, how="STOP_MARKET")
        await sub.until(alert_of("position_closed"))
        (closed,) = [p for p in sub.alerts() if p["type"] == "position_closed"]
        assert (closed["symbol"], closed["side"], closed["reason"]) == (ETH, "short", "stop_loss")

        # 7. Commands that would change the mirror are refused by the engine.
        events = await daemon.control_command(
            {"type": "set_leverage", "account": "real", "symbol": BTC, "leverage": "5"}
        )
        assert [(e["type"], e["code"]) for e in events] == [("order_rejected", "MIRROR_READ_ONLY")]

    # Read-only: nothing but GETs and the listen key reached the exchange.
    assert standin.writes() == []
    assert standin.unknown_paths == []
    assert standin.listen_keys and standin.auth_failures == 0
    secrets_kept(capfd, tmp_path, sub, (API_KEY, SECRET))


async def test_wrong_keys_one_clear_error(
    tmp_path: Path,
    mosquitto: Mosquitto,
    standin: StandinBinancePrivate,
    capfd: pytest.CaptureFixture[str],
) -> None:
    env = {"GUARDBOT_EXCHANGE_API_KEY": "not-the-key-4242", "GUARDBOT_EXCHANGE_SECRET": "nope-777"}
    async with asyncio.timeout(60), running(tmp_path, mosquitto, standin, env) as (daemon, sub):
        await sub.until(alert_of("mirror_failed"))
        failures = standin.auth_failures
        await asyncio.sleep(2.5)  # two and a half mirror_poll_s: a retry would show
        assert standin.auth_failures == failures
        assert daemon.status_info()["state"] in ("online", "degraded")
    (failed,) = [p for p in sub.alerts() if p["type"] == "mirror_failed"]
    assert failed["account"] == "real" and severity_of(sub, "mirror_failed") == "critical"
    assert "'real'" in failed["reason"] and "GUARDBOT_EXCHANGE_API_KEY" in failed["reason"]
    logs = capfd.readouterr()
    for secret in ("not-the-key-4242", "nope-777"):
        assert secret not in failed["reason"]
        assert secret not in logs.out and secret not in logs.err
    # one signed request refused, not a storm (the tier fetch of the feed shares the key)
    assert standin.auth_failures <= 2


async def test_restart_rebuilds_from_the_exchange(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinancePrivate
) -> None:
    await standin.set_position(BTC, "0.5", "60000", push=False)
    async with asyncio.timeout(60), running(tmp_path, mosquitto, standin) as (daemon, sub):
        await sub.until(snapshot_has("real", lambda p: len(p.get("positions", [])) == 1))
    # Meanwhile, on the exchange: BTC closed, an ETH short opened.
    await standin.set_position(BTC, "0", "0", push=False)
    await standin.set_position(ETH, "-2", "3000", push=False)
    async with asyncio.timeout(60), running(tmp_path, mosquitto, standin) as (daemon, sub):
        await rebuilt_from_the_exchange(daemon, sub)
    (closed,) = [p for p in sub.alerts() if p["type"] == "position_closed"]
    assert (closed["symbol"], closed["reason"]) == (BTC, "unknown")


async def test_hedge_mode_account_is_mirrored_in_hedge_mode(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinancePrivate
) -> None:
    await standin.set_position(BTC, "0.5", "60000", side="LONG", push=False)
    await standin.set_position(BTC, "-0.2", "61000", side="SHORT", push=False)
    async with asyncio.timeout(60), running(tmp_path, mosquitto, standin) as (daemon, sub):
        account = await hedged_mirror(daemon, sub)
        await _until(lambda: standin.open_private_sockets > 0, "the user data stream")
        await standin.close_position(BTC, side="SHORT", how="TAKE_PROFIT_MARKET")
        await sub.until(alert_of("position_closed"))
    (closed,) = [p for p in sub.alerts() if p["type"] == "position_closed"]
    assert (closed["side"], closed["reason"]) == ("short", "take_profit")
    assert [p.side for p in account.positions.values()] == ["long"]
    assert standin.writes() == []


async def test_listen_key_expired_rebuilds_through_rest(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinancePrivate
) -> None:
    """Binance says ``listenKeyExpired``: what changed meanwhile comes through REST, a socket on
    a new key replaces the old one, and nothing fails (tests/mirror/test_follower.py checks
    that the new socket's frames are applied)."""
    await standin.set_position(BTC, "0.5", "60000", push=False)
    async with asyncio.timeout(60), running(tmp_path, mosquitto, standin) as (daemon, sub):
        (loop,) = daemon.mirrors
        await sub.until(snapshot_has("real", lambda p: len(p.get("positions", [])) == 1))
        await _until(lambda: standin.open_private_sockets > 0, "the user data stream")
        await standin.set_position(ETH, "-2", "3000", push=False)  # the stream is silent
        assert await standin.expire_listen_key() == 1
        await sub.until(snapshot_has("real", lambda p: len(p.get("positions", [])) == 2))
        await standin.wait_private(
            lambda: len(standin.listen_keys) == 2 and standin.open_private_sockets == 1,
            timeout=30,
        )
        await _until(lambda: standin.private_connects == 2, "the stream on the new key")
        assert loop.follower is not None and loop.follower.stream_resets == 1
    assert standin.writes() == []
    assert not [p for p in sub.alerts() if p["type"] == "mirror_failed"]
