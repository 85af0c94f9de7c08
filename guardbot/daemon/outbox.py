"""What the publisher drains: the journal's outbox, then the newest account snapshots.

Account snapshots (retained ``.../accounts/<account>``) go out at most once per
``snapshot_interval`` per account, only when the account's state changed since the last one;
they are not journaled (only the latest matters, and the engine rebuilds it on restart)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from guardbot.core.engine import Engine
from guardbot.core.events import to_jsonable
from guardbot.metrics.prometheus import Metrics
from guardbot.mqtt.publisher import OutboxRow as PublisherRow
from guardbot.mqtt.topics import Message, account_topic, compact_json
from guardbot.store.journal import Journal

__all__ = ["AccountSnapshots", "Outbox"]


@dataclass(frozen=True, slots=True)
class _SnapshotRow:
    id: int
    topic: str
    payload: str
    qos: int = 1
    retain: bool = True


class Outbox:
    """The publisher's :class:`~guardbot.mqtt.publisher.OutboxSource`: the journal's outbox first,
    then the latest in-memory account snapshot of each account (negative ids; a newer snapshot of
    an account replaces an unsent older one, as only the retained latest matters)."""

    def __init__(self, journal: Journal, wake: asyncio.Event, metrics: Metrics) -> None:
        self._metrics = metrics
        #: journal row id -> input seq, for tick-to-PUBACK latency
        self._row_seq: dict[int, int] = {}
        self._journal = journal
        self._wake = wake
        self._snapshots: dict[str, _SnapshotRow] = {}
        self._next_id = -1
        self._changed = asyncio.Event()
        #: Set when the journal's outbox becomes empty after holding rows (the status should
        #: say so now, not at the next interval).
        self.emptied = asyncio.Event()
        self._had_rows = True

    def put_retained(self, message: Message) -> None:
        """A retained message of which only the newest per topic matters (Home Assistant's
        configs and states): kept and replaced like an account snapshot."""
        self.put_snapshot(f"topic:{message.topic}", message)

    def put_snapshot(self, account: str, message: Message) -> None:
        row = _SnapshotRow(self._next_id, message.topic, message.payload, message.qos, True)
        self._next_id -= 1
        self._snapshots[account] = row
        self._wake.set()

    async def pending(self, limit: int) -> Sequence[PublisherRow]:
        stored = await self._journal.pending(limit)
        if not stored and self._had_rows:
            self.emptied.set()
        self._had_rows = bool(stored)
        for row in stored:
            with suppress(IndexError, ValueError):
                self._row_seq[row.id] = int(row.alert_id.rsplit("-", 2)[1])
        rows: list[PublisherRow] = list(stored)
        if len(rows) < limit:
            snaps = sorted(self._snapshots.values(), key=lambda r: -r.id)
            rows.extend(snaps[: limit - len(rows)])
        return rows

    async def mark_sent(self, ids: Sequence[int], ts: int) -> None:
        stored = [i for i in ids if i > 0]
        if stored:
            await self._journal.mark_sent(stored, ts)
            now = time.monotonic()
            for i in stored:
                seq = self._row_seq.pop(i, None)
                if seq is not None:
                    self._metrics.publish_acked(seq, now)
        gone = {i for i in ids if i < 0}
        if gone:
            for account in [a for a, r in self._snapshots.items() if r.id in gone]:
                del self._snapshots[account]
        self._changed.set()

    async def depth(self) -> int:
        return await self._journal.outbox_depth() + len(self._snapshots)

    async def wait_drained(self) -> None:
        """Return once nothing is left to publish (checked after every acknowledged row)."""
        while True:
            self._changed.clear()
            if await self.depth() == 0:
                return
            await self._changed.wait()


class AccountSnapshots:
    """Puts a changed account's state in the outbox (see the module docstring)."""

    def __init__(
        self,
        engine: Callable[[], Engine],
        outbox: Outbox,
        *,
        prefix: str,
        instance: str,
        now_ms: Callable[[], int],
        interval: float,
        on_snapshot: Callable[[str, Mapping[str, Any]], None] | None = None,
        lock: asyncio.Lock | None = None,
    ) -> None:
        self._engine = engine
        #: The step lock: held while an input is applied but not yet journaled, so a snapshot
        #: taken under it never shows a state the journal may not get (a failed commit, a kill).
        self._lock = lock
        #: Also called with each changed account's state (Home Assistant's states).
        self._on_snapshot = on_snapshot
        self._outbox = outbox
        self._prefix = prefix
        self._instance = instance
        self._now_ms = now_ms
        self.interval = interval
        self._published_state: dict[str, str] = {}

    async def run(self) -> None:
        while True:
            if self._lock is None:
                self.publish()
            else:
                async with self._lock:
                    self.publish()
            await asyncio.sleep(self.interval)

    def publish(self) -> None:
        engine = self._engine()
        for account in engine.iter_accounts():
            name = account.id
            snapshot = engine.state(account)
            state = compact_json(to_jsonable(snapshot))
            if self._published_state.get(name) == state:
                continue
            self._published_state[name] = state
            payload = compact_json({"account": name, "ts": self._now_ms(), **snapshot})
            topic = account_topic(self._prefix, self._instance, name)
            self._outbox.put_snapshot(name, Message(topic, payload, qos=1, retain=True))
            if self._on_snapshot is not None:
                self._on_snapshot(name, snapshot)
