"""Which leverage-tier table each symbol uses: the exchange's, the SQLite cache, or the snapshot.

Order of preference for every configured symbol (issue: "fetched through ccxt where the exchange
serves them without keys, cached in SQLite with fetch time, refreshed daily; otherwise the bundled
snapshot, with a warning alert"):

1. a cached table fetched less than ``max_age_ms`` ago (one day by default);
2. a table fetched now through ccxt ``fetch_market_leverage_tiers`` one symbol at a time where
   the venue has a native per-market endpoint (OKX, Bitget, Bybit, Gate, KuCoin), else the bulk
   ``fetch_leverage_tiers`` (Binance, MEXC); Binance serves its
   brackets only on a signed endpoint, so this needs API keys there. It is stored in the cache
   together with the market's contract size (tiers in contracts mean nothing without it);
3. an older cached table (with a warning);
4. the bundled dated snapshot (with a warning);
5. nothing: orders in that symbol are refused (with a warning).

The daemon resolves the tables at start and refetches them daily; the tables in force are engine
inputs (``tiers``, journaled when they change: guardbot.daemon.tier_tables), so a replay uses the
tables that were in force at each input, never the ones resolved at a later start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import structlog

from guardbot.core.num import parse_decimal
from guardbot.core.tiers import TierTable
from guardbot.errors import InputError
from guardbot.feeds.venues import venue_for
from guardbot.store.journal import Journal
from guardbot.tiers.source import BundledTiers

__all__ = [
    "DAY_MS",
    "Fetcher",
    "ResolvedTiers",
    "UnusableTable",
    "ccxt_fetcher",
    "fetched_table",
    "iso_ms",
    "normalize_rows",
    "resolve_tiers",
]

_log = structlog.get_logger("guardbot.tiers")

DAY_MS = 24 * 3600 * 1000

#: Fetches ccxt leverage tiers (symbol -> rows) and contract sizes for some symbols.
Fetcher = Callable[[Sequence[str]], Awaitable[tuple[Mapping[str, Any], Mapping[str, Any]]]]

_TIER_KEYS = ("minNotional", "maxNotional", "maintenanceMarginRate", "maxLeverage")


@dataclass(slots=True)
class ResolvedTiers:
    """Tables and contract sizes per symbol, where each came from, and what to warn about."""

    tables: dict[str, TierTable] = field(default_factory=dict)
    contract_sizes: dict[str, Decimal] = field(default_factory=dict)
    #: symbol -> "cache", "exchange", "cache-stale", "bundled <asOf>" or "none".
    sources: dict[str, str] = field(default_factory=dict)
    #: symbol -> when its table was fetched (ISO 8601 UTC) or the bundled snapshot's date.
    as_of: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def normalize_rows(rows: object) -> list[dict[str, str]]:
    """ccxt tier rows with the numbers as exact strings (ccxt gives floats; ``str`` once here)."""
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
        raise InputError("", "must be a list of tiers")
    out: list[dict[str, str]] = []
    for row in rows:
        if not isinstance(row, Mapping):
            raise InputError("", "every tier must be an object")
        clean = {k: str(row[k]) for k in _TIER_KEYS if row.get(k) is not None}
        if row.get("maintenanceAmount") is not None:
            clean["maintenanceAmount"] = str(row["maintenanceAmount"])
        out.append(clean)
    return out


def ccxt_fetcher(factory: Callable[[dict[str, Any]], Any], options: Mapping[str, Any]) -> Fetcher:
    """A :data:`Fetcher` on a short-lived ccxt instance (closed after each fetch).

    Contract sizes come from the markets even when the tiers cannot be fetched; a symbol whose
    per-market fetch fails is left out (the others still count).
    """

    async def fetch(symbols: Sequence[str]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        exchange = factory(dict(options))
        try:
            markets = await exchange.load_markets()
            sizes = {s: markets[s].get("contractSize") for s in symbols if s in (markets or {})}
            return await _fetch_tiers(exchange, [s for s in symbols if s in sizes]), sizes
        finally:
            await exchange.close()

    return fetch


async def _fetch_tiers(exchange: Any, symbols: list[str]) -> Mapping[str, Any]:
    """One market at a time where the venue has a native per-market tier endpoint (it knows the
    market's type; Gate's bulk fetch needs a type option, Bybit's pages through every market),
    else the bulk ``fetch_leverage_tiers`` (Binance, MEXC: ccxt emulates the per-market one)."""
    has = getattr(exchange, "has", {}) or {}
    if not symbols:
        return {}
    if has.get("fetchMarketLeverageTiers") is not True:
        if not has.get("fetchLeverageTiers"):
            _log.info("tier tables not fetched", reason="the exchange publishes none through ccxt")
            return {}
        try:
            return await exchange.fetch_leverage_tiers(symbols) or {}
        except Exception as exc:  # a failed fetch falls back (cache, snapshot); never fatal
            _log.info("tier tables not fetched", reason=f"{type(exc).__name__}: {str(exc)[:160]}")
            return {}
    tiers: dict[str, Any] = {}
    for symbol in symbols:
        try:
            tiers[symbol] = await exchange.fetch_market_leverage_tiers(symbol)
        except Exception as exc:
            _log.info(
                "tier table not fetched",
                symbol=symbol,
                reason=f"{type(exc).__name__}: {str(exc)[:160]}",
            )
    return tiers


async def resolve_tiers(
    exchange_id: str,
    symbols: Sequence[str],
    journal: Journal,
    bundled: BundledTiers,
    *,
    now_ms: int,
    fetch: Fetcher | None,
    derive_cum: bool,
    max_age_ms: int = DAY_MS,
    timeout: float = 15.0,
) -> ResolvedTiers:
    """Pick every symbol's table per the module docstring; never raises for a failed fetch."""
    result = ResolvedTiers()
    cached: dict[str, tuple[int, TierTable]] = {}
    cached_sizes: dict[str, Decimal] = {}
    for symbol in symbols:
        hit = await journal.get_tier_entry(exchange_id, symbol)
        if hit is None:
            continue
        try:
            cached[symbol] = (hit[0], TierTable.from_ccxt(symbol, hit[1], derive_cum=derive_cum))
        except InputError as exc:
            result.warnings.append(f"{symbol}: cached tier table unusable ({exc}); ignored")
            continue
        size = _contract_size(hit[2], symbol)
        if size is not None:
            cached_sizes[symbol] = size
    for symbol in symbols:
        size = cached_sizes.get(symbol, bundled.contract_sizes.get(symbol))
        if size is not None:
            result.contract_sizes[symbol] = size
    wanted = [s for s in symbols if s not in cached or now_ms - cached[s][0] >= max_age_ms]
    for symbol in symbols:
        if symbol not in wanted:
            result.tables[symbol] = cached[symbol][1]
            result.sources[symbol] = "cache"
            result.as_of[symbol] = iso_ms(cached[symbol][0])
    if wanted and fetch is not None:
        await _fetch_into(result, wanted, journal, exchange_id, now_ms, fetch, derive_cum, timeout)
    for symbol in wanted:
        if symbol in result.tables:
            continue
        if symbol in cached:
            fetched_ts, table = cached[symbol]
            result.tables[symbol] = table
            result.sources[symbol] = "cache-stale"
            result.as_of[symbol] = iso_ms(fetched_ts)
            age_h = (now_ms - fetched_ts) / 3_600_000
            result.warnings.append(f"{symbol}: using a cached tier table {age_h:.0f} h old")
        elif symbol in bundled.tables:
            result.tables[symbol] = bundled.tables[symbol]
            as_of = bundled.as_of_for(symbol)
            result.sources[symbol] = f"bundled {as_of}"
            result.as_of[symbol] = as_of
            result.warnings.append(
                f"{symbol}: using the bundled tier snapshot of {as_of}; the exchange's "
                "current table may differ"
            )
        else:
            result.sources[symbol] = "none"
            result.warnings.append(
                f"{symbol}: no tier table (not fetched, not cached, not bundled); orders in it "
                "are refused"
            )
    return result


async def _fetch_into(
    result: ResolvedTiers,
    wanted: Sequence[str],
    journal: Journal,
    exchange_id: str,
    now_ms: int,
    fetch: Fetcher,
    derive_cum: bool,
    timeout: float,
) -> None:
    try:
        async with asyncio.timeout(timeout):
            tiers, sizes = await fetch(wanted)
    except Exception as exc:
        _log.info("tier tables not fetched", reason=f"{type(exc).__name__}: {str(exc)[:160]}")
        return
    for symbol, size in sizes.items():
        parsed = _contract_size(size, symbol) if symbol in wanted else None
        if parsed is not None:
            result.contract_sizes[symbol] = parsed
    for symbol in wanted:
        rows = tiers.get(symbol)
        if not rows:
            continue
        try:
            clean, table = fetched_table(exchange_id, symbol, rows, derive_cum=derive_cum)
        except UnusableTable as exc:
            result.warnings.append(f"{symbol}: {exc}")
            continue
        size = result.contract_sizes.get(symbol) if symbol in sizes else None
        await journal.put_tiers(
            exchange_id, symbol, now_ms, clean, None if size is None else str(size)
        )
        result.tables[symbol] = table
        result.sources[symbol] = "exchange"
        result.as_of[symbol] = iso_ms(now_ms)


class UnusableTable(Exception):
    """A fetched tier table guardbot does not use; the text says why (a warning's tail)."""


def fetched_table(
    exchange_id: str, symbol: str, rows: object, *, derive_cum: bool
) -> tuple[list[dict[str, str]], TierTable]:
    """One symbol's fetched ccxt rows as the cache stores them (the venue's rebuild applied,
    numbers as exact strings) and the table built from them; :class:`UnusableTable` when they
    cannot be used. The daemon's fetch and ``bench/tier_snapshots.py live`` both go through it,
    so a refreshed snapshot holds exactly what the daemon would cache."""
    rebuild = venue_for(exchange_id).tier_rows
    try:
        if rebuild is not None and isinstance(rows, Sequence):
            rows = rebuild(rows)
        bare = _unbounded(rows)
        if bare:
            # ccxt's stand-in for data it could not parse (MEXC: one "tier 0" with only
            # maxLeverage); using it would price every size with no bound and no rate
            count = len(rows) if isinstance(rows, Sequence) else 0
            raise UnusableTable(
                f"the exchange's tier table has no usable bounds ({bare} of {count} tiers "
                "without maxNotional or maintenanceMarginRate); not used"
            )
        clean = normalize_rows(rows)
        table = TierTable.from_ccxt(symbol, clean, derive_cum=derive_cum)
    except InputError as exc:
        raise UnusableTable(f"fetched tier table unusable ({exc})") from None
    return clean, table


def _unbounded(rows: object) -> int:
    """How many of ``rows`` lack a cap or a maintenance rate (0 for a list that is not rows:
    :func:`normalize_rows` refuses those)."""
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
        return 0
    return sum(
        1
        for row in rows
        if isinstance(row, Mapping)
        and (row.get("maxNotional") is None or row.get("maintenanceMarginRate") is None)
    )


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC (``2026-12-07T05:00:00.000Z``)."""
    stamp = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _contract_size(value: object, symbol: str) -> Decimal | None:
    """A usable contract size (> 0, as the bundled snapshot requires) or ``None``."""
    if value is None:
        return None
    try:
        parsed = parse_decimal(value, f"contractSize[{symbol}]")
    except InputError:
        return None
    return parsed if parsed > 0 else None
