"""``guardbot record``: write live ticks from a ccxt.pro exchange to JSON Lines for replay.

::

    guardbot record --exchange binanceusdm --symbols BTC/USDT:USDT,ETH/USDT:USDT \\
                    --out ticks.jsonl.gz [--duration SECONDS] [--count N]
                    [-c config.toml] [--ccxt-config JSON]

Each line is one merged tick exactly as the feed handed it to the engine
(docs/architecture.md §4), in the format :class:`~guardbot.feeds.replay.ReplayFeed` and
``guardbot simulate`` read::

    {"type":"tick","ts":1767571200000,"symbol":"BTC/USDT:USDT","mark":"60000.1","last":"60000",
     "bid":"59999.9","ask":"60000.2","index":"59998.7","fundingRate":"0.0001"}

Numbers are decimal strings, so a replay sees the very ``Decimal`` values the live feed produced.
A name ending in ``.gz`` is gzip-compressed; a name ending in ``.gbt`` gets tick columns
(:mod:`guardbot.formats.tickcolumns`: the same ticks, digit for digit, faster to load for long
replays; written when recording ends). The text file is flushed about once a second and closed
(gzip trailer written) on every way out: ``--count`` ticks written, ``--duration`` elapsed,
SIGINT/SIGTERM, or an error.

While the exchange is unreachable the feed keeps retrying with its backoff (0.5 s doubling to
30 s, jittered) until stopped; each change of the feed's health is reported on stderr. At the
end one summary line goes to stderr. Exit status: 0 when at least one tick was written, 1 when
none was (e.g. the exchange stayed unreachable for all of ``--duration``) or recording failed,
2 for bad arguments or a configuration the exchange refuses (unknown symbol).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import math
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TextIO

from guardbot.errors import ConfigError, GuardbotError, InputError
from guardbot.feeds.base import Feed, FeedRecovered, FeedStale, TickUpdate
from guardbot.formats import ticklines
from guardbot.formats.tickcolumns import ColumnsWriter

__all__ = [
    "RecordSummary",
    "StopReason",
    "add_arguments",
    "main",
    "record",
    "run_record",
    "tick_line",
]

COMMAND = "guardbot record"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: Seconds between flushes: bounds what a crash (SIGKILL, power loss) can lose, while keeping
#: gzip's compression (every flush ends a deflate block).
FLUSH_INTERVAL_S = 1.0

#: ccxt constructor keys that carry credentials: recording public prices needs none, and a
#: secret on the command line is visible to every local user (``ps``).
_CREDENTIAL_KEYS = frozenset({"apiKey", "secret", "password", "uid", "privateKey", "walletAddress"})

StopReason = Literal["count", "duration", "stop", "end"]

_STOP_TEXT: dict[StopReason, str] = {
    "count": "--count reached",
    "duration": "--duration elapsed",
    "stop": "stopped",
    "end": "the feed ended",
}


# -- the file format ---------------------------------------------------------------------------


def tick_line(update: TickUpdate) -> str:
    """One JSON Lines record (no newline) for ``update``; absent fields are left out."""
    return ticklines.tick_line(update.ts, update.tick)


def _open_output(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8", newline="\n")
    return path.open("w", encoding="utf-8", newline="\n")


# -- the recorder ------------------------------------------------------------------------------


@dataclass(slots=True)
class RecordSummary:
    """What :func:`record` did."""

    path: Path
    #: Ticks written per symbol (symbols passed to :func:`record` appear even with 0).
    ticks: Counter[str] = field(default_factory=Counter)
    stopped_by: StopReason = "stop"
    elapsed_s: float = 0.0
    #: Exact repeats of a symbol's previous tick (same ``ts``, same prices), not written.
    duplicates: int = 0
    #: The feed's last health problem (``FeedStale`` reason), if any.
    last_problem: str | None = None

    @property
    def total(self) -> int:
        return sum(self.ticks.values())

    def line(self) -> str:
        """The one-line summary for stderr."""
        per_symbol = ", ".join(f"{symbol} {n}" for symbol, n in self.ticks.items()) or "none"
        text = (
            f"wrote {self.total} tick{'s' if self.total != 1 else ''} to {self.path} "
            f"in {self.elapsed_s:.1f} s ({per_symbol}); {_STOP_TEXT[self.stopped_by]}"
        )
        if self.total == 0 and self.last_problem:
            text += f"; last feed problem: {self.last_problem}"
        return text


class _Writer:
    """The output file: line writes, periodic flush, close exactly once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # a .gbt name: tick columns (formats/tickcolumns.py), written at close
        self._columns = ColumnsWriter(path) if path.name.endswith(".gbt") else None
        self._file = _open_output(path) if self._columns is None else None
        self._dirty = False

    def write(self, line: str) -> None:
        if self._columns is not None:
            self._columns.write(line)
            return
        assert self._file is not None
        self._file.write(line + "\n")
        self._dirty = True

    def flush(self) -> None:
        if self._dirty and self._file is not None:
            self._file.flush()
            self._dirty = False

    def close(self) -> None:
        if self._columns is not None:
            self._columns.close()
            return
        assert self._file is not None
        # TextIOWrapper.close flushes and closes the GzipFile, which writes the gzip trailer.
        self._file.close()


async def record(
    feed: Feed,
    out_path: str | Path,
    *,
    count: int | None = None,
    duration: float | None = None,
    stop: asyncio.Event,
    symbols: Sequence[str] = (),
    notify: Callable[[str], None] | None = None,
    on_tick: Callable[[TickUpdate], None] | None = None,
    flush_interval: float = FLUSH_INTERVAL_S,
) -> RecordSummary:
    """Write the ticks of ``feed`` to ``out_path`` until ``count`` ticks, ``duration`` seconds,
    ``stop`` is set or the feed ends, whichever comes first.

    ``feed`` is entered and left here. ``notify`` receives one-line messages about the feed's
    health (unreachable, stale, recovered, first tick); ``on_tick`` each tick after it is written.
    The file is closed on every way out; an error of the feed or of the file propagates.
    Raises :class:`ValueError` for a ``count`` < 1 or a ``duration`` that is not > 0.
    """
    if count is not None and count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise ValueError(f"duration must be a positive number of seconds, got {duration}")
    say = notify if notify is not None else (lambda _message: None)
    summary = RecordSummary(Path(out_path), Counter(dict.fromkeys(symbols, 0)))
    started = time.monotonic()
    writer = _Writer(summary.path)
    try:
        async with feed:
            summary.stopped_by = await _run(
                feed, writer, summary, count, duration, stop, say, on_tick, flush_interval
            )
    finally:
        summary.elapsed_s = time.monotonic() - started
        writer.close()
    return summary


async def _run(
    feed: Feed,
    writer: _Writer,
    summary: RecordSummary,
    count: int | None,
    duration: float | None,
    stop: asyncio.Event,
    say: Callable[[str], None],
    on_tick: Callable[[TickUpdate], None] | None,
    flush_interval: float,
) -> StopReason:
    reached = asyncio.Event()
    consume = asyncio.create_task(
        _consume(feed, writer, summary, count, reached, say, on_tick), name="record:consume"
    )
    stopped = asyncio.create_task(stop.wait(), name="record:stop")
    counted = asyncio.create_task(reached.wait(), name="record:count")
    flusher = asyncio.create_task(_flush_every(writer, flush_interval), name="record:flush")
    tasks = (consume, stopped, counted, flusher)
    try:
        done, _ = await asyncio.wait(
            (consume, stopped, counted), timeout=duration, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in tasks:
            task.cancel()
        # Wait for them: cancelling the consumer inside the feed's ``updates()`` is what
        # closes the feed's own tasks (its TaskGroup lives in that generator).
        await asyncio.gather(*tasks, return_exceptions=True)
    if consume in done:
        consume.result()  # the feed's or the file's error, if any: it wins over every stop
        return "count" if counted in done else "end"
    if counted in done:
        return "count"
    return "stop" if stopped in done else "duration"


async def _consume(
    feed: Feed,
    writer: _Writer,
    summary: RecordSummary,
    count: int | None,
    reached: asyncio.Event,
    say: Callable[[str], None],
    on_tick: Callable[[TickUpdate], None] | None,
) -> None:
    """Write ticks until the feed ends; after ``count`` ticks set ``reached`` and write no more.

    It does not return at ``count``: it keeps waiting inside ``updates()`` so that the caller's
    cancellation lands in the feed's generator, which then unwinds like any cancelled code.
    Returning would leave the generator suspended at a ``yield``, to be closed by a
    GeneratorExit, which some feeds handle badly (see ``_close``).
    """
    previous: dict[str, TickUpdate] = {}
    updates = feed.updates()
    try:
        async for event in updates:
            if reached.is_set():
                continue
            if isinstance(event, TickUpdate):
                symbol = event.tick.symbol
                if previous.get(symbol) == event:
                    summary.duplicates += 1  # no information for a replay
                    continue
                previous[symbol] = event
                writer.write(tick_line(event))
                if summary.total == 0:
                    say("receiving ticks")
                summary.ticks[symbol] += 1
                if on_tick is not None:
                    on_tick(event)
                if count is not None and summary.total >= count:
                    reached.set()
            elif isinstance(event, FeedStale):
                summary.last_problem = event.reason
                if event.symbol is None:
                    say(f"feed problem: {event.reason}; retrying until stopped")
                else:
                    say(f"{event.symbol}: {event.reason}")
            elif isinstance(event, FeedRecovered):
                say("feed recovered" if event.symbol is None else f"{event.symbol}: recovered")
    finally:
        await _close(updates)


async def _close(updates: object) -> None:
    """Close the feed's generator in this task (a no-op when it already ended or was cancelled).

    Only an error in the loop's body (the file, ``on_tick``) gets here with the generator
    suspended at a ``yield``. A generator that holds a TaskGroup across its ``yield`` (e.g.
    ``async with CcxtFeed(...)`` inside it; ExchangeFeed enters it by hand to avoid this) turns
    the GeneratorExit into a BaseExceptionGroup. That group holds nothing but the close itself:
    drop it so that the body's error propagates.
    """
    aclose = getattr(updates, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except BaseExceptionGroup as group:
        _, rest = group.split(GeneratorExit)
        if rest is not None:
            raise


async def _flush_every(writer: _Writer, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        writer.flush()


# -- the command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``guardbot record``'s options to ``parser`` (the ``record`` sub-command's parser)."""
    parser.add_argument(
        "--exchange",
        metavar="ID",
        default=None,
        help="ccxt.pro exchange id, e.g. binanceusdm (default: [exchange] id of -c)",
    )
    parser.add_argument(
        "--symbols",
        metavar="S1,S2",
        default=None,
        help="comma-separated ccxt unified symbols (default: [exchange] symbols of -c)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        required=True,
        help="output, replaced if it exists: JSON Lines (gzip-compressed if it ends in .gz) "
        "or, ending in .gbt, tick columns (faster to replay)",
    )
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=None,
        help="TOML configuration: [exchange] id, symbols and [exchange.ccxt] options",
    )
    parser.add_argument(
        "--ccxt-config",
        metavar="JSON",
        default=None,
        help="ccxt constructor options as a JSON object, merged over [exchange.ccxt]",
    )
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", default=None, help="stop after SECONDS"
    )
    parser.add_argument(
        "--count", type=int, metavar="N", default=None, help="stop after N ticks (all symbols)"
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    exchange_id: str
    symbols: tuple[str, ...]
    options: dict[str, Any]
    out: Path
    count: int | None
    duration: float | None


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``, tables recursively (as ccxt merges ``urls``/``options``)."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def _parse_symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not symbols:
        raise InputError("--symbols", "must name at least one symbol, e.g. BTC/USDT:USDT")
    for symbol in symbols:
        if "/" not in symbol or any(c.isspace() for c in symbol):
            raise InputError(
                "--symbols", f"must be ccxt unified symbols like BTC/USDT:USDT, got {symbol!r}"
            )
    return symbols


def _parse_ccxt_config(text: str) -> dict[str, Any]:
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            "--ccxt-config", f"invalid JSON at column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(options, dict):
        raise InputError("--ccxt-config", f"must be a JSON object, got {type(options).__name__}")
    secrets = sorted(_CREDENTIAL_KEYS & set(options))
    if secrets:
        raise InputError(
            "--ccxt-config",
            f"{', '.join(secrets)}: recording public prices needs no credentials, and secrets "
            "on a command line are visible to other users",
        )
    return options


def _plan(args: argparse.Namespace) -> _Plan:
    """Validate the arguments; :class:`InputError` / :class:`ConfigError` name the bad one."""
    count: int | None = args.count
    if count is not None and count < 1:
        raise InputError("--count", f"must be a positive integer, got {count}")
    duration: float | None = args.duration
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise InputError("--duration", f"must be a positive number of seconds, got {duration}")

    exchange_id: str | None = args.exchange
    symbols: tuple[str, ...] | None = None
    options: dict[str, Any] = {}
    if args.config is not None:
        from guardbot.config import load_config

        section = load_config(args.config).exchange
        exchange_id = exchange_id or section.id
        symbols = tuple(section.symbols)
        options = section.ccxt_options()
    if exchange_id is None:
        raise InputError("--exchange", "is required (or give -c with an [exchange] section)")
    if args.symbols is not None:
        symbols = _parse_symbols(args.symbols)
    if not symbols:
        raise InputError("--symbols", "is required (or give -c with an [exchange] section)")
    if args.ccxt_config is not None:
        options = _merge(options, _parse_ccxt_config(args.ccxt_config))

    from guardbot.runtime.ccxt_lazy import install

    install()  # only the exchange modules used (guardbot.runtime.ccxt_lazy)
    import ccxt.pro

    if not isinstance(getattr(ccxt.pro, exchange_id, None), type):
        raise InputError(
            "--exchange",
            f"ccxt.pro has no exchange {exchange_id!r} (websocket support is needed; "
            "see ccxt.pro.exchanges)",
        )

    out = Path(args.out)
    if out.is_dir():
        raise InputError("--out", f"{out} is a directory")
    if not out.parent.is_dir():
        raise InputError("--out", f"directory {out.parent} does not exist")
    if not os.access(out if out.exists() else out.parent, os.W_OK):
        raise InputError("--out", f"cannot write {out} (permission denied)")
    return _Plan(exchange_id, symbols, options, out, count, duration)


def run_record(args: argparse.Namespace, *, err: TextIO | None = None) -> int:
    """Run ``guardbot record`` for parsed ``args`` (see :func:`add_arguments`); the exit status.

    Never raises for bad input: it writes one line ``guardbot record: <field>: <message>`` to
    ``err`` (stderr) and returns 2.
    """
    stream = err if err is not None else sys.stderr

    def say(message: str) -> None:
        stream.write(f"{COMMAND}: {' '.join(message.splitlines())}\n")
        stream.flush()

    try:
        plan = _plan(args)
    except GuardbotError as exc:
        say(str(exc))
        return EXIT_USAGE
    # The feed and ccxt log through logging/structlog; warnings only, on stderr (stdout stays
    # empty), and the progress lines below say what matters.
    from guardbot.runtime.logs import configure_logging

    configure_logging("console", "error", stream=stream)
    try:
        summary = asyncio.run(_record_live(plan, say))
    except (InputError, ConfigError) as exc:  # e.g. a symbol the exchange does not list
        say(str(exc))
        return EXIT_USAGE
    except OSError as exc:  # the file: open, write (disk full) or close
        say(f"--out: cannot write {plan.out} ({exc.strerror or type(exc).__name__})")
        return EXIT_FAILURE
    except GuardbotError as exc:  # e.g. the exchange refused to list its markets
        say(str(exc))
        return EXIT_FAILURE
    except Exception as exc:
        say(f"recording failed: {_describe(exc)}")
        return EXIT_FAILURE
    say(summary.line())
    return EXIT_OK if summary.total > 0 else EXIT_FAILURE


def _describe(exc: BaseException) -> str:
    """The first leaf of an exception group (the feed's TaskGroup), as ``Type: message``."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}".rstrip(": ")[:300]


async def _record_live(plan: _Plan, say: Callable[[str], None]) -> RecordSummary:
    from guardbot.feeds.exchange import ExchangeFeed, ccxt_factory

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not possible outside the main thread (or on Windows): Ctrl-C then raises
        # KeyboardInterrupt, which still closes the file through record()'s finally.
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        feed = ExchangeFeed(ccxt_factory(plan.exchange_id), plan.options, plan.symbols)
        return await record(
            feed,
            plan.out,
            count=plan.count,
            duration=plan.duration,
            stop=stop,
            symbols=plan.symbols,
            notify=say,
        )
    finally:
        for installed_signum in installed:
            loop.remove_signal_handler(installed_signum)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m guardbot.cli.record ARGS``: the sub-command on its own (same options)."""

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # one line and exit 2, like the guardbot CLI
            sys.stderr.write(f"{COMMAND}: {message} (see {self.prog} --help)\n")
            raise SystemExit(EXIT_USAGE)

    parser = _Parser(prog=COMMAND, description="Record live ticks to JSON Lines for replay.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    return run_record(args)


if __name__ == "__main__":
    sys.exit(main())
