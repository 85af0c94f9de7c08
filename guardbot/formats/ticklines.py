"""Tick lines: the one text form of a tick, written by ``guardbot record`` and the journal, read by
``guardbot replay``, ``guardbot simulate`` and the replay feed.

One JSON object per line (docs/contracts.md)::

    {"type":"tick","ts":1767225600000,"symbol":"BTC/USDT:USDT","mark":"59972.7","last":"59972.7",
     "bid":"59966.7","ask":"59978.7","index":"59980.1","fundingRate":"0.0001"}

``ts`` is an integer in milliseconds, the numbers are decimal strings (JSON numbers are accepted
too), everything but ``ts``, ``symbol`` and ``mark`` is optional and ``type`` may be left out.

Reading is exact and fast. :class:`TickDecoder` matches the line shape a writer keeps repeating
(the keys in the order above, numbers as plain decimal strings) with one regular expression
learnt from the first line of that shape, and turns each distinct number string into a
``Decimal`` once (prices repeat: last, bid and ask sit on the same few values). Anything else
(other key orders, JSON numbers, exponents, bad values) goes through the full JSON reader and
:func:`~guardbot.core.commands.parse_tick`, which accept every line the fast path accepts, give
the same tick for it, and word the errors.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from decimal import Decimal
from itertools import repeat
from pathlib import Path
from typing import IO, Any

from guardbot.core.commands import TickCmd, parse_tick
from guardbot.errors import InputError
from guardbot.formats.jsonio import EXACT_DECODER, loads_exact

__all__ = [
    "OPTIONAL_FIELDS",
    "PLAIN",
    "Row",
    "TickDecoder",
    "decode_rows",
    "open_ticks",
    "parse_ts",
    "read_ticks",
    "tick_body",
    "tick_line",
]

#: The optional fields of a tick line, in the order writers put them.
OPTIONAL_FIELDS = ("last", "bid", "ask", "index", "fundingRate")


# -- writing -----------------------------------------------------------------------------------


def tick_body(tick: TickCmd) -> dict[str, Any]:
    """A tick as an input line's object (``type``, ``symbol``, the prices; Decimals as they are):
    what the journal stores and ``parse_command`` reads back. Absent fields are left out."""
    body: dict[str, Any] = {"type": "tick", "symbol": tick.symbol, "mark": tick.mark}
    for key, value in zip(
        OPTIONAL_FIELDS,
        (tick.last, tick.bid, tick.ask, tick.index, tick.funding_rate),
        strict=True,
    ):
        if value is not None:
            body[key] = value
    return body


def tick_line(ts: int, tick: TickCmd) -> str:
    """One tick line (no newline), numbers in plain notation with every digit the exchange sent
    (``Decimal(text)`` gives back the same value; no ``1E-7``), in the order the fast path
    of :class:`TickDecoder` expects."""
    obj: dict[str, object] = {"type": "tick", "ts": ts}
    for key, value in tick_body(tick).items():
        if key != "type":
            obj[key] = format(value, "f") if isinstance(value, Decimal) else value
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# -- reading -----------------------------------------------------------------------------------


def parse_ts(raw: object) -> int:
    """A line's ``ts``: a whole number of milliseconds >= 0 (a JSON integer, or a Decimal with
    no fraction)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, Decimal)):
        raise InputError("ts", f"must be an integer number of milliseconds, got {raw!r}")
    if isinstance(raw, Decimal) and (not raw.is_finite() or raw != raw.to_integral_value()):
        raise InputError("ts", f"must be an integer number of milliseconds, got {raw}")
    ts = int(raw)
    if ts < 0:
        raise InputError("ts", f"must be >= 0, got {ts}")
    return ts


#: ``PLAIN(text)``: a number the fast path takes at a glance: up to 18 digits each side of an
#: optional dot (a funding rate may be negative), so that a value is within the input bounds
#: (1e-18 .. 1e18 in magnitude, or zero) by construction.
PLAIN = re.compile(r"-?\d{1,18}(?:\.\d{1,18})?\Z", re.ASCII).match
#: Symbols in ccxt's unified form take the fast path; any other string the full check.
_SYMBOL = r'"([A-Za-z0-9][A-Za-z0-9/:._-]*)"'
#: Loose on purpose (a cheap scan): each number is checked by ``PLAIN`` on first sight.
_NUMBER = r'"(-?[0-9.]{1,38})"'
_TS = r"(0|[1-9][0-9]{0,14})"

#: How many distinct number strings are kept (then the cache starts again).
_CACHE_LIMIT = 1 << 16


def _shape_pattern(typed: bool, present: tuple[bool, ...]) -> re.Pattern[str]:
    """The exact line shape with ``type`` first or not and the optional fields ``present``; an
    absent field is an empty group, so that every shape's groups line up."""
    parts = [r'\{"type":"tick",' if typed else r"\{", r'"ts":', _TS, r',"symbol":', _SYMBOL]
    parts += [r',"mark":', _NUMBER]
    for key, here in zip(OPTIONAL_FIELDS, present, strict=True):
        parts.append(f',"{key}":{_NUMBER}' if here else "()")
    parts.append(r"\}[ \t\n\r]*\Z")
    return re.compile("".join(parts), re.ASCII)


#: Any of the shapes above (slower than one exact shape): finds which shape a line has.
_ANY_SHAPE = re.compile(
    r'\{(?:"type":"tick",)?"ts":'
    + _TS
    + r',"symbol":'
    + _SYMBOL
    + r',"mark":'
    + _NUMBER
    + "".join(f'(?:,"{key}":{_NUMBER})?' for key in OPTIONAL_FIELDS)
    + r"\}[ \t\n\r]*\Z",
    re.ASCII,
).match


#: A tick as ``guardbot replay``'s loop takes it: ``(ts, symbol, mark, last, bid, ask, index,
#: fundingRate)``, absent fields None (``Engine.quote``'s arguments; no ``TickCmd`` is made).
Row = tuple[
    int,
    str,
    Decimal,
    Decimal | None,
    Decimal | None,
    Decimal | None,
    Decimal | None,
    Decimal | None,
]


def _no_shape(_text: str) -> None:
    """The shape matcher before a first line has taught one."""


class TickDecoder:
    """Tick lines to ``(ts, TickCmd)``; one decoder per file (it keeps the file's line shape and
    the number strings it has seen). Not thread-safe."""

    def __init__(self, *, typed: bool = False) -> None:
        #: ``typed``: the fast path takes only lines that say ``"type":"tick"`` (a stream of
        #: mixed commands, where a line without a type is an error).
        self._typed = typed
        self._prices: dict[str, Decimal] = {}  # only valid prices (> 0) go in
        self._rates: dict[str, Decimal] = {}
        self._shapes: dict[tuple[bool, tuple[bool, ...]], Callable[[str], Any]] = {}
        self._match: Callable[[str], Any] = _no_shape

    def _price(self, text: str) -> Decimal | None:
        """``text`` as a Decimal if it is a plain price (see ``PLAIN``; > 0), else None."""
        if text[0] == "-" or not PLAIN(text):
            return None
        value = Decimal(text)
        if not value:
            return None
        prices = self._prices
        if len(prices) >= _CACHE_LIMIT:
            prices.clear()
        prices[text] = value
        return value

    def _rate(self, text: str) -> Decimal | None:
        """``text`` as a Decimal if it is a plain funding rate (any sign, 0 too), else None."""
        value = self._rates.get(text)
        if value is None and PLAIN(text):
            rates = self._rates
            if len(rates) >= _CACHE_LIMIT:
                rates.clear()
            value = rates[text] = Decimal(text)
        return value

    def fast(self, text: str) -> tuple[int, TickCmd] | None:
        """The tick of a line of the common shape whose values are all plainly valid, or None
        (then :meth:`decode` decides, and words any error)."""
        row = self.fast_row(text)
        if row is None:
            return None
        ts, symbol, mark, last, bid, ask, index, funding = row
        return ts, TickCmd(symbol, mark, last, bid, ask, index, funding)

    def fast_row(self, text: str) -> Row | None:
        """:meth:`fast` as a :data:`Row` (``Engine.quote``'s arguments, no ``TickCmd``)."""
        match = self._match(text)
        if match is None:
            match = _ANY_SHAPE(text)
            if match is None or (self._typed and not text.startswith('{"type"')):
                return None
            self._learn(text, match)
        # an absent field is '' (an exact shape's empty group) or None (_ANY_SHAPE's)
        ts, symbol, mark_s, last_s, bid_s, ask_s, index_s, rate_s = match.groups()
        get = self._prices.get
        price = self._price
        mark = get(mark_s) or price(mark_s)
        if mark is None:
            return None
        last = bid = ask = index = funding = None
        if last_s:
            last = get(last_s) or price(last_s)
            if last is None:
                return None
        if bid_s:
            bid = get(bid_s) or price(bid_s)
            if bid is None:
                return None
        if ask_s:
            ask = get(ask_s) or price(ask_s)
            if ask is None:
                return None
        if index_s:
            index = get(index_s) or price(index_s)
            if index is None:
                return None
        if rate_s:
            funding = self._rate(rate_s)
            if funding is None:
                return None
        return int(ts), symbol, mark, last, bid, ask, index, funding

    def _learn(self, text: str, match: re.Match[str]) -> None:
        typed = text.startswith('{"type"')
        present = tuple(group is not None for group in match.groups()[3:])
        key = (typed, present)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = _shape_pattern(typed, present).match
        self._match = shape

    def decode(self, text: str) -> tuple[int, TickCmd]:
        """The tick of any valid line (fast path first); :class:`InputError` otherwise, its
        field relative to the line (``mark``, ``ts``, ...)."""
        fast = self.fast(text)
        return fast if fast is not None else self.full(text)

    @staticmethod
    def full(text: str) -> tuple[int, TickCmd]:
        """:meth:`decode` without the fast path: the full JSON reader and ``parse_tick``."""
        try:
            obj = EXACT_DECODER.decode(text)
        except (ValueError, RecursionError):
            obj = loads_exact(text, "", lines=False)  # raises the canonical InputError
        if not isinstance(obj, Mapping):
            raise InputError("", "must be a JSON object")
        ts = parse_ts(obj.get("ts"))
        return ts, parse_tick(obj)


def open_ticks(path: Path, raw: IO[bytes] | None = None) -> IO[str]:
    """A tick file for reading as text (gzip-compressed if the name ends in ``.gz``); ``raw``,
    the file opened in binary, lets the caller follow progress through ``raw.tell()``."""
    if path.name.endswith(".gz"):
        # a GzipFile given a file object leaves it open: the caller closes ``raw``
        packed = gzip.open(path, "rb") if raw is None else gzip.GzipFile(fileobj=raw, mode="rb")  # noqa: SIM115
        return io.TextIOWrapper(packed, encoding="utf-8")
    return io.TextIOWrapper(path.open("rb") if raw is None else raw, encoding="utf-8")


def decode_lines(lines: Iterable[str]) -> Generator[tuple[int, TickCmd], None, None]:
    """``(ts, tick)`` for each non-blank line; an error is an :class:`InputError` on
    ``line N``."""
    decoder = TickDecoder()
    fast = decoder.fast
    for number, text in enumerate(lines, start=1):
        tick = fast(text)
        if tick is not None:
            yield tick
            continue
        if not text.strip():
            continue
        try:
            tick = decoder.full(text)
        except InputError as exc:
            raise exc.under(f"line {number}") from None
        yield tick


#: Characters read at a time by :func:`decode_rows` (a few thousand lines).
_CHUNK = 1 << 19

#: Plain numbers for the bulk shape (``PLAIN``, checked by the pattern itself): prices without a
#: sign, funding rates with one.
_BULK_PRICE = r'"(\d{1,18}(?:\.\d{1,18})?)"'
_BULK_RATE = r'"(-?\d{1,18}(?:\.\d{1,18})?)"'


class _Names(dict[str, str]):
    """One string object per symbol: later look-ups by it compare by identity."""

    def __missing__(self, text: str) -> str:
        self[text] = text
        return text


def _bulk_shape(line: str) -> tuple[re.Pattern[str], tuple[bool, ...]] | None:
    """The multi-line pattern of ``line``'s shape (only its present fields have groups) and
    which optional fields are present; None when the line is not of a fast shape."""
    match = _ANY_SHAPE(line)
    if match is None:
        return None
    present = tuple(group is not None for group in match.groups()[3:])
    parts = [r'^\{"type":"tick",' if line.startswith('{"type"') else r"^\{", r'"ts":', _TS]
    parts += [r',"symbol":', _SYMBOL, r',"mark":', _BULK_PRICE]
    for key, here in zip(OPTIONAL_FIELDS, present, strict=True):
        if here:
            parts.append(f',"{key}":' + (_BULK_RATE if key == "fundingRate" else _BULK_PRICE))
    parts.append(r"\}[ \t\r]*$")
    return re.compile("".join(parts), re.ASCII | re.MULTILINE), present


def _lines_of(text: str) -> list[str]:
    """``text`` split after each newline (only there: a JSON string may hold other breaks)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines


def decode_rows(file: IO[str]) -> Iterator[Row]:
    """What :func:`decode_lines` reads, as :data:`Row` tuples, several thousand lines at a time.

    A chunk whose every line has the shape of the chunk's first line and plain values (the
    common case: one writer) is matched by one pattern over the whole chunk and its columns
    converted by look-ups in C (each distinct number string becomes a ``Decimal`` once); any
    other chunk goes line by line through :class:`TickDecoder` (the same ticks, the same
    errors, on the same line numbers).
    """
    decoder = TickDecoder()
    names = _Names()
    number = 0  # lines before this chunk
    rest = ""
    shape: tuple[re.Pattern[str], tuple[bool, ...]] | None = None
    while True:
        data = file.read(_CHUNK)
        text = rest + data
        if data:
            cut = text.rfind("\n") + 1
            if not cut:
                rest = text
                continue
            text, rest = text[:cut], text[cut:]
        elif not text:
            return
        count = text.count("\n") + (text[-1] != "\n")
        rows: list[Row] | None = None
        if shape is None:
            shape = _bulk_shape(text[: text.find("\n") + 1 or len(text)])
        if shape is not None:
            found = shape[0].findall(text)
            if len(found) == count:  # every line matched (each match is one whole line)
                # columns converted in C; Decimal(text) is exact, and cheaper than a cache
                # keyed by the text as soon as prices seldom repeat exactly (random walks)
                columns = iter(zip(*found, strict=True))
                stamps = map(int, next(columns))
                symbols = map(names.__getitem__, next(columns))
                values: list[Iterable[Decimal | None]] = []
                for key, here in zip(("mark", *OPTIONAL_FIELDS), (True, *shape[1]), strict=True):
                    if not here:
                        values.append(repeat(None))
                        continue
                    column = list(map(Decimal, next(columns)))
                    if key != "fundingRate" and not all(column):
                        break  # a zero price: line by line, which refuses it with its line
                    values.append(column)
                else:
                    rows = list(zip(stamps, symbols, *values, strict=False))  # all of count
            else:
                shape = None  # learn again from the next chunk's first line
        if rows is None:
            rows = []
            for offset, line in enumerate(_lines_of(text), start=number + 1):
                tick = decoder.fast(line)
                if tick is None:
                    if not line.strip():
                        continue
                    try:
                        tick = decoder.full(line)
                    except InputError as exc:
                        raise exc.under(f"line {offset}") from None
                ts, cmd = tick
                rows.append(
                    (ts, cmd.symbol, cmd.mark, cmd.last, cmd.bid, cmd.ask, cmd.index,
                     cmd.funding_rate)
                )  # fmt: skip
        yield from rows
        number += count
        if not data:
            return


def read_ticks(path: Path) -> Generator[tuple[int, TickCmd], None, None]:
    """``(ts, tick)`` for each line of a tick file (see :func:`decode_lines`); the file is
    closed when the generator is (or is exhausted)."""
    with open_ticks(path) as file:
        yield from decode_lines(file)
