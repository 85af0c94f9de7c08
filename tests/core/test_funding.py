"""The funding schedule: which ticks cross a funding time, and with which rate."""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardbot.core.funding import DEFAULT_INTERVAL_MS, FundingDue, FundingSchedule, next_grid_time

H = 3600 * 1000
SYM = "BTC/USDT:USDT"


@pytest.mark.parametrize(
    ("ts", "expected"),
    [(0, 8 * H), (1, 8 * H), (8 * H - 1, 8 * H), (8 * H, 16 * H), (23 * H, 24 * H)],
)
def test_grid(ts: int, expected: int) -> None:
    assert next_grid_time(ts) == expected


def test_crossing_applies_the_rate_known_before_the_tick() -> None:
    schedule = FundingSchedule()
    assert schedule.observe(SYM, 7 * H, Decimal("0.0001")) is None
    assert schedule.observe(SYM, 8 * H - 1, Decimal("0.0002")) is None
    due = schedule.observe(SYM, 8 * H + 5, Decimal("0.0003"))
    assert due == FundingDue(SYM, Decimal("0.0002"), 8 * H)
    assert schedule.next_time(SYM) == 16 * H
    assert schedule.observe(SYM, 9 * H, None) is None  # once per funding time


def test_no_rate_known_means_nothing_to_apply() -> None:
    schedule = FundingSchedule()
    assert schedule.observe(SYM, 7 * H, None) is None
    assert schedule.observe(SYM, 8 * H, None) is None
    assert schedule.next_time(SYM) == 16 * H


def test_exchange_next_funding_time_wins() -> None:
    schedule = FundingSchedule()
    schedule.observe(SYM, 1 * H, Decimal("0.0001"), next_funding_ts=4 * H)  # 4-hour symbol
    due = schedule.observe(SYM, 4 * H, Decimal("-0.0001"), next_funding_ts=8 * H)
    assert due == FundingDue(SYM, Decimal("0.0001"), 4 * H)
    assert schedule.next_time(SYM) == 8 * H


def test_restart_applies_a_funding_time_missed_while_down() -> None:
    schedule = FundingSchedule()
    schedule.start(7 * H)  # the last journaled input
    # The first tick after the restart comes hours later; the rate is the one it carries only
    # if nothing was seen before, so nothing can be applied without a known rate.
    assert schedule.observe(SYM, 10 * H, Decimal("0.0001")) is None
    schedule = FundingSchedule()
    schedule.start(7 * H)
    schedule.observe(SYM, 7 * H, Decimal("0.0001"))  # replayed tick restores the rate
    due = schedule.observe(SYM, 10 * H, Decimal("0.0002"))
    assert due == FundingDue(SYM, Decimal("0.0001"), 8 * H)


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_ms"):
        FundingSchedule(0)
    assert DEFAULT_INTERVAL_MS == 8 * H
