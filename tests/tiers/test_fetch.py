"""Which tier table each symbol gets: fresh cache, exchange, stale cache, snapshot, or none."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from guardbot.store.journal import Journal
from guardbot.tiers.fetch import DAY_MS, ccxt_fetcher, normalize_rows, resolve_tiers
from guardbot.tiers.source import load_bundled

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SOL = "WIF/USDT:USDT"  # in no bundled snapshot (the name is historical)
NOW = 1_800_000_000_000

# ccxt gives floats; 0.1 + 0.2 style noise must not reach the table.
EXCHANGE_ROWS = [
    {"tier": 1, "minNotional": 0.0, "maxNotional": 10000.0, "maintenanceMarginRate": 0.005,
     "maxLeverage": 100.0, "info": {}},
    {"tier": 2, "minNotional": 10000.0, "maxNotional": 1e9, "maintenanceMarginRate": 0.01,
     "maxLeverage": 50.0, "info": {}},
]  # fmt: skip


class Fetcher:
    def __init__(self, tiers: Mapping[str, Any] | Exception) -> None:
        self.tiers = tiers
        self.calls: list[list[str]] = []

    async def __call__(self, symbols: Sequence[str]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        self.calls.append(list(symbols))
        if isinstance(self.tiers, Exception):
            raise self.tiers
        return self.tiers, {s: 1.0 for s in symbols}


async def resolve(journal: Journal, fetch: Fetcher | None, symbols: Sequence[str]) -> Any:
    return await resolve_tiers(
        "binanceusdm",
        symbols,
        journal,
        load_bundled("binance"),
        now_ms=NOW,
        fetch=fetch,
        derive_cum=True,
    )


async def test_fetched_tables_are_used_and_cached_exactly(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        fetch = Fetcher({BTC: EXCHANGE_ROWS})
        result = await resolve(journal, fetch, [BTC])
        assert result.sources == {BTC: "exchange"} and result.warnings == []
        table = result.tables[BTC]
        assert table.tiers[0].mmr == Decimal("0.005") and table.tiers[1].cum == Decimal("50")
        ts, rows = await journal.get_tiers("binanceusdm", BTC) or (0, [])
        assert ts == NOW and rows == normalize_rows(EXCHANGE_ROWS)
        # Within a day the cache answers; the exchange is not asked again.
        again = await resolve(journal, Fetcher(RuntimeError("must not be called")), [BTC])
        assert again.sources == {BTC: "cache"} and again.tables[BTC].tiers == table.tiers


async def test_fallbacks_in_order_with_warnings(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        await journal.put_tiers("binanceusdm", ETH, NOW - 2 * DAY_MS, normalize_rows(EXCHANGE_ROWS))
        result = await resolve(journal, Fetcher(OSError("exchange down")), [BTC, ETH, SOL])
    assert result.sources == {BTC: "bundled 2026-03-05", ETH: "cache-stale", SOL: "none"}
    assert len(result.warnings) == 3
    assert "48 h old" in result.warnings[1]
    assert "orders in it are refused" in result.warnings[2]
    assert SOL not in result.tables


async def test_unusable_fetched_rows_fall_back(tmp_path: Path) -> None:
    bad = [{"minNotional": 0, "maxNotional": 100, "maintenanceMarginRate": 2, "maxLeverage": 10}]
    async with Journal(tmp_path / "j.db") as journal:
        result = await resolve(journal, Fetcher({BTC: bad}), [BTC])
        assert await journal.get_tiers("binanceusdm", BTC) is None  # nothing cached
    assert result.sources[BTC].startswith("bundled")
    assert "fetched tier table unusable" in result.warnings[0]


async def test_no_fetcher_offline(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        result = await resolve(journal, None, [BTC])
    assert result.sources == {BTC: "bundled 2026-03-05"}


def test_normalize_rows_rejects_non_lists() -> None:
    with pytest.raises(Exception, match="list of tiers"):
        normalize_rows("nope")


# --- contract sizes travel with the tiers; venues with per-market tier endpoints -------------

OKX_ROWS = [
    {"tier": 1, "minNotional": 0.0, "maxNotional": 500.0, "maintenanceMarginRate": 0.004,
     "maxLeverage": 100.0},
    {"tier": 2, "minNotional": 501.0, "maxNotional": 1000.0, "maintenanceMarginRate": 0.005,
     "maxLeverage": 75.0},
]  # fmt: skip


class SizedFetcher(Fetcher):
    async def __call__(self, symbols: Sequence[str]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        self.calls.append(list(symbols))
        if isinstance(self.tiers, Exception):
            raise self.tiers
        return self.tiers, {s: 0.01 for s in symbols}


async def test_contract_sizes_are_cached_with_the_tiers_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    """OKX tiers are in contracts (BTC-USDT-SWAP ctVal 0.01): a restart that reads the cache must
    get the contract size back, not the default 1 (the issue: sizes lost at the next start)."""
    async with Journal(tmp_path / "j.db") as journal:
        first = await resolve_tiers(
            "okx", [SOL], journal, load_bundled("okx"), now_ms=NOW,
            fetch=SizedFetcher({SOL: OKX_ROWS}), derive_cum=False,
        )  # fmt: skip
        assert first.sources == {SOL: "exchange"}
        assert first.contract_sizes == {SOL: Decimal("0.01")}
    async with Journal(tmp_path / "j.db") as journal:  # the next start: no exchange
        again = await resolve_tiers(
            "okx", [SOL], journal, load_bundled("okx"), now_ms=NOW + 1,
            fetch=SizedFetcher(RuntimeError("offline")), derive_cum=False,
        )  # fmt: skip
        assert again.sources == {SOL: "cache"}
        assert again.contract_sizes == {SOL: Decimal("0.01")}
        stale = await resolve_tiers(
            "okx", [SOL], journal, load_bundled("okx"), now_ms=NOW + 2 * DAY_MS,
            fetch=SizedFetcher(RuntimeError("offline")), derive_cum=False,
        )  # fmt: skip
        assert stale.sources == {SOL: "cache-stale"}
        assert stale.contract_sizes == {SOL: Decimal("0.01")}
        assert again.tables[SOL].tiers[1].floor == Decimal(501)  # OKX's step kept as published


async def test_legacy_cache_rows_without_a_contract_size_still_load(tmp_path: Path) -> None:
    async with Journal(tmp_path / "j.db") as journal:
        await journal.put_tiers("binanceusdm", BTC, NOW, normalize_rows(EXCHANGE_ROWS))
        assert await journal.get_tier_entry("binanceusdm", BTC) == (
            NOW, normalize_rows(EXCHANGE_ROWS), None,
        )  # fmt: skip
        result = await resolve(journal, None, [BTC])
    assert result.sources == {BTC: "cache"}


class FakeCcxt:
    """Just enough of a ccxt exchange for :func:`ccxt_fetcher`."""

    def __init__(self, has: dict[str, object], fail: frozenset[str] = frozenset()) -> None:
        self.has = has
        self.fail = fail
        self.calls: list[str] = []
        self.closed = False

    async def load_markets(self) -> dict[str, Any]:
        return {BTC: {"contractSize": 0.01}, ETH: {"contractSize": 0.1}}

    async def fetch_leverage_tiers(self, symbols: list[str]) -> dict[str, Any]:
        self.calls.append("fetch_leverage_tiers")
        return {s: OKX_ROWS for s in symbols}

    async def fetch_market_leverage_tiers(self, symbol: str) -> list[dict[str, Any]]:
        self.calls.append(f"fetch_market_leverage_tiers:{symbol}")
        if symbol in self.fail:
            raise ccxt.BadSymbol(symbol)
        return OKX_ROWS

    async def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize(
    ("has", "calls"),
    [
        pytest.param({"fetchLeverageTiers": True, "fetchMarketLeverageTiers": "emulated"},
                     ["fetch_leverage_tiers"], id="binance-mexc"),
        pytest.param({"fetchLeverageTiers": False, "fetchMarketLeverageTiers": True},
                     [f"fetch_market_leverage_tiers:{BTC}", f"fetch_market_leverage_tiers:{ETH}"],
                     id="okx-bitget"),
        pytest.param({"fetchLeverageTiers": True, "fetchMarketLeverageTiers": True},
                     [f"fetch_market_leverage_tiers:{BTC}", f"fetch_market_leverage_tiers:{ETH}"],
                     id="bybit-gate-kucoin"),
        pytest.param({}, [], id="none"),
    ],
)  # fmt: skip
async def test_ccxt_fetcher_uses_whichever_tier_method_the_venue_has(
    has: dict[str, object], calls: list[str]
) -> None:
    exchange = FakeCcxt(has)
    fetch = ccxt_fetcher(lambda options: exchange, {})
    tiers, sizes = await fetch([BTC, ETH, SOL])  # SOL: not listed, asked for nothing
    assert exchange.calls == calls and exchange.closed
    assert sizes == {BTC: 0.01, ETH: 0.1}
    assert set(tiers) == ({BTC, ETH} if calls else set())


async def test_one_failing_market_does_not_lose_the_others() -> None:
    exchange = FakeCcxt({"fetchMarketLeverageTiers": True}, fail=frozenset({BTC}))
    tiers, sizes = await ccxt_fetcher(lambda options: exchange, {})([BTC, ETH])
    assert set(tiers) == {ETH} and sizes == {BTC: 0.01, ETH: 0.1}
