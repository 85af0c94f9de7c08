"""Stepwise liquidation (docs/rules.md §7.1): worked examples per venue, step by step.

An isolated long of 2 BTC @30000 at 50x (isolated wallet 1,200, no trading fee) is taken to a
mark where it is due. Tables: enginekit's historical Binance BTCUSDT brackets (tier 1 up to
50,000 USDT at 0.4 %, tier 2 up to 250,000 at 0.5 %, maintenance amount 50); for OKX the same
rates in contracts of 0.001 BTC with tier 1 up to 1,000 contracts.
"""

from __future__ import annotations

import json
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

from guardbot.cli.simulate import build_config, simulate_lines
from guardbot.core.engine import Engine
from guardbot.core.events import to_jsonable
from tests.core.enginekit import BTC, Sim, of_type, types

D = Decimal
LOT = D("1e-8")
OKX_ROWS = [
    {"tier": 1, "minNotional": 0, "maxNotional": 1000, "maintenanceMarginRate": "0.004",
     "maxLeverage": 125},
    {"tier": 2, "minNotional": 1000, "maxNotional": 5000, "maintenanceMarginRate": "0.005",
     "maxLeverage": 100},
]  # fmt: skip


def _squeeze(
    profile: str, steps: str, mark: int, *, partial_from: int | None = None, **kw: Any
) -> tuple[Sim, list[dict[str, Any]]]:
    options: dict[str, Any] = {"liquidation_steps": steps}
    if partial_from is not None:
        options["liquidation_partial_from_tier"] = partial_from
    sim = Sim(
        profile=profile,
        wallet=100_000,
        mode="isolated",
        leverage=50,
        profile_options=options,
        **kw,
    )
    if profile == "okx":  # the okx table and contract size: a new engine on the edited config
        sim.config["tiers"] = {BTC: OKX_ROWS}
        sim.config["contractSizes"] = {BTC: "0.001"}
        sim.engine = Engine(build_config(sim.config))
        sim.lines = [sim.config]
    sim.tick(30000)
    amount = 2000 if profile == "okx" else 2
    sim.order("open", "buy", amount)
    assert sim.position().isolated_wallet == 1200
    return sim, sim.tick(mark)


def test_binance_one_step_into_tier_1_then_whole() -> None:
    # At 29500: notional 59,000 (tier 2), MM = 59000*0.005 - 50 = 245 >= MB = 1200 - 1000 = 200.
    # Step: the most BTC in tier 1 at 29500 = 50000/29500 = 1.69491525 (rounded down);
    # liquidated 0.30508475, realizing 0.30508475 * -500 = -152.542375, clearance fee 0.5 % of
    # 0.30508475 * 29500 = 45.000000625; the wallet keeps 1200 - 152.542375 - 45.000000625.
    # The rest (tier 1, MM 199.9999995) has MB = 1002.457624375 - 847.457625 = 154.999999375:
    # still due, lowest tier: whole, the fee takes what is left (min(154.999999375, 249.99...)).
    sim, events = _squeeze("binance", "tiered", 29500)
    first, second = of_type(events, "liquidation")
    target = (D(50000) / 29500).quantize(LOT, ROUND_DOWN)
    assert target == D("1.69491525")
    part = 2 - target
    assert (first["partial"], first["contracts"], first["remainingContracts"]) == (
        True,
        part,
        target,
    )
    assert first["price"] == first["markPrice"] == 29500
    assert first["fee"] == D("0.005") * part * 29500 == D("45.000000625")
    assert first["loss"] == first["fee"] + part * 500
    wallet = 1200 - part * 500 - first["fee"]
    assert second["isolatedWallet"] == wallet == D("1002.457624375")
    assert (second["partial"], second["contracts"], second["remainingContracts"]) == (
        False,
        target,
        0,
    )
    assert second["fee"] == wallet - target * 500 == D("154.999999375")
    assert second["loss"] == wallet
    assert sim.position() is None
    sim.check_ledger()


def test_binance_full_setting_liquidates_whole() -> None:
    _sim, events = _squeeze("binance", "full", 29500)
    (liq,) = of_type(events, "liquidation")
    assert (liq["partial"], liq["contracts"], liq["remainingContracts"]) == (False, 2, 0)
    # MB 200, fee min(200, 0.005 * 59000 = 295) = 200: all of the wallet
    assert (liq["fee"], liq["loss"]) == (200, 1200)


def test_bybit_step_at_entry_tiers_cures_the_position() -> None:
    # Bybit values the isolated MM at entry: 60,000 (tier 2), MM 250; due at 29500 (MB 200).
    # Step into tier 1 at entry: 50000/30000 = 1.66666666 BTC; liquidated 0.33333334 at the
    # mark with no fee: -166.66667; the wallet keeps 1033.33333. The rest: MM at entry
    # 1.66666666 * 30000 * 0.004 = 199.9999992 < MB 1033.33333 - 833.33333 = 200: cured.
    sim, events = _squeeze("bybit", "tiered", 29500)
    (liq,) = of_type(events, "liquidation")
    target = (D(50000) / 30000).quantize(LOT, ROUND_DOWN)
    assert (liq["partial"], liq["contracts"], liq["remainingContracts"]) == (
        True,
        2 - target,
        target,
    )
    assert (liq["fee"], liq["insuranceFundDelta"]) == (0, 0)
    pos = sim.position()
    assert (pos.contracts, pos.entry_price, pos.side) == (target, 30000, "long")
    assert pos.isolated_wallet == 1200 - (2 - target) * 500
    sim.check_ledger()


def test_okx_steps_by_contracts() -> None:
    # 2,000 contracts (tier 2 by contracts); OKX's requirement is flat: 59000 * 0.005 = 295 plus
    # the taker rate (0 here) against MB 200: due. Step to tier 1's 1,000 contracts: 1 BTC at
    # 29500 realizes -500 and pays the 0.05 % fee 14.75; the wallet keeps 685.25. The rest:
    # 29500 * 0.004 = 118 < 685.25 - 500 = 185.25: cured. (OKX itself steps from tier 3 only,
    # the okx default, test_liquidation_step_size; this two-tier table needs steps from tier 2.)
    sim, events = _squeeze("okx", "tiered", 29500, partial_from=2)
    (liq,) = of_type(events, "liquidation")
    assert (liq["partial"], liq["contracts"], liq["remainingContracts"]) == (True, 1000, 1000)
    assert liq["fee"] == D("14.75")
    assert sim.position().isolated_wallet == D("685.25")
    sim.check_ledger()


def test_margin_holding_orders_go_first_and_stops_stay() -> None:
    # a resting buy (holds margin) and the position's stop-loss (holds none): the liquidation
    # cancels the buy first; the partial step keeps the stop with the rest of the position
    sim, _events = _squeeze("bybit", "full", 31000)
    sim.order("sl", "sell", 1, reduceOnly=True, stopLossPrice=20000)
    sim.order("bid", "buy", 1, price=25000)
    assert sim.account().orders["bid"].reserved > 0
    events = sim.tick(29500)
    cancelled = of_type(events, "order_cancelled")
    assert (cancelled[0]["id"], cancelled[0]["reason"]) == ("bid", "liquidation")
    assert types(events).index("order_cancelled") < types(events).index("liquidation")


def test_a_gap_past_bankruptcy_goes_whole_and_the_deficit_is_adl() -> None:
    # at 29000 the position is bankrupt (MB 1200 - 2000 < 0): no step, whole; the fund (0)
    # cannot take the -800: an adl event records it, the fund stays at 0
    sim, events = _squeeze("binance", "tiered", 29000)
    (liq,) = of_type(events, "liquidation")
    assert (liq["partial"], liq["contracts"]) == (False, 2)
    assert liq["insuranceFundDelta"] == -800
    (adl,) = of_type(events, "adl")
    assert (adl["amount"], adl["insuranceFund"]) == (800, 0)
    assert sim.account().insurance_fund == 0
    sim.check_ledger()


@pytest.mark.parametrize("profile", ["binance", "bybit"])
def test_a_hedged_cross_account_steps_each_side_by_its_own_tier(profile: str) -> None:
    # cross, hedged: long 2 and short 0.1 @30000, wallet 2,000, 50x. At 29000: MB = 2000 - 2000
    # + 100 = 100; MM long (58,000, tier 2) = 240 (binance, bybit) -> due. The long steps into
    # tier 1 by itself (its own notional, §8.6): 50000/29000 = 1.72413793 BTC stay.
    sim = Sim(profile=profile, wallet=2000, leverage=50, position_mode="hedged")
    sim.tick(30000)
    sim.order("l", "buy", 2, positionSide="long")
    sim.order("s", "sell", "0.1", positionSide="short")
    events = sim.tick(29000)
    liqs = of_type(events, "liquidation")
    assert liqs and all(e["scope"] == "account" for e in liqs)
    assert all(e["positionSide"] == e["side"] for e in liqs)
    target = (D(50000) / 29000).quantize(LOT, ROUND_DOWN)
    first = liqs[0]
    assert (first["positionSide"], first["partial"], first["remainingContracts"]) == (
        "long",
        True,
        target,
    )
    assert sim.account().wallet >= 0
    sim.check_ledger()


def test_the_hedge_example_runs_byte_identical_with_its_steps() -> None:
    """examples/scenarios/hedge.jsonl: a hedged isolated account, a refused order without a
    side, funding per side, then the long liquidated in two steps; the same bytes every run."""
    path = Path(__file__).parents[2] / "examples" / "scenarios" / "hedge.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    first = [json.dumps(to_jsonable(e)) for e in simulate_lines(lines)]
    assert first == [json.dumps(to_jsonable(e)) for e in simulate_lines(lines)]
    events = [json.loads(line) for line in first]
    assert [e["code"] for e in events if e["type"] == "order_rejected"] == [
        "POSITION_SIDE_REQUIRED"
    ]
    funding = [(e["positionSide"], e["amount"]) for e in events if e["type"] == "funding"]
    assert funding == [("long", "-9"), ("short", "3")]
    steps = [(e["partial"], e["remainingContracts"]) for e in events if e["type"] == "liquidation"]
    assert steps == [(True, "0.85178875"), (False, "0")]
