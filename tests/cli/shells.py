"""Interactive bash and zsh on a pseudo-terminal, to test shell completion the way a user meets it.

The shell reads its own rc file (written here), which loads the completion as the README says and
binds Ctrl-X Ctrl-B to a widget that appends the edit buffer and ``END`` to a report file, then
empties the buffer. :meth:`Shell.complete` types a line, TAB and Ctrl-X Ctrl-B, and waits (bounded
poll on the report file, while draining the terminal so the shell never blocks on it) for ``END``.
Each rc file may also append ``M:<candidate>`` lines while completing, which :meth:`complete`
returns as the candidates offered.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Completion", "Shell", "bash_rc", "interactive", "zsh_rc"]

#: Ctrl-X Ctrl-B: the widget that reports the buffer.
REPORT_KEY = b"\x18\x02"
TIMEOUT_S = 30.0


class Completion:
    """What one TAB did: the candidates the completion offered, the line afterwards."""

    def __init__(self, candidates: list[str], line: str) -> None:
        self.candidates = candidates
        self.line = line

    def __repr__(self) -> str:
        return f"Completion({self.candidates!r}, {self.line!r})"


class Shell:
    def __init__(self, fd: int, pid: int, report: Path) -> None:
        self._fd = fd
        self._pid = pid
        self._report = report
        self.screen = bytearray()  # what the shell wrote to the terminal (for failure messages)

    def wait_for(self, marker: str) -> list[str]:
        """The report's lines once one of them is ``marker``, or TimeoutError after 30 s."""
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if ready:
                try:
                    self.screen += os.read(self._fd, 65536)
                except OSError:  # the shell is gone: its last lines decide
                    deadline = 0.0
            if self._report.exists():
                lines = self._report.read_text(encoding="utf-8").splitlines()
                if marker in lines:
                    return lines
        raise TimeoutError(
            f"no {marker!r} from the shell; its terminal: {bytes(self.screen[-2000:])!r}"
        )

    def complete(self, line: str, tabs: int = 1) -> Completion:
        self._report.write_text("", encoding="utf-8")
        os.write(self._fd, line.encode() + b"\t" * tabs + REPORT_KEY)
        lines = self.wait_for("END")
        candidates = [x[2:] for x in lines if x.startswith("M:")]
        [buffer] = [x[2:] for x in lines if x.startswith("B:")]
        return Completion(sorted(set(candidates)), buffer)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._fd, b"\x15exit\n")  # Ctrl-U: an empty line first
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                break
            ready, _, _ = select.select([self._fd], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):
                    os.read(self._fd, 65536)
        else:
            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
        os.close(self._fd)


@contextlib.contextmanager
def interactive(argv: list[str], env: dict[str, str], report: Path) -> Iterator[Shell]:
    """``argv`` (an interactive shell whose rc file appends ``READY`` to ``report``) on a pty."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: only exec (or exit) here
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    # A real size: zsh asks before listing more candidates than fit.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    shell = Shell(fd, pid, report)
    try:
        shell.wait_for("READY")
        yield shell
    finally:
        shell.close()


def zsh_rc(report: Path, fpath: Path, load: str) -> str:
    """A .zshrc: compinit with ``fpath`` first, then ``load``; ``compadd`` reports candidates."""
    return f"""
fpath=({fpath} $fpath)
autoload -Uz compinit && compinit -u -d {fpath.parent}/zcompdump
{load}
PS1='> '
LISTMAX=100000
unsetopt beep
# Every candidate a completion function adds, as the shell filters it by what was typed;
# compadd calls that only compute (-O, -A, -D) pass through untouched.
compadd() {{
    if [[ -n ${{(M)@:#-[OAD]*}} ]]; then builtin compadd "$@"; return; fi
    local -a __gb_hits
    builtin compadd -O __gb_hits "$@"
    (( $#__gb_hits )) && print -rl -- "M:"${{^__gb_hits}} >> {report}
    builtin compadd "$@"
}}
_gb_report() {{ print -r -- "B:$BUFFER" >> {report}; print -r -- END >> {report}; BUFFER= }}
zle -N _gb_report
bindkey '^X^B' _gb_report
print -r -- READY >> {report}
"""


def bash_rc(report: Path, load: str, wrap: bool) -> str:
    """A bash rc file: ``load``, then (``wrap``) ``_guardbot`` wrapped to report ``COMPREPLY``."""
    wrapper = ""
    if wrap:
        wrapper = f"""
eval "$(declare -f _guardbot | sed '1s/^_guardbot/__gb_original/')"
_guardbot() {{ __gb_original "$@"; printf 'M:%s\\n' "${{COMPREPLY[@]}}" >> {report}; }}
"""
    return f"""
{load}
{wrapper}
PS1='> '
bind 'set bell-style none'
__gb_report() {{
    printf 'B:%s\\nEND\\n' "$READLINE_LINE" >> {report}
    READLINE_LINE=
    READLINE_POINT=0
}}
bind -x '"\\C-x\\C-b": __gb_report'
echo READY >> {report}
"""
