"""The ticker a strategy sees on every tick: floats as ``float(Decimal)`` gives them and the
exact text as :func:`~guardbot.core.num.fmt` prints it, whatever shortcuts build it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardbot.core.market import Market
from guardbot.core.num import fmt, fmt_opt
from guardbot.paper.structures import ticker_structure

PRICES = [
    "59972.7",
    "59972.70",  # trailing zero: the text drops it
    "1E+3",  # exponent: plain text
    "1.50E-7",
    "0.000000000000000001",
    "999999999999999999.999999999999999999",
    "0",
    "-0",
    "-0.00010",
    "12345678901234567890.123456789012345678901",  # more digits than fmt keeps whole
]


@pytest.mark.parametrize("text", PRICES)
def test_ticker_prices_are_the_decimals_float_and_text(text: str) -> None:
    value = Decimal(text)
    others = [Decimal("2"), value, Decimal(text + "0") if "E" not in text else value]
    for mark, last, bid, ask, index in [
        (value, value, value, value, value),  # equal prices share their conversion
        (others[0], value, others[1], others[2], None),
        (value, None, None, None, others[0]),
    ]:
        market = Market("BTC/USDT:USDT", None, Decimal(1))
        market.mark, market.last, market.bid, market.ask, market.index = mark, last, bid, ask, index
        market.ts = 1_767_225_600_123
        ticker = ticker_structure(market)
        for key, info_key, price in [
            ("markPrice", "mark", mark),
            ("last", "last", last),
            ("close", "last", last),
            ("bid", "bid", bid),
            ("ask", "ask", ask),
            ("indexPrice", "index", index),
        ]:
            want = None if price is None else float(price)
            got = ticker[key]
            assert got == want and str(got) == str(want), (key, price)
            assert ticker["info"][info_key] == fmt_opt(price), (info_key, price)
        assert ticker["datetime"] == "2026-01-01T00:00:00.123Z"
        assert fmt(value) == ticker["info"]["bid"] or bid is not value
