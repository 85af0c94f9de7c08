"""The daemon's MQTT command topic: subscribe to ``<base>/cmd``, answer on ``<base>/reply/<id>``.

:class:`ControlListener` is one supervisor loop like the outbox
:class:`~guardbot.mqtt.publisher.Publisher`, on its own connection (a command must not wait behind
a backlog of outbox rows, nor the outbox behind a command)::

    gate = CommandGate(token, config.exchange.symbols, accounts=config.accounts or None)
    recent = RecentReplies()

    async def handler(payload: bytes) -> Mapping[str, Any]:
        return await handle_command(gate, payload, daemon_apply, recent=recent)

    listener = ControlListener(BrokerSettings.from_section(config.mqtt), "guardbot/main",
                               handler, instance="main")
    task = asyncio.create_task(listener.run())
    ...
    await listener.close()   # finishes the command in hand, disconnects, ``run`` returns

Messages are handled one at a time in arrival order: the next command is read only after the
previous one's reply was acknowledged by the broker (PUBACK), so replies keep the command order.
The session is clean (``clean_session``): commands sent while the daemon is disconnected are not
queued by the broker and never run late; their senders time out instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiomqtt

from guardbot.core.events import Event
from guardbot.errors import InputError
from guardbot.mqtt.client import BrokerSettings, connection, reconnect_forever
from guardbot.mqtt.commands import (
    BAD_COMMAND,
    Accepted,
    CommandGate,
    RecentReplies,
    Rejected,
    reply_ok,
    reply_rejected,
    reply_topic,
)
from guardbot.mqtt.topics import compact_json

__all__ = ["Apply", "ControlListener", "Handler", "handle_command"]

_log = logging.getLogger(__name__)

#: Apply one accepted command object to the engine and journal it; return its events.
Apply = Callable[[Mapping[str, Any]], Awaitable[Sequence[Event]]]
#: Turn one raw ``.../cmd`` payload into its reply (which carries ``requestId``).
Handler = Callable[[bytes], Awaitable[Mapping[str, Any]]]


async def handle_command(
    gate: CommandGate,
    payload: bytes,
    apply: Apply,
    *,
    recent: RecentReplies | None = None,
) -> dict[str, Any]:
    """Check ``payload``, apply it if accepted, and return the reply to publish.

    An :class:`InputError` from ``apply`` (e.g. no ``account`` while the daemon has several) is a
    ``bad_command`` reply: the engine refuses before it changes anything. Any other exception
    propagates: a journal that cannot be written is fatal for the daemon. With ``recent``, a
    ``requestId`` seen before gets its first reply again and is not applied twice.
    """
    verdict = gate.check(payload)
    if isinstance(verdict, Rejected):
        return reply_rejected(verdict)
    assert isinstance(verdict, Accepted)
    if recent is not None:
        previous = recent.get(verdict.request_id)
        if previous is not None:
            return previous
    try:
        events = await apply(verdict.body)
    except InputError as exc:
        reply = reply_rejected(Rejected(verdict.request_id, BAD_COMMAND, str(exc)))
    else:
        reply = reply_ok(verdict.request_id, events)
    if recent is not None:
        recent.put(verdict.request_id, reply)
    return reply


class ControlListener:
    """Subscribes to ``<base>/cmd`` and publishes each reply; see the module docstring."""

    def __init__(
        self,
        broker: BrokerSettings,
        base: str,
        handler: Handler,
        *,
        instance: str | None = None,
        qos: int = 1,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._broker = broker
        self._instance = instance
        self._qos = qos
        self._base = base
        self._cmd_topic = f"{base}/cmd"
        self._handler = handler
        self._sleep = sleep
        self._random = random
        self._stop = asyncio.Event()
        self._done = asyncio.Event()
        self._running = False
        self._sessions = 0
        self._fatal: Exception | None = None
        #: Set while subscribed to ``<base>/cmd`` (cleared when the connection drops).
        self.subscribed = asyncio.Event()
        #: Commands answered since start; the last connection error (never a password).
        self.handled = 0
        self.last_error: str | None = None

    def __repr__(self) -> str:  # no password in logs
        return (
            f"ControlListener(url={self._broker.url!r}, "
            f"base={self._base!r}, subscribed={self.subscribed.is_set()})"
        )

    async def run(self) -> None:
        """Serve commands until :meth:`close`; reconnect with backoff after connection errors.

        An exception from the handler (other than what it turns into a reply) ends ``run`` and
        propagates unchanged.
        """
        if self._running:
            raise RuntimeError("ControlListener.run is already running")
        self._running = True
        self._done.clear()
        try:
            await reconnect_forever(
                self._session,
                stop=self._stop,
                name="control",
                got_going=lambda: self._sessions,
                on_error=self._lost,
                sleep=self._sleep,
                random=self._random,
                # The handler's own OSError is not a connection problem.
                fatal=lambda exc: exc is self._fatal,
            )
        finally:
            self._running = False
            self._done.set()

    def _lost(self, error: str) -> None:
        self.last_error = error

    async def _session(self) -> bool:
        """One connection; returns True after :meth:`close`, raises when the connection drops."""
        try:
            async with connection(
                self._broker, role="control", instance=self._instance, clean_session=True
            ) as client:
                await client.subscribe(self._cmd_topic, qos=max(1, self._qos))
                self._sessions += 1
                self.subscribed.set()
                messages = aiter(client.messages)
                while True:
                    message = await self._next(messages)
                    if message is None:
                        return True
                    await self._answer(client, message)
        finally:
            self.subscribed.clear()

    async def _next(self, messages: AsyncIterator[aiomqtt.Message]) -> aiomqtt.Message | None:
        """The next message, or None once :meth:`close` was called (whichever comes first)."""
        incoming = asyncio.ensure_future(anext(messages))
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait((incoming, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not incoming.done():
                incoming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await incoming
        if incoming.cancelled():
            return None
        # A message that arrived together with close() is still answered: it was acknowledged.
        message: aiomqtt.Message = incoming.result()  # raises MqttError on a lost connection
        return message

    async def _answer(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        if message.topic.value != self._cmd_topic:
            return  # not ours (a broker delivering outside the subscription)
        try:
            reply = await self._handler(_payload_bytes(message.payload))
        except Exception as exc:
            self._fatal = exc  # so that run() does not mistake it for a lost connection
            raise
        topic = reply_topic(self._base, reply.get("requestId"))
        await client.publish(topic, compact_json(dict(reply)), qos=self._qos, retain=False)
        self.handled += 1

    async def close(self, *, timeout: float = 10.0) -> None:
        """Stop after the command in hand (if any) and wait up to ``timeout`` for :meth:`run`."""
        self._stop.set()
        if not self._running:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._done.wait()
        except TimeoutError:
            _log.warning("mqtt control listener did not stop within %.1f s", timeout)


def _payload_bytes(payload: object) -> bytes:
    """aiomqtt types payloads loosely; commands arrive as bytes."""
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode("utf-8")
