"""Worked examples of docs/rules.md §14 (MEXC, Bitget, Gate), one row each, with their source.

The tier tables are the venues' published ones (Bitget BTCUSDT 2025-06-25, Gate BTCUSDT
2025-09-30, as bundled in guardbot/data/tiers); MEXC's BTC table is published only as an image,
so its example uses an illustrative tier-1 rate and says so.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardbot.core import margin
from guardbot.core.num import decimal_context
from guardbot.core.position import Position
from guardbot.core.profiles import get_profile, profile_for_exchange
from guardbot.core.tiers import TierTable
from guardbot.tiers.source import load_bundled

D = Decimal
BTC = "BTC/USDT:USDT"


def position(
    table: TierTable, qty_contracts: str, entry: str, *, size: str = "1", isolated: bool = False
) -> Position:
    pos = Position(BTC, table, "isolated" if isolated else "cross", D(20), D(size))
    pos.set_size(1, D(qty_contracts), D(entry))
    return pos


@pytest.mark.parametrize(
    ("venue", "value", "mm", "source"),
    [
        # Bitget: MM = position value x MMR of its tier (flat), cap inclusive
        ("bitget", "150000", "600", "§14.2 B1: tier 1, 0.4 %"),
        ("bitget", "200000", "1000", "§14.2 B2: tier 2, 0.5 %"),
        ("bitget", "1000000", "10000", "§14.2 B3: tier 3, 1 %"),
        # Gate: graduated by value (each slice at its own tier's MMR)
        ("gate", "1200000", "13165", "§14.3 G1"),
        ("gate", "150000", "815", "§14.3 G2"),
    ],
)
def test_maintenance_margin_from_the_published_table(
    venue: str, value: str, mm: str, source: str
) -> None:
    profile = get_profile(venue)
    table = load_bundled(venue).tables[BTC]
    # a position of `value` USDT: 1 BTC at that price
    pos = position(table, "1", value)
    with decimal_context():
        got, _tier = margin.maintenance(profile, pos, D(value))
    assert got == D(mm), source


def test_mexc_isolated_liquidation_price_m1() -> None:
    """§14.1 M1: margin + uPnL = MM + liquidation fee at the fair price, tiers in contracts."""
    profile = get_profile("mexc")
    table = TierTable.from_ccxt(
        BTC,
        [{"minNotional": 0, "maxNotional": 2000000, "maintenanceMarginRate": "0.004",
          "maxLeverage": 100}],
        derive_cum=False,
    )  # fmt: skip
    pos = position(table, "10000", "60000", size="0.0001", isolated=True)
    pos.isolated_wallet = D(3000)
    with decimal_context():
        solved = margin.liquidation_price(profile, pos, pos.isolated_wallet, D("0.0002"))
    assert solved is not None
    assert solved[0].quantize(D("0.01")) == D("57240.41")
    assert D(57000) / D("0.9958") - solved[0] < D("1e-20")


@pytest.mark.parametrize(
    ("exchange_id", "profile"),
    [("binanceusdm", "binance"), ("bybit", "bybit"), ("okx", "okx"), ("mexc", "mexc"),
     ("bitget", "bitget"), ("gate", "gate"), ("gateio", "gate"), ("kraken", None),
     ("coinex", None)],
)  # fmt: skip
def test_profile_is_chosen_from_the_exchange_id(exchange_id: str, profile: str | None) -> None:
    chosen = profile_for_exchange(exchange_id)
    assert (chosen.name if chosen else None) == profile
