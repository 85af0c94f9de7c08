"""A private Mosquitto broker on a free loopback port, per test.

Never the system broker on 1883: each test gets its own process, config and port. Without a
``mosquitto`` binary the tests skip, unless ``GUARDBOT_REQUIRE_MOSQUITTO=1`` (set in CI), which
turns the skip into a failure so that a broken CI image cannot pass silently.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_FALLBACK_BINARY = "/usr/sbin/mosquitto"
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


def _find_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    if os.access(_FALLBACK_BINARY, os.X_OK):
        return _FALLBACK_BINARY
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    """One broker process; :meth:`stop` and :meth:`start` keep the same port (fault tests)."""

    host = "127.0.0.1"

    def __init__(self, binary: str, directory: Path, *, persistent: bool = False) -> None:
        self.binary = binary
        self.port = _free_port()
        self.config = directory / "mosquitto.conf"
        # persistent: sessions and queued QoS 1 messages survive a stop/start (saved on SIGTERM),
        # so a persistent-session subscriber misses nothing across a broker restart.
        # Run as root, mosquitto drops to user "mosquitto", which cannot write its database
        # into the test's directory: stay the current user.
        persistence = (
            f"persistence true\npersistence_location {directory}/\nuser {getpass.getuser()}\n"
            if persistent
            else "persistence false\n"
        )
        self.config.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\n{persistence}",
            encoding="utf-8",
        )
        self.log = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the broker and return once its port accepts connections (or fail)."""
        if self.running:
            raise RuntimeError("mosquitto is already running")
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                pytest.fail(f"mosquitto exited with {self._process.returncode}: {self._log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(
                        f"mosquitto did not listen within {_START_TIMEOUT} s: {self._log_tail()}"
                    )
                time.sleep(0.02)  # poll interval, bounded by the deadline above

    def stop(self) -> None:
        """Terminate the broker (SIGTERM, then SIGKILL) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_TIMEOUT)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        except OSError:
            return "(no log)"


def _binary_or_skip() -> str:
    binary = _find_binary()
    if binary is None:
        reason = "mosquitto binary not found (PATH or /usr/sbin/mosquitto)"
        if os.environ.get("GUARDBOT_REQUIRE_MOSQUITTO") == "1":
            pytest.fail(reason + " and GUARDBOT_REQUIRE_MOSQUITTO=1")
        pytest.skip(reason)
    return binary


@pytest.fixture
def persistent_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that keeps sessions and queued messages across :meth:`Mosquitto.stop`/``start``."""
    directory = tmp_path / "persistent-broker"
    directory.mkdir()
    broker = Mosquitto(_binary_or_skip(), directory, persistent=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(_binary_or_skip(), tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
