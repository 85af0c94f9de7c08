"""One daemon per ``data_dir``: an exclusive lock on ``<data_dir>/guardbot.lock``.

Two daemons on one database would interleave their inputs and reuse each other's alert ids
(SQLite serializes the writes but not the engines behind them). ``flock`` is released by the
kernel when the holder dies, ``kill -9`` included, so a stale lock never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from guardbot.errors import StoreError

__all__ = ["LOCK_FILENAME", "DataDirLock"]

LOCK_FILENAME = "guardbot.lock"


class DataDirLock:
    """Context manager holding the lock; :class:`StoreError` naming the file (and the holder's
    pid when it wrote one) if another process holds it."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / LOCK_FILENAME
        self._fd: int | None = None

    def __enter__(self) -> Self:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(self.path, f"cannot open the lock file: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            raise StoreError(
                self.path,
                "another guardbot daemon uses this data_dir"
                + (f" (pid {holder})" if holder else "")
                + "; stop it, or give this one another guardbot.data_dir",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # releases the lock
