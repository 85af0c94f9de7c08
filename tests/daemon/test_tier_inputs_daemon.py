"""Tier tables as inputs in the daemon (issue 16 ask 3), against a private Mosquitto and a stubbed
tier source (the ``tier_fetcher`` hook; the ccxt code path of the fetch is tested against the
stand-in exchange in test_daemon_ccxt):

* a refresh that fetches a changed table journals a ``tiers`` input, applies it at once (the
  position's liquidation price moves live) and publishes a ``tier_tables`` info alert;
* a restart that resolves yet another table rebuilds the state with the journaled one (with and
  without its checkpoint), then journals the new one as an input of its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from guardbot.config import load_config
from guardbot.daemon.pipeline import StepPipeline
from guardbot.daemon.recovery import recover
from guardbot.daemon.sdnotify import Notifier
from guardbot.daemon.service import Daemon
from guardbot.daemon.tier_tables import TierTables
from guardbot.metrics.prometheus import Metrics
from guardbot.store.journal import Journal
from tests.broker import Mosquitto
from tests.daemon.test_daemon import BTC, SEED, Subscriber, journal_rows, write_config
from tests.daemon.test_daemon_ops import alive, finish, start

pytestmark = pytest.mark.integration

LIMIT = 40.0
DAY_S = 86_400.0

#: What the stubbed exchange serves, in turn: the table at the first start (A), after a change
#: (B: tier 1 cut to 10k, higher rates) and at a restart two days later (C).
TABLE_A = [
    {"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": "0.004", "maxLeverage": 125},
    {"minNotional": 50000, "maxNotional": 250000, "maintenanceMarginRate": "0.005",
     "maxLeverage": 100},
]  # fmt: skip
TABLE_B = [
    {"minNotional": 0, "maxNotional": 10000, "maintenanceMarginRate": "0.01", "maxLeverage": 50},
    {"minNotional": 10000, "maxNotional": 250000, "maintenanceMarginRate": "0.02",
     "maxLeverage": 25},
]  # fmt: skip
TABLE_C = [
    {"minNotional": 0, "maxNotional": 250000, "maintenanceMarginRate": "0.006", "maxLeverage": 75},
]


class StubSource:
    """A tier fetcher serving ``table`` (changed by the test) for every symbol asked."""

    def __init__(self, table: list[dict[str, Any]]) -> None:
        self.table = table
        self.calls = 0

    async def __call__(self, symbols: Sequence[str]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        self.calls += 1
        return {s: [dict(r) for r in self.table] for s in symbols}, {s: 1 for s in symbols}


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def tiers_inputs(data_dir: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = journal_rows(data_dir, "SELECT seq, body FROM inputs WHERE kind = 'tiers' ORDER BY seq")
    return [(int(seq), json.loads(body)) for seq, body in rows]


def rates(body: dict[str, Any]) -> list[Decimal]:
    return [Decimal(r["maintenanceMarginRate"]) for r in body["tables"][BTC]["tiers"]]


def liquidation_price(daemon: Daemon) -> Decimal:
    account = daemon.engine.accounts["demo"]
    [position] = daemon.engine.state(account)["positions"]  # type: ignore[misc]
    return Decimal(position["liquidationPrice"])


async def test_a_changed_table_is_journaled_applied_live_and_kept_over_a_restart(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = load_config(write_config(tmp_path, mosquitto), {})
    data_dir = tmp_path / "data"
    source = StubSource(TABLE_A)
    clock = Clock()
    stop = asyncio.Event()
    daemon = Daemon(config, initial_commands=SEED, tier_fetcher=source, clock=clock)
    async with asyncio.timeout(LIMIT), Subscriber(mosquitto, ["guardbot/t1/alerts/#"]) as sub:
        task = start(daemon, stop)
        await alive(task, daemon.ready.wait())
        # the first start journals the tables it resolved, before anything else
        [(seq, first)] = tiers_inputs(data_dir)
        assert seq == 1 and first["tables"][BTC]["source"] == "exchange"
        assert rates(first) == [Decimal("0.004"), Decimal("0.005")]
        before = liquidation_price(daemon)

        source.table = TABLE_B
        events = await daemon.tiers.refresh_once(daemon.pipeline.journal, daemon.pipeline)  # type: ignore[arg-type]
        after = liquidation_price(daemon)
        assert after > before  # higher maintenance: the long's liquidation price rose, live
        [alert] = [e for e in events if e["type"] == "tier_tables"]
        assert alert["severity"] == "info" and alert["sources"] == {BTC: "exchange"}
        [moved] = alert["positions"]
        assert moved["oldLiquidationPrice"] == before and moved["liquidationPrice"] == after
        assert (moved["oldTier"], moved["tier"]) == (1, 2)
        await alive(task, sub.until(lambda t, _p: t.endswith("/alerts/info/tier_tables")))
        topic, payload = sub.received[-1]
        assert topic == "guardbot/t1/alerts/info/tier_tables"
        assert payload["changes"][0]["newMaintenanceMarginRate"] == "0.01"
        assert payload["positions"][0]["liquidationPrice"] == str(after)
        assert payload["reason"].startswith("BTC/USDT:USDT: tier table changed: 2 -> 2 tiers")
        assert payload["text"].startswith("tier tables: ")
        journaled = tiers_inputs(data_dir)
        assert [rates(b) for _s, b in journaled][-1] == [Decimal("0.01"), Decimal("0.02")]
        # an unchanged refresh journals nothing
        assert await daemon.tiers.refresh_once(daemon.pipeline.journal, daemon.pipeline) == []  # type: ignore[arg-type]
        assert len(tiers_inputs(data_dir)) == 2
        await finish(task, stop)
    last_seq = journal_rows(data_dir, "SELECT MAX(seq) FROM inputs")[0][0]

    # Two days later the exchange serves C (the cache is stale: it is fetched at start). The
    # state is rebuilt with the journaled B, whatever is resolved today: with the checkpoint of
    # the clean stop and from the whole journal alike.
    clock.offset = 2 * DAY_S
    source.table = TABLE_C
    for use_checkpoints in (True, False):
        engine = await replayed(tmp_path, source, clock, use_checkpoints)
        assert [t.mmr for t in engine.config.tiers[BTC].tiers] == [
            Decimal("0.01"),
            Decimal("0.02"),
        ]
    daemon = Daemon(config, tier_fetcher=source, clock=clock)
    stop = asyncio.Event()
    async with asyncio.timeout(LIMIT):
        task = start(daemon, stop)
        await alive(task, daemon.ready.wait())
        # ... then today's table is journaled as a new input after the recovered ones, moving
        # the position from B (not from A or C) at that input
        seq, body = tiers_inputs(data_dir)[-1]
        assert seq == last_seq + 1 and rates(body) == [Decimal("0.006")]
        events = journal_rows(
            data_dir, f"SELECT body FROM events WHERE input_seq = {seq} ORDER BY seq"
        )
        alert = json.loads(events[0][0])
        assert alert["type"] == "tier_tables" and alert["severity"] == "info"
        assert alert["changes"][0]["oldMaintenanceMarginRate"] == "0.01"
        assert alert["positions"][0]["oldLiquidationPrice"] == str(after)
        assert liquidation_price(daemon) == Decimal(alert["positions"][0]["liquidationPrice"])
        await finish(task, stop)


async def replayed(tmp_path: Path, source: StubSource, clock: Clock, use_checkpoints: bool) -> Any:
    """The engine a start rebuilds, before it journals today's tables."""
    config = load_config(tmp_path / "guardbot.toml", {})
    tiers = TierTables(config, source)
    pipeline = StepPipeline(
        tiers.initial_engine(),
        instance="t1",
        prefix="guardbot",
        symbols=config.exchange.symbols,
        metrics=Metrics(symbols=config.exchange.symbols),
        clock=clock,
        wake=lambda: None,
    )
    async with Journal.in_data_dir(tmp_path / "data", instance="t1") as journal:
        pipeline.attach(journal)
        pipeline.engine, _warnings = await tiers.resolve_at_start(journal, int(clock() * 1000))
        # today's table is C (fetched, or cached by the previous call)
        assert tiers.resolved is not None
        assert [t.mmr for t in tiers.resolved.tables[BTC].tiers] == [Decimal("0.006")]
        done = await recover(journal, pipeline, Notifier(None), use_checkpoints=use_checkpoints)
        assert bool(done.checkpoint_seq) == use_checkpoints
    return pipeline.engine


async def test_a_journal_without_tiers_inputs_recovers_then_records_its_tables(
    tmp_path: Path,
) -> None:
    """A journal written before tier tables were inputs replays under the tables resolved at
    this start (as it always did), and the start then journals them, changing nothing."""
    no_broker = SimpleNamespace(host="127.0.0.1", port=1)  # nothing is published here
    config = load_config(write_config(tmp_path, no_broker), {})  # type: ignore[arg-type]
    (tmp_path / "data").mkdir()
    source = StubSource(TABLE_A)
    clock = Clock()

    def pipeline_of(tiers: TierTables) -> StepPipeline:
        return StepPipeline(
            tiers.initial_engine(),
            instance="t1",
            prefix="guardbot",
            symbols=config.exchange.symbols,
            metrics=Metrics(symbols=config.exchange.symbols),
            clock=clock,
            wake=lambda: None,
        )

    old = TierTables(config, source)
    writer = pipeline_of(old)
    async with Journal.in_data_dir(tmp_path / "data", instance="t1") as journal:
        writer.attach(journal)
        writer.engine, _w = await old.resolve_at_start(journal, int(clock() * 1000))
        for obj in SEED:  # as an older daemon journaled them: no tiers input
            await writer.apply_command(obj)
    before = writer.engine.state(writer.engine.accounts["demo"])

    tiers = TierTables(config, source)
    pipeline = pipeline_of(tiers)
    async with Journal.in_data_dir(tmp_path / "data", instance="t1") as journal:
        pipeline.attach(journal)
        pipeline.engine, _w = await tiers.resolve_at_start(journal, int(clock() * 1000))
        done = await recover(journal, pipeline, Notifier(None), use_checkpoints=False)
        assert done.applied == 2
        events = await tiers.journal_at_start(pipeline)
    assert events == []  # the same tables: recorded, nothing moves
    [(seq, body)] = tiers_inputs(tmp_path / "data")
    assert seq == 3 and body["tables"][BTC]["source"] == "cache"
    assert pipeline.engine.state(pipeline.engine.accounts["demo"]) == before
    assert pipeline.engine.state_root.tier_sources[BTC][0] == "cache"
