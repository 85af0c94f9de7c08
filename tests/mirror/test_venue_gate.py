"""Gate's field mapping (guardbot.mirror.venues.gate), worked examples from documented payloads
put through ccxt 4.5.90's own parsers (no network).

Sources: Gate API v4 docs as ccxt quotes them (``gate.py`` ``parse_position`` /
``fetch_balance`` / ``parse_order`` comments, ``pro/gate.py`` ``handle_positions`` /
``handle_balance`` / ``handle_order``): "List all positions of a user", "Query futures account",
"List all auto orders" (``trigger.rule`` 1: >=, 2: <=; ``order_type`` close-long-order ...),
futures websocket "positions / balances / orders / autoorders" channels; ``text`` values
(``liquidation``, ``auto_deleveraging``) and ``finish_as`` values from the order field table.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt.pro
import pytest

from guardbot.mirror.book import AccountBook
from guardbot.mirror.venues import Gate, mirror_venue

VENUE = Gate()
BTC = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def gate() -> Any:
    ex = ccxt.pro.gate({"options": {"defaultType": "swap"}})
    market = {
        "id": "BTC_USDT", "symbol": BTC, "base": "BTC", "quote": "USDT", "settle": "USDT",
        "settleId": "usdt", "baseId": "BTC", "quoteId": "USDT", "type": "swap", "spot": False,
        "swap": True, "future": False, "option": False, "contract": True, "linear": True,
        "inverse": False, "contractSize": 0.0001, "taker": 0.00075, "maker": -0.0001,
        "active": True, "precision": {"amount": 1, "price": 0.1}, "limits": {},
        "info": {"taker_fee_rate": "0.00075"},
    }  # fmt: skip
    ex.set_markets([market])
    return ex


#: "List all positions of a user" entry (the websocket ``futures.positions`` one alike)
POSITION = {
    "user": 10000, "contract": "BTC_USDT", "size": 5000, "leverage": "0", "risk_limit": "1000000",
    "leverage_max": "100", "maintenance_rate": "0.005", "value": "30000", "margin": "300",
    "entry_price": "60000", "liq_price": "58100", "mark_price": "60000",
    "unrealised_pnl": "0", "realised_pnl": "0", "mode": "single",
    "cross_leverage_limit": "20", "update_time": 1684994400,
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "side", "mode", "hedged", "leverage", "isolated_wallet"),
    [
        ({}, "long", "cross", False, Decimal(20), Decimal(0)),
        ({"leverage": "10", "cross_leverage_limit": "0", "size": -5000}, "short", "isolated",
         False, Decimal(10), Decimal(300)),
        ({"mode": "dual_short", "size": -5000}, "short", "cross", True, Decimal(20), Decimal(0)),
        ({"mode": "dual_long"}, "long", "cross", True, Decimal(20), Decimal(0)),
    ],
)  # fmt: skip
def test_position(
    gate: Any,
    changes: dict[str, Any],
    side: str,
    mode: str,
    hedged: bool,
    leverage: Decimal,
    isolated_wallet: Decimal,
) -> None:
    pos = gate.parse_position({**POSITION, **changes})
    assert VENUE.isolated_wallet(pos) == isolated_wallet
    book = AccountBook("m", VENUE)
    book.apply_rest(positions=[pos])
    (held,) = book.positions.values()
    # contracts of 0.0001 BTC: 5000 contracts = 0.5 BTC (contracts x contractSize)
    assert held.contracts == 5000 and pos["contractSize"] == 0.0001
    assert (held.side, held.margin_mode, held.hedged, held.leverage) == (
        side, mode, hedged, leverage,
    )  # fmt: skip
    assert held.liquidation == Decimal(58100)


def test_a_closed_hedge_side_is_told_by_its_mode(gate: Any) -> None:
    book = AccountBook("m", VENUE)
    long = gate.parse_position({**POSITION, "mode": "dual_long"})
    short = gate.parse_position({**POSITION, "mode": "dual_short", "size": -2000})
    book.apply_rest(positions=[long, short])
    # size 0 carries no side; ccxt 4.5.90 fills in every cached side of the symbol
    gone = gate.parse_position({**POSITION, "mode": "dual_short", "size": 0})
    book.apply_stream_positions([{**gone, "side": "long"}, {**gone, "side": "short"}])
    assert list(book.positions) == [(BTC, "long")]


def test_cross_wallet_rest_and_stream(gate: Any) -> None:
    # "Query futures account": total excludes unrealised PnL, includes the position margin
    account = {"user": 10000, "currency": "USDT", "total": "1300", "unrealised_pnl": "-40",
               "position_margin": "300", "order_margin": "0", "available": "960",
               "point": "0", "bonus": "0", "in_dual_mode": False}  # fmt: skip
    assert VENUE.cross_wallet_with({"info": [account]}, Decimal(300)) == Decimal(1000)
    assert VENUE.cross_wallet_with({"info": account}, Decimal(0)) == Decimal(1300)
    # futures.balances: the new total after a change, currency in lower case
    push = {"balance": 1500.5, "change": "200", "text": "deposit", "time": 1, "time_ms": 1000,
            "type": "dnw", "user": "10000", "currency": "usdt"}  # fmt: skip
    assert VENUE.cross_wallet_with({"info": [push]}, Decimal(300)) == Decimal("1200.5")
    assert VENUE.cross_wallet({"info": [{**push, "currency": "btc"}]}) is None


AUTO = {
    "user": 10000,
    "trigger": {"strategy_type": 0, "price_type": 1, "price": "55000", "rule": 2,
                "expiration": 0},
    "initial": {"contract": "BTC_USDT", "size": -5000, "price": "0", "tif": "ioc",
                "text": "api", "iceberg": 0, "is_close": False, "is_reduce_only": True,
                "auto_size": ""},
    "id": 9256, "trade_id": 0, "status": "open", "reason": "", "create_time": 1684994400,
    "finish_time": 0, "is_stop_order": False, "me_order_id": 0,
    "order_type": "close-long-order",
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "kind", "side", "position_side", "whole"),
    [
        ({}, "stop_loss", "sell", "long", False),
        ({"trigger": {**AUTO["trigger"], "rule": 1}}, "take_profit", "sell", "long", False),
        ({"order_type": "close-short-order", "trigger": {**AUTO["trigger"], "rule": 1},
          "initial": {**AUTO["initial"], "size": 5000}}, "stop_loss", "buy", "short", False),
        ({"order_type": "close-long-position",
          "initial": {**AUTO["initial"], "size": 0, "is_close": True}},
         "stop_loss", "sell", "long", True),
        ({"order_type": "plan-close-short-position", "trigger": {**AUTO["trigger"], "rule": 2},
          "initial": {**AUTO["initial"], "size": 0, "auto_size": "close_short"}},
         "take_profit", "buy", "short", True),
        # a trigger that opens a position guards nothing
        ({"order_type": "", "initial": {**AUTO["initial"], "is_reduce_only": False}},
         None, "sell", None, False),
    ],
)  # fmt: skip
def test_price_triggered_orders(
    gate: Any,
    changes: dict[str, Any],
    kind: str | None,
    side: str,
    position_side: str | None,
    whole: bool,
) -> None:
    order = gate.parse_order({**AUTO, **changes})
    assert order["status"] == "open" and order["triggerPrice"] is not None
    assert VENUE.order_kind(order) == kind
    assert VENUE.order_side(order) == side
    assert VENUE.order_position_side(order) == position_side
    assert VENUE.closes_whole_position(order) is whole


FILLED = {
    "contract": "BTC_USDT", "create_time": 1684994400.1, "fill_price": "57000",
    "finish_as": "filled", "finish_time": 1684994401.2, "iceberg": 0, "id": 4872460,
    "is_close": False, "is_liq": False, "is_reduce_only": True, "left": 0, "mkfr": "-0.0001",
    "price": "0", "refr": "0", "refu": 0, "size": -5000, "status": "finished", "text": "api",
    "tif": "ioc", "tkfr": "0.00075", "user": "10000",
}  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"text": "liquidation", "is_liq": True}, "liquidation"),
        ({"text": "pm_liquidate"}, "liquidation"),
        ({"text": "auto_deleveraging"}, "adl"),
        ({"text": "auto_deleveraging", "finish_as": "auto_deleveraged"}, "adl"),
        ({}, "order"),
        ({"text": "t-liquidate-my-way"}, "order"),  # a user's own label
    ],
)
def test_close_reason(gate: Any, changes: dict[str, Any], reason: str) -> None:
    order = gate.parse_order({**FILLED, **changes})
    assert VENUE.order_status(order) == "closed"
    assert VENUE.close_reason(order) == reason


def test_a_fired_stop_names_the_close_before_the_order_it_placed(gate: Any) -> None:
    book = AccountBook("m", VENUE)
    book.apply_rest(positions=[gate.parse_position(POSITION)])
    fired = gate.parse_order({**AUTO, "status": "finished", "finish_as": "succeeded"})
    placed = gate.parse_order(FILLED)
    book.apply_stream_orders([fired, placed])
    gone = gate.parse_position({**POSITION, "size": 0})
    book.apply_stream_positions([{**gone, "side": "long"}])
    book.apply_rest(positions=[], balance={"info": [{"currency": "USDT", "total": "1000"}]},
                    orders=[])  # fmt: skip
    cmd = book.command("stream")
    assert cmd is not None
    assert [(c.side, c.reason) for c in cmd.closes] == [("long", "stop_loss")]


def test_registered() -> None:
    venue = mirror_venue("gate")
    assert not venue.needs_password and venue.ccxt_options["unifiedAccount"] is False
