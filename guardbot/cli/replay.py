"""``guardbot replay``: run a strategy on recorded ticks through the paper exchange, as fast as
the engine goes, and write a run directory that ``guardbot report`` reads.

::

    guardbot replay --ticks FILE --strategy PATH:Class [--config FILE.toml] --out RUN_DIR
                    [--account NAME] [--params JSON] [--stop-on-error]

The run is deterministic: time comes from the ticks (commands happen at the time of the tick
being handled), never from the clock, so the same inputs give byte-identical files. RUN_DIR holds:

``events.jsonl``
    every engine event in order, one compact JSON object per line, Decimals as strings.
``samples.jsonl``
    a time series: one line at most once per second of tick time, one at every tick that
    produced events, and the first and last tick (see :func:`sample`).
``summary.json``
    counts and per-account results (see :class:`_Run.summary`).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TextIO

from guardbot.config import Config, load_config
from guardbot.core.account import Account
from guardbot.core.engine import Engine
from guardbot.core.events import Event, to_jsonable
from guardbot.core.num import ZERO, decimal_context, fmt, fmt_opt
from guardbot.core.snapshot import PositionView
from guardbot.errors import InputError
from guardbot.formats.tickcolumns import is_columns_file, read_rows
from guardbot.formats.ticklines import Row, decode_rows, open_ticks, read_ticks
from guardbot.paper.apply import engine_apply
from guardbot.paper.exchange import PaperExchange
from guardbot.paper.runner import StrategyError, StrategyRunner
from guardbot.paper.strategy import load_strategy
from guardbot.tiers.source import bundled_for

__all__ = ["add_arguments", "read_ticks", "replay", "run_replay", "sample"]

#: Periodic samples are at least this far apart in tick time (ms).
SAMPLE_INTERVAL_MS = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``guardbot replay`` (the lead's cli adds the subcommand)."""
    parser.add_argument(
        "--ticks",
        required=True,
        metavar="FILE",
        help="recorded ticks: JSON Lines (.gz ok) or tick columns (guardbot record --out X.gbt)",
    )
    parser.add_argument(
        "--strategy",
        metavar="PATH:Class",
        help='strategy "file.py:ClassName" or an entry point name (default: [strategy] path)',
    )
    parser.add_argument(
        "-c", "--config", metavar="FILE.toml", help="configuration (default: built-in defaults)"
    )
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to write")
    parser.add_argument(
        "--account", metavar="NAME", help="account the strategy trades (default: the first)"
    )
    parser.add_argument(
        "--params", metavar="JSON", help="strategy params, a JSON object over [strategy] params"
    )
    parser.add_argument(
        "--stop-on-error",
        action="store_true",
        help="stop at the first exception of the strategy (default: log, count, go on)",
    )


def run_replay(args: argparse.Namespace) -> int:
    """Run ``guardbot replay`` from parsed arguments; return the exit status.

    Bad input (config, ticks, strategy, params) raises :class:`~guardbot.errors.GuardbotError`
    for the caller to report (exit 2). A strategy failure with ``--stop-on-error`` is reported
    here on one line and gives exit status 1.
    """
    import asyncio

    from guardbot.runtime.logs import configure_logging

    config = load_config(args.config)
    configure_logging(config.guardbot.log_format, config.guardbot.log_level, stream=sys.stderr)
    params = _parse_params(args.params)
    try:
        summary = asyncio.run(
            replay(
                args.ticks,
                args.strategy,
                args.out,
                config=config,
                account=args.account,
                params=params,
                stop_on_error=args.stop_on_error,
            )
        )
    except StrategyError as exc:
        print(f"guardbot replay: {exc}", file=sys.stderr)
        return 1
    accounts = summary["accounts"]
    print(
        f"replayed {summary['ticks']} ticks into {args.out}: {summary['trades']} trades,"
        f" {summary['alerts']} margin alerts, {summary['liquidations']} liquidations,"
        f" {sum(summary['refusedOrders'].values())} refused, {summary['strategyErrors']}"
        " strategy errors; "
        + ", ".join(f"{name} wallet {row['wallet']}" for name, row in accounts.items())
    )
    return 0


def _parse_params(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError("--params", f"invalid JSON at column {exc.colno}: {exc.msg}") from None
    if not isinstance(value, dict):
        raise InputError("--params", "must be a JSON object")
    return value


class _Progress:
    """``replay: 42% (4200 ticks)`` on stderr, redrawn at each whole percent of the file read
    (bytes of the file as stored, so a ``.gz`` is not read twice to count its lines)."""

    def __init__(self, raw: IO[bytes], size: int, stream: TextIO) -> None:
        self.raw = raw
        self.size = max(size, 1)
        self.stream = stream
        self.shown = -1

    def update(self, done: int) -> None:
        percent = min(self.raw.tell() * 100 // self.size, 100)
        if percent != self.shown:
            self.shown = percent
            self.stream.write(f"\rreplay: {percent:3d}% ({done} ticks)")
            self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def ticks_of(path: Path, file: IO[str]) -> Iterator[Row]:
    """The ticks of ``path`` as rows (``Engine.quote``'s arguments): a tick-columns file (see
    :mod:`guardbot.formats.tickcolumns`, known by its first bytes) or tick lines read from
    ``file``."""
    if is_columns_file(path):
        return read_rows(path)
    return decode_rows(file)


def _wallet_equity(account: Account, views: Sequence[PositionView]) -> tuple[Decimal, Decimal]:
    """The account's wallet and its equity (wallet plus the positions' unrealized PnL)."""
    with decimal_context():
        wallet = account.total_wallet()
        return wallet, wallet + sum((v.unrealized_pnl for v in views), ZERO)


def sample(engine: Engine, ts: int) -> dict[str, Any]:
    """One ``samples.jsonl`` line: every priced symbol and every account at time ``ts``."""
    return _Sampler(engine).row(ts)[0]


class _Sampler:
    """Builds sample lines; it keeps the sorted symbols between them. A one-way account's
    line takes only what it prints from the engine (:meth:`Engine.levels`: PnL, ratios,
    liquidation prices), not the whole margin snapshot (initial margin, bankruptcy prices,
    one view per position)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._symbols: list[str] = []

    def row(self, ts: int) -> tuple[dict[str, Any], dict[str, Decimal]]:
        """The line's object, and each account's equity (for the drawdown)."""
        engine = self.engine
        markets = engine.markets
        if len(self._symbols) != len(markets):
            self._symbols = sorted(markets)
        prices = {}
        for symbol in self._symbols:
            market = markets[symbol]
            if market.mark is not None:
                prices[symbol] = {"mark": fmt(market.mark), "last": fmt_opt(market.last)}
        accounts: dict[str, Any] = {}
        equities: dict[str, Decimal] = {}
        for account in engine.iter_accounts():
            if account.hedged:
                accounts[account.id], equities[account.id] = _hedged_sample(engine, account)
                continue
            positions, rows, ratio = engine.levels(account)
            with decimal_context():
                wallet = account.total_wallet()
                equity = wallet + sum((row[0] for row in rows), ZERO)
            equities[account.id] = equity
            accounts[account.id] = {
                "wallet": fmt(wallet),
                "equity": fmt(equity),
                "marginRatio": fmt_opt(ratio),
                "positions": {
                    pos.symbol: {
                        "side": pos.side or "long",
                        "contracts": fmt(pos.contracts),
                        "entryPrice": fmt(pos.entry_price),
                        "marginMode": pos.margin_mode,
                        "marginRatio": fmt_opt(iso_ratio) if pos.isolated else None,
                        "liquidationPrice": fmt_opt(liq),
                    }
                    for pos, (_upnl, iso_ratio, liq) in zip(positions, rows, strict=True)
                },
            }
        return {"ts": ts, "prices": prices, "accounts": accounts}, equities


def _hedged_sample(engine: Engine, account: Account) -> tuple[dict[str, Any], Decimal]:
    """A hedged account's part of a sample, from the full margin snapshot (its two sides of a
    symbol share one liquidation price)."""
    views, view = engine.views(account)
    wallet, equity = _wallet_equity(account, views)
    return {
        "wallet": fmt(wallet),
        "equity": fmt(equity),
        "marginRatio": fmt_opt(view.margin_ratio),
        "positions": {
            v.symbol: {
                "side": v.side,
                "contracts": fmt(v.contracts),
                "entryPrice": fmt(v.entry_price),
                "marginMode": v.margin_mode,
                "marginRatio": fmt_opt(v.margin_ratio) if v.margin_mode == "isolated" else None,
                "liquidationPrice": fmt_opt(v.liquidation_price),
            }
            for v in views
        },
    }, equity


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _Run:
    """The state of one replay: output files, counters and drawdown tracking."""

    def __init__(self, engine: Engine, out: Path) -> None:
        self.engine = engine
        out.mkdir(parents=True, exist_ok=True)
        # newline="\n": the same bytes on every platform
        self.events_file: IO[str] = (out / "events.jsonl").open("w", encoding="utf-8", newline="\n")
        self.samples_file: IO[str] = (out / "samples.jsonl").open(
            "w", encoding="utf-8", newline="\n"
        )
        self.event_count = 0
        self.alerts = 0
        self.liquidations = 0
        self.trades = 0
        self.refused: Counter[str] = Counter()
        self.peak: dict[str, Decimal] = {}
        self.drawdown: dict[str, Decimal] = {}
        self.last_sample_ts: int | None = None
        self._sampler = _Sampler(engine)

    def close(self) -> None:
        self.events_file.close()
        self.samples_file.close()

    def record(self, events: list[Event]) -> None:
        write = self.events_file.write
        for event in events:
            write(_dumps(to_jsonable(event)))
            write("\n")
            kind = event.get("type")
            if kind == "fill":
                self.trades += 1
            elif kind == "margin_alert":
                self.alerts += 1
            elif kind == "liquidation":
                self.liquidations += 1
            elif kind == "order_rejected":
                self.refused[str(event.get("code"))] += 1
        self.event_count += len(events)

    def sample(self, ts: int) -> None:
        row, equities = self._sampler.row(ts)
        for name, equity in equities.items():
            peak = max(self.peak.get(name, equity), equity)
            self.peak[name] = peak
            self.drawdown[name] = max(self.drawdown.get(name, ZERO), peak - equity)
        self.samples_file.write(_dumps(row))
        self.samples_file.write("\n")
        self.last_sample_ts = ts

    def summary(
        self,
        *,
        ticks: int,
        symbols: set[str],
        start_ts: int | None,
        end_ts: int | None,
        strategy: str,
        errors: int,
        levels: tuple[Decimal, ...],
    ) -> dict[str, Any]:
        accounts: dict[str, Any] = {}
        for account in self.engine.iter_accounts():
            views, _ = self.engine.views(account)
            ledger = account.ledger
            wallet, equity = _wallet_equity(account, views)
            accounts[account.id] = {
                "startWallet": fmt(ledger.initial),
                "wallet": fmt(wallet),
                "equity": fmt(equity),
                "realizedPnl": fmt(ledger.realized_pnl),
                "fees": fmt(ledger.fees),
                "funding": fmt(ledger.funding),
                "maxDrawdown": fmt(self.drawdown.get(account.id, ZERO)),
            }
        return {
            "ticks": ticks,
            "symbols": sorted(symbols),
            "startTs": start_ts,
            "endTs": end_ts,
            "strategy": strategy,
            "accounts": accounts,
            "alerts": self.alerts,
            "liquidations": self.liquidations,
            "refusedOrders": dict(sorted(self.refused.items())),
            "strategyErrors": errors,
            "trades": self.trades,
            "alertLevels": [fmt(level) for level in levels],
        }


def _engine(config: Config) -> Engine:
    bundled = bundled_for(config.exchange.id, config.exchange.profile.name)
    return Engine(config.engine_config(bundled.tables, bundled.contract_sizes))


async def replay(
    ticks: str | Path,
    strategy: str | None,
    out: str | Path,
    *,
    config: Config | None = None,
    account: str | None = None,
    params: Mapping[str, Any] | None = None,
    stop_on_error: bool = False,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Replay ``ticks`` with ``strategy`` (``"file.py:Class"``, an entry point name, or None for
    the config's ``[strategy] path``) into the run directory ``out``; return the summary.

    ``params`` are laid over the config's ``[strategy] params``. ``progress`` (default: stderr
    is a TTY) draws a progress bar on stderr. Raises :class:`~guardbot.errors.GuardbotError`
    subclasses for bad input and :class:`StrategyError` with ``stop_on_error``.
    """
    config = config if config is not None else load_config(None)
    spec = strategy or (config.strategy.path if config.strategy is not None else None)
    if spec is None:
        raise InputError("--strategy", "is required (or set [strategy] path in the config)")
    strategy_params = dict(config.strategy.params) if config.strategy is not None else {}
    strategy_params.update(params or {})
    strategy_class = load_strategy(spec)
    ticks_path = Path(ticks)
    if not ticks_path.is_file():
        raise InputError("--ticks", f"file {ticks_path} not found")
    engine = _engine(config)
    if account is None and config.accounts:
        account = next(iter(config.accounts))
    if account is not None and config.accounts and account not in config.accounts:
        known = ", ".join(config.accounts)
        raise InputError("--account", f"unknown account {account!r} (configured: {known})")
    now: list[int] = [0]  # the time of the tick being handled; commands happen then
    run = _Run(engine, Path(out))
    exchange = PaperExchange(
        engine,
        engine_apply(engine, lambda: now[0], record=run.record),
        account=account,
    )
    runner = StrategyRunner(strategy_class(strategy_params), exchange, stop_on_error=stop_on_error)
    show = sys.stderr.isatty() if progress is None else progress
    raw = ticks_path.open("rb")
    bar = _Progress(raw, ticks_path.stat().st_size, sys.stderr) if show else None
    count = 0
    symbols: set[str] = set()
    start_ts: int | None = None
    sampled_last = False
    quote = engine.quote
    on_events = runner.on_events
    on_tick = runner.on_tick
    record = run.record
    # What set-up built (tier tables, markets, the strategy) lives to the end: out of the
    # collector's sight, so that its full collections do not walk it again and again.
    gc.collect()
    gc.freeze()
    try:
        with open_ticks(ticks_path, raw) as file:
            for ts, symbol, mark, last, bid, ask, index, rate in ticks_of(ticks_path, file):
                now[0] = ts
                if start_ts is None:
                    start_ts = ts
                    await runner.start()
                before = run.event_count
                events = quote(ts, symbol, mark, last, bid, ask, index, rate)
                if events:
                    record(events)
                    await on_events(events)
                await on_tick(symbol, ts)
                count += 1
                symbols.add(symbol)
                sampled = run.last_sample_ts
                sampled_last = (
                    count == 1
                    or run.event_count != before  # the tick's events, or the strategy's
                    or sampled is None
                    or ts - sampled >= SAMPLE_INTERVAL_MS
                )
                if sampled_last:
                    run.sample(ts)
                if bar is not None and not count & 1023:
                    bar.update(count)
        if count and not sampled_last:
            run.sample(now[0])  # the last tick
        before = run.event_count
        await runner.stop()
        if count and run.event_count != before:
            run.sample(now[0])  # what on_stop did (closing positions, ...)
    finally:
        gc.unfreeze()
        if bar is not None:
            bar.update(count)
            bar.close()
        raw.close()
        run.close()
    summary = run.summary(
        ticks=count,
        symbols=symbols,
        start_ts=start_ts,
        end_ts=now[0] if count else None,
        strategy=spec,
        errors=runner.errors,
        levels=config.alerts.levels,
    )
    text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    (Path(out) / "summary.json").write_text(text, encoding="utf-8", newline="\n")
    return summary
