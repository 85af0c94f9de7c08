"""Hosting a strategy: the hooks called in order, its failures contained and counted.

The host (``guardbot replay`` or the daemon) drives the runner::

    runner = StrategyRunner(strategy, exchange)
    await runner.start()
    for each tick:
        events = engine.tick(ts, tick)          # in the daemon: journaled first
        await runner.on_events(events)          # fills, stops, alerts the tick caused
        await runner.on_tick(tick.symbol, ts)   # then the strategy sees the new prices
    await runner.stop()

``on_events`` takes the events of inputs the strategy did not issue (ticks, feed events, other
command sources); the events of the strategy's own commands reach ``on_event`` through the
exchange (:meth:`PaperExchange.drain_events`) right after the hook that caused them returns, so
a hook is never re-entered from inside itself.
"""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Iterable
from typing import Any

import structlog

from guardbot.core.events import Event
from guardbot.errors import GuardbotError
from guardbot.paper.exchange import PaperExchange
from guardbot.paper.strategy import Strategy

__all__ = ["StrategyError", "StrategyRunner"]

_log = structlog.get_logger("guardbot.strategy")

# Events caused by on_event hooks may cause more events; a strategy that answers every event
# with an order that is refused would loop forever. Deliveries per host call are bounded.
MAX_EVENT_ROUNDS = 1000


class StrategyError(GuardbotError):
    """A strategy hook failed and the runner was told to stop on errors."""


class StrategyRunner:
    """Runs ``strategy`` against ``exchange``; see the module docstring.

    ``errors`` counts hook failures. With ``stop_on_error`` the first failure raises
    :class:`StrategyError` (the strategy's exception chained); otherwise the host goes on.
    """

    def __init__(
        self,
        strategy: Strategy,
        exchange: PaperExchange,
        *,
        stop_on_error: bool = False,
        name: str | None = None,
    ) -> None:
        self.strategy = strategy
        self.exchange = exchange
        self.stop_on_error = stop_on_error
        self.name = name or type(strategy).__name__
        self.errors = 0
        self._wants_ticks = getattr(type(strategy), "on_tick", None) is not Strategy.on_tick
        self._async_on_tick = inspect.iscoroutinefunction(strategy.on_tick)
        self.started = False
        self.stopped = False

    async def _call(self, hook: str, *args: Any, **context: Any) -> None:
        try:
            # a hook written without ``async`` is called all the same
            result = getattr(self.strategy, hook)(self.exchange, *args)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # a strategy bug must not take the host down (see class doc)
            self._failed(hook, exc, context)

    def _failed(self, hook: str, exc: Exception, context: dict[str, Any]) -> None:
        """Count and log a hook's failure; raise :class:`StrategyError` with ``stop_on_error``."""
        self.errors += 1
        _log.error(
            "strategy hook failed",
            strategy=self.name,
            hook=hook,
            error=f"{type(exc).__name__}: {exc}",
            errors=self.errors,
            # the traceback as text: renderers that expand frames would log their locals
            traceback="".join(traceback.format_exception(exc)),
            **context,
        )
        if self.stop_on_error:
            raise StrategyError(
                f"strategy {self.name}.{hook} failed: {type(exc).__name__}: {exc}"
            ) from exc

    async def _deliver(self, events: Iterable[Event]) -> None:
        """``on_event`` for each event of the exchange's account, then for what those caused."""
        batch = list(events)
        for _ in range(MAX_EVENT_ROUNDS):
            for event in batch:
                if event.get("account") not in (self.exchange.account, None):
                    continue
                await self._call(
                    "on_event", event, event_type=event.get("type"), ts=event.get("ts")
                )
            batch = self.exchange.drain_events()
            if not batch:
                return
        _log.warning(
            "strategy events not delivered: on_event keeps causing events",
            strategy=self.name,
            rounds=MAX_EVENT_ROUNDS,
            dropped=len(batch),
        )

    async def start(self) -> None:
        """``on_start`` once (later calls do nothing)."""
        if self.started:
            return
        self.started = True
        await self.exchange.load_markets()
        await self._call("on_start")
        await self._deliver(())

    async def on_events(self, events: Iterable[Event]) -> None:
        """Record ``events`` (from ticks or other sources) and hand them to ``on_event``."""
        batch = list(events)
        if not batch:
            return
        self.exchange.ingest(batch)
        await self._deliver(batch)

    async def on_tick(self, symbol: str, ts: int | None = None) -> None:
        """The engine has applied a tick of ``symbol``: wake watchers, call ``on_tick``.

        Called for every tick of a replay, so the common case (an ``async def on_tick``, no
        events pending) costs one ticker and one await: no generic hook call, no delivery
        round when the hook caused nothing.
        """
        exchange = self.exchange
        if exchange.publish_tick(symbol, ts):
            # one loop turn: a task of the strategy blocked in watch_* runs up to its next
            # watch_* (paper calls complete without suspending), so a replay that never waits
            # otherwise still drives it, deterministically (the loop runs ready tasks in order)
            await asyncio.sleep(0)
        # without on_tick (event-driven, or watch_* loops) no ticker is built; a symbol without
        # a tier table is not traded by the engine, so the strategy cannot trade it either
        if self._wants_ticks and symbol in exchange.markets:
            ticker = exchange.ticker(symbol)
            if self._async_on_tick:
                try:
                    await self.strategy.on_tick(exchange, ticker)
                except Exception as exc:  # contained as in _call
                    self._failed("on_tick", exc, {"symbol": symbol, "ts": ts})
            else:
                await self._call("on_tick", ticker, symbol=symbol, ts=ts)
        if exchange.has_pending_events():
            await self._deliver(())

    async def stop(self) -> None:
        """``on_stop`` once, then close the exchange (pending ``watch_*`` calls are rejected)."""
        if self.stopped:
            return
        self.stopped = True
        if self.started:
            await self._call("on_stop")
            await self._deliver(())
        await self.exchange.close()
