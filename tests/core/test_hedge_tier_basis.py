"""The tier of the cross sides of a hedged symbol (profile ``hedge_tier_basis``, docs/rules.md
§8.6): each side on its own size (``side``: Binance, Bybit, MEXC), or the long and the short
together (``combined``: OKX, Bitget), in the maintenance margin, the tick's cached sums, the
shared liquidation price and the liquidation steps. Worked examples.

Sources of the defaults (docs/rules.md §8.6, §13): OKX tiers cross positions on the long and
the short of an underlying together ("Position tiers" and its API, ``posSide`` long/short
positions counted in one tier for cross margin); Bitget's "Position Tier" article: in cross
margin mode the long and short positions of both directions are combined into one tier, in
isolated mode each direction is tiered by itself. Binance's hedge-mode liquidation-price formula
gives each leg its own rate and amount; Bybit and MEXC count the risk limit per side.

Tables: enginekit's historical Binance BTCUSDT brackets (tier 1 up to 50,000 USDT at 0.4 %,
tier 2 up to 250,000 at 0.5 % with a maintenance amount of 50); for OKX the rows of
test_liquidation_steps (tier 1 up to 1,000 contracts of 0.001 BTC at 0.4 %, tier 2 up to 5,000
at 0.5 %). No trading fee, so every figure is the margin rule alone.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardbot.cli.simulate import build_config
from guardbot.core.engine import Engine
from guardbot.core.num import decimal_context
from guardbot.core.profiles import PROFILES, get_profile
from guardbot.core.snapshot import PositionView
from guardbot.errors import InputError
from tests.core.enginekit import BTC, Sim, exact_div, of_type
from tests.core.test_liquidation_steps import OKX_ROWS

D = Decimal


def _hedged(
    profile: str, basis: str | None, *, wallet: object, leverage: object, **options: object
) -> Sim:
    if basis is not None:
        options["hedge_tier_basis"] = basis
    sim = Sim(
        profile=profile,
        wallet=wallet,
        leverage=leverage,
        position_mode="hedged",
        profile_options=options | {"liquidation_steps": "tiered"},
    )
    if profile == "okx":  # the okx table and contract size: a new engine on the edited config
        sim.config["tiers"] = {BTC: OKX_ROWS}
        sim.config["contractSizes"] = {BTC: "0.001"}
        sim.engine = Engine(build_config(sim.config))
        sim.lines = [sim.config]
    return sim


def _sides(sim: Sim) -> dict[str, PositionView]:
    views, _account = sim.engine.views(sim.account())
    return {v.side: v for v in views if v.symbol == BTC}


def _contracts(profile: str, btc: str) -> Decimal:
    return D(btc) * 1000 if profile == "okx" else D(btc)


def test_defaults_per_venue() -> None:
    defaults = {name: p.hedge_tier_basis for name, p in PROFILES.items()}
    expected = {"binance": "side", "bybit": "side", "okx": "combined"}
    expected |= {"mexc": "side", "bitget": "combined"}
    assert {k: v for k, v in defaults.items() if k in expected} == {
        k: v for k, v in expected.items() if k in defaults
    }
    with pytest.raises(InputError, match=r"profile_options.hedge_tier_basis: must be one of"):
        get_profile("binance").with_options({"hedge_tier_basis": "larger"})


# A long of 1 BTC and a short of 1 BTC @30000, mark 30000, cross, 10x, wallet 100,000.
#   side:     each 30,000 in tier 1 (binance/bybit by notional, okx 1,000 contracts):
#             MM = 30000 * 0.004 = 120 per side, 240 together.
#   combined: together 60,000 (2,000 contracts) in tier 2:
#             binance: MM = 60000 * 0.005 - 50 = 250, 125 per side (the amount split by size);
#             okx (flat tier): 30000 * 0.005 = 150 per side, 300 together.
@pytest.mark.parametrize(
    ("profile", "basis", "mm_side", "rate"),
    [
        ("binance", None, D(120), D("0.004")),
        ("binance", "combined", D(125), D("0.005")),
        ("bybit", None, D(120), D("0.004")),
        ("bybit", "combined", D(125), D("0.005")),
        ("okx", None, D(150), D("0.005")),
        ("okx", "side", D(120), D("0.004")),
    ],
)
def test_maintenance_of_two_equal_sides(
    profile: str, basis: str | None, mm_side: Decimal, rate: Decimal
) -> None:
    sim = _hedged(profile, basis, wallet=100_000, leverage=10)
    sim.tick(30000)
    sim.order("l", "buy", _contracts(profile, "1"), positionSide="long")
    sim.order("s", "sell", _contracts(profile, "1"), positionSide="short")
    sides = _sides(sim)
    assert {s: (v.maintenance_margin, v.maintenance_margin_rate) for s, v in sides.items()} == {
        "long": (mm_side, rate),
        "short": (mm_side, rate),
    }
    # the tick path's cached sums agree with the views
    assert sim.account().c_req == 2 * mm_side
    sim.check_ledger()


# binance with combined tiers: long 1 and short 0.6 BTC @30000: together 48,000 (tier 1),
# MM = 48000 * 0.004 = 192. A tick to 32,000 moves them together to 51,200 (tier 2) with no
# fill: MM = 51200 * 0.005 - 50 = 206 (per side tiered alone: 32000*0.004 + 19200*0.004
# = 204.8). The cached sums must follow the combined size across the tier bound.
@pytest.mark.parametrize(("basis", "at_32000"), [("combined", D(206)), ("side", D("204.8"))])
def test_a_tick_moves_the_combined_size_across_a_tier(basis: str, at_32000: Decimal) -> None:
    sim = _hedged("binance", basis, wallet=100_000, leverage=10)
    sim.tick(30000)
    sim.order("l", "buy", 1, positionSide="long")
    sim.order("s", "sell", "0.6", positionSide="short")
    assert sim.account().c_req == 192
    sim.tick(32000)
    assert sim.account().c_req == at_32000
    assert sum(v.maintenance_margin for v in _sides(sim).values()) == at_32000


# binance, cross, long 2 and short 1 BTC @30000, wallet 10,000, 10x. Margin balance at P:
# 10000 + 2(P - 30000) - (P - 30000) = P - 20000.
#   combined: the requirement of 3 BTC in one tier: 3P*mmr - cum; at P = 19950 / 0.985 the
#     combined notional 60,761 is in tier 2 (0.5 %, 50): P(1 - 0.015) = 20000 - 50.
#   side: long 2P (tier 1) and short P (tier 1): P(1 - 0.012) = 20000 -> 20000 / 0.988.
# Each is the only self-consistent solution (docs/rules.md §5.2).
@pytest.mark.parametrize(
    ("basis", "price"),
    [("combined", exact_div(19950, "0.985")), ("side", exact_div(20000, "0.988"))],
)
def test_shared_liquidation_price_uses_the_basis(basis: str, price: Decimal) -> None:
    sim = _hedged("binance", basis, wallet=10_000, leverage=10)
    sim.tick(30000)
    sim.order("l", "buy", 2, positionSide="long")
    sim.order("s", "sell", 1, positionSide="short")
    sides = _sides(sim)
    assert sides["long"].liquidation_price == sides["short"].liquidation_price
    with decimal_context():
        assert abs(sides["long"].liquidation_price - price) < D("1e-20")  # type: ignore[operator]
    # and it is where the engine liquidates: a tick just above leaves them, just below does not
    sim.tick(price.quantize(D("0.01")) + D("0.01"))
    assert set(_sides(sim)) == {"long", "short"}
    events = sim.tick(price.quantize(D("0.01")) - D("0.01"))
    assert {e["positionSide"] for e in of_type(events, "liquidation")} >= {"long"}


# okx, cross, long 1,500 and short 500 contracts (1.5 and 0.5 BTC) @30000, 50x, wallet 1,300
# (IM 900 + 300). At 28,950: margin balance = 1300 + (28950 - 30000) = 250.
#   combined (okx default): 2,000 contracts in tier 2, requirement = 2 * 28950 * 0.005 = 289.5
#     >= 250: due. Step: the two together into tier 1 (1,000): only the long can get there,
#     to 1000 - 500 = 500 contracts; 1,000 contracts (1 BTC) realize -1,050 and pay the 0.05 %
#     fee 14.475: wallet 235.525. The rest (1,000 together, tier 1): 1 * 28950 * 0.004 = 115.8
#     against 235.525 (the sides' PnL now cancel): cured.
#   side: long 1,500 (tier 2) 217.125 + short 500 (tier 1) 57.9 = 275.025 >= 250: due. The
#     long steps alone into tier 1 (1,000): 500 contracts realize -525, fee 7.2375: wallet
#     767.7625, margin balance 242.7625 > 115.8 + 57.9 = 173.7: cured.
# OKX steps from tier 3 (test_liquidation_step_size); these two-tier tables need steps from
# tier 2 to show the basis, so the example sets liquidation_partial_from_tier = 2.
@pytest.mark.parametrize(
    ("basis", "contracts", "remaining", "wallet"),
    [
        ("combined", D(1000), D(500), D("235.525")),
        ("side", D(500), D(1000), D("767.7625")),
    ],
)
def test_okx_step_takes_the_combined_size_into_the_lower_tier(
    basis: str, contracts: Decimal, remaining: Decimal, wallet: Decimal
) -> None:
    sim = _hedged("okx", basis, wallet=1300, leverage=50, liquidation_partial_from_tier=2)
    sim.tick(30000)
    sim.order("l", "buy", 1500, positionSide="long")
    sim.order("s", "sell", 500, positionSide="short")
    assert not of_type(sim.tick(29000), "liquidation")  # 300 against 290: not yet
    events = sim.tick(28950)
    (liq,) = of_type(events, "liquidation")
    assert (liq["positionSide"], liq["partial"]) == ("long", True)
    assert (liq["contracts"], liq["remainingContracts"]) == (contracts, remaining)
    assert sim.account().wallet == wallet
    assert set(_sides(sim)) == {"long", "short"}
    sim.check_ledger()


def test_isolated_sides_are_tiered_alone_on_every_basis() -> None:
    # Bitget and OKX combine cross sides only; an isolated side has its own wallet and tier.
    sim = _hedged("okx", None, wallet=100_000, leverage=10)
    sim.tick(30000)
    sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated")
    sim.order("l", "buy", 1000, positionSide="long")
    sim.order("s", "sell", 1000, positionSide="short")
    sides = _sides(sim)
    assert {s: v.maintenance_margin_rate for s, v in sides.items()} == {
        "long": D("0.004"),
        "short": D("0.004"),
    }
