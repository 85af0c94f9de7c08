"""MEXC tiers from ``riskLimitCustom`` (guardbot/feeds/venues/mexc.py, docs/rules.md §14.1).

ccxt 4.5.90 builds MEXC tiers from the contract detail's INCREASE-mode steps only; for a contract
in CUSTOM mode (``riskIncrVol`` 0, levels in ``riskLimitCustom``) it returns one "tier 0" without
bounds. Tested on the recorded answer and through the real ccxt code path against the stand-in.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

from guardbot.core.tiers import TierTable
from guardbot.errors import InputError
from guardbot.feeds.venues import venue_for
from guardbot.feeds.venues.mexc import tier_rows
from guardbot.store.journal import Journal
from guardbot.tiers.fetch import ccxt_fetcher, normalize_rows, resolve_tiers
from guardbot.tiers.source import load_bundled
from tests.standin.mexc import StandinMexc

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
NOW = 1_800_000_000_000

#: MEXC GET /api/v1/contract/detail?symbol=BTC_USDT as recorded by gocryptotrader's mock
#: recorder: github.com/thrasher-corp/gocryptotrader exchanges/mexc/testdata/http.json @
#: dbe544a516801ac478d9aca6e2319c3d7257c36b (2025-12-31); the risk fields, values as recorded.
#: (The recorder keeps at most 5 items of a list, so MEXC may list more levels than these.)
RECORDED_BTC_DETAIL: dict[str, Any] = {
    "symbol": "BTC_USDT",
    "quoteCoin": "USDT",
    "settleCoin": "USDT",
    "contractSize": 0.0001,
    "initialMarginRate": 0.002,
    "maintenanceMarginRate": 0.001,
    "maxLeverage": 500,
    "maxVol": 400000,
    "riskBaseVol": 11500000,
    "riskIncrImr": 0,
    "riskIncrMmr": 0,
    "riskIncrVol": 0,
    "riskLevelLimit": 1,
    "riskLimitCustom": [
        {"imr": 0.002, "level": 1, "maxLeverage": 500, "maxVol": 50000, "mmr": 0.001},
        {"imr": 0.005, "level": 2, "maxLeverage": 200, "maxVol": 120000, "mmr": 0.004},
        {"imr": 0.01, "level": 3, "maxLeverage": 100, "maxVol": 250000, "mmr": 0.005},
        {"imr": 0.02, "level": 4, "maxLeverage": 50, "maxVol": 2000000, "mmr": 0.01},
        {"imr": 0.05, "level": 5, "maxLeverage": 20, "maxVol": 8500000, "mmr": 0.02},
    ],
    "riskLimitMode": "CUSTOM",
    "riskLimitType": "BY_VOLUME",
}


def test_ccxt_alone_gives_one_tier_without_bounds_for_a_custom_contract() -> None:
    rows = ccxt.mexc().parse_market_leverage_tiers(RECORDED_BTC_DETAIL)
    assert len(rows) == 1
    assert rows[0]["minNotional"] is None and rows[0]["maxNotional"] is None
    assert rows[0]["maintenanceMarginRate"] is None and rows[0]["maxLeverage"] == 500


def test_recorded_levels_become_the_tiers_in_contracts() -> None:
    ccxt_rows = ccxt.mexc().parse_market_leverage_tiers(RECORDED_BTC_DETAIL)
    assert venue_for("mexc").tier_rows is tier_rows
    rows = tier_rows(ccxt_rows)
    got = [
        (
            r["tier"],
            r["minNotional"],
            r["maxNotional"],
            r["maintenanceMarginRate"],
            r["maxLeverage"],
        )
        for r in rows
    ]
    assert got == [
        (1, "0", "50000", "0.001", "500"),
        (2, "50000", "120000", "0.004", "200"),
        (3, "120000", "250000", "0.005", "100"),
        (4, "250000", "2000000", "0.01", "50"),
        (5, "2000000", "8500000", "0.02", "20"),
    ]
    table = TierTable.from_ccxt(BTC, normalize_rows(rows), derive_cum=False)
    # 60,000 contracts (6 BTC) are in level 2; the bundled snapshot holds the same record
    assert table.tier_for(Decimal(60000)).mmr == Decimal("0.004")
    assert table.tiers == load_bundled("mexc").tables[BTC].tiers
    assert table.max_leverage_for(Decimal(8500001)) == 0  # beyond the last level: refused


def test_levels_are_ordered_and_an_increase_mode_detail_is_left_to_ccxt() -> None:
    shuffled = dict(
        RECORDED_BTC_DETAIL, riskLimitCustom=RECORDED_BTC_DETAIL["riskLimitCustom"][::-1]
    )
    rows = tier_rows([{"symbol": BTC, "info": shuffled}])
    assert [r["tier"] for r in rows] == [1, 2, 3, 4, 5]
    increase = [{"tier": 1, "minNotional": 0.0, "maxNotional": 10.0, "info": {"riskIncrVol": 10}}]
    assert tier_rows(increase) == increase
    assert tier_rows([]) == []


@pytest.mark.parametrize(
    ("level", "field"),
    [
        ({"level": 1, "maxLeverage": 500, "mmr": 0.001}, "riskLimitCustom[0].maxVol"),
        ({"level": 1, "maxVol": 5, "maxLeverage": 500}, "riskLimitCustom[0].mmr"),
        ({"level": "x", "maxVol": 5, "maxLeverage": 5, "mmr": 0.1}, "riskLimitCustom[0].level"),
        ({"level": 1.5, "maxVol": 5, "maxLeverage": 5, "mmr": 0.1}, "riskLimitCustom[0].level"),
        ("level 1", "riskLimitCustom[0]"),
    ],
)
def test_unreadable_levels_are_refused_naming_the_field(level: Any, field: str) -> None:
    with pytest.raises(InputError) as err:
        tier_rows([{"info": {"riskLimitCustom": [level]}}])
    assert err.value.field == field


def test_levels_of_another_risk_limit_type_are_refused() -> None:
    # maxVol is in contracts for BY_VOLUME (the recorded type); under BY_VALUE its unit is not
    # documented, so the table is not guessed at
    detail = dict(RECORDED_BTC_DETAIL, riskLimitType="BY_VALUE")
    with pytest.raises(InputError) as err:
        tier_rows([{"info": detail}])
    assert err.value.field == "riskLimitType"


#: A CUSTOM-mode BTC contract for the stand-in (shape as recorded; levels the stand-in's own).
LEVELS = [
    {"imr": 0.004, "level": 1, "maxLeverage": 250, "maxVol": 30000, "mmr": 0.002},
    {"imr": 0.01, "level": 2, "maxLeverage": 100, "maxVol": 400000, "mmr": 0.006},
    {"imr": 0.04, "level": 3, "maxLeverage": 25, "maxVol": 3000000, "mmr": 0.025},
]


async def _resolve(venue: StandinMexc, journal: Journal) -> Any:
    fetch = ccxt_fetcher(lambda options: ccxt.pro.mexc(options), venue.ccxt_config())
    return await resolve_tiers(
        "mexc",
        [BTC, ETH],
        journal,
        load_bundled("mexc"),
        now_ms=NOW,
        fetch=fetch,
        derive_cum=False,
    )


@pytest.mark.integration
async def test_custom_levels_through_ccxt_against_the_standin(tmp_path: Path) -> None:
    async with (
        StandinMexc(risk_levels={"BTC": LEVELS}) as venue,
        Journal(tmp_path / "j.db") as journal,
    ):
        result = await _resolve(venue, journal)
        cached = await journal.get_tiers("mexc", BTC)
    assert result.sources == {BTC: "exchange", ETH: "exchange"} and result.warnings == []
    btc = result.tables[BTC].tiers
    assert [t.cap for t in btc] == venue.tier_caps(BTC) == [30000, 400000, 3000000]
    assert [(t.floor, t.mmr, t.max_leverage) for t in btc] == [
        (0, Decimal("0.002"), 250),
        (30000, Decimal("0.006"), 100),
        (400000, Decimal("0.025"), 25),
    ]
    assert result.contract_sizes[BTC] == Decimal("0.0001")  # bounds in contracts of 0.0001 BTC
    assert cached is not None and [r["maxNotional"] for r in cached[1]] == [
        "30000",
        "400000",
        "3000000",
    ]
    # ETH stays in INCREASE mode: ccxt's own steps, unchanged
    assert [t.cap for t in result.tables[ETH].tiers] == venue.tier_caps(ETH)


@pytest.mark.integration
async def test_a_table_without_bounds_is_refused_not_used(tmp_path: Path) -> None:
    # CUSTOM mode with no levels listed: ccxt's single boundless tier is all there is
    async with (
        StandinMexc(risk_levels={"BTC": []}) as venue,
        Journal(tmp_path / "j.db") as journal,
    ):
        result = await _resolve(venue, journal)
        assert await journal.get_tiers("mexc", BTC) is None  # nothing cached
    assert result.sources[BTC] == f"bundled {load_bundled('mexc').as_of_for(BTC)}"
    assert result.tables[BTC].tiers == load_bundled("mexc").tables[BTC].tiers
    assert result.sources[ETH] == "exchange"
    refused = [w for w in result.warnings if "no usable bounds" in w]
    assert refused == [
        f"{BTC}: the exchange's tier table has no usable bounds (1 of 1 tiers without "
        "maxNotional or maintenanceMarginRate); not used"
    ]
