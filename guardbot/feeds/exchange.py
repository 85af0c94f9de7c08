"""The ``[feed] mode = "ccxt"`` feed: owns the ccxt.pro exchange instances around :class:`CcxtFeed`.

:class:`CcxtFeed` expects exchanges that are built, have their markets loaded, and are closed by
the caller. :class:`ExchangeFeed` is that caller for the daemon:

- builds two instances from ``[exchange.ccxt]`` (one for mark prices and bid/ask, one for the full
  ticker: ccxt's ``tickers`` cache is shared by mark-price and ticker updates,
  docs/architecture.md §4);
- loads the markets, retrying with jittered exponential backoff while the exchange is
  unreachable (the daemon keeps running on its journaled state meanwhile, and a ``feed_stale``
  for the whole feed tells the user why there are no prices);
- refuses symbols the exchange does not list (a configuration error, not something to retry);
- closes both instances on exit, whatever happened.
"""

from __future__ import annotations

import asyncio
import copy
import random as _random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import structlog

from guardbot.errors import ConfigError, GuardbotError
from guardbot.feeds.base import FeedEvent, FeedRecovered, FeedStale
from guardbot.feeds.ccxt_feed import CcxtFeed, _Backoff
from guardbot.runtime.causes import root_cause

__all__ = ["ExchangeFactory", "ExchangeFeed", "ccxt_factory"]

_log = structlog.get_logger("guardbot.feeds.exchange")

#: Builds one exchange instance from constructor options.
ExchangeFactory = Callable[[dict[str, Any]], Any]


def ccxt_factory(exchange_id: str) -> ExchangeFactory:
    """A factory for ``ccxt.pro.<exchange_id>``; :class:`ConfigError` if ccxt has no such id."""
    import ccxt.pro

    cls = getattr(ccxt.pro, exchange_id, None)
    if cls is None:
        raise ConfigError(
            f"exchange.id: ccxt.pro has no exchange {exchange_id!r} "
            "(websocket support is needed; see ccxt.pro.exchanges)"
        )

    def build(options: dict[str, Any]) -> Any:
        return cls(options)

    return build


class ExchangeFeed:
    """See the module docstring. ``status()`` is the inner feed's, or ``{"mode": "connecting"}``."""

    def __init__(
        self,
        factory: ExchangeFactory,
        options: Mapping[str, Any],
        symbols: Sequence[str],
        *,
        stale_after_s: float = 10.0,
        rest_poll_s: float = 2.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._factory = factory
        self._options = dict(options)
        self._symbols = list(symbols)
        self._stale_after_s = stale_after_s
        self._rest_poll_s = rest_poll_s
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._exchanges: list[Any] = []
        self._inner: CcxtFeed | None = None
        self.market_failures = 0

    async def __aenter__(self) -> Self:
        # Separate option dicts: ccxt mutates what it is given.
        self._exchanges = [self._factory(copy.deepcopy(self._options)) for _ in range(2)]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exchanges, self._exchanges = self._exchanges, []
        results = await asyncio.gather(*(e.close() for e in exchanges), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):  # closing must not hide the real exit cause
                _log.warning("closing the exchange failed", error=type(result).__name__)

    def status(self) -> dict[str, Any]:
        """``reconnects`` counts every attempt after a failure: loading the markets, then the
        streams' reconnects (``guardbot_reconnects_total{component="feed"}`` mirrors it)."""
        if self._inner is None:
            return {
                "mode": "connecting",
                "marketFailures": self.market_failures,
                "reconnects": self.market_failures,
            }
        status = self._inner.status()
        status["reconnects"] = int(status.get("reconnects", 0)) + self.market_failures
        return status

    async def _load_markets(self) -> AsyncGenerator[FeedEvent, None]:
        import ccxt

        backoff = _Backoff(self._random)
        since_ms: int | None = None
        while True:
            try:
                for exchange in self._exchanges:
                    await exchange.load_markets()
                break
            except ccxt.NetworkError as exc:
                self.market_failures += 1
                cause = root_cause(exc)
                reason = f"cannot load markets ({cause.kind}): {cause.detail}"[:200]
                delay = backoff.next_delay()
                # Each backoff step says why (DNS, refused, TLS) at info; the first at warning.
                log = _log.warning if since_ms is None else _log.info
                log(
                    "exchange unreachable; retrying",
                    cause=cause.kind,
                    error=cause.detail,
                    attempt=self.market_failures,
                    retry_in_s=round(delay, 2),
                )
                if since_ms is None:
                    since_ms = int(self._clock() * 1000)
                    yield FeedStale(None, since_ms, reason)
                await self._sleep(delay)
            except ccxt.BaseError as exc:
                raise GuardbotError(
                    f"exchange {type(exc).__name__} while loading markets: {str(exc)[:200]}"
                ) from None
        markets = self._exchanges[0].markets or {}
        missing = [s for s in self._symbols if s not in markets]
        if missing:
            raise ConfigError(
                f"exchange.symbols: not listed by the exchange: {', '.join(missing)} "
                "(use ccxt unified symbols such as BTC/USDT:USDT)"
            )
        if since_ms is not None:
            yield FeedRecovered(None, int(self._clock() * 1000))

    async def updates(self) -> AsyncGenerator[FeedEvent, None]:
        if not self._exchanges:
            raise RuntimeError("ExchangeFeed.updates() outside 'async with'")
        async for event in self._load_markets():
            yield event
        inner = CcxtFeed(
            self._exchanges[0],
            self._symbols,
            stale_after_s=self._stale_after_s,
            rest_poll_s=self._rest_poll_s,
            clock=self._clock,
            sleep=self._sleep,
            random=self._random,
            ticker_exchange=self._exchanges[1],
        )
        # Entered by hand, not with ``async with``: when the daemon closes this generator, the
        # GeneratorExit must not reach the inner feed's TaskGroup (it would come back as a
        # BaseExceptionGroup); the inner feed is exited normally instead.
        await inner.__aenter__()
        self._inner = inner
        try:
            async for event in inner.updates():
                yield event
        finally:
            self._inner = None
            await inner.__aexit__(None, None, None)
