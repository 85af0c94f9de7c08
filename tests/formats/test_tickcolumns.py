"""Tick columns (the fast-loading recording format): the same ticks as the tick lines they were
written from, digit for digit; bad content refused with the tick-line rules and wording."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from guardbot.core.commands import TickCmd
from guardbot.errors import InputError
from guardbot.formats.tickcolumns import MAGIC, ColumnsWriter, is_columns_file, read_columns
from guardbot.formats.ticklines import read_ticks, tick_line

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ticks" / "btc_eth_crash.jsonl"


def _columns_of(lines: list[str], path: Path) -> Path:
    writer = ColumnsWriter(path)
    for line in lines:
        writer.write(line)
    writer.close()
    return path


def _digits(tick: TickCmd) -> list[str | None]:
    return [None if v is None else str(v) for v in (getattr(tick, n) for n in TickCmd.__slots__)]


def test_the_example_reads_back_exactly(tmp_path: Path) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    path = _columns_of(lines, tmp_path / "crash.gbt")
    assert is_columns_file(path) and not is_columns_file(EXAMPLE)
    expected = list(read_ticks(EXAMPLE))
    got = list(read_columns(path))
    assert got == expected
    # "3000.20" stays "3000.20": the exchange's digits, not only the value
    assert [_digits(t) for _, t in got] == [_digits(t) for _, t in expected]
    assert path.stat().st_size < EXAMPLE.stat().st_size * 0.6


def test_every_field_and_sign(tmp_path: Path) -> None:
    ticks = [
        (0, TickCmd("A/USDT:USDT", Decimal("1E-7"))),
        (
            5,
            TickCmd(
                "B/USDT:USDT",
                Decimal("60000.10"),
                Decimal("60000.1"),
                Decimal("59999"),
                Decimal("60001"),
                Decimal("60002.5"),
                Decimal("-0.00010"),
            ),
        ),
        (7, TickCmd("A/USDT:USDT", Decimal("2"), funding_rate=Decimal("0"))),
    ]
    path = _columns_of([tick_line(ts, t) for ts, t in ticks], tmp_path / "t.gbt")
    got = list(read_columns(path))
    assert got == ticks
    assert [_digits(t) for _, t in got] == [_digits(t) for _, t in ticks]


def test_an_empty_recording(tmp_path: Path) -> None:
    assert list(read_columns(_columns_of([], tmp_path / "empty.gbt"))) == []


def _rewrite(path: Path, **changes: object) -> None:
    data = path.read_bytes()
    head, _, rest = data[len(MAGIC) :].partition(b"\n")
    header = json.loads(head)
    header.update(changes)
    path.write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + rest)


@pytest.mark.parametrize(
    ("numbers", "message"),
    [
        (["0", "2"], "tick 1.mark: must be > 0"),
        (["-1", "2"], "tick 1.mark: must be > 0"),
        (["1e19", "2"], "tick 1.mark: is out of range"),
        (["abc", "2"], "tick 1.mark: must be a number"),
        (["1", "1_0"], "tick 2.mark: must be a number"),
    ],
)
def test_bad_numbers_are_refused_as_a_tick_line_would_be(
    tmp_path: Path, numbers: list[str], message: str
) -> None:
    lines = [
        tick_line(1, TickCmd("A/USDT:USDT", Decimal("1"))),
        tick_line(2, TickCmd("A/USDT:USDT", Decimal("2"))),
    ]
    path = _columns_of(lines, tmp_path / "bad.gbt")
    _rewrite(path, numbers=numbers)
    with pytest.raises(InputError) as info:
        list(read_columns(path))
    assert str(info.value).startswith(message)


def test_a_truncated_file_or_bad_header_is_refused(tmp_path: Path) -> None:
    path = _columns_of([tick_line(1, TickCmd("A/USDT:USDT", Decimal("1")))], tmp_path / "t.gbt")
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(InputError, match="truncated"):
        list(read_columns(path))
    _rewrite(path, columns=["ts"])
    with pytest.raises(InputError, match="bad header"):
        list(read_columns(path))
    _rewrite(path, symbols=[" "], columns=["ts", "symbol", "mark", "last", "bid", "ask",
                                            "index", "fundingRate"])  # fmt: skip
    with pytest.raises(InputError, match=r"bad header|truncated|symbol"):
        list(read_columns(path))


async def test_replay_reads_both_formats_to_the_same_run(tmp_path: Path) -> None:
    from guardbot.cli.replay import replay
    from guardbot.config import load_config

    config = load_config(ROOT / "examples" / "strategies" / "replay.toml", env={})
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    columns = _columns_of(lines, tmp_path / "crash.gbt")
    await replay(EXAMPLE, None, tmp_path / "a", config=config, progress=False)
    await replay(columns, None, tmp_path / "b", config=config, progress=False)
    for name in ("events.jsonl", "samples.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
