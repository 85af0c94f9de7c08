"""Issue 16 ask 4: a full disk and a read-only database end the daemon with exit 1 and one error
line naming the database; nothing acknowledged is lost and nothing unjournaled is applied.

What the daemon does (README "State and restarts", docs/contracts.md §5): the first write that
fails ends it, the status goes ``offline`` (published on the way out, or the broker's last will),
and ``guardbot run`` prints ``guardbot run: <data_dir>/guardbot.db: <what>: <sqlite error> —
<what to do>`` and exits 1. The input in hand was applied to the engine in memory only: it is
not journaled, not published (alerts come from the journal's outbox; account snapshots are taken
under the step lock) and not answered (a command gets no reply), and the process that held it
is gone. After the space is freed (or the file made writable) a restart rebuilds the state from
the journal and delivers the alerts still unsent. A second daemon on the same ``data_dir`` exits
1 naming the lock file (here end to end; in-process: tests/daemon/test_pipeline.py).

- :func:`test_disk_full_max_page_count`: the daemon in-process, ``PRAGMA max_page_count`` on its
  connection gives a genuine ``SQLITE_FULL`` from SQLite's pager on the real commit path; runs
  everywhere (no mount needed).
- :func:`test_disk_full_end_to_end`: ``guardbot run`` as a user runs it (stand-in Binance, real
  Mosquitto) with its data_dir on a small tmpfs that the test fills (needs CAP_SYS_ADMIN; CI runs
  as root).
- :func:`test_read_only_database_and_second_daemon_end_to_end`: the database file made
  read-only (as root: immutable, ``chattr +i``; tests/fsfaults.py), then a second daemon.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from guardbot.daemon.service import Daemon, guardbot_error
from guardbot.errors import StoreError
from guardbot.feeds.base import FeedEvent, TickUpdate
from guardbot.store.journal import DB_FILENAME
from guardbot.store.lock import LOCK_FILENAME
from tests.broker import Mosquitto
from tests.daemon.test_daemon import SEED, EventFeed, Subscriber, config_for, journal_rows
from tests.daemon.test_e2e import (
    BASE,
    TOKEN,
    DaemonProcess,
    Mqtt,
    fill_ids,
    order,
    positions_shown,
    prices,
    restarted,
    snapshot,
    started_with_positions,
    write_config,
)
from tests.fsfaults import fill, read_only, small_tmpfs
from tests.standin.binance import StandinBinance

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
#: Marks for SEED's 0.4 BTC long at 25x on 1,000 USDT: margin ratio about 0.55 and 0.30, across
#: the 0.5 alert level and back past its hysteresis, so that every tick raises an alert
#: (journaled with its outbox rows).
SWING = ("57950", "58300")


class TrackedFeed(EventFeed):
    """Remembers the last tick it handed to the daemon: the one in hand when a commit fails."""

    last: TickUpdate | None = None

    async def updates(self) -> AsyncIterator[FeedEvent]:
        async for event in super().updates():
            if isinstance(event, TickUpdate):
                self.last = event
            yield event


def _error_lines(log: str) -> list[str]:
    """The one-line reports of ``guardbot run`` (the JSON log lines are the daemon's log)."""
    return [line for line in log.splitlines() if line.startswith("guardbot run: ")]


async def test_disk_full_max_page_count(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The daemon stops on ``SQLITE_FULL`` in the middle of a stream of alerting ticks: every
    alert published is journaled, the failed tick is not, and a restart delivers the rest."""
    config = config_for(tmp_path, mosquitto)
    db = tmp_path / "data" / DB_FILENAME
    feed = TrackedFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED)
    topics = ["guardbot/t1/alerts/#", "guardbot/t1/status"]
    async with asyncio.timeout(60), Subscriber(mosquitto, topics) as sub:
        task = asyncio.create_task(daemon.run(asyncio.Event()))
        await daemon.ready.wait()
        await sub.until(lambda t, p: t.endswith("/status") and p["state"] == "online")
        journal = daemon.pipeline.journal
        assert journal is not None and journal._conn is not None
        conn = journal._conn
        row = await (await conn.execute("PRAGMA page_count")).fetchone()
        assert row is not None
        # The database may not grow by one page: the next page an input needs is refused by
        # SQLite's pager with SQLITE_FULL, as on a full disk.
        await conn.execute(f"PRAGMA max_page_count = {int(row[0])}")
        for n in range(400):  # bounded: a few pages of alerts at most
            feed.push(SWING[n % len(SWING)])
            await asyncio.wait([task], timeout=0.02)
            if task.done():
                break
        assert task.done(), "the daemon kept running on a full database"
        with pytest.raises(BaseException) as info:
            await task
        await sub.until(lambda t, p: t.endswith("/status") and p["state"] == "offline")
    error = guardbot_error(info.value)
    assert isinstance(error, StoreError), info.value
    assert error.path == db
    assert "database or disk is full" in str(error)
    assert "free space on the data_dir filesystem" in str(error)
    # Nothing unjournaled was applied where anyone could see it: every alert published is in
    # the journal with the same payload, and the tick in hand was not stored.
    stored = {
        alert_id: json.loads(payload)
        for alert_id, payload in journal_rows(
            tmp_path / "data", "SELECT alert_id, payload FROM outbox WHERE topic LIKE '%/alerts/%'"
        )
    }
    assert sub.alerts(), "the scenario must publish alerts before the database fills"
    for payload in sub.alerts():
        assert stored[payload["alertId"]] == payload
    assert feed.last is not None
    assert journal_rows(
        tmp_path / "data", f"SELECT COUNT(*) FROM inputs WHERE ts = {feed.last.ts}"
    ) == [(0,)]
    unsent = journal_rows(tmp_path / "data", "SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL")
    # Restart (a new connection: no page limit): the rest of the outbox is delivered.
    again = Daemon(config, feed_factory=lambda _c: EventFeed())
    stop = asyncio.Event()
    async with asyncio.timeout(30), Subscriber(mosquitto, topics[:1]) as late:
        task = asyncio.create_task(again.run(stop))
        await again.ready.wait()
        if unsent != [(0,)]:
            await late.until(lambda t, _p: "/alerts/" in t)
        stop.set()
        assert await task == 0
    assert journal_rows(tmp_path / "data", "SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL") == [
        (0,)
    ]


async def _exit_status(daemon: DaemonProcess, timeout: float = 60) -> int:
    assert daemon.process is not None
    return await asyncio.wait_for(daemon.process.wait(), timeout)


async def test_disk_full_end_to_end(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinance
) -> None:
    """``guardbot run`` on a tmpfs that fills up: a command arriving then is not applied, not
    answered, and ends the daemon with exit 1 and one line naming the database; once space is
    back a restart has the state from before it and the same command is applied once."""
    with small_tmpfs(tmp_path / "data", 8192) as mnt:
        if mnt is None:
            pytest.skip(
                "mounting a tmpfs is not permitted here; test_disk_full_max_page_count covers "
                "SQLITE_FULL in the daemon"
            )
        db = mnt / DB_FILENAME
        daemon = DaemonProcess(write_config(tmp_path, mosquitto, standin))
        try:
            async with asyncio.timeout(180), Mqtt(mosquitto) as mqtt:
                await started_with_positions(daemon, mqtt, standin)
                await positions_shown(mqtt)
                # The snapshots now show both positions; then the disk fills.
                filler = fill(mnt)
                before = {a: snapshot(mqtt, a) for a in ("main", "keep")}
                mark = len(mqtt.messages)
                request_id = uuid.uuid4().hex
                body = {"token": TOKEN, **order("main", "m2", BTC, "buy", "0.01")}
                await mqtt.client.publish(
                    f"{BASE}/cmd", json.dumps({**body, "requestId": request_id}), qos=1
                )
                assert await _exit_status(daemon) == 1, daemon.tail()
                await mqtt.wait(
                    lambda t, p: t.endswith("/status") and p["state"] == "offline", start=mark
                )
                assert not any(t.endswith(f"/reply/{request_id}") for t, _ in mqtt.messages)
                (line,) = _error_lines(daemon.tail())
                assert str(db) in line and "database or disk is full" in line, line
                assert "free space on the data_dir filesystem" in line
                # Nothing of the command reached the journal.
                filler.unlink()
                bodies = [b for (b,) in journal_rows(mnt, "SELECT body FROM inputs")]
                assert not any('"m2"' in b for b in bodies)
                # Space is back: the restart has the state from before the command, and the
                # same command is now applied (once).
                assert await restarted(daemon, mqtt) == before
                await prices(standin, "60000")  # fresh after the restart, whatever the load
                reply = await mqtt.command_when_priced(order("main", "m2", BTC, "buy", "0.01"))
                assert reply["ok"], reply
                assert await daemon.stop(signal.SIGTERM) == 0, daemon.tail()
        finally:
            await daemon.kill_if_running()
        assert sorted(fill_ids(mnt)) == ["k1", "m1", "m2"]
        assert journal_rows(mnt, "SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL") == [(0,)]
        journaled = {
            a
            for (a,) in journal_rows(
                mnt, "SELECT alert_id FROM outbox WHERE topic LIKE '%/alerts/%'"
            )
        }
        assert {p["alertId"] for p in mqtt.alerts()} == journaled


async def test_read_only_database_and_second_daemon_end_to_end(
    tmp_path: Path, mosquitto: Mosquitto, standin: StandinBinance
) -> None:
    """A read-only database: ``guardbot run`` exits 1 at start with one line naming it, before
    it publishes anything; writable again, the daemon starts with its state. A second daemon
    on the same data_dir exits 1 naming the lock file; the first goes on."""
    data = tmp_path / "data"
    db = data / DB_FILENAME
    config = write_config(tmp_path, mosquitto, standin)
    daemon = DaemonProcess(config)
    second = DaemonProcess(config)
    try:
        async with asyncio.timeout(180), Mqtt(mosquitto) as mqtt:
            await started_with_positions(daemon, mqtt, standin)
            await positions_shown(mqtt)
            # A second daemon on the same data_dir while the first runs.
            second.log = tmp_path / "second.log"
            await second.start()
            assert await _exit_status(second) == 1, second.tail()
            (line,) = _error_lines(second.tail())
            assert str(data / LOCK_FILENAME) in line
            assert "another guardbot daemon uses this data_dir" in line
            # still served; a fresh price first: on a loaded machine the second daemon's start
            # can outlast stale_after_s since the stand-in's last quote
            await prices(standin, "60000")
            reply = await mqtt.command_when_priced(order("main", "m2", BTC, "buy", "0.01"))
            assert reply["ok"], reply
            await mqtt.wait(
                lambda t, p: t.endswith("/accounts/main") and len(p["positions"]) == 1
                and p["positions"][0]["contracts"] == "0.31",
            )  # fmt: skip
            before = {a: snapshot(mqtt, a) for a in ("main", "keep")}
            assert await daemon.stop(signal.SIGTERM) == 0, daemon.tail()
            inputs = journal_rows(data, "SELECT COUNT(*) FROM inputs")

            with read_only(db) as how:
                mark = len(mqtt.messages)
                await daemon.start()
                assert await _exit_status(daemon) == 1, (how, daemon.tail())
                (line,) = _error_lines(daemon.tail()[-2000:])
                assert str(db) in line and "not writable" in line, (how, line)
                assert "read-only" in line
                assert not any(
                    t.endswith("/status") and p["state"] == "online"
                    for t, p in mqtt.messages[mark:]
                )
            assert journal_rows(data, "SELECT COUNT(*) FROM inputs") == inputs

            assert await restarted(daemon, mqtt) == before
            assert await daemon.stop(signal.SIGTERM) == 0, daemon.tail()
    finally:
        for process in (daemon, second):
            await process.kill_if_running()
