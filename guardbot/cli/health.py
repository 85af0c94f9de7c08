"""``guardbot health``: is a running daemon alive, fresh and able to persist? Exit 0 or 1.

For container ``HEALTHCHECK``\\ s, monitoring probes and operators. Two independent checks run
concurrently:

status
    Subscribes to the retained ``<prefix>/<instance>/status`` on the configured broker and
    needs it within ``--timeout`` seconds. Healthy iff its ``state`` is ``"online"``
    (``"degraded"`` names the stale feeds, ``"offline"`` is the daemon's clean stop or its last
    will), its ``ts`` is at most ``--max-status-age`` seconds old (the daemon republishes every
    5 s, so an old one means it hangs or lost the broker) and ``outbox.depth`` is below
    ``--max-outbox`` (alerts are piling up instead of reaching the broker).
database
    Opens ``<data_dir>/guardbot.db`` (never creates it), takes the write lock with
    ``BEGIN IMMEDIATE`` (short busy timeout), writes one probe row and rolls back. The daemon,
    a WAL writer, at most waits a few milliseconds for the lock; nothing is committed and the
    journal mode is not touched. A read-only file or mount, a full lock held by another process,
    a damaged file or a missing database is unhealthy.

Status payload (published by the daemon, built with :func:`guardbot.daemon.status.status_payload`)::

    {"state": "online", "ts": 1700000000000, "version": "0.1.0",
     "feeds": {"BTC/USDT:USDT": {"stale": false, "lastTs": 1700000000000}},
     "outbox": {"depth": 0, "oldestAgeMs": null}}

Output: ``healthy`` (exit 0) or one line ``unhealthy: <reason>[; <reason>...]`` (exit 1) on
stdout. Bad arguments raise :class:`~guardbot.errors.InputError` and a bad configuration
:class:`~guardbot.errors.ConfigError` (the command line turns both into exit 2).

Run it as the service user, with the service's environment (the broker password): under systemd
``systemd-run --pipe --wait -p User=guardbot -p EnvironmentFile=/etc/guardbot/guardbot.env
/opt/guardbot/venv/bin/guardbot health -c /etc/guardbot/guardbot.toml`` (see deploy/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TextIO

from guardbot.daemon.status import evaluate_status
from guardbot.errors import ConfigError, InputError
from guardbot.store.journal import sqlite_advice

if TYPE_CHECKING:
    from guardbot.config import Config

__all__ = [
    "DEFAULT_MAX_OUTBOX",
    "DEFAULT_MAX_STATUS_AGE",
    "DEFAULT_TIMEOUT",
    "HealthReport",
    "add_arguments",
    "check_database",
    "check_health",
    "main",
    "run_health",
]

COMMAND = "guardbot health"
EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1
EXIT_USAGE = 2

DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_OUTBOX = 1000
#: Six missed republishes (every 5 s) before the status counts as stale.
DEFAULT_MAX_STATUS_AGE = 30.0
#: How long the database probe waits for the daemon's write lock; a commit takes milliseconds.
DEFAULT_DB_BUSY_TIMEOUT = 2.0

#: The key the probe writes into ``state`` (and rolls back): never committed, never seen.
_PROBE_KEY = "guardbot.health.probe"


class HealthReport(NamedTuple):
    """The verdict: ``healthy`` and, when not, every problem found, ``; ``-separated."""

    healthy: bool
    reason: str


# --- the command line ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``health``'s options to ``parser`` (the ``guardbot health`` sub-parser)."""
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=None,
        help="the daemon's TOML configuration (broker, topics, data_dir)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_TIMEOUT,
        help=f"wait this long for the broker and the status (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-outbox",
        type=int,
        metavar="N",
        default=DEFAULT_MAX_OUTBOX,
        help=f"unhealthy at N or more unsent alerts (default {DEFAULT_MAX_OUTBOX})",
    )
    parser.add_argument(
        "--max-status-age",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_MAX_STATUS_AGE,
        help=f"unhealthy when the status is older (default {DEFAULT_MAX_STATUS_AGE:g})",
    )


def run_health(
    args: argparse.Namespace,
    *,
    env: Mapping[str, str] = os.environ,
    out: TextIO | None = None,
) -> int:
    """Load the configuration, check, print the verdict; return 0 (healthy) or 1.

    Raises :class:`InputError` for bad arguments and :class:`ConfigError` for a bad
    configuration: the caller reports them and exits 2.
    """
    from guardbot.config import load_config

    timeout = _positive("--timeout", args.timeout)
    max_status_age = _positive("--max-status-age", args.max_status_age)
    max_outbox = args.max_outbox
    if not isinstance(max_outbox, int) or max_outbox < 1:
        raise InputError("--max-outbox", f"must be a positive integer, got {max_outbox}")
    config = load_config(args.config, env)
    report = asyncio.run(
        check_health(config, timeout=timeout, max_outbox=max_outbox, max_status_age=max_status_age)
    )
    stream = out if out is not None else sys.stdout
    stream.write("healthy\n" if report.healthy else f"unhealthy: {_one_line(report.reason)}\n")
    stream.flush()
    return EXIT_HEALTHY if report.healthy else EXIT_UNHEALTHY


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m guardbot.cli.health``: the same command without the ``guardbot`` front end."""
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Check that a running guardbot daemon is healthy."
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_health(args)
    except (ConfigError, InputError) as exc:
        sys.stderr.write(f"{COMMAND}: {_one_line(str(exc))}\n")
        return EXIT_USAGE


def _positive(option: str, value: object) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(option, f"must be a positive number of seconds, got {value}")
    return float(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- the checks ------------------------------------------------------------------------------


async def check_health(
    config: Config,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_outbox: int = DEFAULT_MAX_OUTBOX,
    max_status_age: float = DEFAULT_MAX_STATUS_AGE,
    db_busy_timeout: float = DEFAULT_DB_BUSY_TIMEOUT,
    clock: Callable[[], float] = time.time,
) -> HealthReport:
    """Run the status and database checks concurrently; every problem goes into the reason."""
    from guardbot.store.journal import DB_FILENAME

    db_path = Path(config.guardbot.data_dir) / DB_FILENAME
    status_problems, db_problem = await asyncio.gather(
        _status_problems(config, timeout, max_outbox, max_status_age, clock),
        asyncio.to_thread(check_database, db_path, busy_timeout=min(db_busy_timeout, timeout)),
    )
    problems = [*status_problems, *([db_problem] if db_problem else [])]
    if problems:
        return HealthReport(False, "; ".join(problems))
    return HealthReport(True, "healthy")


async def _status_problems(
    config: Config,
    timeout: float,
    max_outbox: int,
    max_status_age: float,
    clock: Callable[[], float],
) -> list[str]:
    from guardbot.cli.alerts import broker_url
    from guardbot.mqtt.topics import status_topic

    topic = status_topic(config.mqtt.topic_prefix, config.guardbot.instance)
    url = broker_url(config)
    try:
        payload = await _read_retained(config, topic, timeout)
    except _NoStatus:
        return [
            f"no status on {topic} within {timeout:g} s "
            f"(is the daemon running with instance {config.guardbot.instance!r} and "
            f"connected to {url}, and may MQTT user {config.mqtt.username or '(anonymous)'} "
            "read it?)"
        ]
    except _BrokerFailure as exc:
        return [f"cannot read the status from {url}: {exc}"]
    return evaluate_status(
        payload,
        now_ms=int(clock() * 1000),
        max_outbox=max_outbox,
        max_status_age=max_status_age,
    )


class _NoStatus(Exception):
    """Connected, subscribed, but no retained status arrived in time."""


class _BrokerFailure(Exception):
    """The broker could not be reached or refused us; the message says why."""


async def _read_retained(config: Config, topic: str, timeout: float) -> bytes:
    """The first message on ``topic`` (the retained status) within ``timeout`` seconds."""
    import aiomqtt

    from guardbot.mqtt.client import BrokerSettings, ConnectError, connection, describe_error

    settings = BrokerSettings.from_section(config.mqtt)
    subscribed = False
    try:
        async with asyncio.timeout(timeout):
            # The client id carries a random part: a probe never takes over another session.
            async with connection(
                settings, role="health", instance=config.guardbot.instance, timeout=timeout
            ) as client:
                await client.subscribe(topic, qos=1)
                subscribed = True
                async for message in client.messages:
                    if message.topic.matches(topic):
                        return _payload_bytes(message.payload)
    except TimeoutError:
        if subscribed:
            raise _NoStatus from None
        raise _BrokerFailure(f"no answer within {timeout:g} s") from None
    except ConnectError as exc:
        raise _BrokerFailure(exc.reason) from None
    except aiomqtt.MqttError as exc:
        raise _BrokerFailure(describe_error(exc)) from None
    except OSError as exc:
        raise _BrokerFailure(exc.strerror or str(exc)) from None
    raise _BrokerFailure("the connection ended before the status arrived")


def _payload_bytes(payload: object) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return str(payload if payload is not None else "").encode("utf-8")


def check_database(path: Path, *, busy_timeout: float = DEFAULT_DB_BUSY_TIMEOUT) -> str | None:
    """Why the database at ``path`` cannot take a write now, or None if it can. Blocking.

    Never creates the file (``mode=rw``), never commits, never changes the journal mode.
    """
    if not path.exists():
        return f"database {path} does not exist (wrong data_dir, or the daemon never started there)"
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw",
            uri=True,
            timeout=busy_timeout,
            isolation_level=None,  # our own BEGIN/ROLLBACK, no implicit transactions
        )
    except sqlite3.Error as exc:
        return f"database {path}: cannot open: {exc} ({_db_advice(exc)})"
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # BEGIN IMMEDIATE alone succeeds on a read-only file: only a write finds out.
            conn.execute(
                "INSERT OR REPLACE INTO state (key, body, updated_ts) VALUES (?, '{}', 0)",
                (_PROBE_KEY,),
            )
        finally:
            # sqlite may have rolled back already (after some errors); then there is no
            # transaction left and ROLLBACK would replace the real error with its own.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"database {path}: not writable: {exc} ({_db_advice(exc)})"
    finally:
        conn.close()
    return None


def _db_advice(exc: sqlite3.Error) -> str:
    """The journal's advice, except where a probe beside a running daemon sees it differently."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return "another process held the write lock for too long; a stuck writer or a backup?"
    if "readonly" in text or "read-only" in text:
        return "check the file's and data_dir's owner and mode, and that the mount is writable"
    if "no such table" in text:
        return "not a guardbot database, or one never migrated; check data_dir"
    return sqlite_advice(exc)


if __name__ == "__main__":
    sys.exit(main())
