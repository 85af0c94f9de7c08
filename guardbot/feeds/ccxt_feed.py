"""Live prices from an injected ccxt.pro exchange: a stream plan per venue, watchdog, REST fallback.

Facts this relies on (ccxt 4.5.90, docs/architecture.md §4):

* A ``watch_*`` call returns only the latest values when awaited; updates arriving between two
  awaits are folded into the exchange's cache. Each return is therefore a *wake-up*: the feed reads
  the latest value per symbol from the returned dict and from the exchange cache
  (``tickers``, ``bidsasks``, ``fundingRates``), newest wins.
* Mark-price and ticker updates overwrite each other in ``exchange.tickers``: tickers are only
  watched on a separate ``ticker_exchange`` instance, and all fields are merged in guardbot's own
  :class:`~guardbot.feeds.base.SymbolState`.
* ccxt does not reconnect by itself; the next ``watch_*`` call after a ``NetworkError`` does. Each
  stream loop retries with full-jitter exponential backoff (0.5 s doubling to 30 s), reset after a
  good update.

The plan is decided at start from ``exchange.has`` (generic) and the venue's quirks
(:mod:`guardbot.feeds.venues`): mark prices from ``watch_mark_prices`` / ``watch_mark_price``, best
bid/ask from ``watch_bids_asks``, tickers (last, and on some venues mark, index, bid/ask, funding)
from ``watch_tickers`` / ``watch_ticker``, funding from ``watch_funding_rates`` /
``watch_funding_rate``. A stream that raises ``NotSupported`` is dropped from the plan (logged once,
never retried). Funding rate, next funding time and interval come from whatever stream carries
them; a REST poll (``fetch_funding_rates`` / ``fetch_funding_rate``) fills in at start and whenever
a symbol's next funding time is unknown, passed, or not refreshed for ``funding_poll_s``.

Staleness is judged on mark prices (the margin engine's input): no accepted mark for a symbol
within ``stale_after_s`` emits :class:`FeedStale` once. While a symbol is stale *and* a websocket
stream is failing (or no planned stream carries marks), the feed polls REST every ``rest_poll_s``
(mode ``rest``: ``fetch_mark_prices`` / ``fetch_mark_price``, ``fetch_bids_asks``, and
``fetch_tickers`` where one of those is missing) until a websocket stream delivers marks again. A
quiet symbol on a healthy connection only raises the alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import random as _random
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import ccxt
import structlog

from guardbot.feeds.base import FeedEvent, FeedRecovered, FeedStale, SymbolState, TickUpdate
from guardbot.feeds.fields import KIND_FIELDS, extract
from guardbot.feeds.venues import Kind, Venue, venue_for
from guardbot.runtime.backoff import BACKOFF_BASE, BACKOFF_CAP, backoff_delay
from guardbot.runtime.causes import root_cause

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_MAX_S",
    "RETRYABLE",
    "CcxtFeed",
    "Stream",
    "StreamStatus",
    "plan_streams",
]

_log = structlog.get_logger("guardbot.feeds.ccxt")

BACKOFF_BASE_S = BACKOFF_BASE
BACKOFF_MAX_S = BACKOFF_CAP

#: Errors after which a stream retries (ccxt reconnects on the next watch call).
#: ExchangeNotAvailable and RequestTimeout subclass NetworkError; listed for the reader.
RETRYABLE: tuple[type[BaseException], ...] = (
    ccxt.NetworkError,
    ccxt.ExchangeNotAvailable,
    ccxt.RequestTimeout,
)

Mode = Literal["ws", "rest"]


@dataclass(slots=True)
class StreamStatus:
    """Health of one websocket stream loop."""

    name: str
    updates: int = 0
    reconnects: int = 0
    failures: int = 0  # consecutive failed watch calls; 0 = healthy
    last_error: str | None = None
    dropped: str | None = None  # why the stream left the plan (NotSupported), never retried


@dataclass(frozen=True, slots=True)
class Stream:
    """One planned websocket stream: ``call()`` returns ``{symbol: entry}`` (a wake-up)."""

    name: str
    kind: Kind
    call: Callable[[], Awaitable[Mapping[str, Any]]]
    carries_mark: bool
    #: The symbols the stream covers (a per-symbol watch: one).
    symbols: tuple[str, ...] = ()


@dataclass(slots=True)
class _Symbol:
    state: SymbolState
    last_mark_s: float  # local clock of the last accepted mark (or the start)
    stale: bool = False
    stale_since_s: float = 0.0
    next_funding_ts: int | None = None
    funding_interval_ms: int | None = None
    funding_seen_s: float | None = None  # local clock when a stream last told the funding time
    #: Per stream kind, the cache entry last examined (ccxt's cache entry objects are replaced,
    #: not changed, when a frame arrives): one already looked at is not read again.
    examined: dict[str, object] = field(default_factory=dict)


class _Events:
    """The feed's event queue: ``asyncio.Queue``'s put and get without its bookkeeping (no size
    bound, no task counting), since an event is put for nearly every frame. A consumer drains
    what is there, then waits for the next put; the first waiting consumer is woken."""

    __slots__ = ("_waiters", "items")

    def __init__(self) -> None:
        self.items: deque[FeedEvent] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def put_nowait(self, event: FeedEvent) -> None:
        self.items.append(event)
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def get_nowait(self) -> FeedEvent:
        if not self.items:
            raise asyncio.QueueEmpty
        return self.items.popleft()

    def qsize(self) -> int:
        return len(self.items)

    async def wait(self) -> None:
        """Until an event is there (at once if one is)."""
        while not self.items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done() or waiter.cancelled():
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)

    async def get(self) -> FeedEvent:
        await self.wait()
        return self.items.popleft()


@dataclass(slots=True)
class _Backoff:
    random: Callable[[], float]
    attempt: int = 0
    delays: list[float] = field(default_factory=list)

    def next_delay(self) -> float:
        delay = backoff_delay(self.attempt, self.random)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


def _has(exchange: Any, name: str) -> bool:
    has = getattr(exchange, "has", None) or {}
    return bool(has.get(name)) and callable(getattr(exchange, _snake(name), None))


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _entry_ts(entry: Mapping[str, Any]) -> int | None:
    ts = entry.get("timestamp")
    return ts if type(ts) is int or (isinstance(ts, int) and not isinstance(ts, bool)) else None


#: A ticker's fields where a book stream owns bid/ask.
_TICKER_WITHOUT_BOOK = tuple(f for f in KIND_FIELDS["ticker"] if f not in ("bid", "ask"))


#: Where ccxt caches what each kind of stream returns.
_CACHE_ATTR: Mapping[Kind, str] = {
    "mark": "tickers",
    "book": "bidsasks",
    "ticker": "tickers",
    "funding": "fundingRates",
}


def _single(
    watch: Callable[..., Awaitable[Any]], symbol: str, *args: Any
) -> Callable[[], Awaitable[Mapping[str, Any]]]:
    async def call() -> Mapping[str, Any]:
        return {symbol: await watch(symbol, *args)}

    return call


def _many(
    watch: Callable[..., Awaitable[Any]], symbols: list[str], *args: Any
) -> Callable[[], Awaitable[Mapping[str, Any]]]:
    async def call() -> Mapping[str, Any]:
        result = await watch(symbols, *args)
        return result if isinstance(result, Mapping) else {}

    return call


def plan_streams(
    exchange: Any, ticker_exchange: Any | None, symbols: Sequence[str], venue: Venue
) -> list[Stream]:
    """The websocket streams to run, from ``exchange.has`` and the venue's quirks.

    One stream per kind: the multi-symbol watch where the exchange has it, else one per symbol.
    Tickers run on ``ticker_exchange`` (ccxt's ``tickers`` cache is shared with mark prices).
    """
    syms = list(symbols)
    plan: list[Stream] = []

    def add(
        kind: Kind, owner: Any, many: str, one: str, *args: Any, per_symbol: bool = False
    ) -> None:
        carries_mark = kind == "mark" or (kind == "ticker" and venue.ticker_has_mark)
        if not per_symbol and _has(owner, many):
            method = getattr(owner, _snake(many))
            call = _many(method, syms, *args)
            plan.append(Stream(_snake(many), kind, call, carries_mark, tuple(syms)))
        elif _has(owner, one):
            method = getattr(owner, _snake(one))
            for sym in syms:
                name = f"{_snake(one)}:{sym}"
                call = _single(method, sym, *args)
                plan.append(Stream(name, kind, call, carries_mark, (sym,)))

    add("mark", exchange, "watchMarkPrices", "watchMarkPrice")
    if _has(exchange, "watchBidsAsks"):
        book = _many(exchange.watch_bids_asks, syms)
        plan.append(Stream("watch_bids_asks", "book", book, False, tuple(syms)))
    if ticker_exchange is not None:
        params = dict(venue.ticker_params)
        add(
            "ticker",
            ticker_exchange,
            "watchTickers",
            "watchTicker",
            *((params,) if params else ()),
            per_symbol=venue.tickers_per_symbol,
        )
    add("funding", exchange, "watchFundingRates", "watchFundingRate")
    return plan


class CcxtFeed:
    """Merged ticks for ``symbols`` (unified, e.g. ``BTC/USDT:USDT``) from a ccxt.pro exchange.

    ``exchange`` is constructed (and closed) by the caller, markets loaded. ``clock`` returns
    seconds (wall time: event timestamps are derived from it when the exchange gives none),
    ``sleep`` is ``asyncio.sleep``-like, ``random`` returns a float in [0, 1] for the jitter.
    ``venue`` defaults to the quirks of ``exchange.id``.
    """

    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        *,
        stale_after_s: float = 10.0,
        rest_poll_s: float = 2.0,
        funding_poll_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        ticker_exchange: Any | None = None,
        venue: Venue | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("CcxtFeed needs at least one symbol")
        if stale_after_s <= 0 or rest_poll_s <= 0 or funding_poll_s <= 0:
            raise ValueError("stale_after_s, rest_poll_s and funding_poll_s must be > 0")
        self._exchange = exchange
        self._ticker_exchange = ticker_exchange
        self._venue = venue if venue is not None else venue_for(getattr(exchange, "id", None))
        self._symbols = list(dict.fromkeys(symbols))
        self._stale_after_s = stale_after_s
        self._rest_poll_s = rest_poll_s
        self._funding_poll_s = funding_poll_s
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._queue = _Events()
        self._syms: dict[str, _Symbol] = {}
        self._plan: dict[str, Stream] = {}
        self._streams: dict[str, StreamStatus] = {}
        self._backoffs: dict[str, _Backoff] = {}
        self._mode: Mode = "ws"
        self._rest_task: asyncio.Task[None] | None = None
        self._rest_polls = 0
        self._rest_errors = 0
        self._rest_dropped: dict[str, str] = {}
        self._rest_since_s = 0.0
        self._funding_polls = 0
        self._books_live = False  # a book stream is planned and not dropped
        self._wake = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._tg is not None:
            raise RuntimeError("CcxtFeed is already running")
        now = self._clock()
        self._syms = {s: _Symbol(SymbolState(s), now) for s in self._symbols}
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        plan = plan_streams(self._exchange, self._ticker_exchange, self._symbols, self._venue)
        for stream in plan:
            self._spawn_stream(stream)
        self._books_live = self._books_planned()
        _log.info("feed plan", venue=self._venue.name, streams=[s.name for s in plan])
        self._tasks.append(tg.create_task(self._watchdog(), name="feed:watchdog"))
        if self._funding_rest() is not None:
            self._tasks.append(tg.create_task(self._funding_loop(), name="feed:funding"))
        if not self._marks_planned():
            self._start_rest("exchange has no mark-price websocket")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        if tg is None:
            return None
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self._rest_task = None
        if isinstance(exc, Exception):
            # An error in the ``async with`` body propagates as itself, not wrapped in the task
            # group's ExceptionGroup; errors of the feed's own tasks still raise a group.
            await tg.__aexit__(None, None, None)
        else:
            await tg.__aexit__(exc_type, exc, tb)
        return None

    async def updates(self) -> AsyncGenerator[FeedEvent, None]:
        """Events in arrival order, for as long as the feed is entered."""
        while True:
            items = self._queue.items
            while items:
                yield items.popleft()
            await self._queue.wait()

    # -- status ----------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def venue(self) -> Venue:
        return self._venue

    def pending(self) -> int:
        """Events queued and not yet taken from :meth:`updates`."""
        return self._queue.qsize()

    def status(self) -> dict[str, Any]:
        """A JSON-able snapshot: mode, per-symbol freshness, drops and funding schedule,
        per-stream health (and streams dropped from the plan), and the backlog (events received
        and not yet taken by the daemon)."""
        dropped: Counter[str] = Counter()
        symbols: dict[str, Any] = {}
        for sym, s in self._syms.items():
            dropped.update(s.state.dropped)
            symbols[sym] = {
                "last_update_ts": s.state.last_ts,
                "last_mark_age_s": round(self._clock() - s.last_mark_s, 3),
                "stale": s.stale,
                "dropped": dict(s.state.dropped),
                "next_funding_ts": s.next_funding_ts,
                "funding_interval_ms": s.funding_interval_ms,
            }
        return {
            "mode": self._mode,
            "venue": self._venue.name,
            "symbols": symbols,
            "streams": {
                n: {
                    "updates": st.updates,
                    "reconnects": st.reconnects,
                    "failures": st.failures,
                    "last_error": st.last_error,
                    **({"dropped": st.dropped} if st.dropped is not None else {}),
                }
                for n, st in self._streams.items()
            },
            "reconnects": sum(st.reconnects for st in self._streams.values()),
            "backlog": self.pending(),
            "dropped": dict(dropped),
            "rest": {
                "polls": self._rest_polls,
                "errors": self._rest_errors,
                **({"dropped": dict(self._rest_dropped)} if self._rest_dropped else {}),
            },
            "funding_polls": self._funding_polls,
        }

    # -- websocket streams -----------------------------------------------------------------

    def _spawn_stream(self, stream: Stream) -> None:
        assert self._tg is not None
        self._plan[stream.name] = stream
        self._streams[stream.name] = StreamStatus(stream.name)
        self._backoffs[stream.name] = _Backoff(self._random)
        task = self._tg.create_task(self._stream(stream), name=f"feed:{stream.name}")
        self._tasks.append(task)

    def backoff_delays(self, name: str) -> list[float]:
        """Backoff delays slept so far by stream ``name`` (for tests and diagnostics)."""
        return list(self._backoffs[name].delays)

    def _marks_planned(self) -> bool:
        return any(
            s.carries_mark and self._streams[s.name].dropped is None for s in self._plan.values()
        )

    def _books_planned(self) -> bool:
        return any(
            s.kind == "book" and self._streams[s.name].dropped is None for s in self._plan.values()
        )

    async def _stream(self, stream: Stream) -> None:
        status = self._streams[stream.name]
        backoff = self._backoffs[stream.name]
        owner = self._ticker_exchange if stream.kind == "ticker" else self._exchange
        cache_attr = _CACHE_ATTR[stream.kind]
        while True:
            try:
                returned = await stream.call()
            except ccxt.NotSupported as exc:
                self._drop(stream, exc)
                return
            except RETRYABLE as exc:
                status.failures += 1
                status.reconnects += 1
                status.last_error = f"{type(exc).__name__}: {exc}"[:200]
                self._maybe_rest()
                delay = backoff.next_delay()
                backoff.delays.append(delay)
                # One line per backoff step, at info: what an operator needs to see why prices
                # stopped (DNS, refused, TLS), without the debug noise of ccxt's own retries.
                cause = root_cause(exc)
                _log.info(
                    "exchange stream failed; reconnecting",
                    stream=stream.name,
                    cause=cause.kind,
                    error=cause.detail,
                    attempt=status.failures,
                    retry_in_s=round(delay, 2),
                )
                await self._sleep(delay)
                continue
            cache = getattr(owner, cache_attr, None)
            marks = self._ingest(
                stream.kind,
                returned,
                cache if isinstance(cache, Mapping) else None,
                stream.symbols or None,
            )
            if marks is not None:
                status.updates += 1
                status.failures = 0
                backoff.reset()
                if marks and self._mode == "rest":
                    self._stop_rest()

    def _drop(self, stream: Stream, exc: BaseException) -> None:
        """Take a stream the venue does not support out of the plan, once."""
        reason = f"{type(exc).__name__}: {exc}"[:200]
        self._streams[stream.name].dropped = reason
        self._books_live = self._books_planned()
        _log.warning("feed stream not supported; dropped", stream=stream.name, reason=reason)
        if not self._marks_planned():
            self._start_rest(f"no mark-price stream left ({stream.name}: {reason})")

    def _ingest(
        self,
        kind: Kind,
        returned: Mapping[str, Any] | None,
        cache: Mapping[str, Any] | None,
        symbols: Sequence[str] | None = None,
    ) -> bool | None:
        """Apply the newest entry per symbol (``symbols``: those the stream covers; default
        all). ``None``: nothing accepted; else whether an accepted entry carried a mark price."""
        accepted: bool | None = None
        if type(returned) is not dict and not isinstance(returned, Mapping):
            returned = {}
        venue = self._venue
        syms = self._syms
        # the book stream owns bid/ask; a ticker's older quote must not flip it back, so a
        # ticker's bid/ask are not even read then
        names = _TICKER_WITHOUT_BOOK if kind == "ticker" and self._books_live else None
        for sym in symbols if symbols is not None else syms:
            s = syms[sym]
            entry: Any = returned.get(sym)
            cached_entry = None if cache is None else cache.get(sym)
            if entry is None and (cached_entry is None or cached_entry is s.examined.get(kind)):
                continue  # nothing returned for it, and the cache holds nothing not seen yet
            best = extract(kind, entry, venue, names)
            if cached_entry is entry:
                s.examined[kind] = entry  # the usual case: the cache holds the returned entry
            # The cache holds what arrived after the awaited frame (folded by ccxt); it is read
            # only when it is another entry than the returned one (usually it is the same), and
            # only once: an entry examined before can never be newer than what was kept since.
            if cached_entry is not entry and cached_entry is not s.examined.get(kind):
                s.examined[kind] = cached_entry
                cached_ts = _entry_ts(cached_entry) if isinstance(cached_entry, Mapping) else None
                known = s.state.source_ts.get(kind)
                best_ts = _entry_ts(entry) if best is not None else None
                if (
                    cached_ts is not None
                    and (known is None or cached_ts > known)
                    and (best is None or (best_ts is not None and cached_ts > best_ts))
                ):
                    cached = extract(kind, cached_entry, venue, names)
                    if cached is not None:
                        best, entry = cached, cached_entry
            if best is None:
                continue
            values = best.values
            if not values:
                continue  # a ticker with only the bid/ask the book stream owns
            ts = _entry_ts(entry)
            if s.state.apply(kind, ts, values):
                if best.next_funding_ts is not None:
                    s.next_funding_ts = best.next_funding_ts
                    s.funding_seen_s = self._clock()
                if best.funding_interval_ms is not None:
                    s.funding_interval_ms = best.funding_interval_ms
                has_mark = "mark" in values
                accepted = bool(accepted) or has_mark
                self._accepted(sym, s, has_mark, ts)
        return accepted

    def _accepted(self, sym: str, s: _Symbol, has_mark: bool, ts: int | None) -> None:
        now = self._clock()
        now_ms = int(now * 1000)
        if has_mark:
            s.last_mark_s = now
            if s.stale:
                s.stale = False
                self._wake.set()
                self._queue.put_nowait(FeedRecovered(sym, now_ms))
        tick = s.state.tick()
        if tick is not None:
            event_ts = ts if ts is not None else now_ms
            self._queue.put_nowait(TickUpdate(event_ts, tick, self._next_funding(s, event_ts)))

    @staticmethod
    def _next_funding(s: _Symbol, ts: int) -> int | None:
        """The venue's next funding time; from the interval alone (UTC grid) if that is all the
        venue said."""
        if s.next_funding_ts is not None and s.next_funding_ts > ts:
            return s.next_funding_ts
        if s.funding_interval_ms is not None:
            return (ts // s.funding_interval_ms + 1) * s.funding_interval_ms
        return s.next_funding_ts

    # -- funding poll ----------------------------------------------------------------------

    def _funding_rest(self) -> str | None:
        ex = self._exchange
        if _has(ex, "fetchFundingRates"):
            return "fetch_funding_rates"
        if _has(ex, "fetchFundingRate"):
            return "fetch_funding_rate"
        return None

    def _funding_due(self, now: float) -> list[str]:
        now_ms = int(now * 1000)
        due = []
        for sym, s in self._syms.items():
            if (
                s.next_funding_ts is None
                or s.next_funding_ts <= now_ms
                or s.funding_seen_s is None
                or now - s.funding_seen_s >= self._funding_poll_s
            ):
                due.append(sym)
        return due

    async def _funding_loop(self) -> None:
        """Funding rate, next time and interval by REST for the symbols no stream keeps
        current (at start: all of them)."""
        ex = self._exchange
        while True:
            method = self._funding_rest()
            due = self._funding_due(self._clock())
            if method is None:
                return
            if due:
                self._funding_polls += 1
                try:
                    if method == "fetch_funding_rates":
                        self._ingest("funding", await ex.fetch_funding_rates(due), None)
                    else:
                        for sym in due:
                            self._ingest("funding", {sym: await ex.fetch_funding_rate(sym)}, None)
                except ccxt.NotSupported as exc:
                    self._drop_rest(method, exc)
                except (ccxt.NetworkError, ccxt.ExchangeError) as exc:
                    _log.info("funding poll failed", reason=f"{type(exc).__name__}: {exc}"[:200])
            await self._sleep(self._funding_sleep(self._clock()))

    def _funding_sleep(self, now: float) -> float:
        """Until the next poll: ``funding_poll_s``, or sooner, just after the earliest known
        funding time (a venue whose streams do not say the next one is asked right after)."""
        times = [s.next_funding_ts for s in self._syms.values() if s.next_funding_ts is not None]
        if not times:
            return self._funding_poll_s
        after = min(times) / 1000 - now + 1.0
        return self._funding_poll_s if after <= 0 else min(self._funding_poll_s, after)

    def _drop_rest(self, method: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"[:200]
        self._rest_dropped[method] = reason
        _log.warning("REST method not supported; dropped", method=method, reason=reason)

    # -- watchdog and REST fallback --------------------------------------------------------

    async def _watchdog(self) -> None:
        while True:
            now = self._clock()
            next_deadline: float | None = None
            for sym, s in self._syms.items():
                if s.stale:
                    continue
                deadline = s.last_mark_s + self._stale_after_s
                if now >= deadline:
                    s.stale = True
                    s.stale_since_s = s.last_mark_s
                    self._queue.put_nowait(
                        FeedStale(
                            sym,
                            int(s.last_mark_s * 1000),
                            f"no mark price for {now - s.last_mark_s:.1f}s",
                        )
                    )
                    self._maybe_rest()
                elif next_deadline is None or deadline < next_deadline:
                    next_deadline = deadline
            if next_deadline is None:
                # Every symbol is stale: nothing to time until one recovers.
                self._wake.clear()
                await self._wake.wait()
            else:
                await self._sleep(next_deadline - now)

    def _maybe_rest(self) -> None:
        if self._mode == "rest" or not any(s.stale for s in self._syms.values()):
            return
        failing = [st for st in self._streams.values() if st.failures > 0 and st.dropped is None]
        if failing:
            self._start_rest(f"{failing[0].name} failing: {failing[0].last_error}")

    def _start_rest(self, reason: str) -> None:
        if self._mode == "rest" and self._rest_task is not None:
            return
        assert self._tg is not None
        self._mode = "rest"
        self._rest_since_s = self._clock()
        self._queue.put_nowait(
            FeedStale(None, int(self._rest_since_s * 1000), f"REST polling: {reason}")
        )
        self._rest_task = self._tg.create_task(self._rest_loop(), name="feed:rest")
        self._tasks.append(self._rest_task)

    def _stop_rest(self) -> None:
        task, self._rest_task = self._rest_task, None
        self._mode = "ws"
        if task is not None:
            task.cancel()
            if task in self._tasks:
                self._tasks.remove(task)
        self._queue.put_nowait(FeedRecovered(None, int(self._clock() * 1000)))

    def _rest_plan(self) -> list[tuple[str, Kind]]:
        """REST methods for one poll: marks, bid/ask, and tickers where either is missing."""
        ex = self._exchange

        def usable(name: str) -> bool:
            return (
                _has(ex, name)
                and name not in self._venue.rest_skip
                and _snake(name) not in self._rest_dropped
            )

        calls: list[tuple[str, Kind]] = []
        for name in ("fetchMarkPrices", "fetchMarkPrice"):
            if usable(name):
                calls.append((_snake(name), "mark"))
                break
        if usable("fetchBidsAsks"):
            calls.append(("fetch_bids_asks", "book"))
        if len(calls) < 2 and usable("fetchTickers"):
            calls.append(("fetch_tickers", "ticker"))
        return calls

    async def _rest_loop(self) -> None:
        ex = self._exchange
        symbols = list(self._symbols)
        while True:
            self._rest_polls += 1
            for method, kind in self._rest_plan():
                try:
                    if method == "fetch_mark_price":
                        for sym in symbols:
                            self._ingest(kind, {sym: await ex.fetch_mark_price(sym)}, None)
                    else:
                        self._ingest(kind, await getattr(ex, method)(symbols), None)
                except ccxt.NotSupported as exc:
                    self._drop_rest(method, exc)
                except RETRYABLE:
                    self._rest_errors += 1
                    break
            await self._sleep(self._rest_poll_s)
