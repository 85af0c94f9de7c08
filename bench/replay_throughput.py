"""Ticks per second through ``guardbot replay`` (feed, engine, paper exchange, strategy, run files).

Generates a replay file of ``--ticks`` ticks (1,000,000) cycling over 20 symbols (a seeded random
walk each; JSON Lines with ts, symbol, mark, last, bid and ask, as guardbot.feeds.replay reads),
replays it with a trivial strategy defined here (``OneOrder``: one market buy of 0.01 BTC at the
first BTC tick, then nothing; or ``Idle`` with ``--strategy idle``) and prints ticks/s.

Next to it, two engine-only figures from the same process and machine:

* **engine, same ticks**: the same ticks (the first ``--engine-ticks``, pre-parsed to
  ``TickCmd``) through ``Engine.tick`` with the same configuration and the same one position:
  what replay adds on top of the engine (reading and parsing JSON, the strategy hooks, writing
  events and samples);
* **engine_throughput S1**: ``bench/engine_throughput.py``'s S1 quiet measurement (100 symbols,
  1,000 positions with stop-loss and take-profit), ``--s1-ticks`` ticks, best of 1. A heavier
  tick than replay's (1,000 positions against 1), so this ratio flatters replay less.

Targets: replay >= 20,000 ticks/s and >= 40 % of the engine-only figure.

    python bench/replay_throughput.py [--ticks 1000000] [--mode auto|inprocess|subprocess]
                                      [--report] [--keep DIR]

``--mode inprocess`` awaits ``guardbot.cli.replay.replay`` (the figure excludes interpreter
start-up and imports); ``subprocess`` runs ``guardbot replay --ticks FILE --strategy PATH:Class
--out RUN_DIR --config FILE`` and times the whole command; ``auto`` (default) is in-process when
``guardbot.cli.replay`` imports, else the subprocess. ``--report`` also times ``guardbot report``
on the run directory. Files go to a temporary directory, removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:  # for ``import engine_throughput`` when run as a script
    sys.path.insert(0, str(HERE))

from guardbot.paper.strategy import Strategy  # noqa: E402  (after the path set-up)

TS0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BASES = {  # 20 perpetuals, prices of the right magnitude
    "BTC": 60_000.0,
    "ETH": 3_000.0,
    "SOL": 150.0,
    "BNB": 600.0,
    "XRP": 0.6,
    "DOGE": 0.15,
    "ADA": 0.45,
    "AVAX": 35.0,
    "LINK": 15.0,
    "DOT": 7.0,
    "LTC": 80.0,
    "TRX": 0.12,
    "MATIC": 0.7,
    "ATOM": 9.0,
    "NEAR": 5.0,
    "APT": 9.0,
    "ARB": 1.1,
    "OP": 2.5,
    "FIL": 6.0,
    "SUI": 1.5,
}
SYMBOLS = [f"{base}/USDT:USDT" for base in BASES]
ORDER_SYMBOL = "BTC/USDT:USDT"
ORDER_AMOUNT = 0.01
STEP = 0.0005  # ±0.05% per tick: nothing liquidates, nothing alerts
SPREAD = 0.0001
TARGET_RATE = 20_000.0
TARGET_RATIO = 0.4

CONFIG_TOML = """\
[exchange]
id = "binanceusdm"
symbols = [{symbols}]

[accounts.bench]
wallet = 100000
default_margin_mode = "cross"
default_leverage = 10

[guards]
max_leverage = 20
"""


class Idle(Strategy):
    """Does nothing: replay's own cost."""


class OneOrder(Strategy):
    """One market buy of 0.01 BTC at the first BTC tick; then nothing."""

    done = False

    async def on_tick(self, exchange: Any, ticker: dict[str, Any]) -> None:
        if not self.done and ticker["symbol"] == ORDER_SYMBOL:
            self.done = True
            await exchange.create_order(ORDER_SYMBOL, "market", "buy", ORDER_AMOUNT)


# ---------------------------------------------------------------------------------------- input


def write_ticks(path: Path, n: int, seed: int, interval_ms: int) -> None:
    """``n`` ticks cycling over SYMBOLS, ``interval_ms`` apart, a bounded random walk each."""
    rng = random.Random(seed)
    prices = list(BASES.values())
    bases = list(BASES.values())
    k = len(SYMBOLS)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        lines: list[str] = []
        for i in range(n):
            j = i % k
            p = prices[j] * (1 + rng.uniform(-STEP, STEP))
            p = min(max(p, bases[j] * 0.97), bases[j] * 1.03)  # stays near its base
            prices[j] = p
            bid, ask = p * (1 - SPREAD), p * (1 + SPREAD)
            lines.append(
                f'{{"ts":{TS0 + i * interval_ms},"symbol":"{SYMBOLS[j]}","mark":"{p:.6g}",'
                f'"last":"{p:.6g}","bid":"{bid:.6g}","ask":"{ask:.6g}"}}\n'
            )
            if len(lines) == 10_000:
                out.writelines(lines)
                lines.clear()
        out.writelines(lines)


def write_config(path: Path) -> None:
    path.write_text(
        CONFIG_TOML.format(symbols=", ".join(f'"{s}"' for s in SYMBOLS)), encoding="utf-8"
    )


# ---------------------------------------------------------------------------------------- replay


def replay_inprocess(
    ticks: Path, strategy: str, out: Path, config: Path
) -> tuple[float, dict[str, Any]]:
    from guardbot.cli.replay import replay
    from guardbot.config import load_config

    loaded = load_config(config, env={})
    gc.collect()
    t0 = time.perf_counter()
    summary = asyncio.run(replay(ticks, strategy, out, config=loaded, progress=False))
    return time.perf_counter() - t0, summary


def replay_subprocess(
    ticks: Path, strategy: str, out: Path, config: Path
) -> tuple[float, dict[str, Any]]:
    import json

    guardbot = Path(sys.executable).with_name("guardbot")
    command = [str(guardbot)] if guardbot.exists() else [sys.executable, "-m", "guardbot"]
    command += ["replay", "--ticks", str(ticks), "--strategy", strategy, "--out", str(out)]
    command += ["--config", str(config)]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"guardbot replay failed ({done.returncode}): {done.stderr.strip()}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return seconds, summary


# ---------------------------------------------------------------------------------------- engine


def engine_same_ticks(ticks: Path, config: Path, limit: int, one_order: bool) -> tuple[int, float]:
    """Engine.tick alone over the first ``limit`` ticks of the file, pre-parsed; best of 2."""
    import json

    from guardbot.config import load_config
    from guardbot.core.commands import TickCmd, parse_command, parse_tick
    from guardbot.core.engine import Engine
    from guardbot.tiers.source import load_bundled

    cmds: list[tuple[int, TickCmd]] = []
    with ticks.open(encoding="utf-8") as file:
        for line in file:
            if len(cmds) >= limit:
                break
            obj = json.loads(line)
            cmds.append((obj["ts"], parse_tick(obj)))
    loaded = load_config(config, env={})
    best = float("inf")
    for _ in range(2):
        bundled = load_bundled(loaded.exchange.profile.name)
        engine = Engine(loaded.engine_config(bundled.tables, bundled.contract_sizes))
        ordered = not one_order
        gc.collect()
        tick = engine.tick
        t0 = time.perf_counter()
        for ts, cmd in cmds:
            tick(ts, cmd)
            if not ordered and cmd.symbol == ORDER_SYMBOL:
                ordered = True
                order = {
                    "type": "order",
                    "account": "bench",
                    "id": "bench-1",
                    "symbol": ORDER_SYMBOL,
                    "orderType": "market",
                    "side": "buy",
                    "amount": str(ORDER_AMOUNT),
                }
                events = engine.apply(ts, parse_command(order))
                assert any(e["type"] == "fill" for e in events), events
        best = min(best, time.perf_counter() - t0)
    return len(cmds), best


def engine_s1(n: int, seed: int) -> tuple[int, float]:
    """bench/engine_throughput.py's S1 quiet measurement, best of 1."""
    import engine_throughput as et

    scenario = et.build("S1", seed, 0, strict=True, progress=False)
    quiet = et.make_ticks(scenario, "quiet", n, seed)
    gc.collect()
    (result,) = et.measure([(scenario, quiet)], "quiet", 1, freeze=False)
    return result.ticks, result.seconds


# ---------------------------------------------------------------------------------------- main


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000, help="ticks to replay (1000000)")
    parser.add_argument("--interval-ms", type=int, default=10, help="tick spacing (10 ms)")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--mode", choices=("auto", "inprocess", "subprocess"), default="auto")
    parser.add_argument("--strategy", choices=("one-order", "idle"), default="one-order")
    parser.add_argument(
        "--engine-ticks",
        type=int,
        default=200_000,
        help="ticks of the same-ticks engine figure (200000; pre-parsed ticks take memory)",
    )
    parser.add_argument("--s1-ticks", type=int, default=100_000, help="engine_throughput S1 ticks")
    parser.add_argument("--no-s1", action="store_true", help="skip the engine_throughput S1 run")
    parser.add_argument("--report", action="store_true", help="also time guardbot report")
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args(argv)

    mode = args.mode
    if mode == "auto":
        try:
            import guardbot.cli.replay  # noqa: F401
        except ImportError:
            mode = "subprocess"
        else:
            mode = "inprocess"
    strategy = (
        f"{Path(__file__).resolve()}:{'OneOrder' if args.strategy == 'one-order' else 'Idle'}"
    )
    work = args.keep or Path(tempfile.mkdtemp(prefix="guardbot-replay-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        ticks, config, out = work / "ticks.jsonl", work / "bench.toml", work / "run"
        if out.exists():
            shutil.rmtree(out)
        write_config(config)
        t0 = time.perf_counter()
        write_ticks(ticks, args.ticks, args.seed, args.interval_ms)
        print(
            f"guardbot replay throughput: {args.ticks:,} ticks over {len(SYMBOLS)} symbols "
            f"({ticks.stat().st_size / 1e6:,.0f} MB, written in {time.perf_counter() - t0:.1f} s), "
            f"strategy {args.strategy}, {mode}, Python {sys.version.split()[0]}",
            flush=True,
        )
        run = replay_inprocess if mode == "inprocess" else replay_subprocess
        seconds, summary = run(ticks, strategy, out, config)
        assert summary["ticks"] == args.ticks, summary["ticks"]
        assert summary["strategyErrors"] == 0, summary
        replay_rate = args.ticks / seconds
        samples = sum(1 for _ in (out / "samples.jsonl").open(encoding="utf-8"))
        events = sum(1 for _ in (out / "events.jsonl").open(encoding="utf-8"))
        print(
            f"replay               {args.ticks:>9,} ticks {seconds:>8.2f} s {replay_rate:>9,.0f} "
            f"ticks/s  ({summary['trades']} trades, {events:,} events, {samples:,} samples)",
            flush=True,
        )
        n, engine_seconds = engine_same_ticks(
            ticks, config, min(args.engine_ticks, args.ticks), args.strategy == "one-order"
        )
        same_rate = n / engine_seconds
        print(
            f"engine, same ticks   {n:>9,} ticks {engine_seconds:>8.2f} s {same_rate:>9,.0f} "
            "ticks/s  (Engine.tick on pre-parsed ticks, best of 2)",
            flush=True,
        )
        s1_rate = None
        if not args.no_s1:
            n1, s1_seconds = engine_s1(args.s1_ticks, args.seed)
            s1_rate = n1 / s1_seconds
            print(
                f"engine_throughput S1 {n1:>9,} ticks {s1_seconds:>8.2f} s {s1_rate:>9,.0f} "
                "ticks/s  (quiet, 1,000 positions, best of 1)",
                flush=True,
            )
        if args.report:
            from guardbot.report import build_report

            t0 = time.perf_counter()
            build_report(out, work / "report")
            print(f"guardbot report      {time.perf_counter() - t0:.2f} s ({samples:,} samples)")
        print()
        print(
            f"target replay >= {TARGET_RATE:,.0f} ticks/s: {replay_rate:,.0f} "
            f"{verdict(replay_rate >= TARGET_RATE)}"
        )
        ratio = replay_rate / same_rate
        print(
            f"target replay/engine >= {TARGET_RATIO:.0%}: {ratio:.0%} of engine on the same ticks "
            f"{verdict(ratio >= TARGET_RATIO)}"
        )
        if s1_rate is not None:
            ratio_s1 = replay_rate / s1_rate
            print(
                f"                        {ratio_s1:.0%} of engine_throughput S1 "
                f"{verdict(ratio_s1 >= TARGET_RATIO)}"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
