"""Live prices from an injected ccxt.pro exchange: websocket streams, watchdog, REST fallback.

Facts this relies on (ccxt 4.5.90, docs/architecture.md §4):

* A ``watch_*`` call returns only the latest values when awaited; updates arriving between two
  awaits are folded into the exchange's cache. Each return is therefore a *wake-up*: the feed reads
  the latest value per symbol from the returned dict and from the exchange cache
  (``exchange.tickers`` for mark prices, ``exchange.bidsasks`` for book tickers), newest wins.
* Mark-price and ticker updates overwrite each other in ``exchange.tickers``: full tickers are only
  watched on a separate ``ticker_exchange`` instance, and all fields are merged in guardbot's own
  :class:`~guardbot.feeds.base.SymbolState`.
* ccxt does not reconnect by itself; the next ``watch_*`` call after a ``NetworkError`` does. Each
  stream loop retries with full-jitter exponential backoff (0.5 s doubling to 30 s), reset after a
  good update.

Staleness is judged on mark prices (the margin engine's input): no accepted mark for a symbol
within ``stale_after_s`` emits :class:`FeedStale` once. While a symbol is stale *and* a websocket
stream is failing (or the exchange has no watch methods at all), the feed polls
``fetch_mark_prices`` / ``fetch_bids_asks`` every ``rest_poll_s`` (mode ``rest``) until a
websocket stream delivers again. A quiet symbol on a healthy connection only raises the alert.
"""

from __future__ import annotations

import asyncio
import random as _random
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import ccxt
import structlog

from guardbot.feeds.base import FeedEvent, FeedRecovered, FeedStale, SymbolState, TickUpdate
from guardbot.runtime.backoff import BACKOFF_BASE, BACKOFF_CAP, backoff_delay
from guardbot.runtime.causes import root_cause

__all__ = ["BACKOFF_BASE_S", "BACKOFF_MAX_S", "RETRYABLE", "CcxtFeed", "StreamStatus"]

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

Source = Literal["mark", "book", "ticker"]
Mode = Literal["ws", "rest"]


@dataclass(slots=True)
class StreamStatus:
    """Health of one websocket stream loop."""

    name: str
    updates: int = 0
    reconnects: int = 0
    failures: int = 0  # consecutive failed watch calls; 0 = healthy
    last_error: str | None = None


@dataclass(slots=True)
class _Symbol:
    state: SymbolState
    last_mark_s: float  # local clock of the last accepted mark (or the start)
    stale: bool = False
    stale_since_s: float = 0.0
    next_funding_ts: int | None = None


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
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else None


def _funding(entry: Mapping[str, Any]) -> object:
    rate = entry.get("fundingRate")
    if rate is None:
        info = entry.get("info")
        if isinstance(info, Mapping):
            rate = info.get("r", info.get("lastFundingRate"))
    return rate


def _next_funding(entry: Mapping[str, Any]) -> int | None:
    """The next funding time (ms) of a mark-price entry: ccxt's unified keys, else Binance's raw
    ``T`` (mark price stream) / ``nextFundingTime`` (premiumIndex)."""
    value = entry.get("nextFundingTimestamp") or entry.get("fundingTimestamp")
    info = entry.get("info")
    if value is None and isinstance(info, Mapping):
        value = info.get("T", info.get("nextFundingTime"))
    try:
        number = int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and number > 0 else None


def _values(source: Source, entry: Mapping[str, Any]) -> dict[str, object] | None:
    """The fields one source contributes, or ``None`` if the entry is not of that source."""
    if source == "mark":
        if entry.get("markPrice") is None:
            return None  # e.g. a 24h ticker that overwrote the mark entry in ccxt's cache
        return {
            "mark": entry.get("markPrice"),
            "index": entry.get("indexPrice"),
            "funding_rate": _funding(entry),
        }
    if source == "book":
        if entry.get("bid") is None and entry.get("ask") is None:
            return None
        return {"bid": entry.get("bid"), "ask": entry.get("ask")}
    if entry.get("last") is None:
        return None
    return {"last": entry.get("last")}


def _valid(source: Source, entry: object) -> tuple[Mapping[str, Any], dict[str, object]] | None:
    if not isinstance(entry, Mapping):
        return None
    values = _values(source, entry)
    return None if values is None else (entry, values)


class CcxtFeed:
    """Merged ticks for ``symbols`` (unified, e.g. ``BTC/USDT:USDT``) from a ccxt.pro exchange.

    ``exchange`` is constructed (and closed) by the caller, markets loaded. ``clock`` returns
    seconds (wall time: event timestamps are derived from it when the exchange gives none),
    ``sleep`` is ``asyncio.sleep``-like, ``random`` returns a float in [0, 1] for the jitter.
    """

    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        *,
        stale_after_s: float = 10.0,
        rest_poll_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        ticker_exchange: Any | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("CcxtFeed needs at least one symbol")
        if stale_after_s <= 0 or rest_poll_s <= 0:
            raise ValueError("stale_after_s and rest_poll_s must be > 0")
        self._exchange = exchange
        self._ticker_exchange = ticker_exchange
        self._symbols = list(dict.fromkeys(symbols))
        self._stale_after_s = stale_after_s
        self._rest_poll_s = rest_poll_s
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._queue: asyncio.Queue[FeedEvent] = asyncio.Queue()
        self._syms: dict[str, _Symbol] = {}
        self._streams: dict[str, StreamStatus] = {}
        self._backoffs: dict[str, _Backoff] = {}
        self._mode: Mode = "ws"
        self._rest_task: asyncio.Task[None] | None = None
        self._rest_polls = 0
        self._rest_errors = 0
        self._rest_since_s = 0.0
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
        ex = self._exchange
        symbols = list(self._symbols)
        if _has(ex, "watchMarkPrices"):
            self._spawn_stream("watch_mark_prices", "mark", lambda: ex.watch_mark_prices(symbols))
        elif _has(ex, "watchMarkPrice"):
            for sym in symbols:
                self._spawn_stream(
                    f"watch_mark_price:{sym}", "mark", self._single(ex.watch_mark_price, sym)
                )
        if _has(ex, "watchBidsAsks"):
            self._spawn_stream("watch_bids_asks", "book", lambda: ex.watch_bids_asks(symbols))
        tex = self._ticker_exchange
        if tex is not None and _has(tex, "watchTickers"):
            self._spawn_stream(
                "watch_tickers", "ticker", lambda: tex.watch_tickers(symbols, {"name": "ticker"})
            )
        self._tasks.append(tg.create_task(self._watchdog(), name="feed:watchdog"))
        if not any(s.name.startswith("watch_mark_price") for s in self._streams.values()):
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
            yield await self._queue.get()

    # -- status ----------------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    def pending(self) -> int:
        """Events queued and not yet taken from :meth:`updates`."""
        return self._queue.qsize()

    def status(self) -> dict[str, Any]:
        """A JSON-able snapshot: mode, per-symbol freshness and drops, per-stream health, and the
        backlog (events received and not yet taken by the daemon)."""
        dropped: Counter[str] = Counter()
        symbols: dict[str, Any] = {}
        for sym, s in self._syms.items():
            dropped.update(s.state.dropped)
            symbols[sym] = {
                "last_update_ts": s.state.last_ts,
                "last_mark_age_s": round(self._clock() - s.last_mark_s, 3),
                "stale": s.stale,
                "dropped": dict(s.state.dropped),
            }
        return {
            "mode": self._mode,
            "symbols": symbols,
            "streams": {
                n: {
                    "updates": st.updates,
                    "reconnects": st.reconnects,
                    "failures": st.failures,
                    "last_error": st.last_error,
                }
                for n, st in self._streams.items()
            },
            "reconnects": sum(st.reconnects for st in self._streams.values()),
            "backlog": self.pending(),
            "dropped": dict(dropped),
            "rest": {"polls": self._rest_polls, "errors": self._rest_errors},
        }

    # -- websocket streams -----------------------------------------------------------------

    @staticmethod
    def _single(
        watch: Callable[[str], Awaitable[Mapping[str, Any]]], symbol: str
    ) -> Callable[[], Awaitable[Mapping[str, Any]]]:
        async def call() -> Mapping[str, Any]:
            return {symbol: await watch(symbol)}

        return call

    def _spawn_stream(
        self, name: str, source: Source, call: Callable[[], Awaitable[Mapping[str, Any]]]
    ) -> None:
        assert self._tg is not None
        self._streams[name] = StreamStatus(name)
        self._backoffs[name] = _Backoff(self._random)
        task = self._tg.create_task(self._stream(name, source, call), name=f"feed:{name}")
        self._tasks.append(task)

    def backoff_delays(self, name: str) -> list[float]:
        """Backoff delays slept so far by stream ``name`` (for tests and diagnostics)."""
        return list(self._backoffs[name].delays)

    async def _stream(
        self, name: str, source: Source, call: Callable[[], Awaitable[Mapping[str, Any]]]
    ) -> None:
        status = self._streams[name]
        backoff = self._backoffs[name]
        cache_attr = {"mark": "tickers", "book": "bidsasks", "ticker": "tickers"}[source]
        owner = self._ticker_exchange if source == "ticker" else self._exchange
        while True:
            try:
                returned = await call()
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
                    stream=name,
                    cause=cause.kind,
                    error=cause.detail,
                    attempt=status.failures,
                    retry_in_s=round(delay, 2),
                )
                await self._sleep(delay)
                continue
            cache = getattr(owner, cache_attr, None)
            good = self._ingest(source, returned, cache if isinstance(cache, Mapping) else None)
            if good:
                status.updates += 1
                status.failures = 0
                backoff.reset()
                if source == "mark" and self._mode == "rest":
                    self._stop_rest()

    def _ingest(
        self,
        source: Source,
        returned: Mapping[str, Any] | None,
        cache: Mapping[str, Any] | None,
    ) -> bool:
        """Apply the newest entry per watched symbol; ``True`` if any update was accepted."""
        good = False
        returned = returned if isinstance(returned, Mapping) else {}
        for sym, s in self._syms.items():
            best = _valid(source, returned.get(sym))
            cached = None if cache is None else _valid(source, cache.get(sym))
            if cached is not None:
                cached_ts = _entry_ts(cached[0])
                known = s.state.source_ts.get(source)
                newer_than_known = cached_ts is not None and (known is None or cached_ts > known)
                best_ts = None if best is None else _entry_ts(best[0])
                if newer_than_known and (
                    best is None
                    or (best_ts is not None and cached_ts is not None and cached_ts > best_ts)
                ):
                    best = cached
            if best is None:
                continue
            entry, values = best
            ts = _entry_ts(entry)
            if s.state.apply(source, ts, values):
                if source == "mark":  # only from an accepted entry: the cache repeats old ones
                    s.next_funding_ts = _next_funding(entry) or s.next_funding_ts
                good = True
                self._accepted(sym, s, source, ts)
        return good

    def _accepted(self, sym: str, s: _Symbol, source: Source, ts: int | None) -> None:
        now = self._clock()
        now_ms = int(now * 1000)
        if source == "mark":
            s.last_mark_s = now
            if s.stale:
                s.stale = False
                self._wake.set()
                self._queue.put_nowait(FeedRecovered(sym, now_ms))
        tick = s.state.tick()
        if tick is not None:
            event_ts = ts if ts is not None else now_ms
            self._queue.put_nowait(TickUpdate(event_ts, tick, s.next_funding_ts))

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
        failing = [st for st in self._streams.values() if st.failures > 0]
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

    async def _rest_loop(self) -> None:
        ex = self._exchange
        symbols = list(self._symbols)
        while True:
            self._rest_polls += 1
            try:
                if _has(ex, "fetchMarkPrices"):
                    self._ingest("mark", await ex.fetch_mark_prices(symbols), None)
                if _has(ex, "fetchBidsAsks"):
                    self._ingest("book", await ex.fetch_bids_asks(symbols), None)
            except RETRYABLE:
                self._rest_errors += 1
            await self._sleep(self._rest_poll_s)
