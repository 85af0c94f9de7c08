"""The generic feed plan: which streams per venue, what each entry contributes, NotSupported
dropped once, funding from the venue (stream or REST poll), marks from tickers."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from decimal import Decimal
from typing import Any

import ccxt
import ccxt.pro
import pytest

from guardbot.feeds.base import FeedStale, SymbolState, TickUpdate
from guardbot.feeds.ccxt_feed import CcxtFeed, _Symbol, plan_streams
from guardbot.feeds.fields import extract, interval_ms
from guardbot.feeds.venues import GENERIC, venue_for
from tests.feeds.test_ccxt_feed import TIMEOUT, Channel, FakeClock, FakeRandom, settle, take

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"

# --- what one entry contributes (shapes as ccxt 4.5.90 returns them; raw fields from the
# --- venues' frames as quoted in ccxt's handlers) -------------------------------------------

BYBIT_TICKER = {  # tickers.BTCUSDT, parsed by ccxt bybit.parse_ticker
    "symbol": BTC,
    "timestamp": 1673272861686,
    "last": 17216.0,
    "bid": 17215.5,
    "ask": 17216.0,
    "markPrice": 17217.33,
    "indexPrice": 17227.36,
    "info": {"fundingRate": "-0.000212", "nextFundingTime": "1673280000000"},
}
MEXC_TICKER = {  # sub.ticker push.ticker: fairPrice/indexPrice/fundingRate stay in info
    "symbol": BTC,
    "timestamp": 1731137509138,
    "last": 76376.1,
    "bid": 76376.2,
    "ask": 76376.3,
    "markPrice": None,
    "indexPrice": None,
    "info": {"fairPrice": 76374.4, "indexPrice": 76385.8, "fundingRate": 0.0001},
}
BITGET_TICKER = {  # ticker channel, USDT-FUTURES: parse_ws_ticker leaves mark/index/funding raw
    "symbol": BTC,
    "timestamp": 1701843962811,
    "last": 43480.4,
    "bid": 43476.3,
    "ask": 43476.8,
    "info": {
        "markPrice": "43476.4",
        "indexPrice": "43478.4",
        "fundingRate": "0.000096",
        "nextFundingTime": "1701849600000",
    },
}
GATE_TICKER = {  # futures.tickers: mark_price unified, funding_rate raw, no next time
    "symbol": BTC,
    "timestamp": None,
    "last": 43444.8,
    "markPrice": 43445.1,
    "indexPrice": 43446.0,
    "info": {"funding_rate": "0.0001"},
}
OKX_FUNDING = {  # funding-rate channel: fundingTime (the next settlement) is fundingTimestamp
    "symbol": BTC,
    "timestamp": None,
    "fundingRate": 0.0001,
    "fundingTimestamp": 1700006400000,
    "nextFundingTimestamp": 1700035200000,
    "interval": "8h",
    "info": {},
}
KUCOIN_FUNDING_WS = {  # funding-fee (Pro websocket): ccxt's fundingTimestamp is ft, the
    # funding time of the period in force; nt (the next one) stays raw
    "symbol": BTC,
    "timestamp": None,
    "fundingRate": 0.000035,
    "fundingTimestamp": 1782806400000,
    "nextFundingTimestamp": 1782835200000,
    "interval": "8h",
    "info": {"s": "XBTUSDTM", "fr": "0.000035", "ft": 1782806400000, "nt": 1782835200000,
             "gl": 28800000},
}  # fmt: skip
KUCOIN_FUNDING_REST = {  # funding-rate/<symbol>/current: fundingTime (next) is fundingTimestamp
    "symbol": BTC,
    "timestamp": None,
    "fundingRate": -3.2e-5,
    "fundingTimestamp": 1776700800000,
    "nextFundingTimestamp": 1750147200000,  # newGranularityStartTime: not a funding time
    "interval": "8h",
    "info": {"symbol": ".XBTUSDTMFPI8H", "timePoint": 1776672000000, "fundingTime": 1776700800000},
}
KUCOIN_MARK = {  # mark-price (Pro websocket): mp/ip unified
    "symbol": BTC,
    "timestamp": 1782834987000,
    "markPrice": "1569.15",
    "indexPrice": "1569.87",
    "info": {"s": "XBTUSDTM", "mp": "1569.15", "ip": "1569.87", "ts": 1782834987000},
}
BINANCE_MARK = {
    "symbol": BTC,
    "timestamp": 5,
    "markPrice": "100",
    "indexPrice": "99",
    "info": {"e": "markPriceUpdate", "r": "0.0003", "T": 1700006400000},
}
BINANCE_BOOK = {
    "symbol": BTC,
    "timestamp": 6,
    "bid": 99.9,
    "ask": 100.1,
    "info": {"e": "bookTicker", "T": 123},
}  # T: transaction time, not funding


@pytest.mark.parametrize(
    ("venue", "kind", "entry", "values", "next_ts"),
    [
        pytest.param("bybit", "ticker", BYBIT_TICKER,
                     {"last": 17216.0, "bid": 17215.5, "ask": 17216.0, "mark": 17217.33,
                      "index": 17227.36, "funding_rate": "-0.000212"}, 1673280000000, id="bybit"),
        pytest.param("mexc", "ticker", MEXC_TICKER,
                     {"last": 76376.1, "bid": 76376.2, "ask": 76376.3, "mark": 76374.4,
                      "index": 76385.8, "funding_rate": 0.0001}, None, id="mexc"),
        pytest.param("bitget", "ticker", BITGET_TICKER,
                     {"last": 43480.4, "bid": 43476.3, "ask": 43476.8, "mark": "43476.4",
                      "index": "43478.4", "funding_rate": "0.000096"}, 1701849600000,
                     id="bitget"),
        pytest.param("gate", "ticker", GATE_TICKER,
                     {"last": 43444.8, "mark": 43445.1, "index": 43446.0,
                      "funding_rate": "0.0001"}, None, id="gate"),
        pytest.param("okx", "funding", OKX_FUNDING, {"funding_rate": 0.0001}, 1700006400000,
                     id="okx-funding-next-settlement"),
        pytest.param("kucoinfutures", "funding", KUCOIN_FUNDING_WS, {"funding_rate": 0.000035},
                     1782835200000, id="kucoin-funding-stream-nt-is-next"),
        pytest.param("kucoinfutures", "funding", KUCOIN_FUNDING_REST, {"funding_rate": -3.2e-5},
                     1776700800000, id="kucoin-funding-rest-fundingTime-is-next"),
        pytest.param("kucoinfutures", "mark", KUCOIN_MARK,
                     {"mark": "1569.15", "index": "1569.87"}, None, id="kucoin-mark"),
        pytest.param("binanceusdm", "mark", BINANCE_MARK,
                     {"mark": "100", "index": "99", "funding_rate": "0.0003"}, 1700006400000,
                     id="binance-mark"),
        pytest.param("binanceusdm", "book", BINANCE_BOOK, {"bid": 99.9, "ask": 100.1}, None,
                     id="binance-book-T-is-not-funding"),
        pytest.param("okx", "ticker", MEXC_TICKER,
                     {"last": 76376.1, "bid": 76376.2, "ask": 76376.3}, None,
                     id="raw-fields-are-per-venue"),
    ],
)  # fmt: skip
def test_extract_per_venue(
    venue: str, kind: Any, entry: dict[str, Any], values: dict[str, object], next_ts: int | None
) -> None:
    got = extract(kind, entry, venue_for(venue))
    assert got is not None
    assert got.values == values
    assert got.next_funding_ts == next_ts


def test_an_entry_of_another_stream_is_not_taken() -> None:
    """ccxt's shared ``tickers`` cache can hold a 24 h ticker where a mark entry was."""
    assert extract("mark", {"symbol": BTC, "last": 1.0}, GENERIC) is None
    assert extract("book", {"symbol": BTC, "last": 1.0}, GENERIC) is None
    assert extract("funding", {"symbol": BTC, "markPrice": 1.0}, GENERIC) is None
    assert extract("ticker", "not a dict", GENERIC) is None


@pytest.mark.parametrize(
    ("text", "ms"),
    [("8h", 28_800_000), ("4h", 14_400_000), ("1h", 3_600_000), ("30m", 1_800_000),
     ("0h", None), ("8", None), (None, None), (8, None)],
)  # fmt: skip
def test_interval(text: object, ms: int | None) -> None:
    assert interval_ms(text) == ms


# --- the plan from the real ccxt.pro classes (no network: nothing is called) ------------------


@pytest.mark.parametrize(
    ("exchange_id", "names"),
    [
        ("binanceusdm", ["watch_mark_prices", "watch_bids_asks", "watch_tickers"]),
        ("bybit", ["watch_bids_asks", "watch_tickers"]),
        ("okx", ["watch_mark_prices", "watch_bids_asks", "watch_tickers", "watch_funding_rates"]),
        ("mexc", ["watch_bids_asks", f"watch_ticker:{BTC}", f"watch_ticker:{ETH}",
                  f"watch_funding_rate:{BTC}", f"watch_funding_rate:{ETH}"]),
        ("bitget", ["watch_bids_asks", "watch_tickers"]),
        ("gate", ["watch_bids_asks", "watch_tickers"]),
        ("kucoinfutures", [f"watch_mark_price:{BTC}", f"watch_mark_price:{ETH}",
                           "watch_bids_asks", "watch_tickers",
                           f"watch_funding_rate:{BTC}", f"watch_funding_rate:{ETH}"]),
    ],
)  # fmt: skip
def test_plan_from_exchange_has(exchange_id: str, names: list[str]) -> None:
    cls = getattr(ccxt.pro, exchange_id)
    exchange, tickers = cls(), cls()
    plan = plan_streams(exchange, tickers, [BTC, ETH], venue_for(exchange_id))
    assert [s.name for s in plan] == names
    marks = [s.name for s in plan if s.carries_mark]
    assert marks, f"{exchange_id}: no stream carries mark prices"


@pytest.mark.parametrize(
    ("exchange_id", "calls"),
    [
        # KuCoin's fetch_mark_prices lists spot margin marks: the contracts' own, one at a time
        ("kucoinfutures", [("fetch_mark_price", "mark"), ("fetch_bids_asks", "book")]),
        ("binanceusdm", [("fetch_mark_prices", "mark"), ("fetch_bids_asks", "book")]),
    ],
)
def test_rest_fallback_plan_per_venue(exchange_id: str, calls: list[tuple[str, str]]) -> None:
    exchange = getattr(ccxt.pro, exchange_id)()
    feed = CcxtFeed(exchange, [BTC])
    assert feed._rest_plan() == calls


def test_what_hyperliquid_lacks_in_ccxt() -> None:
    """The claims of the hyperliquid refusal (guardbot/feeds/venues/hyperliquid.py) hold for the
    installed ccxt: no tiers, no best bid/ask; the ticker's bid/ask are the impact prices and
    the mark only raw."""
    exchange = ccxt.pro.hyperliquid()
    has = exchange.has
    for name in ("fetchLeverageTiers", "fetchMarketLeverageTiers", "watchBidsAsks",
                 "fetchBidsAsks", "watchMarkPrice", "watchMarkPrices"):  # fmt: skip
        assert not has.get(name), name
    assert has.get("watchTicker") and has.get("fetchFundingRates")
    exchange.markets = {}
    exchange.markets_by_id = {}
    ctx = {"markPx": "14.3161", "midPx": "14.314", "oraclePx": "14.32", "funding": "0.0000125",
           "impactPxs": ["14.3047", "14.3444"]}  # fmt: skip
    ticker = exchange.parse_ticker(ctx)
    assert (ticker["bid"], ticker["ask"]) == (14.3047, 14.3444)  # impactPxs
    assert ticker["markPrice"] is None and ticker["info"]["markPx"] == "14.3161"
    assert venue_for("hyperliquid").missing


# --- the feed on fakes -------------------------------------------------------------------------


class TickerVenue:
    """A Bybit-like exchange: tickers carry the mark; watch_bids_asks is NotSupported (as MEXC's
    for swaps); funding by REST."""

    id = "bybit"

    def __init__(self) -> None:
        self.has = {
            "watchTickers": True,
            "watchBidsAsks": True,
            "fetchFundingRates": True,
        }
        self.ticks = Channel()
        self.tickers: dict[str, Any] = {}
        self.bidsasks: dict[str, Any] = {}
        self.book_calls = 0
        self.funding_calls: list[list[str]] = []
        self.funding: dict[str, Any] = {}

    async def watch_bids_asks(self, symbols: list[str]) -> dict[str, Any]:
        self.book_calls += 1
        raise ccxt.NotSupported("watchBidsAsks only support spot market")

    async def watch_tickers(self, symbols: list[str]) -> dict[str, Any]:
        return await self.ticks.watch(self.tickers)

    async def fetch_funding_rates(self, symbols: list[str]) -> dict[str, Any]:
        self.funding_calls.append(list(symbols))
        return {s: self.funding[s] for s in symbols if s in self.funding}


def ticker(symbol: str, mark: object, ts: int, *, nft: int | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"fundingRate": "0.0001"}
    if nft is not None:
        info["nextFundingTime"] = str(nft)
    return {symbol: {"symbol": symbol, "timestamp": ts, "last": mark, "markPrice": mark,
                     "bid": mark - 1, "ask": mark + 1, "info": info}}  # fmt: skip


async def test_not_supported_is_dropped_once_and_marks_come_from_the_ticker() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = TickerVenue(), FakeClock()
        t0 = int(clock.now * 1000)
        ex.funding[BTC] = {"fundingRate": 0.0002, "fundingTimestamp": t0 + 3_600_000,
                           "interval": "1h"}  # fmt: skip
        feed = CcxtFeed(
            ex, [BTC], stale_after_s=5.0, clock=clock, sleep=clock.sleep,
            random=FakeRandom([1.0]), ticker_exchange=ex, funding_poll_s=60.0,
        )  # fmt: skip
        async with feed, aclosing(feed.updates()) as it:
            await settle()
            assert ex.book_calls == 1
            status = feed.status()
            assert "NotSupported" in status["streams"]["watch_bids_asks"]["dropped"]
            assert feed.mode == "ws"  # the ticker still carries marks: no REST
            ex.ticks.put(ticker(BTC, 100.0, t0 + 10))
            await settle()
            (tick,) = await take(it, feed.pending())
            assert isinstance(tick, TickUpdate)
            assert tick.tick.mark == Decimal("100.0") and tick.tick.ask == Decimal("101.0")
            assert tick.next_funding_ts == t0 + 3_600_000  # from the REST poll at start
            assert tick.tick.funding_rate == Decimal("0.0001")  # the ticker's, newer
            await clock.advance(120.0)  # no ticks: stale, but the socket is healthy
            assert ex.book_calls == 1  # never retried
            events = await take(it, feed.pending())
            assert any(isinstance(e, FeedStale) for e in events) and feed.mode == "ws"
        assert status["symbols"][BTC]["funding_interval_ms"] == 3_600_000


async def test_funding_poll_only_for_symbols_no_stream_keeps_current() -> None:
    async with asyncio.timeout(TIMEOUT):
        ex, clock = TickerVenue(), FakeClock()
        t0 = int(clock.now * 1000)
        for sym in (BTC, ETH):
            ex.funding[sym] = {"fundingRate": 0.0001, "fundingTimestamp": t0 + 8 * 3_600_000}
        feed = CcxtFeed(
            ex, [BTC, ETH], clock=clock, sleep=clock.sleep, random=FakeRandom([1.0]),
            ticker_exchange=ex, funding_poll_s=60.0,
        )  # fmt: skip
        async with feed, aclosing(feed.updates()):
            await settle()
            assert ex.funding_calls == [[BTC, ETH]]  # at start: everyone
            for i in range(4):  # BTC's ticker tells its next funding time every 30 s
                ex.ticks.put(ticker(BTC, 100.0, t0 + i, nft=t0 + 8 * 3_600_000))
                await clock.advance(30.0)
            assert ex.funding_calls == [[BTC, ETH], [ETH], [ETH]]


# --- per-frame fast paths give the same answers as the general ones ----------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1700006400000, 1700006400000), ("1700006400000", 1700006400000), (" 1700006400000 ",
     1700006400000), (1700006400000.0, 1700006400000), ("1.7e12", 1700000000000), (0, None),
     ("0", None), (-5, None), ("-5", None), (1.5, None), ("١٢٣", 123), (True, None), (None, None),
     ("", None), ("abc", None), (float("nan"), None)],
)  # fmt: skip
def test_next_funding_time_values(value: object, expected: int | None) -> None:
    from guardbot.feeds.fields import _positive_int

    assert _positive_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(60000.1, Decimal("60000.1")), (0.1, Decimal("0.1")), ("60000.10", Decimal("60000.10")),
     (" 5 ", Decimal(5)), (7, Decimal(7)), (Decimal("1.5"), Decimal("1.5")), ("nan", "non_finite"),
     (float("inf"), "non_finite"), ("abc", "non_numeric"), (True, "non_numeric"),
     ([1], "non_numeric"), ("0", "non_positive"), (-1.0, "non_positive")],
)  # fmt: skip
def test_price_conversion(value: object, expected: object) -> None:
    """Exchange floats go through their text once (0.1 stays 0.1), strings as given."""
    from guardbot.feeds.base import to_decimal

    if isinstance(expected, Decimal):
        got = to_decimal(value)
        assert got == expected and str(got) == str(expected)
    else:
        with pytest.raises(ValueError, match=str(expected)):
            to_decimal(value)


def test_a_cache_entry_is_examined_once() -> None:
    """A folded entry in ccxt's cache is applied once; the same object is not read again on the
    next wake-ups (ccxt replaces cache entries, it does not change them)."""
    feed = CcxtFeed(type("Ex", (), {"id": "okx", "has": {}})(), [BTC, ETH])
    feed._syms = {s: _Symbol(SymbolState(s), 0.0) for s in (BTC, ETH)}
    btc1 = {"symbol": BTC, "timestamp": 1, "markPrice": 100}
    eth_folded = {"symbol": ETH, "timestamp": 2, "markPrice": 10}
    cache = {BTC: btc1, ETH: eth_folded}
    assert feed._ingest("mark", {BTC: btc1}, cache, (BTC, ETH)) is True
    events = [feed._queue.get_nowait() for _ in range(feed.pending())]
    assert [(e.tick.symbol, e.tick.mark) for e in events] == [(BTC, 100), (ETH, 10)]
    # nothing new: the same objects are not turned into ticks again
    assert feed._ingest("mark", {}, cache, (BTC, ETH)) is None
    assert feed.pending() == 0
    # a new object is read
    cache[ETH] = {"symbol": ETH, "timestamp": 3, "markPrice": 11}
    assert feed._ingest("mark", {}, cache, (BTC, ETH)) is True
    assert feed._queue.get_nowait().tick.mark == 11


async def test_event_queue_keeps_order_and_survives_a_cancelled_consumer() -> None:
    from guardbot.feeds.base import FeedRecovered
    from guardbot.feeds.ccxt_feed import _Events

    events = _Events()
    first = asyncio.ensure_future(events.get())
    await asyncio.sleep(0)
    first.cancel()  # a consumer that gave up waiting
    with pytest.raises(asyncio.CancelledError):
        await first
    waiting = asyncio.ensure_future(events.get())
    await asyncio.sleep(0)
    a, b = FeedRecovered("A", 1), FeedRecovered("B", 2)
    events.put_nowait(a)
    events.put_nowait(b)
    assert events.qsize() == 2
    assert await asyncio.wait_for(waiting, TIMEOUT) is a
    assert events.get_nowait() is b
    with pytest.raises(asyncio.QueueEmpty):
        events.get_nowait()
