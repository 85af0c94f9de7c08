"""The tick-line reader/writer: the fast path gives exactly what the full parser gives, or
leaves the line to it; what the writer writes, the reader reads back unchanged."""

from __future__ import annotations

import gzip
import io
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from guardbot.core.commands import TickCmd, parse_tick
from guardbot.errors import InputError
from guardbot.formats import ticklines
from guardbot.formats.jsonio import loads_exact
from guardbot.formats.ticklines import TickDecoder, read_ticks, tick_body, tick_line


def _full(line: str) -> tuple[int, TickCmd]:
    return TickDecoder.full(line)


FAST_LINES = [
    # what guardbot record writes (type first, every optional field, a negative funding rate)
    '{"type":"tick","ts":1767225600000,"symbol":"BTC/USDT:USDT","mark":"59972.7","last":"59972.7",'
    '"bid":"59966.7","ask":"59978.7","index":"59980.10","fundingRate":"-0.0001"}',
    # what most tools write: no type
    '{"ts":1,"symbol":"ETH/USDT:USDT","mark":"3000.20","bid":"3000.1","ask":"3000.3"}',
    '{"ts":0,"symbol":"1000PEPE/USDT:USDT","mark":"0.000000000000000001"}',
    '{"ts":5,"symbol":"BTC/USDT:USDT-250328","mark":"999999999999999999.999999999999999999"}',
    '{"ts":5,"symbol":"X/Y:Y","mark":"007.50","fundingRate":"0"}\r\n',
]


@pytest.mark.parametrize("line", FAST_LINES)
def test_fast_path_gives_what_the_full_parser_gives(line: str) -> None:
    decoder = TickDecoder()
    fast = decoder.fast(line)
    assert fast is not None, "this line has the common shape: the fast path should take it"
    assert fast == _full(line)
    # the same values, digit for digit (Decimal equality ignores trailing zeros)
    assert [str(v) for v in vars_of(fast[1])] == [str(v) for v in vars_of(_full(line)[1])]


def vars_of(tick: TickCmd) -> list[object]:
    return [getattr(tick, name) for name in TickCmd.__slots__]


SLOW_LINES = [
    '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "1"}',  # spaces: another shape
    '{"symbol":"BTC/USDT:USDT","ts":1,"mark":"1"}',  # another key order
    '{"ts":1,"symbol":"BTC/USDT:USDT","mark":60000.5}',  # a JSON number
    '{"ts":1,"symbol":"BTC/USDT:USDT","mark":"6e4"}',  # an exponent
    '{"ts":1,"symbol":"BTC/USDT:USDT","mark":"60000","note":"x"}',  # another key
    '{"ts":1,"symbol":"BTC/USDT:USDT","mark":"60000","fundingRate":"1e-4"}',
    '{"ts":1,"symbol":"BTC/USDT:USDT","mark":"1.","last":".5"}',  # valid, not plain
    '{"ts":1,"symbol":"BTC/USDT:USDT","mark":"1000000000000000000"}',  # 1e18: 19 digits
]


@pytest.mark.parametrize("line", SLOW_LINES)
def test_other_valid_lines_take_the_full_path_with_the_same_result(line: str) -> None:
    decoder = TickDecoder()
    assert decoder.fast(line) is None
    obj = loads_exact(line, "", lines=False)
    assert isinstance(obj, dict)
    assert decoder.decode(line) == (1, parse_tick(obj))


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"ts":1,"symbol":"BTC/USDT:USDT","mark":"0.0"}', "mark"),
        ('{"ts":1,"symbol":"BTC/USDT:USDT","mark":"-5"}', "mark"),
        ('{"ts":1,"symbol":"BTC/USDT:USDT","mark":"1","bid":"0"}', "bid"),
        ('{"ts":1,"symbol":"BTC/USDT:USDT","mark":"1","ask":"1.2.3"}', "ask"),
        ('{"ts":1,"symbol":"BTC/USDT:USDT","mark":"1","last":"."}', "last"),
        ('{"ts":1,"symbol":"BTC/USDT:USDT","mark":"10000000000000000000"}', "mark"),
        ('{"ts":1,"symbol":"BTC/USDT:USDT","mark":"0.0000000000000000001"}', "mark"),
        ('{"ts":1,"symbol":"BTC/USDT:USDT","mark":"1","fundingRate":"--1"}', "fundingRate"),
        ('{"ts":-1,"symbol":"BTC/USDT:USDT","mark":"1"}', "ts"),
        ('{"ts":1,"symbol":" ","mark":"1"}', "symbol"),
        ('{"ts":1,"symbol":"BTC/USDT:USDT","mark":"1","mark":"2"}', ""),
    ],
)
def test_bad_values_are_left_to_the_full_check(line: str, field: str) -> None:
    decoder = TickDecoder()
    decoder.fast(FAST_LINES[1])  # a shape learnt already must not let them through either
    assert decoder.fast(line) is None
    with pytest.raises(InputError) as info:
        decoder.decode(line)
    assert info.value.field == field


def test_a_number_seen_before_is_checked_again_in_another_field() -> None:
    decoder = TickDecoder()
    assert decoder.fast('{"ts":1,"symbol":"A/B:B","mark":"1","fundingRate":"0"}') is not None
    # "0" is a valid funding rate, never a valid price: the price cache must not hold it
    assert decoder.fast('{"ts":1,"symbol":"A/B:B","mark":"0"}') is None


def test_typed_decoder_leaves_lines_without_a_type_to_the_caller() -> None:
    decoder = TickDecoder(typed=True)
    assert decoder.fast(FAST_LINES[1]) is None
    assert decoder.fast(FAST_LINES[0]) is not None
    assert decoder.fast(FAST_LINES[1]) is None  # a typed shape learnt does not match either


def test_shapes_switch_line_by_line() -> None:
    decoder = TickDecoder()
    lines = FAST_LINES * 3
    assert [decoder.fast(line) for line in lines] == [_full(line) for line in lines]


def test_read_ticks_plain_and_gzip_blank_lines_and_errors(tmp_path: Path) -> None:
    text = FAST_LINES[0] + "\n\n" + SLOW_LINES[0] + "\n"
    plain = tmp_path / "t.jsonl"
    plain.write_text(text, encoding="utf-8")
    packed = tmp_path / "t.jsonl.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    expected = [_full(FAST_LINES[0]), _full(SLOW_LINES[0])]
    assert list(read_ticks(plain)) == expected
    assert list(read_ticks(packed)) == expected
    plain.write_text(text + '{"ts":1,"symbol":"BTC/USDT:USDT","mark":"0"}\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(read_ticks(plain))
    assert str(info.value).startswith("line 4.mark:")


def test_writer_keeps_every_digit_and_the_fast_shape() -> None:
    tick = TickCmd(
        "BTC/USDT:USDT",
        Decimal("60000.10"),
        Decimal("1E-7"),
        None,
        Decimal("60001"),
        None,
        Decimal("-0.00010"),
    )
    line = tick_line(7, tick)
    assert line == (
        '{"type":"tick","ts":7,"symbol":"BTC/USDT:USDT","mark":"60000.10","last":"0.0000001",'
        '"ask":"60001","fundingRate":"-0.00010"}'
    )
    decoded = TickDecoder().fast(line)
    assert decoded == (7, tick)
    assert tick_body(tick) == {
        "type": "tick",
        "symbol": "BTC/USDT:USDT",
        "mark": Decimal("60000.10"),
        "last": Decimal("1E-7"),
        "ask": Decimal("60001"),
        "fundingRate": Decimal("-0.00010"),
    }


_prices = hs.decimals(
    min_value=Decimal("1e-12"), max_value=Decimal("1e12"), places=8, allow_nan=False
).filter(lambda d: d > 0)


@settings(max_examples=300, deadline=None)
@given(
    ts=hs.integers(min_value=0, max_value=10**14),
    mark=_prices,
    others=hs.lists(hs.none() | _prices, min_size=4, max_size=4),
    rate=hs.none() | hs.decimals(min_value=-1, max_value=1, places=6, allow_nan=False),
)
def test_property_written_lines_read_back_exactly(
    ts: int, mark: Decimal, others: list[Decimal | None], rate: Decimal | None
) -> None:
    tick = TickCmd("BTC/USDT:USDT", mark, *others, rate)
    line = tick_line(ts, tick)
    decoder = TickDecoder()
    assert decoder.decode(line) == _full(line) == (ts, tick)


# -- decode_rows: the replay's bulk reader ------------------------------------------------------


def _rows_of(ticks: list[tuple[int, TickCmd]]) -> list[tuple[object, ...]]:
    return [
        (ts, t.symbol, t.mark, t.last, t.bid, t.ask, t.index, t.funding_rate) for ts, t in ticks
    ]


def _same_rows(text: str, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """decode_rows gives what decode_lines gives (value and digits), at any chunk size."""
    monkeypatch.setattr(ticklines, "_CHUNK", chunk)
    rows = list(ticklines.decode_rows(io.StringIO(text)))
    expected = _rows_of(list(ticklines.decode_lines(io.StringIO(text))))
    assert rows == expected
    assert [list(map(str, row)) for row in rows] == [list(map(str, row)) for row in expected]


MIXED = (
    "\n".join(FAST_LINES[i % 2] for i in range(40))  # a chunk of one shape, then another
    + "\n\n   \n"  # blank lines
    + "\n".join(SLOW_LINES[:3] + FAST_LINES)  # other shapes, values the bulk path leaves
    + "\n"
    + "\n".join(FAST_LINES[2] for _ in range(30))
    + '\n{"ts":9,"symbol":"A/B:B","mark":"1","fundingRate":"0"}'  # no newline at the end
)


@pytest.mark.parametrize("chunk", [1, 7, 64, 200, 1 << 19])
def test_decode_rows_gives_what_decode_lines_gives(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    _same_rows(MIXED, chunk, monkeypatch)
    _same_rows(MIXED + "\n", chunk, monkeypatch)
    _same_rows("", chunk, monkeypatch)
    _same_rows("\n\n", chunk, monkeypatch)


def test_decode_rows_zero_price_and_errors_name_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ticklines, "_CHUNK", 1 << 10)
    good = FAST_LINES[1]
    for bad, field in [
        ('{"ts":1,"symbol":"ETH/USDT:USDT","mark":"0","bid":"3000.1","ask":"3000.3"}', "mark"),
        ('{"ts":1,"symbol":"ETH/USDT:USDT","mark":"1","bid":"0.0","ask":"3000.3"}', "bid"),
        ('{"ts":1,"symbol":"ETH/USDT:USDT","mark":"1","bid":"1","ask":"-3"}', "ask"),
    ]:
        text = "\n".join([good] * 25 + [bad] + [good] * 25) + "\n"
        with pytest.raises(InputError) as info:
            list(ticklines.decode_rows(io.StringIO(text)))
        assert str(info.value).startswith(f"line 26.{field}:")


@settings(max_examples=100, deadline=None)
@given(
    ticks=hs.lists(
        hs.tuples(
            hs.integers(min_value=0, max_value=10**14),
            _prices,
            hs.lists(hs.none() | _prices, min_size=4, max_size=4),
            hs.none() | hs.decimals(min_value=-1, max_value=1, places=6, allow_nan=False),
        ),
        max_size=30,
    ),
    chunk=hs.sampled_from([16, 300, 1 << 19]),
)
def test_property_decode_rows_reads_written_lines_exactly(
    ticks: list[tuple[int, Decimal, list[Decimal | None], Decimal | None]], chunk: int
) -> None:
    written = [
        (ts, TickCmd("BTC/USDT:USDT", mark, *others, rate)) for ts, mark, others, rate in ticks
    ]
    text = "".join(tick_line(ts, tick) + "\n" for ts, tick in written)
    original = ticklines._CHUNK
    ticklines._CHUNK = chunk
    try:
        rows = list(ticklines.decode_rows(io.StringIO(text)))
    finally:
        ticklines._CHUNK = original
    assert rows == _rows_of(written)
    assert [list(map(str, row)) for row in rows] == [list(map(str, r)) for r in _rows_of(written)]
