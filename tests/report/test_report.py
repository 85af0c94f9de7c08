"""``guardbot report``: the page, its charts and its totals from a run directory.

The fixture tests/data/run_sample/ is the demo story run through the engine (see its
regenerate.py): alice's cross long with a stop-loss, bob's isolated short liquidated, a refused
leverage change, funding, margin alerts at 0.5/0.7/0.8.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import shutil
import struct
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

from guardbot.errors import InputError
from guardbot.report import add_arguments, build_report, main, run_report
from guardbot.report.charts import HEIGHT, MAX_POINTS, WIDTH, downsample
from guardbot.report.rundir import load_run

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "run_sample"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects the page's image sources, tables (rows of cell texts) and tiles."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.tiles: dict[str, str] = {}
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._tile: list[str] = []
        self._in_tile = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "img":
            self.images.append(attr["src"] or "")
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "div" and attr.get("class") == "tile":
            self._in_tile, self._tile = 1, []
        elif tag == "div" and self._in_tile:
            self._in_tile += 1
            self._tile.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None
        elif tag == "div" and self._in_tile:
            self._in_tile -= 1
            if self._in_tile == 0:
                value, label = self._tile
                self.tiles[label] = value

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_tile > 1:
            self._tile[-1] += data


def parse_page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def table_with(page: _Page, first_header: str, header: str) -> list[dict[str, str]]:
    """The rows (as header -> cell) of the table whose headers start with ``first_header`` and
    include ``header``."""
    for table in page.tables:
        if table and table[0][0] == first_header and header in table[0]:
            # a one-cell row is the "… N not shown …" gap of a capped table
            return [dict(zip(table[0], row, strict=True)) for row in table[1:] if len(row) > 1]
    raise AssertionError(f"no table with {first_header!r} and {header!r}")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def events() -> list[dict[str, Any]]:
    lines = (SAMPLE / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def summary() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((SAMPLE / "summary.json").read_text(encoding="utf-8"))
    return result


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One report of the fixture run, shared by the read-only tests below."""
    return build_report(SAMPLE, tmp_path_factory.mktemp("report"))


def copy_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(SAMPLE, run, ignore=shutil.ignore_patterns("*.py", "report"))
    return run


# ---------------------------------------------------------------------------------------- page


def test_page_references_every_chart_and_each_is_a_png_of_the_fixed_size(built: Path) -> None:
    assert built.name == "report.html"
    page = parse_page(built)
    pngs = sorted(p.name for p in built.parent.glob("*.png"))
    assert sorted(page.images) == pngs
    assert pngs == [
        "equity.png",
        "margin_ratio.png",
        "position_size.png",
        "price_00_BTC-USDT-USDT.png",
        "price_01_ETH-USDT-USDT.png",
    ]
    for name in pngs:
        assert png_size(built.parent / name) == (WIDTH, HEIGHT) == (1200, 500)


def test_page_is_self_contained(built: Path) -> None:
    text = built.read_text(encoding="utf-8")
    assert "<style>" in text
    # nothing fetched from elsewhere: no scripts, stylesheets or absolute URLs
    assert "<script" not in text and "<link" not in text
    assert not re.search(r"""(src|href)=["'](https?:|//|/)""", text)


def test_run_totals_match_summary_and_events(built: Path) -> None:
    page = parse_page(built)
    s, evs = summary(), events()
    assert page.tiles["margin alerts"] == str(s["alerts"]) == "4"
    assert s["alerts"] == sum(e["type"] == "margin_alert" for e in evs)
    assert page.tiles["liquidations"] == str(s["liquidations"]) == "1"
    assert page.tiles["trades (fills)"] == str(s["trades"]) == "3"
    assert page.tiles["refused orders"] == "1"
    refused = table_with(page, "code", "refused (summary)")
    assert refused == [
        {"code": "LEVERAGE_EXCEEDS_MAX", "refused (summary)": "1", "order_rejected events": "1"}
    ]
    assert "disagrees" not in built.read_text(encoding="utf-8")


def test_account_totals_match_summary_and_event_sums(built: Path) -> None:
    rows = {r["account"]: r for r in table_with(parse_page(built), "account", "realized PnL")}
    s, evs = summary(), events()
    assert sorted(rows) == sorted(s["accounts"]) == ["alice", "bob"]
    for account, stated in s["accounts"].items():
        row = rows[account]
        assert row["start wallet"] == stated["startWallet"]
        assert row["end wallet"] == stated["wallet"]
        assert row["end equity"] == stated["equity"]
        assert row["realized PnL"] == stated["realizedPnl"]
        assert row["fees"] == stated["fees"]
        assert row["funding"] == stated["funding"]
        assert row["max drawdown"] == stated["maxDrawdown"]
        assert row["end wallet"] == row["start + PnL - fees + funding - liquidation losses"]
        fills = [e for e in evs if e["type"] == "fill" and e["account"] == account]
        assert Decimal(row["fees"]) == sum(Decimal(e["fee"]) for e in fills)
        assert Decimal(row["realized PnL"]) == sum(Decimal(e["realizedPnl"]) for e in fills)
        funding = [e for e in evs if e["type"] == "funding" and e["account"] == account]
        assert Decimal(row["funding"]) == sum((Decimal(e["amount"]) for e in funding), Decimal(0))
        assert row["fills"] == str(len(fills))
    assert rows["bob"]["liquidation losses"] == "480.3151968"
    assert rows["alice"]["max drawdown (of the peak)"] == "88.8%"


def test_trades_table_and_csv_list_every_fill_and_liquidation(built: Path) -> None:
    trades = [e for e in events() if e["type"] in ("fill", "liquidation")]
    rows = table_with(parse_page(built), "time (UTC)", "realized PnL (USDT)")
    assert [(r["order"], r["price"], r["fee (USDT)"], r["role"]) for r in rows] == [
        (e.get("id", "liquidation"), e["price"], e["fee"], role)
        for e, role in zip(trades, ["entry", "entry", "liquidation", "exit"], strict=True)
    ]
    assert rows[0]["time (UTC)"] == "2026-01-05 00:02:30.000"
    # bob's isolated short closed by the liquidation: bought back at the liquidation price;
    # the wallet lost the position's loss at that price plus the liquidation fee
    liquidation = next(e for e in trades if e["type"] == "liquidation")
    row = rows[2]
    assert (row["account"], row["side"], row["amount"]) == ("bob", "buy", liquidation["contracts"])
    assert Decimal(row["realized PnL (USDT)"]) == Decimal(liquidation["fee"]) - Decimal(
        liquidation["loss"]
    )
    with (built.parent / "trades.csv").open(encoding="utf-8", newline="") as file:
        records = list(csv.DictReader(file))
    assert [(r["orderId"], r["role"]) for r in records] == [(r["order"], r["role"]) for r in rows]


def test_guard_events_table(built: Path) -> None:
    rows = table_with(parse_page(built), "time (UTC)", "detail")
    kinds = [r["event"] for r in rows]
    assert kinds.count("margin_alert") == 4
    assert "liquidation" in kinds and "stop_triggered" in kinds
    assert "order_rejected" not in kinds  # grouped in their own table
    liquidation = next(r for r in rows if r["event"] == "liquidation")
    assert liquidation["account"] == "bob" and "3110.25" in liquidation["detail"]


# ---------------------------------------------------------------------------------------- charts


def test_markers_of_the_price_charts() -> None:
    data = load_run(SAMPLE)
    by_symbol: dict[str, list[str]] = {}
    for marker in data.markers:
        by_symbol.setdefault(marker.symbol, []).append(marker.kind)
    # alice's account-wide alert has no symbol: it goes on the symbol nearest liquidation
    assert by_symbol["BTC/USDT:USDT"] == ["entry", "alert", "stop", "exit"]
    assert by_symbol["ETH/USDT:USDT"] == ["entry", "alert", "alert", "alert", "liquidation"]
    assert [str(level) for level in data.alert_levels] == ["0.5", "0.7", "0.8"]
    assert sorted(data.position_ratio) == [("bob", "ETH/USDT:USDT")]


def test_two_builds_give_identical_bytes(tmp_path: Path) -> None:
    first = build_report(SAMPLE, tmp_path / "a").parent
    # a user's matplotlib settings must not leak into the charts
    with matplotlib.rc_context({"lines.linewidth": 5.0, "axes.facecolor": "black"}):
        second = build_report(SAMPLE, tmp_path / "b").parent
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_downsample_keeps_extremes_ends_and_gaps() -> None:
    n = 1_000_000
    x = np.arange(n, dtype=np.int64)
    y = np.sin(np.arange(n) / 5000.0)
    y[123_457] = 50.0  # a one-sample spike
    y[654_321] = -50.0
    y[400_000:400_010] = np.nan  # a gap
    dx, dy = downsample(x, y)
    assert len(dx) <= MAX_POINTS
    assert dx[0] == 0 and dx[-1] == n - 1
    assert 123_457 in dx and 654_321 in dx
    assert np.nanmax(dy) == 50.0 and np.nanmin(dy) == -50.0
    assert np.isnan(dy).any()
    assert np.all(np.diff(dx) > 0)
    short = np.arange(10, dtype=np.int64)
    assert downsample(short, short.astype(float))[0] is short


def test_a_long_run_is_downsampled(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text('{"symbols": ["X/USDT:USDT"]}', encoding="utf-8")
    (run / "events.jsonl").write_text("", encoding="utf-8")
    lines = []
    for i in range(20_000):
        mark = f"{100 + (i % 200) / 10:.1f}"
        lines.append(
            f'{{"ts":{1_700_000_000_000 + i * 1000},"prices":{{"X/USDT:USDT":{{"mark":"{mark}",'
            f'"last":null}}}},"accounts":{{"a":{{"wallet":"100","equity":"{mark}",'
            f'"marginRatio":null,"positions":{{}}}}}}}}'
        )
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    page = build_report(run, tmp_path / "out")
    assert png_size(page.parent / "price_00_X-USDT-USDT.png") == (WIDTH, HEIGHT)
    assert png_size(page.parent / "margin_ratio.png") == (WIDTH, HEIGHT)
    assert "20,000 samples drawn as at most 5,000 points a line" in page.read_text("utf-8")


# ---------------------------------------------------------------------------------------- input


def write_run(tmp_path: Path, **files: str) -> Path:
    """A copy of the fixture with some files replaced (``events="..."``) or removed (None)."""
    run = copy_run(tmp_path)
    names = {"events": "events.jsonl", "samples": "samples.jsonl", "summary": "summary.json"}
    for key, text in files.items():
        path = run / names[key]
        if text is None:
            path.unlink()
        else:
            path.write_text(text, encoding="utf-8")
    return run


FILL = (
    '{"type":"fill","ts":5,"account":"a","symbol":"X/USDT:USDT","side":"buy","amount":"1",'
    '"price":"%s","fee":"0.1","realizedPnl":"0"}'
)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"summary": None}, r"summary\.json: missing \(is this the --out directory"),
        ({"events": None}, r"events\.jsonl: missing"),
        ({"samples": None}, r"samples\.jsonl: missing"),
        ({"summary": '{\n  "ticks": 1,\n  oops\n}'}, r"summary\.json: line 3: invalid JSON"),
        ({"summary": "[]"}, r"summary\.json: must be a JSON object, got list"),
        ({"summary": '{"alerts": "many"}'}, r"summary\.json: alerts: must be an integer"),
        ({"summary": '{"alertLevels": ["0.5", "x"]}'}, r"summary\.json: alertLevels\[1\]: must"),
        (
            {"events": '{"type":"x","ts":1}\n\n{"type": "fill", "ts": 2,\n'},
            r"events\.jsonl: line 3: invalid JSON",
        ),
        ({"events": '{"type":"x","ts":1}\n[1]\n'}, r"events\.jsonl: line 2: must be a JSON object"),
        ({"events": '{"type":"x"}\n'}, r"events\.jsonl: line 1: ts: must be epoch milliseconds"),
        ({"events": '{"ts":1,"type":7}\n'}, r"events\.jsonl: line 1: type: must be a string"),
        (
            {"events": '{"type":"x","ts":1}\n' + FILL % "abc" + "\n"},
            r"events\.jsonl: line 2: price: must be a decimal number, got 'abc'",
        ),
        (
            {"events": FILL.replace('"symbol":"X/USDT:USDT",', "") % "1" + "\n"},
            r"events\.jsonl: line 1: symbol: must be a non-empty string",
        ),
        (
            {"samples": '{"ts":1,"prices":{"X/USDT:USDT":{"mark":"NaN?"}}}\n'},
            r"samples\.jsonl: line 1: prices\.X/USDT:USDT\.mark: must be a decimal number",
        ),
        (
            {"samples": '{"ts":1,"accounts":{"a":{"wallet":"1","equity":[]}}}\n'},
            r"samples\.jsonl: line 1: accounts\.a\.equity: must be a decimal number or null",
        ),
    ],
)
def test_bad_input_is_one_line_naming_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str | None],
    expected: str,
) -> None:
    run = write_run(tmp_path, **files)  # type: ignore[arg-type]
    assert main([str(run), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"guardbot report: {run}/")
    assert re.search(expected, lines[0]), lines[0]
    assert not (tmp_path / "out" / "report.html").exists()


def test_missing_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope: is not a directory" in err


def test_unwritable_out_is_an_input_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"^--out .*file/sub: cannot create the directory"):
        build_report(SAMPLE, blocker / "sub")


def test_unknown_types_and_missing_optional_fields_are_tolerated(tmp_path: Path) -> None:
    evs = [
        '{"type":"brand_new_event","ts":1,"account":"a","whatever":[1,2]}',
        # no fee, realizedPnl, positionContracts, id: a buy then a reduce-only sell
        '{"type":"fill","ts":2,"account":"a","symbol":"X/USDT:USDT","side":"buy","amount":"2",'
        '"price":"100"}',
        '{"type":"fill","ts":3,"account":"a","symbol":"X/USDT:USDT","side":"sell","amount":"2",'
        '"price":"101","reduceOnly":true,"realizedPnl":"2"}',
        '{"type":"margin_alert","ts":4,"account":"a","symbol":"X/USDT:USDT"}',
        '{"type":"liquidation","ts":5,"account":"a","symbol":"X/USDT:USDT"}',
        '{"type":"stop_triggered","ts":6,"symbol":"X/USDT:USDT"}',
        '{"type":"order_rejected","ts":7,"account":"a"}',
        '{"type":"trading_state","ts":8,"account":"a","state":"halted"}',
        '{"type":"funding","ts":9,"account":"a"}',
    ]
    samples = [
        '{"ts":1,"prices":{"X/USDT:USDT":{"mark":"100"}}}',
        '{"ts":9,"prices":{"X/USDT:USDT":{"mark":"99"}},"accounts":{"a":{"wallet":"10"}}}',
    ]
    run = write_run(
        tmp_path,
        events="\n".join(evs) + "\n",
        samples="\n".join(samples) + "\n",
        summary="{}",
    )
    page = build_report(run, tmp_path / "out")
    parsed = parse_page(page)
    assert parsed.tiles["trades (fills)"] == "2"
    assert parsed.tiles["refused orders"] == "1"
    rows = table_with(parsed, "time (UTC)", "realized PnL (USDT)")
    assert [r["role"] for r in rows] == ["entry", "exit"]
    account = table_with(parsed, "account", "realized PnL")
    assert account[0]["account"] == "a" and account[0]["realized PnL"] == "2"
    assert "brand_new_event 1" in page.read_text(encoding="utf-8")


def test_entry_and_exit_roles_follow_the_position() -> None:
    data = load_run(SAMPLE)
    assert [(f.order_id, f.role) for f in data.fills] == [
        ("a-long", "entry"),
        ("b-short", "entry"),
        ("liquidation", "liquidation"),
        ("a-long-sl", "exit"),
    ]


def test_flip_is_an_exit_and_growth_an_entry(tmp_path: Path) -> None:
    def fill(ts: int, side: str, amount: str, pos_side: str | None, contracts: str) -> str:
        return json.dumps(
            {
                "type": "fill",
                "ts": ts,
                "account": "a",
                "symbol": "X/USDT:USDT",
                "side": side,
                "amount": amount,
                "price": "100",
                "positionSide": pos_side,
                "positionContracts": contracts,
            }
        )

    evs = [
        fill(1, "buy", "1", "long", "1"),
        fill(2, "buy", "1", "long", "2"),
        fill(3, "sell", "3", "short", "1"),  # a flip closes the long first: an exit
        fill(4, "buy", "1", None, "0"),
    ]
    run = write_run(tmp_path, events="\n".join(evs) + "\n")
    assert [f.role for f in load_run(run).fills] == ["entry", "entry", "exit", "exit"]


def test_empty_run_still_builds_a_page(tmp_path: Path) -> None:
    run = write_run(tmp_path, events="", samples="\n", summary="{}")
    page = build_report(run, tmp_path / "out")
    parsed = parse_page(page)
    assert sorted(parsed.images) == ["equity.png", "margin_ratio.png", "position_size.png"]
    for name in parsed.images:
        assert png_size(page.parent / name) == (WIDTH, HEIGHT)
    assert "No fills." in page.read_text(encoding="utf-8")


def test_samples_out_of_order_are_sorted(tmp_path: Path) -> None:
    samples = [
        '{"ts":3000,"prices":{"X/USDT:USDT":{"mark":"3"}}}',
        '{"ts":1000,"prices":{"X/USDT:USDT":{"mark":"1"}}}',
        '{"ts":2000,"prices":{"X/USDT:USDT":{"mark":"2"},"Y/USDT:USDT":{"mark":"7"}}}',
    ]
    run = write_run(tmp_path, events="", samples="\n".join(samples) + "\n", summary="{}")
    page = build_report(run, tmp_path / "out")
    assert len(parse_page(page).images) == 5  # equity, ratio, size, X, Y
    data = load_run(run)
    assert math.isnan(data.marks["Y/USDT:USDT"][0])  # Y was not in the first sample


# ---------------------------------------------------------------------------------------- cli


def test_run_report_defaults_to_run_dir_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy_run(tmp_path)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run_report(parser.parse_args([str(run)])) == 0
    page = run / "report" / "report.html"
    assert capsys.readouterr().out == f"{page}\n"
    assert page.is_file()


def test_main_with_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SAMPLE), "--out", str(tmp_path / "x")]) == 0
    out = io.StringIO(capsys.readouterr().out).read().strip()
    assert out == str(tmp_path / "x" / "report.html")


def test_a_single_sample_and_odd_values_draw_without_warnings(tmp_path: Path) -> None:
    samples = [
        '{"ts":1000,"prices":{"X/USDT:USDT":{"mark":"inf","last":null}},'
        '"accounts":{"a":{"wallet":"5","equity":null,"marginRatio":"7.5","positions":{}}}}',
    ]
    run = write_run(tmp_path, events="", samples="\n".join(samples) + "\n", summary="{}")
    data = load_run(run)
    assert math.isnan(data.marks["X/USDT:USDT"][0])  # not plottable: a gap
    page = build_report(run, tmp_path / "out")
    assert len(parse_page(page).images) == 4


def test_long_tables_are_capped_and_trades_csv_is_complete(tmp_path: Path) -> None:
    evs = [
        json.dumps(
            {
                "type": "fill",
                "ts": 1000 + i,
                "account": "a",
                "symbol": "X/USDT:USDT",
                "side": "buy" if i % 2 == 0 else "sell",
                "amount": "1",
                "price": "100",
                "fee": "0.05",
                "realizedPnl": "0",
                "id": f"o{i}",
            }
        )
        for i in range(2_500)
    ]
    run = write_run(tmp_path, events="\n".join(evs) + "\n", summary="{}")
    page = build_report(run, tmp_path / "out")
    rows = table_with(parse_page(page), "time (UTC)", "realized PnL (USDT)")
    assert len(rows) == 1_000
    assert (rows[0]["order"], rows[499]["order"], rows[500]["order"]) == ("o0", "o499", "o2000")
    text = page.read_text(encoding="utf-8")
    assert "Trades (2,500 fills, first and last 500 of 2,500 shown)" in text
    assert "1,500 trades not shown: see trades.csv" in text
    with (page.parent / "trades.csv").open(encoding="utf-8", newline="") as file:
        assert len(list(csv.DictReader(file))) == 2_500
    account = table_with(parse_page(page), "account", "realized PnL")
    assert account[0]["fees"] == "125"  # 2,500 x 0.05, summed exactly (no summary figure)


def test_guardbot_report_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from guardbot.cli.main import main as guardbot

    assert guardbot(["report", str(SAMPLE), "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'r' / 'report.html'}\n"
    run = write_run(tmp_path, events='{"type":"fill","ts":1}\n')
    assert guardbot(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"guardbot report: {run}/events.jsonl: line 1: symbol: must be a non-empty string, "
        "got None\n"
    )


# ------------------------------------------------ the overleveraged example (issue 11 item 9)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def overleveraged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's overleveraged replay (liquidated, 73 refusals) and its report."""
    import asyncio

    from guardbot.cli.replay import replay
    from guardbot.config import load_config

    run = tmp_path_factory.mktemp("overleveraged") / "run"
    config = load_config(ROOT / "examples" / "strategies" / "replay.toml", env={})
    summary = asyncio.run(
        replay(ROOT / "examples" / "ticks" / "btc_eth_crash.jsonl", None, run, config=config)
    )
    assert (summary["liquidations"], sum(summary["refusedOrders"].values())) == (1, 73)
    return build_report(run, run / "report")


def test_the_liquidation_closes_the_trade(overleveraged: Path) -> None:
    rows = table_with(parse_page(overleveraged), "time (UTC)", "realized PnL (USDT)")
    last = rows[-1]
    assert (last["role"], last["side"], last["amount"], last["price"]) == (
        "liquidation",
        "sell",
        "3",
        "55891.6",
    )
    # held 0.2 + 0.4 + 0.8 + 1.6 = 3 BTC: the liquidation sells all of it
    assert sum(Decimal(r["amount"]) for r in rows[:-1]) == Decimal(last["amount"])
    assert "Trades (4 fills, 1 liquidation)" in overleveraged.read_text(encoding="utf-8")


def test_margin_ratio_reaches_the_liquidation_level(overleveraged: Path) -> None:
    from guardbot.report.charts import _with_events

    data = load_run(overleveraged.parent.parent)
    liquidation_ts = next(f.ts for f in data.fills if f.role == "liquidation")
    ts = np.frombuffer(data.ts, dtype=np.int64)
    sampled = np.frombuffer(data.account_ratio["demo"], dtype=np.float64)
    assert sampled.max() < 0.9  # the samples alone stop short of the liquidation
    x, y = _with_events(ts, sampled, data.ratio_events["demo"])
    at = np.flatnonzero(x == liquidation_ts)
    assert list(y[at]) == [1.0, 0.0]  # the level it happened at, then the empty account
    assert y.max() == 1.0
    # alerts add the exact ratio that crossed each level
    assert [round(v, 4) for t, v in data.ratio_events["demo"][:3]] == [0.5316, 0.7521, 0.8323]


def test_entry_liquidation_price_and_size_series(overleveraged: Path) -> None:
    data = load_run(overleveraged.parent.parent)
    key = ("demo", "BTC/USDT:USDT")
    sizes = np.frombuffer(data.position_size[key], dtype=np.float64)
    held = sorted({float(v) for v in sizes if not math.isnan(v)})
    assert held == [0.2, 0.6, 1.4, 3.0]
    entry = np.frombuffer(data.entry_price[key], dtype=np.float64)
    assert entry[0] == 60014.5  # the first fill's price
    liquidation = np.frombuffer(data.liquidation_price[key], dtype=np.float64)
    finite = liquidation[np.isfinite(liquidation)]
    assert 55_000 < finite.max() < 56_000  # just above where it was liquidated (55,891.6)
    assert "position_size.png" in parse_page(overleveraged).images


def test_refusals_grouped_by_code_and_symbol(overleveraged: Path) -> None:
    page = parse_page(overleveraged)
    rows = table_with(page, "account", "reason")
    assert [(r["code"], r["symbol"], r["refused"]) for r in rows] == [
        ("LEVERAGE_EXCEEDS_MAX", "BTC/USDT:USDT", "1"),
        ("MARGIN_INSUFFICIENT", "BTC/USDT:USDT", "60"),
        ("NOTIONAL_EXCEEDS_MAX", "BTC/USDT:USDT", "12"),
    ]
    events = table_with(page, "time (UTC)", "detail")
    assert [r["event"] for r in events] == ["margin_alert"] * 3 + ["liquidation"]


def test_one_drawdown_and_the_wallet_reconciled(overleveraged: Path) -> None:
    page = parse_page(overleveraged)
    (row,) = table_with(page, "account", "liquidation losses")
    assert [h for h in row if "drawdown" in h] == ["max drawdown", "max drawdown (of the peak)"]
    assert row["max drawdown (of the peak)"].endswith("%")
    # 10000 + 0 - 88.46397 + 0 - 9911.53603 = 0
    assert (row["start wallet"], row["realized PnL"], row["fees"], row["funding"]) == (
        "10000",
        "0",
        "88.46397",
        "0",
    )
    assert row["liquidation losses"] == "9911.53603"
    assert row["start + PnL - fees + funding - liquidation losses"] == row["end wallet"] == "0"
    assert "disagrees" not in overleveraged.read_text(encoding="utf-8")
