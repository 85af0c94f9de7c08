"""``guardbot health``: the status verdict (pure), the database probe and the whole check against
a private Mosquitto where the test publishes the retained status itself.

Every wait is bounded: the broker waits by ``asyncio.timeout``, subprocesses by ``timeout=``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from guardbot.cli.health import (
    HealthReport,
    add_arguments,
    check_database,
    check_health,
    run_health,
)
from guardbot.config import Config, load_config
from guardbot.daemon.status import FeedStatus, evaluate_status, status_payload
from guardbot.errors import ConfigError, InputError
from guardbot.store.journal import DB_FILENAME, Journal
from tests.broker import Mosquitto

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "h1"
TOPIC = f"guardbot/{INSTANCE}/status"
LIMIT = 30.0
NOW_MS = 1_700_000_000_000


def status(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "state": "online",
        "ts": NOW_MS,
        "version": "0.1.0",
        "feeds": {
            "BTC/USDT:USDT": {"stale": False, "lastTs": NOW_MS - 200},
            "ETH/USDT:USDT": {"stale": False, "lastTs": NOW_MS - 300},
        },
        "outbox": {"depth": 0, "oldestAgeMs": None},
    }
    body.update(overrides)
    return body


def verdict(payload: object, **kwargs: Any) -> list[str]:
    text = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    options: dict[str, Any] = {"now_ms": NOW_MS, "max_outbox": 1000, "max_status_age": 30.0}
    options.update(kwargs)
    return evaluate_status(text, **options)


# --- the status verdict (no broker) ------------------------------------------------------------


def test_online_fresh_and_drained_is_healthy() -> None:
    assert verdict(status()) == []
    assert verdict(json.dumps(status()).encode()) == []


def test_degraded_names_the_stale_feeds() -> None:
    feeds = {
        "ETH/USDT:USDT": {"stale": True, "lastTs": NOW_MS - 60_000},
        "BTC/USDT:USDT": {"stale": True, "lastTs": None},
        "SOL/USDT:USDT": {"stale": False, "lastTs": NOW_MS},
    }
    assert verdict(status(state="degraded", feeds=feeds)) == [
        "daemon is degraded: stale feeds: BTC/USDT:USDT, ETH/USDT:USDT"
    ]
    assert verdict(status(state="degraded", feeds={})) == [
        "daemon is degraded (no stale feed named)"
    ]


def test_online_with_a_stale_feed_believes_the_feed() -> None:
    feeds = {"BTC/USDT:USDT": {"stale": True, "lastTs": None}}
    assert verdict(status(feeds=feeds)) == ["stale feeds: BTC/USDT:USDT"]


def test_offline_and_the_last_will() -> None:
    expected = ["daemon is offline (it stopped, or the broker lost its connection)"]
    assert verdict({"state": "offline"}) == expected  # the will carries nothing else
    assert verdict(status(state="offline")) == expected


def test_unknown_state() -> None:
    assert verdict(status(state="starting")) == [
        "unknown daemon state 'starting' (expected online)"
    ]
    assert verdict({k: v for k, v in status().items() if k != "state"}) == [
        "unknown daemon state None (expected online)"
    ]


def test_old_status() -> None:
    assert verdict(status(ts=NOW_MS - 30_000)) == []  # exactly the limit is still fresh
    [problem] = verdict(status(ts=NOW_MS - 45_000))
    assert problem.startswith("status is 45 s old (limit 30 s)")
    assert verdict(status(ts=NOW_MS - 45_000), max_status_age=60.0) == []
    assert verdict(status(ts=NOW_MS + 5_000)) == []  # a clock a little ahead is no problem


@pytest.mark.parametrize("ts", [None, "1700000000000", True, 1.7e12])
def test_bad_ts(ts: object) -> None:
    assert verdict(status(ts=ts)) == ["status has no valid ts (epoch milliseconds)"]


def test_outbox_depth_limit() -> None:
    assert verdict(status(outbox={"depth": 999, "oldestAgeMs": 5_000})) == []
    [problem] = verdict(status(outbox={"depth": 1000, "oldestAgeMs": 125_000}))
    assert problem == (
        "outbox holds 1000 unsent messages (limit 1000, oldest 125 s): "
        "alerts are not reaching the broker"
    )
    [problem] = verdict(status(outbox={"depth": 3, "oldestAgeMs": None}), max_outbox=3)
    assert problem.startswith("outbox holds 3 unsent messages (limit 3):")


@pytest.mark.parametrize("outbox", [None, {}, {"depth": -1}, {"depth": "5"}, [1]])
def test_bad_outbox(outbox: object) -> None:
    body = status(outbox=outbox) if outbox is not None else status()
    if outbox is None:
        del body["outbox"]
    assert verdict(body) == [
        "status has no valid outbox.depth (is the daemon older than this check?)"
    ]


def test_every_problem_is_reported() -> None:
    problems = verdict(
        status(
            state="degraded",
            feeds={"BTC/USDT:USDT": {"stale": True, "lastTs": None}},
            ts=NOW_MS - 120_000,
            outbox={"depth": 5000, "oldestAgeMs": 120_000},
        )
    )
    assert len(problems) == 3


def test_the_writer_and_the_reader_agree() -> None:
    feeds = {
        "BTC/USDT:USDT": FeedStatus(False, NOW_MS - 100),
        "ETH/USDT:USDT": FeedStatus(False, None),
    }
    body = status_payload(
        ts=NOW_MS, version="0.1.0", feeds=feeds, outbox_depth=0, outbox_oldest_age_ms=None
    )
    assert body == status(
        feeds={
            "BTC/USDT:USDT": {"stale": False, "lastTs": NOW_MS - 100},
            "ETH/USDT:USDT": {"stale": False, "lastTs": None},
        }
    )
    assert verdict(body) == []
    feeds["ETH/USDT:USDT"] = FeedStatus(True, NOW_MS - 60_000)
    body = status_payload(
        ts=NOW_MS, version="0.1.0", feeds=feeds, outbox_depth=2, outbox_oldest_age_ms=1500
    )
    assert body["state"] == "degraded"
    assert verdict(body) == ["daemon is degraded: stale feeds: ETH/USDT:USDT"]


@pytest.mark.parametrize("payload", ["", "not json", "[1, 2]", '"online"', b"\xff\xfe"])
def test_malformed_payload(payload: str | bytes) -> None:
    [problem] = verdict(payload)
    assert problem.startswith("malformed status payload")


# --- the database probe --------------------------------------------------------------------------


async def make_db(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    async with Journal.in_data_dir(data_dir, instance=INSTANCE):
        pass  # creates the file, switches to WAL, migrates the schema
    return data_dir / DB_FILENAME


async def test_database_writable(tmp_path: Path) -> None:
    db = await make_db(tmp_path / "data")
    assert check_database(db) is None


def test_database_missing_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "data" / DB_FILENAME
    problem = check_database(db)
    assert problem is not None
    assert problem.startswith(f"database {db} does not exist")
    assert not db.exists()


async def test_database_locked(tmp_path: Path) -> None:
    db = await make_db(tmp_path / "data")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        problem = check_database(db, busy_timeout=0.2)
        waited = time.monotonic() - started
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    assert problem is not None
    assert "not writable: database is locked" in problem
    assert "held the write lock" in problem
    assert waited < 5.0  # the short busy timeout, not sqlite's default


@contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with effective uid/gid 65534: root ignores file modes otherwise."""
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


async def test_database_read_only() -> None:
    # A directory everyone can enter (pytest's tmp_path is private to its owner), so that the
    # unprivileged probe meets the file's mode, not a closed directory.
    directory = Path(tempfile.mkdtemp(prefix="gb-health-"))
    try:
        directory.chmod(0o777)
        db = await make_db(directory / "data")
        (directory / "data").chmod(0o777)
        db.chmod(0o444)
        if os.geteuid() == 0:
            with as_nobody():
                problem = check_database(db)
        else:
            problem = check_database(db)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    assert problem is not None
    assert "not writable: attempt to write a readonly database" in problem
    assert "owner and mode" in problem


def test_database_damaged(tmp_path: Path) -> None:
    db = tmp_path / DB_FILENAME
    db.write_bytes(b"this is not a database file, just some text. " * 100)
    problem = check_database(db)
    assert problem is not None
    assert "file is not a database" in problem and "damaged" in problem


def test_database_of_something_else(tmp_path: Path) -> None:
    db = tmp_path / DB_FILENAME
    sqlite3.connect(db).close()  # an empty database: no guardbot schema
    problem = check_database(db)
    assert problem is not None
    assert "no such table: state" in problem and "not a guardbot database" in problem


async def test_probe_leaves_a_running_wal_writer_undisturbed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    async with Journal.in_data_dir(data_dir, instance=INSTANCE) as journal:
        await journal.commit_step(ts=1, kind="tick", body={"n": 1}, events=[], outbox=[])
        assert await asyncio.to_thread(check_database, data_dir / DB_FILENAME) is None
        await journal.commit_step(ts=2, kind="tick", body={"n": 2}, events=[], outbox=[])
        await journal.check_writable()
    with sqlite3.connect(data_dir / DB_FILENAME) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT COUNT(*) FROM inputs").fetchone() == (2,)
        assert conn.execute("SELECT key FROM state").fetchall() == []  # the probe rolled back
    conn.close()


# --- against a broker ------------------------------------------------------------------------


def write_config(tmp_path: Path, port: int, *, instance: str = INSTANCE) -> Path:
    path = tmp_path / "guardbot.toml"
    path.write_text(
        f"""
[guardbot]
instance = "{instance}"
data_dir = "{tmp_path / "data"}"

[feed]
mode = "sim"

[mqtt]
url = "mqtt://127.0.0.1:{port}"
embedded_broker = "never"
""",
        encoding="utf-8",
    )
    return path


async def publish_status(broker: Mosquitto, body: dict[str, Any] | str) -> None:
    payload = body if isinstance(body, str) else json.dumps(body)
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(TOPIC, payload, qos=1, retain=True)


def now_status(**overrides: Any) -> dict[str, Any]:
    return status(ts=int(time.time() * 1000), **overrides)


async def healthy_setup(broker: Mosquitto, tmp_path: Path) -> Config:
    config = load_config(write_config(tmp_path, broker.port), {})
    await make_db(tmp_path / "data")
    await publish_status(broker, now_status())
    return config


@pytest.mark.integration
async def test_healthy(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with asyncio.timeout(LIMIT):
        config = await healthy_setup(mosquitto, tmp_path)
        assert await check_health(config, timeout=5) == HealthReport(True, "healthy")


@pytest.mark.integration
async def test_degraded_offline_stale_and_backlog(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with asyncio.timeout(LIMIT):
        config = await healthy_setup(mosquitto, tmp_path)
        stale = {"ETH/USDT:USDT": {"stale": True, "lastTs": None}}
        await publish_status(mosquitto, now_status(state="degraded", feeds=stale))
        assert await check_health(config, timeout=5) == HealthReport(
            False, "daemon is degraded: stale feeds: ETH/USDT:USDT"
        )
        await publish_status(mosquitto, {"state": "offline"})
        report = await check_health(config, timeout=5)
        assert not report.healthy and report.reason.startswith("daemon is offline")
        await publish_status(mosquitto, status(ts=int(time.time() * 1000) - 120_000))
        report = await check_health(config, timeout=5, max_status_age=60)
        assert not report.healthy and "(limit 60 s)" in report.reason
        await publish_status(mosquitto, now_status(outbox={"depth": 7, "oldestAgeMs": 9000}))
        report = await check_health(config, timeout=5, max_outbox=5)
        assert report == HealthReport(
            False,
            "outbox holds 7 unsent messages (limit 5, oldest 9 s): "
            "alerts are not reaching the broker",
        )


@pytest.mark.integration
async def test_no_status_within_timeout(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, mosquitto.port), {})
    await make_db(tmp_path / "data")
    async with asyncio.timeout(LIMIT):
        report = await check_health(config, timeout=0.5)
    assert report == HealthReport(
        False,
        f"no status on {TOPIC} within 0.5 s (is the daemon running with instance 'h1' and "
        f"connected to mqtt://127.0.0.1:{mosquitto.port}, and may MQTT user (anonymous) "
        "read it?)",
    )


@pytest.mark.integration
async def test_other_instance_status_does_not_count(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with asyncio.timeout(LIMIT):
        await healthy_setup(mosquitto, tmp_path)  # publishes h1's status
        other = load_config(write_config(tmp_path, mosquitto.port, instance="h2"), {})
        report = await check_health(other, timeout=0.5)
    assert not report.healthy and report.reason.startswith("no status on guardbot/h2/status")


@pytest.mark.integration
async def test_database_problem_and_status_problem_together(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path, mosquitto.port), {})
    async with asyncio.timeout(LIMIT):
        await publish_status(mosquitto, {"state": "offline"})
        report = await check_health(config, timeout=5)
    db = tmp_path / "data" / DB_FILENAME
    assert report == HealthReport(
        False,
        "daemon is offline (it stopped, or the broker lost its connection); "
        f"database {db} does not exist (wrong data_dir, or the daemon never started there)",
    )


async def test_unreachable_broker(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        config = load_config(write_config(tmp_path, port), {})
        await make_db(tmp_path / "data")
        async with asyncio.timeout(LIMIT):
            report = await check_health(config, timeout=2)
    assert not report.healthy
    assert report.reason.startswith(f"cannot read the status from mqtt://127.0.0.1:{port}: ")


# --- the command -------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    args = parse()
    assert (args.config, args.timeout, args.max_outbox, args.max_status_age) == (
        None,
        5.0,
        1000,
        30.0,
    )


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (("--timeout", "0"), "--timeout"),
        (("--timeout", "nan"), "--timeout"),
        (("--max-status-age", "-1"), "--max-status-age"),
        (("--max-outbox", "0"), "--max-outbox"),
    ],
)
def test_bad_arguments(argv: tuple[str, ...], field: str) -> None:
    with pytest.raises(InputError) as info:
        run_health(parse(*argv))
    assert info.value.field == field


def test_bad_configuration_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[mqtt]\nurl = "http://x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"mqtt\.url"):
        run_health(parse("-c", str(path)))


@pytest.mark.integration
def test_run_health_prints_healthy(mosquitto: Mosquitto, tmp_path: Path) -> None:
    asyncio.run(healthy_setup(mosquitto, tmp_path))
    out = io.StringIO()
    assert run_health(parse("-c", str(tmp_path / "guardbot.toml")), env={}, out=out) == 0
    assert out.getvalue() == "healthy\n"


def run_module(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "guardbot.cli.health", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=LIMIT,
        check=False,
    )


@pytest.mark.integration
def test_exit_codes_of_the_command(mosquitto: Mosquitto, tmp_path: Path) -> None:
    asyncio.run(healthy_setup(mosquitto, tmp_path))
    config = str(tmp_path / "guardbot.toml")
    done = run_module("-c", config)
    assert (done.returncode, done.stdout, done.stderr) == (0, "healthy\n", "")

    asyncio.run(publish_status(mosquitto, {"state": "offline"}))
    done = run_module("-c", config, "--timeout", "3")
    assert done.returncode == 1
    assert done.stdout == (
        "unhealthy: daemon is offline (it stopped, or the broker lost its connection)\n"
    )
    assert done.stderr == ""

    done = run_module("-c", str(tmp_path / "missing.toml"))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("guardbot health: ")
    assert "cannot read the configuration file" in done.stderr
    assert len(done.stderr.splitlines()) == 1
