"""The daemon's price feed: which feed the configuration asks for, run with restarts, and how long
a stale feed is tolerated before the service counts as unhealthy."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

import structlog

from guardbot.config import Config
from guardbot.daemon.errors import first_error, guardbot_error
from guardbot.errors import ConfigError
from guardbot.feeds.base import Feed, FeedEvent, FeedRecovered, FeedStale
from guardbot.metrics.prometheus import Metrics
from guardbot.runtime.backoff import backoff_delay

__all__ = ["DEFAULT_SIM_PRICES", "FeedFactory", "FeedHealth", "FeedLoop", "default_feed"]

_log = structlog.get_logger("guardbot.daemon")


#: A function building the price feed from the configuration (injectable for tests).
FeedFactory = Callable[[Config], Feed]

#: Start prices of the simulated feed; symbols not listed start at 100.
DEFAULT_SIM_PRICES: Mapping[str, Decimal] = {
    "BTC/USDT:USDT": Decimal(60000),
    "ETH/USDT:USDT": Decimal(3000),
    "SOL/USDT:USDT": Decimal(150),
}


def default_feed(config: Config) -> Feed:
    """The feed ``[feed] mode`` asks for: ``sim``, ``replay``, ``plugin`` or ``ccxt``."""
    section = config.feed
    symbols = config.exchange.symbols
    if section.mode == "sim":
        from guardbot.feeds.sim import SimFeed

        prices = {s: DEFAULT_SIM_PRICES.get(s, Decimal(100)) for s in symbols}
        # Livelier than real markets (0.1 % steps, 1 % jumps) so that the demo's leveraged
        # positions cross alert levels within a minute.
        return SimFeed(
            symbols,
            prices,
            seed=section.sim_seed,
            interval_s=1.0 / section.speed,
            volatility=0.001,
            jump_size=0.01,
            jump_probability=0.02,
        )
    if section.mode == "replay":
        from guardbot.feeds.replay import ReplayFeed

        if section.replay_file is None:  # pragma: no cover - load_config refuses it
            raise ConfigError('feed.replay_file: required when feed.mode is "replay"')
        return ReplayFeed(section.replay_file, speed=section.speed)
    if section.mode == "plugin":
        from guardbot.feeds.plugin import load_feed_plugin

        if section.plugin is None:  # pragma: no cover - load_config refuses it
            raise ConfigError('feed.plugin: required when feed.mode is "plugin"')
        return load_feed_plugin(section.plugin)(list(symbols), dict(section.plugin_options))
    from guardbot.feeds.exchange import ExchangeFeed, ccxt_factory

    return ExchangeFeed(
        ccxt_factory(config.exchange.id),
        config.exchange.ccxt_options(),
        symbols,
        stale_after_s=section.stale_after_s,
        rest_poll_s=section.rest_poll_s,
    )


class FeedHealth:
    """Which symbols the feed reports stale, and the systemd watchdog's judgement of it.

    ``grace_s``: how long a stale feed is tolerated before :meth:`healthy` says no (a short
    exchange blip must not restart the daemon; a feed stuck for minutes should). ``monotonic``
    is the clock it measures that with (tests shift it).
    """

    def __init__(self, grace_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self.monotonic = monotonic
        #: Symbols the feed reports stale (``None``: the whole feed).
        self.stale: set[str | None] = set()
        self._stale_since: float | None = None

    @classmethod
    def for_config(cls, config: Config) -> FeedHealth:
        return cls(max(60.0, 6 * config.feed.stale_after_s))

    def mark(self, item: FeedStale | FeedRecovered) -> None:
        if isinstance(item, FeedStale):
            self.stale.add(item.symbol)
        else:
            self.stale.discard(item.symbol)

    def is_stale(self, symbol: str) -> bool:
        return symbol in self.stale or None in self.stale

    def healthy(self) -> bool:
        """False once the feed has been stale for longer than the grace period."""
        if not self.stale:
            self._stale_since = None
            return True
        now = self.monotonic()
        if self._stale_since is None:
            self._stale_since = now
        return now - self._stale_since < self.grace_s


class FeedLoop:
    """Runs the feed the factory builds and hands each item to ``on_item``; after an unexpected
    error, logs it and starts a new feed with jittered backoff. A :class:`GuardbotError` (bad
    configuration, a bad replay line, the database) is not retried: it ends the daemon."""

    def __init__(
        self,
        config: Config,
        factory: FeedFactory,
        on_item: Callable[[FeedEvent], Awaitable[None]],
        metrics: Metrics,
    ) -> None:
        self._config = config
        self._factory = factory
        self._on_item = on_item
        self._metrics = metrics
        #: The feed of the moment (it is replaced after a crash), for its status.
        self.feed: Feed | None = None
        #: How often the feed was restarted after an unexpected error.
        self.restarts = 0

    async def run(self) -> None:
        attempt = 0
        while True:
            consumed = 0
            try:
                async with self._factory(self._config) as feed:
                    self.feed = feed
                    updates = feed.updates()
                    try:
                        async for item in updates:
                            consumed += 1
                            await self._on_item(item)
                    finally:
                        aclose = getattr(updates, "aclose", None)
                        if aclose is not None:  # an async generator: run its cleanup now
                            await aclose()
                _log.info("feed ended")
                return
            except Exception as exc:
                if guardbot_error(exc) is not None:
                    raise
                if consumed:
                    attempt = 0  # it worked for a while: start the backoff over
                delay = backoff_delay(attempt, random.random)
                attempt += 1
                self.restarts += 1
                self._metrics.reconnected("feed")
                _log.error(
                    "feed crashed; starting a new one",
                    error=f"{type(first_error(exc)).__name__}: {first_error(exc)}",
                    restart_in_s=round(delay, 2),
                    restarts=self.restarts,
                    exc_info=exc,
                )
                await asyncio.sleep(delay)
