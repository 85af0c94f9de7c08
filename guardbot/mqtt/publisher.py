"""Publish the outbox to an MQTT broker: one supervisor loop, reconnecting forever.

The producer (the daemon's engine loop) writes rows to an outbox and sets ``wake``; the
:class:`Publisher` drains the outbox in id order, one QoS 1 publish at a time, and marks rows
sent only after the broker acknowledged them (PUBACK), a batch (what one read of the outbox
returned) at a time. A lost connection loses nothing: the rows
not yet marked are published again after the reconnect, in the same order, so a subscriber may
see a duplicate of a row whose PUBACK was lost, but never a gap or a reordering.

Every message goes out at the publisher's ``qos`` (``[mqtt] qos``, default 1), whatever the row
says: with 1 or 2 a row is marked sent after the broker acknowledged it; with 0 once it was
written to the socket, so a connection lost right then loses it (at most once).

Status: the broker holds the last will ``{"state":"offline"}`` (retained) for an abnormal exit;
each connect publishes ``{"state":"online", "ts", "version"}`` retained, and :meth:`close`
publishes ``offline`` retained before a clean DISCONNECT (which discards the will).

Usage::

    broker = BrokerSettings.from_section(config.mqtt)  # or BrokerSettings("127.0.0.1", 1883)
    async with Publisher(broker, instance="main", qos=config.mqtt.qos) as publisher:
        task = asyncio.create_task(publisher.run(outbox, wake=wake))
        ...
    # leaving the block publishes offline and waits for ``run`` to return
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

import aiomqtt

from guardbot import __version__
from guardbot.mqtt.client import CONNECTION_ERRORS, BrokerSettings, connection, reconnect_forever
from guardbot.mqtt.topics import Message, compact_json, status_topic

_log = logging.getLogger(__name__)

__all__ = [
    "MemoryOutbox",
    "OutboxEntry",
    "OutboxRow",
    "OutboxSource",
    "Publisher",
    "PublisherStatus",
]


class OutboxRow(Protocol):
    """One outbox row, as :meth:`OutboxSource.pending` returns it."""

    @property
    def id(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> str | bytes: ...
    @property
    def qos(self) -> int: ...
    @property
    def retain(self) -> bool: ...


class OutboxSource(Protocol):
    """Where the publisher reads unsent rows; the SQLite outbox implements it in the daemon."""

    async def pending(self, limit: int) -> Sequence[OutboxRow]:
        """Up to ``limit`` unsent rows, oldest (lowest id) first."""
        ...

    async def mark_sent(self, ids: Sequence[int], ts: int) -> None:
        """Record that the rows ``ids`` were acknowledged by the broker at ``ts`` (epoch ms)."""
        ...


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A plain :class:`OutboxRow`."""

    id: int
    topic: str
    payload: str | bytes
    qos: int = 1
    retain: bool = False


class MemoryOutbox:
    """An in-memory :class:`OutboxSource` for tests and for running without a database."""

    def __init__(self, *, wake: asyncio.Event | None = None) -> None:
        self._rows: list[OutboxEntry] = []
        self._next_id = 1
        self._wake = wake
        #: row id -> ts at which it was marked sent.
        self.sent: dict[int, int] = {}

    def add(self, message: Message) -> int:
        """Append ``message``, wake the publisher, return the new row id."""
        row_id = self._next_id
        self._next_id += 1
        self._rows.append(
            OutboxEntry(row_id, message.topic, message.payload, message.qos, message.retain)
        )
        if self._wake is not None:
            self._wake.set()
        return row_id

    @property
    def rows(self) -> list[OutboxEntry]:
        """Every row ever added, in id order."""
        return list(self._rows)

    @property
    def depth(self) -> int:
        """How many rows are not yet marked sent."""
        return len(self._rows) - len(self.sent)

    async def pending(self, limit: int) -> Sequence[OutboxRow]:
        unsent = (row for row in self._rows if row.id not in self.sent)
        return [row for row, _ in zip(unsent, range(limit), strict=False)]

    async def mark_sent(self, ids: Sequence[int], ts: int) -> None:
        for row_id in ids:
            self.sent.setdefault(row_id, ts)


@dataclass(frozen=True, slots=True)
class PublisherStatus:
    """A snapshot for the daemon's own status report."""

    connected: bool
    #: Successful connections after the first one.
    reconnects: int
    #: The last connection error, as text, or ``None`` if there was none yet.
    last_error: str | None
    #: Rows acknowledged by the broker since start.
    published: int


class _Stopped(Exception):
    """Internal: :meth:`Publisher.close` was called while a session was running."""


class Publisher:
    """Drains an :class:`OutboxSource` to an MQTT broker; see the module docstring."""

    def __init__(
        self,
        broker: BrokerSettings,
        *,
        instance: str,
        prefix: str = "guardbot",
        qos: int = 1,
        version: str = __version__,
        batch: int = 100,
        idle_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        status_info: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos}")
        self._broker = broker
        self._instance = instance
        self._status_topic = status_topic(prefix, instance)  # validates prefix and instance
        self._qos = qos
        self._version = version
        self._batch = batch
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._status_info = status_info
        self._status_due = False

        self._connected = False
        self._connections = 0
        self._last_error: str | None = None
        self._published = 0
        self._stop = asyncio.Event()
        self._running = False
        self._done = asyncio.Event()

    def __repr__(self) -> str:  # no password in logs
        return (
            f"Publisher(url={self._broker.url!r}, "
            f"instance={self._instance!r}, connected={self._connected})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def status(self) -> PublisherStatus:
        return PublisherStatus(
            connected=self._connected,
            reconnects=max(0, self._connections - 1),
            last_error=self._last_error,
            published=self._published,
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _status_payload(self, state: str) -> str:
        """``{"state", "ts", "version"}`` plus, while online, the daemon's ``status_info()``
        (whose ``state`` key, e.g. ``"degraded"``, replaces ``"online"``)."""
        body: dict[str, Any] = {"state": state, "ts": self._now_ms(), "version": self._version}
        if state == "online" and self._status_info is not None:
            body.update(self._status_info())
        return compact_json(body)

    def refresh_status(self, wake: asyncio.Event) -> None:
        """Republish the retained status (with fresh ``status_info``) at the next chance."""
        self._status_due = True
        wake.set()

    async def run(self, source: OutboxSource, *, wake: asyncio.Event) -> None:
        """Connect, publish online, drain ``source`` until :meth:`close`; reconnect on errors.

        Returns after :meth:`close` (having published ``offline``). Cancelling the task also
        publishes ``offline`` (bounded by one second) before it disconnects; only a crash of the
        process or the network leaves the status to the broker's last will. An exception from
        ``source`` is fatal (the outbox is the daemon's database): ``offline`` is published and
        the error propagates in an :class:`ExceptionGroup`.
        """
        if self._running:
            raise RuntimeError("Publisher.run is already running")
        self._running = True
        self._done.clear()
        try:
            await reconnect_forever(
                lambda: self._session(source, wake),
                stop=self._stop,
                name="publisher",
                got_going=lambda: self._connections,
                on_error=self._lost,
                sleep=self._sleep,
                random=self._random,
            )
        finally:
            self._running = False
            self._done.set()

    def _lost(self, error: str) -> None:
        self._last_error = error

    async def _session(self, source: OutboxSource, wake: asyncio.Event) -> bool:
        """One connection; returns ``True`` after a clean stop, raises on connection loss."""
        will = aiomqtt.Will(
            self._status_topic, compact_json({"state": "offline"}), qos=self._qos, retain=True
        )
        stopped = False
        try:
            async with connection(
                self._broker, role="publisher", instance=self._instance, will=will
            ) as client:
                self._connected = True
                self._connections += 1
                await self._publish_status(client, "online")
                stopped = await self._serve(client, source, wake)
        finally:
            self._connected = False
        return stopped  # leaving ``connection`` sent DISCONNECT: the broker drops the will

    async def _publish_status(self, client: aiomqtt.Client, state: str) -> None:
        await client.publish(self._status_topic, self._status_payload(state), self._qos, True)

    async def _serve(
        self, client: aiomqtt.Client, source: OutboxSource, wake: asyncio.Event
    ) -> bool:
        stopped = False
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._watch(client), name="guardbot-mqtt-watch")
                    group.create_task(self._drain(client, source, wake), name="guardbot-mqtt-drain")
            except* _Stopped:
                stopped = True
        except (asyncio.CancelledError, Exception) as exc:
            # Cancelled, or the outbox failed: the connection is fine, so say offline
            # (bounded) rather than leave a retained "online" behind a clean DISCONNECT.
            lost = isinstance(exc, BaseExceptionGroup) and exc.subgroup(CONNECTION_ERRORS)
            if not lost:
                with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._publish_offline(client)
            raise
        if stopped:
            await self._publish_offline(client)
        return stopped

    async def _publish_offline(self, client: aiomqtt.Client) -> None:
        await self._publish_status(client, "offline")

    async def _watch(self, client: aiomqtt.Client) -> None:
        """Raise :class:`aiomqtt.MqttError` as soon as the connection drops, ``_Stopped`` on close.

        A QoS 1 publish waits for its PUBACK up to the client timeout even when the socket is
        gone; ending this task with an error makes the task group cancel the drain at once.
        """
        stop = asyncio.ensure_future(self._stop.wait())
        lost = asyncio.ensure_future(anext(aiter(client.messages)))
        try:
            await asyncio.wait((stop, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, lost):
                task.cancel()
        error = lost.exception() if lost.done() and not lost.cancelled() else None
        if error is not None:
            raise error
        if self._stop.is_set():
            raise _Stopped
        raise aiomqtt.MqttError("unexpected message on a publish-only connection")

    async def _drain(
        self, client: aiomqtt.Client, source: OutboxSource, wake: asyncio.Event
    ) -> None:
        while True:
            wake.clear()  # before reading: a row added after this read sets it again
            if self._status_due:
                self._status_due = False
                await self._publish_status(client, "online")
            rows = await source.pending(self._batch)
            acked: list[int] = []
            try:
                for row in rows:
                    await client.publish(row.topic, row.payload, self._qos, row.retain)
                    acked.append(row.id)
                    self._published += 1
            finally:
                # One write for the batch rather than one per row: each is a durable commit,
                # and an alert would otherwise wait for the commit of the event row before it.
                # Rows acknowledged but not yet marked when the process dies are published
                # again after the restart (at least once, same ids).
                if acked:
                    await source.mark_sent(acked, self._now_ms())
            if not rows:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle_timeout):
                        await wake.wait()

    async def close(self, *, timeout: float = 10.0) -> None:
        """Publish ``offline`` (retained), disconnect cleanly and wait for :meth:`run` to return.

        Rows still pending stay in the outbox for the next start.
        """
        self._stop.set()
        if not self._running:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._done.wait()
        except TimeoutError:
            _log.warning("mqtt publisher did not stop within %.1f s", timeout)
