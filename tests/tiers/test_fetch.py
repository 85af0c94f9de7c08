"""Which tier table each symbol gets: fresh cache, exchange, stale cache, snapshot, or none."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guardbot.store.journal import Journal
from guardbot.tiers.fetch import DAY_MS, normalize_rows, resolve_tiers
from guardbot.tiers.source import load_bundled

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SOL = "SOL/USDT:USDT"  # not in the bundled snapshot
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
    assert result.sources == {BTC: "bundled 2025-12-26", ETH: "cache-stale", SOL: "none"}
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
    assert result.sources == {BTC: "bundled 2025-12-26"}


def test_normalize_rows_rejects_non_lists() -> None:
    with pytest.raises(Exception, match="list of tiers"):
        normalize_rows("nope")
