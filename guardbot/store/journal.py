"""The SQLite journal: engine inputs, their events, the alert outbox, state snapshots, tier cache.

One :class:`Journal` owns one aiosqlite connection to ``<data_dir>/guardbot.db``::

    async with Journal.in_data_dir(data_dir, instance="eu-1") as journal:
        seq = await journal.commit_step(ts=ts, kind="tick", body=tick, events=events,
                                        outbox=[OutboxRow(topic=..., payload=...)])
        for entry in await journal.pending():
            ...  # publish, then on PUBACK:
        await journal.mark_sent([entry.id], ts=now)

Ordering rule (docs/architecture.md §2): :meth:`Journal.commit_step` writes an input, its events,
its outbox rows
and any state snapshots in ONE transaction, and the publisher only ever reads committed outbox
rows, so an alert is durable before it is published. Delivery is at least once; subscribers
de-duplicate on the row's ``alert_id``.

Every sqlite failure (locked, read-only, disk full, corrupt file) leaves the API as a
:class:`StoreError` naming the database path, what the journal was doing and what to do about it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from guardbot.core.events import to_jsonable
from guardbot.core.num import fmt
from guardbot.errors import StoreError

__all__ = [
    "DB_FILENAME",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Journal",
    "OutboxEntry",
    "OutboxRow",
    "StoreError",
    "sqlite_advice",
]

#: File name of the database inside ``data_dir``.
DB_FILENAME = "guardbot.db"

#: Forward migrations: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``. Each is
#: a list of statements run in one transaction together with the ``schema_version`` row. Never edit
#: a released step; append a new one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # AUTOINCREMENT: an input seq is never reused, even after the newest inputs are pruned,
        # so alert ids derived from it stay unique for the life of the database.
        """CREATE TABLE inputs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            ts INTEGER NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            input_seq INTEGER NOT NULL REFERENCES inputs(seq),
            ts INTEGER NOT NULL,
            type TEXT NOT NULL,
            account TEXT,
            body TEXT NOT NULL
        )""",
        "CREATE INDEX events_input_seq ON events(input_seq)",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            alert_id TEXT NOT NULL UNIQUE,
            topic TEXT NOT NULL,
            payload TEXT NOT NULL,
            qos INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
            retain INTEGER NOT NULL CHECK (retain IN (0, 1)),
            created_ts INTEGER NOT NULL,
            sent_ts INTEGER
        )""",
        # The publisher scans only what is still to send; sent rows do not slow it down.
        "CREATE INDEX outbox_pending ON outbox(id) WHERE sent_ts IS NULL",
        """CREATE TABLE state (
            key TEXT PRIMARY KEY,
            body TEXT NOT NULL,
            updated_ts INTEGER NOT NULL
        )""",
        """CREATE TABLE tier_cache (
            exchange TEXT NOT NULL,
            symbol TEXT NOT NULL,
            fetched_ts INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (exchange, symbol)
        )""",
    ),
    (
        # Checkpoints of the engine state (guardbot.core.checkpoint): the state after input
        # ``input_seq``; start-up loads the newest good one and re-applies only later inputs.
        """CREATE TABLE checkpoints (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            input_seq INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            format INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        "CREATE INDEX events_ts ON events(ts)",
    ),
)

#: The schema version this code writes; a database with a newer one is refused.
SCHEMA_VERSION = len(MIGRATIONS)

_CREATE_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)"""

#: Rows per query when :meth:`Journal.inputs_after` pages through the journal.
_REPLAY_PAGE = 500
#: SQLite's page cache for the journal's connection, in KiB (``PRAGMA cache_size`` takes KiB when
#: negative). The daemon appends and reads back only the newest rows, so a small cache serves it
#: as well as SQLite's default 2,000 KiB; the default would grow the process by about 2.3 MB
#: while the database grows to that size (half an hour of a busy soak), which reads as a leak.
PAGE_CACHE_KIB = 512

#: The key :meth:`Journal.check_writable` inserts (and rolls back) in ``state``.
_PROBE_KEY = "guardbot.store.probe"


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An alert to publish, written by :meth:`Journal.commit_step` with the step that raised it.

    ``alert_id`` is the de-duplication key subscribers see. Leave it ``None`` and the journal
    assigns ``f"{instance}-{input_seq}-{n}"`` inside the transaction (``n`` is the row's index in
    the step's outbox list): unique because input seqs are never reused, and stable because it is
    stored with the row and every redelivery carries the stored value.
    """

    topic: str
    payload: str
    qos: int = 1
    retain: bool = False
    alert_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A committed outbox row as the publisher reads it back."""

    id: int
    alert_id: str
    topic: str
    payload: str
    qos: int
    retain: bool
    created_ts: int


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dumps(value: object) -> str:
    """Compact JSON with Decimals as exact strings (the form every journal body is stored in)."""
    return json.dumps(
        to_jsonable(value), separators=(",", ":"), allow_nan=False, default=_json_default
    )


def sqlite_advice(exc: sqlite3.Error) -> str:
    """What an operator can do about ``exc``, by sqlite's error text."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return "another process holds a write lock on the database; is a second daemon running?"
    if "readonly" in text or "read-only" in text:
        return "the database or its directory is read-only; check permissions and the mount"
    if "full" in text:
        return "the disk is full; free space on the data_dir filesystem"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return "the file is damaged; move it aside (state is rebuilt from the exchange) or restore"
    if "unable to open" in text:
        return "check that data_dir exists and is writable by this user"
    if "disk i/o" in text:
        return "the filesystem reported an I/O error; check the disk and free space"
    if "constraint" in text:
        return "a row conflicts with one already stored (a reused alert_id?)"
    return "see the sqlite error above"


class Journal:
    """Async context manager around one aiosqlite connection to the guardbot database.

    Every public method is serialized by a lock, so a reader never sees a step's rows before the
    step commits, and one task's write never joins another task's transaction.
    """

    def __init__(
        self, path: str | Path, *, instance: str = "guardbot", busy_timeout: float = 5.0
    ) -> None:
        self.path = Path(path)
        self.instance = instance
        self.busy_timeout = busy_timeout
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def in_data_dir(cls, data_dir: str | Path, **kwargs: Any) -> Journal:
        """A journal on ``<data_dir>/guardbot.db`` (the directory must exist)."""
        return cls(Path(data_dir) / DB_FILENAME, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError(f"Journal on {self.path} is already open; it cannot be re-entered")
        if not self.path.parent.is_dir():
            raise StoreError(
                self.path,
                "cannot open the database: its directory does not exist — "
                "create data_dir or fix its path in the configuration",
            )
        # Positions, orders and alerts are nobody else's business: create the file owner-only
        # whatever the umask (a container has no UMask=0077); SQLite gives the -wal and -shm
        # files the database's mode. Any other failure to create it is SQLite's to report below.
        with suppress(OSError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # isolation_level=None: no implicit transactions; every write below opens its own
        # BEGIN IMMEDIATE, so the write lock is taken up front and never upgraded mid-step.
        pending = aiosqlite.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        try:
            conn = await pending
        except sqlite3.Error as exc:
            # aiosqlite stops its worker thread without waiting for it; wait here, so the thread
            # does not report to an event loop that may be closed by then.
            worker = getattr(pending, "_thread", None)
            if worker is not None:
                await asyncio.to_thread(worker.join, 5.0)
            raise self._error("cannot open the database", exc) from exc
        self._conn = conn
        try:
            await self._configure(conn)
            await self._migrate(conn)
        except BaseException:
            self._conn = None
            await conn.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.close()
        except sqlite3.Error as err:
            raise self._error("cannot close the database", err) from err

    async def _configure(self, conn: aiosqlite.Connection) -> None:
        with self._wrap("cannot configure the database"):
            cursor = await conn.execute("PRAGMA journal_mode=WAL")
            row = await cursor.fetchone()
            mode = str(row[0]).lower() if row else "?"
            if mode != "wal":
                raise StoreError(
                    self.path,
                    f"cannot switch to WAL mode (journal_mode is {mode!r}); "
                    "put data_dir on a local filesystem",
                )
            # FULL, not NORMAL. Both survive kill -9 of this process: a WAL commit is in the OS
            # page cache once COMMIT returns. NORMAL skips the fsync of the WAL at each commit,
            # so a power loss or kernel crash can drop the last commits — after their alerts
            # were published. Restart would then reuse those input seqs, hence those alert ids,
            # for different alerts, and subscribers de-duplicating on alertId would drop real
            # alerts. One fsync per state-changing step is the price of "durable before
            # published" holding for the whole machine, not just for this process.
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")

    async def _schema_version(self, conn: aiosqlite.Connection) -> int:
        cursor = await conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
        if await cursor.fetchone() is None:
            return 0
        cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        with self._wrap("cannot read the schema version"):
            found = await self._schema_version(conn)
        self._refuse_newer(found)
        if found == SCHEMA_VERSION:
            return  # nothing to write: an up-to-date database may even be read-only
        async with self._transaction(conn, "cannot migrate the schema"):
            await conn.execute(_CREATE_VERSION_TABLE)
            # Read again under the write lock: another process may have migrated meanwhile.
            found = await self._schema_version(conn)
            self._refuse_newer(found)
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version - 1]:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def _refuse_newer(self, found: int) -> None:
        if found > SCHEMA_VERSION:
            raise StoreError(
                self.path,
                f"database schema version {found} is newer than this guardbot knows "
                f"(version {SCHEMA_VERSION}); upgrade guardbot or point data_dir elsewhere",
            )

    # -- plumbing -------------------------------------------------------------------------------

    def _error(self, action: str, exc: sqlite3.Error) -> StoreError:
        return StoreError(self.path, f"{action}: {exc} — {sqlite_advice(exc)}")

    @asynccontextmanager
    async def _use(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            if self._conn is None:
                raise RuntimeError("Journal is not open; use `async with Journal(...)`")
            yield self._conn

    def _wrap(self, action: str) -> _Wrap:
        return _Wrap(self, action)

    @asynccontextmanager
    async def _transaction(self, conn: aiosqlite.Connection, action: str) -> AsyncIterator[None]:
        try:
            # BEGIN inside the try: a cancellation while it runs (it still runs to completion in
            # aiosqlite's thread) must roll back, or the next BEGIN fails on an open transaction.
            with self._wrap(action):
                await conn.execute("BEGIN IMMEDIATE")
                yield
                await conn.execute("COMMIT")
        except BaseException:
            # The original error is the one worth reporting; sqlite has rolled back anyway.
            with suppress(sqlite3.Error):
                await conn.rollback()
            raise

    # -- steps ----------------------------------------------------------------------------------

    async def commit_step(
        self,
        *,
        ts: int,
        kind: str,
        body: Mapping[str, Any],
        events: Sequence[Mapping[str, Any]],
        outbox: Sequence[OutboxRow],
        state: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> int:
        """Write one engine input with its events, outbox rows and state snapshots; return its seq.

        All or nothing: on any failure nothing of the step is stored and :class:`StoreError` is
        raised. Bodies are serialized before the transaction opens, so an unserializable value
        (``TypeError``) never holds the write lock.
        """
        input_body = dumps(body)
        event_rows = [
            (int(e.get("ts", ts)), str(e.get("type", "")), _opt_str(e.get("account")), dumps(e))
            for e in events
        ]
        state_rows = [(key, dumps(snapshot), ts) for key, snapshot in (state or {}).items()]
        async with self._use() as conn, self._transaction(conn, f"cannot commit {kind} step"):
            cursor = await conn.execute(
                "INSERT INTO inputs (ts, kind, body) VALUES (?, ?, ?)", (ts, kind, input_body)
            )
            seq = cursor.lastrowid
            assert seq is not None
            # Each call is a round trip to aiosqlite's thread: skip the empty ones.
            if event_rows:
                await conn.executemany(
                    "INSERT INTO events (input_seq, ts, type, account, body) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(seq, *row) for row in event_rows],
                )
            if outbox:
                await conn.executemany(
                    "INSERT INTO outbox (alert_id, topic, payload, qos, retain, created_ts) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (
                            row.alert_id or f"{self.instance}-{seq}-{n}",
                            row.topic,
                            row.payload,
                            row.qos,
                            int(row.retain),
                            ts,
                        )
                        for n, row in enumerate(outbox)
                    ],
                )
            if state_rows:
                await conn.executemany(
                    "INSERT INTO state (key, body, updated_ts) VALUES (?, ?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET body = excluded.body, "
                    "updated_ts = excluded.updated_ts",
                    state_rows,
                )
        return seq

    async def last_input(self) -> tuple[int, int] | None:
        """``(seq, ts)`` of the newest stored input, or ``None`` for an empty journal."""
        async with self._use() as conn:
            with self._wrap("cannot read the journal"):
                cursor = await conn.execute("SELECT seq, ts FROM inputs ORDER BY seq DESC LIMIT 1")
                row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else None

    async def inputs_after(self, seq: int) -> AsyncIterator[tuple[int, int, str, Any]]:
        """Inputs with a seq above ``seq``, oldest first, as ``(seq, ts, kind, body)``: for replay.

        Pages through the table, so the lock is not held while the caller works on a row.
        """
        last = seq
        while True:
            async with self._use() as conn:
                with self._wrap("cannot read the journal"):
                    cursor = await conn.execute(
                        "SELECT seq, ts, kind, body FROM inputs WHERE seq > ? ORDER BY seq LIMIT ?",
                        (last, _REPLAY_PAGE),
                    )
                    rows = list(await cursor.fetchall())
            for row in rows:
                last = int(row[0])
                yield last, int(row[1]), str(row[2]), json.loads(row[3])
            if len(rows) < _REPLAY_PAGE:
                return

    async def events_for(self, input_seq: int) -> list[Any]:
        """The events stored with input ``input_seq``, in the order they were given."""
        async with self._use() as conn:
            with self._wrap("cannot read the journal"):
                cursor = await conn.execute(
                    "SELECT body FROM events WHERE input_seq = ? ORDER BY seq", (input_seq,)
                )
                rows = await cursor.fetchall()
        return [json.loads(row[0]) for row in rows]

    # -- checkpoints ----------------------------------------------------------------------------

    async def put_checkpoint(
        self, *, input_seq: int, ts: int, fmt: int, sha256: str, body: str, keep: int = 3
    ) -> int:
        """Store a checkpoint of the state after input ``input_seq`` and drop all but the
        newest ``keep`` (older ones are the fallback if the newest turns out unreadable); one
        transaction. Returns its id."""
        async with self._use() as conn, self._transaction(conn, "cannot write a checkpoint"):
            cursor = await conn.execute(
                "INSERT INTO checkpoints (input_seq, ts, format, sha256, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (input_seq, ts, fmt, sha256, body),
            )
            new_id = cursor.lastrowid
            assert new_id is not None
            await conn.execute(
                "DELETE FROM checkpoints WHERE id NOT IN "
                "(SELECT id FROM checkpoints ORDER BY id DESC LIMIT ?)",
                (keep,),
            )
        return new_id

    async def checkpoints(self) -> list[tuple[int, int, int, int, str, str]]:
        """Every stored checkpoint, newest first: ``(id, input_seq, ts, format, sha256, body)``."""
        async with self._use() as conn:
            with self._wrap("cannot read the checkpoints"):
                cursor = await conn.execute(
                    "SELECT id, input_seq, ts, format, sha256, body FROM checkpoints "
                    "ORDER BY id DESC"
                )
                rows = await cursor.fetchall()
        return [(int(r[0]), int(r[1]), int(r[2]), int(r[3]), str(r[4]), str(r[5])) for r in rows]

    async def first_input_seq(self) -> int | None:
        """The oldest stored input's seq (above 1 once inputs were pruned), or None."""
        async with self._use() as conn:
            with self._wrap("cannot read the journal"):
                cursor = await conn.execute("SELECT MIN(seq) FROM inputs")
                row = await cursor.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    async def prune(
        self, *, through_seq: int, before_ts: int, keep_outbox_after: int | None = None
    ) -> tuple[int, int]:
        """Delete inputs up to ``through_seq`` (covered by a checkpoint) that are older than
        ``before_ts``, with their events, and events and sent outbox rows older than
        ``before_ts``; unsent rows are kept whatever their age, and so are the rows after
        ``keep_outbox_after`` (the cursor of a second reader, the notifications, which has not
        handled them yet). Returns (inputs, events) deleted."""
        async with self._use() as conn, self._transaction(conn, "cannot prune the journal"):
            cursor = await conn.execute(
                "SELECT MAX(seq) FROM inputs WHERE seq <= ? AND ts < ?", (through_seq, before_ts)
            )
            row = await cursor.fetchone()
            last = None if row is None or row[0] is None else int(row[0])
            events = 0
            inputs = 0
            if last is not None:
                # Everything up to the newest prunable input: a replay never starts mid-gap.
                cursor = await conn.execute("DELETE FROM events WHERE input_seq <= ?", (last,))
                events += max(cursor.rowcount, 0)
                cursor = await conn.execute("DELETE FROM inputs WHERE seq <= ?", (last,))
                inputs = max(cursor.rowcount, 0)
            cursor = await conn.execute("DELETE FROM events WHERE ts < ?", (before_ts,))
            events += max(cursor.rowcount, 0)
            await conn.execute(
                "DELETE FROM outbox WHERE sent_ts IS NOT NULL AND created_ts < ? AND id <= ?",
                (before_ts, _MAX_ID if keep_outbox_after is None else keep_outbox_after),
            )
        return inputs, events

    async def stats(self) -> dict[str, int]:
        """``inputs`` (journal length), ``db_bytes`` (database file plus its WAL).

        The length is ``MAX(seq) - MIN(seq) + 1``, two lookups at the ends of the primary key
        (two subqueries: SQLite reads only one end for a lone ``MIN`` or ``MAX``, not both):
        the seqs are contiguous (AUTOINCREMENT, a rolled-back step gives its seq back, and
        :meth:`prune` deletes only from the oldest end). ``COUNT(*)`` reads every row, about
        2 s for a month's 12 million inputs, and the status asks every few seconds.
        """
        async with self._use() as conn:
            with self._wrap("cannot read the journal"):
                cursor = await conn.execute(
                    "SELECT (SELECT MIN(seq) FROM inputs), (SELECT MAX(seq) FROM inputs)"
                )
                row = await cursor.fetchone()
        size = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with suppress(OSError):
                size += path.stat().st_size
        inputs = 0 if row is None or row[0] is None else int(row[1]) - int(row[0]) + 1
        return {"inputs": inputs, "db_bytes": size}

    # -- state ----------------------------------------------------------------------------------

    async def load_state(self) -> dict[str, Any]:
        """Every state snapshot by key (accounts, alert levels, markets), as stored."""
        async with self._use() as conn:
            with self._wrap("cannot read the state"):
                cursor = await conn.execute("SELECT key, body FROM state ORDER BY key")
                rows = await cursor.fetchall()
        return {str(row[0]): json.loads(row[1]) for row in rows}

    # -- outbox ---------------------------------------------------------------------------------

    async def pending(self, limit: int = 100) -> list[OutboxEntry]:
        """Up to ``limit`` unsent outbox rows, oldest first."""
        async with self._use() as conn:
            with self._wrap("cannot read the outbox"):
                cursor = await conn.execute(
                    "SELECT id, alert_id, topic, payload, qos, retain, created_ts FROM outbox "
                    "WHERE sent_ts IS NULL ORDER BY id LIMIT ?",
                    (limit,),
                )
                rows = await cursor.fetchall()
        return [
            OutboxEntry(
                id=int(r[0]),
                alert_id=str(r[1]),
                topic=str(r[2]),
                payload=str(r[3]),
                qos=int(r[4]),
                retain=bool(r[5]),
                created_ts=int(r[6]),
            )
            for r in rows
        ]

    async def mark_sent(self, ids: Sequence[int], ts: int) -> None:
        """Record rows ``ids`` as delivered at ``ts``; rows already marked keep their first ts."""
        if not ids:
            return
        async with self._use() as conn, self._transaction(conn, "cannot mark outbox rows sent"):
            await conn.executemany(
                "UPDATE outbox SET sent_ts = ? WHERE id = ? AND sent_ts IS NULL",
                [(ts, i) for i in ids],
            )

    async def outbox_depth(self) -> int:
        """How many outbox rows are still unsent."""
        async with self._use() as conn:
            with self._wrap("cannot read the outbox"):
                cursor = await conn.execute("SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL")
                row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def oldest_pending_ts(self) -> int | None:
        """``created_ts`` of the oldest unsent outbox row, or ``None`` when all are sent."""
        async with self._use() as conn:
            with self._wrap("cannot read the outbox"):
                cursor = await conn.execute(
                    "SELECT MIN(created_ts) FROM outbox WHERE sent_ts IS NULL"
                )
                row = await cursor.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # -- a second reader of the outbox (notifications) ------------------------------------------

    async def outbox_after(self, after_id: int, topic_prefix: str, limit: int) -> list[OutboxEntry]:
        """Up to ``limit`` outbox rows with ``id > after_id`` whose topic starts with
        ``topic_prefix``, oldest first, sent or not (a reader with its own cursor, beside the
        MQTT publisher's ``sent_ts``)."""
        pattern = _like_prefix(topic_prefix)
        async with self._use() as conn:
            with self._wrap("cannot read the outbox"):
                cursor = await conn.execute(
                    "SELECT id, alert_id, topic, payload, qos, retain, created_ts FROM outbox "
                    "WHERE id > ? AND topic LIKE ? ESCAPE '\\' ORDER BY id LIMIT ?",
                    (after_id, pattern, limit),
                )
                rows = await cursor.fetchall()
        return [
            OutboxEntry(
                int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), bool(r[5]), int(r[6])
            )
            for r in rows
        ]

    async def outbox_count_after(self, after_id: int, topic_prefix: str) -> int:
        """How many outbox rows :meth:`outbox_after` has still to return past ``after_id``."""
        pattern = _like_prefix(topic_prefix)
        async with self._use() as conn:
            with self._wrap("cannot read the outbox"):
                cursor = await conn.execute(
                    "SELECT COUNT(*) FROM outbox WHERE id > ? AND topic LIKE ? ESCAPE '\\'",
                    (after_id, pattern),
                )
                row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def last_outbox_id(self) -> int:
        """The newest outbox row's id (0 when the outbox is empty)."""
        async with self._use() as conn:
            with self._wrap("cannot read the outbox"):
                cursor = await conn.execute("SELECT COALESCE(MAX(id), 0) FROM outbox")
                row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def get_state(self, key: str) -> Any:
        """The state snapshot stored under ``key``, or None."""
        async with self._use() as conn:
            with self._wrap("cannot read the state"):
                cursor = await conn.execute("SELECT body FROM state WHERE key = ?", (key,))
                row = await cursor.fetchone()
        return None if row is None else json.loads(row[0])

    async def put_state(self, key: str, body: Mapping[str, Any], ts: int) -> None:
        """Store ``body`` under ``key`` (one durable commit), replacing what was there."""
        text = dumps(body)
        async with self._use() as conn, self._transaction(conn, f"cannot store state {key}"):
            await conn.execute(
                "INSERT INTO state (key, body, updated_ts) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET body = excluded.body, "
                "updated_ts = excluded.updated_ts",
                (key, text, ts),
            )

    # -- tier cache -----------------------------------------------------------------------------

    async def put_tiers(
        self,
        exchange: str,
        symbol: str,
        fetched_ts: int,
        rows: Sequence[Mapping[str, Any]],
        contract_size: str | None = None,
    ) -> None:
        """Store (replace) the leverage-tier rows fetched for ``exchange``/``symbol``, with the
        market's contract size when known (tiers in contracts mean nothing without it)."""
        tiers = list(rows)
        body = dumps(
            tiers if contract_size is None else {"tiers": tiers, "contractSize": contract_size}
        )
        async with self._use() as conn, self._transaction(conn, "cannot write the tier cache"):
            await conn.execute(
                "INSERT INTO tier_cache (exchange, symbol, fetched_ts, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (exchange, symbol) DO UPDATE SET fetched_ts = excluded.fetched_ts, "
                "body = excluded.body",
                (exchange, symbol, fetched_ts, body),
            )

    async def get_tier_entry(
        self, exchange: str, symbol: str
    ) -> tuple[int, list[Any], str | None] | None:
        """``(fetched_ts, rows, contract_size)`` cached for ``exchange``/``symbol``, or ``None``.

        A body is the rows alone (written before contract sizes were cached) or
        ``{"tiers": rows, "contractSize": size}``."""
        async with self._use() as conn:
            with self._wrap("cannot read the tier cache"):
                cursor = await conn.execute(
                    "SELECT fetched_ts, body FROM tier_cache WHERE exchange = ? AND symbol = ?",
                    (exchange, symbol),
                )
                row = await cursor.fetchone()
        if row is None:
            return None
        body = json.loads(row[1])
        if isinstance(body, dict):
            size = body.get("contractSize")
            return int(row[0]), list(body.get("tiers") or []), None if size is None else str(size)
        return int(row[0]), list(body), None

    async def get_tiers(self, exchange: str, symbol: str) -> tuple[int, list[Any]] | None:
        """``(fetched_ts, rows)`` cached for ``exchange``/``symbol``, or ``None``."""
        entry = await self.get_tier_entry(exchange, symbol)
        return None if entry is None else (entry[0], entry[1])

    # -- health ---------------------------------------------------------------------------------

    async def check_writable(self) -> None:
        """Raise :class:`StoreError` unless a write can be made now (it is rolled back).

        Catches a read-only file or mount, a lock held by another process and a closed or broken
        connection. A full disk shows only when pages reach the file, so it surfaces at the next
        :meth:`commit_step` instead.
        """
        async with self._use() as conn:
            action = "database is not writable"
            with self._wrap(action):
                await conn.execute("BEGIN IMMEDIATE")
            try:
                with self._wrap(action):
                    await conn.execute(
                        "INSERT OR REPLACE INTO state (key, body, updated_ts) VALUES (?, '{}', 0)",
                        (_PROBE_KEY,),
                    )
            finally:
                # Nothing was written; the probe's own error (if any) is what matters.
                with suppress(sqlite3.Error):
                    await conn.rollback()


class _Wrap:
    """``with journal._wrap(action):`` turns a sqlite error into a :class:`StoreError`."""

    __slots__ = ("_action", "_journal")

    def __init__(self, journal: Journal, action: str) -> None:
        self._journal = journal
        self._action = action

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, sqlite3.Error):
            raise self._journal._error(self._action, exc) from exc


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern (with ``ESCAPE '\\'``) matching the strings that start with ``prefix``."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


#: Above every outbox id (SQLite's largest rowid): "no row is held back".
_MAX_ID = 2**63 - 1
