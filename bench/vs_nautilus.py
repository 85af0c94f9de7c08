"""``guardbot replay`` next to nautilus_trader's backtest engine on the same ticks (issue 17).

The workload, the same on both sides: ``--ticks`` quote ticks (1,000,000) cycling over 20 USDT
perpetuals (``bench/replay_throughput.py``'s seeded random walks: mark = last, bid and ask 0.01 %
either side), one cross-margin account of 100,000 USDT, and a strategy called on every tick
that opens one long position per symbol at its first tick (2,000 USDT notional at 5x, a stop-loss
20 % below, which the walk, kept within 3 % of its start, never reaches) and otherwise reads the
tick's last price. So: 20 open positions with 20 resting stops, checked on every tick.

What each side computes per tick:

* **guardbot**: exact decimals read from the JSON Lines text, tiered maintenance margin (the
  Binance-style nine-bracket table of ``bench/engine_throughput.py`` for every symbol), the
  account's cross margin ratio and alert levels, the stop triggers, and the run directory
  (events, samples once per second of tick time, summary); the strategy gets a ccxt ticker.
* **nautilus_trader** (1.231.0, its own virtual environment): ``BacktestEngine`` (Cython core
  over Rust) on ``QuoteTick`` objects built from the same lines (float prices, fixed precision),
  a margin account with one maintenance rate per instrument, stop-market orders in its
  matching engine; the strategy's ``on_quote_tick`` is called on every tick.

Two figures per side: **whole command** (process start to exit: reading the text file,
building the data, the run, writing results) and **loop only** (the engine run over data already
in memory). guardbot's whole command is also timed reading the same ticks as tick columns
(``guardbot record --out X.gbt``). Ratios are guardbot / nautilus (> 1: guardbot is faster).
Wall-clock and CPU seconds (user + system of the process; on a machine shared with other work
the wall clock measures the neighbours too) are both printed, with the ratios of each.

    python bench/vs_nautilus.py [--ticks 1000000] [--nautilus-python PATH] [--skip-nautilus]

nautilus_trader 1.231.0 needs Python >= 3.12. The script looks for one (``--nautilus-python``,
then ``python3.13``/``python3.12`` on PATH and pyenv's versions), makes a virtual environment
for it under ``~/.cache/guardbot-bench/`` and installs ``nautilus_trader==1.231.0`` there with
pip (once). Where that cannot be done it says why and measures guardbot alone. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from guardbot.paper.strategy import Strategy  # noqa: E402  (after the path set-up)

NAUTILUS_VERSION = "1.231.0"
VENV = Path.home() / ".cache" / "guardbot-bench" / f"nautilus-{NAUTILUS_VERSION}"
WALLET = 100_000
LEVERAGE = 5
NOTIONAL = 2_000.0
STOP_BELOW = 0.8

CONFIG_TOML = f"""\
[accounts.bench]
wallet = {WALLET}
default_margin_mode = "cross"
default_leverage = {LEVERAGE}
"""


class Hold20(Strategy):
    """One long per symbol at its first tick, with a stop-loss; then reads every tick."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.opened: set[str] = set()
        self.ticks = 0
        self.last = 0.0

    async def on_tick(self, exchange: Any, ticker: dict[str, Any]) -> None:
        self.ticks += 1
        last = ticker["last"]
        self.last = last
        symbol = ticker["symbol"]
        if symbol not in self.opened:
            self.opened.add(symbol)
            amount = float(f"{NOTIONAL / last:.4g}")
            stop = float(f"{last * STOP_BELOW:.6g}")
            await exchange.create_order(
                symbol, "market", "buy", amount, None, {"stopLoss": {"triggerPrice": stop}}
            )


# ---------------------------------------------------------------------------------- guardbot


def guardbot_child(ticks: Path, config: Path, out: Path) -> int:
    """The whole ``guardbot replay`` command in this (child) process, tier tables patched in."""
    _patch_tiers()
    from guardbot.cli.main import main

    return main(
        [
            "replay",
            "--ticks",
            str(ticks),
            "--strategy",
            f"{Path(__file__).resolve()}:Hold20",
            "--config",
            str(config),
            "--out",
            str(out),
        ]
    )


def _patch_tiers() -> None:
    import engine_throughput as et
    from replay_throughput import SYMBOLS

    import guardbot.cli.replay as replay_cli
    from guardbot.core.engine import Engine

    table = et.tier_table()

    def engine(config: Any) -> Engine:
        tables = {symbol: table for symbol in SYMBOLS}
        sizes = {symbol: Decimal(1) for symbol in SYMBOLS}
        return Engine(config.engine_config(tables, sizes))

    replay_cli._engine = engine  # type: ignore[assignment]


def _child(command: list[str]) -> tuple[float, float, str]:
    """Wall-clock and CPU (user + system) seconds of a child process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def guardbot_whole(ticks: Path, config: Path, work: Path) -> tuple[float, float, dict[str, Any]]:
    out = work / "guardbot-run"
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, _ = _child(
        [sys.executable, __file__, "--guardbot-child", str(ticks), str(config), str(out)]
    )
    return wall, cpu, json.loads((out / "summary.json").read_text(encoding="utf-8"))


def to_columns(ticks: Path, out: Path) -> Path:
    """The same ticks as tick columns (what ``guardbot record --out X.gbt`` writes)."""
    from guardbot.formats.tickcolumns import ColumnsWriter

    writer = ColumnsWriter(out)
    with ticks.open(encoding="utf-8") as file:
        for line in file:
            writer.write(line)
    writer.close()
    return out


def guardbot_loop(ticks: Path, config: Path, work: Path) -> tuple[float, float]:
    """The replay loop over ticks already decoded (``decode_rows`` swapped for a list):
    wall-clock and CPU seconds."""
    import guardbot.cli.replay as replay_cli
    from guardbot.config import load_config
    from guardbot.formats import ticklines

    _patch_tiers()
    with ticks.open(encoding="utf-8") as file:
        decoded = list(ticklines.decode_rows(file))
    loaded = load_config(config, env={})
    out = work / "guardbot-loop"
    shutil.rmtree(out, ignore_errors=True)

    original = replay_cli.decode_rows
    replay_cli.decode_rows = lambda _file: iter(decoded)  # type: ignore[assignment]
    try:
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        summary = asyncio.run(
            replay_cli.replay(
                ticks, f"{Path(__file__).resolve()}:Hold20", out, config=loaded, progress=False
            )
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        replay_cli.decode_rows = original  # type: ignore[assignment]
    assert summary["ticks"] == len(decoded), summary
    return wall, cpu


# ---------------------------------------------------------------------------------- nautilus

#: Runs under the nautilus virtual environment's Python: argv = ticks file, mode (whole|loop).
#: Prints one JSON line: {"ticks", "load_s", "run_s", "orders", "positions"}.
NAUTILUS_CHILD = r"""
import json, sys, time
from decimal import Decimal

t_start = time.perf_counter()
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USDT, Currency
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.enums import AccountType, CurrencyType, OmsType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
from nautilus_trader.model.instruments import CryptoPerpetual
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.trading.strategy import Strategy

path, bases_json, notional, stop_below, leverage, wallet = sys.argv[1:7]
bases = json.loads(bases_json)
notional, stop_below = float(notional), float(stop_below)
VENUE = Venue("BINANCE")

def decimals(base):
    digits = len(str(int(base))) if base >= 1 else 0
    return max(0, 6 - digits)

instruments, ids, precision = [], {}, {}
for code, base in bases.items():
    symbol = code + "/USDT:USDT"
    p = decimals(base)
    inst = CryptoPerpetual(
        instrument_id=InstrumentId(Symbol(code + "USDT-PERP"), VENUE),
        raw_symbol=Symbol(code + "USDT"),
        base_currency=Currency(code, 8, 0, code, CurrencyType.CRYPTO),
        quote_currency=USDT,
        settlement_currency=USDT,
        is_inverse=False,
        price_precision=p,
        price_increment=Price(10 ** -p, p),
        size_precision=4,
        size_increment=Quantity.from_str("0.0001"),
        max_quantity=None,
        min_quantity=Quantity.from_str("0.0001"),
        max_notional=None,
        min_notional=None,
        max_price=None,
        min_price=None,
        margin_init=Decimal(1) / Decimal(leverage),
        margin_maint=Decimal("0.01"),
        maker_fee=Decimal("0"),
        taker_fee=Decimal("0"),
        ts_event=0,
        ts_init=0,
    )
    instruments.append(inst)
    ids[symbol] = inst.id
    precision[symbol] = p

size = Quantity(1_000_000, 4)
ticks = []
loads = json.loads
with open(path, encoding="utf-8") as file:
    for line in file:
        obj = loads(line)
        symbol = obj["symbol"]
        p = precision[symbol]
        ns = obj["ts"] * 1_000_000
        bid, ask = Price(float(obj["bid"]), p), Price(float(obj["ask"]), p)
        ticks.append(QuoteTick(ids[symbol], bid, ask, size, size, ns, ns))
t_loaded = time.perf_counter()


class Hold20(Strategy):
    def __init__(self):
        super().__init__()
        self.opened = set()
        self.count = 0
        self.last = 0.0

    def on_start(self):
        for inst in instruments:
            self.subscribe_quote_ticks(inst.id)

    def on_quote_tick(self, tick):
        self.count += 1
        last = tick.bid_price.as_double()
        self.last = last
        iid = tick.instrument_id
        if iid not in self.opened:
            self.opened.add(iid)
            qty = Quantity(float(f"{notional / last:.4g}"), 4)
            self.submit_order(self.order_factory.market(iid, OrderSide.BUY, qty))
            inst = self.cache.instrument(iid)
            stop = inst.make_price(last * stop_below)
            self.submit_order(
                self.order_factory.stop_market(iid, OrderSide.SELL, qty, stop, reduce_only=True)
            )


config = BacktestEngineConfig(
    trader_id=TraderId("BENCH-001"), logging=LoggingConfig(bypass_logging=True)
)
engine = BacktestEngine(config)
engine.add_venue(
    venue=VENUE,
    oms_type=OmsType.NETTING,
    account_type=AccountType.MARGIN,
    starting_balances=[Money(int(wallet), USDT)],
    base_currency=USDT,
    default_leverage=Decimal(leverage),
)
for inst in instruments:
    engine.add_instrument(inst)
engine.add_data(ticks)
strategy = Hold20()
engine.add_strategy(strategy)
t_run, c_run = time.perf_counter(), time.process_time()
engine.run()
t_done, c_done = time.perf_counter(), time.process_time()
positions = len(engine.cache.positions_open())
orders = len(engine.cache.orders_open())
print(json.dumps({"ticks": strategy.count, "load_s": t_loaded - t_start, "run_s": t_done - t_run,
                  "run_cpu_s": c_done - c_run, "positions": positions, "orders": orders}))
"""


#: The same run on nautilus's Rust backtest engine (``nautilus_pyo3.backtest.BacktestEngine``,
#: 1.231.0: the Rust kernel, with a Python strategy through the pyo3 ``Strategy`` class), argv:
#: ticks file, bases, notional, stop, leverage, wallet, liquidation (1: ``liquidation_enabled``,
#: the venue checks the account's equity against its maintenance margin on every tick).
NAUTILUS_RUST_CHILD = r"""
import json, sys, time
from decimal import Decimal

t_start = time.perf_counter()
from nautilus_trader.core import nautilus_pyo3 as p
from nautilus_trader.core.nautilus_pyo3 import backtest as bt
from nautilus_trader.core.nautilus_pyo3 import trading as tr

path, bases_json, notional, stop_below, leverage, wallet, liquidation = sys.argv[1:8]
bases = json.loads(bases_json)
notional, stop_below = float(notional), float(stop_below)
VENUE = p.Venue("BINANCE")
USDT = p.Currency.from_str("USDT")

def decimals(base):
    digits = len(str(int(base))) if base >= 1 else 0
    return max(0, 6 - digits)

instruments, ids, precision = [], {}, {}
for code, base in bases.items():
    symbol = code + "/USDT:USDT"
    prec = decimals(base)
    iid = p.InstrumentId(p.Symbol(code + "USDT-PERP"), VENUE)
    inst = p.CryptoPerpetual(
        iid,
        p.Symbol(code + "USDT"),
        p.Currency(code, 8, 0, code, p.CurrencyType.CRYPTO),
        USDT,
        USDT,
        False,
        prec,
        4,
        p.Price(10 ** -prec, prec),
        p.Quantity.from_str("0.0001"),
        0,
        0,
        min_quantity=p.Quantity.from_str("0.0001"),
        margin_init=Decimal(1) / Decimal(leverage),
        margin_maint=Decimal("0.01"),
        maker_fee=Decimal("0"),
        taker_fee=Decimal("0"),
    )
    instruments.append(inst)
    ids[symbol] = iid
    precision[symbol] = prec

size = p.Quantity(1_000_000, 4)
ticks = []
loads = json.loads
with open(path, encoding="utf-8") as file:
    for line in file:
        obj = loads(line)
        symbol = obj["symbol"]
        prec = precision[symbol]
        ns = obj["ts"] * 1_000_000
        bid, ask = p.Price(float(obj["bid"]), prec), p.Price(float(obj["ask"]), prec)
        ticks.append(p.QuoteTick(ids[symbol], bid, ask, size, size, ns, ns))
t_loaded = time.perf_counter()


class Hold20(tr.Strategy):
    def __init__(self):
        config = tr.StrategyConfig(
            strategy_id=p.StrategyId("Hold20-001"), log_events=False, log_commands=False
        )
        super().__init__(config)
        self.opened = set()
        self.count = 0
        self.last = 0.0

    def on_start(self):
        for inst in instruments:
            self.subscribe_quotes(inst.id)

    def on_quote(self, tick):
        self.count += 1
        last = tick.bid_price.as_double()
        self.last = last
        iid = tick.instrument_id
        if iid not in self.opened:
            self.opened.add(iid)
            qty = p.Quantity(float(f"{notional / last:.4g}"), 4)
            factory = self.order_factory
            self.submit_order(factory.market(iid, p.OrderSide.BUY, qty))
            prec = tick.bid_price.precision
            stop = p.Price(round(last * stop_below, prec), prec)
            self.submit_order(
                factory.stop_market(iid, p.OrderSide.SELL, qty, stop, reduce_only=True)
            )


config = bt.BacktestEngineConfig(
    trader_id=p.TraderId("BENCH-001"), logging=p.LoggerConfig(bypass_logging=True)
)
engine = bt.BacktestEngine(config)
engine.add_venue(
    VENUE,
    p.OmsType.NETTING,
    p.AccountType.MARGIN,
    [p.Money(int(wallet), USDT)],
    base_currency=USDT,
    default_leverage=Decimal(leverage),
    liquidation_enabled=liquidation == "1",
)
for inst in instruments:
    engine.add_instrument(inst)
engine.add_data(ticks)
strategy = Hold20()
engine.add_strategy(strategy)
t_run, c_run = time.perf_counter(), time.process_time()
engine.run()
t_done, c_done = time.perf_counter(), time.process_time()
positions = len(engine.cache.positions_open())
orders = len(engine.cache.orders_open())
print(json.dumps({"ticks": strategy.count, "load_s": t_loaded - t_start, "run_s": t_done - t_run,
                  "run_cpu_s": c_done - c_run, "positions": positions, "orders": orders}))
"""


def find_python() -> tuple[str | None, str]:
    """A Python >= 3.12 for nautilus, and where it was looked for."""
    candidates = [shutil.which(name) for name in ("python3.13", "python3.12")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        candidates += [str(p / "bin" / "python") for p in sorted(pyenv.iterdir(), reverse=True)]
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        done = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.stdout.strip() == "True":
            return candidate, ""
    return None, "python3.13/python3.12 on PATH and pyenv versions"


def nautilus_python(explicit: str | None) -> tuple[str | None, str]:
    """The nautilus venv's Python, made and filled on first use; or None and the reason."""
    venv_python = VENV / "bin" / "python"
    if venv_python.exists():
        check = subprocess.run(
            [str(venv_python), "-c", "import nautilus_trader; print(nautilus_trader.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.stdout.strip() == NAUTILUS_VERSION:
            return str(venv_python), ""
    base = explicit
    if base is None:
        base, looked = find_python()
        if base is None:
            return None, f"no Python >= 3.12 found ({looked}); nautilus_trader needs one"
    print(f"setting up nautilus_trader {NAUTILUS_VERSION} in {VENV} (once)", flush=True)
    made = subprocess.run([base, "-m", "venv", str(VENV)], capture_output=True, text=True)
    if made.returncode != 0:
        return None, f"cannot make a virtual environment with {base}: {made.stderr.strip()}"
    pip = subprocess.run(
        [str(venv_python), "-m", "pip", "install", "-q", f"nautilus_trader=={NAUTILUS_VERSION}"],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        return None, f"pip could not install nautilus_trader: {pip.stderr.strip()[-500:]}"
    return str(venv_python), ""


def nautilus_run(
    python: str, ticks: Path, work: Path, *, rust: bool = False, liquidation: bool = True
) -> tuple[float, float, dict[str, Any]]:
    """One nautilus child: its wall-clock and CPU seconds and what it printed (loop times,
    open positions and orders). ``rust``: the Rust engine, ``liquidation`` on or off."""
    from replay_throughput import BASES

    script = work / ("nautilus_rust_child.py" if rust else "nautilus_child.py")
    script.write_text(NAUTILUS_RUST_CHILD if rust else NAUTILUS_CHILD, encoding="utf-8")
    args = [json.dumps(BASES), str(NOTIONAL), str(STOP_BELOW), str(LEVERAGE), str(WALLET)]
    if rust:
        args.append("1" if liquidation else "0")
    wall, cpu, stdout = _child([python, "-W", "ignore", str(script), str(ticks), *args])
    return wall, cpu, json.loads(stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _load() -> float:
    """The machine's 1-minute load average (what the neighbours were doing)."""
    return os.getloadavg()[0]


def _line(who: str, what: str, n: int, wall: float, cpu: float, loads: list[float]) -> None:
    print(
        f"{who:<16} {what:<34} {wall:7.2f} s {n / wall:>9,.0f} ticks/s wall-clock, "
        f"{cpu:7.2f} s {n / cpu:>9,.0f} ticks/s CPU   (load {min(loads):.1f}-{max(loads):.1f})"
    )


def main(argv: list[str] | None = None) -> int:
    from replay_throughput import SYMBOLS, write_ticks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--interval-ms", type=int, default=10)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds (A B A B ...); medians printed"
    )
    parser.add_argument("--nautilus-python", help="a Python >= 3.12 for nautilus's venv")
    parser.add_argument("--skip-nautilus", action="store_true", help="measure guardbot only")
    parser.add_argument(
        "--no-liquidation-off",
        action="store_true",
        help="skip the extra run of nautilus's Rust engine with its liquidation check off",
    )
    parser.add_argument("--keep", type=Path, help="write the files here and keep them")
    args = parser.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="guardbot-vs-nautilus-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        ticks, config = work / "ticks.jsonl", work / "bench.toml"
        config.write_text(CONFIG_TOML, encoding="utf-8")
        write_ticks(ticks, args.ticks, args.seed, args.interval_ms)
        columns = to_columns(ticks, work / "ticks.gbt")
        n = args.ticks
        print(
            f"{n:,} ticks over {len(SYMBOLS)} perpetuals, 20 positions with stops in one cross "
            f"account, a strategy on every tick; guardbot on Python {sys.version.split()[0]}; "
            f"{args.rounds} interleaved rounds, medians",
            flush=True,
        )
        python: str | None = None
        if args.skip_nautilus:
            print("nautilus_trader: skipped (--skip-nautilus)")
        else:
            python, reason = nautilus_python(args.nautilus_python)
            if python is None:
                print(f"nautilus_trader: skipped: {reason}")
        # (wall, cpu) per measurement per round, and the load before each
        runs: dict[str, list[tuple[float, float]]] = {}
        loads: dict[str, list[float]] = {}

        def measure(key: str, run: Any) -> Any:
            loads.setdefault(key, []).append(_load())
            wall, cpu, *rest = run()
            runs.setdefault(key, []).append((wall, cpu))
            print(f"  round {len(runs[key])}: {key:<26} {cpu:7.2f} s CPU {wall:7.2f} s wall "
                  f"(load {loads[key][-1]:.1f})", flush=True)  # fmt: skip
            return rest

        def nautilus(key: str, loop_key: str, **options: bool) -> None:
            assert python is not None
            (result,) = measure(key, lambda: nautilus_run(python, ticks, work, **options))
            assert result["ticks"] == n and result["positions"] == len(SYMBOLS), result
            runs.setdefault(loop_key, []).append((result["run_s"], result["run_cpu_s"]))
            loads.setdefault(loop_key, []).append(loads[key][-1])

        for _ in range(args.rounds):
            (summary,) = measure("guardbot whole", lambda: guardbot_whole(ticks, config, work))
            assert summary["ticks"] == n and summary["strategyErrors"] == 0, summary
            assert summary["trades"] == len(SYMBOLS) and summary["liquidations"] == 0, summary
            if python is not None:
                nautilus("cython whole", "cython loop")
            (summary,) = measure(
                "guardbot whole .gbt", lambda: guardbot_whole(columns, config, work)
            )
            assert summary["ticks"] == n, summary
            if python is not None:
                nautilus("rust whole", "rust loop", rust=True, liquidation=True)
            measure("guardbot loop", lambda: guardbot_loop(ticks, config, work))
            if python is not None and not args.no_liquidation_off:
                nautilus("rust whole liq off", "rust loop liq off", rust=True, liquidation=False)

        medians = {
            key: (_median([w for w, _ in values]), _median([c for _, c in values]))
            for key, values in runs.items()
        }
        labels = [
            ("guardbot replay", "whole command", "guardbot whole"),
            ("", "whole command, tick columns", "guardbot whole .gbt"),
            ("", "loop only", "guardbot loop"),
            ("nautilus Cython", "whole command", "cython whole"),
            ("(BacktestEngine)", "loop only (engine.run)", "cython loop"),
            ("nautilus Rust", "whole command, liquidation on", "rust whole"),
            ("(pyo3 engine)", "loop only, liquidation on", "rust loop"),
            ("", "whole command, liquidation off", "rust whole liq off"),
            ("", "loop only, liquidation off", "rust loop liq off"),
        ]
        print(f"medians of {args.rounds} rounds:")
        for who, what, key in labels:
            if key in medians:
                _line(who, what, n, *medians[key], loads[key])
        if python is None:
            return 0
        for label, i in (("CPU", 1), ("wall-clock", 0)):
            ours = {k: medians[k][i] for k in ("guardbot whole", "guardbot whole .gbt")}
            loop = medians["guardbot loop"][i]
            for peer, whole_key, loop_key in (
                ("Cython", "cython whole", "cython loop"),
                ("Rust, liquidation on", "rust whole", "rust loop"),
                ("Rust, liquidation off", "rust whole liq off", "rust loop liq off"),
            ):
                if whole_key not in medians:
                    continue
                theirs, their_loop = medians[whole_key][i], medians[loop_key][i]
                print(
                    f"guardbot / nautilus {peer}, ticks/s of {label}: whole command "
                    f"{theirs / ours['guardbot whole']:.2f}x (tick columns "
                    f"{theirs / ours['guardbot whole .gbt']:.2f}x), "
                    f"loop only {their_loop / loop:.2f}x"
                )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--guardbot-child":
        sys.exit(guardbot_child(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])))
    sys.exit(main())
