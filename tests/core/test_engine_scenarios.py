"""Engine scenarios checked against docs/rules.md and docs/contracts.md §2, numbers by hand.

Each test drives the engine line by line (the same parsing as ``guardbot simulate``), states the
expected numbers with their arithmetic, and ends with the ledger identity
``cross wallet + isolated wallets == initial + deposits - withdrawals + realized - fees + funding
- liquidation losses``, exactly.
"""

from __future__ import annotations

import gc
import json
from decimal import Decimal
from itertools import pairwise

import pytest

from guardbot.cli.simulate import simulate_lines
from tests.core.enginekit import (
    BTC,
    BTC_ROWS,
    ETH,
    ETH_ROWS,
    SOL,
    D,
    Sim,
    close,
    exact_div,
    of_type,
    one,
    rejected,
    types,
)

# ---------------------------------------------------------------------------- the fixture tables


@pytest.mark.parametrize("rows", [BTC_ROWS, ETH_ROWS], ids=["BTCUSDT", "ETHUSDT"])
def test_fixture_tables_satisfy_the_cum_recursion(
    rows: list[tuple[int, int, str, int, int]],
) -> None:
    # docs/rules.md §2.3: cum_1 = 0, cum_k = cum_{k-1} + floor_k * (mmr_k - mmr_{k-1})
    assert rows[0][4] == 0
    for prev, row in pairwise(rows):
        assert row[0] == prev[1]
        assert D(row[4]) == D(prev[4]) + row[0] * (D(row[2]) - D(prev[2]))


# ---------------------------------------------------------------------------- EX20


@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_ex20_fees_realized_pnl_and_funding(mode: str) -> None:
    sim = Sim(wallet=100_000, mode=mode, leverage=10, maker="0.0002", taker="0.0005")
    sim.tick(40000, bid=40000, ask=40000)
    fill = one(sim.order("open", "buy", "0.5"), "fill")
    # fee = |dQ| * P_fill * taker = 0.5 * 40000 * 0.0005 = 10 (docs/rules.md §1.5)
    assert (fill["price"], fill["fee"], fill["realizedPnl"]) == (40000, 10, 0)
    assert fill["liquidity"] == "taker"

    sim.tick(41000, bid=41000, ask=41000)
    # Δwallet = -q * MP * r = -0.5 * 41000 * 0.0001 = -2.05 (docs/rules.md §1.6)
    paid = one(sim.funding("0.0001"), "funding")
    assert paid["amount"] == D("-2.05")
    # r = -0.000075: -0.5 * 41000 * -0.000075 = +1.5375
    received = one(sim.funding("-0.000075"), "funding")
    assert received["amount"] == D("1.5375")

    sim.tick(42000, bid=42000, ask=42000)
    close_fill = one(sim.order("close", "sell", "0.5"), "fill")
    # fee = 0.5 * 42000 * 0.0005 = 10.5; realized = s*dQ*(P - EP) = 0.5 * (42000 - 40000) = 1000
    assert (close_fill["price"], close_fill["fee"], close_fill["realizedPnl"]) == (
        42000,
        D("10.5"),
        1000,
    )
    account = sim.account()
    assert not account.positions
    # 100000 - 10 - 2.05 + 1.5375 + 1000 - 10.5 = 100978.9875, all back in the cross wallet
    assert account.wallet == D("100978.9875")
    assert account.total_wallet() == D("100978.9875")
    assert account.ledger.realized_pnl == 1000
    assert account.ledger.fees == D("20.5")
    assert account.ledger.funding == D("-0.5125")
    sim.check_ledger()


#: Full liquidation pinned: these are the worked examples of one-step settlement (§7.2).
FULL = {"liquidation_steps": "full"}


def test_ex20_short_side_receives_positive_funding_and_loses_the_move() -> None:
    sim = Sim(wallet=100_000, taker="0.0005")
    sim.tick(40000, bid=40000, ask=40000)
    sim.order("open", "sell", "0.5")
    sim.tick(41000)
    # -q*MP*r with q = -0.5: +0.5 * 41000 * 0.0001 = +2.05
    assert one(sim.funding("0.0001"), "funding")["amount"] == D("2.05")
    sim.tick(42000, bid=42000, ask=42000)
    fill = one(sim.order("close", "buy", "0.5"), "fill")
    # realized = s*dQ*(P - EP) = -1 * 0.5 * (42000 - 40000) = -1000
    assert fill["realizedPnl"] == -1000
    # 100000 - 10 + 2.05 - 1000 - 10.5
    assert sim.account().wallet == D("98981.55")
    sim.check_ledger()


def test_ex20_through_simulate_lines_final_state() -> None:
    sim = Sim(wallet=100_000, taker="0.0005")
    sim.tick(40000, bid=40000, ask=40000)
    sim.order("open", "buy", "0.5")
    sim.tick(41000, bid=41000, ask=41000)
    sim.funding("0.0001")
    events = sim.replay()
    assert events[:-1] == sim.events  # simulate_lines runs the same engine, event for event
    final = events[-1]
    assert final["type"] == "final"
    state = final["accounts"]["a"]
    # cross wallet: 100000 - 10 (fee) - 2.05 (funding)
    assert state["wallet"] == D("99987.95")
    assert state["balance"]["USDT"]["total"] == D("99987.95")
    [pos] = state["positions"]
    assert (pos["side"], pos["contracts"], pos["entryPrice"]) == ("long", "0.5", "40000")


@pytest.mark.parametrize("leverage", [3, 7])
def test_ledger_identity_with_isolated_margin_that_does_not_divide_evenly(leverage: int) -> None:
    # Isolated IM = N/L funds the isolated wallet from the cross wallet: a pure transfer, so
    # cross + isolated must stay exactly 10000 (no rounding may leak out of the ledger).
    sim = Sim(wallet=10_000, mode="isolated", leverage=leverage)
    sim.tick(10, bid=10, ask=10)
    sim.order("open", "buy", 1)  # IM = 10 / L, a repeating decimal
    assert sim.account().total_wallet() == 10_000
    sim.check_ledger()
    sim.tick(11, bid=11, ask=11)
    sim.order("half", "sell", "0.5")  # releases half the isolated wallet, realizes 0.5
    sim.check_ledger()
    sim.order("rest", "sell", "0.5")
    assert sim.position() is None
    # 10000 + 0.5*(11-10) * 2
    assert sim.account().wallet == 10_001
    sim.check_ledger()


# ---------------------------------------------------------------------------- EX21


def _ex21_long(**kwargs: object) -> Sim:
    """Long 2 with EP 31000: buy 1 @30000, buy 1 @32000; then the market at 33000."""
    sim = Sim(wallet=100_000, leverage=10, **kwargs)
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("b1", "buy", 1)
    sim.tick(32000, bid=32000, ask=32000)
    sim.order("b2", "buy", 1)
    pos = sim.position()
    # EP = (1*30000 + 1*32000) / 2 = 31000 (docs/rules.md §1.2)
    assert (pos.sign, pos.contracts, pos.entry_price) == (1, 2, 31000)
    sim.tick(33000, bid=33000, ask=33000)
    return sim


def test_ex21_a_partial_close_keeps_entry_and_realizes() -> None:
    sim = _ex21_long()
    fill = one(sim.order("s", "sell", 1), "fill")
    # realized = 1 * (33000 - 31000) = 2000; EP unchanged (§1.3)
    assert fill["realizedPnl"] == 2000
    pos = sim.position()
    assert (pos.sign, pos.contracts, pos.entry_price) == (1, 1, 31000)
    sim.check_ledger()


def test_ex21_b_flip_through_zero() -> None:
    sim = _ex21_long()
    fill = one(sim.order("s", "sell", 3), "fill")
    # close 2: 2 * (33000 - 31000) = 4000; open short 1 at 33000 (§1.4)
    assert (fill["amount"], fill["realizedPnl"]) == (3, 4000)
    pos = sim.position()
    assert (pos.sign, pos.contracts, pos.entry_price) == (-1, 1, 33000)
    sim.check_ledger()


def test_ex21_b_flip_opening_part_needs_fresh_margin() -> None:
    # Cross wallet 6200, long 2 @31000; selling 3 closes 2 and opens 1 short (IM 33000/10 = 3300).
    # Before the order: wallet 6200, UPNL 2*(33000-31000) = 4000, IM 2*33000/10 = 6600:
    # available = 6200 + 4000 - 6600 = 3600 >= 3300, so the flip is admitted.
    sim = Sim(wallet=6200, leverage=10)
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("b1", "buy", 1)
    sim.tick(32000, bid=32000, ask=32000)
    sim.order("b2", "buy", 1)
    sim.tick(33000, bid=33000, ask=33000)
    assert one(sim.order("flip", "sell", 3), "fill")["realizedPnl"] == 4000
    # A flip whose opening part cannot be funded is refused. Long 1 @30000 with wallet 4000;
    # selling 3 opens 2 short needing IM 2*30000/10 = 6000, more than the 4000 the account would
    # hold even after the closing part released its margin.
    sim2 = Sim(wallet=4000, leverage=10)
    sim2.tick(30000, bid=30000, ask=30000)
    sim2.order("b1", "buy", 1)
    events = sim2.order("flip", "sell", 3)
    assert rejected(events)["code"] == "MARGIN_INSUFFICIENT"
    assert not of_type(events, "fill")
    assert (sim2.position().sign, sim2.position().contracts) == (1, 1)
    for s in (sim, sim2):
        s.check_ledger()


def test_ex21_c_reduce_only_trim_fills_the_position_and_never_flips() -> None:
    sim = _ex21_long()  # binance profile: reduce_only_excess = trim
    events = sim.order("ro", "sell", 3, reduceOnly=True)
    fills = of_type(events, "fill")
    # filled 2 (the whole position), the third contract is not executed; realized 2*2000 = 4000
    assert sum(f["amount"] for f in fills) == 2
    assert sum(f["realizedPnl"] for f in fills) == 4000
    assert all(f["reduceOnly"] for f in fills)
    assert sim.position() is None
    assert "ro" not in sim.account().orders
    sim.check_ledger()


@pytest.mark.parametrize(
    ("profile", "guards"),
    [("binance", {"reduce_only_oversize": "reject"}), ("bybit", None)],
    ids=["guard-reject", "bybit-default"],
)
def test_ex21_d_reduce_only_oversize_rejected_by_policy(
    profile: str, guards: dict[str, str] | None
) -> None:
    sim = _ex21_long(profile=profile, guards=guards)
    events = sim.order("ro", "sell", 3, reduceOnly=True)
    assert rejected(events)["code"] == "REDUCE_ONLY_WOULD_INCREASE_POSITION"
    assert not of_type(events, "fill")
    pos = sim.position()
    assert (pos.sign, pos.contracts, pos.entry_price) == (1, 2, 31000)
    sim.check_ledger()


def test_ex21_e_reduce_only_same_side_rejected() -> None:
    sim = _ex21_long()
    ev = rejected(sim.order("ro", "buy", 1, reduceOnly=True))
    assert ev["code"] == "REDUCE_ONLY_WOULD_INCREASE_POSITION"
    assert ev["id"] == "ro"
    assert sim.position().contracts == 2
    sim.check_ledger()


def test_ex21_e_reduce_only_without_position_rejected() -> None:
    sim = Sim()
    sim.tick(30000)
    for side in ("buy", "sell"):
        ev = rejected(sim.order(f"ro-{side}", side, 1, reduceOnly=True))
        assert ev["code"] == "REDUCE_ONLY_NO_POSITION"
    assert not sim.account().positions
    sim.check_ledger()


# ---------------------------------------------------------------------------- EX25

MARK_PATH = [29500, 29001, 29000, 28999]
LAST_PATH = [29400, 28900, 29100, 29050]


def _ex25(trigger_price: str) -> tuple[Sim, list[list[dict[str, object]]]]:
    sim = Sim(wallet=100_000, trigger_price=trigger_price)
    sim.tick(30000, last=30000)
    events = sim.order("open", "buy", 1, stopLossPrice=29000, takeProfitPrice=31000)
    assert one(events, "fill")["price"] == 30000
    per_tick = [sim.tick(m, last=lp) for m, lp in zip(MARK_PATH, LAST_PATH, strict=True)]
    return sim, per_tick


def test_ex25_stop_loss_on_mark_triggers_at_index_2_inclusive() -> None:
    sim, per_tick = _ex25("mark")
    # index 1: last 28900 < 29000 but the stop watches the mark (29001): nothing happens
    assert not of_type(per_tick[0], "stop_triggered")
    assert not of_type(per_tick[1], "stop_triggered")
    # index 2: mark 29000 <= 29000 (inclusive, §9.2)
    stop = one(per_tick[2], "stop_triggered")
    assert (stop["kind"], stop["triggerPrice"], stop["price"]) == ("stop_loss", 29000, 29000)
    fill = one(per_tick[2], "fill")
    # stop-market fills at the trigger-source price (no slippage): 29000; realized -1000
    assert (fill["side"], fill["amount"], fill["price"], fill["realizedPnl"]) == (
        "sell",
        1,
        29000,
        -1000,
    )
    assert sim.position() is None
    # the take-profit is gone with the position and never fires
    assert not sim.account().orders
    assert not of_type(per_tick[3], "stop_triggered")
    assert all(e.get("kind") != "take_profit" for e in of_type(sim.events, "stop_triggered"))
    sim.check_ledger()


def test_ex25_stop_loss_on_last_price_triggers_on_the_dip() -> None:
    sim, per_tick = _ex25("last")
    assert not of_type(per_tick[0], "stop_triggered")
    # index 1: last 28900 <= 29000
    stop = one(per_tick[1], "stop_triggered")
    assert (stop["kind"], stop["triggerPrice"], stop["price"]) == ("stop_loss", 29000, 28900)
    fill = one(per_tick[1], "fill")
    # 1 * (28900 - 30000) = -1100
    assert (fill["price"], fill["realizedPnl"]) == (28900, -1100)
    assert sim.position() is None
    assert not of_type(per_tick[2] + per_tick[3], "stop_triggered")
    sim.check_ledger()


# ---------------------------------------------------------------------------- limit orders


@pytest.mark.parametrize(
    ("side", "limit", "quote_rest", "quote_cross"),
    [
        ("buy", 29000, {"bid": 29900, "ask": 30000}, {"bid": 28800, "ask": 28900}),
        ("sell", 31000, {"bid": 30000, "ask": 30100}, {"bid": 31100, "ask": 31200}),
    ],
)
def test_resting_limit_fills_as_maker_at_its_price(
    side: str, limit: int, quote_rest: dict[str, int], quote_cross: dict[str, int]
) -> None:
    sim = Sim(wallet=100_000, maker="0.0002", taker="0.0005")
    sim.tick(30000, **quote_rest)
    events = sim.order("lim", side, 1, price=limit)
    assert types(events) == ["order_accepted"]
    assert "lim" in sim.account().orders
    # a quote that does not reach the limit leaves it resting
    assert not of_type(sim.tick(30000, **quote_rest), "fill")
    events = sim.tick(quote_cross["ask"] if side == "buy" else quote_cross["bid"], **quote_cross)
    fill = one(events, "fill")
    # maker fill at the limit price; fee = 1 * limit * 0.0002
    assert (fill["price"], fill["liquidity"]) == (limit, "maker")
    assert fill["fee"] == limit * D("0.0002")
    assert "lim" not in sim.account().orders
    pos = sim.position()
    assert (pos.sign, pos.entry_price) == ((1 if side == "buy" else -1), limit)
    sim.check_ledger()


def test_marketable_limit_fills_as_taker_at_the_touch() -> None:
    sim = Sim(wallet=100_000, maker="0.0002", taker="0.0005")
    sim.tick(30000, bid=29990, ask=30000)
    fill = one(sim.order("lim", "buy", 1, price=31000), "fill")
    # buy limit 31000 against ask 30000: takes the ask; fee = 30000 * 0.0005 = 15
    assert (fill["price"], fill["liquidity"], fill["fee"]) == (30000, "taker", 15)
    sim.check_ledger()


def test_ioc_limit_that_cannot_fill_is_cancelled() -> None:
    sim = Sim()
    sim.tick(30000, bid=29990, ask=30000)
    events = sim.order("ioc", "buy", 1, price=29000, timeInForce="IOC")
    assert not of_type(events, "fill")
    assert one(events, "order_cancelled")["id"] == "ioc"
    assert "ioc" not in sim.account().orders
    # it never rests: a later cross does not fill it
    assert not of_type(sim.tick(28000, bid=27990, ask=28000), "fill")
    sim.check_ledger()


def test_post_only_that_would_cross_is_rejected() -> None:
    sim = Sim()
    sim.tick(30000, bid=29990, ask=30000)
    events = sim.order("po", "buy", 1, price=30500, postOnly=True)
    rejected(events)
    assert not of_type(events, "fill")
    assert sim.position() is None
    # a post-only that does not cross rests
    events = sim.order("po2", "buy", 1, price=29000, postOnly=True)
    assert types(events) == ["order_accepted"]
    sim.check_ledger()


# ---------------------------------------------------------------------------- conditional orders


def test_trigger_order_fires_then_fills() -> None:
    sim = Sim()
    sim.tick(30000)
    events = sim.order("stop-buy", "buy", 1, triggerPrice=31000)
    assert types(events) == ["order_accepted"]
    assert not sim.tick(30999)
    events = sim.tick(31000)
    stop = one(events, "stop_triggered")
    assert (stop["id"], stop["kind"], stop["triggerPrice"], stop["price"]) == (
        "stop-buy",
        "trigger",
        31000,
        31000,
    )
    fill = one(events, "fill")
    assert types(events).index("stop_triggered") < types(events).index("fill")
    assert (fill["id"], fill["side"], fill["amount"], fill["price"]) == (
        "stop-buy",
        "buy",
        1,
        31000,
    )
    assert sim.position().entry_price == 31000
    sim.check_ledger()


def test_trailing_stop_follows_the_peak() -> None:
    sim = Sim()
    sim.tick(30000)
    sim.order("open", "buy", 1)
    events = sim.order("trail", "sell", 1, reduceOnly=True, trailingPercent=5)
    assert types(events) == ["order_accepted"]
    # peak 31000 -> stop 29450; peak 32000 -> stop 32000 * 0.95 = 30400
    for mark in (31000, 32000, 31000, 30401):
        assert not of_type(sim.tick(mark), "stop_triggered"), mark
    events = sim.tick(30400)
    stop = one(events, "stop_triggered")
    assert (stop["kind"], stop["triggerPrice"], stop["price"]) == ("trailing_stop", 30400, 30400)
    fill = one(events, "fill")
    # realized 1 * (30400 - 30000) = 400
    assert (fill["price"], fill["realizedPnl"]) == (30400, 400)
    assert sim.position() is None
    sim.check_ledger()


def test_ticks_that_move_a_trailing_stop_are_flagged() -> None:
    # The daemon journals exactly these quiet ticks, so that a replay trails from the same peak.
    sim = Sim()
    sim.tick(30000)
    assert sim.engine.tick_moved_orders is False
    sim.order("open", "buy", 1)
    sim.order("trail", "sell", 1, reduceOnly=True, trailingPercent=5)
    moved = []
    for mark in (30000, 31000, 30500, 31000, 32000, 31999):
        assert sim.tick(mark) == []
        moved.append(sim.engine.tick_moved_orders)
    # placed at 30000 (its first extreme); then only new highs move it
    assert moved == [False, True, False, False, True, False]


def test_short_take_profit_and_buy_trailing_stop() -> None:
    # short 2 @30000 with an attached TP at 28000 (a buy that fires when the mark falls to it)
    sim = Sim()
    sim.tick(30000)
    sim.order("open", "sell", 2, takeProfitPrice=28000)
    # a trailing buy-stop 10% above the lowest mark, for one contract
    sim.order("trail", "buy", 1, reduceOnly=True, trailingPercent=10)
    # low 29000 -> stop 31900; 31899 does not fire
    for mark in (29000, 31899):
        assert not of_type(sim.tick(mark), "stop_triggered"), mark
    events = sim.tick(31900)
    stop = one(events, "stop_triggered")
    assert (stop["id"], stop["kind"], stop["triggerPrice"]) == ("trail", "trailing_stop", 31900)
    # realized -1 * 1 * (31900 - 30000) = -1900
    assert one(events, "fill")["realizedPnl"] == -1900
    events = sim.tick(28000)
    stop = one(events, "stop_triggered")
    assert (stop["kind"], stop["triggerPrice"], stop["price"]) == ("take_profit", 28000, 28000)
    fill = one(events, "fill")
    # the TP closes what is left: 1 contract, realized -1 * 1 * (28000 - 30000) = +2000
    assert (fill["side"], fill["amount"], fill["realizedPnl"]) == ("buy", 1, 2000)
    assert sim.position() is None
    sim.check_ledger()


# ---------------------------------------------------------------------------- liquidation


@pytest.mark.parametrize(
    ("qty", "lev", "mark", "fee", "returned", "fund"),
    [
        # Q=1 EP=30000 10x: IWB 3000. Tier 1 (mmr 0.004). LP = (3000-30000)/(0.004-1) = 27108.43.
        # At 27100: MB = 3000 - 2900 = 100 <= MM 108.4. Fee = min(100, 0.005*27100=135.5) = 100:
        # nothing returned, the fund takes 100.
        (1, 10, 27100, 100, 0, 100),
        # Q=10 EP=30000 20x: IWB 15000, notional 300000 in tier 3 (mmr 0.01, cum 1300).
        # At 28650: MB = 15000 + 10*(28650-30000) = 1500; MM = 286500*0.01 - 1300 = 1565 >= 1500.
        # Fee = min(1500, 0.005*286500 = 1432.5) = 1432.5; returned 1500 - 1432.5 = 67.5.
        (10, 20, 28650, D("1432.5"), D("67.5"), D("1432.5")),
        # Gap below bankruptcy (P_bk = 30000 - 15000/10 = 28500): at 28400 the margin left is
        # 15000 - 16000 = -1000. Fee min(max(-1000, 0), ...) = 0; the fund covers the -1000.
        (10, 20, 28400, 0, 0, -1000),
    ],
    ids=["tier1-fee-takes-rest", "tier3-some-returned", "gap-deficit"],
)
def test_isolated_liquidation_binance_clearance_fee(
    qty: int, lev: int, mark: int, fee: Decimal, returned: Decimal, fund: Decimal
) -> None:
    sim = Sim(wallet=100_000, mode="isolated", leverage=lev, profile_options=FULL)
    sim.tick(30000)
    sim.order("open", "buy", qty)
    iwb = D(qty * 30000) / lev
    pos = sim.position()
    assert pos.isolated_wallet == iwb
    cross_before = sim.account().wallet
    assert cross_before == 100_000 - iwb
    assert not of_type(sim.tick(30000 - 1000), "liquidation")
    events = sim.tick(mark)
    liq = one(events, "liquidation")
    assert liq["scope"] == "position"
    assert (liq["symbol"], liq["contracts"], liq["markPrice"]) == (BTC, qty, mark)
    # clearance-fee model: closed at the execution price (the mark)
    assert liq["price"] == mark
    # loss = isolated wallet - what is returned; fund delta = fee + any deficit
    assert liq["loss"] == iwb - returned
    assert liq["insuranceFundDelta"] == fund
    assert fee + min(D(qty) * (mark - 30000) + iwb - fee, 0) == fund
    account = sim.account()
    # a deficit beyond what the simulated fund holds (0) is auto-deleveraged (§7.5)
    assert [e["amount"] for e in of_type(events, "adl")] == ([-fund] if fund < 0 else [])
    assert account.insurance_fund == max(fund, 0)
    assert account.wallet == cross_before + returned
    assert sim.position() is None
    sim.check_ledger()


def test_isolated_short_liquidation_binance() -> None:
    # short 10 @30000 20x: IWB 15000, notional in tier 3 (mmr 0.01, cum 1300).
    # LP = (IWB + cum + Q*EP)/(Q*(mmr + 1)) = (15000 + 1300 + 300000)/10.1 = 31316.83 (§5.1)
    sim = Sim(wallet=100_000, mode="isolated", leverage=20, profile_options=FULL)
    sim.tick(30000)
    sim.order("open", "sell", 10)
    assert sim.position().isolated_wallet == 15000
    assert close(sim.view().liquidation_price, exact_div(316300, "10.1"))
    # 31300: MB = 15000 - 13000 = 2000 > MM = 3130 - 1300 = 1830
    assert not of_type(sim.tick(31300), "liquidation")
    # 31320: MB = 15000 - 13200 = 1800 <= MM = 3132 - 1300 = 1832
    liq = one(sim.tick(31320), "liquidation")
    # fee = min(1800, 0.005 * 313200 = 1566) = 1566; returned 1800 - 1566 = 234
    assert (liq["price"], liq["loss"], liq["insuranceFundDelta"]) == (31320, 14766, 1566)
    assert sim.account().wallet == 85000 + 234
    sim.check_ledger()


def test_isolated_liquidation_cancels_the_symbols_orders_and_frees_their_margin() -> None:
    sim = Sim(wallet=10_000, mode="isolated", leverage=10)
    sim.tick(30000, bid=29990, ask=30000)
    sim.order("open", "buy", 1)
    sim.tick(2000, symbol=ETH, bid=1990, ask=2000)
    # a resting buy on BTC (reserves 1 * 25000 / 10 = 2500) and one on ETH (1 * 1500 / 10 = 150)
    sim.order("btc-bid", "buy", 1, price=25000)
    sim.order("eth-bid", "buy", 1, price=1500, symbol=ETH)
    assert sim.account().order_margin == 2650
    events = sim.tick(27100, bid=27090, ask=27100)  # below LP 27108.43
    assert one(events, "liquidation")["symbol"] == BTC
    assert [e["id"] for e in of_type(events, "order_cancelled")] == ["btc-bid"]
    assert set(sim.account().orders) == {"eth-bid"}
    assert sim.account().order_margin == 150
    sim.check_ledger()


@pytest.mark.parametrize(
    ("side", "safe", "mark", "bankrupt", "fund"),
    [
        # long 1 @20000 50x (bybit): IWB = 400, MM at entry = 20000*0.004 = 80.
        # LP = EP - (IM - MM)/Q = 20000 - 320 = 19680; P_bk = 20000*(1 - 1/50) = 19600.
        # At 19680: fund delta = s*Q*(mark - P_bk) = 19680 - 19600 = 80.
        ("buy", 19681, 19680, 19600, 80),
        # A gap to 19500: 19500 - 19600 = -100 (the fund pays).
        ("buy", 19681, 19500, 19600, -100),
        # short: LP = 20000 + 320 = 20320; P_bk = 20000*(1 + 1/50) = 20400.
        # fund delta = -1 * (20320 - 20400) = +80
        ("sell", 20319, 20320, 20400, 80),
        # a gap to 20500: -1 * (20500 - 20400) = -100
        ("sell", 20319, 20500, 20400, -100),
    ],
)
def test_isolated_liquidation_bybit_bankruptcy_settlement(
    side: str, safe: int, mark: int, bankrupt: int, fund: int
) -> None:
    sim = Sim(profile="bybit", wallet=10_000, mode="isolated", leverage=50, profile_options=FULL)
    sim.tick(20000)
    sim.order("open", side, 1)
    assert sim.position().isolated_wallet == 400
    assert sim.account().wallet == 9600
    assert not of_type(sim.tick(safe), "liquidation")
    events = sim.tick(mark)
    liq = one(events, "liquidation")
    assert liq["scope"] == "position"
    assert [e["amount"] for e in of_type(events, "adl")] == ([-fund] if fund < 0 else [])
    # the trader loses the whole isolated wallet; the position is taken over at P_bk
    assert liq["loss"] == 400
    assert liq["price"] == bankrupt
    assert liq["insuranceFundDelta"] == fund
    assert sim.account().wallet == 9600
    assert sim.account().insurance_fund == max(fund, 0)
    sim.check_ledger()


def test_cross_liquidation_floors_wallet_and_spares_isolated() -> None:
    sim = Sim(
        accounts={
            "a": {"wallet": "10000", "default_margin_mode": "cross", "default_leverage": "10"}
        },
        profile_options=FULL,
    )
    sim.tick(30000, symbol=BTC)
    sim.tick(2000, symbol=ETH)
    sim.tick(100, symbol=SOL)
    sim.cmd("set_margin_mode", symbol=SOL, marginMode="isolated")
    sim.order("btc", "buy", 1, symbol=BTC)
    sim.order("eth", "buy", 10, symbol=ETH)
    sim.order("sol", "buy", 10, symbol=SOL)
    # SOL isolated at 10x: IWB = 10*100/10 = 100; cross wallet 10000 - 100 = 9900
    assert sim.position(SOL).isolated_wallet == 100
    assert sim.account().wallet == 9900
    # BTC to 22000: MB = 9900 - 8000 = 1900; MM = 88 + 100 = 188 -> ratio 0.099, no liquidation
    assert not of_type(sim.tick(22000, symbol=BTC), "liquidation")
    # ETH to 1500: MB = 9900 - 8000 - 5000 = -3100 <= 0 -> both cross positions liquidated
    events = sim.tick(1500, symbol=ETH)
    liqs = of_type(events, "liquidation")
    assert sorted(e["symbol"] for e in liqs) == [BTC, ETH]
    assert all(e["scope"] == "account" for e in liqs)
    account = sim.account()
    # the cross wallet is floored at 0 (negative balance protection, §7.4)
    assert account.wallet == 0
    # the whole cross wallet is lost: 9900
    assert sum(e["loss"] for e in liqs) == 9900
    # the margin balance was -3100: nothing left for a clearance fee, the fund covers -3100
    assert sum(e["insuranceFundDelta"] for e in liqs) == -3100
    # the simulated fund holds nothing: the deficit (on BTC, the last, losing one) is
    # auto-deleveraged (§7.5) and the fund stays at 0
    assert [(e["symbol"], e["amount"]) for e in of_type(events, "adl")] == [(BTC, 3100)]
    assert account.insurance_fund == 0
    # the isolated SOL position and its wallet are untouched (§7.3)
    sol = sim.position(SOL)
    assert (sol.contracts, sol.isolated_wallet) == (10, 100)
    assert set(account.positions) == {SOL}
    sim.check_ledger()


def test_cross_liquidation_cancels_cross_orders_only() -> None:
    # cross BTC long 1 @30000 at 20x with wallet 3000 (LP 27108.43: leverage does not enter a
    # cross LP, §3.1); a resting cross ETH bid and an isolated SOL bid. The liquidation cancels
    # the cross orders (§7.1) and keeps the isolated one.
    sim = Sim(wallet=3000, leverage=20)
    sim.tick(30000)
    sim.tick(2000, symbol=ETH, bid=1990, ask=2000)
    sim.tick(100, symbol=SOL, bid=99, ask=100)
    sim.cmd("set_margin_mode", symbol=SOL, marginMode="isolated")
    sim.order("open", "buy", 1)  # IM 1500
    assert types(sim.order("eth-bid", "buy", 1, price=1500, symbol=ETH)) == ["order_accepted"]
    assert types(sim.order("sol-bid", "buy", 1, price=90, symbol=SOL)) == ["order_accepted"]
    # reserved: 1500/20 + 90/20 = 75 + 4.5
    assert sim.account().order_margin == D("79.5")
    events = sim.tick(27100)
    assert one(events, "liquidation")["scope"] == "account"
    assert [e["id"] for e in of_type(events, "order_cancelled")] == ["eth-bid"]
    assert set(sim.account().orders) == {"sol-bid"}
    assert sim.account().order_margin == D("4.5")
    sim.check_ledger()


@pytest.mark.parametrize("mode", ["isolated", "cross"])
def test_liquidation_wins_over_stop_loss_crossed_in_the_same_tick(mode: str) -> None:
    # isolated: IWB 3000; cross: wallet 3000 and the only position. LP = 27000/0.996 = 27108.43.
    sim = Sim(wallet=10_000 if mode == "isolated" else 3000, mode=mode, leverage=10)
    sim.tick(30000)
    events = sim.order("open", "buy", 1, stopLossPrice=28000)
    sl_id = next(e["id"] for e in of_type(events, "order_accepted") if e["id"] != "open")
    # one tick crosses both the stop (28000) and the liquidation price
    events = sim.tick(27000)
    assert not of_type(events, "stop_triggered")
    assert not of_type(events, "fill")
    assert one(events, "liquidation")["markPrice"] == 27000
    assert sl_id in [e["id"] for e in of_type(events, "order_cancelled")]
    assert not sim.account().orders
    sim.check_ledger()


def test_liquidation_watches_the_mark_even_when_stops_watch_last() -> None:
    # docs/rules.md §0/§4: margin and liquidation use the mark, never last. LP 27108.43.
    sim = Sim(wallet=10_000, mode="isolated", leverage=10, trigger_price="last")
    sim.tick(30000, last=30000)
    sim.order("open", "buy", 1)
    assert not of_type(sim.tick(28000, last=20000), "liquidation")
    assert one(sim.tick(27100, last=28000), "liquidation")["markPrice"] == 27100
    sim.check_ledger()


def test_stop_loss_crossed_on_an_earlier_tick_executes_first() -> None:
    sim = Sim(wallet=10_000, mode="isolated", leverage=10)
    sim.tick(30000)
    sim.order("open", "buy", 1, stopLossPrice=28000)
    events = sim.tick(27900)  # above the liquidation price 27108.43
    assert one(events, "stop_triggered")["kind"] == "stop_loss"
    assert one(events, "fill")["realizedPnl"] == -2100
    assert not of_type(sim.tick(27000), "liquidation")
    sim.check_ledger()


@pytest.mark.parametrize("mode", ["isolated", "cross"])
def test_liquidation_at_exactly_ratio_one(mode: str) -> None:
    # Long Q=1 EP=30000 with 3108 of margin (isolated: 3000 at 10x + add 108; cross: the wallet).
    # MB(P) = 3108 + (P - 30000), MM(P) = 0.004*P. MB = MM at P = 26892/0.996 = 27000 exactly.
    if mode == "isolated":
        sim = Sim(wallet=10_000, mode="isolated", leverage=10)
        sim.tick(30000)
        sim.order("open", "buy", 1)
        sim.cmd("add_margin", symbol=BTC, amount=108)
        assert sim.position().isolated_wallet == 3108
    else:
        sim = Sim(wallet=3108, mode="cross", leverage=10)
        sim.tick(30000)
        sim.order("open", "buy", 1)
    assert sim.view().liquidation_price == 27000
    # at 27000.01: MB = 108.01 > MM = 108.00004 -> not liquidated
    assert not of_type(sim.tick("27000.01"), "liquidation")
    # at 27000: MB = 108 = MM -> ratio exactly 1 -> liquidated (§4.3)
    liq = one(sim.tick(27000), "liquidation")
    assert liq["markPrice"] == 27000
    # clearance fee = min(108, 0.005*27000 = 135) = 108: the whole 3108 is lost
    assert liq["loss"] == 3108
    assert liq["insuranceFundDelta"] == 108
    sim.check_ledger()


def test_funding_pushes_isolated_position_into_liquidation() -> None:
    sim = Sim(wallet=10_000, mode="isolated", leverage=10)
    sim.tick(30000)
    sim.order("open", "buy", 1)
    sim.tick(28000)  # MB = 3000 - 2000 = 1000, MM = 112: safe
    assert sim.position() is not None
    # funding -1*28000*0.032 = -896 from the isolated wallet: IWB 2104, MB 104 <= MM 112
    events = sim.funding("0.032")
    assert types(events).index("funding") < types(events).index("liquidation")
    assert one(events, "funding")["amount"] == -896
    liq = one(events, "liquidation")
    # fee = min(104, 0.005*28000 = 140) = 104; loss = the whole 2104
    assert (liq["loss"], liq["insuranceFundDelta"]) == (2104, 104)
    assert sim.position() is None
    # cross wallet: 10000 - 3000 = 7000, untouched
    assert sim.account().wallet == 7000
    sim.check_ledger()


# ---------------------------------------------------------------------------- margin transfers


def test_ex12_add_margin_moves_the_liquidation_price() -> None:
    sim = Sim(wallet=10_000, mode="isolated", leverage=10)
    sim.tick(30000)
    sim.order("open", "buy", 1)
    # LP = (3000 - 30000)/(0.004 - 1) = 27108.433735
    assert close(sim.view().liquidation_price, exact_div(-27000, "-0.996"))
    ev = one(sim.cmd("add_margin", symbol=BTC, amount=1000), "margin_changed")
    assert (ev["symbol"], ev["amount"], ev["isolatedWallet"]) == (BTC, 1000, 4000)
    assert sim.account().wallet == 6000
    # LP = (4000 - 30000)/(0.004 - 1) = 26104.417671
    assert close(sim.view().liquidation_price, exact_div(-26000, "-0.996"))
    sim.check_ledger()


def test_max_addable_margin_is_the_available_cross_balance() -> None:
    # isolated long 1 @30000 10x from a 10000 wallet: cross 7000, no cross positions or orders:
    # max addable = min(crossWB - 0 - 0, available 7000) = 7000 (docs/rules.md §8.4)
    sim = Sim(wallet=10_000, mode="isolated", leverage=10)
    sim.tick(30000)
    sim.order("open", "buy", 1)
    ev = rejected(sim.cmd("add_margin", symbol=BTC, amount="7000.01"))
    assert (ev["code"], ev["id"]) == ("MARGIN_INSUFFICIENT", None)
    ev = one(sim.cmd("add_margin", symbol=BTC, amount=7000), "margin_changed")
    assert (ev["amount"], ev["isolatedWallet"]) == (7000, 10000)
    assert sim.account().wallet == 0
    sim.check_ledger()


def test_ex12_remove_500_at_entry_is_not_permitted_by_ex13_rule() -> None:
    # at mark = entry, 10x: min(3000 - 120, 3000 + 0 - 3000) = 0 removable
    sim = Sim(wallet=10_000, mode="isolated", leverage=10)
    sim.tick(30000)
    sim.order("open", "buy", 1)
    ev = rejected(sim.cmd("reduce_margin", symbol=BTC, amount=500))
    assert (ev["code"], ev["id"]) == ("MARGIN_INSUFFICIENT", None)
    assert sim.position().isolated_wallet == 3000
    sim.check_ledger()


@pytest.mark.parametrize(
    ("iwb", "side", "mark", "max_removable"),
    [
        # max(0, min(IWB - MM, IWB + q*(MP - EP) - MP*Q/L)), EP 30000, 10x (docs/rules.md §8.4)
        (4000, "buy", 31000, 1900),  # min(4000-124, 4000+1000-3100)
        (4000, "buy", 29000, 100),  # min(4000-116, 4000-1000-2900)
        (4000, "buy", 28000, 0),  # 4000-2000-2800 < 0
        (3000, "sell", 29000, 1100),  # min(3000-116, 3000+1000-2900)
        (3000, "buy", 40000, 2840),  # min(3000-160, 3000+10000-4000)
    ],
)
def test_ex13_max_removable_margin(iwb: int, side: str, mark: int, max_removable: int) -> None:
    sim = Sim(wallet=100_000, mode="isolated", leverage=10)
    sim.tick(30000)
    sim.order("open", side, 1)
    if iwb > 3000:
        sim.cmd("add_margin", symbol=BTC, amount=iwb - 3000)
    assert sim.position().isolated_wallet == iwb
    sim.tick(mark)
    over = max_removable + 1 if max_removable else D("0.01")
    ev = rejected(sim.cmd("reduce_margin", symbol=BTC, amount=over))
    assert (ev["code"], ev["id"]) == ("MARGIN_INSUFFICIENT", None)
    assert sim.position().isolated_wallet == iwb
    if max_removable:
        ev = one(sim.cmd("reduce_margin", symbol=BTC, amount=max_removable), "margin_changed")
        assert (ev["amount"], ev["isolatedWallet"]) == (-max_removable, iwb - max_removable)
        assert sim.position() is not None
    sim.check_ledger()


# ---------------------------------------------------------------------------- deposits


def test_deposit_and_withdraw_emit_balance_changed() -> None:
    sim = Sim(wallet=1000)
    ev = one(sim.cmd("deposit", amount=500), "balance_changed")
    assert (ev["amount"], ev["wallet"]) == (500, 1500)
    ev = one(sim.cmd("withdraw", amount=200), "balance_changed")
    assert (ev["amount"], ev["wallet"]) == (-200, 1300)
    ev = rejected(sim.cmd("withdraw", amount="1300.01"))
    assert (ev["code"], ev["id"]) == ("MARGIN_INSUFFICIENT", None)
    ev = one(sim.cmd("withdraw", amount=1300), "balance_changed")
    assert ev["wallet"] == 0
    ledger = sim.account().ledger
    assert (ledger.deposits, ledger.withdrawals) == (500, 1500)
    sim.check_ledger()


def test_withdraw_is_bounded_by_open_position_margin() -> None:
    # cross long 1 @30000, 10x, wallet 5000 at mark 30000:
    # min(WB - MM, WB + UPNL - IM) = min(5000 - 120, 5000 - 3000) = 2000 (docs/rules.md §3.3)
    sim = Sim(wallet=5000, leverage=10)
    sim.tick(30000)
    sim.order("open", "buy", 1)
    assert rejected(sim.cmd("withdraw", amount="2000.01"))["code"] == "MARGIN_INSUFFICIENT"
    assert one(sim.cmd("withdraw", amount=2000), "balance_changed")["wallet"] == 3000
    sim.check_ledger()


def test_simulate_lines_events_carry_the_latest_ts() -> None:
    # docs/contracts.md §2: events carry their line's ts, or the latest ts seen when the line has
    # none
    sim = Sim()
    lines = [
        json.dumps(sim.config),
        json.dumps({"type": "tick", "ts": 5000, "symbol": BTC, "mark": 30000}),
        json.dumps(
            {
                "type": "order",
                "account": "a",
                "id": "o",
                "symbol": BTC,
                "orderType": "market",
                "side": "buy",
                "amount": 1,
            }
        ),
        json.dumps({"type": "deposit", "account": "a", "amount": 10, "ts": 7000}),
    ]
    events = list(simulate_lines(lines))
    assert [(e["type"], e["ts"]) for e in events] == [
        ("order_accepted", 5000),
        ("fill", 5000),
        ("balance_changed", 7000),
        ("final", 7000),
    ]
    state = events[-1]["accounts"]["a"]
    assert state["wallet"] == 100_010
    [pos] = state["positions"]
    assert (pos["symbol"], pos["contracts"], pos["entryPrice"]) == (BTC, "1", "30000")


def test_cancelled_orders_do_not_pile_up_in_the_trigger_and_limit_heaps() -> None:
    """Orders cancelled far from the price leave the heaps lazily; a long-running daemon that
    places and cancels protective orders must not keep every one of them."""
    sim = Sim()
    sim.tick(30000)
    for i in range(2000):
        sim.order(f"sl{i}", "sell", "0.001", stopLossPrice=1000 + i, reduceOnly=True)
        sim.order(f"bid{i}", "buy", "0.001", price=100 + i)
        sim.cmd("cancel", id=f"sl{i}")
        sim.cmd("cancel", id=f"bid{i}")
        sim.tick(30000 + i % 7)  # the tops stay far from the price: nothing pops them
    market = sim.engine.markets[BTC]
    falls, rises = market.triggers["mark"]
    assert len(falls) + len(rises) <= 64
    assert len(market.buy_limits) <= 64
    # Open orders survive a compaction.
    sim.order("keep", "buy", "0.001", price=50)
    for i in range(200):
        sim.order(f"x{i}", "buy", "0.001", price=60 + i)
        sim.cmd("cancel", id=f"x{i}")
    assert any(e[2].id == "keep" for e in market.buy_limits)
    assert "keep" in sim.account().orders


def _orders_alive() -> int:
    from guardbot.core.orders import Order

    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is Order)


def test_orders_that_left_the_book_are_not_retained() -> None:
    """Issue 16 (RSS slope of the soak): every cycle opens a position with a stop-loss and a
    take-profit, rests a reduce-only limit on it, then closes it, which cancels them far from
    the price. The orders alive after 2N cycles are those after N: a cancelled order leaves its
    heap at once, not when the price reaches it (with nothing due, a tick never looks)."""
    sim = Sim()
    sim.tick(30000)

    def cycles(start: int, n: int) -> None:
        for i in range(start, start + n):
            sim.order(f"o{i}", "buy", "0.01", stopLossPrice=25000 + i, takeProfitPrice=40000 + i)
            sim.order(f"l{i}", "sell", "0.005", price=35000 + i, reduceOnly=True)
            closed = sim.order(f"c{i}", "sell", "0.01", reduceOnly=True)
            assert len(of_type(closed, "order_cancelled")) == 3
            sim.tick(30000 + i % 7)

    n = 25  # 2N stays under the heaps' compaction size (64): only the eager removal bounds it
    cycles(0, n)
    after_n = _orders_alive()
    cycles(n, n)
    assert _orders_alive() == after_n
    market = sim.engine.markets[BTC]
    assert [len(h) for h in market.triggers["mark"]] == [0, 0]
    assert (market.buy_limits, market.sell_limits, market.trailing) == ([], [], [])
