"""The paper exchange against the real ``ccxt.pro.binanceusdm``: same method signatures, same
keys in the unified structures (ccxt talks to the local Binance stand-in, never the network)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from guardbot.paper import PaperExchange
from tests.paper.paperkit import BTC, make_exchange, tick
from tests.paper.private_standin import PrivateStandin, credentials

pytestmark = pytest.mark.integration

TIMEOUT = 10.0

METHODS = [
    "load_markets",
    "fetch_markets",
    "fetch_ticker",
    "fetch_tickers",
    "fetch_mark_price",
    "fetch_mark_prices",
    "fetch_balance",
    "fetch_positions",
    "fetch_position",
    "create_order",
    "create_market_order",
    "create_limit_order",
    "create_market_buy_order",
    "create_market_sell_order",
    "create_limit_buy_order",
    "create_limit_sell_order",
    "create_post_only_order",
    "create_reduce_only_order",
    "create_stop_loss_order",
    "create_take_profit_order",
    "create_trigger_order",
    "create_stop_order",
    "create_stop_market_order",
    "create_stop_limit_order",
    "create_trailing_percent_order",
    "create_order_with_take_profit_and_stop_loss",
    "cancel_order",
    "cancel_all_orders",
    "fetch_order",
    "fetch_open_orders",
    "fetch_closed_orders",
    "fetch_my_trades",
    "set_leverage",
    "set_margin_mode",
    "add_margin",
    "reduce_margin",
    "fetch_leverage",
    "fetch_leverages",
    "fetch_margin_mode",
    "fetch_leverage_tiers",
    "fetch_funding_rate",
    "watch_ticker",
    "watch_tickers",
    "watch_mark_price",
    "watch_mark_prices",
    "close",
]


@pytest.fixture
async def real() -> AsyncIterator[Any]:
    async with PrivateStandin(("BTC/USDT:USDT", "ETH/USDT:USDT")) as server:
        exchange = ccxtpro.binanceusdm(server.ccxt_config(**credentials()))
        try:
            yield exchange
        finally:
            await exchange.close()
        assert server.unknown_paths == []


@pytest.fixture
def paper() -> PaperExchange:
    exchange, _ = make_exchange(wallet=10_000, leverage=10)
    tick(exchange, 1000, 60000, bid=59999.9, ask=60000.1, last=60000)
    return exchange


def _params(function: Any) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values() if p.name != "self"]


@pytest.mark.parametrize("name", METHODS)
def test_signature_matches_ccxt(name: str) -> None:
    ours = getattr(PaperExchange, name)
    theirs = getattr(ccxtpro.binanceusdm, name)
    assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs)
    assert _params(ours) == _params(theirs)
    ours_defaults = [
        p.default is inspect.Parameter.empty for p in inspect.signature(ours).parameters.values()
    ]
    theirs_defaults = [
        p.default is inspect.Parameter.empty for p in inspect.signature(theirs).parameters.values()
    ]
    assert ours_defaults == theirs_defaults  # the same arguments are optional


def test_has_flags_are_ccxt_capabilities() -> None:
    flags = ccxtpro.binanceusdm().has
    for capability in PaperExchange.has:
        assert capability in flags, capability


async def test_load_markets_keys(real: Any, paper: PaperExchange) -> None:
    async with asyncio.timeout(TIMEOUT):
        theirs = (await real.load_markets())[BTC]
    ours = (await paper.load_markets())[BTC]
    assert set(ours) == set(theirs)
    for nested in ("precision", "limits", "marginModes"):
        assert set(ours[nested]) == set(theirs[nested]), nested
    for key in ("id", "symbol", "base", "quote", "settle", "type", "linear", "contract", "swap"):
        assert ours[key] == theirs[key], key
    assert ours["contractSize"] == theirs["contractSize"] == 1


async def test_fetch_ticker_keys(real: Any, paper: PaperExchange) -> None:
    async with asyncio.timeout(TIMEOUT):
        theirs = await real.fetch_ticker(BTC)
    ours = await paper.fetch_ticker(BTC)
    assert set(ours) == set(theirs)
    assert isinstance(ours["last"], float) and ours["last"] == 60000.0
    assert ours["markPrice"] == 60000.0 and ours["bid"] == 59999.9


async def test_fetch_positions_keys(real: Any, paper: PaperExchange) -> None:
    async with asyncio.timeout(TIMEOUT):
        theirs = await real.fetch_positions()
    await paper.create_order(BTC, "market", "buy", 0.5)
    ours = await paper.fetch_positions()
    assert len(theirs) == len(ours) == 1
    assert set(ours[0]) == set(theirs[0])
    assert ours[0]["side"] == theirs[0]["side"] == "long"
    assert ours[0]["contracts"] == theirs[0]["contracts"] == 0.5
    assert isinstance(ours[0]["info"], dict)


async def test_fetch_balance_keys(real: Any, paper: PaperExchange) -> None:
    async with asyncio.timeout(TIMEOUT):
        theirs = await real.fetch_balance()
    ours = await paper.fetch_balance()
    assert set(ours) == set(theirs)
    assert set(ours["USDT"]) == set(theirs["USDT"])
    assert set(ours["total"]) == set(theirs["total"]) == {"USDT"}
    assert ours["USDT"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}


async def test_fetch_leverage_and_margin_mode_keys(real: Any, paper: PaperExchange) -> None:
    async with asyncio.timeout(TIMEOUT):
        theirs = await real.fetch_leverage(BTC)
        their_mode = await real.fetch_margin_mode(BTC)
    ours = await paper.fetch_leverage(BTC)
    assert set(ours) == set(theirs)
    for key in ("symbol", "marginMode", "longLeverage", "shortLeverage"):
        assert ours[key] == theirs[key], key  # both: cross at 10x
    our_mode = await paper.fetch_margin_mode(BTC)
    assert set(our_mode) == set(their_mode)
    assert our_mode["marginMode"] == their_mode["marginMode"] == "cross"
