"""guardbot.daemon.sdnotify against real AF_UNIX datagram sockets bound by the test.

The "service manager" here is a socket the test binds; every assertion is on the datagrams it
receives. Waits are bounded by ``asyncio.timeout`` and driven by datagrams arriving, not sleeps.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
from structlog.testing import capture_logs

from guardbot.daemon.sdnotify import Notifier, watchdog_loop

LIMIT = 5.0


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes; pytest's tmp_path can be longer than that.
    path = Path(tempfile.mkdtemp(prefix="gb-sdn-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def manager(short_dir: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd, and its NOTIFY_SOCKET value."""
    path = short_dir / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(LIMIT)
    try:
        yield sock, str(path)
    finally:
        sock.close()


@pytest.fixture
def abstract_manager() -> Iterator[tuple[socket.socket, str]]:
    name = f"guardbot-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(LIMIT)
    try:
        yield sock, "@" + name
    finally:
        sock.close()


def recv(sock: socket.socket) -> str:
    return sock.recv(65536).decode("utf-8")


def assert_nothing_pending(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        with pytest.raises(BlockingIOError):
            sock.recv(65536)
    finally:
        sock.settimeout(LIMIT)


# --- without systemd -----------------------------------------------------------------------------


def test_no_notify_socket_is_a_no_op() -> None:
    notifier = Notifier.from_env({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.stopping() is False
    assert notifier.watchdog() is False
    assert notifier.status("x") is False
    assert notifier.watchdog_interval() is None


def test_empty_notify_socket_is_a_no_op() -> None:
    assert not Notifier.from_env({"NOTIFY_SOCKET": ""}).enabled


def test_watchdog_without_notify_socket_is_off() -> None:
    # WATCHDOG_USEC alone is useless: the pings would have nowhere to go.
    assert Notifier.from_env({"WATCHDOG_USEC": "30000000"}).watchdog_interval() is None


def test_relative_socket_is_refused_with_a_warning() -> None:
    with capture_logs() as logs:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "run/notify"})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert any("NOTIFY_SOCKET" in entry["event"] for entry in logs)


# --- the messages --------------------------------------------------------------------------------


def test_ready_stopping_watchdog_on_a_path_socket(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier.enabled
    assert notifier.ready() is True
    assert recv(sock) == "READY=1\n"
    assert notifier.watchdog() is True
    assert recv(sock) == "WATCHDOG=1\n"
    assert notifier.stopping() is True
    assert recv(sock) == "STOPPING=1\n"


def test_abstract_socket(abstract_manager: tuple[socket.socket, str]) -> None:
    sock, address = abstract_manager
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address})
    assert notifier.ready("recovered 12 inputs") is True
    assert recv(sock) == "READY=1\nSTATUS=recovered 12 inputs\n"
    assert notifier.watchdog() is True
    assert recv(sock) == "WATCHDOG=1\n"


def test_status_and_fields(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier(address)
    notifier.status("feeds: 2/2 fresh")
    assert recv(sock) == "STATUS=feeds: 2/2 fresh\n"
    notifier.stopping("draining the outbox")
    assert recv(sock) == "STOPPING=1\nSTATUS=draining the outbox\n"
    notifier.notify(mainpid=1234, STATUS=None, reloading=True)
    assert recv(sock) == "MAINPID=1234\nRELOADING=1\n"
    notifier.extend_timeout(90)
    assert recv(sock) == "EXTEND_TIMEOUT_USEC=90000000\n"
    notifier.extend_timeout(60, status="recovering: 5000 inputs read")
    assert recv(sock) == "EXTEND_TIMEOUT_USEC=60000000\nSTATUS=recovering: 5000 inputs read\n"


def test_a_newline_cannot_inject_a_field(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier(address)
    notifier.status("first line\nREADY=1")
    assert recv(sock) == "STATUS=first line READY=1\n"


def test_oversize_status_is_cut(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier(address)
    notifier.status("x" * 10_000)
    received = recv(sock)
    assert received.startswith("STATUS=xxx")
    assert received.endswith("\n")
    assert len(received) <= 4096


def test_oversize_status_is_cut_on_a_character_boundary(
    manager: tuple[socket.socket, str],
) -> None:
    sock, address = manager
    Notifier(address).status("€" * 3000)  # 3 bytes each
    received = sock.recv(65536)
    assert len(received) <= 4096
    assert received.decode("utf-8").endswith("€\n")


def test_nothing_to_send_sends_nothing(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier(address)
    assert notifier.notify(STATUS=None) is False
    assert_nothing_pending(sock)


def test_bad_field_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="field name"):
        Notifier("/nonexistent").notify(**{"NOT-A-KEY": 1})


def test_send_error_is_logged_not_raised(short_dir: Path) -> None:
    notifier = Notifier(str(short_dir / "gone"))
    with capture_logs() as logs:
        assert notifier.ready() is False
        assert notifier.watchdog() is False
    assert len(logs) == 2
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["message"] == "READY=1"
    assert "FileNotFoundError" in logs[0]["error"]


def test_socket_that_disappears_later(short_dir: Path) -> None:
    path = short_dir / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    notifier = Notifier(str(path))
    assert notifier.ready() is True
    sock.close()
    path.unlink()
    with capture_logs():
        assert notifier.watchdog() is False


# --- WATCHDOG_USEC / WATCHDOG_PID ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4243"}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "abc"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "500000"}, 0.5),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": "/run/x", **env}, pid=4242)
    assert notifier.watchdog_interval() == expected


def test_unset_removes_the_variables_once_read() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "2000000", "OTHER": "kept"}
    notifier = Notifier.from_env(env, unset=True)
    assert notifier.enabled
    assert notifier.watchdog_interval() == 2.0
    assert env == {"OTHER": "kept"}
    frozen = MappingProxyType({"NOTIFY_SOCKET": "/run/x"})
    assert Notifier.from_env(frozen, unset=True).enabled  # read-only mapping: left alone


def test_watchdog_pid_defaults_to_our_pid() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(env).watchdog_interval() == 1.0


# --- watchdog_loop -------------------------------------------------------------------------------


async def next_datagram(sock: socket.socket) -> str:
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(LIMIT):
        data = await loop.sock_recv(sock, 65536)
    return data.decode("utf-8")


async def test_watchdog_loop_pings_while_healthy(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    notifier = Notifier(address)
    stop = asyncio.Event()
    task = asyncio.create_task(watchdog_loop(notifier, lambda: True, stop, interval=0.01))
    for _ in range(3):
        assert await next_datagram(sock) == "WATCHDOG=1\n"
    stop.set()
    async with asyncio.timeout(LIMIT):
        await task


async def test_watchdog_loop_withholds_pings_while_unhealthy(
    manager: tuple[socket.socket, str],
) -> None:
    sock, address = manager
    notifier = Notifier(address)
    answers = [False, False, False]
    calls = 0
    stop = asyncio.Event()

    def healthy() -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("feed state unavailable")  # counts as unhealthy
        if answers:
            return answers.pop(0)
        stop.set()  # the loop pings for this answer, then ends
        return True

    with capture_logs() as logs:
        async with asyncio.timeout(LIMIT):
            await watchdog_loop(notifier, healthy, stop, interval=0.01)
    assert calls == 5
    # Exactly one ping for five checks: none was sent for the four unhealthy ones.
    assert await next_datagram(sock) == "WATCHDOG=1\n"
    assert_nothing_pending(sock)
    events = [entry["event"] for entry in logs]
    assert any(event.startswith("unhealthy; withholding") for event in events)
    assert "watchdog health check failed" in events
    assert any(event.startswith("healthy again") for event in events)


async def test_watchdog_loop_uses_half_the_watchdog_timeout(
    manager: tuple[socket.socket, str],
) -> None:
    sock, address = manager
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "20000"})
    stop = asyncio.Event()
    ticks: list[float] = []
    loop = asyncio.get_running_loop()

    def healthy() -> bool:
        ticks.append(loop.time())
        return True

    task = asyncio.create_task(watchdog_loop(notifier, healthy, stop))
    assert await next_datagram(sock) == "WATCHDOG=1\n"
    assert await next_datagram(sock) == "WATCHDOG=1\n"
    stop.set()
    async with asyncio.timeout(LIMIT):
        await task
    assert ticks[1] - ticks[0] >= 0.009  # 10 ms: half of WATCHDOG_USEC=20000


async def test_watchdog_loop_without_watchdog_returns_at_once() -> None:
    stop = asyncio.Event()
    async with asyncio.timeout(LIMIT):
        await watchdog_loop(Notifier.from_env({}), lambda: True, stop)
    assert not stop.is_set()


async def test_watchdog_loop_stops_promptly(manager: tuple[socket.socket, str]) -> None:
    sock, address = manager
    stop = asyncio.Event()
    task = asyncio.create_task(watchdog_loop(Notifier(address), lambda: True, stop, interval=3600))
    await asyncio.sleep(0)  # let it start waiting
    stop.set()
    async with asyncio.timeout(LIMIT):
        await task
    assert_nothing_pending(sock)


async def test_watchdog_loop_refuses_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        await watchdog_loop(Notifier(None), lambda: True, asyncio.Event(), interval=0)


async def test_watchdog_loop_reports_a_stalled_event_loop(
    manager: tuple[socket.socket, str],
) -> None:
    sock, address = manager
    now = [0.0]

    def clock() -> float:
        # Every reading jumps 10 s: the loop seems to wake far later than due.
        now[0] += 10.0
        return now[0]

    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(
            watchdog_loop(Notifier(address), lambda: True, stop, interval=0.01, clock=clock)
        )
        assert await next_datagram(sock) == "WATCHDOG=1\n"
        stop.set()
        async with asyncio.timeout(LIMIT):
            await task
    assert any(entry["event"].startswith("event loop stalled") for entry in logs)
