"""When to apply funding: a per-symbol schedule that turns crossed funding times into inputs.

Perpetuals settle funding at fixed times (every 8 hours at 00:00, 08:00 and 16:00 UTC on Binance,
Bybit and OKX for most symbols). The feed tells the rate in force (``fundingRate`` of the mark
price stream) and, when the exchange sends it, the next funding time; otherwise the schedule
assumes the 8-hour UTC grid. When a tick's time reaches the next funding time, the daemon applies
a ``funding`` input with the rate known *before* that tick (the rate the exchange settles), then
the tick. Pure and clock-free: times come from the ticks.

After a restart the schedule starts from the last journaled input's time, so a funding time that
passed while the daemon was down is still applied (once, with the last rate seen before it went
down: the rate the exchange actually used is not recorded anywhere guardbot can read).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["DEFAULT_INTERVAL_MS", "FundingDue", "FundingSchedule", "next_grid_time"]

#: The 8-hour funding interval, in ms.
DEFAULT_INTERVAL_MS = 8 * 3600 * 1000


def next_grid_time(ts: int, interval_ms: int = DEFAULT_INTERVAL_MS) -> int:
    """The first multiple of ``interval_ms`` (since the epoch, i.e. UTC-aligned) after ``ts``."""
    return (ts // interval_ms + 1) * interval_ms


@dataclass(frozen=True, slots=True)
class FundingDue:
    """Funding of ``symbol`` at ``rate`` settles at ``funding_ts`` (ms)."""

    symbol: str
    rate: Decimal
    funding_ts: int


class FundingSchedule:
    """Per-symbol next funding time and last known rate; see the module docstring."""

    def __init__(self, interval_ms: int = DEFAULT_INTERVAL_MS) -> None:
        if interval_ms <= 0:
            raise ValueError("interval_ms must be > 0")
        self._interval = interval_ms
        self._next: dict[str, int] = {}
        self._rate: dict[str, Decimal] = {}
        self._floor: int | None = None

    def start(self, ts: int) -> None:
        """Forget per-symbol times; the first funding time of every symbol comes after ``ts``."""
        self._next.clear()
        self._floor = ts

    def next_time(self, symbol: str) -> int | None:
        return self._next.get(symbol)

    def observe(
        self, symbol: str, ts: int, rate: Decimal | None, next_funding_ts: int | None = None
    ) -> FundingDue | None:
        """Account for a tick of ``symbol`` at ``ts``; return the funding due *before* it, if any.

        ``rate`` is the tick's funding rate (``None``: unchanged), ``next_funding_ts`` the
        exchange's next funding time if the tick carried one.
        """
        due: FundingDue | None = None
        scheduled = self._next.get(symbol)
        if scheduled is None:
            floor = ts if self._floor is None else min(self._floor, ts)
            scheduled = next_grid_time(floor, self._interval)
            self._next[symbol] = scheduled
        if ts >= scheduled:
            previous = self._rate.get(symbol)
            if previous is not None:
                due = FundingDue(symbol, previous, scheduled)
            self._next[symbol] = next_grid_time(ts, self._interval)
        if next_funding_ts is not None and next_funding_ts > ts:
            self._next[symbol] = next_funding_ts
        if rate is not None:
            self._rate[symbol] = rate
        return due
