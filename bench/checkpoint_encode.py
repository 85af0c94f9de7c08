"""What a checkpoint costs the tick path (issue 16 ask 1, follow-up): how long the daemon holds the
step lock, and how long the event loop is kept busy at once, while it writes a checkpoint.

The state: ``--orders`` resting limit orders (default 300) and an open cross position in each of
the 12 symbols of the bundled Binance snapshot, over ``--accounts`` accounts, as a busy daemon
holds them. The pipeline is the daemon's own (:class:`guardbot.daemon.pipeline.StepPipeline`);
the :class:`guardbot.daemon.checkpoints.Checkpointer` writes into a real journal in a temporary
directory. A heartbeat task on the same loop records the longest gap between its wake-ups while
the checkpoint is written (what a tick arriving then would wait at most), and the checkpointer
reports the time under the lock. CPU time (``time.process_time``) of the pieces is printed too:

* ``walk``: :func:`guardbot.core.checkpoint.encode` (the state as a detached tree);
* ``json``: that tree as the checkpoint text in one go; ``sha256``: its digest; ``sliced``: the
  same text in the small pieces the daemon makes it from (a turn of the event loop every ~2 ms).

    python bench/checkpoint_encode.py [--orders 300] [--accounts 4] [--repeat 20]

State the machine load (``uptime``) next to the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from guardbot.cli.simulate import build_config  # noqa: E402
from guardbot.core import checkpoint  # noqa: E402
from guardbot.core.commands import parse_command  # noqa: E402
from guardbot.core.engine import Engine  # noqa: E402
from guardbot.daemon import checkpoints  # noqa: E402
from guardbot.daemon.checkpoints import Checkpointer  # noqa: E402
from guardbot.daemon.pipeline import StepPipeline  # noqa: E402
from guardbot.metrics.prometheus import Metrics  # noqa: E402
from guardbot.store.journal import Journal  # noqa: E402
from guardbot.tiers.source import load_bundled  # noqa: E402

TS0 = 1_767_225_600_000


def snapshot_state(pipeline: StepPipeline) -> checkpoint.DaemonState:
    """What the daemon's checkpoint holds (guardbot.daemon.checkpoints.snapshot_state; written
    out here so that the script also measures the code before that function existed)."""
    return checkpoint.DaemonState(
        engine=pipeline.engine.state_root,
        funding=pipeline.funding,
        last_ticks={s: (ts, tick) for s, (ts, tick, _j) in pipeline.last_tick.items()},
    )


def build_engine(orders: int, accounts: int) -> tuple[Engine, list[str]]:
    symbols = sorted(load_bundled("binance").tables)
    config = {
        "type": "config",
        "accounts": {
            f"a{i}": {"wallet": 10_000_000, "default_leverage": 5} for i in range(accounts)
        },
    }
    engine = Engine(build_config(config))
    ts = TS0
    for s, symbol in enumerate(symbols):
        ts += 1
        engine.apply(ts, parse_command({"type": "tick", "symbol": symbol, "mark": 100 + s}))
        for a in range(accounts):
            engine.apply(
                ts,
                parse_command(
                    {"type": "order", "account": f"a{a}", "id": f"p{s}-{a}", "symbol": symbol,
                     "orderType": "market", "side": "buy", "amount": "1"}
                ),
            )  # fmt: skip
    for n in range(orders):
        symbol = symbols[n % len(symbols)]
        mark = 100 + symbols.index(symbol)
        side = "buy" if n % 2 == 0 else "sell"
        price = mark * (0.9 if side == "buy" else 1.1) - (n // len(symbols)) * 0.01
        engine.apply(
            ts,
            parse_command(
                {"type": "order", "account": f"a{n % accounts}", "id": f"r{n}", "symbol": symbol,
                 "orderType": "limit", "side": side, "amount": "0.1", "price": f"{price:.2f}"}
            ),
        )  # fmt: skip
    resting = sum(len(a.orders) for a in engine.accounts.values())
    assert resting == orders, f"{resting} resting orders, expected {orders}"
    return engine, symbols


def pieces(pipeline: StepPipeline, repeat: int) -> dict[str, list[float]]:
    """CPU milliseconds of the walk, the JSON text and the digest, ``repeat`` times."""
    out: dict[str, list[float]] = {"walk": [], "json": [], "sha256": []}
    for _ in range(repeat):
        st = pipeline.engine.state_root
        st.out = []
        started = time.process_time()
        tree = checkpoint.encode(snapshot_state(pipeline))
        walked = time.process_time()
        text = json.dumps(
            {"format": checkpoint.FORMAT, "state": tree}, separators=(",", ":"), allow_nan=False
        )
        dumped = time.process_time()
        checkpoint.digest(text)
        digested = time.process_time()
        if hasattr(checkpoint, "text_pieces"):  # the text in slices, as the daemon makes it
            assert "".join(checkpoint.text_pieces(tree)) == text
            sliced = time.process_time()
            "".join(checkpoint.text_pieces(tree))
            out.setdefault("sliced", []).append((time.process_time() - sliced) * 1000)
        out["walk"].append((walked - started) * 1000)
        out["json"].append((dumped - walked) * 1000)
        out["sha256"].append((digested - dumped) * 1000)
    return out


class Gap:
    """The longest time between two turns of the event loop while ``watch`` runs."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.done = False

    async def watch(self) -> None:
        last = time.perf_counter()
        while not self.done:
            await asyncio.sleep(0)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last)
            last = now


class CpuUnderLock:
    """CPU milliseconds (this thread's) of what the Checkpointer runs holding the step lock: the
    state's walk (``snapshot_tree``) where the text is made after the lock, else the whole
    ``snapshot_text``."""

    def __init__(self) -> None:
        self.lock: list[float] = []
        name = "snapshot_tree" if hasattr(checkpoints, "snapshot_tree") else "snapshot_text"
        self._wrap(checkpoints, name, self.lock)

    @staticmethod
    def _wrap(module: Any, name: str, into: list[float]) -> None:
        inner = getattr(module, name)

        def timed(*args: Any) -> Any:
            started = time.thread_time()
            try:
                return inner(*args)
            finally:
                into.append((time.thread_time() - started) * 1000)

        setattr(module, name, timed)


async def in_daemon(pipeline: StepPipeline, data_dir: Path, repeat: int) -> dict[str, list[float]]:
    """Lock-held and longest-loop-gap milliseconds of ``repeat`` checkpoints, and their size."""
    lock_ms: list[float] = []
    gap_ms: list[float] = []
    sizes: list[float] = []
    text_ms: list[float] = []
    async with Journal.in_data_dir(data_dir, instance="bench") as journal:
        pipeline.attach(journal)
        await pipeline.commit(TS0, "tick", {"type": "tick", "symbol": "X", "mark": 1}, [])
        checkpointer = Checkpointer(
            pipeline, journal, interval_s=3600, retention_days=3650, now_ms=lambda: TS0
        )
        for _ in range(repeat):
            await pipeline.commit(TS0, "tick", {"type": "tick", "symbol": "X", "mark": 1}, [])
            gap = Gap()
            beat = asyncio.create_task(gap.watch())
            await asyncio.sleep(0)
            await checkpointer.write()
            gap.done = True
            await beat
            lock_ms.append(checkpointer.last_encode_s * 1000)
            if hasattr(checkpointer, "last_text_s"):  # since the text is made after the lock
                text_ms.append(checkpointer.last_text_s * 1000)
            gap_ms.append(gap.worst * 1000)
            latest = await journal.checkpoints()
            sizes.append(len(latest[0][5]) / 1024)
    return {"lock": lock_ms, "gap": gap_ms, "kib": sizes, "text": text_ms}


def show(name: str, values: list[float]) -> str:
    return (
        f"{name:>8}: median {statistics.median(values):7.2f}  max {max(values):7.2f}"
        f"  min {min(values):7.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    # the checkpointer's info lines would drown the figures
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    engine, symbols = build_engine(args.orders, args.accounts)
    pipeline = StepPipeline(
        engine,
        instance="bench",
        prefix="guardbot",
        symbols=symbols,
        metrics=Metrics(symbols=symbols),
        clock=time.time,
        wake=lambda: None,
    )
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(
        f"state: {args.orders} resting orders, {len(symbols) * args.accounts} positions, "
        f"{args.accounts} accounts, {len(symbols)} symbols"
    )
    print("CPU ms per checkpoint, by piece:")
    for name, values in pieces(pipeline, args.repeat).items():
        print(show(name, values))
    cpu = CpuUnderLock()
    with tempfile.TemporaryDirectory() as tmp:
        measured = asyncio.run(in_daemon(pipeline, Path(tmp), args.repeat))
    print("in the daemon's Checkpointer (CPU ms of the loop's thread):")
    print(show("lock", cpu.lock) + "   (step lock held: ticks wait)")
    print("in the daemon's Checkpointer (wall ms):")
    print(show("lock", measured["lock"]) + "   (step lock held: ticks wait)")
    if measured["text"]:
        print(show("text", measured["text"]) + "   (JSON text, after the lock)")
    print(show("loop gap", measured["gap"]) + "   (longest the event loop was busy at once)")
    print(f"checkpoint size: {statistics.median(measured['kib']):.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
