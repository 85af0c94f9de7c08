"""An attached stop-loss on an order that adds to a position replaces the position's close-all
stop; it may not widen it silently (issue 11: ``buy 0.01 --stop-loss 55000`` turned a 0.3 BTC
position's 57,000 stop into one at 55,000). Refused with STOP_LOSS_WOULD_WIDEN unless the order
sets ``params.widenStopLoss`` (docs/contracts.md §2)."""

from __future__ import annotations

import pytest

from guardbot.core.codes import Code
from tests.core.enginekit import BTC, D, Sim, of_type, one, rejected


def _stop(sim: Sim) -> tuple[str, object]:
    (order,) = [o for o in sim.account().orders.values() if o.close_position]
    return order.id, order.trigger_price


def _long_with_stop() -> Sim:
    sim = Sim(wallet=100_000, leverage=10)
    sim.tick(60000)
    sim.order("open", "buy", "0.3", stopLossPrice=57000)
    assert _stop(sim) == ("open-sl", D(57000))
    return sim


def test_a_wider_stop_on_an_added_order_is_refused() -> None:
    sim = _long_with_stop()
    events = sim.order("add", "buy", "0.01", stopLossPrice=55000)
    refusal = rejected(events)
    assert refusal["code"] == Code.STOP_LOSS_WOULD_WIDEN
    assert "57000" in refusal["reason"] and "widenStopLoss" in refusal["reason"]
    assert not of_type(events, "fill")  # nothing traded, nothing replaced
    assert sim.position().contracts == D("0.3")
    assert _stop(sim) == ("open-sl", D(57000))


def test_asked_for_explicitly_it_replaces_the_stop() -> None:
    sim = _long_with_stop()
    events = sim.order("add", "buy", "0.01", stopLossPrice=55000, widenStopLoss=True)
    assert one(events, "order_cancelled")["id"] == "open-sl"
    assert sim.position().contracts == D("0.31")
    assert _stop(sim) == ("add-sl", D(55000))
    accepted = [e for e in of_type(events, "order_accepted") if e["id"] == "add"]
    assert accepted[0]["widenStopLoss"] is True


@pytest.mark.parametrize("price", [57000, 58000])
def test_an_equal_or_tighter_stop_replaces_it(price: int) -> None:
    sim = _long_with_stop()
    events = sim.order("add", "buy", "0.01", stopLossPrice=price)
    assert one(events, "order_cancelled")["reason"] == "replaced"
    assert _stop(sim) == ("add-sl", D(price))


def test_short_side_is_mirrored() -> None:
    sim = Sim(wallet=100_000, leverage=10)
    sim.tick(60000)
    sim.order("open", "sell", "0.3", stopLossPrice=63000)
    assert rejected(sim.order("add", "sell", "0.01", stopLossPrice=65000))["code"] == (
        Code.STOP_LOSS_WOULD_WIDEN
    )
    sim.order("add2", "sell", "0.01", stopLossPrice=62000)
    assert _stop(sim) == ("add2-sl", D(62000))


def test_orders_that_replace_no_stop_are_not_concerned() -> None:
    sim = _long_with_stop()
    # a stand-alone reduce-only stop sits beside the attached one
    assert not of_type(sim.order("sl", "sell", "0.1", stopLossPrice=50000, reduceOnly=True),
                       "order_rejected")  # fmt: skip
    # an order that flips the position cancels its stops first
    events = sim.order("flip", "sell", "0.5", stopLossPrice=65000)
    assert not of_type(events, "order_rejected")
    assert sim.position().side == "short"
    assert _stop(sim) == ("flip-sl", D(65000))


def test_a_resting_order_filling_later_keeps_the_tighter_stop() -> None:
    sim = Sim(wallet=100_000, leverage=10)
    sim.tick(60000)
    # placed while flat, so nothing to widen yet
    assert not of_type(sim.order("lim", "buy", "0.1", price=59000, stopLossPrice=55000),
                       "order_rejected")  # fmt: skip
    sim.order("open", "buy", "0.3", stopLossPrice=57000)
    events = sim.tick(58900)  # the limit fills: its 55,000 stop would widen the position's
    assert one(events, "fill")["id"] == "lim"
    refusal = rejected(events)
    assert (refusal["id"], refusal["code"]) == ("lim-sl", Code.STOP_LOSS_WOULD_WIDEN)
    assert refusal["symbol"] == BTC
    assert sim.position().contracts == D("0.4")
    assert _stop(sim) == ("open-sl", D(57000))
