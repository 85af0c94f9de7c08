"""StrategyRunner: hook order, failures logged with traceback and counted, stop_on_error."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import ccxt
import pytest
from structlog.testing import capture_logs

from guardbot.paper import PaperExchange, Strategy, StrategyError, StrategyRunner, engine_apply
from tests.paper.paperkit import BTC, drive, make_engine, make_exchange


class Flaky(Strategy):
    def __init__(self, params: dict[str, Any] | None = None) -> None:
        super().__init__(params)
        self.calls: list[str] = []

    async def on_start(self, exchange: Any) -> None:
        self.calls.append("start")

    async def on_tick(self, exchange: Any, ticker: dict[str, Any]) -> None:
        self.calls.append(f"tick {ticker['markPrice']}")
        if ticker["markPrice"] == self.params.get("fail_at"):
            raise ZeroDivisionError("strategy bug")
        if ticker["markPrice"] == 30000:
            await exchange.create_market_buy_order(BTC, 0.1)

    async def on_event(self, exchange: Any, event: dict[str, Any]) -> None:
        self.calls.append(event["type"])

    async def on_stop(self, exchange: Any) -> None:
        self.calls.append("stop")


async def test_hooks_in_order_and_own_events_after_the_hook() -> None:
    exchange, recorded = make_exchange(leverage=10)
    strategy = Flaky()
    runner = StrategyRunner(strategy, exchange)
    await runner.start()
    await runner.start()  # once only
    await drive(runner, recorded, [30000, 30100])
    await runner.stop()
    await runner.stop()
    assert strategy.calls == [
        "start",
        "tick 30000.0",
        "order_accepted",
        "fill",
        "tick 30100.0",
        "stop",
    ]
    assert runner.errors == 0


async def test_failures_are_logged_counted_and_not_fatal() -> None:
    exchange, recorded = make_exchange(leverage=10)
    strategy = Flaky({"fail_at": 30100.0})
    runner = StrategyRunner(strategy, exchange)
    await runner.start()
    with capture_logs() as logs:
        await drive(runner, recorded, [30000, 30100, 30200, 30100])
    await runner.stop()
    assert runner.errors == 2
    assert strategy.calls[-2:] == ["tick 30100.0", "stop"]
    failures = [entry for entry in logs if entry["event"] == "strategy hook failed"]
    assert len(failures) == 2
    assert failures[0]["hook"] == "on_tick" and failures[0]["strategy"] == "Flaky"
    assert failures[0]["error"] == "ZeroDivisionError: strategy bug"
    assert "Traceback (most recent call last)" in failures[0]["traceback"]
    assert failures[0]["log_level"] == "error"


async def test_stop_on_error_raises() -> None:
    exchange, recorded = make_exchange(leverage=10)
    runner = StrategyRunner(Flaky({"fail_at": 30100.0}), exchange, stop_on_error=True)
    await runner.start()
    with capture_logs(), pytest.raises(StrategyError, match=r"Flaky\.on_tick failed") as info:
        await drive(runner, recorded, [30000, 30100])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert runner.errors == 1


class Synchronous(Strategy):
    seen: list[str]

    def on_start(self, exchange: Any) -> None:  # type: ignore[override]
        self.seen = ["start"]

    def on_tick(self, exchange: Any, ticker: dict[str, Any]) -> None:  # type: ignore[override]
        self.seen.append("tick")
        raise RuntimeError("sync failure")


async def test_plain_functions_as_hooks() -> None:
    exchange, recorded = make_exchange()
    strategy = Synchronous()
    runner = StrategyRunner(strategy, exchange)
    await runner.start()
    with capture_logs():
        await drive(runner, recorded, [30000])
    assert strategy.seen == ["start", "tick"] and runner.errors == 1


class Chatty(Strategy):
    """Answers every event with an order that is refused: an endless conversation."""

    async def on_tick(self, exchange: Any, ticker: dict[str, Any]) -> None:
        await self.refused(exchange)

    async def on_event(self, exchange: Any, event: dict[str, Any]) -> None:
        await self.refused(exchange)

    @staticmethod
    async def refused(exchange: Any) -> None:
        with contextlib.suppress(Exception):  # refused on purpose
            await exchange.create_market_sell_order(BTC, 1, {"reduceOnly": True})


async def test_event_rounds_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("guardbot.paper.runner.MAX_EVENT_ROUNDS", 5)
    exchange, recorded = make_exchange()
    runner = StrategyRunner(Chatty(), exchange)
    await runner.start()
    with capture_logs() as logs:
        await drive(runner, recorded, [30000])
    assert [e["event"] for e in logs] == [
        "strategy events not delivered: on_event keeps causing events"
    ]
    assert runner.errors == 0


async def test_events_of_other_accounts_are_not_delivered() -> None:
    engine = make_engine(accounts={"a": {}, "b": {}})
    strategy = Flaky()
    runner = StrategyRunner(strategy, PaperExchange(engine, engine_apply(engine), account="a"))
    await runner.start()
    await runner.on_events(
        [
            {"type": "fill", "ts": 1, "account": "b", "id": "x"},
            {"type": "feed_stale", "ts": 1, "account": None, "symbol": BTC},
        ]
    )
    assert strategy.calls == ["start", "feed_stale"]


class Watcher(Strategy):
    """The loop style of ccxt.pro scripts: a task awaiting watch_ticker, started in on_start."""

    async def on_start(self, exchange: Any) -> None:
        self.seen: list[Any] = []
        self.task = asyncio.ensure_future(self.loop(exchange))

    async def loop(self, exchange: Any) -> None:
        while True:
            ticker = await exchange.watch_ticker(BTC)
            self.seen.append(ticker["markPrice"])
            if len(self.seen) == 2:
                await exchange.create_market_buy_order(BTC, 0.1)

    async def on_event(self, exchange: Any, event: dict[str, Any]) -> None:
        self.seen.append(event["type"])


async def test_watch_loops_run_in_step_with_the_ticks() -> None:
    exchange, recorded = make_exchange(leverage=10)
    strategy = Watcher()
    runner = StrategyRunner(strategy, exchange)
    await runner.start()
    await asyncio.sleep(0)  # one loop turn: the task reaches its first watch_ticker
    await drive(runner, recorded, [30000, 30100, 30200])
    assert strategy.seen == [30000.0, 30100.0, "order_accepted", "fill", 30200.0]
    await runner.stop()
    with pytest.raises(ccxt.ExchangeClosedByUser):
        await strategy.task  # close() rejects the pending watch, as ccxt's does
