"""Replay recorded ticks from JSON Lines (``.gz`` compressed if the name says so).

One tick line per line (:mod:`guardbot.formats.ticklines`): ``ts`` (ms), ``symbol``, ``mark``,
optional ``last``, ``bid``, ``ask``, ``index``, ``fundingRate``. A bad line raises
:class:`InputError` whose field starts with ``line N``. Blank lines are skipped.
Gaps between ``ts`` values are slept, divided by ``speed``; ``speed`` 0 or ``None`` replays as fast
as possible. A ``ts`` going back is replayed without a pause.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from guardbot.errors import InputError
from guardbot.feeds.base import FeedEvent, TickUpdate
from guardbot.formats.ticklines import TickDecoder

__all__ = ["ReplayFeed"]


class ReplayFeed:
    def __init__(
        self,
        path: str | Path,
        *,
        speed: float | None = 1.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if speed is not None and speed < 0:
            raise ValueError("speed must be >= 0 (0 or None: as fast as possible)")
        self._path = Path(path)
        self._speed = speed or None
        self._sleep = sleep
        self._file: IO[str] | None = None

    async def __aenter__(self) -> Self:
        if self._path.name.endswith(".gz"):
            self._file = gzip.open(self._path, "rt", encoding="utf-8")  # noqa: SIM115
        else:
            self._file = self._path.open(encoding="utf-8")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()

    async def updates(self) -> AsyncGenerator[FeedEvent, None]:
        if self._file is None:
            raise RuntimeError("enter the ReplayFeed (async with) before iterating it")
        previous: int | None = None
        decoder = TickDecoder()
        for number, text in enumerate(self._file, start=1):
            if not text.strip():
                continue
            try:
                ts, tick = decoder.decode(text)
            except InputError as exc:
                raise exc.under(f"line {number}") from None
            if previous is not None and self._speed is not None and ts > previous:
                await self._sleep((ts - previous) / 1000 / self._speed)
            previous = ts
            yield TickUpdate(ts, tick)
