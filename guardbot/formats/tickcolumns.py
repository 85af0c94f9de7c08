"""Tick columns: a binary recording format that loads several times faster than JSON Lines.

``guardbot record --out FILE.gbt`` writes it and ``guardbot replay --ticks FILE.gbt`` reads it
(any name: the file's first bytes say what it is). It holds what the tick lines hold, digit for
digit: every number is kept as the decimal string the exchange sent, and each distinct string
becomes a ``Decimal`` once when the file is read, checked by the same rules as a tick line.

Why not JSON Lines for long replays: reading a line costs a match of its shape, a dictionary
look-up per number and the checks, all per tick; here the per-tick work is reading integers
out of arrays. Why not a columnar library (Parquet, Arrow, npz): they would add a dependency
for what is five integer arrays and two string tables, and none of them keeps decimal strings
exact without a conversion pass of its own. Layout (little-endian)::

    b"GBTICKS1\\n"
    one line of JSON: {"rows": N, "symbols": [...], "numbers": [...], "columns": [...]}
    ts      int64  x N                       epoch milliseconds
    symbol  uint32 x N                       index into "symbols"
    mark, last, bid, ask, index, fundingRate: uint32 x N each
                                             0 = absent, k = "numbers"[k - 1]
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Generator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from guardbot.core.commands import TickCmd, parse_tick
from guardbot.errors import InputError
from guardbot.formats.ticklines import OPTIONAL_FIELDS, PLAIN, Row, TickDecoder

__all__ = ["MAGIC", "ColumnsWriter", "is_columns_file", "read_columns", "read_rows"]

MAGIC = b"GBTICKS1\n"
#: The number columns, in file order (TickCmd's field order).
NUMBER_COLUMNS = ("mark", *OPTIONAL_FIELDS)
_BIG_ENDIAN = sys.byteorder == "big"


def is_columns_file(path: Path) -> bool:
    """Whether ``path`` starts like a tick-columns file."""
    with path.open("rb") as file:
        return file.read(len(MAGIC)) == MAGIC


class ColumnsWriter:
    """Collects ticks (as tick lines or as ticks) and writes the file at :meth:`close`.

    The columns are kept in memory until then: about 36 bytes a tick plus each distinct
    number string once. ``write``/``flush``/``close`` match the text writer of ``record``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ts = array("q")
        self._symbol = array("I")
        self._numbers: list[array[int]] = [array("I") for _ in NUMBER_COLUMNS]
        self._symbol_ids: dict[str, int] = {}
        self._number_ids: dict[str, int] = {}
        self._decoder = TickDecoder()
        self._closed = False
        path.open("wb").close()  # fail now, not at the end, if it cannot be written

    def write(self, line: str) -> None:
        """Add the tick of one tick line (the text ``guardbot record`` writes)."""
        ts, tick = self._decoder.decode(line)
        self.add(ts, tick)

    def add(self, ts: int, tick: TickCmd) -> None:
        self._ts.append(ts)
        symbol = self._symbol_ids.setdefault(tick.symbol, len(self._symbol_ids))
        self._symbol.append(symbol)
        values = (tick.mark, tick.last, tick.bid, tick.ask, tick.index, tick.funding_rate)
        ids = self._number_ids
        for column, value in zip(self._numbers, values, strict=True):
            if value is None:
                column.append(0)
            else:
                # plain notation with every digit (what tick_line writes): Decimal(text) is value
                column.append(ids.setdefault(format(value, "f"), len(ids) + 1))

    def flush(self) -> None:
        """Nothing reaches the file before :meth:`close` (the header needs the tables)."""

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        header = {
            "rows": len(self._ts),
            "symbols": list(self._symbol_ids),
            "numbers": list(self._number_ids),
            "columns": ["ts", "symbol", *NUMBER_COLUMNS],
        }
        with self.path.open("wb") as file:
            file.write(MAGIC)
            file.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
            for column in (self._ts, self._symbol, *self._numbers):
                if _BIG_ENDIAN:
                    column = array(column.typecode, column)
                    column.byteswap()
                file.write(column.tobytes())


def _header(file: IO[bytes], path: Path) -> dict[str, Any]:
    if file.read(len(MAGIC)) != MAGIC:
        raise InputError(str(path), "is not a tick-columns file")
    try:
        header = json.loads(file.readline())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"bad header: {exc}") from None
    if (
        not isinstance(header, dict)
        or not isinstance(header.get("rows"), int)
        or header.get("columns") != ["ts", "symbol", *NUMBER_COLUMNS]
        or not isinstance(header.get("symbols"), list)
        or not isinstance(header.get("numbers"), list)
        or not all(isinstance(s, str) for s in header["symbols"] + header["numbers"])
    ):
        raise InputError(str(path), "bad header (rows, symbols, numbers, columns)")
    return header


def _column(file: IO[bytes], typecode: str, rows: int, path: Path, name: str) -> array[int]:
    column = array(typecode)
    size = column.itemsize * rows
    data = file.read(size)
    if len(data) != size:
        raise InputError(str(path), f"truncated in column {name}")
    column.frombytes(data)
    if _BIG_ENDIAN:
        column.byteswap()
    return column


def _check_values(
    path: Path, name: str, column: array[int], table: list[Decimal | None], texts: list[str]
) -> None:
    """Every number a column uses must be what a tick line may carry there (``parse_tick``'s
    rules, its wording); each distinct number is checked once per column, plain ones at a
    glance (as the tick-line fast path does), others by ``parse_tick``."""
    price = name != "fundingRate"
    for k in set(column):
        if k == 0:
            if name == "mark":
                raise InputError(f"tick {column.index(0) + 1}.mark", "is required")
            continue
        if k > len(texts):
            raise InputError(str(path), f"tick {column.index(k) + 1}: {name} refers to no number")
        text = texts[k - 1]
        value = table[k]
        if PLAIN(text) and not (price and text[0] == "-"):
            if value is None:
                value = table[k] = Decimal(text)
            if value or not price:
                continue
        try:
            parse_tick({"symbol": "x", "mark": "1", name: text})
        except InputError as exc:
            raise exc.under(f"tick {column.index(k) + 1}") from None
        if value is None:
            table[k] = Decimal(text)


def read_rows(path: Path) -> Iterator[Row]:
    """The rows of a tick-columns file as :data:`~guardbot.formats.ticklines.Row` tuples
    (``guardbot replay``'s loop), made in C from the columns; bad content is an
    :class:`InputError` naming the row (``tick N.field``), raised before the first row."""
    with path.open("rb") as file:
        header = _header(file, path)
        rows: int = header["rows"]
        ts = _column(file, "q", rows, path, "ts")
        symbol_ids = _column(file, "I", rows, path, "symbol")
        columns = [_column(file, "I", rows, path, name) for name in NUMBER_COLUMNS]
    symbols: list[str] = header["symbols"]
    for k in set(symbol_ids):
        if k >= len(symbols) or not symbols[k].strip():
            row = symbol_ids.index(k) + 1
            raise InputError(f"tick {row}.symbol", "must be a non-empty string")
    if rows and min(ts) < 0:
        raise InputError(f"tick {ts.index(min(ts)) + 1}.ts", f"must be >= 0, got {min(ts)}")
    texts: list[str] = header["numbers"]
    table: list[Decimal | None] = [None] * (len(texts) + 1)
    for name, column in zip(NUMBER_COLUMNS, columns, strict=True):
        _check_values(path, name, column, table, texts)
    # the mark is never absent (checked above): table[m] is a Decimal
    number = table.__getitem__
    # the columns have ``rows`` values each (read so above): zip's strict check is not needed
    return zip(
        ts,
        map(symbols.__getitem__, symbol_ids),
        *(map(number, column) for column in columns),
        strict=False,
    )


def read_columns(path: Path) -> Generator[tuple[int, TickCmd], None, None]:
    """``(ts, tick)`` for each row of a tick-columns file; bad content is an
    :class:`InputError` naming the row (``tick N.field``)."""
    for ts, symbol, mark, last, bid, ask, index, rate in read_rows(path):
        yield ts, TickCmd(symbol, mark, last, bid, ask, index, rate)
