"""Leak probe: the soak's load driven in process, fast, and what stays allocated after it.

The daemon's step pipeline (engine, SQLite journal with outbox, metrics, checkpointer with
retention) is fed the soak bench's input mix on a simulated clock: ``--rate`` ticks/s over 20
symbols, an ``order`` command every ``--cmd-every`` s in a cross and an isolated account (a
``set_leverage`` before each isolated open, half of those with a stop-loss; positions closed with
reduce-only market orders), an excursion every ~``--excursion-every`` s that drives an isolated
position's mark toward its liquidation price and back (margin alerts, some liquidations, stops),
a checkpoint every ``--checkpoint-interval`` s with retention. No MQTT, no feed: what grows there
is checked elsewhere.

After a warm-up of ``--warm`` commands it takes tracemalloc snapshots and object counts by type
(after ``gc.collect()``) at N and 2N further commands and prints what grew, by traceback and by
type, per command. A flat process prints (almost) nothing.

    python bench/leak_probe.py [--commands 2000] [--warm 500] [--top 15]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from guardbot.config import load_config
from guardbot.core.commands import TickCmd
from guardbot.daemon.checkpoints import Checkpointer
from guardbot.daemon.pipeline import StepPipeline
from guardbot.daemon.tier_tables import TierTables
from guardbot.feeds.base import TickUpdate
from guardbot.metrics.prometheus import Metrics
from guardbot.runtime.logs import configure_logging
from guardbot.store.journal import Journal

BASES = ("BTC", "ETH", "SOL", "BNB", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT")
BASES += ("LTC", "TRX", "ATOM", "NEAR", "APT", "ARB", "OP", "FIL", "SUI", "BCH")
SYMBOLS = [f"{b}/USDT:USDT" for b in BASES]
PRICE = {"BTC/USDT:USDT": 60000.0, "ETH/USDT:USDT": 3000.0}
NOTIONAL = {"main": 12000.0, "iso": 10000.0}

CONFIG = """
[guardbot]
instance = "soak"
data_dir = "{data_dir}"
log_level = "warning"

[exchange]
id = "binanceusdm"
symbols = {symbols}

[feed]
mode = "sim"

[accounts.main]
wallet = 20000
default_margin_mode = "cross"
default_leverage = 20
maker_fee = 0.0002
taker_fee = 0.0005

[accounts.iso]
wallet = 1000000
default_margin_mode = "isolated"
default_leverage = 20
maker_fee = 0.0002
taker_fee = 0.0005

[guards]
max_leverage = 50
daily_loss_limit = 1e9

[alerts]
margin_ratio_levels = [0.5, 0.7, 0.8]
hysteresis = 0.05

[mqtt]
url = "mqtt://127.0.0.1:1"
embedded_broker = "never"

[store]
retention_days = {retention}
"""


T0 = 1_700_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = T0

    def __call__(self) -> float:
        return self.ms / 1000


class Load:
    """The soak's inputs on a simulated clock."""

    def __init__(self, args: argparse.Namespace, pipeline: StepPipeline, clock: Clock) -> None:
        self.args = args
        self.pipeline = pipeline
        self.clock = clock
        self.rng = random.Random(args.seed)
        self.walk = dict.fromkeys(SYMBOLS, 0.0)
        self.mark: dict[str, float] = {}
        self.untradable: set[str] = set()
        self.seq = 0
        self.counts: Counter[str] = Counter()
        # excursion: (symbol, target, start ms, ramp ms, hold ms)
        self.excursion: tuple[str, float, int, int, int] | None = None
        self.next_excursion = clock.ms + int(args.excursion_every * 500)
        self.turn = 0

    def _price(self, symbol: str) -> float:
        base = PRICE.get(symbol, 100.0)
        w = self.walk[symbol]
        w += -0.002 * w + self.rng.gauss(0, 0.0003)
        w = max(-0.01, min(0.01, w))
        self.walk[symbol] = w
        mark = base * (1 + w)
        now = self.clock.ms
        if self.excursion is None and now >= self.next_excursion:
            self.excursion = self._new_excursion(now)
            self.counts["excursions"] += 1
        if self.excursion is not None:
            sym, target, start, ramp, hold = self.excursion
            t = now - start
            alpha: float | None
            if t < ramp:
                alpha = t / ramp
            elif t < ramp + hold:
                alpha = 1.0
            elif t < 2 * ramp + hold:
                alpha = 1 - (t - ramp - hold) / ramp
            else:
                alpha = None
            if alpha is None:
                self.excursion = None
                every = self.args.excursion_every * 1000
                self.next_excursion = now + int(every * self.rng.uniform(0.5, 1.5))
            elif sym == symbol:
                mark = (1 - alpha) * mark + alpha * target * (1 + self.rng.gauss(0, 0.0001))
        return mark

    def _new_excursion(self, now: int) -> tuple[str, float, int, int, int]:
        iso = self.pipeline.engine.accounts["iso"]
        open_ = [p for p in iso.positions.values() if p.is_open]
        ramp, hold = int(self.rng.uniform(2, 4) * 1000), int(self.rng.uniform(3, 8) * 1000)
        if open_ and self.rng.random() < 0.8:
            pos = self.rng.choice(open_)
            entry = float(pos.entry_price)
            # about where it liquidates: 1/leverage less the maintenance margin away
            liq = entry * (1 - pos.sign * (1 / float(pos.leverage) - 0.005))
            target = entry + self.rng.uniform(0.85, 1.0) * (liq - entry)
            return pos.symbol, target, now, ramp, hold
        symbol = self.rng.choice(SYMBOLS)
        size = self.rng.uniform(0.02, 0.06) * self.rng.choice((-1, 1))
        return symbol, PRICE.get(symbol, 100.0) * (1 + size), now, ramp, hold

    async def ticks(self, n: int) -> None:
        step_ms = 1000 / self.args.rate
        for _ in range(n):
            symbol = SYMBOLS[self.turn % len(SYMBOLS)]
            self.turn += 1
            self.clock.ms += int(step_ms) or 1
            mark = self._price(symbol)
            q = 0.1 if PRICE.get(symbol, 100.0) > 1000 else 0.01
            tick = TickCmd(
                symbol=symbol,
                mark=_d(mark, q),
                bid=_d(mark - q, q),
                ask=_d(mark + q, q),
                last=_d(mark, q),
            )
            self.mark[symbol] = mark
            events = await self.pipeline.tick(TickUpdate(self.clock.ms, tick), self.clock())
            for e in events:
                self.counts[str(e.get("type"))] += 1

    async def send(self, body: dict[str, Any]) -> None:
        self.seq += 1
        events = await self.pipeline.control_command(body)
        for e in events:
            self.counts[str(e.get("type"))] += 1
            if e.get("type") == "order_rejected" and e.get("code") == "UNKNOWN_SYMBOL":
                self.untradable.add(str(body.get("symbol")))
        self.counts["commands"] += 1

    async def command(self) -> None:
        account = self.rng.choice(("main", "iso"))
        acct = self.pipeline.engine.accounts[account]
        held = [p for p in acct.positions.values() if p.is_open]
        open_symbols = {p.symbol for p in held}
        free = [
            s
            for s in SYMBOLS
            if s not in open_symbols and s in self.mark and s not in self.untradable
        ]
        limit = 1 if account == "main" else 2
        if held and (len(held) >= limit or not free or self.rng.random() < 0.4):
            pos = held[0]
            await self.send(
                {
                    "type": "order",
                    "account": account,
                    "id": f"close-{self.seq + 1}",
                    "symbol": pos.symbol,
                    "orderType": "market",
                    "side": "sell" if pos.side == "long" else "buy",
                    "amount": str(pos.contracts),
                    "params": {"reduceOnly": True},
                }
            )
            return
        if not free:
            return
        symbol = self.rng.choice(free)
        side = self.rng.choice(("buy", "sell"))
        price = self.mark[symbol]
        body: dict[str, Any] = {
            "type": "order",
            "account": account,
            "id": f"open-{self.seq + 1}",
            "symbol": symbol,
            "orderType": "market",
            "side": side,
            "amount": f"{NOTIONAL[account] / price:.3f}",
        }
        if account == "iso":
            leverage = self.rng.choice((20, 25, 33))
            await self.send(
                {"type": "set_leverage", "account": account, "symbol": symbol, "leverage": leverage}
            )
            if self.rng.random() < 0.5:
                sign = 1 if side == "buy" else -1
                q = 0.1 if price > 1000 else 0.01
                body["params"] = {"stopLossPrice": str(_d(price * (1 - sign * 0.04), q))}
            body["id"] = f"open-{self.seq + 1}"
        await self.send(body)


def _d(value: float, q: float) -> Decimal:
    return Decimal(f"{value:.8f}").quantize(Decimal(str(q)))


def rss_kb() -> int:
    """Resident set size of this process, KiB (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def sqlite_kb() -> int:
    """Heap memory SQLite holds (its page caches and statements), KiB; -1 if unknown."""
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return -1
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return int(lib.sqlite3_memory_used()) // 1024


def type_counts() -> Counter[str]:
    return Counter(type(o).__qualname__ for o in gc.get_objects())


async def amain(args: argparse.Namespace) -> int:
    # the daemon's logging as the soak runs it (JSON, warning), to nowhere
    configure_logging("json", "warning", stream=open(os.devnull, "w"))  # noqa: SIM115
    with tempfile.TemporaryDirectory(prefix="guardbot-leak-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        path = Path(tmp) / "guardbot.toml"
        symbols = "[" + ", ".join(f'"{s}"' for s in SYMBOLS) + "]"
        path.write_text(
            CONFIG.format(data_dir=data_dir, symbols=symbols, retention=args.retention_days),
            encoding="utf-8",
        )
        config = load_config(path, {})
        clock = Clock()
        pipeline = StepPipeline(
            TierTables(config).initial_engine(),
            instance="soak",
            prefix="guardbot",
            symbols=config.exchange.symbols,
            metrics=Metrics(symbols=config.exchange.symbols),
            clock=clock,
            wake=lambda: None,
        )
        load = Load(args, pipeline, clock)
        ticks_per_cmd = max(1, int(args.rate * args.cmd_every))
        async with Journal.in_data_dir(data_dir, instance="soak") as journal:
            pipeline.attach(journal)
            checkpointer = Checkpointer(
                pipeline,
                journal,
                interval_s=args.checkpoint_interval,
                retention_days=args.retention_days,
                now_ms=lambda: clock.ms,
            )
            next_checkpoint = clock.ms + int(args.checkpoint_interval * 1000)

            async def cycles(n: int) -> None:
                nonlocal next_checkpoint
                for _ in range(n):
                    await load.ticks(ticks_per_cmd)
                    await load.command()
                    if clock.ms >= next_checkpoint:
                        await checkpointer.write()
                        load.counts["checkpoints"] += 1
                        next_checkpoint = clock.ms + int(args.checkpoint_interval * 1000)

            started = time.process_time()
            await cycles(args.warm)
            gc.collect()
            if args.frames:
                tracemalloc.start(args.frames)
            marks: list[tuple[Counter[str], Any, Counter[str]]] = []
            memory: list[tuple[int, int, int]] = []
            for _ in range(3):
                gc.collect()
                snap = tracemalloc.take_snapshot() if args.frames else None
                marks.append((load.counts.copy(), snap, type_counts()))
                memory.append((rss_kb(), sqlite_kb(), sys.getallocatedblocks()))
                if len(marks) < 3:
                    await cycles(args.commands)
            cpu = time.process_time() - started
        hours = (clock.ms - T0) / 3.6e6
        print(
            f"leak probe: warm-up {args.warm} + 2 x {args.commands} cycles of {ticks_per_cmd} "
            f"ticks and a command; {cpu:.1f} s CPU; {hours:.2f} h simulated"
        )
        print("inputs per window:", dict(marks[1][0] - marks[0][0]))
        for label, a, b in (("N", 0, 1), ("2N", 1, 2)):
            rss = (memory[b][0] - memory[a][0]) * 1024 / args.commands
            lite = (memory[b][1] - memory[a][1]) * 1024 / args.commands
            blocks = (memory[b][2] - memory[a][2]) / args.commands
            print(
                f"\n== window {label}: per cycle RSS {rss:+.0f} B, SQLite heap {lite:+.0f} B, "
                f"Python blocks {blocks:+.2f} (RSS {memory[b][0] / 1024:.1f} MB)"
            )
            if marks[b][1] is None:
                continue
            diff = marks[b][1].compare_to(marks[a][1], "traceback")
            grown = sum(s.size_diff for s in diff)
            print(f"  {grown / 1024:+.1f} KiB traced in all, top by size:")
            for stat in sorted(diff, key=lambda s: -s.size_diff)[: args.top]:
                if stat.size_diff <= 0:
                    break
                frames = [f"{Path(f.filename).name}:{f.lineno}" for f in stat.traceback][
                    : args.depth
                ]
                print(f"  {stat.size_diff / 1024:+8.1f} KiB {stat.count_diff:+6d} blocks  {frames}")
        for label, a, b in (("N", 0, 1), ("2N", 1, 2)):
            types = marks[b][2] - marks[a][2]
            print(f"{label}: objects by type, grown:", types.most_common(args.top))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=2000, help="commands per window (2000)")
    parser.add_argument("--warm", type=int, default=500, help="warm-up commands (500)")
    parser.add_argument("--rate", type=float, default=200.0, help="ticks/s, simulated (200)")
    parser.add_argument("--cmd-every", type=float, default=0.25, help="s between commands")
    parser.add_argument("--excursion-every", type=float, default=20.0)
    parser.add_argument("--checkpoint-interval", type=float, default=30.0)
    parser.add_argument("--retention-days", type=float, default=0.003)
    parser.add_argument(
        "--frames", type=int, default=8, help="traceback depth, 0: no tracemalloc (8)"
    )
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--depth", type=int, default=5, help="frames shown per traceback (5)")
    parser.add_argument("--seed", type=int, default=11)
    return asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
