"""Tests of guardbot.core.num's message formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardbot.core.num import fmt_brief


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1.234567891"), "1.23456789"),
        (Decimal("0.000000005"), "0"),  # half-even: 0.00000000|5 -> 0
        (Decimal("-2.5"), "-2.5"),
        (Decimal("1e20"), "100000000000000000000"),
        # price x amount can reach 1e36: too large for 8 decimals in 40 digits, shown whole
        (Decimal("1e35"), "100000000000000000000000000000000000"),
        (Decimal("123456789012345678901234567890123.456"), "123456789012345678901234567890123.456"),
    ],
)
def test_fmt_brief(value: Decimal, shown: str) -> None:
    assert fmt_brief(value) == shown
