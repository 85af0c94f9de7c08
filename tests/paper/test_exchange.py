"""PaperExchange behaviour: order lifecycle, params, account calls, watching, and the mapping of
guard refusals to ccxt exceptions."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from guardbot.core.codes import Code
from guardbot.paper import PaperExchange, engine_apply, exception_for, journaled_apply
from guardbot.paper.translate import CODE_EXCEPTIONS
from tests.core.enginekit import ETH, NOPE
from tests.paper.paperkit import BTC, make_engine, make_exchange, tick


def _ready(**kwargs: Any) -> PaperExchange:
    kwargs.setdefault("leverage", 10)
    exchange, _ = make_exchange(**kwargs)
    tick(exchange, 1000, 30000)
    return exchange


def test_every_code_maps_to_a_ccxt_exception() -> None:
    assert set(CODE_EXCEPTIONS) == set(Code)
    for code, cls in CODE_EXCEPTIONS.items():
        assert issubclass(cls, ccxt.BaseError)
        error = exception_for(code, "why")
        assert isinstance(error, cls) and str(error) == f"guardbot {code}: why"


def test_binance_equivalents() -> None:
    # the classes ccxt's binance table gives Binance's own codes for these refusals
    assert CODE_EXCEPTIONS[Code.MARGIN_INSUFFICIENT] is ccxt.InsufficientFunds  # -2019
    assert CODE_EXCEPTIONS[Code.ORDER_WOULD_TRIGGER_IMMEDIATELY] is ccxt.OrderImmediatelyFillable
    assert CODE_EXCEPTIONS[Code.REDUCE_ONLY_NO_POSITION] is ccxt.InvalidOrder  # -2022
    assert CODE_EXCEPTIONS[Code.LEVERAGE_EXCEEDS_MAX] is ccxt.OperationRejected  # -2027
    assert CODE_EXCEPTIONS[Code.UNKNOWN_SYMBOL] is ccxt.BadSymbol


@pytest.mark.parametrize(
    ("setup", "call", "error", "code"),
    [
        (
            {},
            ("create_order", BTC, "market", "buy", 100),
            ccxt.InsufficientFunds,
            "MARGIN_INSUFFICIENT",
        ),
        (
            {},
            ("create_order", BTC, "market", "sell", 1, None, {"reduceOnly": True}),
            ccxt.InvalidOrder,
            "REDUCE_ONLY_NO_POSITION",
        ),
        (
            {},
            ("create_order", BTC, "market", "buy", 1, None, {"triggerPrice": 29000}),
            ccxt.OrderImmediatelyFillable,
            "ORDER_WOULD_TRIGGER_IMMEDIATELY",
        ),
        ({}, ("create_order", ETH, "market", "buy", 1), ccxt.ExchangeNotAvailable, "PRICE_STALE"),
        ({}, ("set_leverage", 126, BTC), ccxt.OperationRejected, "LEVERAGE_EXCEEDS_MAX"),
        (
            {"guards": {"max_leverage": 20}},
            ("set_leverage", 25, BTC),
            ccxt.OperationRejected,
            "LEVERAGE_EXCEEDS_MAX",
        ),
        (
            {"guards": {"require_stop_loss": True}},
            ("create_order", BTC, "market", "buy", 1),
            ccxt.InvalidOrder,
            "STOP_LOSS_REQUIRED",
        ),
        (
            {"guards": {"max_position_notional": 10000}},
            ("create_order", BTC, "market", "buy", 1),
            ccxt.OperationRejected,
            "NOTIONAL_EXCEEDS_MAX",
        ),
        (
            {},
            ("create_order", BTC, "limit", "buy", 1, 31000, {"postOnly": True}),
            ccxt.InvalidOrder,
            "INVALID_ORDER",
        ),
        ({}, ("reduce_margin", BTC, 1), ccxt.InvalidOrder, "INVALID_ORDER"),
    ],
)
async def test_refusals_raise_mapped_exceptions(
    setup: dict[str, Any], call: tuple[Any, ...], error: type[Exception], code: str
) -> None:
    exchange = _ready(**setup)
    name, *args = call
    with pytest.raises(error, match=f"^guardbot {code}: "):
        await getattr(exchange, name)(*args)


async def test_margin_mode_change_with_a_position_is_operation_rejected() -> None:
    exchange = _ready()
    await exchange.create_order(BTC, "market", "buy", 0.1)
    with pytest.raises(ccxt.OperationRejected, match="MARGIN_MODE_CHANGE_WITH_OPEN_POSITION"):
        await exchange.set_margin_mode("isolated", BTC)


async def test_not_supported_and_bad_arguments() -> None:
    exchange = _ready()
    with pytest.raises(ccxt.NotSupported):
        await exchange.create_order(BTC, "stop_market", "buy", 1)
    with pytest.raises(ccxt.NotSupported, match=r"params\.trailingAmount"):
        await exchange.create_order(BTC, "market", "buy", 1, None, {"trailingAmount": 10})
    # a one-way account: positionSide LONG is refused by the engine (INVALID_ORDER)
    with pytest.raises(ccxt.InvalidOrder, match="needs hedge mode"):
        await exchange.create_order(BTC, "market", "buy", 1, None, {"positionSide": "LONG"})
    with pytest.raises(ccxt.NotSupported, match="fetch_order_book"):
        await exchange.fetch_order_book(BTC)
    with pytest.raises(AttributeError):
        exchange.no_such_thing  # noqa: B018
    with pytest.raises(ccxt.BadSymbol):
        await exchange.fetch_ticker(NOPE)
    with pytest.raises(ccxt.BadRequest, match="amount must be a number"):
        await exchange.create_order(BTC, "market", "buy", "lots")
    with pytest.raises(ccxt.BadRequest, match="amount: must be > 0"):
        await exchange.create_order(BTC, "market", "buy", -1)
    with pytest.raises(ccxt.ArgumentsRequired):
        await exchange.create_order(BTC, "limit", "buy", 1)
    with pytest.raises(ccxt.ArgumentsRequired):
        await exchange.set_leverage(5)


async def test_limit_order_lifecycle_and_cancel() -> None:
    exchange = _ready()
    order = await exchange.create_limit_buy_order(BTC, 0.5, 29000, {"clientOrderId": "mine"})
    assert order["status"] == "open" and order["clientOrderId"] == "mine"
    assert order["remaining"] == 0.5 and order["average"] is None
    assert [o["id"] for o in await exchange.fetch_open_orders(BTC)] == [order["id"]]
    assert (await exchange.fetch_order(order["id"]))["status"] == "open"
    cancelled = await exchange.cancel_order("", BTC, {"clientOrderId": "mine"})
    assert cancelled["status"] == "canceled"
    assert await exchange.fetch_open_orders() == []
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.cancel_order(order["id"])
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.fetch_order("nope")
    assert await exchange.fetch_closed_orders() == []  # cancelled is not closed, as in ccxt


async def test_resting_limit_fills_on_a_tick() -> None:
    exchange = _ready()
    order = await exchange.create_limit_order(BTC, "buy", 0.5, 29000)
    tick(exchange, 2000, 28900)
    filled = await exchange.fetch_order(order["id"])
    assert filled["status"] == "closed" and filled["filled"] == 0.5
    assert filled["average"] == 29000.0 and filled["lastTradeTimestamp"] == 2000
    trades = await exchange.fetch_my_trades(BTC)
    assert [(t["order"], t["takerOrMaker"], t["price"]) for t in trades] == [
        (order["id"], "maker", 29000.0)
    ]
    assert [o["id"] for o in await exchange.fetch_closed_orders(BTC, since=1000)] == [order["id"]]
    assert await exchange.fetch_closed_orders(BTC, since=1001) == []  # since: creation time


async def test_ioc_limit_that_does_not_fill_expires() -> None:
    exchange = _ready()
    order = await exchange.create_order(BTC, "limit", "buy", 1, 29000, {"timeInForce": "IOC"})
    assert order["status"] == "expired" and order["filled"] == 0.0


async def test_stop_loss_orders_close_only_by_default() -> None:
    # issue 11: a ccxt stop-loss placed while a position was open fired after the position had
    # closed and opened a 0.5 BTC short. close_only_stops (default on) makes it reduce-only.
    exchange = _ready()
    await exchange.create_order(BTC, "market", "buy", 0.5)
    stop = await exchange.create_stop_loss_order(BTC, "market", "sell", 0.5, None, 29000)
    assert stop["reduceOnly"] is True and stop["stopLossPrice"] == 29000.0
    take = await exchange.create_take_profit_order(BTC, "market", "sell", 0.5, None, 31000)
    assert take["reduceOnly"] is True and take["takeProfitPrice"] == 31000.0
    await exchange.create_order(BTC, "market", "sell", 0.5)  # closed by hand
    assert [(await exchange.fetch_order(o["id"]))["status"] for o in (stop, take)] == [
        "canceled",
        "canceled",
    ]
    tick(exchange, 2000, 28000)
    tick(exchange, 3000, 32000)
    assert await exchange.fetch_positions() == []
    with pytest.raises(ccxt.InvalidOrder, match="REDUCE_ONLY_NO_POSITION"):
        await exchange.create_stop_loss_order(BTC, "market", "sell", 0.5, None, 29000)


async def test_stop_loss_price_without_reduce_only_is_a_conditional_order() -> None:
    # with close_only_stops off, ccxt's stand-alone stop-loss (type 2) is the venue's plain
    # stop: a sell stop fires when the price falls to it, position or not
    exchange = _ready(guards={"close_only_stops": False})
    order = await exchange.create_stop_loss_order(BTC, "market", "sell", 0.1, None, 29000)
    assert order["status"] == "open" and order["triggerPrice"] == 29000.0
    tick(exchange, 2000, 29500)
    assert (await exchange.fetch_order(order["id"]))["status"] == "open"
    tick(exchange, 3000, 28990)
    done = await exchange.fetch_order(order["id"])
    assert done["status"] == "closed" and done["side"] == "sell"
    positions = await exchange.fetch_positions([BTC])
    assert positions[0]["side"] == "short"


async def test_take_profit_and_trigger_and_trailing_orders() -> None:
    exchange = _ready()
    await exchange.create_market_buy_order(BTC, 1)
    tp = await exchange.create_take_profit_order(
        BTC, "market", "sell", 1, None, 31000, {"reduceOnly": True}
    )
    assert tp["takeProfitPrice"] == 31000.0 and tp["reduceOnly"] is True
    trigger = await exchange.create_trigger_order(BTC, "limit", "buy", 0.1, 30500, 30400)
    assert trigger["triggerPrice"] == 30400.0 and trigger["price"] == 30500.0
    trailing = await exchange.create_trailing_percent_order(
        BTC, "market", "sell", 1, None, 1, None, {"reduceOnly": True}
    )
    assert trailing["status"] == "open"
    open_ids = [o["id"] for o in await exchange.fetch_open_orders(BTC)]
    assert open_ids == [tp["id"], trigger["id"], trailing["id"]]
    cancelled = await exchange.cancel_all_orders(BTC)
    assert [o["status"] for o in cancelled] == ["canceled"] * 3


async def test_attached_protection_shows_on_the_position() -> None:
    exchange = _ready()
    await exchange.create_order_with_take_profit_and_stop_loss(
        BTC, "market", "buy", 1, None, 33000, 28000
    )
    position = await exchange.fetch_position(BTC)
    assert position is not None
    assert position["stopLossPrice"] == 28000.0 and position["takeProfitPrice"] == 33000.0
    assert position["marginMode"] == "cross" and position["leverage"] == 10.0
    assert position["info"]["entryPrice"] == "30000"


async def test_order_params_set_margin_mode_and_leverage_first() -> None:
    exchange = _ready()
    await exchange.create_order(
        BTC, "market", "buy", 1, None, {"marginMode": "isolated", "leverage": 5}
    )
    position = (await exchange.fetch_positions())[0]
    assert position["marginMode"] == "isolated" and position["leverage"] == 5.0
    assert position["positionMargin"] == 6000.0
    added = await exchange.add_margin(BTC, 100)
    assert (added["type"], added["amount"], added["total"]) == ("add", 100.0, 6100.0)
    reduced = await exchange.reduce_margin(BTC, 50)
    assert reduced["total"] == 6050.0
    balance = await exchange.fetch_balance()
    assert balance["USDT"]["total"] == 10000.0
    assert balance["info"]["wallet"] == "3950"


async def test_market_data_structures() -> None:
    exchange = _ready()
    tick(
        exchange,
        2000,
        30010,
        last=30011,
        bid=30010.5,
        ask=30011.5,
        index=30009,
        funding_rate="0.0001",
    )
    ticker = await exchange.fetch_ticker(BTC)
    assert (ticker["last"], ticker["bid"], ticker["ask"]) == (30011.0, 30010.5, 30011.5)
    assert ticker["markPrice"] == 30010.0 and ticker["indexPrice"] == 30009.0
    assert ticker["timestamp"] == 2000 and ticker["datetime"] == "1970-01-01T00:00:02.000Z"
    assert ticker["info"]["mark"] == "30010"
    # a ticker for every market (the bundled tier tables' symbols), priced or not
    tickers = await exchange.fetch_tickers()
    assert set(tickers) == set(exchange.symbols) and {BTC, ETH} <= set(tickers)
    assert (await exchange.fetch_mark_prices([BTC]))[BTC]["markPrice"] == 30010.0
    unpriced = await exchange.fetch_mark_price(ETH)
    assert unpriced["markPrice"] is None and unpriced["timestamp"] is None
    funding = await exchange.fetch_funding_rate(BTC)
    assert funding["fundingRate"] == 0.0001 and funding["markPrice"] == 30010.0
    tiers = (await exchange.fetch_leverage_tiers([BTC]))[BTC]
    assert tiers[0]["maxLeverage"] == 125.0 and tiers[0]["minNotional"] == 0.0
    assert tiers[1]["maintenanceMarginRate"] == 0.005
    assert tiers[1]["info"]["maintenanceAmount"] == "50"
    assert exchange.price_to_precision(BTC, 30000 * 1.1) == "33000"
    assert exchange.amount_to_precision(BTC, 0.1) == "0.1"
    assert exchange.milliseconds() == 2000


async def test_watch_ticker_waits_for_the_next_tick() -> None:
    exchange = _ready()
    async with asyncio.timeout(5):
        single = asyncio.ensure_future(exchange.watch_ticker(BTC))
        several = asyncio.ensure_future(exchange.watch_mark_prices([BTC, ETH]))
        await asyncio.sleep(0)  # one loop turn: both watchers registered
        assert not single.done() and not several.done()
        tick(exchange, 2000, 30100)
        assert (await single)["last"] is None and (await single)["markPrice"] == 30100.0
        assert list(await several) == [BTC]
        pending = asyncio.ensure_future(exchange.watch_ticker(ETH))
        await asyncio.sleep(0)
        await exchange.close()
        with pytest.raises(ccxt.ExchangeClosedByUser):
            await pending
        with pytest.raises(ccxt.ExchangeClosedByUser):
            await exchange.watch_ticker(BTC)
        with pytest.raises(ccxt.ExchangeClosedByUser):
            await exchange.create_market_buy_order(BTC, 1)


async def test_commands_go_through_the_injected_apply_only() -> None:
    engine = make_engine(leverage=10)
    seen: list[dict[str, Any]] = []

    async def apply(command: Any) -> list[dict[str, Any]]:
        from guardbot.core.commands import parse_command

        seen.append(dict(command))
        return engine.apply(None, parse_command(command))

    exchange = PaperExchange(engine, apply, account="a")
    tick(exchange, 1000, 30000)
    await exchange.create_order(BTC, "limit", "buy", "0.1", "29000.5", {"postOnly": True})
    assert seen == [
        {
            "type": "order",
            "id": "1",
            "symbol": BTC,
            "orderType": "limit",
            "side": "buy",
            "amount": "0.1",
            "price": "29000.5",
            "params": {"postOnly": True},
            "account": "a",
        }
    ]
    # exact decimal strings go to the engine; floats come back as ccxt gives them
    assert engine.accounts["a"].orders["1"].price == Decimal("29000.5")


def test_account_resolution() -> None:
    engine = make_engine(accounts={"x": {}, "y": {}})
    with pytest.raises(ValueError, match="several accounts"):
        PaperExchange(engine, lambda c: None)  # type: ignore[arg-type,return-value]
    assert PaperExchange(engine, lambda c: None, account="y").account == "y"  # type: ignore[arg-type,return-value]


async def test_journaled_apply_commits_every_command_with_its_events() -> None:
    engine = make_engine(leverage=10)
    steps: list[tuple[int, str, dict[str, Any], list[dict[str, Any]]]] = []

    async def commit(ts: int, kind: str, body: Any, events: Any) -> int:
        steps.append((ts, kind, json.loads(json.dumps(body)), list(events)))
        return len(steps)

    lock = asyncio.Lock()
    exchange = PaperExchange(engine, journaled_apply(engine, commit, lambda: 5000, lock=lock))
    tick(exchange, 1000, 30000)
    order = await exchange.create_order(BTC, "market", "buy", 0.1, None, {"leverage": 5})
    assert [(ts, kind) for ts, kind, _, _ in steps] == [(5000, "set_leverage"), (5000, "order")]
    assert steps[1][2]["amount"] == "0.1"  # the body is the JSON command, exact decimals
    assert [e["type"] for e in steps[1][3]] == ["order_accepted", "fill"]
    assert order["timestamp"] == 5000
    with pytest.raises(ccxt.BadRequest, match="amount: must be > 0"):
        await exchange.create_order(BTC, "market", "buy", 0)
    assert len(steps) == 2  # a malformed command is never journaled
    async with lock:  # a step of the host in progress: the strategy's command waits for it
        pending = asyncio.ensure_future(exchange.create_market_buy_order(BTC, 0.1))
        await asyncio.sleep(0)
        assert not pending.done() and len(steps) == 2
    await pending
    assert len(steps) == 3


async def test_order_ids_skip_orders_recovered_open() -> None:
    engine = make_engine(leverage=10)
    first = PaperExchange(engine, engine_apply(engine))
    tick(first, 1000, 30000)
    resting = await first.create_limit_buy_order(BTC, 0.1, 29000)
    # a restart: a new exchange on the recovered engine starts counting again
    second = PaperExchange(engine, engine_apply(engine))
    again = await second.create_limit_buy_order(BTC, 0.1, 28000)
    assert (resting["id"], again["id"]) == ("1", "2")
    # orders it did not see placed are adopted from the engine's book
    assert [o["id"] for o in await second.fetch_open_orders()] == ["1", "2"]
    assert (await second.fetch_order("1"))["price"] == 29000.0
    assert (await second.cancel_order("1"))["status"] == "canceled"


async def test_fetch_position_when_flat_has_the_position_keys() -> None:
    exchange = _ready()
    flat = await exchange.fetch_position(BTC)
    await exchange.create_market_buy_order(BTC, 0.1)
    held = await exchange.fetch_position(BTC)
    assert set(flat) == set(held)
    assert (flat["side"], flat["contracts"], flat["leverage"]) == (None, 0.0, 10.0)
    assert flat["markPrice"] == 30000.0 and flat["marginMode"] == "cross"
    assert held["side"] == "long" and held["contracts"] == 0.1


async def test_a_malformed_order_changes_no_setting() -> None:
    exchange = _ready()
    with pytest.raises(ccxt.BadRequest, match="amount: must be > 0"):
        await exchange.create_order(BTC, "market", "buy", 0, None, {"leverage": 3})
    with pytest.raises(ccxt.ArgumentsRequired):
        await exchange.create_order(BTC, "limit", "buy", 1, None, {"marginMode": "isolated"})
    await exchange.create_market_buy_order(BTC, 0.1)
    position = await exchange.fetch_position(BTC)
    assert (position["leverage"], position["marginMode"]) == (10.0, "cross")


async def test_order_type_and_side_in_upper_case_as_venues_take_them() -> None:
    # ccxt's binance upper-cases type and side before sending them (create_order_request), so a
    # strategy written with 'MARKET' works there; here too, reported lower-case as ccxt does
    exchange = _ready()
    market = await exchange.create_order(BTC, "MARKET", "BUY", 0.1)
    assert (market["type"], market["side"], market["status"]) == ("market", "buy", "closed")
    limit = await exchange.create_limit_order(BTC, "Sell", 0.1, 31000)
    assert (limit["type"], limit["side"], limit["status"]) == ("limit", "sell", "open")
    stop = await exchange.create_order(BTC, "LIMIT", "sell", 0.1, 29000, {"triggerPrice": 29500})
    assert stop["type"] == "limit" and stop["triggerPrice"] == 29500.0
    with pytest.raises(ccxt.NotSupported, match="STOP_MARKET"):
        await exchange.create_order(BTC, "STOP_MARKET", "buy", 1)
    with pytest.raises(ccxt.InvalidOrder, match="side must be buy or sell"):
        await exchange.create_order(BTC, "market", "long", 1)


async def test_fetch_leverage_and_margin_mode() -> None:
    exchange = _ready()  # the account's default: cross at 10x
    assert await exchange.fetch_leverage(BTC) == {
        "info": {"symbol": BTC, "marginMode": "cross", "leverage": "10"},
        "symbol": BTC,
        "marginMode": "cross",
        "longLeverage": 10.0,
        "shortLeverage": 10.0,
    }
    await exchange.set_leverage(5, BTC)
    await exchange.set_margin_mode("isolated", BTC)
    leverage = await exchange.fetch_leverage(BTC)
    assert (leverage["marginMode"], leverage["longLeverage"]) == ("isolated", 5.0)
    both = await exchange.fetch_leverages([BTC, ETH])
    assert both[BTC] == leverage and both[ETH]["longLeverage"] == 10.0
    assert set(await exchange.fetch_leverages()) == set(exchange.symbols)
    mode = await exchange.fetch_margin_mode(BTC)
    assert (mode["symbol"], mode["marginMode"]) == (BTC, "isolated")
    with pytest.raises(ccxt.BadSymbol):
        await exchange.fetch_leverage(NOPE)


async def test_attached_stop_loss_may_not_widen_the_positions_stop() -> None:
    # issue 11 item 3, through ccxt's attached stopLoss: refused as InvalidOrder unless asked for
    exchange = _ready()
    await exchange.create_order(
        BTC, "market", "buy", 0.3, None, {"stopLoss": {"triggerPrice": 28500}}
    )
    with pytest.raises(ccxt.InvalidOrder, match="STOP_LOSS_WOULD_WIDEN"):
        await exchange.create_order(
            BTC, "market", "buy", 0.01, None, {"stopLoss": {"triggerPrice": 27500}}
        )
    assert (await exchange.fetch_position(BTC))["stopLossPrice"] == 28500.0
    await exchange.create_order(
        BTC,
        "market",
        "buy",
        0.01,
        None,
        {"stopLoss": {"triggerPrice": 27500}, "widenStopLoss": True},
    )
    position = await exchange.fetch_position(BTC)
    assert position["stopLossPrice"] == 27500.0 and position["contracts"] == 0.31
