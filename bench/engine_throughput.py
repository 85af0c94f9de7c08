"""Ticks per second through guardbot's engine and guards (``make bench``).

Scenarios (see bench/README.md):

* S1: 100 symbols, 100 accounts (even ones cross, odd ones isolated), 1,000 open positions
  (10 per symbol: 5 cross, 5 isolated), each with a resting stop-loss and take-profit, plus
  resting limit orders far from the market. Every tick goes to one of the 100 symbols.
* S2: S1 plus 99,000 positions in 9,900 other symbols (10 per symbol, same accounts) that are
  never ticked. The engine claims a tick costs nothing for positions in other symbols, so
  S2 should run about as fast as S1.

Each scenario runs two tick streams: ``quiet`` (a ±0.05% random walk of the mark that crosses no
alert level, stop or liquidation: zero events) and ``alerts`` (a wider walk that makes isolated
positions fire and re-arm margin alert levels, still without stops or liquidations).

Every position and order is opened through the engine's command path
(``engine.apply(ts, parse_command(...))``), deterministically (seeded ``random.Random``). S2's
never-ticked part is opened in batch engines and merged (see :func:`build`; ``--strict-setup``
opens it in the measured engine, ``--verify-setup N`` shows both give the same state). Nothing is
read or written besides stdout and stderr.

    python bench/engine_throughput.py [--ticks 200000] [--repeats 3] [--profile] [--only s1]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import math
import pstats
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from guardbot.core import margin
from guardbot.core.commands import TickCmd, parse_command
from guardbot.core.config import AccountConfig, EngineConfig, Fees
from guardbot.core.engine import Engine
from guardbot.core.evaluation import after_change
from guardbot.core.events import Event
from guardbot.core.guards import GuardConfig
from guardbot.core.num import decimal_context
from guardbot.core.orders import Order
from guardbot.core.tiers import TierTable

N_ACCOUNTS = 100
N_TICKED = 100  # symbols SYM0..SYM99, ticked in the measured phase
N_OTHER = 9_900  # S2: symbols SYM100..SYM9999, never ticked
HOLDERS = 10  # positions per symbol: accounts s, s+1, ..., s+9 (mod 100): 5 cross, 5 isolated
LIMITS_PER_SYMBOL = 2  # resting limit orders per symbol (first two holders: one cross, one iso)
LEVERAGES = (5, 10, 20)  # per position; the accounts' default is 10
NOTIONAL_RANGE = (2_000.0, 100_000.0)  # USDT, log-uniform: tiers 1 to 3 of the table
PRICE_DECADES = (-1.0, 4.5)  # base prices from 0.1 to ~30,000, log-uniform
ENTRY_JITTER = 0.002  # entries spread ±0.2% around the symbol's base price
STOP_DISTANCE = (0.10, 0.25)  # stop-loss / take-profit this far from the entry
LIMIT_DISTANCE = (0.30, 0.40)  # resting limit orders this far from the market
SPREAD = 0.0001  # bid/ask = mark * (1 ∓ SPREAD)
BATCH = 100  # S2's never-ticked symbols are opened in engines of this many symbols each

QUIET_STEP = 0.0005  # ±0.05% per tick
QUIET_RANGE = 0.0075  # the quiet walk stays within ±0.75% of the base price ...
QUIET_LEVEL = Decimal("0.5")  # ... and strictly inside every isolated position's 0.5-level price
ALERT_STEP = 0.0025  # ±0.25% per tick
ALERT_RANGE = 0.06  # the alert walk stays within ±6% of the base price ...
SAFETY = 0.002  # ... and 0.2% inside every liquidation price

TICK_TS0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z; setup happens before, ticks after

# A Binance-style USDT-M bracket table of a mid-cap perpetual (maintenance amounts derived).
TIER_ROWS = [
    # minNotional, maxNotional, maintenanceMarginRate, maxLeverage
    (0, 10_000, "0.005", 75),
    (10_000, 50_000, "0.01", 50),
    (50_000, 250_000, "0.02", 25),
    (250_000, 1_000_000, "0.05", 10),
    (1_000_000, 2_000_000, "0.1", 5),
    (2_000_000, 5_000_000, "0.125", 4),
    (5_000_000, 10_000_000, "0.15", 3),
    (10_000_000, 20_000_000, "0.25", 2),
    (20_000_000, 50_000_000, "0.5", 1),
]

TARGET_S1 = 50_000.0  # ticks/s
TARGET_RATIO = 0.9  # S2/S1


def symbol_name(i: int) -> str:
    return f"SYM{i}/USDT:USDT"


def account_name(a: int) -> str:
    return f"acct{a}"


def dec(x: float, digits: int) -> Decimal:
    """A float as a Decimal with ``digits`` significant digits (as an exchange would quote it)."""
    return Decimal(f"{x:.{digits}g}")


def tier_table() -> TierTable:
    rows = [
        {
            "tier": i + 1,
            "minNotional": lo,
            "maxNotional": hi,
            "maintenanceMarginRate": mmr,
            "maxLeverage": lev,
        }
        for i, (lo, hi, mmr, lev) in enumerate(TIER_ROWS)
    ]
    return TierTable.from_ccxt("SYM*/USDT:USDT", rows)


# ---------------------------------------------------------------------------------------- plan


@dataclass(slots=True)
class PlannedPosition:
    account: int
    side: str  # buy (long) | sell (short)
    notional: float
    leverage: int
    jitter: float  # entry offset from the base price
    stop_distance: float
    tp_distance: float
    limit_distance: float | None  # a resting limit order on this symbol, or None


@dataclass(slots=True)
class PlannedSymbol:
    index: int
    base: float
    positions: list[PlannedPosition] = field(default_factory=list)


def plan_symbol(rng: random.Random, index: int) -> PlannedSymbol:
    sym = PlannedSymbol(index, float(dec(10 ** rng.uniform(*PRICE_DECADES), 5)))
    lo, hi = (math.log(x) for x in NOTIONAL_RANGE)
    for j in range(HOLDERS):
        sym.positions.append(
            PlannedPosition(
                account=(index + j) % N_ACCOUNTS,
                side=rng.choice(("buy", "sell")),
                notional=math.exp(rng.uniform(lo, hi)),
                leverage=rng.choice(LEVERAGES),
                jitter=rng.uniform(-ENTRY_JITTER, ENTRY_JITTER),
                stop_distance=rng.uniform(*STOP_DISTANCE),
                tp_distance=rng.uniform(*STOP_DISTANCE),
                limit_distance=rng.uniform(*LIMIT_DISTANCE) if j < LIMITS_PER_SYMBOL else None,
            )
        )
    return sym


def plan(seed: int, n_other: int) -> list[PlannedSymbol]:
    """Ticked symbols first, then the others; the S1 part is identical whatever ``n_other``."""
    rng = random.Random(seed)
    ticked = [plan_symbol(rng, i) for i in range(N_TICKED)]
    rng_other = random.Random(seed + 1)
    return ticked + [plan_symbol(rng_other, N_TICKED + i) for i in range(n_other)]


def wallets(symbols: list[PlannedSymbol]) -> list[Decimal]:
    """Three times the initial margin an account will use: cross ratios stay around 2-5%."""
    need = [1_000.0] * N_ACCOUNTS
    for sym in symbols:
        for p in sym.positions:
            need[p.account] += 3 * p.notional / p.leverage
    return [Decimal(round(x, -2)) for x in need]


# ---------------------------------------------------------------------------------------- setup


@dataclass(slots=True)
class Scenario:
    name: str
    engine: Engine
    symbols: list[PlannedSymbol]
    positions: int
    open_orders: int
    setup_seconds: float
    setup_events: Counter[str]
    setup_mode: str
    ts: int = TICK_TS0  # next tick time of the measured phase (ms, increasing)


def engine_config(symbols: list[PlannedSymbol]) -> EngineConfig:
    table = tier_table()
    accounts = {
        account_name(a): AccountConfig(
            wallet=wallet,
            default_margin_mode="cross" if a % 2 == 0 else "isolated",
            default_leverage=Decimal(10),
        )
        for a, wallet in enumerate(wallets(symbols))
    }
    return EngineConfig(
        tiers={symbol_name(s.index): table for s in symbols},
        fees=Fees(maker=Decimal("0.0002"), taker=Decimal("0.0005")),
        accounts=accounts,
        auto_create_accounts=False,
        guards=GuardConfig(
            max_leverage=Decimal(20),
            require_stop_loss=True,
            max_position_notional=Decimal(500_000),
            daily_loss_limit=Decimal(10_000_000),
        ),
    )


def tick_obj(symbol: str, mark: float) -> dict[str, object]:
    return {
        "type": "tick",
        "symbol": symbol,
        "mark": str(dec(mark, 8)),
        "bid": str(dec(mark * (1 - SPREAD), 8)),
        "ask": str(dec(mark * (1 + SPREAD), 8)),
    }


class Setup:
    """Feeds commands to an engine through ``parse_command`` and ``apply``, counting events."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ts = TICK_TS0 - 3_600_000
        self.events: Counter[str] = Counter()

    def send(self, obj: dict[str, object]) -> list[Event]:
        self.ts += 1
        out = self.engine.apply(self.ts, parse_command(obj))
        for event in out:
            self.events[event["type"]] += 1
        return out

    def open_symbol(self, sym: PlannedSymbol) -> None:
        symbol = symbol_name(sym.index)
        self.send(tick_obj(symbol, sym.base))
        for p in sym.positions:
            account = account_name(p.account)
            if p.leverage != 10:
                self.send(
                    {
                        "type": "set_leverage",
                        "account": account,
                        "symbol": symbol,
                        "leverage": p.leverage,
                    }
                )
            entry = sym.base * (1 + p.jitter)
            self.send(tick_obj(symbol, entry))
            sign = 1 if p.side == "buy" else -1
            self.send(
                {
                    "type": "order",
                    "account": account,
                    "id": f"m{sym.index}-{p.account}",
                    "symbol": symbol,
                    "orderType": "market",
                    "side": p.side,
                    "amount": str(dec(p.notional / entry, 6)),
                    "params": {
                        "stopLossPrice": str(dec(entry * (1 - sign * p.stop_distance), 6)),
                        "takeProfitPrice": str(dec(entry * (1 + sign * p.tp_distance), 6)),
                    },
                }
            )
        self.send(tick_obj(symbol, sym.base))
        for p in sym.positions:
            if p.limit_distance is None:
                continue
            # adds to the position far from the market, with its own stop further out
            sign = 1 if p.side == "buy" else -1
            price = sym.base * (1 - sign * p.limit_distance)
            self.send(
                {
                    "type": "order",
                    "account": account_name(p.account),
                    "id": f"l{sym.index}-{p.account}",
                    "symbol": symbol,
                    "orderType": "limit",
                    "side": p.side,
                    "amount": str(dec(0.1 * p.notional / price, 6)),
                    "price": str(dec(price, 6)),
                    # its stop (10 % from the limit) is wider than the position's: it would
                    # replace it only on a fill, which the quiet walk never reaches; without
                    # widenStopLoss the guard STOP_LOSS_WOULD_WIDEN refuses the order outright
                    "params": {
                        "stopLossPrice": str(dec(price * (1 - sign * 0.1), 6)),
                        "widenStopLoss": True,
                    },
                }
            )


def merge_batch(main: Engine, batch: Engine) -> None:
    """Move what ``batch`` opened (its own symbols only) into the same accounts of ``main``.

    Everything in ``batch`` was opened through ``apply``; this moves positions, orders, markets
    and the cash they moved. The cross sums, quiet bands and alert thresholds are recomputed by
    :func:`finish_batched` once all batches are in.
    """
    for account_id, src in batch.accounts.items():
        dst = main.accounts[account_id]
        dst.wallet += src.wallet - src.config.wallet
        dst.order_margin += src.order_margin
        dst.positions.update(src.positions)
        dst.orders.update(src.orders)
        dst.settings.update(src.settings)
        dst.insurance_fund += src.insurance_fund
        dst.daily.day = src.daily.day
        dst.daily.pnl += src.daily.pnl
        for name in ("deposits", "withdrawals", "realized_pnl", "fees", "funding"):
            setattr(dst.ledger, name, getattr(dst.ledger, name) + getattr(src.ledger, name))
        dst.ledger.liquidation_losses += src.ledger.liquidation_losses
    for symbol, market in batch.markets.items():
        assert symbol not in main.markets, symbol
        market.cross = {pos: main.accounts[a.id] for pos, a in market.cross.items()}
        market.isolated = {pos: main.accounts[a.id] for pos, a in market.isolated.items()}
        main.markets[symbol] = market
    main._st.seq = batch._st.seq  # order sequence numbers stay unique


def finish_batched(engine: Engine) -> None:
    """What the engine does after every change of an account, once per account."""
    state = engine._st
    state.out = []
    with decimal_context():
        for account in engine.accounts.values():
            after_change(state, account)
    assert not state.out, state.out


def build(name: str, seed: int, n_other: int, *, strict: bool, progress: bool) -> Scenario:
    """Open every planned position; the ticked symbols always straight in the scenario's engine.

    The never-ticked symbols of S2 go the same way with ``strict``; otherwise they are opened
    through ``apply`` in fresh engines of BATCH symbols each (the same accounts and wallets)
    and merged (:func:`merge_batch`), because the engine's per-order work grows with the
    account's positions and orders and the strict setup of 99,000 positions takes too long.
    """
    t0 = time.perf_counter()
    symbols = plan(seed, n_other)
    config = engine_config(symbols)
    engine = Engine(config)
    setup = Setup(engine)
    for sym in symbols[:N_TICKED]:
        setup.open_symbol(sym)
    rest = symbols[N_TICKED:]
    step = BATCH * max(1, len(rest) // BATCH // 10)
    for start in range(0, len(rest), BATCH):
        chunk = rest[start : start + BATCH]
        if not strict:
            setup.engine = Engine(config)
            setup.engine._st.seq = engine._st.seq
        for sym in chunk:
            setup.open_symbol(sym)
        if not strict:
            merge_batch(engine, setup.engine)
            setup.engine = engine
        done = start + len(chunk)
        if progress and (done % step == 0 or done == len(rest)):
            print(
                f"  {name} setup: {N_TICKED + done:,} symbols, "
                f"{(N_TICKED + done) * HOLDERS:,} positions, {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    if rest and not strict:
        finish_batched(engine)
    seconds = time.perf_counter() - t0

    positions = sum(len(a.positions) for a in engine.accounts.values())
    open_orders = sum(len(a.orders) for a in engine.accounts.values())
    n_symbols = len(symbols)
    n_limits = n_symbols * LIMITS_PER_SYMBOL
    assert setup.events["order_rejected"] == 0, setup.events
    assert setup.events["liquidation"] == 0, setup.events
    assert setup.events["stop_triggered"] == 0, setup.events
    assert positions == n_symbols * HOLDERS, positions
    # a stop-loss and a take-profit per position, plus the resting limits
    assert open_orders == n_symbols * HOLDERS * 2 + n_limits, open_orders
    for sym in symbols:
        market = engine.markets[symbol_name(sym.index)]
        assert len(market.cross) == HOLDERS // 2, market.cross
        assert len(market.isolated) == HOLDERS // 2, market.isolated
        mark_heaps = market.triggers["mark"]
        assert len(mark_heaps[0]) + len(mark_heaps[1]) == 2 * HOLDERS
        assert len(market.buy_limits) + len(market.sell_limits) == LIMITS_PER_SYMBOL
    mode = "strict" if strict or not rest else f"batched by {BATCH} symbols"
    return Scenario(name, engine, symbols, positions, open_orders, seconds, setup.events, mode)


def digest(engine: Engine) -> dict[str, object]:
    """The engine state that ticks read or write, for comparing two setups.

    Every field of every account, position and order (dataclasses) and every slot of every
    market, so that it follows the engine's own fields; objects that are compared by identity
    (positions, orders, accounts, tier tables) are replaced by their ids or values.
    """
    out: dict[str, object] = {}
    for account_id, a in engine.accounts.items():
        out[account_id] = fields_of(a, skip=("positions", "orders"))
        for symbol, p in a.positions.items():
            out[f"{account_id} {symbol}"] = fields_of(p, skip=("table",))
        for order_id, o in a.orders.items():
            out[f"{account_id} {order_id}"] = fields_of(o)
    for symbol, m in engine.markets.items():
        state: dict[str, object] = {}
        for name in type(m).__slots__:
            value = getattr(m, name)
            if name == "table":
                value = value.tiers if value is not None else None
            elif name == "cross":
                value = sorted(a.id for a in value)
            elif name == "isolated":
                value = sorted(a.id for a in value.values())
            elif name == "triggers":
                value = {k: [sorted(heap_ids(h)) for h in heaps] for k, heaps in value.items()}
            elif name in ("buy_limits", "sell_limits"):
                value = sorted(heap_ids(value))
            elif name == "trailing":
                value = sorted(o.id for o in value)
            state[name] = value
        out[symbol] = state
    return out


def fields_of(obj: object, skip: tuple[str, ...] = ()) -> dict[str, object]:
    return {
        f.name: getattr(obj, f.name)
        for f in dataclasses.fields(obj)  # type: ignore[arg-type]
        if f.name not in skip
    }


def heap_ids(heap: list[tuple[Decimal, int, Order]]) -> list[tuple[Decimal, int, str]]:
    return [(price, seq, order.id) for price, seq, order in heap]


def verify_setup(seed: int, n_other: int) -> None:
    """Build S2 with ``n_other`` never-ticked symbols strictly and batched; compare the states."""
    strict = build("strict", seed, n_other, strict=True, progress=False)
    batched = build("batched", seed, n_other, strict=False, progress=False)
    a, b = digest(strict.engine), digest(batched.engine)
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    print(
        f"verify setup with {n_other} never-ticked symbols: strict {strict.setup_seconds:.1f} s, "
        f"batched {batched.setup_seconds:.1f} s, {len(a):,} state entries, "
        f"{len(differ)} differ{': ' + ', '.join(differ[:5]) if differ else ''}"
    )
    assert not differ


# ---------------------------------------------------------------------------------------- ticks


def walk_bounds(scenario: Scenario, variant: str) -> list[tuple[float, float]]:
    """Per ticked symbol, the price range the walk may visit.

    ``quiet``: within ±0.75% and strictly inside every isolated position's 0.5-level price, so
    no alert fires. ``alerts``: within ±6% and inside every liquidation price (isolated and
    cross), so alert levels fire and re-arm but nothing is liquidated; stops sit >= 10% away.
    """
    engine = scenario.engine
    profile = engine.profile
    level = QUIET_LEVEL if variant == "quiet" else Decimal(1)
    width, margin_ = (QUIET_RANGE, 0.001) if variant == "quiet" else (ALERT_RANGE, SAFETY)
    # cross: what backs a position is the wallet less the other cross positions' requirement
    # plus their unrealized PnL (computed here from the margin functions, not engine caches)
    cross_req: dict[str, Decimal] = {}
    cross_upnl: dict[str, Decimal] = {}
    if variant != "quiet":  # cross ratios stay near 2-5% (wallets of 3x initial margin)
        with decimal_context():
            for account_id, account in engine.accounts.items():
                req_sum = upnl_sum = Decimal(0)
                for pos in account.positions.values():
                    if not pos.isolated:
                        mark = engine.markets[pos.symbol].mark
                        assert mark is not None
                        req_sum += margin.requirement(profile, pos, mark, account.fees.taker)[0]
                        upnl_sum += margin.unrealized_pnl(pos, mark)
                cross_req[account_id], cross_upnl[account_id] = req_sum, upnl_sum
    bounds = []
    for sym in scenario.symbols[:N_TICKED]:
        market = engine.markets[symbol_name(sym.index)]
        mark = market.mark
        assert mark is not None
        lo, hi = sym.base * (1 - width), sym.base * (1 + width)
        holders = [(pos, acc) for pos, acc in market.isolated.items()]
        if variant != "quiet":
            holders += list(market.cross.items())
        for pos, account in holders:
            with decimal_context():
                if pos.isolated:
                    wallet = pos.isolated_wallet
                else:
                    own_req = margin.requirement(profile, pos, mark, account.fees.taker)[0]
                    own_upnl = margin.unrealized_pnl(pos, mark)
                    wallet = (
                        account.wallet
                        - (cross_req[account.id] - own_req)
                        + (cross_upnl[account.id] - own_upnl)
                    )
                solved = margin.level_price(profile, pos, wallet, account.fees.taker, level)
            if solved is None or solved[0] <= 0:
                continue
            price = float(solved[0])
            if pos.sign > 0:
                lo = max(lo, price * (1 + margin_))
            else:
                hi = min(hi, price * (1 - margin_))
        assert lo < sym.base < hi, (sym.index, lo, sym.base, hi)
        bounds.append((lo, hi))
    return bounds


def make_ticks(scenario: Scenario, variant: str, n: int, seed: int) -> list[TickCmd]:
    """``n`` ticks cycling over the ticked symbols, a bounded (reflected) random walk each."""
    rng = random.Random(seed + (0 if variant == "quiet" else 7))
    step = QUIET_STEP if variant == "quiet" else ALERT_STEP
    bounds = walk_bounds(scenario, variant)
    symbols = [symbol_name(s.index) for s in scenario.symbols[:N_TICKED]]
    prices = [s.base for s in scenario.symbols[:N_TICKED]]
    ticks = []
    for i in range(n):
        k = i % N_TICKED
        lo, hi = bounds[k]
        p = prices[k] * (1 + rng.uniform(-step, step))
        if p < lo:
            p = min(2 * lo - p, hi)
        elif p > hi:
            p = max(2 * hi - p, lo)
        prices[k] = p
        ticks.append(
            TickCmd(
                symbol=symbols[k],
                mark=dec(p, 8),
                bid=dec(p * (1 - SPREAD), 8),
                ask=dec(p * (1 + SPREAD), 8),
            )
        )
    return ticks


# ---------------------------------------------------------------------------------------- measure


@dataclass(slots=True)
class Result:
    scenario: str
    variant: str
    positions: int
    ticked: int
    ticks: int
    seconds: float  # best of the repeats
    events: Counter[str]  # of the best run
    mode: str = "gc"  # gc: collector enabled; frozen: gc.freeze() after setup


def run_once(engine: Engine, ticks: list[TickCmd], ts0: int) -> tuple[float, list[Event]]:
    tick = engine.tick
    produced: list[Event] = []
    ts = ts0
    t0 = time.perf_counter()
    for cmd in ticks:
        ts += 10
        out = tick(ts, cmd)
        if out:
            produced.extend(out)
    return time.perf_counter() - t0, produced


def measure(
    runs: list[tuple[Scenario, list[TickCmd]]], variant: str, repeats: int, *, freeze: bool
) -> list[Result]:
    """Best of ``repeats`` runs of each scenario's ticks, the scenarios taking turns; with
    ``freeze``, each repeat also runs once after gc.freeze(). Taking turns makes the figures
    see the same machine: on a shared machine speed drifts by tens of percent within minutes.
    """
    modes = ("gc", "frozen") if freeze else ("gc",)
    best: dict[tuple[str, str], tuple[float, list[Event]]] = {}
    for _ in range(repeats):
        for scenario, ticks in runs:
            for mode in modes:
                if mode == "frozen":
                    gc.freeze()
                seconds, produced = run_once(scenario.engine, ticks, scenario.ts)
                gc.unfreeze()
                scenario.ts += 10 * len(ticks) + 10
                key = (scenario.name, mode)
                if key not in best or seconds < best[key][0]:
                    best[key] = (seconds, produced)
    results = []
    for mode in modes:
        for scenario, ticks in runs:
            seconds, produced = best[scenario.name, mode]
            events = Counter(e["type"] for e in produced)
            for kind in ("stop_triggered", "liquidation", "fill", "order_rejected"):
                assert events[kind] == 0, (scenario.name, variant, events)
            if variant == "quiet":
                assert not events, (scenario.name, variant, events)
            results.append(
                Result(
                    scenario.name,
                    variant,
                    scenario.positions,
                    N_TICKED,
                    len(ticks),
                    seconds,
                    events,
                    mode,
                )
            )
    return results


def profile_run(scenario: Scenario, ticks: list[TickCmd], top: int = 15) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    run_once(scenario.engine, ticks, scenario.ts)
    scenario.ts += 10 * len(ticks) + 10
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(top)
    print(f"\ncProfile of {scenario.name} quiet, {len(ticks):,} ticks, top {top} by tottime:")
    print(stream.getvalue().rstrip())


# ---------------------------------------------------------------------------------------- report


def rate(r: Result) -> float:
    return r.ticks / r.seconds


def show_events(events: Counter[str]) -> str:
    if not events:
        return "0"
    detail = ", ".join(f"{k} {v:,}" for k, v in sorted(events.items()))
    return f"{sum(events.values()):,} ({detail})"


def print_table(results: list[Result]) -> None:
    header = (
        f"{'scenario':<18} {'positions':>9} {'ticked':>6} {'ticks':>9} {'seconds':>8} "
        f"{'ticks/s':>9} {'µs/tick':>8}  events"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.scenario + ' ' + r.variant:<18} {r.positions:>9,} {r.ticked:>6} {r.ticks:>9,} "
            f"{r.seconds:>8.3f} {rate(r):>9,.0f} {1e6 * r.seconds / r.ticks:>8.2f}  "
            f"{show_events(r.events)}"
        )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=200_000, help="ticks per run (200000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure, best kept (3)")
    parser.add_argument("--seed", type=int, default=20260101)
    parser.add_argument("--only", choices=("s1", "s2"), help="run one scenario")
    parser.add_argument(
        "--other-symbols",
        type=int,
        default=N_OTHER,
        help=f"S2's never-ticked symbols ({N_OTHER}; 10 positions each)",
    )
    parser.add_argument(
        "--strict-setup",
        action="store_true",
        help="open S2's never-ticked positions in the measured engine itself (slow)",
    )
    parser.add_argument(
        "--verify-setup",
        type=int,
        metavar="N",
        help="compare strict and batched setups of S2 with N never-ticked symbols, then exit",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile S1 (top 15 by tottime)")
    parser.add_argument("--no-freeze", action="store_true", help="skip the gc.freeze() runs")
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="build S1 and S2 first, then let their runs take turns (steadier S2/S1 on a busy "
        "machine; S1 then runs with S2's objects in memory)",
    )
    args = parser.parse_args(argv)
    if args.verify_setup is not None:
        verify_setup(args.seed, args.verify_setup)
        return 0

    print(
        f"guardbot engine throughput: {args.ticks:,} ticks per run, best of {args.repeats}, "
        f"seed {args.seed}, {'interleaved' if args.interleave else 'one scenario at a time'}, "
        f"Python {sys.version.split()[0]}"
    )
    builders: list[tuple[str, Callable[[], Scenario]]] = []
    if args.only in (None, "s1"):
        builders.append(("S1", lambda: build("S1", args.seed, 0, strict=True, progress=True)))
    if args.only in (None, "s2"):
        builders.append(
            (
                "S2",
                lambda: build(
                    "S2", args.seed, args.other_symbols, strict=args.strict_setup, progress=True
                ),
            )
        )

    results: list[Result] = []
    freeze = not args.no_freeze
    ready: list[tuple[Scenario, list[TickCmd], list[TickCmd]]] = []
    for name, builder in builders:
        gc.collect()
        scenario = builder()
        print(
            f"{name} setup: {scenario.positions:,} positions, {scenario.open_orders:,} open "
            f"orders, {len(scenario.symbols):,} symbols in {scenario.setup_seconds:.1f} s, "
            f"{scenario.setup_mode} ({show_events(scenario.setup_events)})",
            flush=True,
        )
        quiet = make_ticks(scenario, "quiet", args.ticks, args.seed)
        alerts = make_ticks(scenario, "alerts", args.ticks, args.seed)
        ready.append((scenario, quiet, alerts))
        if args.interleave:
            continue  # measured together once all are built
        gc.collect()
        results += measure([(scenario, quiet)], "quiet", args.repeats, freeze=freeze)
        if args.profile and name == "S1":
            profile_run(scenario, quiet)
        # last: alert levels change the state (fired levels, quiet bands)
        results += measure([(scenario, alerts)], "alerts", args.repeats, freeze=False)
        ready.clear()
        del scenario, quiet, alerts
    if args.interleave:
        gc.collect()
        results += measure([(s, q) for s, q, _ in ready], "quiet", args.repeats, freeze=freeze)
        if args.profile and ready[0][0].name == "S1":
            profile_run(ready[0][0], ready[0][1])
        results += measure([(s, a) for s, _, a in ready], "alerts", args.repeats, freeze=False)
    frozen = [r for r in results if r.mode == "frozen"]
    results = [r for r in results if r.mode == "gc"]

    print()
    print_table(results)
    if frozen:
        print("\nwith gc.freeze() after setup (quiet):")
        print_table(frozen)

    by_key = {(r.scenario, r.variant): r for r in results}
    s1, s2 = by_key.get(("S1", "quiet")), by_key.get(("S2", "quiet"))
    print()
    if s1 is not None:
        print(
            f"target S1 >= {TARGET_S1:,.0f} ticks/s: {rate(s1):,.0f} ticks/s "
            f"{verdict(rate(s1) >= TARGET_S1)}"
        )
    if s1 is not None and s2 is not None:
        ratio = rate(s2) / rate(s1)
        print(f"target S2/S1 >= {TARGET_RATIO}: {ratio:.3f} {verdict(ratio >= TARGET_RATIO)}")
        fs = {r.scenario: r for r in frozen}
        if "S1" in fs and "S2" in fs:
            print(f"  (with gc.freeze(): S2/S1 = {rate(fs['S2']) / rate(fs['S1']):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
