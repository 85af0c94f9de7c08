"""Every venue on the real ccxt code path: venue stand-in -> ccxt.pro -> daemon -> Mosquitto.

One stand-in per venue (tests/standin/<venue>.py) speaks REST and websocket exactly as
``ccxt.pro.<venue>`` 4.5.90 asks for them; the daemon is configured as a user would
(``[feed] mode = "ccxt"``, the stand-in's URLs in ``[exchange.ccxt]``); nothing is injected.
Per venue: prices arrive with mark and bid/ask, a market order fills at the ask, margin alerts
then a liquidation, funding settled once at the venue's next funding time with its rate,
``feed_stale`` / ``feed_recovered`` when every socket drops and reconnects are refused, and a
restart keeps the fetched tiers and contract sizes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from guardbot.config import load_config
from guardbot.daemon.service import Daemon
from tests.broker import Mosquitto
from tests.daemon.test_daemon import Subscriber, journal_rows
from tests.daemon.test_daemon_ccxt import daemon_sections, toml_value
from tests.standin.base import VenueStandin
from tests.standin.bitget import StandinBitget
from tests.standin.bybit import StandinBybit
from tests.standin.gate import StandinGate
from tests.standin.kucoinfutures import StandinKucoinFutures
from tests.standin.mexc import StandinMexc
from tests.standin.okx import StandinOkx

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"

#: venue -> (stand-in class, profile to use while the venue has no built-in one)
VENUES: dict[str, tuple[Callable[[], VenueStandin], str | None]] = {
    "bybit": (StandinBybit, None),
    "okx": (StandinOkx, None),
    "gate": (StandinGate, None),
    "mexc": (StandinMexc, None),
    "bitget": (StandinBitget, None),
    "kucoinfutures": (StandinKucoinFutures, None),
}


@pytest_asyncio.fixture(params=sorted(VENUES))
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[VenueStandin]:
    factory, _profile = VENUES[request.param]
    async with factory() as server:
        yield server


def write_config(tmp_path: Path, broker: Mosquitto, venue: VenueStandin, *, instance: str) -> Path:
    ccxt_lines = "\n".join(
        f"{key} = {toml_value(value)}" for key, value in venue.ccxt_config().items()
    )
    profile = VENUES[venue.exchange_id][1]
    path = tmp_path / f"{instance}.toml"
    path.write_text(
        f"""
[guardbot]
instance = "{instance}"
data_dir = "{tmp_path / "data"}"
log_format = "json"
log_level = "warning"

[exchange]
id = "{venue.exchange_id}"
symbols = ["{BTC}", "{ETH}"]
{f'profile = "{profile}"' if profile else ""}

[exchange.ccxt]
enableRateLimit = false
{ccxt_lines}

{daemon_sections(broker)}
""",
        encoding="utf-8",
    )
    return path


async def buy_btc(daemon: Daemon, amount: Decimal) -> None:
    """A market buy through the control path (as an MQTT command would), once prices are in:
    a seed would fill on the first mark, before a venue's separate book stream told the ask."""
    await daemon.control_command(
        {"type": "order", "account": "main", "id": "long", "symbol": BTC,
         "orderType": "market", "side": "buy", "amount": amount}
    )  # fmt: skip


def contracts(venue: VenueStandin, base_amount: str) -> Decimal:
    """``base_amount`` BTC in the venue's contracts (ccxt amounts are contracts)."""
    return Decimal(base_amount) / venue.contract_size(BTC)


async def started(daemon: Daemon, stop: asyncio.Event, venue: VenueStandin) -> asyncio.Task[int]:
    await quoted(venue)
    task = asyncio.create_task(daemon.run(stop))
    await daemon.ready.wait()
    return task


async def quoted(venue: VenueStandin) -> None:
    """The quotes the venue starts with (set before the daemon connects: some venues send a
    snapshot on subscribe, and the seed order fills on the first prices)."""
    await venue.set_price(ETH, mark="3000", bid="2999.9", ask="3000.1", last="3000")
    await venue.set_price(BTC, mark="60000", bid="59999.9", ask="60000.1", last="60000")


async def priced(venue: VenueStandin, daemon: Daemon) -> None:
    """Both symbols quoted after the feed subscribed; wait until the daemon saw BTC's tick."""
    await venue.wait_streaming([BTC, ETH], timeout=20)
    await quoted(venue)  # again, now that the feed listens: venues without a snapshot
    await until(
        lambda: _tick(daemon, BTC, "60000", bid="59999.9", ask="60000.1"),
        "BTC at 60000 with its bid/ask in the daemon",
    )


def _tick(daemon: Daemon, symbol: str, mark: str, *, bid: str = "", ask: str = "") -> bool:
    """The daemon's last tick of ``symbol`` has this mark (and bid/ask when given): mark and
    bid/ask come from different streams on some venues, so one may lead the other."""
    last = daemon.pipeline.last_tick.get(symbol)
    if last is None or last[1].mark != Decimal(mark):
        return False
    tick = last[1]
    return (not bid or tick.bid == Decimal(bid)) and (not ask or tick.ask == Decimal(ask))


def positions(daemon: Daemon) -> list[Any]:
    return [p for a in daemon.engine.iter_accounts() for p in daemon.engine.state(a)["positions"]]


def now_ms() -> int:
    return int(time.time() * 1000)


async def until(check: Callable[[], object], what: str, *, poll: float = 0.02) -> None:
    """Poll a cheap in-process condition (bounded); the daemon has no event for these."""
    for _ in range(1500):
        if check():
            return
        await asyncio.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


async def test_prices_fill_alerts_and_liquidation(
    tmp_path: Path, mosquitto: Mosquitto, venue: VenueStandin
) -> None:
    amount = contracts(venue, "0.3")
    path = write_config(tmp_path, mosquitto, venue, instance="live")
    daemon = Daemon(load_config(path, {}))
    stop = asyncio.Event()
    async with asyncio.timeout(60):
        async with Subscriber(mosquitto, ["guardbot/live/alerts/#"]) as sub:
            task = await started(daemon, stop, venue)
            await priced(venue, daemon)
            _ts, tick, _journaled = daemon.pipeline.last_tick[BTC]
            assert (tick.bid, tick.ask) == (Decimal("59999.9"), Decimal("60000.1"))
            await buy_btc(daemon, amount)
            (position,) = positions(daemon)
            assert Decimal(str(position["entryPrice"])) == Decimal("60000.1")  # at the ask
            for mark in range(59000, 54000, -50):  # fine steps: no alert level skipped
                await venue.set_price(BTC, mark=str(mark), bid=str(mark - 1), ask=str(mark + 1))
                if any(t.endswith("/liquidation") for t, _ in sub.received):
                    break
                # each mark reaches the engine before the next (ccxt folds frames between two
                # awaits; a folded mark would skip an alert level under load)
                await until(
                    lambda m=mark: _tick(daemon, BTC, str(m)) or not positions(daemon),
                    f"BTC at {mark}",
                )
            await sub.until(lambda topic, _p: topic.endswith("/liquidation"))
            stop.set()
            assert await task == 0
    margin = [p for p in sub.alerts() if p["type"] == "margin_alert"]
    assert [p["level"] for p in margin][:3] == [0, 1, 2]
    assert sub.alerts()[-1]["type"] == "liquidation"
    assert not positions(daemon)
    assert venue.unknown_paths == []


async def test_funding_settled_once_at_the_venue_time_with_its_rate(
    tmp_path: Path, mosquitto: Mosquitto, venue: VenueStandin
) -> None:
    """The venue announces its next funding time (stream or REST, whichever it uses) a few
    seconds ahead at 0.03 %; once it passes, the next tick (with the new period's rate) settles
    the old rate, once."""
    amount = contracts(venue, "0.3")
    path = write_config(tmp_path, mosquitto, venue, instance="live")
    daemon = Daemon(load_config(path, {}))
    stop = asyncio.Event()
    funding_at = (now_ms() // 1000 + 5) * 1000  # whole seconds: Gate says it in seconds
    await venue.set_price(BTC, funding_rate="0.0003", next_funding_time=funding_at)
    async with asyncio.timeout(60):
        async with Subscriber(mosquitto, ["guardbot/live/events/funding"]) as sub:
            task = await started(daemon, stop, venue)
            await priced(venue, daemon)
            await buy_btc(daemon, amount)
            await until(
                lambda: daemon.pipeline.funding.next_time(BTC) == funding_at,
                "the venue's funding time",
            )
            await until(lambda: now_ms() > funding_at + 5, "the funding time", poll=0.05)
            await venue.set_price(
                BTC, mark="60010", funding_rate="0.0001", next_funding_time=funding_at + 28_800_000
            )
            await sub.until(lambda _t, _p: True)
            await venue.set_price(BTC, mark="60020")
            await until(lambda: _tick(daemon, BTC, "60020"), "a later tick")
            stop.set()
            assert await task == 0
    assert len(sub.received) == 1  # settled once
    (_topic, event), *_ = sub.received
    assert event["symbol"] == BTC and Decimal(event["rate"]) == Decimal("0.0003")
    size = amount * venue.contract_size(BTC)
    assert Decimal(event["amount"]) == -size * Decimal("60000") * Decimal("0.0003")


async def test_socket_drop_and_refusal_raise_stale_then_recovered(
    tmp_path: Path, mosquitto: Mosquitto, venue: VenueStandin
) -> None:
    path = write_config(tmp_path, mosquitto, venue, instance="flaky")
    daemon = Daemon(load_config(path, {}))
    stop = asyncio.Event()
    topics = ["guardbot/flaky/alerts/+/feed_stale", "guardbot/flaky/alerts/+/feed_recovered"]
    async with asyncio.timeout(90):
        async with Subscriber(mosquitto, topics) as sub:
            task = await started(daemon, stop, venue)
            await priced(venue, daemon)
            before = venue.subscribe_counts([BTC])
            venue.refuse_connections(True)
            await venue.drop_websockets()
            await sub.until(lambda _t, p: p.get("type") == "feed_stale")
            assert daemon.status_info()["state"] == "degraded"
            venue.refuse_connections(False)
            await venue.wait_for(
                lambda: all(venue.subscriptions[t] > n for t, n in before.items()), timeout=60
            )
            await venue.set_price(BTC, mark="60100", bid="60099", ask="60101")
            await venue.set_price(ETH, mark="3010", bid="3009", ask="3011")
            await sub.until(
                lambda _t, _p: (
                    any(p["type"] == "feed_recovered" for p in sub.alerts())
                    and not daemon.feed_health.stale
                )
            )
            stop.set()
            assert await task == 0
    kinds = [p["type"] for p in sub.alerts()]
    assert kinds.index("feed_stale") < len(kinds) - 1 - kinds[::-1].index("feed_recovered")


async def test_restart_keeps_tiers_and_contract_sizes(
    tmp_path: Path, mosquitto: Mosquitto, venue: VenueStandin
) -> None:
    path = write_config(tmp_path, mosquitto, venue, instance="tiers")
    expected_size = venue.contract_size(BTC)
    for source in ("exchange", "cache"):
        daemon = Daemon(load_config(path, {}))
        stop = asyncio.Event()
        async with asyncio.timeout(30):
            task = await started(daemon, stop, venue)
            stop.set()
            assert await task == 0
        assert daemon.tier_sources == {BTC: source, ETH: source}
        config = daemon.engine.config
        assert config.contract_sizes[BTC] == expected_size
        caps = [t.cap for t in config.tiers[BTC].tiers]
        assert caps == venue.tier_caps(BTC)  # the stand-in's table, not the bundled one
        if source == "exchange":
            venue.refuse_connections(True)  # the next start must not need the exchange
    kinds = [k for (k,) in journal_rows(tmp_path / "data", "SELECT kind FROM inputs")]
    assert "tier_tables" not in kinds


async def test_mexc_custom_risk_levels_reach_the_engine_and_survive_a_restart(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """MEXC lists BTC_USDT's risk levels in ``riskLimitCustom`` (CUSTOM mode, ``riskIncrVol``
    0), which ccxt 4.5.90 turns into one boundless tier: the daemon builds the table from the
    levels (guardbot/feeds/venues/mexc.py), caches it, and the next start uses the cache."""
    levels = [
        {"imr": 0.004, "level": 1, "maxLeverage": 250, "maxVol": 30000, "mmr": 0.002},
        {"imr": 0.01, "level": 2, "maxLeverage": 100, "maxVol": 400000, "mmr": 0.006},
        {"imr": 0.04, "level": 3, "maxLeverage": 25, "maxVol": 3000000, "mmr": 0.025},
    ]
    async with StandinMexc(risk_levels={"BTC": levels}) as venue:
        path = write_config(tmp_path, mosquitto, venue, instance="custom")
        for source in ("exchange", "cache"):
            daemon = Daemon(load_config(path, {}))
            stop = asyncio.Event()
            async with asyncio.timeout(30):
                task = await started(daemon, stop, venue)
                stop.set()
                assert await task == 0
            assert daemon.tier_sources == {BTC: source, ETH: source}
            btc = daemon.engine.config.tiers[BTC].tiers
            assert [(t.cap, t.mmr, t.max_leverage) for t in btc] == [
                (30000, Decimal("0.002"), 250),
                (400000, Decimal("0.006"), 100),
                (3000000, Decimal("0.025"), 25),
            ]
            assert daemon.engine.config.contract_sizes[BTC] == Decimal("0.0001")
            if source == "exchange":
                venue.refuse_connections(True)
