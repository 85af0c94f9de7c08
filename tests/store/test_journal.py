"""Tests of guardbot.store.journal: schema, atomic steps, outbox, durability, errors."""

from __future__ import annotations

import _sqlite3
import asyncio
import ctypes
import os
import signal
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import guardbot.store
from guardbot.core.num import fmt
from guardbot.store.journal import (
    DB_FILENAME,
    PAGE_CACHE_KIB,
    SCHEMA_VERSION,
    Journal,
    OutboxRow,
    StoreError,
)
from tests.fsfaults import fill, read_only, small_tmpfs

REPO_ROOT = Path(__file__).resolve().parents[2]
V1_TABLES = {"inputs", "events", "outbox", "state", "tier_cache", "schema_version"}
V2_TABLES = V1_TABLES | {"checkpoints"}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / DB_FILENAME


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows} - {"sqlite_sequence"}


def versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def alert(k: int, **extra: Any) -> dict[str, Any]:
    return {"type": "margin_alert", "ts": k, "account": "acc-1", "severity": "warning", **extra}


async def step(journal: Journal, ts: int, *, rows: int = 1, **kwargs: Any) -> int:
    outbox = [OutboxRow(topic=f"gb/alerts/{ts}/{n}", payload=f'{{"n":{n}}}') for n in range(rows)]
    return await journal.commit_step(
        ts=ts,
        kind=kwargs.pop("kind", "tick"),
        body=kwargs.pop("body", {"symbol": "BTC/USDT:USDT", "mark": "100"}),
        events=kwargs.pop("events", [alert(ts)]),
        outbox=kwargs.pop("outbox", outbox),
        **kwargs,
    )


# -- schema --------------------------------------------------------------------------------------


def test_public_surface_is_sorted_and_complete() -> None:
    assert guardbot.store.__all__ == sorted(guardbot.store.__all__)
    assert all(hasattr(guardbot.store, name) for name in guardbot.store.__all__)


async def test_migrations_create_v2_and_reopen_is_idempotent(db: Path) -> None:
    async with Journal(db) as journal:
        seq = await step(journal, 1)
    assert SCHEMA_VERSION == 2
    assert tables(db) == V2_TABLES
    assert versions(db) == [1, 2]
    for _ in range(2):
        async with Journal.in_data_dir(db.parent) as journal:
            assert await journal.last_input() == (seq, 1)
    assert versions(db) == [1, 2]
    assert tables(db) == V2_TABLES


async def test_newer_schema_is_refused_naming_both_versions(db: Path) -> None:
    async with Journal(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (7)")
    with pytest.raises(StoreError) as info:
        async with Journal(db):
            pass
    message = str(info.value)
    assert "version 7" in message and f"version {SCHEMA_VERSION}" in message
    assert str(db) in message
    assert versions(db) == [1, 2, 7]  # refused without touching anything


async def test_wal_mode_synchronous_full_and_foreign_keys(db: Path) -> None:
    async with Journal(db) as journal:
        conn = journal._conn
        assert conn is not None
        pragmas: dict[str, object] = {}
        for name in ("journal_mode", "synchronous", "foreign_keys", "cache_size"):
            cursor = await conn.execute(f"PRAGMA {name}")
            row = await cursor.fetchone()
            assert row is not None
            pragmas[name] = row[0]
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "cache_size": -PAGE_CACHE_KIB,
    }
    with sqlite3.connect(db) as plain:  # WAL is a property of the file: it persists
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _sqlite_memory_used() -> Any:
    """SQLite's own count of the bytes it holds in this process (``sqlite3_memory_used``), from
    the library the ``sqlite3`` module loaded (shared or linked into the extension)."""
    function = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
    function.restype = ctypes.c_int64
    return function


async def test_page_cache_stays_bounded_as_the_database_grows(db: Path) -> None:
    # SQLite's default cache (2,000 KiB) fills as the file grows: a daemon whose journal grows
    # slowly shows that as hours of steady RSS growth. The journal's own bound keeps it small.
    memory_used = _sqlite_memory_used()
    async with Journal(db) as journal:
        before = memory_used()
        body = {"symbol": "BTC/USDT:USDT", "pad": "x" * 8000}
        for ts in range(1, 401):  # about 3.5 MB of rows
            await step(journal, ts, body=body, events=[], rows=0)
        grown = memory_used() - before
    assert db.stat().st_size > 3_000_000
    assert grown < (PAGE_CACHE_KIB + 400) * 1024, f"SQLite grew by {grown:,} bytes"


async def test_new_database_files_are_owner_only(db: Path) -> None:
    old = os.umask(0o022)  # a container's usual umask
    try:
        async with Journal(db) as journal:
            await step(journal, 1)
            wal = Path(f"{db}-wal")
            assert wal.exists()
            modes = {p.name: p.stat().st_mode & 0o777 for p in (db, wal)}
    finally:
        os.umask(old)
    assert modes == {db.name: 0o600, wal.name: 0o600}


async def test_an_existing_database_keeps_its_mode(db: Path) -> None:
    async with Journal(db):
        pass
    db.chmod(0o640)  # the owner's choice, e.g. a backup group
    async with Journal(db) as journal:
        await step(journal, 1)
    assert db.stat().st_mode & 0o777 == 0o640


async def test_reentry_is_refused_and_closed_journal_refuses_calls(db: Path) -> None:
    journal = Journal(db)
    async with journal:
        with pytest.raises(RuntimeError, match="already open"):
            async with journal:
                pass
        assert await journal.outbox_depth() == 0  # the failed re-entry left it open
    with pytest.raises(RuntimeError, match="not open"):
        await journal.outbox_depth()
    async with journal:  # reopening after a clean exit is fine
        assert await journal.last_input() is None


# -- steps ---------------------------------------------------------------------------------------


async def test_commit_step_writes_input_events_outbox_and_state(db: Path) -> None:
    async with Journal(db, instance="eu-1") as journal:
        seq = await journal.commit_step(
            ts=1_000,
            kind="command",
            body={"cmd": "set_leverage", "leverage": Decimal("20")},
            events=[alert(1_000, level=1), {"type": "trading_state", "account": "acc-2"}],
            outbox=[
                OutboxRow(topic="gb/eu-1/alerts/warning/margin_alert", payload="{}"),
                OutboxRow(topic="gb/eu-1/status", payload="{}", qos=0, retain=True, alert_id="x"),
            ],
            state={"account:acc-1": {"wallet": Decimal("10.5")}, "levels": {"acc-1": 1}},
        )
        assert await journal.last_input() == (seq, 1_000)
        assert [row async for row in journal.inputs_after(0)] == [
            (seq, 1_000, "command", {"cmd": "set_leverage", "leverage": "20"})
        ]
        assert [row async for row in journal.inputs_after(seq)] == []
        events = await journal.events_for(seq)
        assert [e["type"] for e in events] == ["margin_alert", "trading_state"]
        pending = await journal.pending()
        assert [(e.alert_id, e.qos, e.retain, e.created_ts) for e in pending] == [
            (f"eu-1-{seq}-0", 1, False, 1_000),
            ("x", 0, True, 1_000),
        ]
        assert await journal.load_state() == {
            "account:acc-1": {"wallet": "10.5"},
            "levels": {"acc-1": 1},
        }
        # A later snapshot of the same key replaces it; other keys stay.
        await step(journal, 2_000, state={"levels": {"acc-1": 2}})
        state = await journal.load_state()
        assert state["levels"] == {"acc-1": 2} and state["account:acc-1"] == {"wallet": "10.5"}
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT ts, account FROM events WHERE type = 'trading_state'")
        assert row.fetchone() == (1_000, "acc-2")  # an event without ts takes the step's


@pytest.mark.parametrize("where", ["against an earlier step", "within the step"])
async def test_failed_step_writes_nothing(db: Path, where: str) -> None:
    async with Journal(db) as journal:
        first = await step(journal, 1, outbox=[OutboxRow(topic="t", payload="p", alert_id="a-1")])
        before = {t: count(db, t) for t in ("inputs", "events", "outbox", "state")}
        clash = "a-1" if where == "against an earlier step" else "a-2"
        with pytest.raises(StoreError, match=r"UNIQUE constraint failed: outbox\.alert_id"):
            await step(
                journal,
                2,
                events=[alert(2), alert(2, level=2)],
                outbox=[
                    OutboxRow(topic="t", payload="p", alert_id="a-2"),
                    OutboxRow(topic="t", payload="p", alert_id=clash),
                ],
                state={"levels": {"acc-1": 2}},
            )
        assert {t: count(db, t) for t in before} == before
        assert await journal.last_input() == (first, 1)
        assert await journal.load_state() == {}
        assert [e.alert_id for e in await journal.pending()] == ["a-1"]
        # The journal is usable after the failure and the failed step left no trace.
        second = await step(journal, 3)
        assert [seq for seq, *_ in [row async for row in journal.inputs_after(0)]] == [
            first,
            second,
        ]


async def test_unserializable_body_raises_before_writing(db: Path) -> None:
    async with Journal(db) as journal:
        with pytest.raises(TypeError):
            await step(journal, 1, body={"bad": object()})
        with pytest.raises(ValueError):
            await step(journal, 1, body={"bad": float("nan")})
        assert await journal.last_input() is None
        assert await step(journal, 2) > 0  # no transaction was left open


async def test_decimals_round_trip_exactly_as_strings(db: Path) -> None:
    values = [
        Decimal("0.000000000000000001"),
        Decimal("12345678901234567890.123456789012345678"),
        Decimal("-0.50"),
        Decimal("1E+3"),
        Decimal("0.1") + Decimal("0.2"),
    ]
    body = {"values": values, "nested": {"mark": values[1]}}
    async with Journal(db) as journal:
        seq = await step(
            journal, 1, body=body, events=[alert(1, equity=values[0])], state={"s": body}
        )
        [(_, _, _, stored)] = [row async for row in journal.inputs_after(0)]
        [event] = await journal.events_for(seq)
        state = await journal.load_state()
    assert stored["values"] == [fmt(v) for v in values]
    assert all(
        isinstance(s, str) and Decimal(s) == v
        for s, v in zip(stored["values"], values, strict=True)
    )
    assert stored["nested"] == {"mark": "12345678901234567890.123456789012345678"}
    assert event["equity"] == "0.000000000000000001"
    assert state["s"] == stored
    with sqlite3.connect(db) as conn:  # compact JSON, exact strings, no floats anywhere
        raw = conn.execute("SELECT body FROM inputs").fetchone()[0]
    assert '"nested":{"mark":"12345678901234567890.123456789012345678"}' in raw
    assert '"0.3"' in raw


async def test_inputs_after_pages_through_a_long_journal(db: Path) -> None:
    async with Journal(db) as journal:
        # 502 inputs: from 0 a full page of 500 and a short one; after the 2nd, exactly one full
        # page and then an empty one.
        seqs = [await step(journal, ts, rows=0, events=[]) for ts in range(1, 503)]
        everything = [seq async for seq, _, _, _ in journal.inputs_after(0)]
        replayed = [(seq, ts) async for seq, ts, _, _ in journal.inputs_after(seqs[1])]
    assert everything == seqs
    assert replayed == list(zip(seqs[2:], range(3, 503), strict=True))


# -- outbox --------------------------------------------------------------------------------------


async def test_outbox_pending_mark_sent_depth_oldest(db: Path) -> None:
    async with Journal(db, instance="i") as journal:
        assert await journal.pending() == []
        assert await journal.outbox_depth() == 0
        assert await journal.oldest_pending_ts() is None
        s1 = await step(journal, 10, rows=2)
        s2 = await step(journal, 20, rows=1)
        await step(journal, 30, rows=0)
        s4 = await step(journal, 40, rows=2)
        pending = await journal.pending()
        assert [e.alert_id for e in pending] == [
            f"i-{s1}-0",
            f"i-{s1}-1",
            f"i-{s2}-0",
            f"i-{s4}-0",
            f"i-{s4}-1",
        ]
        assert [e.created_ts for e in pending] == [10, 10, 20, 40, 40]
        assert [e.id for e in await journal.pending(limit=2)] == [e.id for e in pending[:2]]
        assert await journal.outbox_depth() == 5
        assert await journal.oldest_pending_ts() == 10

        await journal.mark_sent([pending[0].id, pending[1].id], ts=50)
        assert await journal.oldest_pending_ts() == 20
        await journal.mark_sent([pending[3].id], ts=60)  # out of order PUBACKs are fine
        assert [e.alert_id for e in await journal.pending()] == [f"i-{s2}-0", f"i-{s4}-1"]
        assert await journal.outbox_depth() == 2

        await journal.mark_sent([pending[0].id, pending[2].id], ts=99)  # redelivered PUBACK
        await journal.mark_sent([], ts=99)
        assert await journal.oldest_pending_ts() == 40
        await journal.mark_sent([pending[4].id], ts=70)
        assert await journal.outbox_depth() == 0
        assert await journal.oldest_pending_ts() is None
    with sqlite3.connect(db) as conn:
        sent = dict(conn.execute("SELECT alert_id, sent_ts FROM outbox").fetchall())
    assert sent[f"i-{s1}-0"] == 50  # the first PUBACK's time is kept
    assert sent[f"i-{s2}-0"] == 99


async def test_pending_rows_survive_reopen(db: Path) -> None:
    async with Journal(db) as journal:
        await step(journal, 1, rows=3)
        first = (await journal.pending())[0]
        await journal.mark_sent([first.id], ts=2)
    async with Journal(db) as journal:
        assert await journal.outbox_depth() == 2
        assert first.id not in [e.id for e in await journal.pending()]


# -- tier cache ----------------------------------------------------------------------------------


async def test_tier_cache_round_trip(db: Path) -> None:
    rows = [
        {"tier": 1, "minNotional": Decimal("0"), "maxNotional": Decimal("50000"), "mmr": "0.004"},
        {"tier": 2, "minNotional": Decimal("50000"), "maxNotional": Decimal("250000.5")},
    ]
    async with Journal(db) as journal:
        assert await journal.get_tiers("binance", "BTC/USDT:USDT") is None
        await journal.put_tiers("binance", "BTC/USDT:USDT", 1_000, rows)
        await journal.put_tiers("bybit", "BTC/USDT:USDT", 1_500, rows[:1])
    async with Journal(db) as journal:
        got = await journal.get_tiers("binance", "BTC/USDT:USDT")
        assert got == (
            1_000,
            [
                {"tier": 1, "minNotional": "0", "maxNotional": "50000", "mmr": "0.004"},
                {"tier": 2, "minNotional": "50000", "maxNotional": "250000.5"},
            ],
        )
        await journal.put_tiers("binance", "BTC/USDT:USDT", 2_000, rows[1:])  # replaces
        got = await journal.get_tiers("binance", "BTC/USDT:USDT")
        assert got is not None and got[0] == 2_000 and len(got[1]) == 1
        assert await journal.get_tiers("bybit", "BTC/USDT:USDT") == (
            1_500,
            [{"tier": 1, "minNotional": "0", "maxNotional": "50000", "mmr": "0.004"}],
        )


# -- failures ------------------------------------------------------------------------------------


async def test_check_writable_passes_and_leaves_nothing(db: Path) -> None:
    async with Journal(db) as journal:
        await journal.check_writable()
        assert await journal.load_state() == {}
        assert await step(journal, 1) > 0


async def test_check_writable_on_read_only_file(db: Path) -> None:
    """Issue 16 ask 4: as root too (an immutable file; tests/fsfaults.py)."""
    async with Journal(db) as journal:
        await step(journal, 1)
    with read_only(db):
        async with Journal(db) as journal:
            assert await journal.last_input() is not None  # reading still works
            with pytest.raises(StoreError, match="not writable") as info:
                await journal.check_writable()
            assert str(db) in str(info.value) and "read-only" in str(info.value)
            with pytest.raises(StoreError, match="cannot commit tick step"):
                await step(journal, 2)
    async with Journal(db) as journal:  # writable again: nothing of the refused step is there
        assert await journal.last_input() == (1, 1)


async def test_commit_on_a_full_disk_stores_nothing_and_recovers(tmp_path: Path) -> None:
    """Issue 16 ask 4: a real ENOSPC (a small tmpfs filled up) is one StoreError naming the
    database; the connection works again once space is freed."""
    with small_tmpfs(tmp_path / "mnt", 1024) as mnt:
        if mnt is None:
            pytest.skip(
                "mounting a tmpfs is not permitted here; test_disk_full_max_page_count "
                "in tests/daemon/test_faults.py covers SQLITE_FULL"
            )
        db = mnt / "guardbot.db"
        async with Journal(db) as journal:
            for n in range(1, 6):
                await step(journal, n)
            filler = fill(mnt)
            with pytest.raises(StoreError) as info:
                for n in range(6, 200):  # bounded: the WAL meets the full disk within a page
                    await step(journal, n)
            assert str(db) in str(info.value)
            assert "database or disk is full" in str(info.value)
            assert "free space on the data_dir filesystem" in str(info.value)
            stored = await journal.last_input()
            assert stored is not None
            with pytest.raises(StoreError, match="cannot mark outbox rows sent"):
                await journal.mark_sent([e.id for e in await journal.pending()], 1)
            assert await journal.outbox_depth() > 0  # not marked: nothing was acknowledged
            filler.unlink()
            assert await step(journal, 1000) == stored[0] + 1


async def test_check_writable_when_another_process_holds_the_lock(db: Path) -> None:
    async with Journal(db, busy_timeout=0.05) as journal:
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreError, match="locked") as info:
                await journal.check_writable()
            assert str(db) in str(info.value) and "second daemon" in str(info.value)
            with pytest.raises(StoreError, match="cannot commit tick step"):
                await step(journal, 1)
            other.execute("ROLLBACK")
            await journal.check_writable()
            assert await step(journal, 2) > 0
        finally:
            other.close()


async def test_missing_directory_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / DB_FILENAME
    with pytest.raises(StoreError, match="cannot open the database") as info:
        async with Journal(path):
            pass
    assert str(path) in str(info.value) and "create data_dir" in str(info.value)


async def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "a-directory"  # exists, but is not a file sqlite can open
    path.mkdir()
    with pytest.raises(StoreError, match="cannot open the database") as info:
        async with Journal(path):
            pass
    assert str(path) in str(info.value) and "data_dir exists" in str(info.value)


async def test_corrupt_file_is_a_store_error(db: Path) -> None:
    db.write_bytes(b"this is not a sqlite database, just bytes " * 100)
    with pytest.raises(StoreError, match="not a database") as info:
        async with Journal(db):
            pass
    assert str(db) in str(info.value) and "move it aside" in str(info.value)


# -- durability across kill -9 -------------------------------------------------------------------

CHILD = """
import asyncio, sys
from guardbot.store.journal import Journal, OutboxRow

async def main(path: str, n: int) -> None:
    async with Journal(path, instance="child") as journal:
        for k in range(1, n + 1):
            await journal.commit_step(
                ts=1000 + k,
                kind="tick",
                body={"k": k},
                events=[{"type": "margin_alert", "ts": 1000 + k, "account": "a", "k": k}] * 2,
                outbox=[OutboxRow(topic=f"t/{k}/{i}", payload=f"p{k}.{i}") for i in range(3)],
                state={"last": {"k": k}},
            )
            print(f"committed {k}", flush=True)
        await asyncio.Event().wait()  # hold the connection (and the unmerged WAL) until killed

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@pytest.mark.parametrize(("steps", "kill_after"), [(5, 5), (300, 10)])
async def test_committed_steps_survive_sigkill(db: Path, steps: int, kill_after: int) -> None:
    """(5, 5): killed right after its last commit. (300, 10): killed while still committing."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(db),
        str(steps),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    reported: list[int] = []
    try:
        while not reported or reported[-1] < kill_after:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
            if not line:
                err = await proc.stderr.read()
                pytest.fail(f"child exited early: {err.decode(errors='replace')}")
            reported.append(int(line.decode().removeprefix("committed ")))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        rest = await asyncio.wait_for(proc.stdout.read(), timeout=20)
        await asyncio.wait_for(proc.wait(), timeout=20)
    reported += [int(x.removeprefix("committed ")) for x in rest.decode().splitlines()]
    assert proc.returncode == -signal.SIGKILL
    assert reported == list(range(1, len(reported) + 1))

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    async with Journal(db) as journal:
        stored = [(seq, body["k"]) async for seq, _, _, body in journal.inputs_after(0)]
        ks = [k for _, k in stored]
        # Every reported step is there; at most the one in flight went further, all or nothing.
        assert ks[: len(reported)] == reported
        assert len(ks) - len(reported) <= 1
        for seq, k in stored:
            events = await journal.events_for(seq)
            assert [e["k"] for e in events] == [k, k]
        pending = await journal.pending(limit=10_000)
        assert [(e.topic, e.payload) for e in pending] == [
            (f"t/{k}/{i}", f"p{k}.{i}") for k in ks for i in range(3)
        ]
        assert [e.alert_id for e in pending] == [
            f"child-{seq}-{i}" for seq, _ in stored for i in range(3)
        ]
        assert await journal.load_state() == {"last": {"k": ks[-1]}}


# -- retention and the notifications' cursor ------------------------------------------------------


async def test_prune_keeps_the_sent_rows_the_notifications_have_not_handled(db: Path) -> None:
    """Retention deletes old sent rows, except those after the notifications' cursor: an alert
    a failing service has not taken yet outlives retention (at least once)."""
    async with Journal(db, instance="t") as journal:
        for ts in (1_000, 2_000, 3_000):
            await step(journal, ts)
        rows = await journal.outbox_after(0, "gb/alerts/", 10)
        await journal.mark_sent([r.id for r in rows], 3_500)  # the broker took all three
        cursor = rows[0].id  # the notifications handled only the first
        assert await journal.outbox_count_after(cursor, "gb/alerts/") == 2
        await journal.prune(through_seq=0, before_ts=10_000, keep_outbox_after=cursor)
        kept = await journal.outbox_after(0, "gb/alerts/", 10)
        assert [r.id for r in kept] == [r.id for r in rows[1:]]
        await journal.prune(through_seq=0, before_ts=10_000)  # no second reader: all go
        assert await journal.outbox_after(0, "gb/alerts/", 10) == []


async def test_stats_counts_the_journal_from_its_ends(db: Path) -> None:
    """``inputs`` is MAX(seq) - MIN(seq) + 1 (no full scan): equal to COUNT(*) after steps, a
    failed step and a prune, since seqs are contiguous and pruning takes the oldest end."""

    def count() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM inputs").fetchone()[0])

    async with Journal(db) as journal:
        assert (await journal.stats())["inputs"] == 0
        for ts in range(1, 11):
            await step(journal, ts)
        with pytest.raises(TypeError):  # refused before the transaction: no seq taken
            await step(journal, 11, body={"bad": object()})
        other = sqlite3.connect(db, isolation_level=None)
        try:  # a step rolled back inside its transaction gives its seq back
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO inputs (ts, kind, body) VALUES (12, 'tick', '{}')")
            other.execute("ROLLBACK")
        finally:
            other.close()
        await step(journal, 13)
        assert (await journal.stats())["inputs"] == count() == 11
        await journal.prune(through_seq=6, before_ts=100)
        stats = await journal.stats()
        assert stats["inputs"] == count() == 5
        assert stats["db_bytes"] > 0
