"""CcxtFeed against an injected fake exchange and a virtual clock: no network, no real sleeps."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from structlog.testing import capture_logs

from guardbot.core.commands import TickCmd
from guardbot.feeds.base import FeedEvent, FeedRecovered, FeedStale, SymbolState, TickUpdate
from guardbot.feeds.ccxt_feed import CcxtFeed

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
T0 = 1_700_000_000.0  # virtual clock start, seconds
TIMEOUT = 5.0


async def settle(rounds: int = 30) -> None:
    """Let every ready task run (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeClock:
    """Virtual time: ``sleep`` parks until :meth:`advance` moves the clock past its deadline."""

    def __init__(self, start: float = T0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (self.now + delay, next(self._seq), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        await settle()
        while self._waiters and self._waiters[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._waiters)
            self.now = max(self.now, deadline)
            if not fut.done():
                fut.set_result(None)
            await settle()
        self.now = target
        await settle()


class Channel:
    """One websocket stream: messages (``{symbol: ticker}``) or exceptions, in order."""

    def __init__(self) -> None:
        self.items: deque[dict[str, Any] | BaseException] = deque()
        self.ready = asyncio.Event()

    def put(self, item: dict[str, Any] | BaseException) -> None:
        self.items.append(item)
        self.ready.set()

    async def watch(self, cache: dict[str, Any]) -> dict[str, Any]:
        """Like ccxt: return the message that woke us; later queued messages only reach the
        cache (folded)."""
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        first = self.items.popleft()
        if isinstance(first, BaseException):
            raise first
        cache.update(first)
        while self.items and not isinstance(self.items[0], BaseException):
            later = self.items.popleft()
            assert isinstance(later, dict)
            cache.update(later)
        return dict(first)


class FakeExchange:
    # Binance's quirks: the funding rate is read from the raw mark-price frame (``info.r``).
    id = "binanceusdm"

    def __init__(self, *, watch: bool = True) -> None:
        self.has = {
            "watchMarkPrices": watch,
            "watchBidsAsks": watch,
            "fetchMarkPrices": True,
            "fetchBidsAsks": True,
        }
        self.marks = Channel()
        self.books = Channel()
        self.tickers: dict[str, Any] = {}
        self.bidsasks: dict[str, Any] = {}
        self.rest_marks: dict[str, Any] = {}
        self.rest_books: dict[str, Any] = {}
        self.rest_error: BaseException | None = None
        self.calls: Counter[str] = Counter()

    async def watch_mark_prices(self, symbols: list[str]) -> dict[str, Any]:
        self.calls["watch_mark_prices"] += 1
        return await self.marks.watch(self.tickers)

    async def watch_bids_asks(self, symbols: list[str]) -> dict[str, Any]:
        self.calls["watch_bids_asks"] += 1
        return await self.books.watch(self.bidsasks)

    async def fetch_mark_prices(self, symbols: list[str]) -> dict[str, Any]:
        self.calls["fetch_mark_prices"] += 1
        if self.rest_error is not None:
            raise self.rest_error
        return dict(self.rest_marks)

    async def fetch_bids_asks(self, symbols: list[str]) -> dict[str, Any]:
        self.calls["fetch_bids_asks"] += 1
        return dict(self.rest_books)


def mark(
    symbol: str, price: object, ts: int, *, index: object = None, funding: object = None
) -> dict[str, Any]:
    return {
        symbol: {
            "symbol": symbol,
            "timestamp": ts,
            "markPrice": price,
            "indexPrice": index,
            "last": None,
            "bid": None,
            "ask": None,
            "info": {"e": "markPriceUpdate", "r": funding},
        }
    }


def book(symbol: str, bid: object, ask: object, ts: int) -> dict[str, Any]:
    return {symbol: {"symbol": symbol, "timestamp": ts, "bid": bid, "ask": ask, "last": None}}


class FakeRandom:
    def __init__(self, values: Iterable[float]) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def make_feed(
    ex: FakeExchange,
    clock: FakeClock,
    *,
    symbols: tuple[str, ...] = (BTC,),
    random: FakeRandom | None = None,
    stale_after_s: float = 5.0,
) -> CcxtFeed:
    return CcxtFeed(
        ex,
        list(symbols),
        stale_after_s=stale_after_s,
        rest_poll_s=2.0,
        clock=clock,
        sleep=clock.sleep,
        random=random or FakeRandom([1.0]),
    )


async def take(it: AsyncIterator[FeedEvent], n: int) -> list[FeedEvent]:
    return [await anext(it) for _ in range(n)]


async def test_mark_and_bid_ask_merge_into_one_tick() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = FakeExchange(), FakeClock()
        async with make_feed(ex, clock) as feed, aclosing(feed.updates()) as it:
            ex.books.put(book(BTC, 64999.9, 65000.2, 1_000))  # no mark yet: nothing emitted
            await settle()
            assert feed.pending() == 0
            ex.marks.put(mark(BTC, 65000.1, 1_001, index=64998.5, funding=-0.0001))
            await settle()
            ex.books.put(book(BTC, 65000.0, 65000.3, 1_002))
            await settle()
            assert feed.pending() == feed.status()["backlog"] == 2  # received, not yet taken
            first, second = await take(it, 2)
            assert first == TickUpdate(
                1_001,
                TickCmd(
                    BTC,
                    Decimal("65000.1"),
                    bid=Decimal("64999.9"),
                    ask=Decimal("65000.2"),
                    index=Decimal("64998.5"),
                    funding_rate=Decimal("-0.0001"),
                ),
            )
            assert isinstance(second, TickUpdate)
            assert second.ts == 1_002
            assert second.tick.mark == Decimal("65000.1")  # kept from the mark stream
            assert (second.tick.bid, second.tick.ask) == (Decimal("65000.0"), Decimal("65000.3"))
            assert feed.pending() == feed.status()["backlog"] == 0
            assert feed.status()["mode"] == "ws"


async def test_watch_return_is_a_wake_up_latest_value_wins() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = FakeExchange(), FakeClock()
        # Four messages queue up before the loop runs: ccxt returns the first, caches the rest.
        ex.marks.put(mark(BTC, 100.0, 1))
        ex.marks.put(mark(ETH, 10.0, 1))
        ex.marks.put(mark(BTC, 101.0, 2))
        ex.marks.put(mark(BTC, 102.5, 3))
        async with make_feed(ex, clock, symbols=(BTC, ETH)) as feed, aclosing(feed.updates()) as it:
            await settle()
            events = await take(it, feed.pending())
            assert ex.calls["watch_mark_prices"] == 2  # one wake-up, then waiting again
            assert [
                (e.tick.symbol, e.tick.mark, e.ts) for e in events if isinstance(e, TickUpdate)
            ] == [
                (BTC, Decimal("102.5"), 3),
                (ETH, Decimal("10.0"), 1),
            ]
            # The next wake-up does not re-emit the cached values already applied.
            ex.marks.put(mark(ETH, 11.0, 4))
            await settle()
            (event,) = await take(it, feed.pending())
            assert isinstance(event, TickUpdate)
            assert (event.tick.symbol, event.tick.mark) == (ETH, Decimal("11.0"))


async def test_backoff_doubles_to_30s_and_resets_after_a_good_tick() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = FakeExchange(), FakeClock()
        rnd = FakeRandom([1.0] * 9 + [0.5])
        errors = [
            ccxt.NetworkError("down"),
            ccxt.ExchangeNotAvailable("503"),
            ccxt.RequestTimeout("slow"),
        ]
        for i in range(8):
            ex.marks.put(errors[i % 3])
        async with make_feed(ex, clock, random=rnd, stale_after_s=1e6) as feed:
            with capture_logs() as logged:
                await clock.advance(200)
            delays = feed.backoff_delays("watch_mark_prices")
            assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
            # One info line per backoff step, with the cause (issue 11 item 7).
            steps = [e for e in logged if e["event"] == "exchange stream failed; reconnecting"]
            assert [(e["log_level"], e["retry_in_s"]) for e in steps] == [
                ("info", d) for d in delays
            ]
            assert [e["cause"] for e in steps[:3]] == ["other", "other", "timeout"]
            ex.marks.put(mark(BTC, 100.0, 1))  # good tick: reset
            await settle()
            ex.marks.put(ccxt.NetworkError("again"))
            ex.marks.put(ccxt.NetworkError("and again"))
            await clock.advance(10)
            assert feed.backoff_delays("watch_mark_prices")[8:] == [0.5, 0.5]
            status = feed.status()
            assert status["streams"]["watch_mark_prices"]["reconnects"] == 10
            assert status["reconnects"] == 10
            assert status["symbols"][BTC]["last_update_ts"] == 1
            # Every sleep of the feed was a backoff delay (no idle polling).
            assert sorted(clock.sleeps) == sorted([*delays, 0.5, 0.5, 1e6])  # + the watchdog


async def test_non_retryable_error_ends_the_feed() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = FakeExchange(), FakeClock()
        ex.marks.put(ccxt.BadSymbol("no such market"))
        with pytest.raises(BaseExceptionGroup) as info:
            async with make_feed(ex, clock) as feed, aclosing(feed.updates()) as it:
                await anext(it)
        assert info.group_contains(ccxt.BadSymbol)


async def test_stale_once_then_rest_polling_then_recovered() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = FakeExchange(), FakeClock()
        t0_ms = int(T0 * 1000)
        ex.marks.put(mark(BTC, 100.0, t0_ms))
        ex.marks.put(ccxt.NetworkError("connection reset"))
        async with make_feed(ex, clock) as feed, aclosing(feed.updates()) as it:
            await settle()
            (tick,) = await take(it, feed.pending())
            assert isinstance(tick, TickUpdate)
            ex.marks.put(ccxt.NetworkError("still down"))
            await clock.advance(4.9)
            assert feed.pending() == 0 and feed.mode == "ws"  # failing, but not stale yet
            ex.rest_marks = mark(BTC, 99.0, t0_ms + 5_000)
            ex.rest_books = book(BTC, 98.9, 99.1, t0_ms + 5_000)
            await clock.advance(0.1)
            events = await take(it, feed.pending())
            assert events[0] == FeedStale(BTC, t0_ms, "no mark price for 5.0s")
            assert isinstance(events[1], FeedStale) and events[1].symbol is None
            assert "REST polling" in events[1].reason and "NetworkError" in events[1].reason
            assert events[2] == FeedRecovered(BTC, t0_ms + 5_000)
            assert [type(e) for e in events[3:]] == [TickUpdate, TickUpdate]
            last = events[-1]
            assert isinstance(last, TickUpdate) and last.tick.bid == Decimal("98.9")
            assert feed.status()["mode"] == "rest"
            assert ex.calls["fetch_mark_prices"] == 1

            # REST keeps the symbol fresh: no second FeedStale; polls every rest_poll_s.
            for i in range(1, 5):
                ex.rest_marks = mark(BTC, 99.0 + i, t0_ms + 5_000 + 2_000 * i)
                await clock.advance(2.0)
            assert ex.calls["fetch_mark_prices"] == 5
            events = await take(it, feed.pending())
            assert not any(isinstance(e, FeedStale) for e in events)
            assert feed.status()["rest"]["polls"] == 5

            # The websocket delivers again: back to ws, REST stops.
            ex.marks.put(mark(BTC, 104.0, t0_ms + 14_000))
            await clock.advance(1.0)
            events = await take(it, feed.pending())
            assert isinstance(events[0], TickUpdate) and events[0].tick.mark == Decimal("104.0")
            assert events[1] == FeedRecovered(None, t0_ms + 13_000)
            assert feed.mode == "ws"
            await clock.advance(10.0)
            assert ex.calls["fetch_mark_prices"] == 5
            assert feed.status()["symbols"][BTC]["stale"] is True  # no marks for 10 s again
            assert feed.status()["mode"] == "ws"  # quiet but healthy websocket: alert only


async def test_quiet_symbol_on_healthy_websocket_alerts_without_rest() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = FakeExchange(), FakeClock()
        async with make_feed(ex, clock, symbols=(BTC, ETH)) as feed, aclosing(feed.updates()) as it:
            await clock.advance(3.0)
            ex.marks.put(mark(ETH, 10.0, 1))
            await clock.advance(2.0)
            events = await take(it, feed.pending())
            assert [type(e) for e in events] == [TickUpdate, FeedStale]
            assert events[1] == FeedStale(BTC, int(T0 * 1000), "no mark price for 5.0s")
            await clock.advance(60.0)
            events = await take(it, feed.pending())
            assert events == [FeedStale(ETH, int((T0 + 3) * 1000), "no mark price for 5.0s")]
            assert feed.mode == "ws" and ex.calls["fetch_mark_prices"] == 0
            ex.marks.put(mark(BTC, 100.0, 2))
            await settle()
            events = await take(it, feed.pending())
            assert events[0] == FeedRecovered(BTC, int((T0 + 65) * 1000))
            assert isinstance(events[1], TickUpdate)


async def test_exchange_without_watch_methods_polls_rest() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = FakeExchange(watch=False), FakeClock()
        ex.rest_marks = mark(BTC, 100.0, 1)
        ex.rest_books = book(BTC, 99.0, 101.0, 1)
        async with make_feed(ex, clock) as feed, aclosing(feed.updates()) as it:
            await settle()
            events = await take(it, feed.pending())
            assert isinstance(events[0], FeedStale) and events[0].symbol is None
            assert [type(e) for e in events[1:]] == [TickUpdate, TickUpdate]
            ex.rest_error = ccxt.RequestTimeout("slow")
            await clock.advance(2.0)
            assert feed.status()["rest"] == {"polls": 2, "errors": 1}
            assert feed.mode == "rest" and ex.calls["watch_mark_prices"] == 0


async def test_bad_prices_and_time_going_back_are_dropped_and_counted() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = FakeExchange(), FakeClock()
        async with make_feed(ex, clock) as feed, aclosing(feed.updates()) as it:
            for message in (
                mark(BTC, 100.0, 10),
                mark(BTC, float("nan"), 11),
                mark(BTC, 0.0, 12),
                mark(BTC, -5.0, 13),
                mark(BTC, "inf", 14),
                mark(BTC, 101.0, 9),  # time going back
                book(BTC, 99.0, 0, 15),
                mark(BTC, 102.0, 16),
            ):
                (ex.marks if "markPrice" in message[BTC] else ex.books).put(message)
                await settle()
            events = await take(it, feed.pending())
            assert [(e.ts, e.tick.mark) for e in events if isinstance(e, TickUpdate)] == [
                (10, Decimal("100.0")),
                (16, Decimal("102.0")),
            ]
            dropped = {"non_finite": 2, "non_positive": 3, "time_back": 1}
            assert feed.status()["dropped"] == dropped
            assert feed.status()["symbols"][BTC]["dropped"] == dropped


def test_symbol_state_merges_and_validates() -> None:
    state = SymbolState(BTC)
    assert state.apply("book", 5, {"bid": "99.5", "ask": 100.5})
    assert state.tick() is None  # no mark yet
    assert state.apply("mark", 3, {"mark": 100.0, "funding_rate": -0.0003})  # own clock per source
    assert state.tick() == TickCmd(
        BTC,
        Decimal("100.0"),
        bid=Decimal("99.5"),
        ask=Decimal("100.5"),
        funding_rate=Decimal("-0.0003"),
    )
    assert not state.apply("mark", 4, {"mark": True})
    assert not state.apply("mark", 4, {"mark": "abc"})
    assert not state.apply("mark", 4, {"mark": 101.0, "funding_rate": float("inf")})
    assert not state.apply("mark", 2, {"mark": 101.0})
    assert state.dropped == Counter(non_numeric=2, non_finite=1, time_back=1)
    assert state.apply("ticker", None, {"last": 100.2})
    tick = state.tick()
    assert tick is not None and tick.last == Decimal("100.2") and tick.mark == Decimal("100.0")
    assert state.last_ts == 5
