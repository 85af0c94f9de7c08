"""The OKX venue's field mapping, from payloads shaped as OKX v5 documents them.

Sources: the v5 API reference, "Get balance" (``/api/v5/account/balance``: ``details[]`` with
``cashBal``, ``eq``, ``isoEq``, ``isoUpl``), "Get positions" (``mgnMode``, ``margin``,
``posSide``), "Get algo order list" (``ordType``, ``slTriggerPx``, ``tpTriggerPx``,
``closeFraction``) and the "Order channel" (``category``: ``normal``, ``full_liquidation``,
``partial_liquidation``, ``adl``; ``algoId`` of the algo order that placed it); the same shapes
are quoted in ccxt 4.5.90's okx.py comments. Numbers are made up.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from guardbot.mirror.venues import Okx

VENUE = Okx()


def balance(**detail: str) -> dict[str, Any]:
    """fetch_balance's / watch_balance's ``info``: the response / the push, ``data[0]``."""
    usdt = {
        "ccy": "USDT",
        "cashBal": "1000",
        "eq": "1010",
        "isoEq": "0",
        "isoUpl": "0",
        "upl": "10",
        "availBal": "900",
        "frozenBal": "100",
    }
    return {
        "info": {
            "code": "0",
            "data": [
                {"totalEq": "1010", "details": [{"ccy": "BTC", "cashBal": "1"}, {**usdt, **detail}]}
            ],
        }
    }


def test_cross_wallet_is_the_cash_not_set_aside_for_isolated_positions() -> None:
    assert VENUE.cross_wallet(balance()) == Decimal("1000")
    # 150 of margin in isolated positions (isolated equity 140 at an unrealised loss of 10)
    assert VENUE.cross_wallet(balance(isoEq="140", isoUpl="-10")) == Decimal("850")
    assert VENUE.cross_wallet(balance(cashBal="")) is None
    assert VENUE.cross_wallet({"info": {"data": []}}) is None


def test_isolated_wallet_is_the_position_margin() -> None:
    assert VENUE.isolated_wallet({"info": {"mgnMode": "isolated", "margin": "450.5"}}) == Decimal(
        "450.5"
    )
    assert VENUE.isolated_wallet({"info": {"mgnMode": "cross", "margin": ""}}) == 0


def order(**raw: Any) -> dict[str, Any]:
    base = {
        "instId": "BTC-USDT-SWAP",
        "side": "sell",
        "posSide": "net",
        "ordType": "market",
        "slTriggerPx": "",
        "tpTriggerPx": "",
        "algoId": "",
        "category": "normal",
        "closeFraction": "",
    }
    return {"info": {**base, **raw}}


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"ordType": "conditional", "slTriggerPx": "55000"}, "stop_loss"),
        ({"ordType": "conditional", "tpTriggerPx": "70000"}, "take_profit"),
        ({"ordType": "oco", "slTriggerPx": "55000", "tpTriggerPx": "70000"}, "stop_loss"),
        ({"ordType": "trigger"}, "stop_loss"),
        ({"ordType": "move_order_stop"}, "trailing_stop"),
        # a limit order with an attached TP/SL guards nothing until it fills
        ({"ordType": "limit", "attachAlgoOrds": [{"slTriggerPx": "55000"}]}, None),
        ({"ordType": "market"}, None),
    ],
)
def test_order_kind_from_ord_type(raw: dict[str, Any], kind: str | None) -> None:
    assert VENUE.order_kind(order(**raw)) == kind


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"category": "full_liquidation"}, "liquidation"),
        ({"category": "partial_liquidation"}, "liquidation"),
        ({"category": "adl"}, "adl"),
        ({"algoId": "681096944655273984", "slTriggerPx": "55000"}, "stop_loss"),
        ({"algoId": "681096944655273984", "tpTriggerPx": "70000"}, "take_profit"),
        ({"category": "normal"}, "order"),
    ],
)
def test_close_reason_from_category_and_algo(raw: dict[str, Any], reason: str) -> None:
    assert VENUE.close_reason(order(**raw)) == reason


def test_position_side_and_whole_position() -> None:
    assert VENUE.order_position_side(order(posSide="long")) == "long"
    assert VENUE.order_position_side(order(posSide="short")) == "short"
    assert VENUE.order_position_side(order(posSide="net")) is None
    assert VENUE.closes_whole_position(order(ordType="conditional", closeFraction="1"))
    assert not VENUE.closes_whole_position(order(ordType="conditional", closeFraction=""))
