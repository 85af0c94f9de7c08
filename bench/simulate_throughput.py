"""Ticks per second through the public ``guardbot simulate`` command (issue 17's targets).

Two inputs, JSON Lines as docs/contracts.md §2 describes, written by this script:

* **S1**: ``bench/engine_throughput.py``'s S1 set-up as simulate lines: a ``config`` line (100
  accounts, even ones cross and odd ones isolated, guards on, the nine-bracket tier table for
  every symbol), then per symbol a tick, ``set_leverage`` and market orders carrying
  ``stopLossPrice`` / ``takeProfitPrice`` (1,000 positions over 100 symbols, 2,000 protective
  orders, 200 resting limits); then ``--ticks`` quiet ticks (engine_throughput's seeded walk:
  no alert, stop, limit or liquidation is reached) cycling over the 100 symbols.
* **S2**: S1 plus 99,000 idle positions in 9,900 other symbols that are never ticked, opened the
  same way by 990 further accounts of 100 positions each (other accounts rather than S1's, so
  that setting them up through the command takes minutes, not hours: the engine's per-order
  work still grows with the account's positions; ``bench/engine_throughput.py`` S2 measures
  idle positions inside the ticked accounts, at the engine).

The tick rate is measured in this process on what the command runs (``simulate_lines`` over
the file), from the first tick line to the last one applied: reading, parsing and applying the
tick lines (the quiet ticks raise no events); the ``final`` event after them (every account's
state, in S2 the margin snapshots of 99,000 positions: a cost of the set-up's size, paid once)
is timed and printed apart. Per second of CPU time (on a machine shared with
other work the wall clock measures the neighbours too); best of ``--repeats``. Then the command
itself runs once as a subprocess with and without the ticks, and the whole command's times are
printed with the rate by difference (noisy where the set-up dwarfs the ticks, as in S2).

Targets: S1 >= 50,000 ticks/s; S2 >= 0.9 x S1.

    python bench/simulate_throughput.py [--ticks 200000] [--repeats 3] [--only s1|s2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import engine_throughput as et  # noqa: E402  (after the path set-up)

TARGET_S1 = 50_000.0
TARGET_RATIO = 0.9
IDLE_ACCOUNTS = 990
IDLE_PER_ACCOUNT = 100


def idle_account(symbol_index: int, holder: int) -> str:
    k = ((symbol_index - et.N_TICKED) * et.HOLDERS + holder) // IDLE_PER_ACCOUNT
    return f"idle{k}"


class Lines(et.Setup):
    """engine_throughput's set-up commands, written as simulate lines instead of applied."""

    def __init__(self, out: Any, idle: bool) -> None:
        self.out = out
        self.ts = et.TICK_TS0 - 3_600_000
        self.idle = idle
        self.index = 0
        self.holder = 0

    def send(self, obj: dict[str, object]) -> list[Any]:
        self.ts += 1
        if self.idle and "account" in obj:
            # engine_throughput names the holder acct(s+j) % 100: move it to its idle account
            holder = int(str(obj["account"])[4:])
            j = (holder - self.index) % et.N_ACCOUNTS
            obj = dict(obj, account=idle_account(self.index, j))
            if "id" in obj:
                obj["id"] = f"{obj['id']}-{j}"
        self.out.write(json.dumps({**obj, "ts": self.ts}, separators=(",", ":")) + "\n")
        return []

    def open_symbol(self, sym: et.PlannedSymbol) -> None:
        self.index = sym.index
        super().open_symbol(sym)


def config_line(symbols: list[et.PlannedSymbol], idle: bool) -> str:
    rows = [
        {"minNotional": lo, "maxNotional": hi, "maintenanceMarginRate": mmr, "maxLeverage": lev}
        for lo, hi, mmr, lev in et.TIER_ROWS
    ]
    wallets = et.wallets(symbols[: et.N_TICKED])
    accounts: dict[str, Any] = {
        et.account_name(a): {
            "wallet": str(w),
            "default_margin_mode": "cross" if a % 2 == 0 else "isolated",
            "default_leverage": 10,
        }
        for a, w in enumerate(wallets)
    }
    if idle:
        need: dict[str, float] = {}
        for sym in symbols[et.N_TICKED :]:
            for j, p in enumerate(sym.positions):
                name = idle_account(sym.index, j)
                need[name] = need.get(name, 1_000.0) + 3 * p.notional / p.leverage
        for k in range(IDLE_ACCOUNTS):
            name = f"idle{k}"
            accounts[name] = {
                "wallet": str(Decimal(round(need[name], -2))),
                "default_margin_mode": "cross" if k % 2 == 0 else "isolated",
                "default_leverage": 10,
            }
    config = {
        "type": "config",
        "tiers": {et.symbol_name(s.index): rows for s in symbols},
        "fees": {"maker": "0.0002", "taker": "0.0005"},
        "accounts": accounts,
        "guards": {
            "max_leverage": 20,
            "require_stop_loss": True,
            "max_position_notional": 500_000,
            "daily_loss_limit": 10_000_000,
        },
    }
    return json.dumps(config, separators=(",", ":")) + "\n"


def write_inputs(work: Path, name: str, n_ticks: int, seed: int) -> tuple[Path, Path]:
    """The set-up-only file and the set-up + ticks file of scenario ``name``."""
    idle = name == "S2"
    symbols = et.plan(seed, et.N_OTHER if idle else 0)
    setup = work / f"{name}-setup.jsonl"
    with setup.open("w", encoding="utf-8") as out:
        out.write(config_line(symbols, idle))
        lines = Lines(out, idle=False)
        for sym in symbols[: et.N_TICKED]:
            lines.open_symbol(sym)
        lines.idle = idle
        for sym in symbols[et.N_TICKED :]:
            lines.open_symbol(sym)
        last_ts = lines.ts
    # the quiet walk of engine_throughput (its bounds come from S1's engine state)
    scenario = et.build("S1", seed, 0, strict=True, progress=False)
    ticks = et.make_ticks(scenario, "quiet", n_ticks, seed)
    full = work / f"{name}-ticks.jsonl"
    shutil.copyfile(setup, full)
    with full.open("a", encoding="utf-8") as out:
        chunk: list[str] = []
        for i, tick in enumerate(ticks):
            chunk.append(
                f'{{"type":"tick","ts":{last_ts + 1 + i},"symbol":"{tick.symbol}",'
                f'"mark":"{tick.mark}","bid":"{tick.bid}","ask":"{tick.ask}"}}\n'
            )
            if len(chunk) == 10_000:
                out.writelines(chunk)
                chunk.clear()
        out.writelines(chunk)
    return setup, full


def run(path: Path) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of ``guardbot simulate path > /dev/null``."""
    guardbot = Path(sys.executable).with_name("guardbot")
    command = [str(guardbot)] if guardbot.exists() else [sys.executable, "-m", "guardbot"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(os.devnull, "w") as sink:
        done = subprocess.run(
            [*command, "simulate", str(path)], stdout=sink, stderr=subprocess.PIPE, check=False
        )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"guardbot simulate {path} failed: {done.stderr.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def tick_phase(setup: Path, full: Path) -> tuple[float, float]:
    """CPU seconds of the tick lines alone, in this process: ``simulate_lines`` (what the
    command runs) over the file, timed from the first tick line to the last one applied (the
    quiet ticks raise no events, so nothing is written in between); and the CPU seconds of the
    ``final`` event after them (every account's state: in S2, 99,000 positions' margin
    snapshots, a cost of the set-up's size paid once, not per tick)."""
    from guardbot.cli.simulate import simulate_lines

    with setup.open(encoding="utf-8") as file:
        n_setup = sum(1 for _ in file)
    started = [0.0]
    ended = [0.0]

    def lines() -> Iterator[str]:
        with full.open(encoding="utf-8") as file:
            for i, line in enumerate(file):
                if i == n_setup:
                    gc.collect()
                    started[0] = time.process_time()
                yield line
        ended[0] = time.process_time()  # asked for a line after the last: all are applied

    for event in simulate_lines(lines()):
        if event["type"] == "final":
            return ended[0] - started[0], time.process_time() - ended[0]
        assert started[0] == 0.0, f"a quiet tick raised {event}"
    raise AssertionError("no final event")


def measure(work: Path, name: str, n_ticks: int, seed: int, repeats: int) -> float:
    t0 = time.perf_counter()
    setup, full = write_inputs(work, name, n_ticks, seed)
    print(
        f"{name}: input written in {time.perf_counter() - t0:.0f} s "
        f"({full.stat().st_size / 1e6:,.0f} MB)",
        flush=True,
    )
    best = 0.0
    for _ in range(repeats):
        ticks_cpu, final_cpu = tick_phase(setup, full)
        rate = n_ticks / ticks_cpu
        best = max(best, rate)
        print(
            f"  {name}: tick lines through simulate_lines: {rate:>9,.0f} ticks/s CPU "
            f"(then the final event: {final_cpu:.2f} s CPU, load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    without_wall, without_cpu = run(setup)
    whole_wall, whole_cpu = run(full)
    print(
        f"  {name}: the command: {whole_wall:6.2f} s ({whole_cpu:.2f} s CPU) with the ticks, "
        f"{without_wall:6.2f} s ({without_cpu:.2f} s CPU) set-up only: "
        f"{n_ticks / max(whole_cpu - without_cpu, 1e-9):,.0f} ticks/s CPU by difference",
        flush=True,
    )
    print(f"{name} best: {best:,.0f} ticks/s of CPU time", flush=True)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--only", choices=("s1", "s2"))
    parser.add_argument("--keep", type=Path, help="write the inputs here and keep them")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="guardbot-simulate-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"guardbot simulate throughput: {args.ticks:,} quiet ticks over 100 symbols, "
        f"Python {sys.version.split()[0]}",
        flush=True,
    )
    try:
        rates: dict[str, float] = {}
        for name in ("S1", "S2"):
            if args.only and args.only != name.lower():
                continue
            rates[name] = measure(work, name, args.ticks, args.seed, args.repeats)
        print()
        if "S1" in rates:
            ok = rates["S1"] >= TARGET_S1
            print(
                f"target S1 >= {TARGET_S1:,.0f} ticks/s: {rates['S1']:,.0f} "
                f"{'PASS' if ok else 'MISS'}"
            )
        if "S1" in rates and "S2" in rates:
            ratio = rates["S2"] / rates["S1"]
            print(
                f"target S2/S1 >= {TARGET_RATIO}: {ratio:.2f} "
                f"{'PASS' if ratio >= TARGET_RATIO else 'MISS'}"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
