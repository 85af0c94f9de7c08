"""The engine with a mirror account: worked examples on Binance's BTCUSDT tiers (docs/rules.md).

One cross long: wallet 1,000 USDT, 0.5 BTC at 60,000, notional 30,000 (tier 1, mmr 0.4 %, no fee
in the requirement here). Binance's one-position formula (docs/rules.md, support FAQ
360033525271): LP = (WB + cum - q*EP) / (q*mmr - q) = (1000 - 30000) / (0.002 - 0.5)
= 58232.9317269076... The engine solves the same equation.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from guardbot.core.mirror import MirrorClose, MirrorCmd, MirrorOrder, MirrorPosition, mirror_to_json
from guardbot.errors import InputError
from tests.core.enginekit import BTC, ETH, Sim, exact_div

LIQ = exact_div(-29000, "-0.498")  # 58232.93172690763052208835341365461847389...


def sim(**guards: Any) -> Sim:
    return Sim(
        accounts={"m": {"mirror": True, "mirror_tolerance": "0.005"}, "p": {"wallet": "1000"}},
        guards=guards or None,
    )


def long_btc(
    liq: object = "58232.93",
    *,
    wallet: str = "1000",
    leverage: str = "20",
    orders: tuple[MirrorOrder, ...] = (),
    closes: tuple[MirrorClose, ...] = (),
    positions: tuple[MirrorPosition, ...] | None = None,
) -> dict[str, Any]:
    pos = MirrorPosition(
        BTC,
        "long",
        Decimal("0.5"),
        Decimal(60000),
        Decimal(leverage),
        "cross",
        Decimal(0),
        Decimal(str(liq)) if liq is not None else None,
    )
    return mirror_to_json(
        MirrorCmd(
            "m",
            Decimal(wallet),
            (pos,) if positions is None else positions,
            orders,
            closes,
        )
    )


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["type"]) for e in events]


def test_mirror_is_evaluated_never_liquidated() -> None:
    s = sim()
    s.tick(60000)
    assert kinds(s.line(long_btc())) == []
    view = s.engine.state(s.engine.account("m"))["mirror"]
    assert isinstance(view, dict)
    ours = view["positions"][BTC]["liquidationPrice"]
    assert abs(ours - LIQ) < Decimal("1e-34")
    assert view["positions"][BTC]["exchangeLiquidationPrice"] == Decimal("58232.93")
    alerts = s.tick(58300)  # ratio 116.6 / 150 = 0.777
    assert "margin_alert" in kinds(alerts)
    assert alerts[-1]["liquidationPrice"] == ours
    imminent = s.tick(58200)  # below 58232.93: the exchange liquidates now, guardbot does not
    assert "liquidation_imminent" in kinds(imminent)
    (event,) = [e for e in imminent if e["type"] == "liquidation_imminent"]
    assert event["exchangeLiquidationPrice"] == Decimal("58232.93")
    assert event["liquidationPrice"] == ours and event["markPrice"] == 58200
    assert "liquidation" not in kinds(imminent) and "fill" not in kinds(imminent)
    assert kinds(s.tick(58100)) == []  # once until it recovers
    assert s.engine.account("m").positions[BTC].contracts == Decimal("0.5")
    s.tick(59500)
    assert "liquidation_imminent" in kinds(s.tick(58000))
    assert not any(e["type"] in ("liquidation", "fill") for e in s.events)


def test_position_closed_with_the_exchange_reason() -> None:
    s = sim()
    s.tick(60000)
    s.line(long_btc())
    gone = s.line(
        long_btc(positions=(), wallet="2", closes=(MirrorClose(BTC, "long", "liquidation"),))
    )
    assert [(e["type"], e["reason"], e["side"], e["contracts"]) for e in gone] == [
        ("position_closed", "liquidation", "long", Decimal("0.5"))
    ]
    assert s.engine.account("m").positions == {}
    assert s.engine.account("m").wallet == 2
    s.line(long_btc())
    (closed,) = s.line(long_btc(positions=()))
    assert closed["reason"] == "unknown"


def test_drift_once_until_back_within_tolerance() -> None:
    s = sim()
    s.tick(60000, ts=1_000)
    off = LIQ * Decimal("0.9")  # 10 % off: 9.7 % of the mark
    # first seen at 2 s: not yet said (mirror_drift_confirm_s, 5 s by default)
    assert s.line(long_btc(off), ts=2_000) == []
    assert s.tick(60000, ts=6_999) == []  # still beyond, 4.999 s: not yet
    (drift,) = s.tick(60000, ts=7_000)  # beyond at every comparison for 5 s: said
    assert drift["type"] == "mirror_drift"
    assert drift["exchangeLiquidationPrice"] == Decimal(str(off))
    assert abs(drift["liquidationPrice"] - LIQ) < Decimal("1e-34")
    assert drift["driftPercent"] == ((LIQ - Decimal(str(off))) / 60000 * 100).quantize(
        Decimal("0.0001")
    )
    assert drift["tolerancePercent"] == Decimal("0.500")
    assert s.line(long_btc(off, wallet="1000.5"), ts=8_000) == []  # still off: said once
    assert s.tick(60000, ts=20_000) == []
    assert s.line(long_btc(), ts=21_000) == []  # back within 0.5 % of mark
    assert s.line(long_btc(off), ts=22_000) == []  # off again: a new wait
    assert kinds(s.line(long_btc(off, wallet="1000.5"), ts=27_000)) == ["mirror_drift"]
    state = s.engine.account("m").mirror
    assert state is not None and state.drift[BTC] is not None and not state.pending


# The exchange's new liquidation price for a new wallet, before the wallet itself: what OKX and
# Bybit send as two frames (positions channel, then account/wallet channel), and what a REST
# reconciliation reads when the wallet changes between its balance and its positions requests.
# Binance's one-position formula (module docstring) with WB = 1500: (1500 - 30000) / -0.498.
LIQ_1500 = exact_div(-28500, "-0.498")  # 57228.91...: 1,004 from LIQ, 1.7 % of the mark


def test_new_liquidation_price_before_its_wallet_is_no_drift() -> None:
    s = sim()
    s.tick(60000, ts=1_000)
    assert s.line(long_btc(LIQ), ts=2_000) == []
    new = LIQ_1500.quantize(Decimal("0.01"))
    # the position frame: the exchange's figure for wallet 1500, guardbot's still for 1000
    assert s.line(long_btc(new, wallet="1000"), ts=10_000) == []
    state = s.engine.account("m").mirror
    assert state is not None and BTC in state.pending  # beyond tolerance, not yet said
    assert s.tick(60000, ts=10_050) == []
    # the wallet frame, 0.3 s later: both figures from the same state, within tolerance
    assert s.line(long_btc(new, wallet="1500"), ts=10_300) == []
    assert not state.pending and not state.drifting
    assert s.tick(60000, ts=60_000) == []
    assert "mirror_drift" not in kinds(s.events)


def test_a_lasting_drift_is_confirmed_by_the_next_report_or_tick() -> None:
    """With no tick, the next exchange report (a REST reconciliation) confirms it too."""
    s = sim()
    s.tick(60000, ts=1_000)
    new = LIQ_1500.quantize(Decimal("0.01"))
    assert s.line(long_btc(new, wallet="1000"), ts=2_000) == []
    assert kinds(s.line(long_btc(new, wallet="1000.1"), ts=7_000)) == ["mirror_drift"]


def test_confirm_zero_alerts_at_the_first_comparison() -> None:
    s = Sim(accounts={"m": {"mirror": True, "mirror_drift_confirm_s": "0"}})
    s.tick(60000, ts=1_000)
    assert kinds(s.line(long_btc(LIQ * Decimal("0.9")), ts=2_000)) == ["mirror_drift"]


def test_a_negative_confirm_is_refused() -> None:
    with pytest.raises(InputError, match="mirror_drift_confirm_s"):
        Sim(accounts={"m": {"mirror": True, "mirror_drift_confirm_s": "-1"}})


@pytest.mark.parametrize(
    "command",
    [
        {"type": "order", "account": "m", "id": "x", "symbol": BTC, "orderType": "market",
         "side": "sell", "amount": "0.1"},
        {"type": "cancel", "account": "m", "id": "x"},
        {"type": "set_leverage", "account": "m", "symbol": BTC, "leverage": "5"},
        {"type": "set_margin_mode", "account": "m", "symbol": BTC, "marginMode": "isolated"},
        {"type": "set_position_mode", "account": "m", "positionMode": "hedged"},
        {"type": "add_margin", "account": "m", "symbol": BTC, "amount": "10"},
        {"type": "reduce_margin", "account": "m", "symbol": BTC, "amount": "10"},
        {"type": "deposit", "account": "m", "amount": "10"},
        {"type": "withdraw", "account": "m", "amount": "10"},
    ],
)  # fmt: skip
def test_commands_that_would_change_a_mirror_are_refused(command: dict[str, Any]) -> None:
    s = sim()
    s.tick(60000)
    s.line(long_btc())
    before = s.engine.state(s.engine.account("m"))
    (refused,) = s.line(command)
    assert refused["type"] == "order_rejected" and refused["code"] == "MIRROR_READ_ONLY"
    assert "'m'" in refused["reason"]
    assert s.engine.state(s.engine.account("m")) == before
    # the paper account next to it still trades
    assert s.line({**command, "account": "p"}) != [refused]


def test_guards_become_alerts_once() -> None:
    s = sim(
        require_stop_loss=True,
        max_leverage="10",
        max_position_notional="20000",
        max_account_exposure="25000",
        daily_loss_limit="100",
    )
    s.tick(60000)
    first = s.line(long_btc())
    assert sorted(e["rule"] for e in first if e["type"] == "guard_violation") == [
        "EXPOSURE_EXCEEDS_MAX",
        "LEVERAGE_EXCEEDS_MAX",
        "NOTIONAL_EXCEEDS_MAX",
        "STOP_LOSS_REQUIRED",
    ]
    assert s.line(long_btc()) == []
    stop = MirrorOrder("9", BTC, "stop_loss", "sell", Decimal(58500), None)
    assert s.line(long_btc(orders=(stop,), leverage="5")) == []  # cleared, nothing to say
    (loss,) = s.line(long_btc(orders=(stop,), leverage="5", wallet="880"))
    assert (loss["rule"], loss["value"], loss["limit"]) == ("DAILY_LOSS_LIMIT", 120, 100)
    # a stop on the wrong side protects nothing
    wrong = MirrorOrder("9", BTC, "stop_loss", "buy", Decimal(61000), None)
    (missing,) = s.line(long_btc(orders=(wrong,), leverage="5", wallet="880"))
    assert missing["rule"] == "STOP_LOSS_REQUIRED" and missing["symbol"] == BTC


def test_a_position_waits_for_its_first_price() -> None:
    s = sim()
    s.tick(60000)
    eth = MirrorPosition(
        ETH, "short", Decimal(2), Decimal(3000), Decimal(10), "isolated", Decimal(300), None
    )
    s.line(mirror_to_json(MirrorCmd("m", Decimal(1000), (eth,))))
    account = s.engine.account("m")
    assert account.positions == {}
    assert account.mirror is not None and ETH in account.mirror.unpriced
    s.tick(3000, symbol=ETH)
    assert account.positions[ETH].isolated_wallet == 300
    assert account.mirror.unpriced == {}
    view = s.engine.state(account)["mirror"]
    assert isinstance(view, dict) and ETH in view["positions"]


def test_funding_leaves_the_mirror_wallet_to_the_exchange() -> None:
    s = sim()
    s.tick(60000)
    s.line(long_btc())
    assert s.line({"type": "funding", "symbol": BTC, "rate": "0.001"}) == []
    assert s.engine.account("m").wallet == 1000


def test_replay_rebuilds_the_same_events() -> None:
    s = sim(require_stop_loss=True)
    s.tick(60000)
    s.line(long_btc(LIQ * Decimal("0.9")))
    s.tick(60000, ts=s.ts + 5000)  # the drift lasted mirror_drift_confirm_s
    s.tick(58200)
    s.line(long_btc(positions=(), closes=(MirrorClose(BTC, "long", "stop_loss"),)))
    again = sim(require_stop_loss=True)
    for line in s.lines[1:]:
        again.line({k: v for k, v in line.items() if k != "ts"}, ts=line["ts"])
    assert again.events == s.events
    assert {e["type"] for e in s.events} >= {
        "mirror_drift",
        "liquidation_imminent",
        "guard_violation",
        "position_closed",
    }


def test_a_hedge_mode_account_is_mirrored_in_hedge_mode() -> None:
    s = sim()
    s.tick(60000)
    long_ = MirrorPosition(
        BTC, "long", Decimal("0.5"), Decimal(60000), Decimal(20), "cross", Decimal(0), None, True
    )
    short = MirrorPosition(
        BTC, "short", Decimal("0.2"), Decimal(61000), Decimal(20), "cross", Decimal(0), None, True
    )
    assert s.line(mirror_to_json(MirrorCmd("m", Decimal(1000), (long_, short), hedged=True))) == []
    account = s.engine.account("m")
    assert account.hedged
    assert {k: (p.side, p.contracts) for k, p in account.positions.items()} == {
        f"{BTC}#long": ("long", Decimal("0.5")),
        f"{BTC}#short": ("short", Decimal("0.2")),
    }
    (closed,) = s.line(
        mirror_to_json(
            MirrorCmd(
                "m",
                Decimal(1000),
                (long_,),
                closes=(MirrorClose(BTC, "short", "take_profit"),),
                hedged=True,
            )
        )
    )
    assert (closed["side"], closed["reason"]) == ("short", "take_profit")
    assert list(account.positions) == [f"{BTC}#long"]


def test_notional_and_exposure_guards_follow_the_price() -> None:
    # 0.5 BTC: notional 30,000 at 60,000; the cap 31,000 is passed at 62,000 by price alone
    s = sim(max_position_notional="31000", max_account_exposure="31500")
    s.tick(60000)
    assert s.line(long_btc()) == []
    assert s.tick(61000) == []
    crossed = s.tick(63100)
    assert sorted(e["rule"] for e in crossed if e["type"] == "guard_violation") == [
        "EXPOSURE_EXCEEDS_MAX",
        "NOTIONAL_EXCEEDS_MAX",
    ]
    assert s.tick(63200) == []  # once
    s.tick(61000)  # back under both caps: re-armed
    assert [e["rule"] for e in s.tick(62500) if e["type"] == "guard_violation"] == [
        "NOTIONAL_EXCEEDS_MAX"
    ]


# A drift just beyond tolerance at mark 60000 and within it at 70000 (guardbot's figure does not
# move with the mark here: one cross position, first tier): 320 / 60000 = 0.533 % of the mark,
# 320 / 70000 = 0.457 %, against mirror_tolerance 0.5 %. So a tick to 70000 cancels the wait.
NEAR = LIQ - 320


def test_ticks_that_start_or_cancel_a_drift_wait_are_flagged() -> None:
    # The daemon journals exactly these quiet ticks (besides those with events), so that a replay
    # starts each wait at the same time and confirms the same drifts.
    s = sim()
    flags = []
    for step, expected in (
        (lambda: s.tick(60000, ts=1_000), False),
        (lambda: s.line(long_btc(NEAR), ts=2_000), True),  # a command: journaled anyway
        (lambda: s.tick(60000, ts=3_000), False),  # compared again, still waiting
        (lambda: s.tick(70000, ts=4_000), True),  # within tolerance: the wait is cancelled
        (lambda: s.tick(70000, ts=4_500), False),
        (lambda: s.tick(60000, ts=5_000), False),  # beyond again, but only a report starts one
        (lambda: s.line(long_btc(NEAR), ts=6_000), True),
        (lambda: s.tick(60000, ts=10_999), False),
    ):
        assert step() == []
        flags.append(s.engine.tick_changed_drift_wait)
        assert flags[-1] is expected, (len(flags), flags)
    # the confirming tick raises mirror_drift (journaled for its event); no wait changed flag
    assert kinds(s.tick(60000, ts=11_000)) == ["mirror_drift"]
    assert s.engine.tick_changed_drift_wait is False
    assert s.engine.tick_moved_orders is False

    # a wait started by a tick: the first price adopts a position reported before it
    t = sim()
    assert t.line(long_btc(NEAR), ts=1_000) == []
    assert t.tick(60000, ts=2_000) == []
    assert t.engine.tick_changed_drift_wait is True
    state = t.engine.account("m").mirror
    assert state is not None and state.pending == {BTC: 2_000}
    assert t.tick(60000, ts=3_000) == []
    assert t.engine.tick_changed_drift_wait is False


def daemon_journal(
    steps: list[tuple[str, Any, int]], *, drift_flag: bool = True
) -> tuple[Sim, list[dict[str, Any]]]:
    """Run ``steps`` live and return the lines the daemon journals of them (StepPipeline): a
    tick with events, or flagged (tick_moved_orders, tick_changed_drift_wait); a mirror report
    (control_command) after the newest unjournaled tick of each symbol."""
    s = sim()
    journal: list[dict[str, Any]] = []
    unjournaled: dict[str, dict[str, Any]] = {}
    for kind, what, ts in steps:
        if kind == "tick":
            events = s.tick(what, ts=ts)
            engine = s.engine
            flagged = engine.tick_moved_orders or (drift_flag and engine.tick_changed_drift_wait)
            if events or flagged:
                journal.append(s.lines[-1])
                unjournaled.pop(BTC, None)
            else:
                unjournaled[BTC] = s.lines[-1]
        else:
            journal.extend(unjournaled[k] for k in sorted(unjournaled))
            unjournaled.clear()
            s.line(what, ts=ts)
            journal.append(s.lines[-1])
    return s, journal


def replay(journal: list[dict[str, Any]]) -> Sim:
    again = sim()
    for line in journal:
        again.line({k: v for k, v in line.items() if k != "ts"}, ts=line["ts"])
    return again


# A wait that a tick cancels, and a new one started by a later report: the live run alerts at
# 10 s (5 s after the second start); a replay that missed the cancelling tick kept the first
# start (2 s) and alerted at 7 s instead (the tick journaled before the report at 8 s).
CANCELLED_WAIT = [
    ("tick", 60000, 1_000),
    ("mirror", long_btc(NEAR), 2_000),  # the wait starts
    ("tick", 70000, 3_000),  # within tolerance: cancelled (an event-less tick)
    ("tick", 60000, 4_000),
    ("mirror", long_btc(NEAR), 5_000),  # a new wait, from 5 s
    ("tick", 60000, 7_000),
    ("mirror", long_btc(NEAR), 8_000),  # 3 s of waiting: no alert
    ("tick", 60000, 9_000),
    ("tick", 60000, 10_000),  # 5 s: confirmed
]


def test_replay_of_the_journal_gives_the_live_alerts_when_a_tick_cancels_a_wait() -> None:
    live, journal = daemon_journal(CANCELLED_WAIT)
    drifts = [e for e in live.events if e["type"] == "mirror_drift"]
    assert [e["ts"] for e in drifts] == [10_000]
    # 9 s is the only tick left out (the confirming one at 10 s is kept for its event)
    assert [line["ts"] for line in journal] == [
        1_000,
        2_000,
        3_000,
        4_000,
        5_000,
        7_000,
        8_000,
        10_000,
    ]
    again = replay(journal)
    assert again.events == live.events
    assert again.engine.state(again.engine.account("m")) == live.engine.state(
        live.engine.account("m")
    )
    # without the flag the cancelling tick is not journaled and the replay alerts elsewhere
    _, lossy = daemon_journal(CANCELLED_WAIT, drift_flag=False)
    assert [e["ts"] for e in replay(lossy).events if e["type"] == "mirror_drift"] == [7_000]
