"""Network addresses in one place: the ``host:port`` parser and the loopback check.

Used by the configuration (``metrics.listen``, ``mqtt.embedded_broker``), the metrics server, the
embedded broker and the daemon's start-up warnings, so a value the configuration accepts is a
value the server can bind, and "loopback" means the same everywhere.
"""

from __future__ import annotations

import ipaddress
import re

from guardbot.errors import ConfigError

__all__ = ["format_host_port", "is_loopback_host", "parse_host_port"]

#: One label of a host name (RFC 1123): letters, digits and inner hyphens, at most 63 long.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def is_loopback_host(host: str) -> bool:
    """``True`` for ``localhost`` and loopback IP literals (``127.0.0.0/8``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other host name: never assume it is local


def _is_hostname(host: str) -> bool:
    return len(host) <= 253 and all(_LABEL.fullmatch(part) for part in host.split("."))


def parse_host_port(text: str, *, key: str, example: str) -> tuple[str, int]:
    """``"host:port"`` to ``(host, port)``; IPv6 hosts in brackets (``"[::1]:9108"``).

    Port 0 asks for a free port. Raises :class:`ConfigError` naming ``key``; ``example`` is a good
    value shown in the message (``"127.0.0.1:9108"``).
    """
    example = f'e.g. "{example}" or "[::1]:{example.rpartition(":")[2]}"'
    value = text.strip()
    if not value:
        raise ConfigError(f"{key}: empty; give host:port, {example}")
    if "://" in value or "/" in value:
        raise ConfigError(f"{key}: {text!r} is not host:port (no scheme or path), {example}")
    if value.startswith("["):
        close = value.find("]")
        if close < 0 or value[close + 1 : close + 2] != ":":
            raise ConfigError(f"{key}: {text!r} needs the form [ipv6]:port, {example}")
        host, port_text = value[1:close], value[close + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{key}: {host!r} in brackets is not an IPv6 address") from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ConfigError(f"{key}: {text!r} has no port, {example}")
        if ":" in host:
            raise ConfigError(f"{key}: put an IPv6 address in brackets, e.g. [{host}]:{port_text}")
        if not host:
            raise ConfigError(
                f"{key}: {text!r} has no host; say which address to listen on, {example} "
                '("0.0.0.0:port" for every interface)'
            )
        if not _is_hostname(host):
            raise ConfigError(f"{key}: {host!r} is not an IP address or host name")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{key}: port {port_text!r} is not a number from 0 to 65535")
    return host, int(port_text)


def format_host_port(host: str, port: int) -> str:
    """``host:port`` as :func:`parse_host_port` reads it (IPv6 hosts in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
