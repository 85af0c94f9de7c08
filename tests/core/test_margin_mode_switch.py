"""Switching the margin mode with a position open: profile option ``margin_mode_switch``.

Worked examples of docs/rules.md §8.1.1 (S1-S6), on the Binance BTCUSDT brackets of
tests/core/enginekit.py (tier 1: MMR 0.4 % up to 50,000 USDT, no deduction), no fees.
``flat`` (every ccxt venue's profile) refuses a switch while the symbol holds a position or an
open order; ``with_position`` (Bitunix, CoinEx: the generic profile) refuses open orders only and
converts the position in place.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardbot.core.profiles import PROFILES, get_profile
from guardbot.errors import InputError
from tests.core.enginekit import BTC, ETH, D, Sim, close, exact_div, of_type, one

SWITCH = {"margin_mode_switch": "with_position"}


def _sim(*, wallet: object = 10_000, mode: str = "cross", **kw: object) -> Sim:
    return Sim(
        profile="generic", wallet=wallet, mode=mode, leverage=10, profile_options=SWITCH, **kw
    )


def _rejected(events: list[dict[str, object]]) -> tuple[object, object]:
    rejected = one(events, "order_rejected")
    return rejected["code"], rejected["reason"]


def test_every_ccxt_profile_needs_a_flat_symbol() -> None:
    assert {n: p.margin_mode_switch for n, p in PROFILES.items()} == dict.fromkeys(PROFILES, "flat")
    with pytest.raises(InputError, match=r"profile_options.margin_mode_switch: must be one of"):
        get_profile("generic").with_options({"margin_mode_switch": "always"})


# S1 / S2 / S3: a cross long of 1 BTC opened at 30,000 (10x) is isolated at various marks. The
# isolated wallet is the initial margin at entry, 1 x 30,000 / 10 = 3,000, whatever the mark;
# the cross wallet keeps 10,000 - 3,000 = 7,000. Isolated, the liquidation price solves
# 3,000 + (P - 30,000) = 0.004 P: P = 27,000 / 0.996 = 27,108.43...
# At 27,100 the isolated balance 3,000 - 2,900 = 100 is not above 0.4 % of 27,100 = 108.4: the
# switch would liquidate the position at once and is refused; the position stays cross.
@pytest.mark.parametrize(
    ("mark", "wallet", "isolated_wallet"),
    [
        (30000, D(7000), D(3000)),  # S1
        (28000, D(7000), D(3000)),  # S2: in loss, the loss stays with the position
        (33000, D(7000), D(3000)),  # in profit: the profit leaves the cross pool with it
        (27100, D(10000), None),  # S3: refused (MARGIN_INSUFFICIENT)
    ],
)
def test_cross_to_isolated_takes_the_initial_margin_at_entry(
    mark: int, wallet: Decimal, isolated_wallet: Decimal | None
) -> None:
    sim = _sim()
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("open", "buy", 1)
    sim.tick(mark)
    events = sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated")
    view = sim.view()
    assert sim.account().wallet == wallet
    if isolated_wallet is None:
        code, reason = _rejected(events)
        assert code == "MARGIN_INSUFFICIENT"
        assert "would be liquidated" in str(reason)
        assert view.margin_mode == "cross"
    else:
        assert one(events, "margin_mode_changed")["marginMode"] == "isolated"
        assert (view.margin_mode, view.isolated_wallet) == ("isolated", isolated_wallet)
        assert close(view.liquidation_price, exact_div(27000, "0.996"))
    sim.check_ledger()


def test_s3_the_isolated_position_is_liquidated_where_it_was_expected() -> None:
    sim = _sim()
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("open", "buy", 1)
    sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated")
    assert not of_type(sim.tick("27108.44"), "liquidation")
    (liq,) = of_type(sim.tick("27108.43"), "liquidation")
    assert liq["symbol"] == BTC
    # only the isolated wallet is lost: the cross wallet keeps its 7,000
    assert sim.account().wallet == D(7000)
    sim.check_ledger()


# S4: isolated -> cross. The isolated wallet (3,000) goes back to the cross wallet (10,000), and
# the cross liquidation price solves 10,000 + (P - 30,000) = 0.004 P: P = 20,000 / 0.996.
def test_isolated_to_cross_returns_the_isolated_wallet() -> None:
    sim = _sim(mode="isolated")
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("open", "buy", 1)
    assert (sim.account().wallet, sim.view().isolated_wallet) == (D(7000), D(3000))
    events = sim.cmd("set_margin_mode", symbol=BTC, marginMode="cross")
    assert one(events, "margin_mode_changed")["marginMode"] == "cross"
    view = sim.view()
    assert (view.margin_mode, sim.account().wallet) == ("cross", D(10000))
    assert close(view.liquidation_price, exact_div(20000, "0.996"))
    sim.check_ledger()


# S5: the cross account cannot give the margin. Wallet 5,500; cross longs BTC 1 @ 30,000 (IM
# 3,000) and ETH 10 @ 2,000 (IM 2,000). ETH falls to 1,800: uPnL -2,000, available
# 5,500 - 2,000 - 3,000 - 1,800 = -1,300 (the account is far from liquidation: balance 3,500
# against MM 120 + 90). Isolating BTC moves 3,000 out of the cross wallet and BTC's IM at mark
# (3,000) out of the cross sums: available stays -1,300 < 0: refused.
# With BTC at 33,000 and ETH at 2,000 available is 5,500 + 3,000 - 3,300 - 2,000 = 3,200 and
# the switch is allowed: 3,200 - (3,000 - 3,300) - 3,000 = 500 left.
@pytest.mark.parametrize(
    ("btc", "eth", "ok"),
    [(30000, 1800, False), (33000, 2000, True)],
)
def test_cross_to_isolated_refused_when_the_cross_account_cannot_give_it(
    btc: int, eth: int, ok: bool
) -> None:
    sim = _sim(wallet=5500)
    sim.tick(30000, bid=30000, ask=30000)
    sim.tick(2000, symbol=ETH, bid=2000, ask=2000)
    sim.order("btc", "buy", 1)
    sim.order("eth", "buy", 10, symbol=ETH)
    assert len(sim.account().positions) == 2
    sim.tick(btc)
    sim.tick(eth, symbol=ETH)
    events = sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated")
    if ok:
        one(events, "margin_mode_changed")
        assert sim.account().wallet == D(2500)
    else:
        code, reason = _rejected(events)
        assert code == "MARGIN_INSUFFICIENT"
        assert "1300" in str(reason).replace(",", "")
        assert sim.account().wallet == D(5500)
    sim.check_ledger()


# S6: what blocks a switch, per option. An open order always does (Bitunix's API and CoinEx's
# help); a position only with ``flat``; the current mode is a no-op either way.
@pytest.mark.parametrize(
    ("option", "with_order", "code"),
    [
        ("flat", False, "MARGIN_MODE_CHANGE_WITH_OPEN_POSITION"),
        ("flat", True, "MARGIN_MODE_CHANGE_WITH_OPEN_POSITION"),
        ("with_position", True, "MARGIN_MODE_CHANGE_WITH_OPEN_POSITION"),
        ("with_position", False, None),
    ],
)
def test_what_blocks_a_switch(option: str, with_order: bool, code: str | None) -> None:
    sim = Sim(
        profile="generic",
        wallet=10_000,
        leverage=10,
        profile_options={"margin_mode_switch": option},
    )
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("open", "buy", 1)
    if with_order:
        sim.order("rest", "buy", 1, price=20000)
    assert not of_type(sim.cmd("set_margin_mode", symbol=BTC, marginMode="cross"), "order_rejected")
    events = sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated")
    if code is None:
        one(events, "margin_mode_changed")
    else:
        assert _rejected(events)[0] == code
    sim.check_ledger()


def test_hedged_sides_switch_together() -> None:
    # both sides of a hedged symbol: each takes its own IM at entry (3,000 and 1,500)
    sim = _sim(position_mode="hedged")
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("l", "buy", 1, positionSide="long")
    sim.order("s", "sell", "0.5", positionSide="short")
    one(sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated"), "margin_mode_changed")
    wallets = {
        p.position_side: (p.margin_mode, p.isolated_wallet)
        for p in sim.account().positions.values()
    }
    assert wallets == {"long": ("isolated", D(3000)), "short": ("isolated", D(1500))}
    assert sim.account().wallet == D(5500)
    one(sim.cmd("set_margin_mode", symbol=BTC, marginMode="cross"), "margin_mode_changed")
    assert sim.account().wallet == D(10000)
    sim.check_ledger()


def test_switches_replay_identically() -> None:
    sim = _sim()
    sim.tick(30000, bid=30000, ask=30000)
    sim.order("open", "buy", 1)
    sim.cmd("set_margin_mode", symbol=BTC, marginMode="isolated")
    sim.tick(29000)
    sim.cmd("set_margin_mode", symbol=BTC, marginMode="cross")
    sim.tick(28000)
    assert sim.replay()[:-1] == sim.events
