"""``guardbot replay``: the run directory's format, determinism, the examples, the CLI entry."""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from guardbot.cli.replay import add_arguments, read_ticks, replay, run_replay
from guardbot.config import load_config
from guardbot.errors import GuardbotError, InputError
from guardbot.feeds.replay import ReplayFeed
from guardbot.paper import StrategyLoadError

ROOT = Path(__file__).resolve().parents[2]
TICKS = ROOT / "examples" / "ticks" / "btc_eth_crash.jsonl"
CONFIG = ROOT / "examples" / "strategies" / "replay.toml"
OVERLEVERAGED = f"{ROOT / 'examples' / 'strategies' / 'overleveraged.py'}:Overleveraged"
MOMENTUM = f"{ROOT / 'examples' / 'strategies' / 'momentum.py'}:Momentum"
SCRIPTED = f"{Path(__file__).parent / 'strategies' / 'scripted.py'}:Scripted"
FILES = ("events.jsonl", "samples.jsonl", "summary.json")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _ticks(path: Path, marks: list[int], symbol: str = "BTC/USDT:USDT", step: int = 400) -> Path:
    rows = [
        json.dumps({"ts": 1000 + i * step, "symbol": symbol, "mark": str(m), "last": str(m)})
        for i, m in enumerate(marks)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


async def test_overleveraged_example_is_refused_alerted_and_liquidated(tmp_path: Path) -> None:
    config = load_config(CONFIG)
    summary = await replay(TICKS, None, tmp_path / "run", config=config)
    # and again: the same bytes (time comes from the ticks only)
    assert await replay(TICKS, None, tmp_path / "again", config=config) == summary
    for file in FILES:
        assert (tmp_path / "run" / file).read_bytes() == (tmp_path / "again" / file).read_bytes()
    assert summary["strategy"] == "examples/strategies/overleveraged.py:Overleveraged"
    assert summary["ticks"] == 2400
    assert summary["symbols"] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert summary["refusedOrders"]["LEVERAGE_EXCEEDS_MAX"] >= 1
    assert summary["refusedOrders"]["MARGIN_INSUFFICIENT"] >= 1
    assert summary["alerts"] >= 3 and summary["liquidations"] == 1
    assert summary["strategyErrors"] == 0
    account = summary["accounts"]["demo"]
    assert account["startWallet"] == "10000"
    assert account["wallet"] == "0" and account["realizedPnl"] == "0"
    assert summary["alertLevels"] == ["0.5", "0.7", "0.8"]
    events = _lines(tmp_path / "run" / "events.jsonl")
    kinds = [e["type"] for e in events]
    assert kinds.count("liquidation") == 1
    assert kinds.count("fill") == summary["trades"]
    assert kinds.count("margin_alert") == summary["alerts"]
    assert all(set(e) >= {"ts", "type", "account"} for e in events)
    assert list(events[0])[:3] == ["type", "ts", "account"]


async def test_runs_are_byte_identical(tmp_path: Path) -> None:
    config = load_config(None)
    for name in ("one", "two"):
        await replay(TICKS, MOMENTUM, tmp_path / name, config=config, params={"window": 60})
    for file in FILES:
        first = (tmp_path / "one" / file).read_bytes()
        assert first == (tmp_path / "two" / file).read_bytes(), file
    summary = json.loads((tmp_path / "one" / "summary.json").read_text(encoding="utf-8"))
    assert summary["trades"] >= 2 and summary["strategyErrors"] == 0


async def test_samples_format_and_rhythm(tmp_path: Path) -> None:
    # ticks 400 ms apart; the strategy trades on some of them
    ticks = _ticks(tmp_path / "t.jsonl", [30000, 30010, 30020, 30030, 30040, 29000, 29010, 29020])
    config = load_config(None)
    summary = await replay(ticks, SCRIPTED, tmp_path / "run", config=config)
    samples = _lines(tmp_path / "run" / "samples.jsonl")
    stamps = [s["ts"] for s in samples]
    event_stamps = {e["ts"] for e in _lines(tmp_path / "run" / "events.jsonl")}
    tick_stamps = [1000 + i * 400 for i in range(8)]
    assert stamps[0] == tick_stamps[0] and stamps[-1] == tick_stamps[-1]
    assert event_stamps <= set(stamps)  # every tick with events is sampled
    for previous, current in itertools.pairwise(stamps):
        # otherwise at most once per second of tick time
        assert current in event_stamps or current - previous >= 1000 or current == stamps[-1]
    assert stamps == [1000, 2200, 3000, 3400, 3800]  # 2200 also is 1.2 s after 1000
    first = samples[0]
    assert first["prices"] == {"BTC/USDT:USDT": {"mark": "30000", "last": "30000"}}
    demo = first["accounts"]["demo"]
    assert set(demo) == {"wallet", "equity", "marginRatio", "positions"}
    position = demo["positions"]["BTC/USDT:USDT"]
    assert position == {
        "side": "long",
        "contracts": "1",
        "entryPrice": "30000",
        "marginMode": "cross",
        "marginRatio": None,
        "liquidationPrice": position["liquidationPrice"],
    }
    assert isinstance(demo["marginRatio"], str) and isinstance(position["liquidationPrice"], str)
    assert summary["startTs"] == 1000 and summary["endTs"] == 1000 + 7 * 400
    assert set(summary) == {
        "ticks", "symbols", "startTs", "endTs", "strategy", "accounts", "alerts",
        "liquidations", "refusedOrders", "strategyErrors", "trades", "alertLevels",
    }  # fmt: skip
    assert set(summary["accounts"]["demo"]) == {
        "startWallet", "wallet", "equity", "realizedPnl", "fees", "funding", "maxDrawdown",
    }  # fmt: skip


async def test_isolated_position_sample_has_its_ratio(tmp_path: Path) -> None:
    ticks = _ticks(tmp_path / "t.jsonl", [3000, 3001, 3002], symbol="ETH/USDT:USDT")
    await replay(
        ticks,
        MOMENTUM,
        tmp_path / "run",
        config=load_config(None),
        params={"window": 1, "breakout_percent": 0},
    )
    last = _lines(tmp_path / "run" / "samples.jsonl")[-2]  # before on_stop closes it
    position = last["accounts"]["demo"]["positions"]["ETH/USDT:USDT"]
    assert position["marginMode"] == "isolated" and isinstance(position["marginRatio"], str)


async def test_gzip_ticks_and_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _ticks(tmp_path / "t.jsonl", [30000, 30100, 30200])
    packed = tmp_path / "t.jsonl.gz"
    packed.write_bytes(gzip.compress(raw.read_bytes()))
    summary = await replay(packed, SCRIPTED, tmp_path / "run", progress=True)
    assert summary["ticks"] == 3
    err = capsys.readouterr().err
    assert "replay: 100% (3 ticks)" in err and err.endswith("\n")


async def test_strategy_errors_are_counted(tmp_path: Path) -> None:
    strategy = tmp_path / "bad.py"
    strategy.write_text(
        "from guardbot.paper import Strategy\n"
        "class Bad(Strategy):\n"
        "    async def on_tick(self, exchange, ticker):\n"
        "        raise ValueError('oops')\n",
        encoding="utf-8",
    )
    ticks = _ticks(tmp_path / "t.jsonl", [30000, 30100])
    with capture_logs():
        summary = await replay(ticks, f"{strategy}:Bad", tmp_path / "run")
    assert summary["strategyErrors"] == 2 and summary["ticks"] == 2


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ticks = _ticks(tmp_path / "t.jsonl", [30000, 30100])
    out = tmp_path / "run"
    status = run_replay(
        _args("--ticks", str(ticks), "--strategy", SCRIPTED, "--out", str(out), "--params", "{}")
    )
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert capsys.readouterr().out.startswith(f"replayed 2 ticks into {out}: 1 trades,")


def test_cli_stop_on_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = tmp_path / "bad.py"
    strategy.write_text(
        "from guardbot.paper import Strategy\n"
        "class Bad(Strategy):\n"
        "    async def on_start(self, exchange):\n"
        "        raise ValueError('oops')\n",
        encoding="utf-8",
    )
    ticks = _ticks(tmp_path / "t.jsonl", [30000])
    argv = ("--ticks", str(ticks), "--strategy", f"{strategy}:Bad", "--out", str(tmp_path / "r"))
    assert run_replay(_args(*argv, "--stop-on-error")) == 1
    assert (
        "guardbot replay: strategy Bad.on_start failed: ValueError: oops" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("argv", "error", "message"),
    [
        (("--params", "[1]"), InputError, "--params: must be a JSON object"),
        (("--params", "{"), InputError, "--params: invalid JSON"),
        (("--account", "ghost"), InputError, "unknown account 'ghost'"),
        (("--strategy", "nope.py:X"), StrategyLoadError, "not found"),
    ],
)
def test_cli_bad_input(
    tmp_path: Path, argv: tuple[str, ...], error: type[GuardbotError], message: str
) -> None:
    ticks = _ticks(tmp_path / "t.jsonl", [30000])
    base = ["--ticks", str(ticks), "--out", str(tmp_path / "r")]
    if "--strategy" not in argv:
        base += ["--strategy", SCRIPTED]
    with pytest.raises(error, match=message):
        run_replay(_args(*base, *argv))


async def test_missing_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--strategy: is required"):
        await replay(tmp_path / "t.jsonl", None, tmp_path / "r", config=load_config(None))
    with pytest.raises(InputError, match=r"--ticks: file .* not found"):
        await replay(tmp_path / "t.jsonl", SCRIPTED, tmp_path / "r")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ts": 1, "symbol": "BTC/USDT:USDT"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"line 1\.mark: is required"):
        await replay(bad, SCRIPTED, tmp_path / "r")


BAD_LINES = [
    '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "1", "mark": "2"}',
    '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "1"',
    "[1, 2]",
    '{"ts": 1.5, "symbol": "BTC/USDT:USDT", "mark": "1"}',
    '{"ts": -1, "symbol": "BTC/USDT:USDT", "mark": "1"}',
    '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "NaN"}',
    '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": NaN}',
    '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "1_000"}',
    '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "-5"}',
    '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "1", "bid": "0"}',
    '{"ts": 1, "symbol": "", "mark": "1"}',
]


@pytest.mark.parametrize("bad", BAD_LINES)
async def test_read_ticks_refuses_what_the_replay_feed_refuses(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"ts": 0, "symbol": "BTC/USDT:USDT", "mark": "1"}\n\n' + bad + "\n")
    with pytest.raises(InputError) as feed_error:
        async with ReplayFeed(path, speed=None) as feed:
            async for _ in feed.updates():
                pass
    with pytest.raises(InputError) as ours:
        list(read_ticks(path))
    assert str(ours.value) == str(feed_error.value)
    assert str(ours.value).startswith("line 3")


async def test_read_ticks_reads_what_the_replay_feed_reads() -> None:
    async with ReplayFeed(TICKS, speed=None) as feed:
        expected = [(u.ts, u.tick) async for u in feed.updates()]  # type: ignore[union-attr]
    assert list(read_ticks(TICKS)) == expected


def test_example_ticks_are_what_the_generator_writes(tmp_path: Path) -> None:
    import runpy

    generate = runpy.run_path(str(ROOT / "examples" / "ticks" / "generate.py"))
    expected = "\n".join(generate["lines"]()) + "\n"
    assert TICKS.read_text(encoding="utf-8") == expected
    assert TICKS.stat().st_size < 300_000


@pytest.mark.parametrize(
    "line",
    [
        '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "59972.7", "last": "59972.7", '
        '"bid": "59966.7", "ask": "59978.7"}',
        '{"ts": 1, "type": "tick", "symbol": "BTC/USDT:USDT", "mark": "60000"}',
        '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "0.000000000000000001", "index": "007.50"}',
        '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": 60000.5, "last": "6e4"}',
        '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "60000", "fundingRate": "-0.0001"}',
        '{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "60000", "note": "extra keys are ignored"}',
    ],
)
def test_fast_path_reads_what_the_feed_reads(tmp_path: Path, line: str) -> None:
    """The plain-price fast path of ``read_ticks`` gives exactly the feed's tick."""
    from guardbot.cli.replay import read_ticks
    from guardbot.core.commands import parse_tick
    from guardbot.formats.jsonio import loads_exact

    path = tmp_path / "one.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    obj = loads_exact(line, "", lines=False)
    assert isinstance(obj, dict)
    assert list(read_ticks(path)) == [(1, parse_tick(obj))]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "0.0"}', "mark"),
        ('{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "1e19"}', "mark"),
        ('{"ts": 1, "symbol": "BTC/USDT:USDT", "mark": "60000", "bid": "٣"}', "bid"),
        ('{"ts": 1, "symbol": " ", "mark": "60000"}', "symbol"),
    ],
)
def test_fast_path_leaves_bad_lines_to_the_full_check(
    tmp_path: Path, line: str, field: str
) -> None:
    from guardbot.cli.replay import read_ticks
    from guardbot.errors import InputError

    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(read_ticks(path))
    assert info.value.field == f"line 1.{field}"
