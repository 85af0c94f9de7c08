"""An embedded MQTT 3.1.1 broker (amqtt) on loopback, for ``embedded_broker = "auto"``
(docs/architecture.md §5).

On a fresh machine with nothing listening on the configured loopback URL, the daemon starts this
broker so that its publisher and local subscribers (``mosquitto_sub``, Home Assistant on the same
host) work without installing Mosquitto. It is deliberately minimal: one TCP listener bound to a
loopback address, anonymous access, QoS 0/1/2, retained messages and last wills (all amqtt
built-ins), no ``$SYS`` topics and no persistence: retained messages live as long as the process.

Usage::

    if await asyncio.to_thread(should_embed, "auto", "127.0.0.1", 1883):
        async with EmbeddedBroker("127.0.0.1", 1883) as broker:
            ...  # connect clients to broker.port

In production, point ``mqtt.url`` at Mosquitto or EMQX and set ``embedded_broker = "never"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
import warnings
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from guardbot.errors import ConfigError, GuardbotError
from guardbot.runtime.extras import require_extra
from guardbot.runtime.net import format_host_port, is_loopback_host

__all__ = [
    "EMBED_MODES",
    "BrokerStartError",
    "EmbeddedBroker",
    "is_loopback_host",
    "should_embed",
]

_log = logging.getLogger(__name__)

EMBED_MODES = ("auto", "always", "never")

#: How long ``should_embed`` waits for a TCP connect on loopback; a live broker answers in << 1 ms.
PROBE_TIMEOUT_S = 0.5

#: Loggers amqtt (and the ``transitions`` state machine it uses) write to. amqtt logs every
#: connection and state change at INFO; the daemon's own log must not drown in them.
_QUIET_LOGGERS = ("amqtt", "transitions")

#: Only the anonymous-auth plugin: amqtt's default plugin set adds $SYS topics (BrokerSysPlugin,
#: which also emits a DeprecationWarning about psutil) and event/packet loggers.
_PLUGINS: dict[str, Any] = {
    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
}


class BrokerStartError(GuardbotError):
    """The embedded broker could not start (typically: the port is already taken)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(
            f"embedded MQTT broker cannot listen on {format_host_port(host, port)}: {reason}"
        )


def _accepts_connections(host: str, port: int, timeout: float) -> bool:
    """``True`` if something accepts a TCP connection at ``host:port`` within ``timeout``."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(address)
            except OSError:
                continue  # refused, timed out, or this address family is unavailable
            return True
    return False


def should_embed(mode: str, host: str, port: int, *, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether to start the embedded broker for the configured broker ``host:port``.

    ``"always"``: yes; ``"never"``: no; ``"auto"``: only for a loopback host on which nothing
    accepts a TCP connection (a broker on another host is never replaced by a local one). Blocking
    (a short TCP connect): call it through ``asyncio.to_thread`` from the event loop.
    """
    if mode == "always":
        return True
    if mode == "never":
        return False
    if mode != "auto":
        raise ConfigError(
            f"mqtt.embedded_broker must be one of {', '.join(EMBED_MODES)}, got {mode!r}"
        )
    if not is_loopback_host(host):
        return False
    return not _accepts_connections(host, port, timeout)


def _quiet_amqtt_logging() -> None:
    # Only when nobody configured these loggers: an explicit level (debugging) wins.
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    logging.getLogger("amqtt.broker").addFilter(_NOISE_FILTER)  # idempotent for one instance


class _AmqttNoise(logging.Filter):
    """Drops amqtt records that say nothing the daemon's user can act on.

    * ``Broker startup failed`` (with a traceback): :meth:`EmbeddedBroker.start` raises it as one
      :class:`BrokerStartError` naming host:port instead.
    * A connection closed before its CONNECT packet is logged at ERROR (plus a WARNING). That is
      what a TCP probe does: :func:`should_embed` of a second guardbot, or a health check.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message == "Broker startup failed" or message.startswith("No data from "):
            return False
        return not (
            message.startswith("Failed to initialize client session: ")
            and ("No data" in message or "No more data" in message)
        )


_NOISE_FILTER = _AmqttNoise()


@contextlib.contextmanager
def _amqtt_warnings() -> Iterator[None]:
    """Keep amqtt's DeprecationWarnings about its own legacy configuration out of our callers.

    amqtt 0.12 warns from its import and constructor paths (entry-point plugins, ``auth``,
    ``sys_interval``, BrokerSysPlugin/psutil). With an explicit ``plugins`` table none fires; this
    guards against a patch release deprecating one more default, which the daemon's user cannot
    act on (and guardbot's test suite turns every warning into an error). Only used around
    synchronous code: ``catch_warnings`` swaps process-global state, which other tasks would see
    across an ``await``.
    """
    with warnings.catch_warnings():
        # Not filtered by module: amqtt attributes some warnings to its caller (stacklevel=4).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        yield


class EmbeddedBroker:
    """An amqtt broker listening on ``host:port`` (loopback only); an async context manager.

    ``port`` 0 picks a free port; read :attr:`port` after :meth:`start`. Entering starts the
    broker (raising :class:`BrokerStartError` if it cannot listen), leaving stops it, closes every
    client connection and frees the port.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        if not is_loopback_host(host):
            raise ConfigError(
                f"embedded MQTT broker: host {host!r} is not a loopback address; it only binds "
                "to 127.0.0.1, ::1 or localhost (use an external broker such as Mosquitto for "
                'other hosts, or set mqtt.embedded_broker = "never")'
            )
        if isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigError(f"embedded MQTT broker: port must be 0..65535, got {port!r}")
        self._host = host.strip("[]")
        self._requested_port = port
        self._port = port
        self._broker: Any = None
        #: Tasks of the client connections being served (see ``_wrap_connection_handler``).
        self._connections: set[asyncio.Task[Any]] = set()
        #: Set (and replaced) whenever a connection opens or closes; see ``wait_connections``.
        self._connections_changed = asyncio.Event()
        #: Seconds the last :meth:`start` took (for the daemon's start-up log).
        self.startup_s: float | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EmbeddedBroker({format_host_port(self._host, self._port)}, {state})"

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The listening port (the one picked by the OS when constructed with port 0)."""
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{format_host_port(self._host, self._port)}"

    @property
    def running(self) -> bool:
        return self._broker is not None

    @property
    def connections(self) -> int:
        """TCP connections currently open to the broker (MQTT clients or not)."""
        return len(self._connections)

    async def wait_connections(self, count: int = 0) -> None:
        """Return once exactly ``count`` TCP connections are open (0: every client is gone)."""
        while len(self._connections) != count:
            await self._connections_changed.wait()

    def _connection_opened_or_closed(self) -> None:
        # Synchronous so that it can run in the ``finally`` of a cancelled connection task.
        changed, self._connections_changed = self._connections_changed, asyncio.Event()
        changed.set()

    def _bind(self) -> str:
        # amqtt splits "address:port" with rsplit(":", 1) and keeps IPv6 brackets, which
        # getaddrinfo rejects, so an IPv6 literal is given bare ("::1:1883" -> "::1", 1883).
        return f"{self._host}:{self._requested_port}"

    async def start(self) -> None:
        """Start listening; raise :class:`BrokerStartError` naming host:port if that fails."""
        if self._broker is not None:
            raise RuntimeError("EmbeddedBroker is already running")
        require_extra(
            "broker",
            "the embedded MQTT broker (mqtt.embedded_broker)",
            hint='or run a broker such as Mosquitto at mqtt.url and set embedded_broker = "never"',
        )
        started = time.perf_counter()
        _quiet_amqtt_logging()
        with _amqtt_warnings():
            # Imported here: amqtt pulls in websockets, transitions, pwdlib..., which a daemon
            # talking to an external broker never needs.
            from amqtt.broker import Broker  # type: ignore[import-untyped, unused-ignore]

            config: dict[str, Any] = {
                "listeners": {"default": {"type": "tcp", "bind": self._bind()}},
                "plugins": dict(_PLUGINS),
            }
            broker = Broker(config)
        self._wrap_connection_handler(broker)
        try:
            await broker.start()
        except Exception as exc:
            cause: BaseException = exc.__cause__ or exc
            reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause)
            if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
                reason = (
                    "address already in use (another MQTT broker or program has this port; "
                    'stop it, or set mqtt.embedded_broker = "never" and point mqtt.url at it)'
                )
            raise BrokerStartError(self._host, self._requested_port, reason) from exc
        self._broker = broker
        self._port = self._listening_port(broker)
        self.startup_s = time.perf_counter() - started
        _log.info("embedded MQTT broker listening on %s (%.3f s)", self.url, self.startup_s)

    def _wrap_connection_handler(self, broker: Any) -> None:
        """Serve every TCP connection through a wrapper that closes it and tracks its task.

        amqtt 0.12.1 returns from its connection handler *without closing the socket* when the
        first packet is not a CONNECT (a TCP probe, a port scanner, an HTTP request): the peer
        then hangs and the server side leaks until garbage collection. Its ``shutdown`` also
        knows nothing about connections that have not sent CONNECT yet, so their tasks would
        outlive :meth:`stop`. ``start`` binds ``self.stream_connected`` when it creates the
        listener, so an instance attribute set before ``start`` takes its place.
        """
        original = broker.stream_connected
        connections = self._connections
        notify = self._connection_opened_or_closed

        async def serve(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
        ) -> None:
            task = asyncio.current_task()
            assert task is not None
            connections.add(task)
            notify()
            try:
                await original(reader, writer, listener_name=listener_name)
            finally:
                writer.close()  # a no-op when amqtt already closed it
                connections.discard(task)
                notify()

        broker.stream_connected = serve

    def _listening_port(self, broker: Any) -> int:
        if self._requested_port != 0:
            return self._requested_port
        # amqtt has no public accessor for the bound address; its Server wraps asyncio.Server.
        server = broker._servers["default"].instance
        return int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Disconnect every client, close the listener and wait for amqtt's tasks to end."""
        broker, self._broker = self._broker, None
        if broker is None:
            return
        await broker.shutdown()
        # Connections that never sent CONNECT (see ``_wrap_connection_handler``).
        pending = list(self._connections)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        _log.info("embedded MQTT broker on %s stopped", self.url)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _main() -> None:  # pragma: no cover - manual smoke run: python -m guardbot.mqtt.broker
    async with EmbeddedBroker("127.0.0.1", 0) as broker:
        print(f"listening on {broker.url} (started in {broker.startup_s:.3f} s); Ctrl-C stops")
        await asyncio.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
