"""The daemon's price feed: which feed the configuration asks for, run with restarts, and how long
a stale feed is tolerated before the service counts as unhealthy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from guardbot.config import Config
from guardbot.errors import ConfigError
from guardbot.feeds.base import Feed

__all__ = ["DEFAULT_SIM_PRICES", "FeedFactory", "default_feed"]


#: A function building the price feed from the configuration (injectable for tests).
FeedFactory = Callable[[Config], Feed]

#: Start prices of the simulated feed; symbols not listed start at 100.
DEFAULT_SIM_PRICES: Mapping[str, Decimal] = {
    "BTC/USDT:USDT": Decimal(60000),
    "ETH/USDT:USDT": Decimal(3000),
    "SOL/USDT:USDT": Decimal(150),
}


def default_feed(config: Config) -> Feed:
    """The feed ``[feed] mode`` asks for: ``sim``, ``replay`` or ``ccxt``."""
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
    from guardbot.feeds.exchange import ExchangeFeed, ccxt_factory

    return ExchangeFeed(
        ccxt_factory(config.exchange.id),
        config.exchange.ccxt_options(),
        symbols,
        stale_after_s=section.stale_after_s,
        rest_poll_s=section.rest_poll_s,
    )
