"""Builders for the paper tests: an engine from an enginekit config, a paper exchange on it, and
a tick driver that calls the runner the way hosts do."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from guardbot.cli.simulate import build_config
from guardbot.core.commands import TickCmd
from guardbot.core.engine import Engine
from guardbot.core.events import Event
from guardbot.paper import PaperExchange, StrategyRunner, engine_apply
from tests.core.enginekit import BTC, config

__all__ = ["BTC", "drive", "make_engine", "make_exchange", "tick"]


def make_engine(**kwargs: Any) -> Engine:
    kwargs.setdefault("wallet", 10_000)
    return Engine(build_config(json.loads(json.dumps(config(**kwargs)))))


class Recorded:
    """Every event of the run, in order (ticks' and commands')."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, events: list[Event]) -> None:
        self.events.extend(events)


def make_exchange(engine: Engine | None = None, **kwargs: Any) -> tuple[PaperExchange, Recorded]:
    engine = engine if engine is not None else make_engine(**kwargs)
    recorded = Recorded()
    return PaperExchange(engine, engine_apply(engine, record=recorded)), recorded


def tick(
    exchange: PaperExchange, ts: int, mark: object, symbol: str = BTC, **prices: object
) -> list[Event]:
    """Apply a tick to the exchange's engine (a test reaches in; hosts own the engine)."""
    engine: Engine = exchange._engine
    fields = {k: Decimal(str(v)) for k, v in prices.items()}
    events = engine.tick(ts, TickCmd(symbol=symbol, mark=Decimal(str(mark)), **fields))
    exchange.ingest(events)
    exchange.publish_tick(symbol, ts)
    return events


async def drive(
    runner: StrategyRunner, recorded: Recorded, marks: Sequence[object], symbol: str = BTC
) -> None:
    """One tick per mark, 1 s apart from ts 1000, through the runner as a host does it."""
    engine: Engine = runner.exchange._engine
    for i, mark in enumerate(marks, start=1):
        ts = i * 1000
        events = engine.tick(ts, TickCmd(symbol=symbol, mark=Decimal(str(mark))))
        recorded(events)
        await runner.on_events(events)
        await runner.on_tick(symbol, ts)
