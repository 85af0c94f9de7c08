"""Tier tables: cap-inclusive lookup, the cum recursion, validation, leverage limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from guardbot.core.num import decimal_context
from guardbot.core.tiers import TierTable
from guardbot.errors import InputError, TierTableError

D = Decimal


def rows(*spec: tuple[object, object, object, object]) -> list[dict[str, Any]]:
    """ccxt rows from (floor, cap, mmr, maxLeverage) tuples, without maintenanceAmount."""
    return [
        {
            "tier": i + 1,
            "minNotional": floor,
            "maxNotional": cap,
            "maintenanceMarginRate": mmr,
            "maxLeverage": lev,
        }
        for i, (floor, cap, mmr, lev) in enumerate(spec)
    ]


#: The first three Binance BTCUSDT brackets of docs/rules.md §2.3 (cum 0, 50, 1300).
BTC_ROWS = rows(
    (0, 50000, "0.004", 125),
    (50000, 250000, "0.005", 100),
    (250000, 1000000, "0.01", 50),
    (1000000, 10000000, "0.025", 20),
)


def btc() -> TierTable:
    with decimal_context():
        return TierTable.from_ccxt("BTC/USDT:USDT", BTC_ROWS)


# --- lookup --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tier"),
    [
        ("-1", 1),
        ("0", 1),
        ("0.01", 1),
        ("50000", 1),
        ("50000.01", 2),
        ("250000", 2),
        ("250000.000001", 3),
        ("1000000", 3),
        ("10000000", 4),
        ("99999999", 4),  # beyond the last cap: the last tier
    ],
)
def test_lookup_is_floor_exclusive_and_cap_inclusive(value: str, tier: int) -> None:
    table = btc()
    assert table.tier_for(D(value)).tier == tier
    assert table.index_for(D(value)) == tier - 1


def test_max_value_is_the_last_cap() -> None:
    assert btc().max_value == D(10000000)


# --- maintenance amount --------------------------------------------------------------------


def test_cum_is_derived_by_the_recursion() -> None:
    # cum_k = cum_{k-1} + floor_k * (mmr_k - mmr_{k-1}): 0, 50, 1300, 16300 (docs/rules.md §2.3).
    assert [t.cum for t in btc().tiers] == [D(0), D(50), D(1300), D(16300)]


def test_derived_cum_makes_mm_continuous_at_every_cap() -> None:
    table = btc()
    with decimal_context():
        for lower, upper in zip(table.tiers, table.tiers[1:], strict=False):
            cap = lower.cap
            assert cap * lower.mmr - lower.cum == cap * upper.mmr - upper.cum


def test_given_maintenance_amount_is_kept() -> None:
    cums = (0, 51, 1301, 7)
    given = [dict(row, maintenanceAmount=cum) for row, cum in zip(BTC_ROWS, cums, strict=True)]
    table = TierTable.from_ccxt("X", given)
    assert [t.cum for t in table.tiers] == [D(0), D(51), D(1301), D(7)]


def test_maintenance_amount_falls_back_to_binance_info_cum() -> None:
    cums = (0, 50, 1300, 9)
    given = [dict(row, info={"cum": str(cum)}) for row, cum in zip(BTC_ROWS, cums, strict=True)]
    assert TierTable.from_ccxt("X", given).tiers[3].cum == D(9)


def test_flat_tier_profiles_have_no_deduction() -> None:
    given = [dict(row, maintenanceAmount=1) for row in BTC_ROWS]
    table = TierTable.from_ccxt("X", given, derive_cum=False)
    assert {t.cum for t in table.tiers} == {D(0)}


def test_first_floor_may_be_omitted() -> None:
    first = {k: v for k, v in BTC_ROWS[0].items() if k != "minNotional"}
    table = TierTable.from_ccxt("X", [first, *BTC_ROWS[1:]])
    assert table.tiers[0].floor == 0


def test_numbers_as_strings_and_decimals_are_exact() -> None:
    table = TierTable.from_ccxt(
        "X", rows(("0", "0.1", D("0.004"), "125"), (D("0.1"), 0.3, "0.005", 100.0))
    )
    assert table.tiers[1].floor == D("0.1")
    assert table.tiers[1].cap == D("0.3")
    assert table.tiers[1].cum == D("0.1") * (D("0.005") - D("0.004"))


def test_decimal_tier_numbers_are_accepted() -> None:
    """ccxt reports ``tier`` as a float (1.0); JSON read with parse_float=Decimal gives Decimal.

    Every other numeric field goes through parse_decimal, which accepts Decimal; ``tier`` must
    too, or a ccxt table decoded exactly is refused with "[0].tier: must be a number".
    """
    given = [dict(row, tier=D(row["tier"]) + D("0.0")) for row in BTC_ROWS]
    table = TierTable.from_ccxt("X", given)
    assert [t.tier for t in table.tiers] == [1, 2, 3, 4]


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table_rows", "field", "fragment"),
    [
        pytest.param(
            rows((0, 50000, "0.004", 125), (40000, 250000, "0.005", 100)),
            "[1].minNotional",
            "overlaps the previous tier: must be >= its maxNotional (50000), got 40000",
            id="overlap",
        ),
        pytest.param(
            rows((0, 50000, "0.004", 125), (50000, 50000, "0.005", 100)),
            "[1].maxNotional",
            "must be > minNotional",
            id="cap-equals-floor",
        ),
        pytest.param(
            rows((0, 50000, "0.004", 125), (50000, 100, "0.005", 100)),
            "[1].maxNotional",
            "must be > minNotional",
            id="cap-below-floor",
        ),
        pytest.param(rows((-1, 50000, "0.004", 125)), "[0].minNotional", ">= 0", id="neg-floor"),
        pytest.param(rows((0, 50000, "1", 125)), "[0].maintenanceMarginRate", "< 1", id="mmr-one"),
        pytest.param(
            rows((0, 50000, "1.5", 125)), "[0].maintenanceMarginRate", "< 1", id="mmr-above-one"
        ),
        pytest.param(
            rows((0, 50000, "-0.1", 125)), "[0].maintenanceMarginRate", "> 0", id="mmr-negative"
        ),
        pytest.param(rows((0, 50000, "0", 125)), "[0].maintenanceMarginRate", "> 0", id="mmr-zero"),
        pytest.param(
            rows((0, 50000, "0.004", 125), (50000, 250000, "0.005", "0.5")),
            "[1].maxLeverage",
            ">= 1",
            id="leverage-below-one",
        ),
        pytest.param(rows((0, 50000, "0.004", 0)), "[0].maxLeverage", ">= 1", id="leverage-zero"),
        pytest.param(
            rows((0, None, "0.004", 125)), "[0].maxNotional", "is required", id="cap-missing"
        ),
        pytest.param(
            rows((0, 50000, "abc", 125)), "[0].maintenanceMarginRate", "number", id="mmr-text"
        ),
        pytest.param(
            rows((0, float("nan"), "0.004", 125)), "[0].maxNotional", "finite", id="cap-nan"
        ),
        pytest.param(rows((0, 50000, True, 125)), "[0].maintenanceMarginRate", "number", id="bool"),
        pytest.param([], "", "at least one tier", id="empty"),
        pytest.param({"a": 1}, "", "list", id="not-a-list"),
        pytest.param(["row"], "[0]", "object", id="row-not-object"),
    ],
)
def test_invalid_tables_are_refused(table_rows: object, field: str, fragment: str) -> None:
    with pytest.raises(TierTableError) as caught:
        TierTable.from_ccxt("X", table_rows)
    assert caught.value.field == field
    assert fragment in caught.value.message


def test_table_errors_nest_under_a_prefix() -> None:
    bad = rows((0, 50000, "0.004", 125), (40000, 250000, "0.005", 100))
    with pytest.raises(InputError) as caught:
        try:
            TierTable.from_ccxt("X", bad)
        except InputError as exc:
            raise exc.under('tiers["BTC/USDT:USDT"]') from None
    assert caught.value.field == 'tiers["BTC/USDT:USDT"][1].minNotional'


# --- leverage ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exposure", "max_leverage"),
    [
        ("0", 125),
        ("50000", 125),  # on a cap: the lower tier's leverage (docs/rules.md §11 #4)
        ("50000.01", 100),
        ("250000", 100),
        ("300000", 50),
        ("10000000", 20),
        ("10000000.01", 0),  # beyond the table: no leverage is allowed
    ],
)
def test_max_leverage_for_an_exposure(exposure: str, max_leverage: int) -> None:
    assert btc().max_leverage_for(D(exposure)) == max_leverage


@pytest.mark.parametrize(
    ("leverage", "max_notional"),
    [
        ("1", 10000000),
        ("20", 10000000),
        ("21", 1000000),
        ("50", 1000000),
        ("75", 250000),
        ("100", 250000),
        ("100.5", 50000),
        ("125", 50000),
        ("126", 0),
    ],
)
def test_max_notional_at_a_leverage(leverage: str, max_notional: int) -> None:
    assert btc().max_value_for_leverage(D(leverage)) == max_notional


def test_leverage_and_notional_limits_agree() -> None:
    table = btc()
    for lev in range(1, 127):
        cap = table.max_value_for_leverage(D(lev))
        if cap:
            assert table.max_leverage_for(cap) >= lev
            assert table.max_leverage_for(cap + D("0.01")) < lev


# --- tables as venues publish them --------------------------------------------------------


def test_okx_shaped_steps_between_tiers_are_accepted() -> None:
    """OKX (and ccxt's okx) publish ``minSz`` as the previous ``maxSz`` plus one lot: BTC-USDT-SWAP
    position tiers 0-500, 501-1000, ... contracts (docs/rules.md, OKX position tiers). A size in
    the step (500 < n <= 501) belongs to the upper tier: the first whose cap it does not exceed."""
    table = TierTable.from_ccxt(
        "BTC/USDT:USDT",
        rows((0, 500, "0.004", 100), (501, 1000, "0.005", 75), (1001, 2000, "0.01", 50)),
        derive_cum=False,
    )
    assert [t.floor for t in table.tiers] == [0, 501, 1001]
    assert table.tier_for(D(500)).tier == 1
    assert table.tier_for(D("500.5")).tier == 2
    assert table.tier_for(D(501)).tier == 2
    assert table.tier_for(D(1001)).tier == 3
    assert table.tier_for(D(5000)).tier == 3  # beyond the last cap: the last tier


def test_a_first_tier_above_zero_covers_smaller_sizes() -> None:
    table = TierTable.from_ccxt("X", rows((1, 500, "0.004", 100), (501, 1000, "0.005", 75)))
    assert table.tier_for(D(0)).tier == 1 and table.tier_for(D("0.5")).tier == 1


def test_derived_cum_is_continuous_across_a_step() -> None:
    """With a step the MM formula n*mmr - cum must still agree at the previous cap."""
    table = TierTable.from_ccxt(
        "X", rows((0, 50000, "0.004", 125), (50001, 250000, "0.005", 100)), derive_cum=True
    )
    low, high = table.tiers
    cap = low.cap
    assert cap * low.mmr - low.cum == cap * high.mmr - high.cum
