"""Bitget's field mapping (guardbot.mirror.venues.bitget), worked examples from documented
payloads put through ccxt 4.5.90's own parsers (no network).

Sources: Bitget API v2 docs as ccxt quotes them in its parsers (``bitget.py``
``fetch_positions`` / ``fetch_balance`` / ``parse_order`` comments, ``pro/bitget.py``
``handle_positions`` / ``handle_balance``): "Get All Positions", "Get Account List", "Get
Pending Orders", "Get Pending Trigger Orders", websocket "Positions / Account / Order Channel";
``tradeSide`` values from the v2 "Get Order Detail" field table (``burst_close_long``:
"Liquidate long positions for hedge position mode", ``offset_close_*``: netting).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.pro
import pytest

from guardbot.errors import ConfigError
from guardbot.mirror.book import AccountBook
from guardbot.mirror.venues import Bitget, mirror_venue

VENUE = Bitget()


@pytest.fixture(scope="module")
def bitget() -> Any:
    ex = ccxt.pro.bitget({"options": {"defaultType": "swap"}})
    market = {
        "id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT",
        "settle": "USDT", "settleId": "USDT", "baseId": "BTC", "quoteId": "USDT", "type": "swap",
        "spot": False, "swap": True, "future": False, "option": False, "contract": True,
        "linear": True, "inverse": False, "contractSize": 1, "taker": 0.0006, "maker": 0.0002,
        "active": True, "precision": {"amount": 0.001, "price": 0.1}, "limits": {},
    }  # fmt: skip
    ex.set_markets([market])
    return ex


#: "Get All Positions" entry (docs' example), hedge mode, cross
POSITION = {
    "marginCoin": "USDT", "symbol": "BTCUSDT", "holdSide": "long", "openDelegateSize": "0",
    "marginSize": "3.73555", "available": "0.002", "locked": "0", "total": "0.002",
    "leverage": "20", "achievedProfits": "0", "openPriceAvg": "37355.5", "marginMode": "crossed",
    "posMode": "hedge_mode", "unrealizedPL": "0.03", "liquidationPrice": "31725.023602417",
    "keepMarginRate": "0.004", "markPrice": "37370.5", "marginRatio": "0.029550120396",
    "cTime": "1700807507275",
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "side", "mode", "hedged", "isolated_wallet"),
    [
        ({}, "long", "cross", True, Decimal(0)),
        ({"marginMode": "isolated", "holdSide": "short"}, "short", "isolated", True,
         Decimal("3.73555")),
        ({"posMode": "one_way_mode"}, "long", "cross", False, Decimal(0)),
    ],
)  # fmt: skip
def test_rest_position(
    bitget: Any, changes: dict[str, str], side: str, mode: str, hedged: bool, isolated_wallet: Any
) -> None:
    pos = bitget.parse_position({**POSITION, **changes})
    assert (pos["side"], pos["marginMode"], pos["hedged"]) == (side, mode, hedged)
    assert pos["contracts"] == 0.002 and pos["leverage"] == 20
    assert VENUE.isolated_wallet(pos) == isolated_wallet
    book = AccountBook("m", VENUE)
    book.apply_rest(positions=[pos])
    (held,) = book.positions.values()
    assert (held.contracts, held.entry, held.leverage) == (
        Decimal("0.002"),
        Decimal("37355.5"),
        Decimal(20),
    )
    assert held.liquidation == Decimal("31725.023602417")


def test_stream_position_isolated_wallet_is_margin_size(bitget: Any) -> None:
    raw = {
        "posId": "926036334386778112", "instId": "BTCUSDT", "marginCoin": "USDT",
        "marginSize": "2.19245", "marginMode": "isolated", "holdSide": "short",
        "posMode": "one_way_mode", "total": "0.001", "available": "0.001", "frozen": "0",
        "openPriceAvg": "43849", "leverage": 20, "achievedProfits": "0",
        "unrealizedPL": "-0.0032", "unrealizedPLR": "-0.00145955438",
        "liquidationPrice": "17629.684814834", "keepMarginRate": "0.004",
        "marginRate": "0.007634649185", "cTime": "1652331666985", "uTime": "1701913016923",
        "autoMargin": "off",
    }  # fmt: skip
    pos = bitget.parse_ws_position(raw, bitget.market("BTC/USDT:USDT"))
    assert VENUE.isolated_wallet(pos) == Decimal("2.19245")
    assert (pos["side"], pos["hedged"]) == ("short", False)


#: "Get Account List" entry (USDT-FUTURES): equity 1,234.5 with 34.5 uPnL, 200 isolated margin
ACCOUNT = {
    "marginCoin": "USDT", "locked": "0", "available": "1200", "crossedMaxAvailable": "900",
    "isolatedMaxAvailable": "900", "maxTransferOut": "900", "accountEquity": "1234.5",
    "usdtEquity": "1234.5", "btcEquity": "0.01", "crossedRiskRate": "0.01",
    "unrealizedPL": "34.5", "coupon": "0",
}  # fmt: skip


def test_cross_wallet_rest_and_stream(bitget: Any) -> None:
    rest = bitget.parse_balance([ACCOUNT])
    assert VENUE.cross_wallet_with(rest, Decimal(200)) == Decimal(1000)
    assert VENUE.cross_wallet(rest) == Decimal(1200)
    frame = {
        "action": "snapshot",
        "arg": {"instType": "USDT-FUTURES", "channel": "account", "coin": "default"},
        "data": [{"marginCoin": "USDT", "frozen": "0", "available": "1200",
                  "maxOpenPosAvailable": "900", "maxTransferOut": "900", "equity": "1234.5",
                  "usdtEquity": "1234.5", "crossedRiskRate": "0.01", "unrealizedPL": "34.5"}],
        "ts": 1701932570822,
    }  # fmt: skip
    assert VENUE.cross_wallet_with({"info": frame, "USDT": {}}, Decimal(200)) == Decimal(1000)
    assert VENUE.cross_wallet({"info": [{**ACCOUNT, "marginCoin": "USDC"}]}) is None


PLAN = {
    "symbol": "BTCUSDT", "size": "0.002", "orderId": "1", "clientOid": "c1", "price": "0",
    "executePrice": "0", "callbackRatio": "", "triggerPrice": "30000",
    "triggerType": "mark_price", "planStatus": "live", "side": "buy", "posSide": "long",
    "marginCoin": "USDT", "marginMode": "crossed", "enterPointSource": "API",
    "tradeSide": "close", "posMode": "hedge_mode", "orderType": "market",
    "cTime": "1700807507275", "uTime": "1700807507275",
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "kind", "side", "position_side", "whole"),
    [
        ({"planType": "pos_loss", "size": ""}, "stop_loss", "sell", "long", True),
        ({"planType": "pos_profit"}, "take_profit", "sell", "long", True),
        ({"planType": "loss_plan"}, "stop_loss", "sell", "long", False),
        ({"planType": "profit_plan", "posSide": "short", "side": "sell"}, "take_profit", "buy",
         "short", False),
        ({"planType": "track_plan"}, "trailing_stop", "sell", "long", False),
        ({"planType": "normal_plan"}, "stop_loss", "sell", "long", False),
        # an opening trigger order guards nothing
        ({"planType": "normal_plan", "tradeSide": "open"}, None, "buy", "long", False),
        # one-way mode: side is the trade's side, posSide "net"
        ({"planType": "normal_plan", "side": "sell", "posSide": "net", "tradeSide": "sell_single",
          "posMode": "one_way_mode"}, None, "sell", None, False),
    ],
)  # fmt: skip
def test_plan_order_kind_and_sides(
    bitget: Any,
    changes: dict[str, str],
    kind: str | None,
    side: str,
    position_side: str | None,
    whole: bool,
) -> None:
    order = bitget.parse_order({**PLAN, **changes})
    assert VENUE.order_kind(order) == kind
    assert VENUE.order_side(order) == side
    assert VENUE.order_position_side(order) == position_side
    assert VENUE.closes_whole_position(order) is whole


def test_plain_limit_order_is_not_protective(bitget: Any) -> None:
    raw = {**PLAN, "status": "live", "orderType": "limit", "tradeSide": "open", "price": "30000"}
    del raw["triggerPrice"]
    assert VENUE.order_kind(bitget.parse_order(raw)) is None


@pytest.mark.parametrize(
    ("trade_side", "source", "reason"),
    [
        ("burst_close_long", "normal", "liquidation"),
        ("burst_sell_single", "normal", "liquidation"),
        ("reduce_close_long", "normal", "liquidation"),
        ("offset_close_long", "normal", "adl"),
        ("close", "pos_loss_market", "stop_loss"),
        ("close", "loss_market", "stop_loss"),
        ("close", "pos_profit_market", "take_profit"),
        ("close", "normal", "order"),
        ("sell_single", "normal", "order"),
    ],
)
def test_close_reason_from_the_order_channel(
    bitget: Any, trade_side: str, source: str, reason: str
) -> None:
    push = {
        "instId": "BTCUSDT", "orderId": "13333", "clientOid": "c", "price": "0", "size": "0.002",
        "notionalUsd": "70", "orderType": "market", "force": "gtc", "side": "sell",
        "fillPrice": "35000", "tradeId": "1", "baseVolume": "0.002", "fillTime": "1",
        "fillFee": "-0.04", "fillFeeCoin": "USDT", "tradeScope": "T", "accBaseVolume": "0.002",
        "priceAvg": "35000", "status": "filled", "cTime": "1", "uTime": "1",
        "feeDetail": [{"feeCoin": "USDT", "fee": "-0.04"}], "enterPointSource": "SYS",
        "tradeSide": trade_side, "posMode": "hedge_mode", "marginCoin": "USDT",
        "marginMode": "crossed", "posSide": "long", "leverage": "20", "reduceOnly": "yes",
        "orderSource": source,
    }  # fmt: skip
    order = bitget.parse_ws_order(push, bitget.market("BTC/USDT:USDT"))
    assert order["status"] == "closed"
    assert VENUE.close_reason(order) == reason
    assert VENUE.order_position_side(order) == "long"


def test_registered_with_a_passphrase() -> None:
    venue = mirror_venue("bitget")
    assert venue.needs_password and venue.ccxt_options["uta"] is False
    assert venue.streams == ("positions", "balance")
    with pytest.raises(ConfigError, match="not supported on 'kucoinfutures'"):
        mirror_venue("kucoinfutures")


def test_a_position_missing_from_a_snapshot_asks_rest_not_closes(bitget: Any) -> None:
    """Every positions push is a snapshot of the open positions: one that is missing is
    refetched over REST (which then says gone, and why) rather than closed on the stream's
    word (an older snapshot may have been handed on: see Bitget.stream_positions)."""
    book = AccountBook("m", VENUE)
    book.apply_rest(positions=[bitget.parse_position(POSITION)])
    book.needs_positions = False
    book.apply_stream_positions([])
    assert list(book.positions) == [("BTC/USDT:USDT", "long")]
    assert book.needs_positions
