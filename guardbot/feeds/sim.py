"""A seeded random-walk price feed for demos and tests: same seed, same ticks."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from types import TracebackType
from typing import Self

from guardbot.core.commands import TickCmd
from guardbot.feeds.base import FeedEvent, TickUpdate, to_decimal

__all__ = ["SimFeed"]


class SimFeed:
    """Every ``interval_s`` each symbol's mark moves by a Gaussian step (``volatility`` relative
    standard deviation); with probability ``jump_probability`` a jump of ``±jump_size`` (relative)
    is added. Prices are Decimals rounded to ``tick_size``; bid/ask sit 1..``max_spread_ticks``
    ticks around the mark, last between them. The random sequence depends on ``seed`` only, so a
    run is reproducible; ``ts`` comes from ``clock`` (seconds). ``rounds`` bounds the run
    (``None``: forever).
    """

    def __init__(
        self,
        symbols: Sequence[str],
        start_prices: Mapping[str, Decimal | str | float | int],
        *,
        seed: int = 0,
        interval_s: float = 1.0,
        jump_probability: float = 0.01,
        jump_size: float = 0.05,
        volatility: float = 0.0005,
        tick_size: Decimal | str = Decimal("0.1"),
        max_spread_ticks: int = 3,
        funding_rate: Decimal | str | None = Decimal("0.0001"),
        rounds: int | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not 0 <= jump_probability <= 1:
            raise ValueError("jump_probability must be within [0, 1]")
        if interval_s < 0 or volatility < 0 or jump_size < 0 or max_spread_ticks < 1:
            raise ValueError("interval_s, volatility, jump_size must be >= 0, spread >= 1 tick")
        missing = [s for s in symbols if s not in start_prices]
        if missing:
            raise ValueError(f"no start price for {', '.join(missing)}")
        self._symbols = list(symbols)
        self._tick = to_decimal(tick_size)
        self._prices = {s: self._round(to_decimal(start_prices[s])) for s in self._symbols}
        self._rng = random.Random(seed)
        self._interval_s = interval_s
        self._jump_probability = jump_probability
        self._jump_size = jump_size
        self._volatility = volatility
        self._max_spread_ticks = max_spread_ticks
        self._funding = None if funding_rate is None else Decimal(str(funding_rate))
        self._rounds = rounds
        self._clock = clock
        self._sleep = sleep

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _round(self, price: Decimal) -> Decimal:
        steps = (price / self._tick).to_integral_value(rounding=ROUND_HALF_EVEN)
        return max(steps, Decimal(1)) * self._tick

    def step(self, symbol: str) -> TickCmd:
        """Advance ``symbol`` by one step and return its tick (no clock, no sleep)."""
        rng = self._rng
        move = rng.gauss(0.0, self._volatility)
        if rng.random() < self._jump_probability:
            move += self._jump_size if rng.random() < 0.5 else -self._jump_size
        mark = self._round(self._prices[symbol] * Decimal(repr(1.0 + move)))
        self._prices[symbol] = mark
        bid = max(mark - self._tick * rng.randint(1, self._max_spread_ticks), self._tick)
        ask = mark + self._tick * rng.randint(1, self._max_spread_ticks)
        last = bid + self._tick * rng.randint(0, int((ask - bid) / self._tick))
        return TickCmd(symbol, mark, last=last, bid=bid, ask=ask, funding_rate=self._funding)

    async def updates(self) -> AsyncGenerator[FeedEvent, None]:
        done = 0
        while self._rounds is None or done < self._rounds:
            if done:
                await self._sleep(self._interval_s)
            ts = int(self._clock() * 1000)
            for symbol in self._symbols:
                yield TickUpdate(ts, self.step(symbol))
            done += 1
