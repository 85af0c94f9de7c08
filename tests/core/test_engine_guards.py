"""Order admission and guard policies: one test per rejection code of docs/contracts.md §2.

Rejections come back as ``order_rejected`` events with the order's id (``id`` null for
``set_leverage``, ``set_margin_mode`` and ``reduce_margin``); nothing else changes.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.core.enginekit import BTC, DAY_MS, ETH, NOPE, D, Sim, of_type, one, rejected, types

# ---------------------------------------------------------------------------- INVALID_ORDER


def test_invalid_order_duplicate_open_id() -> None:
    sim = Sim()
    sim.tick(30000, bid=29990, ask=30000)
    sim.order("x", "buy", 1, price=29000)
    ev = rejected(sim.order("x", "buy", 1, price=28000))
    assert (ev["code"], ev["id"]) == ("INVALID_ORDER", "x")
    assert sim.account().orders["x"].price == 29000
    sim.check_ledger()


def test_invalid_order_post_only_market_and_unknown_cancel() -> None:
    sim = Sim()
    sim.tick(30000)
    assert rejected(sim.order("po", "buy", 1, postOnly=True))["code"] == "INVALID_ORDER"
    ev = rejected(sim.cmd("cancel", id="nothing"))
    assert (ev["code"], ev["id"]) == ("INVALID_ORDER", "nothing")
    assert sim.position() is None


def test_margin_transfer_needs_an_isolated_position() -> None:
    sim = Sim(mode="cross")
    sim.tick(30000)
    ev = rejected(sim.cmd("add_margin", symbol=BTC, amount=100))  # no position at all
    assert ev["id"] is None
    sim.order("open", "buy", 1)
    ev = rejected(sim.cmd("reduce_margin", symbol=BTC, amount=100))  # a cross position
    assert ev["id"] is None
    sim.check_ledger()


# ---------------------------------------------------------------------------- UNKNOWN_SYMBOL


def test_unknown_symbol() -> None:
    sim = Sim()
    sim.tick(1, symbol=NOPE)
    ev = rejected(sim.order("x", "buy", 1, symbol=NOPE))
    assert (ev["code"], ev["id"]) == ("UNKNOWN_SYMBOL", "x")
    ev = rejected(sim.cmd("set_leverage", symbol=NOPE, leverage=5))
    assert (ev["code"], ev["id"]) == ("UNKNOWN_SYMBOL", None)
    ev = rejected(sim.cmd("set_margin_mode", symbol=NOPE, marginMode="isolated"))
    assert (ev["code"], ev["id"]) == ("UNKNOWN_SYMBOL", None)


# ---------------------------------------------------------------------------- LEVERAGE_EXCEEDS_MAX


def test_leverage_policy_cap() -> None:
    sim = Sim(guards={"max_leverage": 20, "max_leverage_per_symbol": {ETH: 5}})
    sim.tick(30000)
    sim.tick(2000, symbol=ETH)
    ev = rejected(sim.cmd("set_leverage", symbol=BTC, leverage=21))
    assert (ev["code"], ev["id"]) == ("LEVERAGE_EXCEEDS_MAX", None)
    assert (
        one(sim.cmd("set_leverage", symbol=BTC, leverage=20), "leverage_changed")["leverage"] == 20
    )
    # the per-symbol cap is the lower one for ETH
    ev = rejected(sim.cmd("set_leverage", symbol=ETH, leverage=6))
    assert (ev["code"], ev["id"]) == ("LEVERAGE_EXCEEDS_MAX", None)
    assert one(sim.cmd("set_leverage", symbol=ETH, leverage=5), "leverage_changed")["leverage"] == 5


def test_ex08_order_into_a_tier_below_the_leverage_is_rejected() -> None:
    sim = Sim(wallet=100_000)
    sim.tick(40000, bid=40000, ask=40000)
    assert types(sim.cmd("set_leverage", symbol=BTC, leverage=100)) == ["leverage_changed"]
    sim.order("pos", "buy", 6)  # 6 * 40000 = 240,000: tier 2 (50k < n <= 250k), max 100x
    # + 0.5 * 40000 = 20,000 -> 260,000: tier 3 (max 50x) < 100x
    ev = rejected(sim.order("more", "buy", "0.5"))
    assert (ev["code"], ev["id"]) == ("LEVERAGE_EXCEEDS_MAX", "more")
    assert sim.position().contracts == 6
    # + 0.25 * 40000 = 10,000 -> exactly 250,000: the cap belongs to tier 2 (100x): accepted
    assert one(sim.order("edge", "buy", "0.25"), "fill")["amount"] == D("0.25")
    sim.check_ledger()


def test_an_order_beyond_the_last_tier_is_refused_naming_the_table_end() -> None:
    # The test ETH table ends at 50,000,000 USDT (bundled tables may end below the venue's last
    # tier): nothing is known beyond it, so such an order is refused, whatever the leverage,
    # rather than priced with the last tier's rate.
    sim = Sim(wallet=100_000_000, leverage=1)
    sim.tick(2000, symbol=ETH, bid=2000, ask=2000)
    ev = rejected(sim.order("huge", "buy", 25001, symbol=ETH))  # 50,002,000 USDT
    assert (ev["code"], ev["id"]) == ("LEVERAGE_EXCEEDS_MAX", "huge")
    assert ev["reason"] == (
        "50002000 USDT of ETH/USDT:USDT is beyond its tier table, whose last tier ends at "
        "50000000 USDT"
    )
    assert sim.position(ETH) is None
    # up to the last cap the order is an ordinary one (tier 9, 2x)
    assert one(sim.order("edge", "buy", 25000, symbol=ETH), "fill")["amount"] == 25000


def test_ex08_position_counts_at_mark_when_a_limit_rests_elsewhere() -> None:
    # docs/rules.md §2.2: the max-leverage check takes the position notional (at mark, N = Q*MP)
    # plus the open-order notional. Position 6 @ mark 40000 = 240,000; a buy limit 0.5 @30000
    # adds 15,000 -> 255,000: tier 3 (max 50x) < 100x -> rejected.
    sim = Sim(wallet=100_000)
    sim.tick(40000, bid=40000, ask=40000)
    sim.cmd("set_leverage", symbol=BTC, leverage=100)
    sim.order("pos", "buy", 6)
    events = sim.order("lim", "buy", "0.5", price=30000)
    ev = rejected(events)
    assert (ev["code"], ev["id"]) == ("LEVERAGE_EXCEEDS_MAX", "lim")
    assert "lim" not in sim.account().orders


def test_ex08_set_leverage_counts_resting_orders() -> None:
    # position 6 @ mark 40000 = 240,000 at 20x; a resting buy limit 0.5 @39000 adds 19,500:
    # 259,500 is in tier 3 (max 50x), so 100x is refused; without the order, 240,000 is in
    # tier 2 (max 100x) and 100x is fine (docs/rules.md §8.3: position + open-order notional).
    sim = Sim(wallet=100_000, leverage=20)
    sim.tick(40000, bid=39990, ask=40000)
    sim.order("pos", "buy", 6)
    assert types(sim.order("lim", "buy", "0.5", price=39000)) == ["order_accepted"]
    ev = rejected(sim.cmd("set_leverage", symbol=BTC, leverage=100))
    assert (ev["code"], ev["id"]) == ("LEVERAGE_EXCEEDS_MAX", None)
    sim.cmd("cancel", id="lim")
    assert (
        one(sim.cmd("set_leverage", symbol=BTC, leverage=100), "leverage_changed")["leverage"]
        == 100
    )
    sim.check_ledger()


def test_ex08_set_leverage_against_the_tier_of_the_position() -> None:
    sim = Sim(wallet=100_000, leverage=20)
    sim.tick(40000, bid=40000, ask=40000)
    sim.order("pos", "buy", "7.5")  # 300,000: tier 3, max 50x
    ev = rejected(sim.cmd("set_leverage", symbol=BTC, leverage=75))
    assert (ev["code"], ev["id"]) == ("LEVERAGE_EXCEEDS_MAX", None)
    ev = one(sim.cmd("set_leverage", symbol=BTC, leverage=50), "leverage_changed")
    assert (ev["symbol"], ev["leverage"]) == (BTC, 50)
    assert sim.position().leverage == 50
    sim.check_ledger()


def test_ex08_set_leverage_100_at_250000_is_accepted() -> None:
    sim = Sim(wallet=100_000, leverage=20)
    sim.tick(40000, bid=40000, ask=40000)
    sim.order("pos", "buy", "6.25")  # 250,000 exactly: tier 2, max 100x
    assert (
        one(sim.cmd("set_leverage", symbol=BTC, leverage=100), "leverage_changed")["leverage"]
        == 100
    )


# ---------------------------------------------------------------------------- MARGIN_INSUFFICIENT


def test_margin_insufficient_market_order() -> None:
    sim = Sim(wallet=1000, leverage=10)
    sim.tick(20000)
    # 1 * 20000 / 10 = 2000 > 1000
    ev = rejected(sim.order("big", "buy", 1))
    assert (ev["code"], ev["id"]) == ("MARGIN_INSUFFICIENT", "big")
    # 0.5 * 20000 / 10 = 1000 = available: accepted
    assert one(sim.order("fit", "buy", "0.5"), "fill")["amount"] == D("0.5")
    sim.check_ledger()


@pytest.mark.parametrize(
    ("side", "cost"),
    [
        # EX22: IM = 1 * 9253.3 / 20 = 462.665; long open loss = |min(0, +1*(9259.84-9253.3))| = 0
        ("buy", D("462.665")),
        # short open loss = |min(0, -1*(9259.84-9253.3))| = 6.54 -> 469.205
        ("sell", D("469.205")),
    ],
)
def test_ex22_cost_to_open_decides_admission(side: str, cost: Decimal) -> None:
    for wallet, admitted in ((cost, True), (cost - D("0.001"), False)):
        sim = Sim(wallet=wallet, leverage=20)
        sim.tick("9259.84", bid=9250, ask=9260)  # the limit at 9253.3 does not cross: it rests
        events = sim.order("lim", side, 1, price="9253.3")
        if admitted:
            assert types(events) == ["order_accepted"], events
        else:
            assert rejected(events)["code"] == "MARGIN_INSUFFICIENT"
        sim.check_ledger()


def test_resting_order_margin_is_reserved_and_released_on_cancel() -> None:
    sim = Sim(wallet=5000, leverage=10)
    sim.tick(30000, bid=29990, ask=30000)
    # each buy limit 1 @29000 costs 2900 (no open loss: the mark is above the price)
    assert types(sim.order("l1", "buy", 1, price=29000)) == ["order_accepted"]
    # 5000 - 2900 = 2100 < 2900
    assert rejected(sim.order("l2", "buy", 1, price=29000))["code"] == "MARGIN_INSUFFICIENT"
    assert one(sim.cmd("cancel", id="l1"), "order_cancelled")["id"] == "l1"
    assert types(sim.order("l2", "buy", 1, price=29000)) == ["order_accepted"]
    sim.check_ledger()


# ---------------------------------------------------------------------------- REDUCE_ONLY_*


def test_reduce_only_no_position() -> None:
    sim = Sim()
    sim.tick(30000)
    ev = rejected(sim.order("ro", "sell", 1, reduceOnly=True))
    assert (ev["code"], ev["id"]) == ("REDUCE_ONLY_NO_POSITION", "ro")


def test_reduce_only_would_increase_position() -> None:
    sim = Sim()
    sim.tick(30000)
    sim.order("open", "sell", 1)
    ev = rejected(sim.order("ro", "sell", 1, reduceOnly=True))
    assert (ev["code"], ev["id"]) == ("REDUCE_ONLY_WOULD_INCREASE_POSITION", "ro")
    assert sim.position().contracts == 1
    sim.check_ledger()


def test_reduce_only_orders_are_cancelled_when_the_position_closes() -> None:
    sim = Sim()
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("open", "buy", 1)
    assert types(sim.order("tp", "sell", 1, price=35000, reduceOnly=True)) == ["order_accepted"]
    events = sim.order("close", "sell", 1)
    assert one(events, "fill")["amount"] == 1
    assert one(events, "order_cancelled")["id"] == "tp"
    assert not sim.account().orders
    sim.check_ledger()


def test_reduce_only_fully_covered_by_resting_orders_is_refused() -> None:
    # docs/rules.md §9.1 (-4118): resting reduce-only orders already offset the whole position
    sim = Sim()
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("open", "buy", 1)
    assert types(sim.order("tp1", "sell", 1, price=35000, reduceOnly=True)) == ["order_accepted"]
    ev = rejected(sim.order("tp2", "sell", 1, price=36000, reduceOnly=True))
    assert ev["code"].startswith("REDUCE_ONLY_")
    assert set(sim.account().orders) == {"tp1"}


def test_resting_reduce_only_orders_are_trimmed_farthest_first() -> None:
    # long 2; reduce-only sells 1 @35000 and 1 @36000; a market sell of 1 leaves a long of 1:
    # the order farthest from the market (36000) goes
    sim = Sim()
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("open", "buy", 2)
    sim.order("near", "sell", 1, price=35000, reduceOnly=True)
    sim.order("far", "sell", 1, price=36000, reduceOnly=True)
    events = sim.order("cut", "sell", 1)
    assert one(events, "order_cancelled")["id"] == "far"
    assert set(sim.account().orders) == {"near"}
    fill = one(sim.tick(35100, bid=35100, ask=35200), "fill")
    assert (fill["id"], fill["amount"], fill["price"]) == ("near", 1, 35000)
    assert sim.position() is None
    sim.check_ledger()


# ---------------------------------------------------------------------------- NOTIONAL / EXPOSURE


def test_notional_exceeds_max() -> None:
    sim = Sim(guards={"max_position_notional": 50000})
    sim.tick(30000, bid=30000, ask=30000)
    # 2 * 30000 = 60000 > 50000
    ev = rejected(sim.order("big", "buy", 2))
    assert (ev["code"], ev["id"]) == ("NOTIONAL_EXCEEDS_MAX", "big")
    sim.order("one", "buy", 1)
    # 1.7 * 30000 = 51000 > 50000
    assert rejected(sim.order("more", "buy", "0.7"))["code"] == "NOTIONAL_EXCEEDS_MAX"
    # exactly 50000 is within the limit
    sim.tick(25000, bid=25000, ask=25000)
    assert one(sim.order("edge", "buy", 1), "fill")["amount"] == 1  # 2 * 25000 = 50000
    sim.check_ledger()


def test_exposure_exceeds_max() -> None:
    sim = Sim(guards={"max_account_exposure": 100000})
    sim.tick(30000, bid=30000, ask=30000)
    sim.tick(2000, symbol=ETH, bid=2000, ask=2000)
    sim.order("btc", "buy", 2)  # 60000
    # 60000 + 25 * 2000 = 110000 > 100000
    ev = rejected(sim.order("eth", "buy", 25, symbol=ETH))
    assert (ev["code"], ev["id"]) == ("EXPOSURE_EXCEEDS_MAX", "eth")
    # 60000 + 20 * 2000 = 100000: within
    assert one(sim.order("eth2", "buy", 20, symbol=ETH), "fill")["amount"] == 20
    sim.check_ledger()


# ---------------------------------------------------------------------------- STOP_LOSS_REQUIRED


def test_stop_loss_required() -> None:
    sim = Sim(guards={"require_stop_loss": True})
    sim.tick(30000)
    ev = rejected(sim.order("naked", "buy", 1))
    assert (ev["code"], ev["id"]) == ("STOP_LOSS_REQUIRED", "naked")
    events = sim.order("safe", "buy", 1, stopLossPrice=28000)
    assert one(events, "fill")["amount"] == 1
    # closing needs no stop
    assert one(sim.order("close", "sell", 1, reduceOnly=True), "fill")["amount"] == 1
    sim.check_ledger()


# ---------------------------------------------------------------------------- trading states


def test_daily_loss_limit_enters_reducing_until_the_next_utc_day() -> None:
    sim = Sim(guards={"daily_loss_limit": 500})
    t0 = 10 * DAY_MS + 1000
    sim.tick(30000, ts=t0)
    sim.order("open", "buy", 2)
    sim.tick(29400)
    # realized 1 * (29400 - 30000) = -600 <= -500
    events = sim.order("cut", "sell", 1)
    state = one(events, "trading_state")
    assert state["state"] == "reducing"
    assert sim.account().state == "reducing"
    ev = rejected(sim.order("again", "buy", 1))
    assert (ev["code"], ev["id"]) == ("TRADING_STATE_REDUCING", "again")
    ev = rejected(sim.order("short", "sell", 2))  # would flip: it increases exposure
    assert ev["code"] == "TRADING_STATE_REDUCING"
    # reducing orders are fine
    assert one(sim.order("trim", "sell", "0.5"), "fill")["amount"] == D("0.5")
    # still the same UTC day
    assert rejected(sim.order("late", "buy", 1, ts=11 * DAY_MS - 1))["code"] == (
        "TRADING_STATE_REDUCING"
    )
    # next UTC day: the next order puts the account back to active and is accepted
    events = sim.order("fresh", "buy", 1, ts=11 * DAY_MS)
    state = one(events, "trading_state")
    assert state["state"] == "active"
    assert types(events).index("trading_state") < types(events).index("order_accepted")
    assert one(events, "fill")["amount"] == 1
    sim.check_ledger()


@pytest.mark.parametrize("first_event_of_the_day", ["funding", "limit_fill"])
def test_reducing_ends_at_the_first_order_of_the_next_day_whatever_came_before(
    first_event_of_the_day: str,
) -> None:
    # The daily loss is per UTC day; the next UTC day starts fresh and its first order puts the
    # account back to active. A funding payment or a resting fill earlier that new day must not
    # keep yesterday's state.
    sim = Sim(guards={"daily_loss_limit": 500})
    sim.tick(30000, bid=30000, ask=30000, ts=10 * DAY_MS + 1000)
    sim.order("open", "buy", 3)
    sim.tick(29400, bid=29400, ask=29400)
    # realized 1 * (29400 - 30000) = -600 <= -500
    assert one(sim.order("cut", "sell", 1), "trading_state")["state"] == "reducing"
    # a reduce-only take-profit is still accepted while reducing
    assert types(sim.order("tp", "sell", 1, price=30100, reduceOnly=True)) == ["order_accepted"]
    day2 = 11 * DAY_MS
    if first_event_of_the_day == "funding":
        # -q*MP*r = -2 * 29400 * 0.0001 = -5.88, paid on the new day
        events = sim.line({"type": "funding", "symbol": BTC, "rate": "0.0001"}, day2)
        assert one(events, "funding")["amount"] == D("-5.88")
    else:
        # the take-profit fills on the new day: +1 * (30100 - 30000) = +100
        events = sim.tick(30200, bid=30200, ask=30200, ts=day2)
        assert one(events, "fill")["realizedPnl"] == 100
    events = sim.order("fresh", "buy", 1, ts=day2 + 1000)
    assert one(events, "trading_state")["state"] == "active"
    assert one(events, "fill")["amount"] == 1
    sim.check_ledger()


def test_trading_halted_by_command() -> None:
    sim = Sim()
    sim.tick(30000, bid=29990, ask=30000)
    sim.order("rest", "buy", 1, price=29000)
    ev = one(sim.cmd("set_trading_state", state="halted", reason="ops"), "trading_state")
    assert ev["state"] == "halted"
    ev = rejected(sim.order("x", "buy", 1))
    assert (ev["code"], ev["id"]) == ("TRADING_HALTED", "x")
    # reduce-only is refused too: halted means cancels only
    assert rejected(sim.order("y", "sell", 1, reduceOnly=True))["code"] in (
        "TRADING_HALTED",
        "REDUCE_ONLY_NO_POSITION",
    )
    ev = rejected(sim.cmd("set_leverage", symbol=BTC, leverage=5))
    assert (ev["code"], ev["id"]) == ("TRADING_HALTED", None)
    # cancels still work
    assert one(sim.cmd("cancel", id="rest"), "order_cancelled")["id"] == "rest"
    one(sim.cmd("set_trading_state", state="active"), "trading_state")
    assert one(sim.order("z", "buy", 1), "fill")["amount"] == 1
    sim.check_ledger()


# ---------------------------------------------------------------------------- margin mode


def test_margin_mode_change_with_open_position() -> None:
    sim = Sim()
    sim.tick(30000)
    sim.order("open", "buy", 1)
    ev = rejected(sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated"))
    assert (ev["code"], ev["id"]) == ("MARGIN_MODE_CHANGE_WITH_OPEN_POSITION", None)
    assert not sim.position().isolated
    sim.order("close", "sell", 1)
    ev = one(sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated"), "margin_mode_changed")
    assert (ev["symbol"], ev["marginMode"]) == (BTC, "isolated")
    sim.check_ledger()


def test_margin_mode_change_with_open_order() -> None:
    sim = Sim()
    sim.tick(30000, bid=29990, ask=30000)
    sim.order("rest", "buy", 1, price=29000)
    ev = rejected(sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated"))
    assert (ev["code"], ev["id"]) == ("MARGIN_MODE_CHANGE_WITH_OPEN_POSITION", None)
    # another symbol is free to switch
    sim.tick(2000, symbol=ETH)
    assert one(sim.cmd("set_margin_mode", symbol=ETH, marginMode="isolated"), "margin_mode_changed")


def test_same_margin_mode_is_a_no_op() -> None:
    sim = Sim(mode="cross")
    sim.tick(30000)
    sim.order("open", "buy", 1)
    # even with a position: switching to the current mode is Binance -4046, a no-op
    assert sim.cmd("set_margin_mode", symbol=BTC, marginMode="cross") == []


# ---------------------------------------------------------------------------- ORDER_WOULD_TRIGGER


@pytest.mark.parametrize(
    ("side", "params"),
    [
        ("buy", {"stopLossPrice": 30001}),  # a long's stop above the mark
        ("buy", {"stopLossPrice": 30000}),  # on the mark: already crossed (inclusive)
        ("buy", {"takeProfitPrice": 29999}),  # a long's take-profit below the mark
        ("sell", {"stopLossPrice": 29999}),  # a short's stop below the mark
        ("buy", {"triggerPrice": 29000}),  # buy stop below the mark: fires at once
        ("sell", {"triggerPrice": 31000}),  # sell stop above the mark
    ],
)
def test_order_would_trigger_immediately(side: str, params: dict[str, int]) -> None:
    sim = Sim()
    sim.tick(30000)
    events = sim.order("x", side, 1, **params)
    ev = rejected(events)
    assert (ev["code"], ev["id"]) == ("ORDER_WOULD_TRIGGER_IMMEDIATELY", "x")
    assert not of_type(events, "fill")
    assert sim.position() is None
    assert not sim.account().orders


def test_standalone_stop_loss_already_crossed_is_rejected() -> None:
    sim = Sim()
    sim.tick(30000)
    sim.order("open", "buy", 1)
    ev = rejected(sim.order("sl", "sell", 1, reduceOnly=True, stopLossPrice=30500))
    assert ev["code"] == "ORDER_WOULD_TRIGGER_IMMEDIATELY"
    assert types(sim.order("sl2", "sell", 1, reduceOnly=True, stopLossPrice=29500)) == [
        "order_accepted"
    ]
    stop = one(sim.tick(29500), "stop_triggered")
    assert (stop["id"], stop["kind"]) == ("sl2", "stop_loss")
    sim.check_ledger()


# ---------------------------------------------------------------------------- PRICE_STALE


def test_price_stale_without_a_tick() -> None:
    sim = Sim()
    ev = rejected(sim.order("x", "buy", 1))
    assert (ev["code"], ev["id"]) == ("PRICE_STALE", "x")
    sim.tick(30000, symbol=ETH)  # a price for another symbol does not help
    assert rejected(sim.order("y", "buy", 1))["code"] == "PRICE_STALE"


def test_price_stale_after_feed_loss_and_back() -> None:
    sim = Sim()
    sim.tick(30000)
    sim.engine.set_price_stale(BTC, True)
    ev = rejected(sim.order("x", "buy", 1))
    assert (ev["code"], ev["id"]) == ("PRICE_STALE", "x")
    sim.engine.set_price_stale(BTC, False)
    assert one(sim.order("y", "buy", 1), "fill")["amount"] == 1
    sim.check_ledger()


# ---------------------------------------------------------------------------- leverage changes


def test_binance_isolated_leverage_decrease_with_position_is_rejected() -> None:
    sim = Sim(mode="isolated", leverage=10)
    sim.tick(30000)
    sim.order("open", "buy", 1)
    # Binance -4161: leverage reduction is not supported in isolated mode with open positions
    events = sim.cmd("set_leverage", symbol=BTC, leverage=5)
    ev = rejected(events)
    assert ev["id"] is None
    assert not of_type(events, "leverage_changed")
    pos = sim.position()
    assert (pos.leverage, pos.isolated_wallet) == (10, 3000)
    # an increase is allowed and leaves the isolated wallet as it is (§8.3)
    ev = one(sim.cmd("set_leverage", symbol=BTC, leverage=20), "leverage_changed")
    assert ev["leverage"] == 20
    assert sim.position().isolated_wallet == 3000
    sim.check_ledger()


def test_binance_isolated_leverage_decrease_without_position_is_fine() -> None:
    sim = Sim(mode="isolated", leverage=10)
    sim.tick(30000)
    assert one(sim.cmd("set_leverage", symbol=BTC, leverage=5), "leverage_changed")["leverage"] == 5


def test_cross_leverage_decrease_must_fit_available_balance() -> None:
    # cross long 1 @30000 at 10x with wallet 4000: IM 3000, available 1000.
    # 5x needs IM 6000: 3000 more than the 1000 available -> Binance -2028
    sim = Sim(wallet=4000, leverage=10)
    sim.tick(30000)
    sim.order("open", "buy", 1)
    ev = rejected(sim.cmd("set_leverage", symbol=BTC, leverage=5))
    assert (ev["code"], ev["id"]) == ("MARGIN_INSUFFICIENT", None)
    # 8x needs IM 3750: 750 more <= 1000
    assert one(sim.cmd("set_leverage", symbol=BTC, leverage=8), "leverage_changed")["leverage"] == 8
    sim.check_ledger()
