"""The step pipeline: every input is applied to the engine and journaled with its events and outbox
rows, in one step, before anything is published ("saved before published")."""

from __future__ import annotations

from typing import Any

import structlog

from guardbot.core.commands import TickCmd
from guardbot.core.events import Event, severity_of, to_jsonable

__all__ = ["tick_body"]

_log = structlog.get_logger("guardbot.daemon")


def tick_body(tick: TickCmd) -> dict[str, Any]:
    """A tick as the journal stores it: a ``tick`` input line that ``parse_command`` reads back."""
    body: dict[str, Any] = {"type": "tick", "symbol": tick.symbol, "mark": tick.mark}
    for key, value in (
        ("last", tick.last),
        ("bid", tick.bid),
        ("ask", tick.ask),
        ("index", tick.index),
        ("fundingRate", tick.funding_rate),
    ):
        if value is not None:
            body[key] = value
    return body


def _log_alert(event: Event) -> None:
    """Every alert in the log too, with its fields (after it is durable in the journal)."""
    severity = severity_of(event)
    fields = {k: v for k, v in to_jsonable(event).items() if k not in ("type", "severity")}
    if "level" in fields:  # structlog's own "level" key (info, warning, ...) would replace it
        fields["alertLevel"] = fields.pop("level")
    if severity in ("critical", "margin_call"):
        _log.error(str(event["type"]), severity=severity, **fields)
    elif severity == "warning":
        _log.warning(str(event["type"]), severity=severity, **fields)
    else:
        _log.info(str(event["type"]), severity=severity, **fields)
