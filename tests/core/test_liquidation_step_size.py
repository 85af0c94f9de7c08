"""How far a liquidation step goes (profile ``liquidation_step_tiers`` and
``liquidation_partial_from_tier``, docs/rules.md §7.1): worked examples.

Sources: OKX "Forced Partial or Full Liquidation" (help article 360020411711 and its current
wording, as mirrored): a position in tier 3 or above is partially liquidated by the contracts
that take it two tiers down, re-checked, and repeated; tiers 1-2 are liquidated whole. Bitget
"Leverage and risk management" (support article 360058821652): partial liquidation reduces
leverage by two tiers at a time. Binance and Bybit step into the tier below (one tier).

An isolated long of 4 BTC @30000 (4,000 contracts of 0.001 BTC on OKX) at 20x (isolated wallet
6,000, no trading fee) in a four-tier table, in contracts: tier 1 up to 1,000 at 0.4 %, tier 2
up to 2,000 at 0.5 %, tier 3 up to 3,000 at 1 %, tier 4 up to 5,000 at 2 %. At 29,000 the
position is in tier 4: requirement 4 * 29000 * 0.02 = 2,320 against a margin balance of
6000 - 4000 = 2,000: due. OKX's clearance fee is 0.05 % of the liquidated notional.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from guardbot.cli.simulate import build_config
from guardbot.core.engine import Engine
from guardbot.core.profiles import PROFILES, get_profile
from guardbot.errors import InputError
from tests.core.enginekit import BTC, Sim, of_type

D = Decimal
ROWS = [
    {"tier": 1, "minNotional": 0, "maxNotional": 1000, "maintenanceMarginRate": "0.004",
     "maxLeverage": 125},
    {"tier": 2, "minNotional": 1000, "maxNotional": 2000, "maintenanceMarginRate": "0.005",
     "maxLeverage": 100},
    {"tier": 3, "minNotional": 2000, "maxNotional": 3000, "maintenanceMarginRate": "0.01",
     "maxLeverage": 50},
    {"tier": 4, "minNotional": 3000, "maxNotional": 5000, "maintenanceMarginRate": "0.02",
     "maxLeverage": 20},
]  # fmt: skip


def _okx(contracts: int, mark: int, **options: Any) -> tuple[Sim, list[dict[str, Any]]]:
    sim = Sim(profile="okx", wallet=100_000, mode="isolated", leverage=20)
    sim.config["profile_options"] = {"liquidation_steps": "tiered", **options}
    sim.config["tiers"] = {BTC: ROWS}
    sim.config["contractSizes"] = {BTC: "0.001"}
    sim.engine = Engine(build_config(sim.config))
    sim.lines = [sim.config]
    sim.tick(30000)
    sim.order("open", "buy", contracts)
    return sim, sim.tick(mark)


def test_defaults_per_venue() -> None:
    steps = {
        n: (p.liquidation_step_tiers, p.liquidation_partial_from_tier) for n, p in PROFILES.items()
    }
    expected = {"binance": (1, 2), "bybit": (1, 2), "okx": (2, 3), "mexc": (1, 2), "bitget": (2, 2)}
    assert {k: v for k, v in steps.items() if k in expected} == {
        k: v for k, v in expected.items() if k in steps
    }
    profile = get_profile("okx")
    refused = [
        ("liquidation_step_tiers", 3),
        ("liquidation_step_tiers", True),  # a bool is not the number 1
        ("liquidation_partial_from_tier", 1),
        ("liquidation_partial_from_tier", "3"),
    ]
    for key, bad in refused:
        with pytest.raises(InputError, match=rf"profile_options.{key}: must be one of"):
            profile.with_options({key: bad})


# two tiers (okx): tier 4 -> tier 2's 2,000 contracts. 2 BTC realize -2,000 and pay
# 0.0005 * 58000 = 29: wallet 3,971; the rest: 3971 - 2000 = 1,971 against 2 * 29000 * 0.005
# = 290: cured.
# one tier (option): tier 4 -> tier 3's 3,000. 1 BTC realizes -1,000, fee 14.5: wallet 4,985.5;
# the rest: 4985.5 - 3000 = 1,985.5 against 3 * 29000 * 0.01 = 870: cured.
@pytest.mark.parametrize(
    ("options", "contracts", "remaining", "wallet"),
    [
        ({}, D(2000), D(2000), D(3971)),
        ({"liquidation_step_tiers": 1}, D(1000), D(3000), D("4985.5")),
    ],
)
def test_okx_steps_two_tiers_at_a_time(
    options: dict[str, Any], contracts: Decimal, remaining: Decimal, wallet: Decimal
) -> None:
    sim, events = _okx(4000, 29000, **options)
    (liq,) = of_type(events, "liquidation")
    assert (liq["partial"], liq["contracts"], liq["remainingContracts"]) == (
        True,
        contracts,
        remaining,
    )
    assert sim.position().isolated_wallet == wallet
    sim.check_ledger()


# tier 2 (1,500 contracts, isolated wallet 2,250 at 20x): OKX liquidates tiers 1-2 whole. At
# 28,600: requirement 1.5 * 28600 * 0.005 = 214.5 against 2250 - 2100 = 150: due.
#   okx default (from tier 3): whole, partial false.
#   from tier 2 (option): a step into tier 1's 1,000: 0.5 BTC realize -700, fee 7.15; the rest
#     2250 - 700 - 7.15 - 1400 = 142.85 against 28600 * 0.004 = 114.4: cured.
@pytest.mark.parametrize(
    ("options", "partial", "remaining"),
    [({}, False, D(0)), ({"liquidation_partial_from_tier": 2}, True, D(1000))],
)
def test_okx_liquidates_tiers_one_and_two_whole(
    options: dict[str, Any], partial: bool, remaining: Decimal
) -> None:
    sim, events = _okx(1500, 28600, **options)
    (liq,) = of_type(events, "liquidation")
    assert (liq["partial"], liq["remainingContracts"]) == (partial, remaining)
    sim.check_ledger()
