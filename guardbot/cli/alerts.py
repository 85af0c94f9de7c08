"""``guardbot alerts``: follow a running daemon's alerts and status over MQTT.

Subscribes (QoS 1) to ``<prefix>/<instance>/alerts/#`` and ``<prefix>/<instance>/status`` on the
configured broker and prints one line per message: the raw payload with ``--json``, otherwise a
readable line (:func:`guardbot.formats.pretty.format_event`) prefixed with the topic's severity.

Exit status: 0 after ``--count`` alert messages or when ``--timeout`` elapses without ``--count``;
1 when ``--timeout`` elapses before ``--count`` is reached or the broker cannot be reached or the
connection drops (one line on stderr naming the URL); 130 on Ctrl-C. Bad arguments raise
:class:`~guardbot.errors.InputError` (the command line turns it into exit 2).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TextIO

from guardbot.errors import InputError

if TYPE_CHECKING:
    import aiomqtt

    from guardbot.config import Config

__all__ = ["render_message", "run_alerts"]

COMMAND = "guardbot alerts"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

#: Event fields that carry numbers as exact decimal strings on the wire (docs/contracts.md §3).
_NUMERIC_FIELDS = frozenset(
    {
        "amount",
        "contracts",
        "distancePercent",
        "fee",
        "insuranceFundDelta",
        "isolatedWallet",
        "leverage",
        "liquidationPrice",
        "loss",
        "marginRatio",
        "markPrice",
        "positionContracts",
        "price",
        "realizedPnl",
        "stopLossPrice",
        "takeProfitPrice",
        "threshold",
        "triggerPrice",
        "wallet",
    }
)


def run_alerts(
    config_path: str | None,
    *,
    json_mode: bool = False,
    count: int | None = None,
    timeout: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Load the configuration, follow the broker until done; return the exit status.

    Raises :class:`~guardbot.errors.InputError` for bad arguments and
    :class:`~guardbot.errors.ConfigError` for a bad configuration (both: exit 2).
    """
    import asyncio

    from guardbot.config import load_config

    if count is not None and count < 1:
        raise InputError("--count", f"must be a positive integer, got {count}")
    if timeout is not None and not timeout > 0:  # also refuses NaN
        raise InputError("--timeout", f"must be a positive number of seconds, got {timeout}")
    config = load_config(config_path)
    follower = _Follower(
        config,
        json_mode=json_mode,
        count=count,
        timeout=timeout,
        out=out if out is not None else sys.stdout,
        err=err if err is not None else sys.stderr,
    )
    return asyncio.run(follower.run())


def broker_url(config: Config) -> str:
    """The broker as ``scheme://host:port`` (never user information, even if the URL had it)."""
    from guardbot.mqtt.client import BrokerSettings

    return BrokerSettings.from_section(config.mqtt).url


@contextlib.asynccontextmanager
async def connected(config: Config, *, role: str = "alerts") -> AsyncIterator[aiomqtt.Client]:
    """A connected client for the configured broker, built by the one client factory
    (:mod:`guardbot.mqtt.client`: TLS for mqtts, credentials, a client id per ``role``).

    A failed connect raises :class:`_ConnectFailed` (``__cause__`` says why); leaving
    disconnects, ignoring a DISCONNECT that fails (the broker then drops the session itself).
    """
    import aiomqtt

    from guardbot.mqtt.client import BrokerSettings, ConnectError, connection

    settings = BrokerSettings.from_section(config.mqtt)
    session = connection(settings, role=role, instance=config.guardbot.instance)
    try:
        client = await session.__aenter__()
    except ConnectError as exc:
        raise _ConnectFailed from exc
    try:
        yield client
    finally:
        with contextlib.suppress(aiomqtt.MqttError, OSError):
            await session.__aexit__(None, None, None)


def payload_text(payload: object) -> str:
    """A message payload as text (aiomqtt types payloads loosely)."""
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload).decode("utf-8", errors="replace")
    return "" if payload is None else str(payload)


class _Follower:
    def __init__(
        self,
        config: Config,
        *,
        json_mode: bool,
        count: int | None,
        timeout: float | None,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self.config = config
        self.base = config.topic_base
        self.json_mode = json_mode
        self.count = count
        self.timeout = timeout
        self.out = out
        self.err = err
        self.url = broker_url(config)
        self.alerts_seen = 0
        self._last_status: str | None = None

    async def run(self) -> int:
        import asyncio
        import signal

        import aiomqtt

        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        interrupted = False

        def on_interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            if task is not None:
                task.cancel()

        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        try:
            async with asyncio.timeout(self.timeout) as deadline:
                await self._follow()
            return EXIT_OK
        except TimeoutError:
            if not deadline.expired():
                self._fail("timed out talking to the broker")
                return EXIT_FAILURE
            return EXIT_OK if self.count is None else EXIT_FAILURE
        except asyncio.CancelledError:
            if not interrupted:
                raise
            if task is not None:
                task.uncancel()
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            raise  # the command line silences stdout and exits 1
        except _ConnectFailed as exc:
            self._fail(f"cannot connect to {self.url}: {_reason(exc.__cause__)}")
            return EXIT_FAILURE
        except (aiomqtt.MqttError, OSError) as exc:
            self._fail(f"connection to {self.url} lost: {_reason(exc)}")
            return EXIT_FAILURE
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    async def _follow(self) -> None:
        async with connected(self.config) as client:
            await client.subscribe([(f"{self.base}/alerts/#", 1), (f"{self.base}/status", 1)])
            async for message in client.messages:
                line, is_alert = self.render(message.topic.value, payload_text(message.payload))
                if line is None:
                    continue
                self.out.write(line + "\n")
                self.out.flush()
                if is_alert:
                    self.alerts_seen += 1
                    if self.count is not None and self.alerts_seen >= self.count:
                        return

    def render(self, topic: str, raw: str) -> tuple[str | None, bool]:
        """The line to print for a message (None: not ours, or a status line that says what the
        last one said: the daemon republishes its status every few seconds) and whether it is
        an alert."""
        line, is_alert = render_message(self.base, topic, raw, json_mode=self.json_mode)
        if line is not None and not is_alert and not self.json_mode:
            if line == self._last_status:
                return None, False
            self._last_status = line
        return line, is_alert

    def _fail(self, message: str) -> None:
        self.err.write(f"{COMMAND}: {' '.join(message.splitlines())}\n")
        self.err.flush()


class _ConnectFailed(Exception):
    """The first connection to the broker failed (``__cause__`` says why)."""


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    from guardbot.mqtt.client import ConnectError

    if isinstance(exc, ConnectError):
        return exc.reason  # already says what to check (TLS)
    text = str(exc).strip()
    return text or type(exc).__name__


# --- rendering ----------------------------------------------------------------------------------


def render_message(base: str, topic: str, raw: str, *, json_mode: bool) -> tuple[str | None, bool]:
    """Render one message on ``topic`` under ``base``: (line or None, counts as an alert)."""
    if not topic.startswith(base + "/"):
        return None, False
    levels = topic[len(base) + 1 :].split("/")
    if levels == ["status"]:
        kind = "status"
    elif levels[0] == "alerts":
        kind = "alert"
    else:
        return None, False
    if json_mode:
        return " ".join(raw.splitlines()), kind == "alert"
    if kind == "status":
        return _render_status(raw), False
    severity = levels[1] if len(levels) > 1 and levels[1] else "unknown"
    return f"{severity.upper():<11} {_render_alert(raw)}", True  # MARGIN_CALL


def _render_status(raw: str) -> str:
    decoded = _decode(raw)
    if not isinstance(decoded, dict) or not isinstance(decoded.get("state"), str):
        return f"status: {_one_line(raw)} (malformed status payload)"
    line = f"status: {_one_line(decoded['state'])}"
    version = decoded.get("version")
    if version is not None:
        line += f" (version {_one_line(str(version))})"
    return line


def _render_alert(raw: str) -> str:
    decoded = _decode(raw)
    if not isinstance(decoded, dict):
        return f"{_one_line(raw)} (malformed payload: not a JSON object)"
    if not isinstance(decoded.get("type"), str):
        return f"{_one_line(raw)} (malformed payload: no event type)"
    text = decoded.get("text")
    if isinstance(text, str) and text.strip():
        # The daemon's sentence for people (every alert since the text field exists); the
        # exact values stay in the payload (--json).
        return _one_line(_format_with_text(decoded, text))
    try:
        return _one_line(_format(decoded))
    except Exception as exc:  # a payload that does not fit the event schema: print it raw
        return f"{_one_line(raw)} (malformed payload: {type(exc).__name__})"


def _format_with_text(event: Mapping[str, Any], text: str) -> str:
    from guardbot.formats.pretty import format_prefix

    return f"{format_prefix(event)} {text}"


def _format(event: Mapping[str, Any]) -> str:
    from guardbot.formats.pretty import format_event

    return format_event(_with_decimals(event))


def _with_decimals(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event with the known numeric fields (decimal strings on the wire) as Decimals."""
    converted: dict[str, Any] = {}
    for key, value in event.items():
        if key in _NUMERIC_FIELDS and isinstance(value, str):
            try:
                number = Decimal(value)
            except InvalidOperation:
                raise ValueError(f"{key}: not a number") from None
            if not number.is_finite():
                raise ValueError(f"{key}: not a finite number")
            value = number
        elif key in _NUMERIC_FIELDS and isinstance(value, (int, float, Decimal)):
            if isinstance(value, bool):
                raise ValueError(f"{key}: not a number")
            value = value if isinstance(value, Decimal) else Decimal(str(value))
        converted[key] = value
    return converted


def _decode(raw: str) -> object:
    try:
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, RecursionError):
        return None


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())
