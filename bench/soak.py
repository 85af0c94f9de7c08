"""Soak: ``guardbot run`` against the stand-in exchange for a long while, sampled as it goes.

The stand-in (in this process) sends price updates at ``--rate`` ticks/s over its symbols (a
tick = one mark-price frame plus one book-ticker frame of a symbol, round robin): mean-reverting
random walks with an *excursion* every ``--excursion-every`` seconds: one symbol's mark goes to
a target over a few seconds, holds, and comes back. The target is mostly a point between an open
isolated position's entry and its liquidation price (alert levels crossed, then recovered; a
liquidation now and then), otherwise a random 2-6 % move. Scripted ``order`` commands over MQTT
(``[control]`` on, token from ``GUARDBOT_CONTROL_TOKEN``) open and close positions every
``--cmd-every`` seconds in two accounts: ``main`` (cross) and ``iso`` (isolated, 20-33x, half
of the orders with a stop-loss).

Every ``--sample`` seconds: the daemon's RSS and CPU % (psutil), and from its Prometheus endpoint
the outbox depth, ticks received / dropped and alerts raised; the retained status' outbox depth;
alerts received by a subscriber on ``guardbot/<instance>/alerts/#``. At the end the daemon is
stopped cleanly and the alert ids journaled in its SQLite outbox are compared with those
received (every alert delivered = equal sets; with ``--retention-days``, which prunes sent rows:
every row still journaled was received, and as many alerts arrived as the daemon counted).

Output in ``--out``: ``samples.csv``, ``soak.png`` (RSS, CPU, outbox depth, alerts), the
daemon's log and database; the summary (RSS slope after the warm-up by least squares, MB/hour)
on stdout.

    python bench/soak.py [--minutes 30] [--rate 200] [--symbols 20] [--out DIR]
                         [--retention-days D] [--checkpoint-interval S]

With ``--retention-days`` the database size (file + WAL, column ``db_mb``) should stay flat
once a retention period and two checkpoints have passed; the summary prints its slope.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

from _harness import (
    Broker,
    Child,
    Pacer,
    Received,
    StandinBinance,
    Subscriber,
    available_symbols,
    daemon_toml,
    free_port,
    metric_sum,
    run_main,
    scrape,
    start_daemon,
    wait_daemon_subscribed,
    workdir,
)

INSTANCE = "soak"
TOKEN = "soak-bench-token"
DEFAULT_BASE = {"BTC/USDT:USDT": 60000.0, "ETH/USDT:USDT": 3000.0}
NOISE = 0.0003  # per-tick relative step of the walk
REVERSION = 0.002  # per tick, pull of the walk toward the base price
ACCOUNTS = {
    "main": {
        "wallet": 20000,  # losses of the random closes must not exhaust it within hours
        "default_margin_mode": "cross",
        "default_leverage": 20,
        "maker_fee": 0.0002,
        "taker_fee": 0.0005,
    },
    "iso": {
        "wallet": 1000000,
        "default_margin_mode": "isolated",
        "default_leverage": 20,
        "maker_fee": 0.0002,
        "taker_fee": 0.0005,
    },
}
NOTIONAL = {"main": 12000.0, "iso": 10000.0}
ISO_LEVERAGES = (20, 25, 33)
TARGET_SLOPE_MB_H = 5.0


def quantum(price: float) -> str:
    return "0.1" if price > 1000 else "0.01"


def as_price(value: float, base: float) -> Decimal:
    return Decimal(f"{value:.8f}").quantize(Decimal(quantum(base)))


# ------------------------------------------------------------------------------- prices


@dataclass
class Excursion:
    symbol: str
    target: float  # the mark held at the top of the excursion
    start: float
    ramp: float
    hold: float

    def weight(self, now: float) -> float | None:
        """How far the mark is pulled from its walk to ``target`` (0..1); None once over."""
        t = now - self.start
        if t < self.ramp:
            return max(0.0, t / self.ramp)
        if t < self.ramp + self.hold:
            return 1.0
        if t < 2 * self.ramp + self.hold:
            return 1 - (t - self.ramp - self.hold) / self.ramp
        return None


class Prices:
    """Mean-reverting walks per symbol plus at most one excursion at a time.

    An excursion moves one symbol's mark to a target and back. With an isolated position open
    (``snapshots``: the daemon's retained account snapshots), the target is usually a fraction
    ``f`` (0.85-1.0) of the way from its entry to its liquidation price: a ratio near the alert
    levels (0.5 / 0.7 / 0.8 fire, then ``margin_recovered`` on the way back), a liquidation now
    and then. Otherwise it is a random 2-6 % move up or down.
    """

    def __init__(
        self,
        symbols: list[str],
        rng: random.Random,
        excursion_every: float,
        snapshots: dict[str, Any],
    ) -> None:
        self.base = {s: DEFAULT_BASE.get(s, 100.0) for s in symbols}
        self.walk = dict.fromkeys(symbols, 0.0)
        self.rng = rng
        self.every = excursion_every
        self.snapshots = snapshots
        self.excursion: Excursion | None = None
        self.next_excursion = time.monotonic() + excursion_every / 2
        self.excursions = 0
        self.aimed = 0
        self.last: dict[str, Decimal] = {}

    def _new_excursion(self, now: float) -> Excursion:
        positions = [
            p
            for p in (self.snapshots.get("iso") or {}).get("positions") or []
            if p.get("liquidationPrice") and p.get("symbol") in self.base
        ]
        ramp, hold = self.rng.uniform(2, 4), self.rng.uniform(3, 8)
        if positions and self.rng.random() < 0.8:
            pos = self.rng.choice(positions)
            entry, liq = float(pos["entryPrice"]), float(pos["liquidationPrice"])
            target = entry + self.rng.uniform(0.85, 1.0) * (liq - entry)
            self.aimed += 1
            return Excursion(pos["symbol"], target, now, ramp, hold)
        symbol = self.rng.choice(list(self.base))
        size = self.rng.uniform(0.02, 0.06) * self.rng.choice((-1, 1))
        return Excursion(symbol, self.base[symbol] * (1 + size), now, ramp, hold)

    def tick(self, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
        now = time.monotonic()
        if self.excursion is None and now >= self.next_excursion:
            self.excursion = self._new_excursion(now)
            self.excursions += 1
        w = self.walk[symbol]
        w += -REVERSION * w + self.rng.gauss(0, NOISE)
        w = max(-0.01, min(0.01, w))
        self.walk[symbol] = w
        base = self.base[symbol]
        mark = base * (1 + w)
        if self.excursion is not None:
            alpha = self.excursion.weight(now)
            if alpha is None:
                self.excursion = None
                self.next_excursion = now + self.every * self.rng.uniform(0.5, 1.5)
            elif self.excursion.symbol == symbol:
                target = self.excursion.target * (1 + self.rng.gauss(0, 0.0001))
                mark = (1 - alpha) * mark + alpha * target
        q = float(quantum(base))
        price = as_price(mark, base)
        self.last[symbol] = price
        return price, as_price(mark - q, base), as_price(mark + q, base)


# ------------------------------------------------------------------------------- commands


@dataclass
class Commands:
    """Scripted ``order`` commands over MQTT; positions known from the retained snapshots."""

    sub: Subscriber
    prices: Prices
    rng: random.Random
    snapshots: dict[str, Any] = field(default_factory=dict)
    sent: int = 0
    replies: Counter[str] = field(default_factory=Counter)
    seq: int = 0
    #: symbols the engine refused with UNKNOWN_SYMBOL (no tier table: the daemon's tier source
    #: is "none" for symbols without bundled tiers and without exchange keys); not traded again
    untradable: set[str] = field(default_factory=set)
    _symbol_of: dict[str, str] = field(default_factory=dict)

    def positions(self, account: str) -> list[dict[str, Any]]:
        return list(self.snapshots.get(account, {}).get("positions") or [])

    async def send(self, body: dict[str, Any]) -> None:
        self.seq += 1
        payload = {**body, "requestId": f"soak-{self.seq}", "token": TOKEN}
        self._symbol_of[f"soak-{self.seq}"] = str(body.get("symbol"))
        await self.sub.publish(f"guardbot/{INSTANCE}/cmd", json.dumps(payload))
        self.sent += 1

    def on_reply(self, item: Received) -> None:
        if isinstance(item.payload, dict):
            ok = item.payload.get("ok")
            code = str(item.payload.get("code"))
            self.replies["ok" if ok else code] += 1
            symbol = self._symbol_of.pop(str(item.payload.get("requestId")), None)
            if code == "UNKNOWN_SYMBOL" and symbol is not None:
                self.untradable.add(symbol)

    async def step(self) -> None:
        account = self.rng.choice(("main", "iso"))
        held = self.positions(account)
        open_symbols = {p["symbol"] for p in held}
        free = [
            s
            for s in self.prices.base
            if s not in open_symbols and s in self.prices.last and s not in self.untradable
        ]
        limit = 1 if account == "main" else 2
        if held and (len(held) >= limit or not free or self.rng.random() < 0.4):
            pos = held[0]
            side = "sell" if pos["side"] == "long" else "buy"
            await self.send(
                {
                    "type": "order",
                    "account": account,
                    "id": f"close-{self.seq + 1}",
                    "symbol": pos["symbol"],
                    "orderType": "market",
                    "side": side,
                    "amount": pos["contracts"],
                    "params": {"reduceOnly": True},
                }
            )
            return
        if not free:
            return
        symbol = self.rng.choice(free)
        side = self.rng.choice(("buy", "sell"))
        price = float(self.prices.last[symbol])
        amount = Decimal(f"{NOTIONAL[account] / price:.3f}")
        body: dict[str, Any] = {
            "type": "order",
            "account": account,
            "id": f"open-{self.seq + 1}",
            "symbol": symbol,
            "orderType": "market",
            "side": side,
            "amount": str(amount),
        }
        if account == "iso":
            leverage = self.rng.choice(ISO_LEVERAGES)
            await self.send(
                {"type": "set_leverage", "account": account, "symbol": symbol, "leverage": leverage}
            )
            if self.rng.random() < 0.5:
                sign = 1 if side == "buy" else -1
                stop = as_price(price * (1 - sign * 0.04), price)
                body["params"] = {"stopLossPrice": str(stop)}
            body["id"] = f"open-{self.seq + 1}"
        await self.send(body)


# ------------------------------------------------------------------------------- sampling


@dataclass
class Sample:
    t_s: float
    rss_mb: float
    cpu_pct: float
    outbox_depth: float
    status_outbox_depth: float
    ticks_sent: int
    ticks_received: float
    ticks_dropped: float
    alerts_raised: float
    alerts_received: int
    commands_sent: int
    db_mb: float


def least_squares_slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    if n < 2:
        return math.nan
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return math.nan
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def write_png(path: Path, samples: list[Sample], warm_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t_s / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    series: list[tuple[str, list[list[float]], list[str]]] = [
        ("RSS (MB)", [[s.rss_mb for s in samples]], ["rss"]),
        ("CPU (% of one core)", [[s.cpu_pct for s in samples]], ["cpu"]),
        (
            "outbox depth",
            [[s.outbox_depth for s in samples], [s.status_outbox_depth for s in samples]],
            ["metrics", "status"],
        ),
        (
            "alerts (cumulative)",
            [[s.alerts_raised for s in samples], [float(s.alerts_received) for s in samples]],
            ["raised (metrics)", "received (MQTT)"],
        ),
    ]
    for ax, (title, ys, labels) in zip(axes, series, strict=True):
        for y, label in zip(ys, labels, strict=True):
            ax.plot(t, y, label=label, linewidth=1)
        ax.set_ylabel(title)
        ax.axvline(warm_s / 60, color="grey", linestyle=":", linewidth=1)
        ax.grid(True, alpha=0.3)
        if len(labels) > 1:
            ax.legend(loc="upper left", fontsize=8)
    axes[-1].set_xlabel("minutes (dotted: end of warm-up)")
    fig.suptitle("guardbot soak against the stand-in exchange")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def journaled_alert_ids(db: Path) -> tuple[set[str], int]:
    """Alert ids of the outbox's alert rows, and how many rows are still unsent."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        ids = {
            r[0] for r in conn.execute("SELECT alert_id FROM outbox WHERE topic LIKE '%/alerts/%'")
        }
        (unsent,) = conn.execute("SELECT COUNT(*) FROM outbox WHERE sent_ts IS NULL").fetchone()
    return ids, int(unsent)


# ------------------------------------------------------------------------------- main


async def amain(args: argparse.Namespace) -> int:
    symbols, missing = available_symbols(args.symbols)
    duration = args.minutes * 60
    print(
        f"guardbot soak: {args.minutes:g} min, {args.rate:g} ticks/s over {len(symbols)} symbols "
        f"({', '.join(symbols)}), sample every {args.sample:g} s, commands every "
        f"{args.cmd_every:g} s, excursion every ~{args.excursion_every:g} s; "
        f"Python {sys.version.split()[0]}",
        flush=True,
    )
    if missing:
        print(
            f"NOTE: {args.symbols} symbols asked, the stand-in serves {len(symbols)}: "
            f"{missing} missing (tests/standin/binance.py needs EXCHANGE_INFO_SYMBOLS, "
            "UNIFIED_TO_ID and DEFAULT_PRICES entries for them)",
            flush=True,
        )
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics_port = free_port()
    samples: list[Sample] = []
    async with workdir(None, "guardbot-soak-") as broker_dir:
        broker = Broker(broker_dir).start()
        standin = await StandinBinance(symbols).start()
        daemon: Child | None = None
        try:
            text = daemon_toml(
                instance=INSTANCE,
                data_dir=out / "data",
                standin=standin,
                broker=broker,
                symbols=symbols,
                accounts=ACCOUNTS,
                metrics_port=metrics_port,
                control=True,
                store=store_table(args),
            )
            db = out / "data" / "guardbot.db"
            for stale in (db, db.with_name("guardbot.db-wal"), db.with_name("guardbot.db-shm")):
                stale.unlink(missing_ok=True)  # a fresh journal each run
            snapshots: dict[str, Any] = {}
            prices = Prices(symbols, rng, args.excursion_every, snapshots)
            status: dict[str, Any] = {}
            commands: Commands | None = None

            def on_message(item: Received) -> None:
                topic = item.topic
                if topic.endswith("/status") and isinstance(item.payload, dict):
                    status.update(item.payload)
                elif "/accounts/" in topic and commands is not None:
                    commands.snapshots[topic.rsplit("/", 1)[1]] = item.payload
                elif "/reply/" in topic and commands is not None:
                    commands.on_reply(item)

            topics = [f"guardbot/{INSTANCE}/{t}" for t in ("alerts/#", "status", "accounts/+")]
            topics.append(f"guardbot/{INSTANCE}/reply/+")
            async with Subscriber(
                broker, topics, on_message=on_message, keep=lambda t: "/alerts/" in t
            ) as sub:
                commands = Commands(sub, prices, rng, snapshots)
                # Dummy API keys: the stand-in serves the signed leverage brackets, so the daemon
                # has live tier tables for every symbol (without keys: only the bundled two).
                keys = {
                    "GUARDBOT_CONTROL_TOKEN": TOKEN,
                    "GUARDBOT_EXCHANGE_API_KEY": "soak-key",
                    "GUARDBOT_EXCHANGE_SECRET": "soak-secret",
                }
                daemon = start_daemon(text, out, env_extra=keys)
                await wait_daemon_subscribed(standin, symbols, daemon)
                print(f"daemon pid {daemon.pid} subscribed; running ...", flush=True)
                ticks = 0
                t0 = time.monotonic()
                cpu_prev = (daemon.cpu_seconds(), t0)

                async def drive() -> None:
                    nonlocal ticks
                    pacer = Pacer(args.rate)
                    n = len(symbols)
                    for i in range(int(duration * args.rate)):
                        await pacer.next()
                        symbol = symbols[i % n]
                        mark, bid, ask = prices.tick(symbol)
                        await standin.set_price(symbol, mark=mark, bid=bid, ask=ask)
                        ticks += 1

                async def script() -> None:
                    for _ in range(int(duration / args.cmd_every)):
                        await asyncio.sleep(args.cmd_every)
                        await commands.step()

                async def sample() -> None:
                    nonlocal cpu_prev
                    for k in range(int(duration / args.sample) + 1):
                        await asyncio.sleep(max(0.0, t0 + k * args.sample - time.monotonic()))
                        if not daemon.alive():
                            raise RuntimeError(f"daemon exited:\n{daemon.log_tail()}")
                        now = time.monotonic()
                        cpu = daemon.cpu_seconds()
                        cpu_pct = 100 * (cpu - cpu_prev[0]) / max(1e-9, now - cpu_prev[1])
                        cpu_prev = (cpu, now)
                        m = await scrape(metrics_port)
                        s = Sample(
                            t_s=round(now - t0, 3),
                            rss_mb=daemon.ps.memory_info().rss / 2**20,
                            cpu_pct=round(cpu_pct, 2) if k else 0.0,
                            outbox_depth=metric_sum(m, "guardbot_outbox_depth"),
                            status_outbox_depth=float(
                                (status.get("outbox") or {}).get("depth") or 0
                            ),
                            ticks_sent=ticks,
                            ticks_received=metric_sum(m, "guardbot_ticks_received_total"),
                            ticks_dropped=metric_sum(m, "guardbot_ticks_dropped_total"),
                            alerts_raised=metric_sum(m, "guardbot_alerts_total"),
                            alerts_received=len(sub.received),
                            commands_sent=commands.sent,
                            db_mb=round(db_size(db) / 2**20, 3),
                        )
                        samples.append(s)
                        if k % max(1, int(60 / args.sample)) == 0:
                            print(
                                f"  {s.t_s / 60:5.1f} min  rss {s.rss_mb:6.1f} MB  cpu "
                                f"{s.cpu_pct:5.1f} %  outbox {s.outbox_depth:.0f}  ticks "
                                f"{s.ticks_sent:,}  dropped {s.ticks_dropped:.0f}  alerts "
                                f"{s.alerts_raised:.0f}/{s.alerts_received}  db {s.db_mb:.1f} MB",
                                flush=True,
                            )

                await asyncio.gather(drive(), script(), sample())
                sent_window = time.monotonic() - t0
                # let the last alerts out, then a clean stop (the daemon drains its outbox)
                await asyncio.sleep(2.0)
                final_metrics = await scrape(metrics_port)
                exit_status = daemon.stop(timeout=20)
                await asyncio.sleep(1.0)
                received_ids = {
                    str(r.payload.get("alertId"))
                    for r in sub.received
                    if isinstance(r.payload, dict)
                }
                received_types = Counter(
                    str(r.payload.get("type")) for r in sub.received if isinstance(r.payload, dict)
                )
                replies = dict(commands.replies)
                untradable = set(commands.untradable)
                n_commands = commands.sent
        finally:
            if daemon is not None:
                daemon.stop(timeout=20)
            await standin.stop()
            broker.stop()

    journaled, unsent = journaled_alert_ids(out / "data" / "guardbot.db")
    with (out / "samples.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(samples[0])))
        writer.writeheader()
        writer.writerows(asdict(s) for s in samples)
    warm_s = args.warmup_fraction * duration
    after = [s for s in samples if s.t_s >= warm_s]
    slope = least_squares_slope([s.t_s / 3600 for s in after], [s.rss_mb for s in after])
    write_png(out / "soak.png", samples, warm_s)

    last = samples[-1]
    dropped = metric_sum(final_metrics, "guardbot_ticks_dropped_total")
    received_ticks = metric_sum(final_metrics, "guardbot_ticks_received_total")
    alerts_metric = metric_sum(final_metrics, "guardbot_alerts_total")
    by_type: Counter[str] = Counter()
    for lab, v in final_metrics.get("guardbot_alerts_total", []):
        by_type[lab.get("type", "?")] += int(v)
    # Retention prunes sent outbox rows older than retention_days, so with a short retention the
    # journal keeps only the newest alerts: every one it keeps must have arrived, and as many
    # alerts must have arrived as the daemon raised (its counter covers the whole run).
    if args.retention_days is None:
        delivered = journaled == received_ids
    else:
        delivered = journaled <= received_ids and len(received_ids) == int(alerts_metric)
    print()
    print(
        f"ran {sent_window / 60:.1f} min: {ticks:,} ticks sent ({ticks / sent_window:.1f}/s), "
        f"{received_ticks:,.0f} tick updates received by the daemon; {prices.excursions} "
        f"excursions ({prices.aimed} aimed at an isolated position); "
        f"{n_commands} commands sent, replies {replies}; untradable (UNKNOWN_SYMBOL) "
        f"{sorted(untradable) or 'none'}; daemon exit status {exit_status}"
    )
    print(f"samples: {len(samples)} in {out / 'samples.csv'}; chart {out / 'soak.png'}")
    print(
        f"RSS: first {samples[0].rss_mb:.1f} MB, at warm-up end "
        f"{after[0].rss_mb if after else math.nan:.1f} MB, last {last.rss_mb:.1f} MB, "
        f"max {max(s.rss_mb for s in samples):.1f} MB"
    )
    retained = [s for s in samples if s.t_s >= db_flat_from(args, duration)]
    if len(retained) >= 2:
        db_slope = least_squares_slope(
            [s.t_s / 3600 for s in retained], [s.db_mb for s in retained]
        )
        print(
            f"database (file + WAL): {samples[0].db_mb:.1f} MB first, "
            f"{retained[0].db_mb:.1f} MB once retention applies, {last.db_mb:.1f} MB last, "
            f"max {max(s.db_mb for s in samples):.1f} MB; slope since then {db_slope:+.2f} MB/hour"
        )
    cpu = [s.cpu_pct for s in samples[1:]]
    if cpu:
        print(f"CPU: mean {sum(cpu) / len(cpu):.1f} %, max {max(cpu):.1f} % of one core")
    print(
        f"outbox depth: max {max(s.outbox_depth for s in samples):.0f} (metrics), "
        f"max {max(s.status_outbox_depth for s in samples):.0f} (status); unsent rows after "
        f"stop {unsent}"
    )
    print(
        f"alerts: raised {alerts_metric:.0f} (metrics, by type {dict(+by_type)}); journaled "
        f"{len(journaled)}; received {len(received_ids)} (by type {dict(received_types)})"
    )
    if not delivered:
        print(f"  journaled, not received: {sorted(journaled - received_ids)[:10]}")
        print(f"  received, not journaled: {sorted(received_ids - journaled)[:10]}")
    elif args.retention_days is not None:
        print(
            f"  {len(received_ids - journaled)} received alerts were pruned from the outbox by "
            f"retention; every alert still journaled was received"
        )
    tail = [s for s in samples if s.t_s >= (2 / 3) * duration]
    if len(tail) >= 2:
        tail_slope = least_squares_slope([s.t_s / 3600 for s in tail], [s.rss_mb for s in tail])
        print(f"RSS slope over the last third of the run: {tail_slope:+.2f} MB/hour")
    print()
    print(
        f"target RSS slope < {TARGET_SLOPE_MB_H:g} MB/hour after warm-up "
        f"({args.warmup_fraction:.0%} of the run, {len(after)} samples): {slope:+.2f} MB/hour "
        f"{'PASS' if slope < TARGET_SLOPE_MB_H else 'MISS'}"
    )
    print(f"target 0 valid ticks dropped: {dropped:.0f} {'PASS' if dropped == 0 else 'MISS'}")
    print(
        f"target every alert delivered: {len(received_ids)} received of {alerts_metric:.0f} "
        f"raised; {len(received_ids & journaled)}/{len(journaled)} of those still journaled "
        f"{'PASS' if delivered else 'MISS'}"
    )
    if args.minutes < 30:
        print(f"(the targets are stated for a 30-minute run; this one was {args.minutes:g} min)")
    return 0


def store_table(args: argparse.Namespace) -> dict[str, float]:
    """The ``[store]`` keys the command line sets (none: the daemon's defaults)."""
    table: dict[str, float] = {}
    if args.retention_days is not None:
        table["retention_days"] = args.retention_days
    if args.checkpoint_interval is not None:
        table["checkpoint_interval_s"] = args.checkpoint_interval
    return table


def db_size(db: Path) -> int:
    """Bytes of the journal on disk: the database file and its write-ahead log."""
    total = 0
    for path in (db, db.with_name(db.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


def db_flat_from(args: argparse.Namespace, duration: float) -> float:
    """Seconds into the run from which the database should stay flat: one retention period
    plus two checkpoint intervals (the first prune that reaches back a whole period), or the
    warm-up's end when no retention was asked for."""
    if args.retention_days is None:
        return args.warmup_fraction * duration
    interval = args.checkpoint_interval if args.checkpoint_interval is not None else 300.0
    return args.retention_days * 86400 + 2 * interval


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="run time (30)")
    parser.add_argument("--rate", type=float, default=200.0, help="ticks/s in all (200)")
    parser.add_argument("--symbols", type=int, default=20, help="symbols wanted (20)")
    parser.add_argument("--sample", type=float, default=5.0, help="sampling interval, s (5)")
    parser.add_argument("--cmd-every", type=float, default=5.0, help="command interval, s (5)")
    parser.add_argument(
        "--excursion-every", type=float, default=20.0, help="mean excursion interval, s (20)"
    )
    parser.add_argument(
        "--warmup-fraction", type=float, default=0.2, help="start of the RSS fit (0.2)"
    )
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--retention-days",
        type=float,
        default=None,
        help="[store] retention_days (the daemon's default when not given); e.g. 0.01 = 14.4 min",
    )
    parser.add_argument(
        "--checkpoint-interval",
        type=float,
        default=None,
        help="[store] checkpoint_interval_s (the daemon's default when not given)",
    )
    default_out = str(Path(tempfile.gettempdir()) / "guardbot-soak")
    parser.add_argument("--out", default=default_out, help=f"output directory ({default_out})")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.sample <= 0 or args.cmd_every <= 0:
        parser.error("--minutes, --rate, --sample and --cmd-every must be > 0")
    if not 0 <= args.warmup_fraction < 1:
        parser.error("--warmup-fraction must be in [0, 1)")
    return run_main(lambda: amain(args))


if __name__ == "__main__":
    sys.exit(main())
