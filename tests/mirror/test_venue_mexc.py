"""MEXC's field mapping (guardbot.mirror.venues.mexc), worked examples from documented payloads
put through ccxt 4.5.90's own parsers (no network).

Sources: MEXC contract API v1 docs as ccxt quotes them (``mexc.py`` ``parse_position`` /
``fetch_balance`` / ``parse_order`` comments) and the futures websocket doc's private channels
(``push.personal.order``: ``side`` 1 open long, 2 close short, 3 open short, 4 close long;
``category`` 1 limit order, 2 system take-over delegate, 3 close delegate, 4 ADL reduction;
``push.personal.asset``: ``positionMargin``, ``frozenBalance``, ``availableBalance``,
``cashBalance``); plan orders' ``triggerType`` 1 (>=) / 2 (<=); stop orders' ``stopLossPrice`` /
``takeProfitPrice`` / ``positionType``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.pro
import pytest

from guardbot.mirror.book import AccountBook
from guardbot.mirror.venues import Mexc, mirror_venue

VENUE = Mexc()
BTC = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def mexc() -> Any:
    ex = ccxt.pro.mexc({"options": {"defaultType": "swap"}})
    market = {
        "id": "BTC_USDT", "symbol": BTC, "base": "BTC", "quote": "USDT", "settle": "USDT",
        "settleId": "USDT", "baseId": "BTC", "quoteId": "USDT", "type": "swap", "spot": False,
        "swap": True, "future": False, "option": False, "contract": True, "linear": True,
        "inverse": False, "contractSize": 0.0001, "taker": 0.0002, "maker": 0.0,
        "active": True, "precision": {"amount": 1, "price": 0.1}, "limits": {},
    }  # fmt: skip
    ex.set_markets([market])
    return ex


POSITION = {
    "positionId": 1394650, "symbol": "BTC_USDT", "positionType": 1, "openType": 2,
    "state": 1, "holdVol": 5000, "frozenVol": 0, "closeVol": 0, "holdAvgPrice": 60000,
    "openAvgPrice": 60000, "closeAvgPrice": 0, "liquidatePrice": 58300, "oim": 1500,
    "im": 1500, "holdFee": 0, "realised": 0, "leverage": 20, "createTime": 1609991676000,
    "updateTime": 1609991676000, "autoAddIm": False,
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "side", "mode", "isolated_wallet", "hedged_account"),
    [
        ({}, "long", "cross", Decimal(0), False),
        ({"positionType": 2, "openType": 1, "im": 300}, "short", "isolated", Decimal(300), False),
        ({}, "long", "cross", Decimal(0), True),
    ],
)  # fmt: skip
def test_position(
    mexc: Any,
    changes: dict[str, Any],
    side: str,
    mode: str,
    isolated_wallet: Decimal,
    hedged_account: bool,
) -> None:
    pos = mexc.parse_position({**POSITION, **changes})
    assert pos["hedged"] is None  # MEXC's position does not say: the account's mode does
    book = AccountBook("m", VENUE)
    book.apply_rest(positions=[pos], hedged=hedged_account)
    (held,) = book.positions.values()
    # holdVol in contracts of 0.0001 BTC: 5000 = 0.5 BTC
    assert (held.contracts, pos["contractSize"]) == (5000, 0.0001)
    assert (held.side, held.margin_mode, held.leverage, held.hedged) == (
        side, mode, Decimal(20), hedged_account,
    )  # fmt: skip
    assert held.isolated_wallet == isolated_wallet
    assert held.liquidation == Decimal(58300)


def test_cross_wallet_from_rest_not_from_the_asset_push(mexc: Any) -> None:
    response = {"success": True, "code": 0, "data": [
        {"currency": "USDT", "positionMargin": 1800, "frozenBalance": 0,
         "availableBalance": 900, "cashBalance": 900, "equity": 1460, "unrealized": -40,
         "bonus": 0, "availableCash": 900, "availableOpen": 900}]}  # fmt: skip
    rest = mexc.custom_parse_balance(response, "swap")
    assert VENUE.cross_wallet_with(rest, Decimal(300)) == Decimal(1200)
    push = {"currency": "USDT", "positionMargin": 1800, "frozenBalance": 0,
            "availableBalance": 900, "cashBalance": 900, "bonus": 0}  # fmt: skip
    assert VENUE.cross_wallet_with({"info": push}, Decimal(0)) is None


PLAN = {
    "id": "266583973507973632", "symbol": "BTC_USDT", "leverage": 20, "side": 4,
    "triggerPrice": 55000, "price": 0, "vol": 5000, "openType": 2, "triggerType": 2,
    "state": 1, "executeCycle": 87600, "trend": 1, "orderType": 5, "errorCode": 0,
    "createTime": 1609991676000, "updateTime": 1609991676000,
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "kind", "side", "position_side"),
    [
        ({}, "stop_loss", "sell", "long"),
        ({"triggerType": 1}, "take_profit", "sell", "long"),
        ({"side": 2, "triggerType": 1}, "stop_loss", "buy", "short"),
        ({"side": 2, "triggerType": 2}, "take_profit", "buy", "short"),
        ({"side": 1}, None, "buy", "long"),  # a trigger that opens guards nothing
    ],
)
def test_plan_orders(
    mexc: Any, changes: dict[str, Any], kind: str | None, side: str, position_side: str
) -> None:
    order = mexc.parse_order({**PLAN, **changes})
    assert order["status"] == "open"
    assert VENUE.order_kind(order) == kind
    assert VENUE.order_side(order) == side  # ccxt alone says 'sell' for side 2 (close short)
    assert VENUE.order_position_side(order) == position_side


def test_position_tp_sl_orders_are_read_raw(mexc: Any) -> None:
    entry = {
        "id": 93, "orderId": "0", "symbol": "BTC_USDT", "positionId": 1394650,
        "stopLossPrice": 55000, "takeProfitPrice": 70000, "state": 1, "triggerSide": 0,
        "positionType": 1, "vol": 0, "realityVol": 0, "placeOrderId": 0, "errorCode": 0,
        "version": 1, "isFinished": 0, "createTime": 1, "updateTime": 1,
    }  # fmt: skip
    sl, tp = VENUE._stop_legs(mexc, entry)
    book = AccountBook("m", VENUE)
    orders = {o.kind: o for o in (book._order(sl), book._order(tp)) if o is not None}
    assert orders["stop_loss"].trigger_price == 55000 and orders["stop_loss"].side == "sell"
    assert orders["take_profit"].trigger_price == 70000
    assert orders["stop_loss"].amount is None  # vol 0: the whole position
    assert {o.id for o in orders.values()} == {"93:stop_loss", "93:take_profit"}
    (only,) = VENUE._stop_legs(mexc, {**entry, "takeProfitPrice": None})
    assert only["id"] == "93"


ORDER = {
    "category": 1, "createTime": 1610005069976, "dealAvgPrice": 57000, "dealVol": 5000,
    "errorCode": 0, "externalOid": "_m_95bc2b72d3784bce8f9efecbdef9fe35",
    "feeCurrency": "USDT", "leverage": 0, "makerFee": 0, "openType": 2,
    "orderId": "102067003631907840", "orderMargin": 0, "orderType": 5, "positionId": 1397818,
    "price": 57000, "profit": -1500, "remainVol": 0, "side": 4, "state": 3,
    "symbol": "BTC_USDT", "takerFee": 0.04, "updateTime": 1610005069983, "usedMargin": 0,
    "version": 2, "vol": 5000,
}  # fmt: skip


@pytest.mark.parametrize(
    ("category", "reason"), [(2, "liquidation"), (4, "adl"), (3, "order"), (1, "order")]
)
def test_close_reason(mexc: Any, category: int, reason: str) -> None:
    order = mexc.parse_order({**ORDER, "category": category})
    assert order["status"] == "closed"
    assert VENUE.close_reason(order) == reason
    assert VENUE.order_position_side(order) == "long"


def test_registered() -> None:
    venue = mirror_venue("mexc")
    assert venue.streams == ("balance",) and venue.stream_triggers_rest
    assert not ccxt.pro.mexc().describe()["has"]["watchPositions"]
