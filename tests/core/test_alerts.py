"""Margin-ratio alert levels with hysteresis (docs/contracts.md §2, docs/architecture.md §3).

Levels [0.5, 0.7, 0.8], hysteresis 0.05: a level fires when the ratio rises to or above it and
re-arms when the ratio falls below ``level - 0.05``. One scope says at most one thing per tick:
``margin_alert`` at the highest level reached, or ``margin_recovered`` naming the lowest level
the ratio fell back below (issue 11: two alerts in one millisecond for a jump over two levels,
and nothing said on the way down, so the next alert at a level looked like a duplicate). The
last level is the margin call.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardbot.core.alerts import AlertConfig, AlertState, Crossing
from guardbot.formats.pretty import format_event
from tests.core.enginekit import BTC, ETH, D, Sim, close, exact_div, of_type, one

LEVELS = {"margin_ratio_levels": ["0.5", "0.7", "0.8"], "hysteresis": "0.05"}
CONFIG = AlertConfig(levels=(D("0.5"), D("0.7"), D("0.8")), hysteresis=D("0.05"))

# ---------------------------------------------------------------------------- AlertState directly


def _feed(state: AlertState, ratio: str) -> list[Crossing]:
    # requirement / margin balance = ratio with margin balance 1
    return state.update(CONFIG, D(ratio), D(1))


def test_alert_state_hysteresis_sequence() -> None:
    state = AlertState()
    state.reset(CONFIG)
    steps: list[tuple[str, list[Crossing]]] = [
        ("0.3", []),
        ("0.5", [Crossing(0)]),  # exactly on the level fires
        ("0.6", []),  # staying above does not re-fire
        ("0.5", []),
        ("0.46", []),  # 0.46 >= 0.5 - 0.05: not re-armed, not recovered
        ("0.55", []),  # so rising again does not fire
        ("0.44", [Crossing(0, recovered=True)]),  # < 0.45: re-armed and recovered
        ("0.44", []),  # recovered only once
        ("0.5", [Crossing(0)]),  # armed again
    ]
    for ratio, expected in steps:
        assert _feed(state, ratio) == expected, ratio


def test_alert_state_jump_fires_once_at_the_highest_level() -> None:
    state = AlertState()
    state.reset(CONFIG)
    assert _feed(state, "0.3") == []
    assert _feed(state, "0.85") == [Crossing(2)]  # one alert, not three in the same millisecond
    assert state.fired == [True, True, True]  # the levels under it count as fired
    assert [CONFIG.severity(i) for i in range(3)] == ["warning", "warning", "margin_call"]
    # 0.74 < 0.8 - 0.05 re-arms level 2 only (0.74 >= 0.7 - 0.05 keeps level 1 fired)
    assert _feed(state, "0.74") == [Crossing(2, recovered=True)]
    assert _feed(state, "0.8") == [Crossing(2)]
    # 0.64 re-arms levels 1 and 2: one recovery, naming the lower
    assert _feed(state, "0.64") == [Crossing(1, recovered=True)]
    assert _feed(state, "0.7") == [Crossing(1)]
    assert _feed(state, "0.4") == [Crossing(0, recovered=True)]
    assert state.fired == [False, False, False] and not state.alerted
    assert _feed(state, "0.85") == [Crossing(2)]


def test_readme_ladder() -> None:
    # the table of README.md "The margin alert ladder", with the default levels
    state = AlertState()
    state.reset(AlertConfig())
    steps = [
        ("0.40", []),
        ("0.72", [Crossing(1)]),
        ("0.66", []),
        ("0.55", [Crossing(1, recovered=True)]),
        ("0.71", [Crossing(1)]),
        ("0.85", [Crossing(2)]),
        ("0.30", [Crossing(0, recovered=True)]),
    ]
    for ratio, expected in steps:
        assert state.update(AlertConfig(), D(ratio), D(1)) == expected, ratio


def test_alert_state_says_when_the_ratio_falls_back() -> None:
    # issue 11: from 72 % to 55 % said nothing, so the next 70 % alert looked like a duplicate
    state = AlertState()
    state.reset(CONFIG)
    assert _feed(state, "0.72") == [Crossing(1)]
    assert _feed(state, "0.66") == []  # 0.66 >= 0.7 - 0.05: still fired
    assert _feed(state, "0.55") == [Crossing(1, recovered=True)]
    assert state.fired == [True, False, False] and state.alerted
    assert _feed(state, "0.7") == [Crossing(1)]  # after a recovery: not a duplicate
    assert _feed(state, "0.46") == [Crossing(1, recovered=True)]
    assert _feed(state, "0.44") == [Crossing(0, recovered=True)]
    assert _feed(state, "0.3") == []


@pytest.mark.parametrize(
    "ratios",
    [
        ["0.3", "0.9", "0.1", "0.75", "0.72", "0.5", "0.81", "0.44", "0.44", "2"],
        ["0.5", "0.7", "0.8", "0.74", "0.64", "0.44", "0.8", "0.79", "0.76", "0.749"],
    ],
)
def test_alert_state_at_most_one_crossing_and_fired_levels_are_the_lowest(
    ratios: list[str],
) -> None:
    state = AlertState()
    state.reset(CONFIG)
    for ratio in ratios:
        assert len(_feed(state, ratio)) <= 1, ratio
        count = sum(state.fired)
        assert state.fired == [True] * count + [False] * (3 - count), ratio


@pytest.mark.parametrize(("ratio", "fired"), [("0.7", [1]), ("0.8", [2]), ("0.69", [0])])
def test_alert_state_exact_level(ratio: str, fired: list[int]) -> None:
    state = AlertState()
    state.reset(CONFIG)
    assert [c.level for c in _feed(state, ratio)] == fired


def test_alert_state_exact_products_not_rounded_ratios() -> None:
    # requirement 1, margin balance 2: ratio exactly 0.5 as a product comparison
    state = AlertState()
    state.reset(CONFIG)
    assert state.update(CONFIG, D(1), D(2)) == [Crossing(0)]
    # a hair below the level does not fire
    state.reset(CONFIG)
    assert state.update(CONFIG, D("0.4999999999999999999999999999999999999999999"), D(1)) == []


def test_alert_state_non_positive_margin_balance_fires_everything() -> None:
    state = AlertState()
    state.reset(CONFIG)
    assert state.update(CONFIG, D(100), D(0)) == [Crossing(2)]
    state.reset(CONFIG)
    assert state.update(CONFIG, D(100), D(-5)) == [Crossing(2)]
    assert state.fired == [True, True, True]


# ---------------------------------------------------------------------------- through the engine
#
# Long Q=1 EP=30000 backed by 5200 (isolated: 3000 at 10x + add 2200; cross: the wallet).
# MB(P) = 5200 + (P - 30000) = P - 24800, MM(P) = 0.004*P (tier 1), ratio = 0.004P / (P - 24800).
#   P = 25000: 100 / 200 = 0.5 exactly
#   P = 24990: 99.96 / 190 = 0.5261
#   P = 25020: 100.08 / 220 = 0.4549   (>= 0.45: no re-arm)
#   P = 25030: 100.12 / 230 = 0.4353   (< 0.45: recovered)
#   P = 25200: 100.8 / 400 = 0.252
#   P = 24920: 99.68 / 120 = 0.83067   (every level)
# LP = (5200 - 30000)/(0.004 - 1) = 24800/0.996 = 24899.598...


def _setup(mode: str) -> Sim:
    if mode == "isolated":
        sim = Sim(wallet=10_000, mode="isolated", leverage=10, alerts=LEVELS)
        sim.tick(30000)
        sim.order("open", "buy", 1)
        sim.cmd("add_margin", symbol=BTC, amount=2200)
        assert sim.position().isolated_wallet == 5200
    else:
        sim = Sim(wallet=5200, mode="cross", leverage=10, alerts=LEVELS)
        sim.tick(30000)
        sim.order("open", "buy", 1)
    assert not of_type(sim.events, "margin_alert")
    return sim


def _alerts(events: list[dict[str, object]]) -> list[tuple[str, object]]:
    return [
        (e["type"], e.get("level"))
        for e in events
        if e["type"] in ("margin_alert", "margin_recovered")
    ]


@pytest.mark.parametrize(("mode", "scope"), [("isolated", "position"), ("cross", "account")])
def test_engine_alert_levels_with_hysteresis(mode: str, scope: str) -> None:
    sim = _setup(mode)
    steps: list[tuple[int | str, list[tuple[str, object]]]] = [
        (25000, [("margin_alert", 0)]),  # exactly 0.5 fires
        (24990, []),  # 0.526: still above, no re-fire
        (25000, []),
        (25020, []),  # 0.4549: not re-armed
        (25000, []),  # so 0.5 does not fire again
        (25030, [("margin_recovered", 0)]),  # 0.4353 < 0.45
        (25030, []),
        (25000, [("margin_alert", 0)]),  # re-armed
    ]
    for mark, expected in steps:
        events = sim.tick(mark)
        assert _alerts(events) == expected, mark
        for e in events:
            if e["type"] in ("margin_alert", "margin_recovered"):
                assert e["scope"] == scope
                assert e["account"] == "a"
    recovered = next(e for e in sim.events if e["type"] == "margin_recovered")
    # 0.004*25030 / (25030 - 24800) = 100.12 / 230
    assert close(recovered["marginRatio"], exact_div("100.12", 230))
    assert (recovered["level"], recovered["threshold"]) == (0, D("0.5"))
    assert not of_type(sim.events, "liquidation")
    sim.check_ledger()


@pytest.mark.parametrize(("mode", "scope"), [("isolated", "position"), ("cross", "account")])
def test_engine_jump_fires_one_alert_at_the_highest_level(mode: str, scope: str) -> None:
    sim = _setup(mode)
    assert _alerts(sim.tick(25200)) == []  # 0.252
    events = sim.tick(24920)  # 0.83067: over all three levels in one tick
    alert = one(events, "margin_alert")
    assert (alert["level"], alert["threshold"], alert["severity"]) == (2, D("0.8"), "margin_call")
    assert alert["scope"] == scope
    assert not of_type(events, "liquidation")  # 24920 > LP 24899.6
    # ratio = 99.68 / 120 (docs/rules.md §4.1: MM / MB)
    assert close(alert["marginRatio"], exact_div("99.68", 120))
    # back to 0.252 in one tick: one recovery, naming the lowest level (all three re-armed)
    recovered = one(sim.tick(25200), "margin_recovered")
    assert (recovered["level"], recovered["threshold"], recovered["scope"]) == (0, D("0.5"), scope)
    text = format_event(recovered)
    assert text.endswith("margin ratio back to 25.2%, below the 50% level"), text
    sim.check_ledger()


def test_engine_isolated_alert_fields_by_hand() -> None:
    sim = _setup("isolated")
    alert = one(sim.tick(24920), "margin_alert")
    assert (alert["scope"], alert["symbol"], alert["level"]) == ("position", BTC, 2)
    # marginRatio = MM/MB = 0.004*24920 / (5200 + 24920 - 30000) = 99.68 / 120 = 0.830666...
    assert close(alert["marginRatio"], exact_div("99.68", 120))
    # liquidationPrice = (IWB - Q*EP)/(Q*(mmr - 1)) = (5200 - 30000)/(0.004 - 1) = 24899.5983...
    lp = exact_div(24800, "0.996")
    assert close(alert["liquidationPrice"], lp)
    # distance = |24920 - 24899.598...| / 24920 * 100 = 0.08187...%
    distance = abs(24920 - lp) / 24920 * 100
    assert abs(alert["distancePercent"] - distance) <= Decimal("0.0001")
    # consistent with the position snapshot at the same mark
    view = sim.view()
    assert close(view.liquidation_price, lp)
    assert close(view.margin_ratio, alert["marginRatio"])


def test_engine_cross_alert_has_account_scope_and_cross_liquidation_price() -> None:
    # cross wallet 3000, long 1 @30000: at 27200 MB = 200, MM = 108.8 -> 0.544 >= 0.5
    sim = Sim(wallet=3000, mode="cross", leverage=10, alerts=LEVELS)
    sim.tick(30000)
    sim.order("open", "buy", 1)
    events = sim.tick(27200)
    alert = one(events, "margin_alert")
    assert alert["scope"] == "account"
    assert alert["level"] == 0
    assert alert["severity"] == "warning"
    assert close(alert["marginRatio"], exact_div("108.8", 200))
    # the only cross position: LP = (3000 - 30000)/(0.004 - 1) = 27000/0.996 = 27108.43...
    assert close(alert["liquidationPrice"], exact_div(27000, "0.996"))


def test_engine_cross_alert_moves_with_another_symbol() -> None:
    # Two cross positions: the ETH mark alone drives the account ratio over a level.
    # wallet 3000; BTC long 1 @30000 (MM 0.004*30000 = 120), ETH long 10 @2000.
    # ETH notional 17000-20000 is in ETH tier 2: MM = 0.0065*n - 15.
    # ETH at 1830: MB = 3000 - 1700 = 1300, MM = 120 + 118.95 - 15 = 223.95 -> 0.172
    # ETH at 1760: MB = 3000 - 2400 = 600, MM = 120 + 114.4 - 15 = 219.4 -> 0.366
    # ETH at 1735: MB = 3000 - 2650 = 350, MM = 120 + 112.775 - 15 = 217.775 -> 0.622: level 0
    sim = Sim(wallet=3000, mode="cross", leverage=20, alerts=LEVELS)
    sim.tick(30000)
    sim.tick(2000, symbol=ETH)
    sim.order("btc", "buy", 1)
    sim.order("eth", "buy", 10, symbol=ETH)
    assert _alerts(sim.tick(1830, symbol=ETH)) == []
    assert _alerts(sim.tick(1760, symbol=ETH)) == []
    alert = one(sim.tick(1735, symbol=ETH), "margin_alert")
    assert (alert["scope"], alert["level"]) == ("account", 0)
    assert close(alert["marginRatio"], exact_div("217.775", 350))
    sim.check_ledger()


# ---------------------------------------------------------------------------- a random walk
#
# The engine evaluates cross accounts incrementally; the oracle below recomputes everything from
# the rules on every tick: MM(n) = n*mmr(n) - cum(n) with floor < n <= cap (docs/rules.md §2),
# ratio = sum MM / (wallet + sum UPNL) (§4.1), the level rules of docs/contracts.md §2, and
# liquidation at
# ratio >= 1 or MB <= 0 (§4.3).


def _ladder(
    fired: list[bool], levels: list[Decimal], h: Decimal, mm: Decimal, mb: Decimal
) -> list[tuple[str, object]]:
    """The rules of docs/contracts.md §2 written out: one alert at the highest level newly
    reached (the lower ones count as fired), else one recovery at the lowest fired level the
    ratio fell below minus ``h`` (it and the higher ones re-arm)."""
    reached = [i for i, lv in enumerate(levels) if not fired[i] and (mb <= 0 or mm >= lv * mb)]
    if reached:
        fired[: reached[-1] + 1] = [True] * (reached[-1] + 1)
        return [("margin_alert", reached[-1])]
    if mb <= 0:
        return []
    fell = [i for i, lv in enumerate(levels) if fired[i] and mm < (lv - h) * mb]
    if not fell:
        return []
    fired[fell[0] :] = [False] * (len(levels) - fell[0])
    return [("margin_recovered", fell[0])]


def _mm(rows: list[tuple[int, int, str, int, int]], notional: Decimal) -> Decimal:
    for floor, cap, mmr, _lev, cum in rows:
        if notional <= cap and (notional > floor or floor == 0):
            return notional * D(mmr) - cum
    raise AssertionError(notional)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_cross_walk_matches_a_from_scratch_oracle(seed: int) -> None:
    import random

    from tests.core.enginekit import BTC_ROWS, ETH_ROWS

    rng = random.Random(seed)
    # BTC long 2 @30000 (60,000: tier 2) and ETH short 30 @2000 (60,000: tier 2), cross, 20x.
    wallet = D(7000)
    sim = Sim(wallet=wallet, mode="cross", leverage=20, alerts=LEVELS)
    sim.tick(30000)
    sim.tick(2000, symbol=ETH)
    sim.order("btc", "buy", 2)
    sim.order("eth", "sell", 30, symbol=ETH, ts=sim.ts + 1000)
    marks = {BTC: D(30000), ETH: D(2000)}
    fired = [False, False, False]
    levels = [D("0.5"), D("0.7"), D("0.8")]
    h = D("0.05")
    liquidated = False
    for step in range(400):
        symbol = BTC if rng.random() < 0.5 else ETH
        # losing drift on both legs, with enough noise to go up and down through the levels
        drift = D(rng.randint(-150, 120)) if symbol == BTC else D(rng.randint(-8, 10))
        marks[symbol] = max(marks[symbol] + drift, D(1))
        events = sim.tick(marks[symbol], symbol=symbol)
        upnl = 2 * (marks[BTC] - 30000) - 30 * (marks[ETH] - 2000)
        mm = _mm(BTC_ROWS, 2 * marks[BTC]) + _mm(ETH_ROWS, 30 * marks[ETH])
        mb = wallet + upnl
        expected = _ladder(fired, levels, h, mm, mb)
        assert _alerts(events) == expected, (step, marks, mm, mb)
        liquidated = mb <= 0 or mm >= mb
        assert bool(of_type(events, "liquidation")) == liquidated, (step, marks, mm, mb)
        if liquidated:
            break
    assert liquidated, "the walk is meant to end in a liquidation"
    assert len(of_type(sim.events, "margin_alert")) >= 3
    assert of_type(sim.events, "margin_recovered"), "the walk is meant to recover on the way"
    sim.check_ledger()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_isolated_walk_matches_a_from_scratch_oracle(seed: int) -> None:
    import random

    from tests.core.enginekit import BTC_ROWS, ETH_ROWS

    rng = random.Random(seed)
    # isolated BTC long 1 @30000 (IWB 3000) and ETH short 10 @2000 (IWB 2000), both 10x
    sim = Sim(wallet=10_000, mode="isolated", leverage=10, alerts=LEVELS)
    sim.tick(30000)
    sim.tick(2000, symbol=ETH)
    sim.order("btc", "buy", 1)
    sim.order("eth", "sell", 10, symbol=ETH)
    spec = {
        BTC: (1, D(1), D(30000), D(3000), BTC_ROWS),
        ETH: (-1, D(10), D(2000), D(2000), ETH_ROWS),
    }
    marks = {BTC: D(30000), ETH: D(2000)}
    fired = {BTC: [False] * 3, ETH: [False] * 3}
    open_ = {BTC: True, ETH: True}
    levels = [D("0.5"), D("0.7"), D("0.8")]
    h = D("0.05")
    for step in range(600):
        if not any(open_.values()):
            break
        symbol = BTC if rng.random() < 0.5 else ETH
        drift = D(rng.randint(-130, 80)) if symbol == BTC else D(rng.randint(-5, 7))
        marks[symbol] = max(marks[symbol] + drift, D(1))
        events = sim.tick(marks[symbol], symbol=symbol)
        if not open_[symbol]:
            assert not events
            continue
        sign, qty, entry, iwb, rows = spec[symbol]
        mm = _mm(rows, qty * marks[symbol])
        mb = iwb + sign * qty * (marks[symbol] - entry)
        expected = _ladder(fired[symbol], levels, h, mm, mb)
        assert _alerts(events) == expected, (step, symbol, marks[symbol], mm, mb)
        assert all(e.get("symbol") == symbol for e in events if e["type"] == "margin_alert")
        liquidated = mb <= 0 or mm >= mb
        assert bool(of_type(events, "liquidation")) == liquidated, (step, marks, mm, mb)
        if liquidated:
            open_[symbol] = False
    assert not any(open_.values()), "the walk is meant to liquidate both positions"
    assert len(of_type(sim.events, "margin_alert")) >= 4  # one a tick: fewer than the levels
    sim.check_ledger()
