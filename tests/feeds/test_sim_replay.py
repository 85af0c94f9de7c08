"""SimFeed and ReplayFeed with a recording fake sleep: no real sleeps."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from guardbot.core.commands import TickCmd
from guardbot.errors import InputError
from guardbot.feeds.base import FeedEvent, TickUpdate
from guardbot.feeds.replay import ReplayFeed
from guardbot.feeds.sim import SimFeed

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
TIMEOUT = 5.0


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 1_700_000_000.0

    def clock(self) -> float:
        return self.now

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.now += delay


async def collect(feed: SimFeed | ReplayFeed) -> list[FeedEvent]:
    async with asyncio.timeout(TIMEOUT), feed:
        return [event async for event in feed.updates()]


def sim(seed: int, sleep: RecordingSleep, **kw: object) -> SimFeed:
    return SimFeed(
        [BTC, ETH],
        {BTC: "65000", ETH: 3500.5},
        seed=seed,
        interval_s=0.25,
        jump_probability=0.05,
        jump_size=0.02,
        rounds=200,
        clock=sleep.clock,
        sleep=sleep,
        **kw,  # type: ignore[arg-type]
    )


async def test_sim_feed_is_deterministic_for_a_seed() -> None:
    first_sleep, second_sleep = RecordingSleep(), RecordingSleep()
    first = await collect(sim(7, first_sleep))
    second = await collect(sim(7, second_sleep))
    other = await collect(sim(8, RecordingSleep()))
    assert first == second
    assert [e.tick for e in first if isinstance(e, TickUpdate)] != [
        e.tick for e in other if isinstance(e, TickUpdate)
    ]
    assert len(first) == 400
    assert first_sleep.delays == [0.25] * 199
    ticks = [e.tick for e in first if isinstance(e, TickUpdate)]
    tick_size = Decimal("0.1")
    for tick in ticks:
        assert tick.bid is not None and tick.ask is not None and tick.last is not None
        assert tick.bid < tick.mark < tick.ask
        assert tick.bid <= tick.last <= tick.ask
        for price in (tick.mark, tick.bid, tick.ask, tick.last):
            assert price % tick_size == 0
    assert isinstance(first[0], TickUpdate) and first[0].ts == 1_700_000_000_000
    assert isinstance(first[-1], TickUpdate) and first[-1].ts == 1_700_000_000_000 + 199 * 250
    assert {t.symbol for t in ticks} == {BTC, ETH}


async def test_sim_feed_jumps() -> None:
    sleep = RecordingSleep()
    feed = SimFeed(
        [BTC],
        {BTC: 100},
        seed=1,
        jump_probability=1.0,
        jump_size=0.1,
        volatility=0.0,
        tick_size="0.01",
        rounds=20,
        clock=sleep.clock,
        sleep=sleep,
    )
    marks = [e.tick.mark for e in await collect(feed) if isinstance(e, TickUpdate)]
    moves = {
        abs(b / a - 1).quantize(Decimal("0.01"))
        for a, b in zip([Decimal(100), *marks[:-1]], marks, strict=True)
    }
    assert moves == {Decimal("0.10")}


def test_sim_feed_refuses_missing_start_price() -> None:
    with pytest.raises(ValueError, match="no start price"):
        SimFeed([BTC, ETH], {BTC: 1})


LINES = [
    {"ts": 1_000, "symbol": BTC, "mark": 65000.1, "last": 65000.0, "bid": 64999.9, "ask": 65000.2},
    {"ts": 1_500, "symbol": ETH, "mark": "3500.5", "fundingRate": -0.0001},
    {"ts": 3_500, "symbol": BTC, "mark": 65010, "bid": 65009.9, "ask": 65010.1},
]


def write(path: Path, lines: Sequence[object], *, raw: list[str] | None = None) -> Path:
    text = "\n".join(json.dumps(obj) for obj in lines) + "\n"
    if raw:
        text += "".join(f"{line}\n" for line in raw)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


EXPECTED = [
    TickUpdate(
        1_000,
        TickCmd(
            BTC,
            Decimal("65000.1"),
            last=Decimal("65000.0"),
            bid=Decimal("64999.9"),
            ask=Decimal("65000.2"),
        ),
    ),
    TickUpdate(1_500, TickCmd(ETH, Decimal("3500.5"), funding_rate=Decimal("-0.0001"))),
    TickUpdate(
        3_500, TickCmd(BTC, Decimal("65010"), bid=Decimal("65009.9"), ask=Decimal("65010.1"))
    ),
]


@pytest.mark.parametrize("name", ["ticks.jsonl", "ticks.jsonl.gz"])
async def test_replay_plain_and_gzip_at_recorded_speed(tmp_path: Path, name: str) -> None:
    sleep = RecordingSleep()
    path = write(tmp_path / name, LINES, raw=[""])  # a trailing blank line is skipped
    events = await collect(ReplayFeed(path, speed=1.0, sleep=sleep))
    assert events == EXPECTED
    assert sleep.delays == [0.5, 2.0]


@pytest.mark.parametrize(("speed", "delays"), [(4.0, [0.125, 0.5]), (0, []), (None, [])])
async def test_replay_speed_scaling(
    tmp_path: Path, speed: float | None, delays: list[float]
) -> None:
    sleep = RecordingSleep()
    path = write(tmp_path / "ticks.jsonl", LINES)
    assert await collect(ReplayFeed(path, speed=speed, sleep=sleep)) == EXPECTED
    assert sleep.delays == delays


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"ts": 4000, "symbol": "BTC/USDT:USDT", "mark": -1}', "line 4.mark: must be > 0"),
        ('{"ts": 4000, "symbol": "BTC/USDT:USDT", "mark": NaN}', "line 4.mark"),
        ('{"ts": 4000, "symbol": "BTC/USDT:USDT"}', "line 4.mark: is required"),
        ('{"symbol": "BTC/USDT:USDT", "mark": 1}', "line 4.ts: must be an integer"),
        ('{"ts": 4000, "symbol": "BTC', "line 4: invalid JSON"),
        ("[1, 2]", "line 4: must be a JSON object"),
    ],
)
async def test_replay_bad_line_names_the_line(tmp_path: Path, bad: str, message: str) -> None:
    path = write(tmp_path / "bad.jsonl.gz", LINES, raw=[bad])
    seen: list[FeedEvent] = []
    with pytest.raises(InputError) as info:
        async with asyncio.timeout(TIMEOUT), ReplayFeed(path, speed=0) as feed:
            async for event in feed.updates():
                seen.append(event)
    assert str(info.value).startswith(message)
    assert seen == EXPECTED  # the good lines before it were delivered
