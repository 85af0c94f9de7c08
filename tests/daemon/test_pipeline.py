"""The step pipeline alone (no MQTT, no daemon): "saved before published".

Every input is applied and committed with its events and outbox rows in one journal step before
the publisher is woken; a reader on another connection (as the publisher's reads are, after the
commit) sees the rows the moment ``wake`` is called. A failed commit wakes nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guardbot.config import Config, load_config
from guardbot.core.commands import TickCmd
from guardbot.daemon.pipeline import StepPipeline
from guardbot.daemon.service import Daemon
from guardbot.daemon.tier_tables import TierTables
from guardbot.errors import StoreError
from guardbot.feeds.base import FeedStale, TickUpdate
from guardbot.metrics.prometheus import Metrics
from guardbot.store.journal import DB_FILENAME, Journal
from guardbot.store.lock import LOCK_FILENAME, DataDirLock

BTC = "BTC/USDT:USDT"
T0 = 1_700_000_000_000

CONFIG = """
[guardbot]
instance = "p1"
data_dir = "{data_dir}"

[exchange]
id = "binanceusdm"
symbols = ["BTC/USDT:USDT"]

[feed]
mode = "sim"

[accounts.demo]
wallet = 1000
default_margin_mode = "cross"
default_leverage = 25

[alerts]
margin_ratio_levels = [0.5, 0.7, 0.8]
hysteresis = 0.05

[mqtt]
url = "mqtt://127.0.0.1:1"
embedded_broker = "never"
"""

ORDER = {
    "type": "order",
    "account": "demo",
    "id": "o1",
    "symbol": BTC,
    "orderType": "market",
    "side": "buy",
    "amount": "0.4",
}


def make_config(tmp_path: Path) -> Config:
    path = tmp_path / "guardbot.toml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "data"), encoding="utf-8")
    (tmp_path / "data").mkdir(exist_ok=True)
    return load_config(path, {})


class Witness:
    """The ``wake`` callback: at each call, what a second connection sees in the database."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.seen: list[list[tuple[str, str]]] = []

    def __call__(self) -> None:
        conn = sqlite3.connect(self.db)
        try:
            rows = conn.execute("SELECT alert_id, payload FROM outbox ORDER BY id").fetchall()
        finally:
            conn.close()
        self.seen.append([(str(a), str(p)) for a, p in rows])


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[StepPipeline, Witness, Journal]]:
    config = make_config(tmp_path)
    witness = Witness(tmp_path / "data" / DB_FILENAME)
    pipeline = StepPipeline(
        TierTables(config).initial_engine(),
        instance="p1",
        prefix="guardbot",
        symbols=config.exchange.symbols,
        metrics=Metrics(symbols=config.exchange.symbols),
        clock=lambda: T0 / 1000,
        wake=witness,
    )
    async with Journal.in_data_dir(tmp_path / "data", instance="p1") as journal:
        pipeline.attach(journal)
        yield pipeline, witness, journal


def tick(mark: str, n: int) -> TickUpdate:
    return TickUpdate(T0 + n * 1000, TickCmd(BTC, Decimal(mark)))


async def test_alert_rows_are_committed_before_the_publisher_is_woken(
    setup: tuple[StepPipeline, Witness, Journal],
) -> None:
    pipeline, witness, _journal = setup
    assert await pipeline.tick(tick("60000", 0), 0.0) == []
    assert witness.seen == []  # a tick without events writes no outbox row, wakes nothing
    await pipeline.apply_command(ORDER)
    # Down to a margin alert: ratio above 0.5 of the 1000 USDT wallet at 25x on 0.4 BTC.
    events: list[dict[str, Any]] = []
    for n, mark in enumerate(("58500", "58200", "58000", "57900", "57800"), start=1):
        events += await pipeline.tick(tick(mark, n), 0.0)
    alerts = [e for e in events if e["type"] == "margin_alert"]
    assert alerts, events
    assert witness.seen, "the publisher was never woken"
    # At each wake, every alert row that step made was already readable by another connection.
    last = witness.seen[-1]
    payloads = [json.loads(p) for _a, p in last]
    alert_payloads = [p for p in payloads if p.get("type") == "margin_alert" and "alertId" in p]
    assert len(alert_payloads) == len(alerts)  # the last step's alert too
    for alert_id, payload in last:
        body = json.loads(payload)
        if "alertId" in body:
            assert body["alertId"] == alert_id  # the same id on the row and in the payload
    # Ids follow <instance>-<input seq>-<row>: the seq the journal gave that step.
    seq = int(alert_payloads[-1]["alertId"].split("-")[1])
    conn = sqlite3.connect(witness.db)
    [[kind]] = conn.execute("SELECT kind FROM inputs WHERE seq = ?", (seq,)).fetchall()
    conn.close()
    assert kind == "tick"
    assert pipeline.next_seq == seq + 1


async def test_a_failed_commit_wakes_nothing(
    setup: tuple[StepPipeline, Witness, Journal], tmp_path: Path
) -> None:
    pipeline, witness, journal = setup
    await pipeline.tick(tick("60000", 0), 0.0)
    await journal.__aexit__(None, None, None)  # the database goes away under the pipeline
    with pytest.raises(RuntimeError, match="not open"):
        await pipeline.feed_health(FeedStale(BTC, T0, "test"))
    assert witness.seen == []


async def test_control_command_journals_the_prices_it_saw_first(
    setup: tuple[StepPipeline, Witness, Journal],
) -> None:
    pipeline, _witness, journal = setup
    await pipeline.tick(tick("60000", 0), 0.0)  # no event: not journaled yet
    assert await journal.last_input() is None
    await pipeline.control_command(ORDER)
    kinds = [kind async for _seq, _ts, kind, _body in journal.inputs_after(0)]
    assert kinds == ["tick", "order"]
    # A refused command is journaled as such (recovery skips it).
    await pipeline.control_command({**ORDER, "id": "o2", "amount": "1000"})
    kinds = [kind async for _seq, _ts, kind, _body in journal.inputs_after(0)]
    assert kinds == ["tick", "order", "refused_command"]


async def test_a_second_daemon_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    """Issue 16 ask 4: one clear error naming the lock file (exit 1 from guardbot run); the
    first daemon goes on."""
    config = make_config(tmp_path)
    with DataDirLock(tmp_path / "data"):  # the first daemon's hold
        second = Daemon(config)
        with pytest.raises(StoreError) as info:
            await asyncio.wait_for(second.run(asyncio.Event()), 10)
    message = str(info.value)
    assert str(tmp_path / "data" / LOCK_FILENAME) in message
    assert "another guardbot daemon uses this data_dir" in message
    assert f"pid {os.getpid()}" in message
    with DataDirLock(tmp_path / "data"):  # released with its holder
        pass
