"""systemd service notifications (``sd_notify(3)``) without libsystemd.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``, an ``AF_UNIX`` datagram socket (a
filesystem path, or an abstract-namespace name written with a leading ``@``). A service sends
newline-separated ``KEY=VALUE`` assignments to it: ``READY=1`` once it is up, ``STOPPING=1`` when
it begins to shut down, ``WATCHDOG=1`` as a keep-alive when ``WatchdogSec=`` is set, and
``STATUS=...`` as the one-line status ``systemctl status`` shows.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op, so the daemon calls these
unconditionally::

    notifier = Notifier.from_env()
    ...  # recover, start the tasks
    notifier.ready()
    group.create_task(watchdog_loop(notifier, healthy=daemon.is_healthy, stop=stop))
    await stop.wait()
    notifier.stopping()

Sending never raises: a notification that cannot be delivered is logged (structlog logger
``guardbot.daemon.sdnotify``) and the daemon carries on, because a missing status line must not take
down the process that guards the positions. Systemd notices real problems itself: no
``READY=1`` within ``TimeoutStartSec=``, or no ``WATCHDOG=1`` within ``WatchdogSec=``.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping

import structlog

__all__ = ["Notifier", "watchdog_loop"]

_log = structlog.get_logger("guardbot.sdnotify")

#: Field names systemd accepts: upper-case assignments like an environment block.
_FIELD = re.compile(r"[A-Z][A-Z0-9_]*\Z")

#: Largest datagram we send: systemd receives notifications into a PIPE_BUF (4096 byte) buffer
#: and ignores a longer message whole. A long STATUS text is cut to fit instead.
_MAX_DATAGRAM = 4096

#: What systemd passes to a Type=notify service (and ``unset=True`` removes).
_ENV_NAMES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _address(value: str) -> str | None:
    """The ``sendto`` address for ``$NOTIFY_SOCKET``, or None if it is not a usable form."""
    if value.startswith("@"):
        # Abstract namespace: the kernel name starts with a NUL byte instead of the '@'.
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # Relative paths and other forms ("vsock:...", systemd >= 254) are not ours to guess at.
    return None


class Notifier:
    """Sends ``sd_notify`` datagrams to one socket; a no-op when ``address`` is None.

    Build it with :meth:`from_env`. ``watchdog_usec`` is the ``WatchdogSec=`` timeout systemd
    passed (already checked against ``WATCHDOG_PID``), or None when the watchdog is off.
    """

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self._raw_address = address
        self._address = _address(address) if address else None
        self._watchdog_usec = watchdog_usec
        if address and self._address is None:
            _log.warning(
                "NOTIFY_SOCKET is not an absolute path or @abstract name; notifications off",
                notify_socket=address,
            )

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] = os.environ,
        *,
        pid: int | None = None,
        unset: bool = False,
    ) -> Notifier:
        """A notifier for ``$NOTIFY_SOCKET`` in ``env`` (``pid``: ours, for ``WATCHDOG_PID``).

        ``unset=True`` removes the three variables from ``env`` (when it is mutable, like
        ``os.environ``) once read, as ``sd_notify(unset_environment=1)`` does, so that a child
        process cannot notify in our name or believe the watchdog is its job.
        """
        address = env.get("NOTIFY_SOCKET") or None
        notifier = cls(
            address, watchdog_usec=_watchdog_usec(env, os.getpid() if pid is None else pid)
        )
        if unset and isinstance(env, MutableMapping):
            for name in _ENV_NAMES:
                env.pop(name, None)
        return notifier

    def __repr__(self) -> str:
        return f"Notifier(address={self._raw_address!r}, watchdog_usec={self._watchdog_usec})"

    @property
    def enabled(self) -> bool:
        """Whether notifications go anywhere (systemd started us with ``Type=notify``)."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """The watchdog timeout in seconds (``WatchdogSec=``), or None when it is off.

        Send :meth:`watchdog` at least every half of it, as ``sd_watchdog_enabled(3)`` advises:
        a ping that arrives just late is as fatal as none.
        """
        if not self.enabled or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 1_000_000

    # -- the well-known messages ----------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up is complete (systemd then reports the unit active)."""
        return self.notify(READY=1, STATUS=status or None)

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown has begun (systemd stops expecting watchdog pings)."""
        return self.notify(STOPPING=1, STATUS=status or None)

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping."""
        return self.notify(WATCHDOG=1)

    def status(self, text: str) -> bool:
        """``STATUS=<text>``: the free-form line shown by ``systemctl status``."""
        return self.notify(STATUS=text)

    def extend_timeout(self, seconds: float, status: str | None = None) -> bool:
        """``EXTEND_TIMEOUT_USEC``: ask for ``seconds`` more before start (or stop) times out.

        For a long recovery: each call pushes the ``TimeoutStartSec=`` deadline to ``seconds``
        from now, so a large journal does not get the unit killed half way through its replay.
        ``status`` goes in the same datagram (``STATUS=``).
        """
        return self.notify(EXTEND_TIMEOUT_USEC=max(0, int(seconds * 1_000_000)), STATUS=status)

    def notify(self, **fields: str | int | bool | None) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; ``None`` values are left out.

        Keys are the systemd names (``READY``, ``STATUS``, ``MAINPID``...), case-insensitive here.
        Newlines in a value are replaced by spaces: each line is one assignment, so a newline
        would smuggle in another one. Returns True if the datagram was sent, False if
        notifications are off or sending failed (logged, never raised).
        """
        lines: list[str] = []
        for key, value in fields.items():
            name = key.upper()
            if not _FIELD.match(name):
                raise ValueError(f"sd_notify field name must be A-Z, 0-9 or _, got {key!r}")
            if value is None:
                continue
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            lines.append(f"{name}={' '.join(text.splitlines())}")
        if self._address is None or not lines:
            return False
        data = ("\n".join(lines) + "\n").encode("utf-8", errors="replace")
        if len(data) > _MAX_DATAGRAM:
            # Cut on a character boundary: systemd ignores text that is not valid UTF-8.
            head = data[: _MAX_DATAGRAM - 1].decode("utf-8", errors="ignore")
            data = head.encode("utf-8") + b"\n"
        return self._send(data)

    def _send(self, data: bytes) -> bool:
        assert self._address is not None
        try:
            # A socket per message, as libsystemd does: a ping every few seconds costs nothing,
            # and there is no descriptor to leak or to hand to child processes.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                # Non-blocking: a stalled service manager must not freeze the event loop; a
                # full receive queue then fails this one datagram (EAGAIN) instead.
                sock.setblocking(False)
                sock.sendto(data, self._address)
        except OSError as exc:
            _log.warning(
                "cannot send a systemd notification; is NOTIFY_SOCKET still valid?",
                notify_socket=self._raw_address,
                message=data.decode("utf-8", errors="replace").strip(),
                error=f"{type(exc).__name__}: {exc}",
            )
            return False
        return True


def _watchdog_usec(env: Mapping[str, str], pid: int) -> int | None:
    """``WATCHDOG_USEC`` if it is set, positive and meant for ``pid``; else None."""
    usec = env.get("WATCHDOG_USEC")
    if not usec:
        return None
    watchdog_pid = env.get("WATCHDOG_PID")
    if watchdog_pid:
        # Set by systemd to the main PID; a child that inherited the environment must not
        # think the watchdog is its job.
        try:
            if int(watchdog_pid) != pid:
                return None
        except ValueError:
            _log.warning("ignoring WATCHDOG_PID: not a number", watchdog_pid=watchdog_pid)
            return None
    try:
        value = int(usec)
    except ValueError:
        _log.warning("ignoring WATCHDOG_USEC: not a number of microseconds", watchdog_usec=usec)
        return None
    return value if value > 0 else None


async def watchdog_loop(
    notifier: Notifier,
    healthy: Callable[[], bool],
    stop: asyncio.Event,
    *,
    interval: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Send ``WATCHDOG=1`` every ``interval`` seconds while ``healthy()`` holds, until ``stop``.

    ``interval`` defaults to half of :meth:`Notifier.watchdog_interval`; without a watchdog the
    coroutine returns at once. That this loop runs at all shows the event loop is responsive;
    ``healthy`` adds the daemon's own judgement (feeds fresh, journal writable). While it is
    false no ping is sent, so systemd kills and restarts the unit once ``WatchdogSec=`` passes
    — the restart is the remedy for a daemon that is alive but no longer guarding anything.
    An exception from ``healthy`` counts as unhealthy (and is logged) rather than ending the loop.
    """
    if interval is None:
        timeout = notifier.watchdog_interval()
        if timeout is None:
            return
        interval = timeout / 2
    if not interval > 0:
        raise ValueError(f"watchdog interval must be > 0 seconds, got {interval}")
    was_healthy = True
    while not stop.is_set():
        due = clock() + interval
        try:
            async with asyncio.timeout(interval):
                await stop.wait()
            return
        except TimeoutError:
            pass
        late = clock() - due
        if late > interval / 2:
            # The loop could not run this task on time: something blocked the event loop.
            _log.warning("event loop stalled; watchdog ping late", late_s=round(late, 3))
        try:
            ok = bool(healthy())
        except Exception as exc:
            _log.error("watchdog health check failed", error=f"{type(exc).__name__}: {exc}")
            ok = False
        if ok:
            notifier.watchdog()
            if not was_healthy:
                _log.info("healthy again; watchdog pings resumed")
        elif was_healthy:
            _log.warning(
                "unhealthy; withholding watchdog pings (systemd restarts the unit after "
                "WatchdogSec= without one)"
            )
        was_healthy = ok
