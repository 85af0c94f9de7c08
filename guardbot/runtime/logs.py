"""Logging for the daemon: structlog, JSON lines for machines, a console renderer for humans.

:func:`configure_logging` sets up structlog *and* the standard :mod:`logging` root handler (the
MQTT publisher and the feeds log through :mod:`logging`), so both end up in one stream in one
format. Every event dict passes :func:`redact_secrets` first: a value under a key named
``token``, ``password``, ``secret`` or ``apiKey`` (at any depth, any case) is replaced by
``"**********"`` before it is rendered.

Console logs are for people: a number with more than 8 decimals (a liquidation price or a margin
ratio computed to 40 digits) is shown to 8 significant digits there (:func:`round_for_people`).
JSON logs keep every value exact, for machines.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from decimal import Decimal
from typing import Any, TextIO

import structlog
from structlog.typing import Processor

__all__ = ["REDACTED", "SECRET_KEYS", "configure_logging", "redact_secrets", "round_for_people"]

#: What a secret value is replaced with.
REDACTED = "**********"

#: Keys whose values never reach a log line (compared case-insensitively).
SECRET_KEYS = frozenset({"token", "password", "secret", "apikey", "api_key"})

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and k.lower() in SECRET_KEYS else _redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: hide the values of secret-named keys, recursively."""
    for key in list(event_dict):
        if key.lower() in SECRET_KEYS:
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(event_dict[key])
    return event_dict


#: A decimal string with more decimals than a person reads (events carry exact strings).
_LONG_DECIMAL = re.compile(r"-?\d+\.\d{9,}\Z")
_SIGNIFICANT = 8


def _people(value: Decimal) -> str:
    if not value.is_finite() or value.is_zero():
        return str(value)
    places = max(0, _SIGNIFICANT - 1 - value.adjusted())
    text = f"{value.quantize(Decimal(1).scaleb(-places)):f}" if places else f"{value:.0f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def round_for_people(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor (console only): long decimals to 8 significant digits."""
    for key, value in event_dict.items():
        if isinstance(value, Decimal):
            event_dict[key] = _people(value)
        elif isinstance(value, str) and _LONG_DECIMAL.match(value):
            event_dict[key] = _people(Decimal(value))  # the pattern is a valid decimal
    return event_dict


def use_json(log_format: str, stream: TextIO) -> bool:
    """JSON for ``json``, console for ``console``; ``auto``: JSON unless ``stream`` is a TTY."""
    if log_format == "json":
        return True
    if log_format == "console":
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure_logging(
    log_format: str = "auto", log_level: str = "info", *, stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger to write to ``stream`` (stderr).

    ``log_format`` is ``auto``, ``json`` or ``console``; ``log_level`` one of ``debug``, ``info``,
    ``warning``, ``error``, ``critical``. Calling it again replaces the previous configuration.
    """
    out = sys.stderr if stream is None else stream
    try:
        level = _LEVELS[log_level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {log_level!r}") from None
    as_json = use_json(log_format, out)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Processor
    if as_json:
        renderer = structlog.processors.JSONRenderer()
        final: list[Processor] = [structlog.processors.dict_tracebacks, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        final = [round_for_people, renderer]
    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), *final],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
