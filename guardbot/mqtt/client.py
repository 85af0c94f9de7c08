"""The one place that builds MQTT clients, and the one reconnect loop.

Every connection guardbot makes (the daemon's outbox publisher and command listener, ``guardbot
alerts``, ``status``, ``order``/``cancel``/``leverage`` and ``health``) is built by
:func:`make_client` from one :class:`BrokerSettings`, so they cannot disagree on security:

- ``mqtts://`` always means TLS, with certificate and host name verification. The CAs are the
  system's (OpenSSL's default paths, which honour ``SSL_CERT_FILE``/``SSL_CERT_DIR``) unless
  ``tls_ca`` names a file. There is no way to turn verification off.
- username and password come from the configuration (the password from the environment).
- client ids are ``guardbot-<instance>-<role>-<random>``: readable in the broker's log, and never
  equal to another live session's (MQTT lets a new session with the same id take over an old
  one, and a 3.1.1 broker then publishes the old one's will: a restarted daemon would see its
  own ``offline`` published after its ``online``).

:func:`reconnect_forever` is the supervisor loop of the long-lived connections: run a session,
log why it ended, back off with full jitter (reset after a session that got going), until stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiomqtt

from guardbot.runtime.backoff import backoff_delay, until_set

__all__ = [
    "CONNECTION_ERRORS",
    "BrokerSettings",
    "ConnectError",
    "client_id",
    "connection",
    "connection_error",
    "describe_error",
    "make_client",
    "reconnect_forever",
    "tls_context",
]

_log = logging.getLogger(__name__)

#: Errors that mean "the connection is gone (or never came), reconnect".
CONNECTION_ERRORS: tuple[type[Exception], ...] = (aiomqtt.MqttError, OSError)

DEFAULT_KEEPALIVE = 30
DEFAULT_TIMEOUT = 10.0


class _Secret(Protocol):
    def reveal(self) -> str: ...


class MqttSectionLike(Protocol):
    """What :meth:`BrokerSettings.from_section` reads: the configuration's ``[mqtt]`` section."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def tls(self) -> bool: ...
    @property
    def tls_ca(self) -> Path | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> _Secret | None: ...


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """Where and how to connect; ``repr`` never shows the password."""

    host: str
    port: int
    tls: bool = False
    #: A PEM file of CAs to trust instead of the system's (only with ``tls``).
    tls_ca: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    keepalive: int = DEFAULT_KEEPALIVE
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_section(cls, section: MqttSectionLike) -> BrokerSettings:
        """The settings of a configuration's ``[mqtt]`` section."""
        return cls(
            host=section.host,
            port=section.port,
            tls=section.tls,
            tls_ca=str(section.tls_ca) if section.tls_ca is not None else None,
            username=section.username,
            password=section.password.reveal() if section.password is not None else None,
        )

    @property
    def url(self) -> str:
        """``scheme://host:port``: never the user information."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def tls_context(settings: BrokerSettings) -> ssl.SSLContext | None:
    """A verifying client context for ``mqtts``, or None for plain ``mqtt``.

    ``ssl.create_default_context`` requires a certificate and checks the host name; without a
    ``cafile`` it loads the default CAs (which is where ``SSL_CERT_FILE`` is honoured).
    """
    if not settings.tls:
        return None
    if settings.tls_ca is not None and not Path(settings.tls_ca).is_file():
        raise ConnectError(settings.url, f"mqtt.tls_ca: {settings.tls_ca} is not a readable file")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.tls_ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.sslsocket_class = _ClosingSSLSocket
    return context


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails. paho drops the socket of a failed handshake
    without closing it: a daemon retrying against a bad certificate would leak one descriptor
    per attempt until the garbage collector ran."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def client_id(role: str, instance: str | None = None) -> str:
    """``guardbot-<instance>-<role>-<8 hex>`` (``guardbot-<role>-...`` without an instance)."""
    parts = ["guardbot", *([instance] if instance else []), role, secrets.token_hex(4)]
    return "-".join(parts)


def make_client(
    settings: BrokerSettings,
    *,
    role: str,
    instance: str | None = None,
    will: aiomqtt.Will | None = None,
    clean_session: bool | None = None,
    timeout: float | None = None,
) -> aiomqtt.Client:
    """A not yet connected client for ``settings`` (see the module docstring for the rules)."""
    return aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=client_id(role, instance),
        username=settings.username,
        password=settings.password if settings.username is not None else None,
        will=will,
        clean_session=clean_session,
        tls_context=tls_context(settings),
        timeout=settings.timeout if timeout is None else timeout,
        keepalive=settings.keepalive,
    )


class ConnectError(aiomqtt.MqttError):
    """The connection could not be set up; the message names the URL and, for TLS, what to
    check. A subclass of :class:`aiomqtt.MqttError`: reconnect loops retry it."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot connect to {url}: {reason}")


def describe_error(exc: BaseException) -> str:
    """One line for a log or a terminal: the error's text, or its type when it has none."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _connect_reason(settings: BrokerSettings, exc: BaseException) -> str:
    reason = describe_error(exc)
    if settings.tls and not isinstance(exc, aiomqtt.MqttCodeError):
        # Before a CONNACK, over TLS, the usual causes are a plaintext listener (the handshake
        # gets an EOF or garbage) or a certificate this machine does not trust.
        reason += (
            f" (TLS: is the listener at {settings.host}:{settings.port} a TLS listener, and is "
            f"its certificate valid for {settings.host!r} and signed by a CA that this machine "
            "trusts (system store, SSL_CERT_FILE) or that mqtt.tls_ca names?)"
        )
    return reason


@contextlib.asynccontextmanager
async def connection(
    settings: BrokerSettings,
    *,
    role: str,
    instance: str | None = None,
    will: aiomqtt.Will | None = None,
    clean_session: bool | None = None,
    timeout: float | None = None,
) -> AsyncIterator[aiomqtt.Client]:
    """A connected client; a failed connect raises :class:`ConnectError`. Leaving disconnects
    (DISCONNECT, so the broker drops the will) and lets an error of the DISCONNECT propagate."""
    client = make_client(
        settings,
        role=role,
        instance=instance,
        will=will,
        clean_session=clean_session,
        timeout=timeout,
    )
    try:
        await client.__aenter__()
    except ConnectError:
        raise
    except CONNECTION_ERRORS as exc:
        raise ConnectError(settings.url, _connect_reason(settings, exc)) from exc
    try:
        yield client
    finally:
        await client.__aexit__(None, None, None)


def connection_error(exc: BaseException) -> BaseException | None:
    """The connection error that ``exc`` is, or that a group of only such errors holds first."""
    if isinstance(exc, CONNECTION_ERRORS):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        match, rest = exc.split(CONNECTION_ERRORS)
        if match is not None and rest is None:
            leaf: BaseException = match
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            return leaf
    return None


async def reconnect_forever(
    session: Callable[[], Awaitable[bool]],
    *,
    stop: asyncio.Event,
    name: str,
    got_going: Callable[[], int],
    on_error: Callable[[str], None],
    sleep: Callable[[float], Awaitable[None]],
    random: Callable[[], float],
    fatal: Callable[[BaseException], bool] = lambda _exc: False,
) -> None:
    """Run ``session()`` until it returns True or ``stop`` is set; after a connection error,
    report it through ``on_error`` (and the log) and back off before the next try.

    ``got_going()`` is a counter that a session increases once it is connected and working; a
    session that raised it starts the backoff over. Errors outside :data:`CONNECTION_ERRORS`,
    and those ``fatal`` claims, propagate (also inside an :class:`ExceptionGroup`).
    """
    attempt = 0
    while not stop.is_set():
        before = got_going()
        done = False
        try:
            done = await session()
        except Exception as exc:
            error = connection_error(exc)
            if error is None or fatal(error):
                raise
            text = describe_error(error)
            on_error(text)
            _log.warning("%s: mqtt connection lost: %s", name, text)
        if done or stop.is_set():
            return
        if got_going() > before:
            attempt = 0
        delay = backoff_delay(attempt, random)
        attempt += 1
        await until_set(sleep(delay), stop)
