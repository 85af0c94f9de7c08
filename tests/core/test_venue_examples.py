"""Worked examples of docs/rules.md §14 (MEXC, Bitget, Gate, KuCoin), one row each, with their
source.

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
     ("bitget", "bitget"), ("gate", "gate"), ("gateio", "gate"),
     ("kucoinfutures", "kucoinfutures"), ("kucoin", None), ("kraken", None),
     ("coinex", None)],
)  # fmt: skip
def test_profile_is_chosen_from_the_exchange_id(exchange_id: str, profile: str | None) -> None:
    chosen = profile_for_exchange(exchange_id)
    assert (chosen.name if chosen else None) == profile


def _kucoin_level_1(mmr: str, cap: int = 500_000) -> TierTable:
    return TierTable.from_ccxt(
        BTC,
        [{"minNotional": 0, "maxNotional": cap, "maintenanceMarginRate": mmr, "maxLeverage": 100}],
        derive_cum=False,
    )


def _kucoin_position(contracts: str, entry: str, sign: int, *, leverage: int) -> Position:
    pos = Position(BTC, _kucoin_level_1("0.004"), "isolated", D(leverage), D("0.001"))
    pos.set_size(sign, D(contracts), D(entry))
    pos.isolated_wallet = pos.qty * pos.entry_price / pos.leverage
    return pos


def test_kucoin_isolated_short_k1() -> None:
    """§14.6 K1 (KuCoin help 4408061803033): short 5 XBTUSDTM (0.001 BTC each) at 28,000, 100x,
    MMR 0.4 %: IM 1.4. KuCoin's page values the MM at the entry price (MM 0.56) and gets 28,168;
    guardbot follows KuCoin's current formula (help 26694703491737: MM and liquidation fee at the
    liquidation price): 1.4 + (28,000 - P) x 0.005 = 0.004 x 0.005 P, P = 141.4 / 0.00502."""
    profile = get_profile("kucoinfutures")
    pos = _kucoin_position("5", "28000", -1, leverage=100)
    assert pos.isolated_wallet == D("1.4")
    with decimal_context():
        solved = margin.liquidation_price(profile, pos, pos.isolated_wallet, D(0))
        assert solved is not None
        assert solved[0].quantize(D("0.01")) == D("28167.33")
        assert abs(D("141.4") / D("0.00502") - solved[0]) < D("1e-20")
        # KuCoin's older closed form (MM at entry): (HP x Vol x S + IM - MM) / (Vol x S)
        older = (D(28000) * pos.qty + D("1.4") - D("0.56")) / pos.qty
    assert older == D(28168)


@pytest.mark.parametrize(
    ("fee", "liquidation"),
    [
        # with KuCoin's liquidation fee beside the MMR (modelled as the taker rate, 0.06 %):
        # 1.4 + (28,000 - P) x 0.005 = (0.004 + 0.0006) x 0.005 P -> P = 141.4 / 0.005023
        ("0.0006", D("141.4") / D("0.005023")),
        ("0", D("141.4") / D("0.00502")),
    ],
)
def test_kucoin_liquidation_fee_moves_the_price(fee: str, liquidation: Decimal) -> None:
    """§14.6 K1 with the liquidation fee rate of help 26694703491737's formula."""
    profile = get_profile("kucoinfutures")
    pos = _kucoin_position("5", "28000", -1, leverage=100)
    with decimal_context():
        solved = margin.liquidation_price(profile, pos, pos.isolated_wallet, D(fee))
        assert solved is not None
        assert abs(solved[0] - liquidation) < D("1e-20")


def test_kucoin_maintenance_margin_k2() -> None:
    """§14.6 K2 (KuCoin help 26694703491737): 10,000 contracts x 0.001 at mark 30,000 is a
    position value of 300,000 USDT, level 1, MMR 0.4 %: MM = 1,200 USDT."""
    profile = get_profile("kucoinfutures")
    pos = Position(BTC, _kucoin_level_1("0.004"), "cross", D(10), D("0.001"))
    pos.set_size(1, D(10000), D(30000))
    with decimal_context():
        mm, tier = margin.maintenance(profile, pos, D(30000))
    assert (mm, tier.mmr) == (D(1200), D("0.004"))


def test_kucoin_cross_position_terms_k3() -> None:
    """§14.6 K3 (KuCoin help 35233217061785, cross risk rate): the BTC position's terms of the
    numerator, 100 contracts x 0.001 at mark 62,000, MMR 0.5 %, taker 0.06 %: MM 31 plus the
    expected closing fee 3.72 = 34.72 (the open order's terms are not modelled)."""
    profile = get_profile("kucoinfutures")
    pos = Position(BTC, _kucoin_level_1("0.005"), "cross", D(10), D("0.001"))
    pos.set_size(1, D(100), D(62000))
    with decimal_context():
        req, mm, _tier = margin.requirement(profile, pos, D(62000), D("0.0006"))
    assert (mm, req) == (D(31), D("34.72"))
