"""``guardbot record``: live ticks from the Binance stand-in (real ccxt code path) to JSON Lines,
read back through :class:`ReplayFeed` and compared exactly.

No fixed sleeps: the tests wait on the stand-in's subscription counters, on the recorder's
``on_tick``/``notify`` callbacks and on the recorder's own return, each bounded by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
import structlog

from guardbot.cli.record import RecordSummary, add_arguments, record, run_record, tick_line
from guardbot.core.commands import TickCmd
from guardbot.feeds.base import FeedEvent, FeedStale, TickUpdate
from guardbot.feeds.exchange import ExchangeFeed, ccxt_factory
from guardbot.feeds.replay import ReplayFeed
from tests.standin.binance import StandinBinance

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
TIMEOUT = 15.0
#: Every stream the feed subscribes for BTC and ETH (mark, book, full ticker).
STREAMS = [
    f"{s}@{kind}"
    for s in ("btcusdt", "ethusdt")
    for kind in ("markPrice@1s", "bookTicker", "ticker")
]

integration = pytest.mark.integration


# ----------------------------------------------------------------------------- helpers


def exchange_feed(standin: StandinBinance, symbols: list[str], **kwargs: Any) -> ExchangeFeed:
    return ExchangeFeed(ccxt_factory("binanceusdm"), standin.ccxt_config(), symbols, **kwargs)


async def read_back(path: Path) -> list[tuple[int, TickCmd]]:
    if path.name.endswith(".gbt"):  # tick columns: what guardbot replay reads from such a file
        from guardbot.formats.tickcolumns import read_columns

        return list(read_columns(path))
    ticks: list[tuple[int, TickCmd]] = []
    async with ReplayFeed(path, speed=0) as feed:
        async for event in feed.updates():
            assert isinstance(event, TickUpdate)
            ticks.append((event.ts, event.tick))
    return ticks


class Recording:
    """A :func:`record` task plus what its callbacks saw."""

    def __init__(self) -> None:
        self.ticks: list[tuple[int, TickCmd]] = []
        self.messages: list[str] = []
        self.new_tick = asyncio.Event()
        self.new_message = asyncio.Event()
        self.stop = asyncio.Event()
        self.task: asyncio.Task[RecordSummary] | None = None

    def on_tick(self, update: TickUpdate) -> None:
        self.ticks.append((update.ts, update.tick))
        self.new_tick.set()

    def notify(self, message: str) -> None:
        self.messages.append(message)
        self.new_message.set()

    def start(self, feed: Any, path: Path, **kwargs: Any) -> None:
        self.task = asyncio.create_task(
            record(feed, path, stop=self.stop, notify=self.notify, on_tick=self.on_tick, **kwargs)
        )

    async def wait_message(self, predicate: Callable[[str], bool]) -> str:
        while True:
            for message in self.messages:
                if predicate(message):
                    return message
            self.new_message.clear()
            await self.new_message.wait()


async def wait_subscribed(standin: StandinBinance, streams: list[str]) -> None:
    for stream in streams:
        await standin.wait_subscribed(stream, timeout=TIMEOUT)


def prices(i: int) -> dict[str, str]:
    """Distinct, awkward decimals per push: trailing zeros, many places, a tiny negative rate."""
    return {
        "mark": f"{70000 + i}.{i:02d}5",
        "bid": f"{70000 + i}.0",
        "ask": f"{70000 + i}.{i:02d}9",
        "last": f"{70000 + i}.1",
        "funding_rate": "-0.0000125" if i % 2 else "0.00012",
    }


async def push(standin: StandinBinance, symbol: str, i: int) -> None:
    p = prices(i)
    await standin.set_price(
        symbol, mark=p["mark"], bid=p["bid"], ask=p["ask"], last=p["last"],
        funding_rate=p["funding_rate"],
    )  # fmt: skip


async def push_until(
    standin: StandinBinance,
    recording: Recording,
    done: Callable[[], bool],
    *,
    symbols: tuple[str, ...] = (BTC, ETH),
    max_pushes: int = 100,
) -> int:
    """Push prices, each time waiting for the next written tick, until ``done()``; bounded."""
    for i in range(max_pushes):
        if done():
            return i
        recording.new_tick.clear()
        await push(standin, symbols[i % len(symbols)], i)
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(recording.new_tick.wait())]
        if recording.task is not None:
            waiters.append(recording.task)
        await asyncio.wait(waiters, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        waiters[0].cancel()
    raise AssertionError(f"not done after {max_pushes} pushes")


def assert_gzip_complete(path: Path) -> None:
    # gzip.decompress raises EOFError when the trailer (CRC, size) is missing.
    gzip.decompress(path.read_bytes())


# ----------------------------------------------------------------------------- format (offline)


def test_tick_line_exact_decimal_strings() -> None:
    tick = TickCmd(
        symbol=BTC,
        mark=Decimal("70123.40"),
        last=Decimal("1E+2"),
        bid=None,
        ask=Decimal("0.000001"),
        index=Decimal("70120"),
        funding_rate=Decimal("-1.25E-5"),
    )
    line = tick_line(TickUpdate(1_700_000_000_123, tick, next_funding_ts=1))
    assert line == (
        '{"type":"tick","ts":1700000000123,"symbol":"BTC/USDT:USDT","mark":"70123.40",'
        '"last":"100","ask":"0.000001","index":"70120","fundingRate":"-0.0000125"}'
    )


class ListFeed:
    """A feed of fixed events; then it ends, or (``hang``) waits until cancelled."""

    def __init__(self, events: list[FeedEvent], *, hang: bool = False) -> None:
        self.events = events
        self.hang = hang
        self.entered = 0
        self.exited = 0

    async def __aenter__(self) -> Self:
        self.entered += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.exited += 1

    async def updates(self) -> AsyncIterator[FeedEvent]:
        for event in self.events:
            yield event
        if self.hang:
            await asyncio.Event().wait()


class TaskGroupFeed(ListFeed):
    """Like CcxtFeed inside a generator: a TaskGroup held open across every ``yield``."""

    async def updates(self) -> AsyncIterator[FeedEvent]:
        async with asyncio.TaskGroup() as group:
            group.create_task(asyncio.Event().wait())  # a stream loop that never ends
            for event in self.events:
                yield event
            await asyncio.Event().wait()


def tick(ts: int, symbol: str, mark: str, **extra: str) -> TickUpdate:
    fields = {k: Decimal(v) for k, v in extra.items()}
    return TickUpdate(ts, TickCmd(symbol=symbol, mark=Decimal(mark), **fields))


@pytest.mark.parametrize("name", ["ticks.jsonl", "ticks.jsonl.gz", "ticks.gbt"])
async def test_round_trip_offline_feed_ends(tmp_path: Path, name: str) -> None:
    events: list[FeedEvent] = [
        FeedStale(None, 1, "cannot load markets: ExchangeNotAvailable: 503"),
        tick(1000, BTC, "70000.10", bid="70000.0", ask="70000.2", funding_rate="-0.0001"),
        tick(1000, BTC, "70000.10", bid="70000.0", ask="70000.2", funding_rate="-0.0001"),
        tick(999, ETH, "3500.123456789012345678", index="3500.12"),
        tick(1001, BTC, "1E+5", last="99999.9"),
    ]
    path = tmp_path / name
    messages: list[str] = []
    feed = ListFeed(events)
    async with asyncio.timeout(TIMEOUT):
        summary = await record(
            feed, path, stop=asyncio.Event(), symbols=[BTC, ETH, "SOL/USDT:USDT"],
            notify=messages.append,
        )  # fmt: skip
        back = await read_back(path)
    assert (feed.entered, feed.exited) == (1, 1)
    assert summary.stopped_by == "end"
    assert dict(summary.ticks) == {BTC: 2, ETH: 1, "SOL/USDT:USDT": 0}
    assert summary.duplicates == 1
    expected = [e for i, e in enumerate(events) if isinstance(e, TickUpdate) and i != 2]
    assert back == [(e.ts, e.tick) for e in expected]  # Decimal equality, field by field
    assert str(back[1][1].mark) == "3500.123456789012345678"  # every digit kept
    assert messages[0].startswith("feed problem: cannot load markets")
    assert "receiving ticks" in messages
    assert summary.line().startswith(f"wrote 3 ticks to {path} in ")
    assert summary.line().endswith(f"({BTC} 2, {ETH} 1, SOL/USDT:USDT 0); the feed ended")
    if name.endswith(".gz"):
        assert_gzip_complete(path)


async def test_stop_event_closes_gzip(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    feed = ListFeed([tick(1, BTC, "1.5"), tick(2, BTC, "1.6")], hang=True)
    recording = Recording()
    async with asyncio.timeout(TIMEOUT):
        recording.start(feed, path)
        while len(recording.ticks) < 2:
            recording.new_tick.clear()
            await recording.new_tick.wait()
        recording.stop.set()
        assert recording.task is not None
        summary = await recording.task
    assert (summary.stopped_by, summary.total, feed.exited) == ("stop", 2, 1)
    assert_gzip_complete(path)
    assert await read_back(path) == recording.ticks


async def test_duration_with_a_silent_feed(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    async with asyncio.timeout(TIMEOUT):
        summary = await record(ListFeed([], hang=True), path, stop=asyncio.Event(), duration=0.05)
    assert (summary.stopped_by, summary.total) == ("duration", 0)
    assert path.read_text() == ""


@pytest.mark.parametrize("feed_type", [ListFeed, TaskGroupFeed])
async def test_count_stops_even_when_more_ticks_are_queued(
    tmp_path: Path, feed_type: type[ListFeed]
) -> None:
    path = tmp_path / "t.jsonl"
    feed = feed_type([tick(i, BTC, f"{i}.5") for i in range(1, 10)], hang=True)
    before = asyncio.all_tasks()
    async with asyncio.timeout(TIMEOUT):
        summary = await record(feed, path, stop=asyncio.Event(), count=4)
    assert (summary.stopped_by, summary.total) == ("count", 4)
    assert [ts for ts, _ in await read_back(path)] == [1, 2, 3, 4]
    assert asyncio.all_tasks() - before == set()  # the feed's own task ended too


@pytest.mark.parametrize("feed_type", [ListFeed, TaskGroupFeed])
async def test_file_error_propagates_and_file_is_closed(
    tmp_path: Path, feed_type: type[ListFeed]
) -> None:
    class Boom(Exception):
        pass

    def on_tick(update: TickUpdate) -> None:
        raise Boom

    path = tmp_path / "t.jsonl.gz"
    feed = feed_type([tick(1, BTC, "2")], hang=True)
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(Boom):  # itself, not wrapped in a group
            await record(feed, path, stop=asyncio.Event(), on_tick=on_tick)
    assert feed.exited == 1
    assert_gzip_complete(path)


@pytest.mark.parametrize(("count", "duration"), [(0, None), (None, 0.0), (None, float("nan"))])
async def test_record_refuses_bad_limits(
    tmp_path: Path, count: int | None, duration: float | None
) -> None:
    with pytest.raises(ValueError):
        await record(
            ListFeed([]), tmp_path / "x", stop=asyncio.Event(), count=count, duration=duration
        )


# ----------------------------------------------------------------------------- stand-in exchange


@integration
@pytest.mark.parametrize("name", ["live.jsonl", "live.jsonl.gz"])
async def test_records_live_ticks_exactly(
    standin: StandinBinance, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    recording = Recording()
    count = 12
    async with asyncio.timeout(TIMEOUT):
        recording.start(exchange_feed(standin, [BTC, ETH]), path, count=count, symbols=[BTC, ETH])
        await wait_subscribed(standin, STREAMS)
        await push_until(
            standin, recording, lambda: recording.task is not None and recording.task.done()
        )
        assert recording.task is not None
        summary = await recording.task
        back = await read_back(path)
    assert summary.stopped_by == "count"
    assert summary.total == count == len(back)
    assert back == recording.ticks  # the file holds exactly what the feed produced
    # ... and that is the stand-in's decimal strings, exactly (ccxt parsed them as floats)
    pushed = [prices(i) for i in range(100)]
    for _, t in back:
        assert str(t.mark) in {p["mark"] for p in pushed}
        assert t.index == t.mark  # the stand-in's index follows the mark
        assert t.funding_rate in {Decimal("-0.0000125"), Decimal("0.00012")}
        assert t.bid is None or t.bid in {Decimal(p["bid"]) for p in pushed}
        assert t.ask is None or str(t.ask) in {p["ask"] for p in pushed}
        assert t.last is None or str(t.last) in {p["last"] for p in pushed}
    assert {t.symbol for _, t in back} == {BTC, ETH}
    if name.endswith(".gz"):
        assert_gzip_complete(path)
    raw = path.read_bytes()
    lines = (gzip.decompress(raw) if name.endswith(".gz") else raw).decode().splitlines()
    assert all(json.loads(line)["type"] == "tick" for line in lines)
    assert standin.unknown_paths == []


@integration
async def test_stop_while_live_closes_everything(standin: StandinBinance, tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl.gz"
    recording = Recording()
    before = asyncio.all_tasks()
    async with asyncio.timeout(TIMEOUT):
        recording.start(exchange_feed(standin, [BTC]), path)
        await wait_subscribed(standin, ["btcusdt@markPrice@1s", "btcusdt@bookTicker"])
        await push_until(standin, recording, lambda: len(recording.ticks) >= 3, symbols=(BTC,))
        recording.stop.set()
        assert recording.task is not None
        summary = await recording.task
    assert summary.stopped_by == "stop"
    assert_gzip_complete(path)
    assert await read_back(path) == recording.ticks
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()
    await standin.wait_for(lambda: standin.open_websockets == 0, timeout=TIMEOUT)


@integration
async def test_unreachable_exchange_is_retried_until_it_answers(
    standin: StandinBinance, tmp_path: Path
) -> None:
    path = tmp_path / "t.jsonl"
    recording = Recording()
    standin.refuse_connections(True)
    # small jitter factor: the backoff's shape is the feed's; the test only needs it quick
    feed = exchange_feed(standin, [BTC], random=lambda: 0.02)
    async with asyncio.timeout(TIMEOUT):
        recording.start(feed, path, count=1)
        message = await recording.wait_message(lambda m: m.startswith("feed problem"))
        assert "cannot load markets" in message and "retrying until stopped" in message
        standin.refuse_connections(False)
        await recording.wait_message(lambda m: m == "feed recovered")
        await wait_subscribed(standin, ["btcusdt@markPrice@1s"])
        await push_until(
            standin,
            recording,
            lambda: recording.task is not None and recording.task.done(),
            symbols=(BTC,),
        )
        assert recording.task is not None
        summary = await recording.task
    assert (summary.stopped_by, summary.total) == ("count", 1)


@integration
async def test_duration_with_unreachable_exchange_records_nothing(
    standin: StandinBinance, tmp_path: Path
) -> None:
    path = tmp_path / "t.jsonl.gz"
    standin.refuse_connections(True)
    recording = Recording()
    async with asyncio.timeout(TIMEOUT):
        recording.start(exchange_feed(standin, [BTC]), path, duration=0.5)
        assert recording.task is not None
        summary = await recording.task
    assert (summary.stopped_by, summary.total) == ("duration", 0)
    assert summary.last_problem is not None and "ExchangeNotAvailable" in summary.last_problem
    assert "last feed problem: cannot load markets" in summary.line()
    assert gzip.decompress(path.read_bytes()) == b""


# ----------------------------------------------------------------------------- command line


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """run_record configures logging for the process, as the CLI does; undo it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="guardbot record")
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--count", "0"], "--count: must be a positive integer, got 0"),
        (["--duration", "-1"], "--duration: must be a positive number of seconds, got -1.0"),
        (["--duration", "inf"], "--duration: must be a positive number of seconds, got inf"),
        (["--symbols", BTC], "--exchange: is required (or give -c with an [exchange] section)"),
        (["--exchange", "binanceusdm"], "--symbols: is required"),
        (["--exchange", "nosuchexchange", "--symbols", BTC], "ccxt.pro has no exchange"),
        (["--exchange", "binanceusdm", "--symbols", "BTCUSDT"], "--symbols: must be ccxt"),
        (["--exchange", "binanceusdm", "--symbols", " , "], "--symbols: must name at least one"),
        (
            ["--exchange", "binanceusdm", "--symbols", BTC, "--ccxt-config", "{x"],
            "--ccxt-config: invalid JSON at column 2",
        ),
        (
            ["--exchange", "binanceusdm", "--symbols", BTC, "--ccxt-config", "[1]"],
            "--ccxt-config: must be a JSON object, got list",
        ),
        (
            ["--exchange", "binanceusdm", "--symbols", BTC, "--ccxt-config", '{"secret": "s"}'],
            "--ccxt-config: secret: recording public prices needs no credentials",
        ),
        (["--exchange", "binanceusdm", "--symbols", BTC, "-c", "/nonexistent.toml"], "nonexistent"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, argv: list[str], expected: str) -> None:
    err = io.StringIO()
    status = run_record(parse("--out", str(tmp_path / "x.jsonl"), *argv), err=err)
    assert status == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("guardbot record: ")
    assert expected in lines[0]
    assert not (tmp_path / "x.jsonl").exists()  # nothing created for bad arguments


def test_out_in_a_missing_directory_is_exit_2(tmp_path: Path) -> None:
    err = io.StringIO()
    args = parse("--exchange", "binanceusdm", "--symbols", BTC, "--out", str(tmp_path / "no/x"))
    assert run_record(args, err=err) == 2
    assert err.getvalue() == f"guardbot record: --out: directory {tmp_path / 'no'} does not exist\n"


def test_argparse_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from guardbot.cli.record import main

    assert main(["--out", "x", "--count", "many"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--count: invalid int value: 'many'" in err[0]


@integration
@pytest.mark.usefixtures("restore_logging")
async def test_run_record_end_to_end(standin: StandinBinance, tmp_path: Path) -> None:
    """run_record with a config file and --ccxt-config, in a thread (asyncio.run of its own)."""
    config = tmp_path / "guardbot.toml"
    config.write_text(
        '[exchange]\nid = "binanceusdm"\nsymbols = ["ETH/USDT:USDT"]\n'
        '[exchange.ccxt]\noptions = { defaultType = "swap" }\n',
        encoding="utf-8",
    )
    path = tmp_path / "cli.jsonl.gz"
    args = parse(
        "-c", str(config), "--symbols", f"{BTC},{BTC}", "--out", str(path), "--count", "3",
        "--ccxt-config", json.dumps(standin.ccxt_config()),
    )  # fmt: skip
    err = io.StringIO()
    async with asyncio.timeout(TIMEOUT):
        thread = asyncio.ensure_future(asyncio.to_thread(run_record, args, err=err))
        await wait_subscribed(standin, ["btcusdt@markPrice@1s"])
        for i in range(50):  # bounded: each push yields at least one tick
            if thread.done():
                break
            await push(standin, BTC, i)
            await asyncio.wait([thread], timeout=0.2)  # a push per 0.2 s until it finishes
        status = await thread
    lines = err.getvalue().splitlines()
    assert status == 0, lines
    assert lines[0] == "guardbot record: receiving ticks"
    assert lines[-1].startswith(f"guardbot record: wrote 3 ticks to {path} in ")
    assert lines[-1].endswith(f"({BTC} 3); --count reached")
    assert_gzip_complete(path)
    assert [t.symbol for _, t in await read_back(path)] == [BTC] * 3


@integration
@pytest.mark.usefixtures("restore_logging")
async def test_symbol_not_listed_is_exit_2(standin: StandinBinance, tmp_path: Path) -> None:
    args = parse(
        "--exchange", "binanceusdm", "--symbols", "DOGE/USDT:USDT", "--out",
        str(tmp_path / "x.jsonl"), "--ccxt-config", json.dumps(standin.ccxt_config()),
    )  # fmt: skip
    err = io.StringIO()
    async with asyncio.timeout(TIMEOUT):
        status = await asyncio.to_thread(run_record, args, err=err)
    assert status == 2
    assert err.getvalue().splitlines() == [
        "guardbot record: exchange.symbols: not listed by the exchange: DOGE/USDT:USDT "
        "(use ccxt unified symbols such as BTC/USDT:USDT)"
    ]


@integration
@pytest.mark.usefixtures("restore_logging")
async def test_unreachable_for_the_whole_duration_is_exit_1(
    standin: StandinBinance, tmp_path: Path
) -> None:
    standin.refuse_connections(True)
    path = tmp_path / "x.jsonl"
    args = parse(
        "--exchange", "binanceusdm", "--symbols", BTC, "--out", str(path), "--duration", "0.5",
        "--ccxt-config", json.dumps(standin.ccxt_config()),
    )  # fmt: skip
    err = io.StringIO()
    async with asyncio.timeout(TIMEOUT):
        status = await asyncio.to_thread(run_record, args, err=err)
    lines = err.getvalue().splitlines()
    assert status == 1, lines
    assert lines[0].startswith("guardbot record: feed problem: cannot load markets")
    assert lines[0].endswith("retrying until stopped")
    assert lines[-1].startswith(f"guardbot record: wrote 0 ticks to {path} in ")
    assert "--duration elapsed; last feed problem: cannot load markets" in lines[-1]


@integration
async def test_sigint_stops_cleanly(standin: StandinBinance, tmp_path: Path) -> None:
    """A real process and a real SIGINT: exit 0, gzip trailer intact, ticks readable."""
    path = tmp_path / "sig.jsonl.gz"
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "guardbot.cli.record", "--exchange", "binanceusdm",
        "--symbols", BTC, "--out", str(path),
        "--ccxt-config", json.dumps(standin.ccxt_config()),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert process.stderr is not None and process.stdout is not None
    try:
        async with asyncio.timeout(30):  # a cold start imports ccxt
            await wait_subscribed(standin, ["btcusdt@markPrice@1s"])
            first = asyncio.ensure_future(process.stderr.readline())
            for i in range(50):
                await push(standin, BTC, i)
                done, _ = await asyncio.wait([first], timeout=0.2)
                if done:
                    break
            assert (await first).decode() == "guardbot record: receiving ticks\n"
            process.send_signal(signal.SIGINT)
            rest = await process.stderr.read()
            stdout = await process.stdout.read()
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = rest.decode().splitlines()
    assert status == 0, lines
    assert stdout == b""
    assert len(lines) == 1 and lines[0].startswith("guardbot record: wrote ")
    assert lines[0].endswith("; stopped")
    assert_gzip_complete(path)
    ticks = await read_back(path)
    assert ticks and all(t.symbol == BTC for _, t in ticks)
