"""Real filesystem faults for the store and daemon tests: a full disk and a read-only file.

Both work as root (CI runs as root, and root writes a 0o444 file anyway):

- :func:`small_tmpfs` mounts a tmpfs of a few MB where the database lives, and :func:`fill`
  takes its last free byte, so SQLite meets ENOSPC (``SQLITE_FULL``) through its own I/O. It
  needs CAP_SYS_ADMIN; where mounting is not permitted it yields None and the caller skips
  (the ``max_page_count`` test still covers the daemon path with a genuine ``SQLITE_FULL``).
- :func:`read_only` makes a file unwritable for this process: ``chmod 0o444`` when that is
  enough (not root), else ``chattr +i`` (immutable: refused even to root), else a read-only
  bind mount of its directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["fill", "read_only", "small_tmpfs"]


def _run(*argv: str) -> bool:
    if shutil.which(argv[0]) is None:
        return False
    done = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def small_tmpfs(path: Path, size_kib: int = 8192) -> Iterator[Path | None]:
    """A tmpfs of ``size_kib`` mounted on ``path`` (created), or None where not permitted."""
    path.mkdir(parents=True, exist_ok=True)
    if not _run("mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0700", "tmpfs", str(path)):
        yield None
        return
    try:
        yield path
    finally:
        # Lazily: a process that still has a file open there must not fail the teardown.
        _run("umount", "-l", str(path))


def fill(directory: Path, name: str = "filler") -> Path:
    """Take every free byte of ``directory``'s filesystem with one file; return it (delete it
    to give the space back). Unbuffered writes: the ENOSPC is met here, not at a later flush."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
        block = b"\0" * 4096
        for _ in range(free // len(block) + 16):  # bounded: the free space, and a margin
            try:
                os.write(fd, block)
            except OSError:
                break
        for size in (512, 64, 1):  # the last partial block
            try:
                while True:
                    os.write(fd, block[:size])
            except OSError:
                continue
    finally:
        os.close(fd)
    return path


def _chmod_is_enough(directory: Path) -> bool:
    probe = directory / ".chmod-probe"
    probe.write_text("")
    probe.chmod(0o444)
    try:
        with probe.open("a"):
            return False
    except PermissionError:
        return True
    finally:
        probe.chmod(0o644)
        probe.unlink()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[str]:
    """``path`` unwritable for this process (and its children) inside the block; yields how
    ("chmod", "chattr" or "bind mount")."""
    if _chmod_is_enough(path.parent):
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield "chmod"
        finally:
            path.chmod(mode)
        return
    if _run("chattr", "+i", str(path)):
        try:
            yield "chattr"
        finally:
            _run("chattr", "-i", str(path))
        return
    directory = str(path.parent)
    if _run("mount", "--bind", directory, directory):
        try:
            if not _run("mount", "-o", "remount,bind,ro", directory):
                raise RuntimeError(f"cannot remount {directory} read-only")
            yield "bind mount"
        finally:
            _run("umount", "-l", directory)
        return
    raise RuntimeError(f"cannot make {path} read-only here (chmod, chattr, bind mount all failed)")
