"""Follow one topic and call back on each message, reconnecting forever (the one loop).

The daemon uses it for Home Assistant's birth message (``<discovery_prefix>/status`` =
``online``), after which every discovery config is published again::

    watcher = TopicWatcher(broker, "homeassistant/status", on_message, role="ha", instance="main")
    task = asyncio.create_task(watcher.run())
    ...
    await watcher.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import random as _random
from collections.abc import Awaitable, Callable

import aiomqtt

from guardbot.mqtt.client import BrokerSettings, connection, reconnect_forever

__all__ = ["TopicWatcher"]


class TopicWatcher:
    """Subscribes to ``topic`` (QoS 1) on its own connection; ``on_message(payload)`` for each
    message, in order. An exception from the callback ends :meth:`run`."""

    def __init__(
        self,
        broker: BrokerSettings,
        topic: str,
        on_message: Callable[[bytes], None],
        *,
        role: str,
        instance: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._broker = broker
        self._topic = topic
        self._on_message = on_message
        self._role = role
        self._instance = instance
        self._sleep = sleep
        self._random = random
        self._stop = asyncio.Event()
        self._sessions = 0
        #: Set while subscribed.
        self.subscribed = asyncio.Event()
        self.last_error: str | None = None

    async def run(self) -> None:
        await reconnect_forever(
            self._session,
            stop=self._stop,
            name=f"watch {self._topic}",
            got_going=lambda: self._sessions,
            on_error=self._lost,
            sleep=self._sleep,
            random=self._random,
        )

    def _lost(self, error: str) -> None:
        self.last_error = error

    async def _session(self) -> bool:
        try:
            async with connection(
                self._broker, role=self._role, instance=self._instance, clean_session=True
            ) as client:
                await client.subscribe(self._topic, qos=1)
                self._sessions += 1
                self.subscribed.set()
                messages = aiter(client.messages)
                while True:
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
                        return True
                    message: aiomqtt.Message = incoming.result()
                    if message.topic.matches(self._topic):
                        self._on_message(_payload(message.payload))
        finally:
            self.subscribed.clear()

    async def close(self) -> None:
        self._stop.set()


def _payload(payload: object) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode("utf-8")
