"""The notification loop: alerts from the journal's outbox to apprise, at least once, in order.

The daemon's step pipeline already writes every alert into the SQLite outbox in the same
transaction as the step that raised it; this loop is a second reader of that outbox with its own
cursor (the id of the last row it handled), kept in the journal's ``state`` table. So:

- nothing happens on the tick path (the loop is its own task, woken after a commit);
- a row is handled once delivered to every URL, then the cursor moves past it (one durable
  write): a crash between the two sends it again after the restart (at least once);
- rows are handled in id order, one at a time; a failing URL is retried with the one backoff,
  forever, before the next alert (in order), and only that URL;
- a broker outage does not matter (the outbox is read directly), a daemon restart neither (the
  cursor is durable). The first start with notifications starts at the newest row: enabling them
  does not replay the journal's history to a phone.

Coalescing: after an alert of one (account, symbol, type, severity) was delivered, its repeats
within ``coalesce_s`` are counted instead of sent; when the window closes, one message says how
many came and gives the latest one's text. The open windows are part of the durable state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from guardbot.formats.alert_text import alert_text
from guardbot.notify.sender import Sender
from guardbot.runtime.backoff import backoff_delay, until_set
from guardbot.store.journal import OutboxEntry

__all__ = ["STATE_KEY", "AlertFilter", "Notifier", "OutboxReader"]

_log = logging.getLogger(__name__)

#: The journal ``state`` key of the cursor and the open coalescing windows.
STATE_KEY = "notify"
SEVERITY_ORDER = ("info", "warning", "margin_call", "critical")
#: Without a wake-up, look at the outbox this often anyway (and close due windows).
IDLE_POLL_S = 5.0


class OutboxReader(Protocol):
    """The journal methods the loop uses."""

    async def outbox_after(
        self, after_id: int, topic_prefix: str, limit: int
    ) -> list[OutboxEntry]: ...
    async def outbox_count_after(self, after_id: int, topic_prefix: str) -> int: ...
    async def last_outbox_id(self) -> int: ...
    async def get_state(self, key: str) -> Any: ...
    async def put_state(self, key: str, body: Mapping[str, Any], ts: int) -> None: ...


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts to notify: at or above ``min_severity``, of ``types`` (empty: any)."""

    min_severity: str = "warning"
    types: tuple[str, ...] = ()

    def wants(self, alert: Mapping[str, Any], severity: str) -> bool:
        if self.types and alert.get("type") not in self.types:
            return False
        rank = SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else 0
        return rank >= SEVERITY_ORDER.index(self.min_severity)


class Notifier:
    """See the module docstring. ``prepare()`` once the journal is open (before this run commits
    anything), then ``run()`` as a task; ``wake()`` after each commit with alerts."""

    def __init__(
        self,
        journal: OutboxReader,
        sender: Sender,
        *,
        alerts_prefix: str,
        instance: str,
        filter: AlertFilter,
        coalesce_s: float = 60.0,
        batch: int = 50,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._journal = journal
        self._sender = sender
        self._prefix = alerts_prefix.rstrip("/") + "/"
        self._instance = instance
        self._filter = filter
        self._coalesce_ms = int(coalesce_s * 1000)
        self._batch = batch
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._cursor: int | None = None
        #: key -> {"until": ms, "count": n, "latest": {...}}
        self._windows: dict[str, dict[str, Any]] = {}
        #: Messages delivered (every URL took it) since start; failed attempts (any URL).
        self.delivered = 0
        self.failures = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        self._wake.set()

    @property
    def cursor(self) -> int | None:
        """The id of the last outbox row handled (None before :meth:`prepare`): retention
        keeps the rows after it."""
        return self._cursor

    async def backlog(self) -> int:
        """Alerts in the outbox this loop has not handled yet (the one being retried included):
        what a failing service or a slow delivery holds back. Repeats held in a coalescing
        window were handled (counted), so they are not in it; 0 before :meth:`prepare`."""
        if self._cursor is None:
            return 0
        return await self._journal.outbox_count_after(self._cursor, self._prefix)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def prepare(self) -> None:
        """Load the cursor, or start it at the newest outbox row (first start)."""
        stored = await self._journal.get_state(STATE_KEY)
        if isinstance(stored, dict) and isinstance(stored.get("cursor"), int):
            self._cursor = stored["cursor"]
            windows = stored.get("windows")
            self._windows = dict(windows) if isinstance(windows, dict) else {}
        else:
            self._cursor = await self._journal.last_outbox_id()
            await self._save()

    async def _save(self) -> None:
        assert self._cursor is not None
        body = {"cursor": self._cursor, "windows": self._windows}
        await self._journal.put_state(STATE_KEY, body, self._now_ms())

    async def run(self) -> None:
        """Deliver until :meth:`close`; a journal error ends it (the daemon's fatal path)."""
        if self._cursor is None:
            await self.prepare()
        while not self._stop.is_set():
            self._wake.clear()  # before reading: a commit after the read sets it again
            progressed = await self._close_due_windows()
            assert self._cursor is not None
            rows = await self._journal.outbox_after(self._cursor, self._prefix, self._batch)
            for row in rows:
                if self._stop.is_set():
                    return
                await self._handle(row)
            if rows or progressed:
                continue
            timeout = self._next_wakeup_s()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def close(self) -> None:
        """Stop after the message in hand (delivered and its cursor saved); ``run`` returns.
        A delivery being retried is not waited for: cancel the task after a grace period."""
        self._stop.set()
        self._wake.set()

    def _next_wakeup_s(self) -> float:
        if not self._windows:
            return IDLE_POLL_S
        soonest = min(int(w["until"]) for w in self._windows.values())
        return max(0.0, min(IDLE_POLL_S, (soonest - self._now_ms()) / 1000))

    async def _handle(self, row: OutboxEntry) -> None:
        try:
            alert = json.loads(row.payload)
        except ValueError:
            alert = None
        levels = row.topic[len(self._prefix) :].split("/")  # <severity>/<type>
        severity = levels[0] if levels else "info"
        if isinstance(alert, dict) and self._filter.wants(alert, severity):
            key = _window_key(alert, severity)
            window = self._windows.get(key)
            message = self._message(alert, severity)
            if self._coalesce_ms and window is not None and row.created_ts < int(window["until"]):
                window["count"] = int(window["count"]) + 1
                window["latest"] = message
            else:
                await self._deliver(message)
                if self._coalesce_ms:
                    self._windows[key] = {
                        "until": row.created_ts + self._coalesce_ms,
                        "count": 0,
                        "latest": message,
                    }
        self._cursor = row.id
        await self._save()

    async def _close_due_windows(self) -> bool:
        now = self._now_ms()
        due = [key for key, w in self._windows.items() if int(w["until"]) <= now]
        for key in due:
            window = self._windows[key]
            count = int(window["count"])
            if count:
                latest = dict(window["latest"])
                seconds = self._coalesce_ms // 1000
                latest["body"] = f"{count} more within {seconds} s; the latest: {latest['body']}"
                await self._deliver(latest)
            del self._windows[key]
        if due:
            await self._save()
        return bool(due)

    def _message(self, alert: Mapping[str, Any], severity: str) -> dict[str, str]:
        text = alert.get("text")
        body = text if isinstance(text, str) and text.strip() else alert_text(alert)
        who = alert.get("account") or self._instance
        title = f"guardbot {who}: {severity.replace('_', ' ')} ({alert.get('type')})"
        return {"title": title, "body": body, "severity": severity}

    async def _deliver(self, message: Mapping[str, str]) -> None:
        """Until every URL took ``message``: retry the failed ones with the one backoff."""
        remaining: Sequence[int] = range(len(self._sender.targets))
        attempt = 0
        while True:
            remaining = await self._sender.send(
                message["title"], message["body"], message["severity"], remaining
            )
            if not remaining:
                self.delivered += 1
                return
            self.failures += 1
            names = ", ".join(self._sender.targets[i] for i in remaining)
            self.last_error = f"delivery failed: {names}"
            delay = backoff_delay(attempt, self._random)
            attempt += 1
            _log.warning("notification %s; retry in %.1f s", self.last_error, delay)
            await until_set(self._sleep(delay), self._stop)
            if self._stop.is_set():
                raise asyncio.CancelledError  # not delivered: the cursor stays before it


def _window_key(alert: Mapping[str, Any], severity: str) -> str:
    return json.dumps(
        [
            alert.get("account"),
            alert.get("symbol"),
            alert.get("type"),
            alert.get("level"),
            severity,
        ],
        separators=(",", ":"),
    )
