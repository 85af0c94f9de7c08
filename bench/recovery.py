"""Start-up time of ``guardbot run`` against a large journal: how fast recovery replays inputs.

At start the daemon re-applies every journaled input (``guardbot.daemon.recovery``), so start-up
time grows with the journal. This builds a journal of ``--inputs`` inputs (ticks of BTC and ETH,
a seeded random walk, with a market order every ``--order-every`` inputs that keeps a cross
position open in each symbol, as a busy daemon journals them) directly in the SQLite file, then
measures, best of ``--repeat``:

* **in-process**: :func:`guardbot.daemon.recovery.recover` alone (reading the journal,
  parsing, ``Engine.apply``): inputs/s;
* **subprocess** (unless ``--no-subprocess``): ``guardbot run`` on the sim feed with the embedded
  broker off and no broker listening, from process start to the "guardbot daemon started" log
  line, then stopped: what ``systemctl start`` waits for (interpreter start, imports, recovery).

With ``--tail K`` (default 1000) a checkpoint of the state after all but the last K inputs is
stored before the subprocess starts, as a running daemon leaves one every
``checkpoint_interval_s``: start-up then loads it and replays K inputs (``--tail -1``: no
checkpoint, the whole journal is replayed, as before checkpoints existed). Target (issue 16):
ready in under 2 s whatever the journal's length.

    python bench/recovery.py [--inputs 1000000] [--order-every 50] [--repeat 3] [--tail 1000]
                             [--no-full-replay] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (ROOT, HERE):  # guardbot, and bench/_harness when run as a script
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from _harness import Child, free_port  # noqa: E402  (after the path set-up)

from guardbot.config import load_config  # noqa: E402
from guardbot.core import checkpoint  # noqa: E402
from guardbot.core.commands import parse_command  # noqa: E402
from guardbot.daemon.checkpoints import snapshot_text  # noqa: E402
from guardbot.daemon.recovery import recover  # noqa: E402
from guardbot.daemon.sdnotify import Notifier  # noqa: E402
from guardbot.daemon.service import Daemon  # noqa: E402
from guardbot.store.journal import Journal  # noqa: E402

#: Rows per transaction when the journal is built.
_BUILD_BATCH = 500_000
TS0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SYMBOLS = {"BTC/USDT:USDT": 60_000.0, "ETH/USDT:USDT": 3_000.0}
INSTANCE = "recovery"

CONFIG = """
[guardbot]
instance = "{instance}"
data_dir = "{data_dir}"
log_format = "json"
log_level = "info"

[exchange]
id = "binanceusdm"
symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]

[feed]
mode = "sim"

[accounts.main]
wallet = 1000000
default_margin_mode = "cross"
default_leverage = 10

[mqtt]
url = "mqtt://127.0.0.1:{mqtt_port}"
embedded_broker = "never"

[metrics]
enabled = false

[store]
# The journal's inputs are dated 2026-01-01 onwards and a run journals today's: with the default
# 30 days, the first run's clean stop would prune the whole journal, and the next runs would
# start against an empty one.
retention_days = 36500
"""


def build_journal(data_dir: Path, inputs: int, order_every: int, seed: int) -> int:
    """Create the journal's schema (through :class:`Journal`) and fill ``inputs`` rows in one
    transaction; returns the file size in bytes."""

    async def create() -> None:
        async with Journal.in_data_dir(data_dir, instance=INSTANCE):
            pass

    asyncio.run(create())
    rng = random.Random(seed)
    prices = dict(SYMBOLS)
    names = list(SYMBOLS)
    side_of = {name: "buy" for name in names}

    def rows() -> object:
        orders = 0
        for n in range(inputs):
            ts = TS0 + n * 10
            symbol = names[n % len(names)]
            if n >= len(names) and n % order_every == 0:
                orders += 1
                symbol = names[orders % len(names)]  # every symbol in turn
                # buy 0.02, then sell 0.01 and buy 0.01 in turn: the position never closes
                side = side_of[symbol]
                side_of[symbol] = "sell" if side == "buy" else "buy"
                body = {
                    "type": "order",
                    "account": "main",
                    "id": f"bench-{orders}",
                    "symbol": symbol,
                    "orderType": "market",
                    "side": side,
                    "amount": "0.02" if orders <= len(names) else "0.01",
                }
                yield ts, "order", json.dumps(body, separators=(",", ":"))
                continue
            price = prices[symbol] * (1 + rng.gauss(0, 0.0005))
            prices[symbol] = price
            mark = f"{price:.2f}"
            body = {
                "type": "tick",
                "symbol": symbol,
                "mark": mark,
                "bid": f"{price - 0.01:.2f}",
                "ask": f"{price + 0.01:.2f}",
                "index": mark,
                "fundingRate": "0.0001",
            }
            yield ts, "tick", json.dumps(body, separators=(",", ":"))

    path = data_dir / "guardbot.db"
    conn = sqlite3.connect(path)
    try:
        # Transactions of _BUILD_BATCH rows: one transaction of 10 M rows would grow the WAL to
        # the database's size (about 3 GB) before the close folds it back into the file.
        source = iter(rows())
        while True:
            batch = list(itertools.islice(source, _BUILD_BATCH))
            if not batch:
                break
            with conn:
                conn.executemany("INSERT INTO inputs (ts, kind, body) VALUES (?, ?, ?)", batch)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()  # checkpoints the WAL into the file
    return path.stat().st_size


async def recover_in_process(config_path: Path) -> tuple[float, int]:
    """Seconds to replay the whole journal (checkpoints ignored) and the inputs replayed."""
    config = load_config(config_path, {})
    daemon = Daemon(config)
    async with Journal.in_data_dir(daemon.data_dir, instance=INSTANCE) as journal:
        started = time.perf_counter()
        daemon.pipeline.attach(journal)
        recovered = await recover(journal, daemon.pipeline, Notifier(None), use_checkpoints=False)
        elapsed = time.perf_counter() - started
    positions = sum(len(a.positions) for a in daemon.engine.accounts.values())
    assert positions == len(SYMBOLS), f"expected open positions after replay, got {positions}"
    return elapsed, recovered.applied


async def write_checkpoint(config_path: Path, tail: int) -> tuple[int, float, int]:
    """Replay all but the last ``tail`` inputs and store a checkpoint of that state, as a
    running daemon leaves one every checkpoint_interval_s: (its input seq, seconds to encode
    and store it, its size in bytes)."""
    config = load_config(config_path, {})
    daemon = Daemon(config)
    pipeline = daemon.pipeline
    async with Journal.in_data_dir(daemon.data_dir, instance=INSTANCE) as journal:
        pipeline.attach(journal)
        last = await journal.last_input()
        assert last is not None
        upto = max(0, last[0] - tail)
        engine = pipeline.engine
        async for seq, ts, _kind, body in journal.inputs_after(0):
            if seq > upto:
                break
            command = parse_command(body)
            engine.apply(ts, command)
            pipeline.replayed(ts, command)
        started = time.perf_counter()
        text = snapshot_text(pipeline)
        await journal.put_checkpoint(
            input_seq=upto,
            ts=int(time.time() * 1000),
            fmt=checkpoint.FORMAT,
            sha256=checkpoint.digest(text),
            body=text,
        )
        return upto, time.perf_counter() - started, len(text)


def start_subprocess(config_path: Path, log_path: Path, timeout: float) -> tuple[float, float]:
    """Seconds from spawning ``guardbot run`` to its "guardbot daemon started" line, and the
    child's CPU seconds (user + system) by then: the wall time grows with the machine's load,
    the CPU time much less."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, "-m", "guardbot", "run", "-c", str(config_path)]
    started = time.perf_counter()
    child = Child("guardbot", argv, log_path, env=env)
    try:
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if not child.alive():
                raise RuntimeError(f"guardbot run exited early:\n{child.log_tail()}")
            if b"guardbot daemon started" in log_path.read_bytes():
                return time.perf_counter() - started, child.cpu_seconds()
            time.sleep(0.02)  # polling a log file: there is no event to wait on
        raise RuntimeError(f"guardbot run not started within {timeout:.0f} s: see {log_path}")
    finally:
        child.stop(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="journal size (1,000,000)")
    parser.add_argument("--order-every", type=int, default=50, help="an order every N inputs")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-subprocess", action="store_true", help="in-process figure only")
    parser.add_argument(
        "--tail",
        type=int,
        default=1000,
        help="inputs after the checkpoint the subprocess starts from (1000; -1: no checkpoint)",
    )
    parser.add_argument(
        "--no-full-replay", action="store_true", help="skip the in-process whole-journal replay"
    )
    parser.add_argument("--keep", help="build the journal in this directory and keep it")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: time start-up against the journal (and checkpoints) already in DIR "
        "from an earlier --keep run, instead of building one (a 10 M journal takes minutes)",
    )
    args = parser.parse_args(argv)
    if args.reuse and not args.keep:
        parser.error("--reuse needs --keep DIR")
    if args.inputs < 100 or args.order_every < 2 or args.repeat < 1:
        parser.error("need --inputs >= 100, --order-every >= 2, --repeat >= 1")

    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="guardbot-recovery-"))
    data_dir = base / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = base / "guardbot.toml"
    if args.reuse:
        if not (data_dir / "guardbot.db").is_file():
            parser.error(f"--reuse: no journal in {data_dir}")
        return _time_starts(args, base, config_path)
    if any(data_dir.iterdir()):
        parser.error(f"{data_dir} is not empty")
    config_path.write_text(
        CONFIG.format(instance=INSTANCE, data_dir=data_dir, mqtt_port=free_port()),
        encoding="utf-8",
    )
    started = time.perf_counter()
    size = build_journal(data_dir, args.inputs, args.order_every, args.seed)
    print(
        f"journal: {args.inputs:,} inputs (an order every {args.order_every}), "
        f"{size / 1e6:.1f} MB, built in {time.perf_counter() - started:.1f} s"
    )

    if not args.no_full_replay:
        best = min(asyncio.run(recover_in_process(config_path)) for _ in range(args.repeat))
        elapsed, replayed = best
        print(
            f"in-process replay of the whole journal: {replayed:,} inputs in {elapsed:.2f} s = "
            f"{replayed / elapsed:,.0f} inputs/s (best of {args.repeat})"
        )
    if args.tail >= 0:
        seq, took, size = asyncio.run(write_checkpoint(config_path, args.tail))
        print(
            f"checkpoint after input {seq:,} ({args.tail:,} inputs after it): "
            f"{size / 1e3:,.1f} kB, encoded and stored in {took * 1000:.1f} ms"
        )
    return _time_starts(args, base, config_path)


def _time_starts(args: argparse.Namespace, base: Path, config_path: Path) -> int:
    """Time ``guardbot run`` to ready (unless --no-subprocess); remove ``base`` unless kept."""
    if not args.no_subprocess:
        # Each run stops cleanly, which writes a checkpoint of its own: runs after the first
        # start from that one (nothing to replay); the first is the figure to read.
        runs = [
            start_subprocess(config_path, base / f"run{n}-{os.getpid()}.log", timeout=1800)
            for n in range(args.repeat)
        ]
        shown = [f"{wall:.2f} s ({cpu:.2f} s CPU)" for wall, cpu in runs]
        print(
            f"guardbot run to 'daemon started': first {shown[0]}, then {', '.join(shown[1:])} "
            f"(load {os.getloadavg()[0]:.2f})"
        )
    print(f"files: {base}" if args.keep else "")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
