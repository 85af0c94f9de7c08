"""Checkpoints and retention in the daemon's start-up (issue 16 asks 1-2), without MQTT.

A pipeline journals inputs; the Checkpointer stores checkpoints and prunes; a fresh pipeline
recovers from the same database and must hold the same state. A damaged newest checkpoint falls
back to an older one with a warning; a pruned journal without a usable checkpoint is an error
naming the database, never an empty state.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guardbot.config import Config, load_config
from guardbot.core import checkpoint
from guardbot.daemon import checkpoints
from guardbot.daemon.checkpoints import Checkpointer
from guardbot.daemon.pipeline import StepPipeline
from guardbot.daemon.recovery import recover
from guardbot.daemon.sdnotify import Notifier
from guardbot.daemon.tier_tables import TierTables
from guardbot.errors import StoreError
from guardbot.metrics.prometheus import Metrics
from guardbot.store.journal import DB_FILENAME, Journal

BTC = "BTC/USDT:USDT"
DAY_MS = 86_400_000
T0 = 1_700_000_000_000

CONFIG = """
[guardbot]
instance = "c1"
data_dir = "{data_dir}"

[exchange]
id = "binanceusdm"
symbols = ["BTC/USDT:USDT"]

[feed]
mode = "sim"

[accounts.demo]
wallet = 10000
default_leverage = 10

[mqtt]
url = "mqtt://127.0.0.1:1"
embedded_broker = "never"

[store]
retention_days = 1
"""


def make_config(tmp_path: Path) -> Config:
    path = tmp_path / "guardbot.toml"
    path.write_text(CONFIG.format(data_dir=tmp_path / "data"), encoding="utf-8")
    (tmp_path / "data").mkdir(exist_ok=True)
    return load_config(path, {})


def pipeline_for(config: Config, clock: Callable[[], float]) -> StepPipeline:
    return StepPipeline(
        TierTables(config).initial_engine(),
        instance="c1",
        prefix="guardbot",
        symbols=config.exchange.symbols,
        metrics=Metrics(symbols=config.exchange.symbols),
        clock=clock,
        wake=lambda: None,
    )


def state_of(pipeline: StepPipeline) -> Any:
    st = pipeline.engine.state_root
    st.out = []
    return checkpoint.encode(st)


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000


async def journal_days(tmp_path: Path, days: int) -> tuple[Config, Any, list[int]]:
    """A journal with a tick and an order each day for ``days`` days, a checkpoint after each
    day (retention 1 day); returns the config, the final state and the first seq after each
    checkpoint's prune."""
    config = make_config(tmp_path)
    clock = Clock()
    pipeline = pipeline_for(config, clock)
    firsts: list[int] = []
    async with Journal.in_data_dir(tmp_path / "data", instance="c1") as journal:
        pipeline.attach(journal)
        checkpointer = Checkpointer(
            pipeline, journal, interval_s=300, retention_days=1, now_ms=lambda: clock.ms
        )
        for day in range(days):
            clock.ms = T0 + day * DAY_MS
            await pipeline.apply_command({"type": "tick", "symbol": BTC, "mark": 60000 + day})
            side = "buy" if day % 2 == 0 else "sell"
            await pipeline.apply_command(
                {"type": "order", "account": "demo", "id": f"o{day}", "symbol": BTC,
                 "orderType": "market", "side": side, "amount": "0.01"}
            )  # fmt: skip
            await checkpointer.write()
            first = await journal.first_input_seq()
            assert first is not None
            firsts.append(first)
    return config, state_of(pipeline), firsts


async def recovered(config: Config, tmp_path: Path) -> tuple[Any, Any]:
    pipeline = pipeline_for(config, Clock())
    async with Journal.in_data_dir(tmp_path / "data", instance="c1") as journal:
        pipeline.attach(journal)
        done = await recover(journal, pipeline, Notifier(None))
    return state_of(pipeline), done


async def test_retention_prunes_what_a_checkpoint_covers_and_restart_uses_it(
    tmp_path: Path,
) -> None:
    config, live, firsts = await journal_days(tmp_path, 5)
    # Day d's checkpoint covers inputs up to 2(d+1); retention keeps a day back from the
    # newest input: inputs of days before d-1 go.
    assert firsts == [1, 1, 3, 5, 7]
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as conn:
        [(count,)] = conn.execute("SELECT COUNT(*) FROM inputs")
        [(events_left,)] = conn.execute(
            "SELECT COUNT(*) FROM events WHERE ts < ?", (T0 + 3 * DAY_MS,)
        )
        [(checkpoints,)] = conn.execute("SELECT COUNT(*) FROM checkpoints")
    assert count == 4 and events_left == 0 and checkpoints == 3
    state, done = await recovered(config, tmp_path)
    assert done.checkpoint_seq == 10 and done.applied == 0 and not done.warnings
    assert state == live


async def test_a_damaged_checkpoint_falls_back_to_an_older_one(tmp_path: Path) -> None:
    config, live, _firsts = await journal_days(tmp_path, 2)  # nothing pruned yet
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as conn:
        conn.execute(
            "UPDATE checkpoints SET body = substr(body, 1, 100) "
            "WHERE id = (SELECT MAX(id) FROM checkpoints)"
        )
    state, done = await recovered(config, tmp_path)
    assert done.checkpoint_seq == 2 and done.applied == 2
    assert len(done.warnings) == 1 and "damaged (digest mismatch)" in done.warnings[0]
    assert state == live


async def test_a_pruned_journal_without_a_usable_checkpoint_is_an_error(tmp_path: Path) -> None:
    config, _live, firsts = await journal_days(tmp_path, 4)
    assert firsts[-1] > 1
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as conn:
        conn.execute("UPDATE checkpoints SET sha256 = 'x'")
    with pytest.raises(StoreError) as info:
        await recovered(config, tmp_path)
    message = str(info.value)
    assert str(tmp_path / "data" / DB_FILENAME) in message
    assert "no usable checkpoint" in message and "pruned" in message


async def test_the_text_is_made_after_the_step_lock_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the walk of the state (a detached tree) holds the step lock: an input waiting for
    the lock runs before the JSON text is made, and the text is still the state as it was
    under the lock."""
    config = make_config(tmp_path)
    clock = Clock()
    pipeline = pipeline_for(config, clock)
    seen_at_text: list[int] = []
    text_pieces = checkpoint.text_pieces

    def spy(tree: Any) -> Iterator[str]:
        # whether the order is applied when the text is made
        seen_at_text.append(len(pipeline.engine.account("demo").positions))
        return text_pieces(tree)

    monkeypatch.setattr(checkpoint, "text_pieces", spy)
    monkeypatch.setattr(checkpoints, "TEXT_SLICE_S", 0.0)  # a turn of the loop every 32 pieces
    turns = 0
    writing_done = False

    async def heartbeat() -> None:
        nonlocal turns
        while not writing_done:
            turns += 1
            await asyncio.sleep(0)

    async with Journal.in_data_dir(tmp_path / "data", instance="c1") as journal:
        pipeline.attach(journal)
        checkpointer = Checkpointer(
            pipeline, journal, interval_s=300, retention_days=1, now_ms=lambda: clock.ms
        )
        await pipeline.apply_command({"type": "tick", "symbol": BTC, "mark": 60000})
        walked = state_of(pipeline)
        async with pipeline.lock:  # the order waits for the lock, behind the checkpoint
            writing = asyncio.create_task(checkpointer.write())
            await asyncio.sleep(0)
            beat = asyncio.create_task(heartbeat())
            order = asyncio.create_task(
                pipeline.apply_command(
                    {"type": "order", "account": "demo", "id": "o1", "symbol": BTC,
                     "orderType": "market", "side": "buy", "amount": "0.01"}
                )
            )  # fmt: skip
            await asyncio.sleep(0)
        info = await writing
        writing_done = True
        await order
        await beat
        assert info is not None and info.input_seq == 1
        [(_id, seq, _ts, _fmt, _sha, body)] = await journal.checkpoints()
    assert seen_at_text == [1]  # the order ran between the walk and the text
    assert turns > 10  # the text was made in slices, the loop turning between them
    stored = checkpoint.loads(body)
    stored.engine.out = []
    assert seq == 1 and checkpoint.encode(stored.engine) == walked  # after input 1, not 2
