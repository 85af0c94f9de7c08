"""Why a connection failed, in one word an operator can act on: ``dns``, ``refused``, ``tls``,
``timeout``, ``reset`` or ``other``.

ccxt wraps the network error it met: the REST path chains it (``raise ExchangeNotAvailable(...)
from e``), the websocket client passes it as the argument (``NetworkError(e)``), and aiohttp keeps
the operating system's error in ``os_error`` / ``certificate_error``. :func:`root_cause` follows
all three; when the chain is lost (ccxt re-raising with only the text) it reads the text.
"""

from __future__ import annotations

import socket
import ssl
from typing import NamedTuple

__all__ = ["Cause", "root_cause"]

#: Text fragments by cause, for errors that kept only the message (checked in this order).
_TEXT: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "dns",
        (
            "name or service not known",
            "temporary failure in name resolution",
            "nodename nor servname",
            "getaddrinfo failed",
            "no address associated",
            "name resolution",
        ),
    ),
    ("refused", ("connection refused", "connect call failed")),
    (
        "tls",
        ("certificate verify failed", "[ssl", "sslerror", "ssl handshake", "wrong_version_number"),
    ),
    ("reset", ("connection reset", "broken pipe")),
    ("timeout", ("timed out", "timeout")),
)


class Cause(NamedTuple):
    """``kind`` (one of the words above) and ``detail``: the innermost error, ``Type: text``."""

    kind: str
    detail: str


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps, outermost first, each once."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 20:
        err = todo.pop(0)
        if any(err is s for s in seen):
            continue
        seen.append(err)
        for attr in ("certificate_error", "os_error", "__cause__", "__context__"):
            inner = getattr(err, attr, None)
            if isinstance(inner, BaseException):
                todo.append(inner)
        todo.extend(a for a in err.args if isinstance(a, BaseException))
    return seen


def _kind_of(err: BaseException) -> str | None:
    if isinstance(err, ssl.SSLError | ssl.CertificateError):
        return "tls"
    if isinstance(err, socket.gaierror):
        return "dns"
    if isinstance(err, ConnectionRefusedError):
        return "refused"
    if isinstance(err, ConnectionResetError | BrokenPipeError):
        return "reset"
    # ccxt's RequestTimeout, by name: this module does not import the exchange library.
    if isinstance(err, TimeoutError) or type(err).__name__ == "RequestTimeout":
        return "timeout"
    return None


def _describe(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text}"[:200] if text else type(err).__name__


def root_cause(exc: BaseException) -> Cause:
    """The cause of a failed connection (see the module docstring)."""
    chain = _chain(exc)
    for err in reversed(chain):  # the innermost error is the most specific
        kind = _kind_of(err)
        if kind is not None:
            return Cause(kind, _describe(err))
    for err in reversed(chain):
        text = str(err).lower()
        for kind, fragments in _TEXT:
            if any(f in text for f in fragments):
                return Cause(kind, _describe(err))
    return Cause("other", _describe(chain[-1]))
