"""Hedge mode (docs/rules.md §8.6, docs/contracts.md §2): a position per side, worked examples.

Numbers use the historical Binance BTCUSDT brackets of enginekit (tier 1 up to 50,000 USDT at
MMR 0.4 %, tier 2 up to 250,000 at 0.5 % with a maintenance amount of 50); OKX reads the same
rows in contracts (contract size 1 here) with a flat MMR and the taker rate in the requirement.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardbot.cli.calc import run_calc
from guardbot.core.num import decimal_context
from tests.core.enginekit import BTC, TIERS, Sim, of_type, one, rejected

D = Decimal
HEDGED = {"position_mode": "hedged"}


def _hedged(**kw: object) -> Sim:
    return Sim(position_mode="hedged", **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- margins of two sides (calc)


# long 2 @30000 and short 1 @31000 of BTC, mark 30000, cross wallet 10,000, 10x, taker 0.0005.
# Each side is its own position, tiered on its own size (§8.6):
#   long  notional 60,000 (tier 2 by notional; tier 1 by 2 contracts), upnl 0
#   short notional 30,000 (tier 1), upnl +1,000
#   binance/bybit (cum deduction): MM_L = 60000*0.005 - 50 = 250, MM_S = 30000*0.004 = 120
#   okx (flat tier by contracts, + taker in the requirement): MM_L = 60000*0.004 = 240,
#       MM_S = 120; requirement adds 0.0005 * (60000 + 30000) = 45 -> 405
# margin balance = 10000 + 1000 = 11000 on every profile.
@pytest.mark.parametrize(
    ("profile", "mm_long", "mm_short", "requirement"),
    [
        ("binance", D(250), D(120), D(370)),
        ("bybit", D(250), D(120), D(370)),
        ("okx", D(240), D(120), D(405)),
    ],
)
def test_calc_two_sides_of_one_symbol(
    profile: str, mm_long: Decimal, mm_short: Decimal, requirement: Decimal
) -> None:
    side = {"symbol": BTC, "markPrice": 30000, "marginMode": "cross", "leverage": 10}
    out = run_calc(
        {
            "profile": profile,
            "positionMode": "hedged",
            "tiers": {BTC: TIERS[BTC]},
            "fees": {"taker": "0.0005"},
            "account": {"wallet": 10000},
            "positions": [
                {**side, "side": "long", "contracts": 2, "entryPrice": 30000, "hedged": True},
                {**side, "side": "short", "contracts": 1, "entryPrice": 31000},
            ],
        }
    )
    long, short = out["positions"]  # type: ignore[misc]
    assert (long["side"], long["hedged"], short["side"], short["hedged"]) == (
        "long",
        True,
        "short",
        True,
    )
    assert (D(long["maintenanceMargin"]), D(short["maintenanceMargin"])) == (mm_long, mm_short)
    assert (D(long["unrealizedPnl"]), D(short["unrealizedPnl"])) == (0, 1000)
    assert (D(long["initialMargin"]), D(short["initialMargin"])) == (6000, 3000)
    account = out["account"]
    assert D(account["marginBalance"]) == 11000  # type: ignore[index]
    with decimal_context():
        assert D(account["marginRatio"]) == requirement / 11000  # type: ignore[index]


def test_calc_refuses_a_repeated_side_and_two_sides_in_one_way() -> None:
    base = {"symbol": BTC, "contracts": 1, "entryPrice": 30000, "markPrice": 30000}
    base |= {"marginMode": "cross", "leverage": 10}
    one_way = {"tiers": {BTC: TIERS[BTC]}, "account": {"wallet": 1000}}
    with pytest.raises(Exception, match=r"positions\[1\]\.symbol: duplicate position"):
        run_calc({**one_way, "positions": [{**base, "side": "long"}, {**base, "side": "short"}]})
    with pytest.raises(Exception, match=r"positions\[1\]\.side: duplicate long position"):
        run_calc(
            {
                **one_way,
                "positionMode": "hedged",
                "positions": [{**base, "side": "long"}, {**base, "side": "long"}],
            }
        )
    with pytest.raises(Exception, match=r"positions\[1\]: both sides of BTC/USDT:USDT"):
        run_calc(
            {
                **one_way,
                "positionMode": "hedged",
                "positions": [{**base, "side": "long"}, {**base, "side": "short", "leverage": 5}],
            }
        )
    with pytest.raises(Exception, match="positionMode: must be oneway or hedged"):
        run_calc({**one_way, "positionMode": "hedge", "positions": [{**base, "side": "long"}]})


# ---------------------------------------------------------------- orders of a hedged account


@pytest.mark.parametrize(
    ("mode", "params", "code"),
    [
        ("hedged", {}, "POSITION_SIDE_REQUIRED"),
        ("hedged", {"positionSide": "BOTH"}, "POSITION_SIDE_REQUIRED"),
        ("hedged", {"positionSide": "up"}, "INVALID_ORDER"),
        ("oneway", {"positionSide": "long"}, "INVALID_ORDER"),
        ("oneway", {"positionSide": "Short"}, "INVALID_ORDER"),
    ],
)
def test_position_side_is_required_in_hedge_mode_and_refused_in_one_way(
    mode: str, params: dict[str, str], code: str
) -> None:
    sim = Sim(position_mode=mode)
    sim.tick(30000)
    assert rejected(sim.order("o", "buy", 1, **params))["code"] == code


def test_one_way_takes_both_or_nothing() -> None:
    sim = Sim()
    sim.tick(30000)
    assert one(sim.order("o", "buy", 1, positionSide="BOTH"), "fill")["amount"] == 1


def test_each_side_is_its_own_position() -> None:
    sim = _hedged(wallet=100_000, taker="0.0005")
    sim.tick(30000)
    long = one(sim.order("l", "buy", 2, positionSide="LONG"), "fill")
    short = one(sim.order("s", "sell", 1, positionSide="short"), "fill")
    assert (long["positionSide"], long["positionContracts"]) == ("long", 2)
    assert (short["positionSide"], short["positionContracts"]) == ("short", 1)
    sim.tick(31000)
    # sell + long reduces the long only: 2 -> 1.5, realizing 0.5 * (31000 - 30000) = 500
    fill = one(sim.order("r", "sell", "0.5", positionSide="long"), "fill")
    assert (fill["reduceOnly"], fill["realizedPnl"], fill["positionContracts"]) == (True, 500, 1.5)
    state = sim.engine.state(sim.account())
    sides = [(p["symbol"], p["side"], p["hedged"], p["contracts"]) for p in state["positions"]]
    assert sides == [(BTC, "long", True, "1.5"), (BTC, "short", True, "1")]
    sim.check_ledger()


@pytest.mark.parametrize(("profile", "outcome"), [("binance", "trim"), ("bybit", "reject")])
def test_a_closing_order_larger_than_its_side_follows_the_oversize_rule(
    profile: str, outcome: str
) -> None:
    sim = _hedged(profile=profile, wallet=100_000)
    sim.tick(30000)
    sim.order("l", "buy", 1, positionSide="long")
    sim.order("s", "sell", 3, positionSide="short")
    events = sim.order("x", "sell", 2, positionSide="long")
    if outcome == "trim":
        fill = one(events, "fill")
        assert (fill["amount"], fill["positionContracts"]) == (1, 0)
        assert one(events, "order_accepted")["requestedAmount"] == 2
    else:
        assert rejected(events)["code"] == "REDUCE_ONLY_WOULD_INCREASE_POSITION"
    # never a short opened by a sell + long: the short is still 3
    assert sim.position(f"{BTC}#short").contracts == 3


def test_closing_a_side_that_is_not_open_is_refused() -> None:
    sim = _hedged(wallet=100_000)
    sim.tick(30000)
    sim.order("s", "sell", 1, positionSide="short")
    assert rejected(sim.order("x", "sell", 1, positionSide="long"))["code"] == (
        "REDUCE_ONLY_NO_POSITION"
    )


def test_position_mode_changes_only_with_nothing_open() -> None:
    sim = Sim(wallet=100_000)
    sim.tick(30000)
    sim.order("o", "buy", 1)
    refused = rejected(sim.cmd("set_position_mode", positionMode="hedged"))
    assert refused["code"] == "POSITION_MODE_CHANGE_WITH_OPEN_POSITION"
    sim.order("c", "sell", 1)
    sim.order("rest", "buy", 1, price=20000)
    assert rejected(sim.cmd("set_position_mode", positionMode="hedged"))["code"] == (
        "POSITION_MODE_CHANGE_WITH_OPEN_POSITION"
    )
    sim.cmd("cancel", id="rest")
    changed = one(sim.cmd("set_position_mode", positionMode="hedged"), "position_mode_changed")
    assert changed["positionMode"] == "hedged"
    assert sim.cmd("set_position_mode", positionMode="hedged") == []  # the current mode: no-op
    assert one(sim.order("l", "buy", 1, positionSide="long"), "fill")["positionSide"] == "long"


def test_funding_applies_to_each_side() -> None:
    # long 2 and short 1 at mark 30000, rate 0.0001: the long pays 2*30000*0.0001 = 6, the
    # short receives 3 (docs/rules.md §1.6)
    sim = _hedged(wallet=100_000)
    sim.tick(30000)
    sim.order("l", "buy", 2, positionSide="long")
    sim.order("s", "sell", 1, positionSide="short")
    events = of_type(sim.funding("0.0001"), "funding")
    assert sorted((e["positionSide"], e["amount"]) for e in events) == [("long", -6), ("short", 3)]
    sim.check_ledger()


def test_attached_stops_belong_to_their_side() -> None:
    sim = _hedged(wallet=100_000)
    sim.tick(30000)
    sim.order("l", "buy", 1, positionSide="long", stopLossPrice=29000)
    sim.order("s", "sell", 1, positionSide="short", stopLossPrice=31000)
    events = sim.tick(28900)
    stop = one(events, "stop_triggered")
    assert (stop["id"], stop["positionSide"]) == ("l-sl", "long")
    assert one(events, "fill")["positionSide"] == "long"
    assert sim.position(f"{BTC}#long") is None
    assert sim.position(f"{BTC}#short").contracts == 1
    assert "s-sl" in sim.account().orders


def test_isolated_sides_liquidate_alone() -> None:
    # isolated long 1 and short 1 @30000 at 50x: each side's wallet is 600; at 29500 the long
    # (MB 100 <= MM 118) is liquidated, the short and its wallet are untouched
    sim = _hedged(wallet=10_000, mode="isolated", leverage=50, profile_options={
        "liquidation_steps": "full"})  # fmt: skip
    sim.tick(30000)
    sim.order("l", "buy", 1, positionSide="long")
    sim.order("s", "sell", 1, positionSide="short")
    events = sim.tick(29500)
    liq = one(events, "liquidation")
    assert (liq["scope"], liq["positionSide"], liq["isolatedWallet"]) == ("position", "long", 600)
    short = sim.position(f"{BTC}#short")
    assert (short.contracts, short.isolated_wallet) == (1, 600)
    sim.check_ledger()


def test_the_two_cross_sides_of_a_symbol_share_one_liquidation_price() -> None:
    # Binance cross hedge (docs/rules.md §5.6): long 1 and short 0.5 @30000, wallet 10,000,
    # both in tier 1 (0.4 %, cum 0) at the answer. Both legs move with the mark P:
    #   10000 + 1*(P - 30000) - 0.5*(P - 30000) = 0.004*P + 0.004*0.5*P
    #   -> 0.494 P = 5000 -> P = 10121.4574898785...
    # (holding the short still, the long alone would say 20,140.56, and the short 49,561.75:
    # a net long is never liquidated by a rise)
    side = {"symbol": BTC, "markPrice": 30000, "entryPrice": 30000, "marginMode": "cross"}
    side["leverage"] = 10
    request = {
        "positionMode": "hedged",
        "tiers": {BTC: TIERS[BTC]},
        "account": {"wallet": 10000},
        "positions": [
            {**side, "side": "long", "contracts": 1},
            {**side, "side": "short", "contracts": "0.5"},
        ],
    }
    long, short = run_calc(request)["positions"]  # type: ignore[misc]
    with decimal_context():
        expected = D(5000) / D("0.494")
    assert D(long["liquidationPrice"]) == D(short["liquidationPrice"]) == expected
    # at that mark the account is exactly at ratio 1
    at = {**request, "positions": [{**p, "markPrice": str(expected)} for p in request["positions"]]}
    ratio = D(run_calc(at)["account"]["marginRatio"])  # type: ignore[index]
    assert abs(ratio - 1) < D("1e-30")
    # the engine's alerts name the same price
    sim = _hedged(wallet=10_000, leverage=10)
    sim.tick(30000)
    sim.order("l", "buy", 1, positionSide="long")
    sim.order("s", "sell", "0.5", positionSide="short")
    alert = one(sim.tick(10200), "margin_alert")  # MM 61.2 / MB 100: ratio 0.612
    assert alert["liquidationPrice"] == expected
