"""The real ``ccxt.pro.binanceusdm`` code path against the local Binance stand-in.

No test sleeps for a fixed time: websocket tests wait on the stand-in's subscription
counters (``wait_subscribed``), and ``_started`` yields exactly one loop turn so that
a freshly created watch task has registered its future before the server pushes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import ccxt
import ccxt.pro as ccxtpro
import pytest

from tests.standin.binance import StandinBinance

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
TIMEOUT = 10.0


@asynccontextmanager
async def _exchange(standin: StandinBinance, **extra: Any) -> AsyncIterator[Any]:
    exchange = ccxtpro.binanceusdm(standin.ccxt_config(**extra))
    try:
        yield exchange
    finally:
        await exchange.close()


async def _started(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Start a ``watch_*`` call and let it run up to its first real suspension.

    ccxt creates the future it resolves from frames synchronously inside
    ``watch_multiple`` (markets already loaded), so after one loop turn a frame the
    server pushes can no longer be missed.
    """
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(0)  # one loop turn, not a timing guess (see docstring)
    return task


def _assert_clean(standin: StandinBinance) -> None:
    assert standin.unknown_paths == []


def _walk_urls(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [url for item in value.values() for url in _walk_urls(item)]
    return []


async def test_every_ccxt_api_url_points_at_the_standin(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        local = (standin.rest_url, f"ws://{standin.host}:{standin.port}")
        for key in ("api", "test", "demo"):
            urls = _walk_urls(exchange.urls[key])
            assert urls
            foreign = [url for url in urls if not url.startswith(local)]
            assert foreign == [], f"urls[{key!r}] still reaches out: {foreign}"
        assert exchange.urls["api"]["fapiPublic"] == standin.rest_url + "/fapi/v1"
        assert exchange.urls["api"]["ws"]["linear"] == standin.ws_url


async def test_load_markets(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        markets = await exchange.load_markets()
        assert set(markets) == {BTC, ETH}
        btc = markets[BTC]
        assert btc["id"] == "BTCUSDT"
        assert btc["type"] == "swap" and btc["linear"] and btc["contract"]
        assert btc["settle"] == "USDT"
        assert btc["contractSize"] == 1
        assert btc["precision"]["price"] == pytest.approx(0.1)
        assert btc["precision"]["amount"] == pytest.approx(0.001)
        assert btc["limits"]["amount"]["min"] == pytest.approx(0.001)
        assert btc["limits"]["cost"]["min"] == pytest.approx(5)
        assert markets[ETH]["precision"]["price"] == pytest.approx(0.01)
        # load_markets needs exchangeInfo and nothing else
        assert dict(standin.requests) == {"/fapi/v1/exchangeInfo": 1}
    _assert_clean(standin)


async def test_rest_market_data(standin: StandinBinance) -> None:
    await standin.set_price(
        BTC,
        mark="70123.4",
        index="70120.0",
        bid="70123.3",
        ask="70123.5",
        last="70123.6",
        funding_rate="0.00025",
        next_funding_time=1_900_000_000_000,
    )
    await standin.set_price(ETH, mark="3500.12", bid="3500.11", ask="3500.13", last="3500.1")
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        mark = await exchange.fetch_mark_price(BTC)
        assert mark["symbol"] == BTC
        assert mark["markPrice"] == pytest.approx(70123.4)
        assert mark["indexPrice"] == pytest.approx(70120.0)

        marks = await exchange.fetch_mark_prices()
        assert {s: t["markPrice"] for s, t in marks.items()} == {BTC: 70123.4, ETH: 3500.12}

        bids_asks = await exchange.fetch_bids_asks([BTC, ETH])
        assert (bids_asks[BTC]["bid"], bids_asks[BTC]["ask"]) == (70123.3, 70123.5)
        assert (bids_asks[ETH]["bid"], bids_asks[ETH]["ask"]) == (3500.11, 3500.13)

        ticker = await exchange.fetch_ticker(BTC)
        assert ticker["symbol"] == BTC
        assert ticker["last"] == pytest.approx(70123.6)

        funding = await exchange.fetch_funding_rate(BTC)
        assert funding["fundingRate"] == pytest.approx(0.00025)
        assert funding["fundingTimestamp"] == 1_900_000_000_000
        assert funding["markPrice"] == pytest.approx(70123.4)
    assert standin.requests["/fapi/v1/premiumIndex"] == 3
    _assert_clean(standin)


async def test_rest_unknown_symbol_is_a_bad_symbol_error(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        await exchange.load_markets()
        with pytest.raises(ccxt.BadSymbol):
            await exchange.fetch_ticker("DOGE/USDT:USDT")  # rejected by ccxt, not the server
    _assert_clean(standin)


async def test_watch_mark_price(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        await exchange.load_markets()
        task = await _started(exchange.watch_mark_price(BTC))
        await standin.wait_subscribed("btcusdt@markPrice@1s")
        await standin.set_price(BTC, mark="71000.1")
        ticker = await task
        assert ticker["symbol"] == BTC
        assert ticker["markPrice"] == pytest.approx(71000.1)

        # a second update on the already subscribed stream
        task = await _started(exchange.watch_mark_price(BTC))
        await standin.set_price(BTC, mark="71001.2", index="71000.0")
        ticker = await task
        assert ticker["markPrice"] == pytest.approx(71001.2)
        assert ticker["indexPrice"] == pytest.approx(71000.0)

        # 3s stream when use1sFreq is off
        task = await _started(exchange.watch_mark_price(ETH, {"use1sFreq": False}))
        await standin.wait_subscribed("ethusdt@markPrice")
        await standin.set_price(ETH, mark="3600.5")
        assert (await task)["markPrice"] == pytest.approx(3600.5)

    # mark price streams live on the /market category of the futures ws
    assert standin.ws_connects and all(p.startswith("/market/ws/") for p in standin.ws_connects)
    assert standin.subscriptions["btcusdt@markPrice@1s"] == 1
    assert standin.ws_messages[0] == {
        "method": "SUBSCRIBE",
        "params": ["btcusdt@markPrice@1s"],
        "id": 1,
    }
    _assert_clean(standin)


async def test_watch_mark_prices(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        await exchange.load_markets()
        task = await _started(exchange.watch_mark_prices([BTC, ETH]))
        await standin.wait_subscribed("ethusdt@markPrice@1s")
        assert standin.subscriptions["btcusdt@markPrice@1s"] == 1
        await standin.set_price(ETH, mark="3333.33")
        result = await task
        assert list(result) == [ETH]
        assert result[ETH]["markPrice"] == pytest.approx(3333.33)

        task = await _started(exchange.watch_mark_prices([BTC, ETH]))
        await standin.set_price(BTC, mark="72000")
        assert (await task)[BTC]["markPrice"] == pytest.approx(72000)

        # all-market stream
        task = await _started(exchange.watch_mark_prices())
        await standin.wait_subscribed("!markPrice@arr@1s")
        await standin.set_price(BTC, mark="72001")
        result = await task
        assert {s: t["markPrice"] for s, t in result.items()} == {BTC: 72001, ETH: 3333.33}
    _assert_clean(standin)


async def test_watch_bids_asks(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        await exchange.load_markets()
        task = await _started(exchange.watch_bids_asks([BTC, ETH]))
        await standin.wait_subscribed("btcusdt@bookTicker")
        await standin.set_price(BTC, bid="69999.9", ask="70000.1", bid_qty="1.5")
        result = await task
        assert result[BTC]["bid"] == pytest.approx(69999.9)
        assert result[BTC]["ask"] == pytest.approx(70000.1)
        assert result[BTC]["bidVolume"] == pytest.approx(1.5)
    # bookTicker lives on the /public category
    assert standin.ws_connects and all(p.startswith("/public/ws/") for p in standin.ws_connects)
    assert standin.subscriptions["ethusdt@bookTicker"] == 1
    _assert_clean(standin)


async def test_watch_tickers(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        await exchange.load_markets()
        task = await _started(exchange.watch_tickers([BTC, ETH], {"name": "ticker"}))
        await standin.wait_subscribed("btcusdt@ticker")
        await standin.set_price(ETH, last="3400.5")
        result = await task
        assert result[ETH]["last"] == pytest.approx(3400.5)
        assert result[ETH]["info"]["e"] == "24hrTicker"

        # the default watch_tickers channel is miniTicker
        task = await _started(exchange.watch_tickers([BTC]))
        await standin.wait_subscribed("btcusdt@miniTicker")
        await standin.set_price(BTC, last="70500")
        result = await task
        assert result[BTC]["last"] == pytest.approx(70500)
        assert result[BTC]["info"]["e"] == "24hrMiniTicker"
    _assert_clean(standin)


async def test_unwatch_sends_unsubscribe(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        await exchange.load_markets()
        task = await _started(exchange.watch_bids_asks([BTC]))
        await standin.wait_subscribed("btcusdt@bookTicker")
        await standin.set_price(BTC, bid="1", ask="2")
        await task
        await exchange.un_watch_bids_asks([BTC])
        assert standin.unsubscriptions["btcusdt@bookTicker"] == 1
        assert "btcusdt@bookTicker" not in standin.subscribed_streams()
    _assert_clean(standin)


async def test_drop_websockets_rejects_pending_watch_then_reconnects(
    standin: StandinBinance,
) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        await exchange.load_markets()
        task = await _started(exchange.watch_mark_price(BTC))
        await standin.wait_subscribed("btcusdt@markPrice@1s")
        assert await standin.drop_websockets() == 1
        with pytest.raises(ccxt.NetworkError):
            await task

        # ccxt does not reconnect on its own; the next watch dials and subscribes again
        task = await _started(exchange.watch_mark_price(BTC))
        await standin.wait_subscribed("btcusdt@markPrice@1s", count=2)
        await standin.set_price(BTC, mark="68000")
        assert (await task)["markPrice"] == pytest.approx(68000)
        assert sum(standin.ws_connects.values()) == 2
    _assert_clean(standin)


async def test_drop_websockets_while_idle(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        await exchange.load_markets()
        task = await _started(exchange.watch_mark_price(BTC))
        await standin.wait_subscribed("btcusdt@markPrice@1s")
        await standin.set_price(BTC, mark="68000")
        await task
        await standin.drop_websockets()
        # the next watch either fails fast with a NetworkError (close not yet seen by
        # ccxt) or redials; in both cases one retry must succeed
        outcomes = []
        for _ in range(2):
            task = await _started(exchange.watch_mark_price(BTC))
            subscribe = asyncio.ensure_future(
                standin.wait_subscribed("btcusdt@markPrice@1s", count=2)
            )
            done, _pending = await asyncio.wait(
                {task, subscribe}, return_when=asyncio.FIRST_COMPLETED
            )
            if task in done:
                subscribe.cancel()
                with pytest.raises(ccxt.NetworkError):
                    task.result()
                outcomes.append("NetworkError")
                continue
            await standin.set_price(BTC, mark="68001")
            assert (await task)["markPrice"] == pytest.approx(68001)
            outcomes.append("reconnected")
            break
        print(f"drop_websockets while idle: {outcomes}")
        assert outcomes[-1] == "reconnected"
    _assert_clean(standin)


async def test_refuse_connections(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        await exchange.load_markets()
        standin.refuse_connections(True)
        with pytest.raises(ccxt.ExchangeNotAvailable):  # a NetworkError
            await exchange.fetch_mark_price(BTC)
        with pytest.raises(ccxt.NetworkError):
            await exchange.watch_mark_price(BTC)
        assert standin.open_websockets == 0

        standin.refuse_connections(False)
        assert (await exchange.fetch_mark_price(BTC))["markPrice"] == pytest.approx(65000)
        # ccxt backs off the failed ws dial (~0.2 s) before redialling
        task = await _started(exchange.watch_mark_price(BTC))
        await standin.wait_subscribed("btcusdt@markPrice@1s")
        await standin.set_price(BTC, mark="65500")
        assert (await task)["markPrice"] == pytest.approx(65500)
    _assert_clean(standin)


async def test_unknown_paths_are_404_and_recorded(standin: StandinBinance) -> None:
    async with asyncio.timeout(TIMEOUT), _exchange(standin) as exchange:
        with pytest.raises(ccxt.BaseError):
            await exchange.fapiPublicGetDepth({"symbol": "BTCUSDT"})  # not served
    assert standin.unknown_paths == ["GET /fapi/v1/depth?symbol=BTCUSDT"]
