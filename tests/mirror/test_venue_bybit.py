"""The Bybit venue's field mapping, from payloads shaped as Bybit v5 documents them.

Sources: the v5 API pages "Get Wallet Balance" (``/v5/account/wallet-balance``), "Get Position
Info" (``/v5/position/list``), "Get Open & Closed Orders" (``/v5/order/realtime``), the private
websocket "Wallet" / "Position" / "Order" topics and the "Enums" page (``stopOrderType``,
``createType``); the same shapes are quoted in ccxt 4.5.90's bybit.py / pro/bybit.py comments.
Numbers are the examples' own or made up.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from guardbot.mirror.venues import Bybit

VENUE = Bybit()

REST_BALANCE = {  # fetch_balance's ``info`` is the whole response
    "retCode": 0,
    "retMsg": "OK",
    "result": {
        "list": [
            {
                "accountType": "UNIFIED",
                "totalEquity": "18070.32797922",
                "totalWalletBalance": "18070.43799271",
                "coin": [
                    {"coin": "BTC", "walletBalance": "0.805994", "equity": "0.805994"},
                    {
                        "coin": "USDT",
                        "walletBalance": "12000.5",
                        "equity": "11950.25",
                        "unrealisedPnl": "-50.25",
                        "totalPositionIM": "300",
                    },
                ],
            }
        ]
    },
    "retExtInfo": {},
    "time": 1672125441042,
}
WS_WALLET_DATA = [  # watch_balance's ``info`` is the ``wallet`` topic's ``data``
    {
        "accountType": "UNIFIED",
        "coin": [{"coin": "USDT", "walletBalance": "9000", "equity": "9100", "free": ""}],
    }
]


def test_cross_wallet_is_the_settle_coins_wallet_balance() -> None:
    assert VENUE.cross_wallet({"info": REST_BALANCE, "USDT": {"total": 1}}) == Decimal("12000.5")
    assert VENUE.cross_wallet({"info": WS_WALLET_DATA}) == Decimal("9000")
    assert VENUE.cross_wallet({"info": {"result": {"list": []}}}) is None
    assert VENUE.cross_wallet({}) is None


def test_isolated_wallet_is_the_position_balance() -> None:
    position = {"info": {"symbol": "ETHUSDT", "positionBalance": "53.9824395", "tradeMode": 1}}
    assert VENUE.isolated_wallet(position) == Decimal("53.9824395")
    assert VENUE.isolated_wallet({"info": {}}) == 0


def order(**raw: Any) -> dict[str, Any]:
    base = {
        "symbol": "BTCUSDT",
        "side": "Sell",
        "positionIdx": 0,
        "orderType": "Market",
        "stopOrderType": "",
        "createType": "CreateByUser",
        "reduceOnly": False,
        "closeOnTrigger": False,
        "triggerDirection": 0,
        "tpslMode": "",
    }
    return {"info": {**base, **raw}}


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"stopOrderType": "StopLoss", "tpslMode": "Full"}, "stop_loss"),
        ({"stopOrderType": "PartialStopLoss", "tpslMode": "Partial"}, "stop_loss"),
        ({"stopOrderType": "TakeProfit", "tpslMode": "Full"}, "take_profit"),
        ({"stopOrderType": "PartialTakeProfit"}, "take_profit"),
        ({"stopOrderType": "TrailingStop"}, "trailing_stop"),
        # a plain conditional order: reduce-only and on the profitable side -> take-profit
        ({"stopOrderType": "Stop", "reduceOnly": True, "triggerDirection": 1}, "take_profit"),
        ({"stopOrderType": "Stop", "reduceOnly": True, "triggerDirection": 2}, "stop_loss"),
        (
            {"stopOrderType": "Stop", "side": "Buy", "closeOnTrigger": True, "triggerDirection": 2},
            "take_profit",
        ),
        ({"stopOrderType": "Stop", "triggerDirection": 1}, "stop_loss"),  # opens: a stop entry
        ({"stopOrderType": "", "orderType": "Limit"}, None),
    ],
)
def test_order_kind_from_stop_order_type(raw: dict[str, Any], kind: str | None) -> None:
    assert VENUE.order_kind(order(**raw)) == kind


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"createType": "CreateByLiq"}, "liquidation"),
        ({"createType": "CreateByTakeOver_PassThrough"}, "liquidation"),
        ({"createType": "CreateByAdl_PassThrough"}, "adl"),
        ({"createType": "CreateByStopLoss", "stopOrderType": "StopLoss"}, "stop_loss"),
        ({"createType": "CreateByPartialStopLoss"}, "stop_loss"),
        ({"createType": "CreateByTrailingStop"}, "stop_loss"),
        ({"createType": "CreateByTakeProfit", "stopOrderType": "TakeProfit"}, "take_profit"),
        ({"createType": "CreateByPartialTakeProfit"}, "take_profit"),
        ({"createType": "CreateByUser"}, "order"),
        ({"createType": "CreateByClosing"}, "order"),
    ],
)
def test_close_reason_from_create_type(raw: dict[str, Any], reason: str) -> None:
    assert VENUE.close_reason(order(**raw)) == reason


def test_position_side_and_whole_position() -> None:
    assert VENUE.order_position_side(order(positionIdx=1)) == "long"
    assert VENUE.order_position_side(order(positionIdx=2)) == "short"
    assert VENUE.order_position_side(order(positionIdx=0)) is None
    assert VENUE.closes_whole_position(order(stopOrderType="StopLoss", tpslMode="Full"))
    assert not VENUE.closes_whole_position(order(stopOrderType="StopLoss", tpslMode="Partial"))
    assert not VENUE.closes_whole_position(order(stopOrderType="", tpslMode=""))


@pytest.mark.parametrize(
    ("item", "wanted"),
    [
        ({"symbol": "BTC/USDT:USDT", "info": {"category": "linear"}}, True),
        ({"symbol": "BTC/USDT:USDT", "info": {}}, True),  # REST list entries carry no category
        ({"symbol": "BTC/USD:BTC", "info": {"category": "inverse"}}, False),
        ({"symbol": "BTCUSD", "info": {"category": "inverse"}}, False),  # market not loaded
        ({"symbol": "BTC/USDC:USDC", "info": {"category": "linear"}}, False),
        ({"symbol": "BTC/USDT", "info": {"category": "spot"}}, False),
    ],
)
def test_only_usdt_linear_is_in_scope(item: dict[str, Any], wanted: bool) -> None:
    assert VENUE.in_scope(item) is wanted
