"""Resident memory of ``guardbot run`` following 20 symbols, after warm-up (issue 16 figure).

A private Mosquitto and the stand-in Binance USDⓈ-M (real ccxt.pro code path, in this process)
serve ``guardbot run`` in a child process: ``--symbols`` (20) symbols, one cross position in each
(``[[seed]]``), a random walk of marks pushed at ``--rate`` ticks/s spread over the symbols. After
``--warmup`` seconds the daemon's RSS is sampled every second for ``--measure`` seconds; the
figure is the median of those samples (the last and the max are printed too). Target: <= 90 MB.

``--eager-ccxt`` starts the daemon with ``import ccxt.pro`` done first, as every daemon did
before ``guardbot.runtime.ccxt_lazy``: the same daemon with every exchange module loaded, for the
"before" figure (tests/feeds/test_ccxt_lazy.py checks which modules the lazy import loads).

    python bench/memory.py [--symbols 20] [--rate 40] [--warmup 60] [--measure 30]
                           [--eager-ccxt] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from _harness import (  # noqa: E402  (after the path set-up)
    PYTHON,
    REPO,
    Broker,
    Child,
    Pacer,
    StandinBinance,
    available_symbols,
    daemon_toml,
    run_main,
    wait_daemon_subscribed,
    workdir,
)

from tests.standin.binance import DEFAULT_PRICES  # noqa: E402

INSTANCE = "memory"
#: Runs the CLI after ``import ccxt.pro``: every exchange module loaded, as before the lazy loader.
EAGER = "import sys, ccxt.pro; from guardbot.cli.main import main; sys.exit(main())"


def _seed(standin: StandinBinance, symbols: list[str]) -> list[dict[str, object]]:
    """A market buy of about 1,000 USDT in each symbol (positions to evaluate on every tick)."""
    orders: list[dict[str, object]] = []
    for n, symbol in enumerate(symbols):
        mark = Decimal(DEFAULT_PRICES[standin.market_id(symbol)]["mark"])
        amount = (Decimal(1000) / mark).quantize(Decimal("0.001"))
        orders.append(
            {
                "type": "order",
                "account": "main",
                "id": f"mem-{n}",
                "symbol": symbol,
                "orderType": "market",
                "side": "buy",
                "amount": str(max(amount, Decimal("0.001"))),
            }
        )
    return orders


async def amain(args: argparse.Namespace) -> int:
    symbols, missing = available_symbols(args.symbols)
    if missing:
        print(f"NOTE: the stand-in serves {len(symbols)} of {args.symbols} symbols", flush=True)
    rng = random.Random(args.seed)
    async with workdir(args.keep, "guardbot-memory-") as out:
        broker = Broker(out).start()
        standin = await StandinBinance(symbols).start()
        daemon: Child | None = None
        try:
            text = daemon_toml(
                instance=INSTANCE,
                data_dir=out / "data",
                standin=standin,
                broker=broker,
                symbols=symbols,
                accounts={
                    "main": {
                        "wallet": 1000000,
                        "default_margin_mode": "cross",
                        "default_leverage": 10,
                    }
                },
                seed=_seed(standin, symbols),
            )
            config = out / "guardbot.toml"
            config.write_text(text, encoding="utf-8")
            env = dict(os.environ)
            env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
            run = ["run", "-c", str(config)]
            argv = (
                [PYTHON, "-c", EAGER, *run] if args.eager_ccxt else [PYTHON, "-m", "guardbot", *run]
            )
            daemon = Child("guardbot", argv, out / "daemon.log", env=env)
            await wait_daemon_subscribed(standin, symbols, daemon)
            marks = {s: Decimal(DEFAULT_PRICES[standin.market_id(s)]["mark"]) for s in symbols}
            pacer = Pacer(args.rate)
            samples: list[float] = []
            t0 = time.monotonic()
            next_sample = t0 + args.warmup
            end = next_sample + args.measure
            i = 0
            while time.monotonic() < end:
                await pacer.next()
                symbol = symbols[i % len(symbols)]
                i += 1
                mark = marks[symbol] * Decimal(str(1 + rng.gauss(0, 0.0005)))
                mark = mark.quantize(Decimal("0.0001"))
                marks[symbol] = mark
                step = mark / 10000
                await standin.set_price(symbol, mark=str(mark), bid=str(mark - step),
                                        ask=str(mark + step))  # fmt: skip
                if time.monotonic() >= next_sample:
                    if not daemon.alive():
                        raise RuntimeError(f"daemon exited:\n{daemon.log_tail()}")
                    samples.append(daemon.ps.memory_info().rss / 2**20)
                    next_sample += 1.0
            cpu = daemon.cpu_seconds()
            status = daemon.stop(timeout=30)
            daemon = None
            if status != 0:
                raise RuntimeError(f"daemon exited {status}")
            print(
                f"guardbot run, {len(symbols)} symbols, {'eager' if args.eager_ccxt else 'lazy'} "
                f"ccxt import, {i:,} ticks at {args.rate:g}/s: RSS after {args.warmup:g} s "
                f"warm-up, over {args.measure:g} s: median {statistics.median(samples):.1f} MB, "
                f"last {samples[-1]:.1f} MB, max {max(samples):.1f} MB "
                f"(daemon CPU {cpu:.1f} s; load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        finally:
            if daemon is not None:
                daemon.stop(timeout=10)
            await standin.stop()
            broker.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=20, help="symbols followed (20)")
    parser.add_argument("--rate", type=float, default=40.0, help="ticks per second, all symbols")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before sampling (60)")
    parser.add_argument("--measure", type=float, default=30.0, help="seconds sampled (30)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--eager-ccxt", action="store_true", help="import all of ccxt.pro first (before)"
    )
    parser.add_argument("--keep", help="work in this directory and keep it")
    args = parser.parse_args(argv)
    if args.symbols < 1 or args.rate <= 0 or args.measure < 1 or args.warmup < 0:
        parser.error("need --symbols >= 1, --rate > 0, --measure >= 1, --warmup >= 0")
    return run_main(lambda: amain(args))


if __name__ == "__main__":
    sys.exit(main())
