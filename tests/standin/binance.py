"""A local stand-in for Binance USDⓈ-M futures (REST ``/fapi/v1`` and market websockets).

``StandinBinance`` is an aiohttp server on 127.0.0.1 (ephemeral port).  Its
``ccxt_config()`` points every URL that ``ccxt.pro.binanceusdm`` knows about at the
server, so the real ccxt REST and websocket code runs against it offline.  Paths
the stand-in does not serve answer 404 and are recorded in ``unknown_paths``: a test
can assert that ccxt asked for nothing unexpected.

Served REST (GET): ``/fapi/v1/exchangeInfo``, ``/fapi/v1/time``, ``/fapi/v1/ping``,
``/fapi/v1/premiumIndex``, ``/fapi/v1/ticker/24hr``, ``/fapi/v1/ticker/bookTicker``,
``/fapi/v1/ticker/price``, and the signed ``/fapi/v1/leverageBracket`` (any API key).

Served websockets: ``/ws``, ``/ws/<n>``, ``/market/ws/<n>``, ``/public/ws/<n>`` with the
Binance ``SUBSCRIBE`` / ``UNSUBSCRIBE`` / ``LIST_SUBSCRIPTIONS`` protocol and the streams
``<sym>@markPrice[@1s]``, ``!markPrice@arr[@1s]``, ``<sym>@bookTicker``, ``!bookTicker``,
``<sym>@ticker``, ``!ticker@arr``, ``<sym>@miniTicker``, ``!miniTicker@arr``.  Frames are
only pushed when the test changes state (``set_price`` / ``push``), never on a timer,
so tests stay deterministic.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from tests.standin.base import abort_all, send_each

Number = str | int | float | Decimal

# --------------------------------------------------------------------------------------
# Fixture data: raw /fapi/v1/exchangeInfo symbol entries (shape as Binance returns them).
# --------------------------------------------------------------------------------------

_COMMON_SYMBOL_FIELDS: dict[str, Any] = {
    "contractType": "PERPETUAL",
    "deliveryDate": 4133404800000,
    "onboardDate": 1569398400000,
    "status": "TRADING",
    "maintMarginPercent": "2.5000",
    "requiredMarginPercent": "5.0000",
    "quoteAsset": "USDT",
    "marginAsset": "USDT",
    "pricePrecision": 2,
    "quantityPrecision": 3,
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "underlyingType": "COIN",
    "settlePlan": 0,
    "triggerProtect": "0.0500",
    "liquidationFee": "0.012500",
    "marketTakeBound": "0.05",
    "maxMoveOrderLimit": 10000,
    "orderTypes": [
        "LIMIT",
        "MARKET",
        "STOP",
        "STOP_MARKET",
        "TAKE_PROFIT",
        "TAKE_PROFIT_MARKET",
        "TRAILING_STOP_MARKET",
    ],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    "permissionSets": ["GRID", "COPY"],
}


def _symbol_entry(
    symbol: str,
    base: str,
    sub_type: str,
    *,
    tick: str,
    min_price: str,
    max_price: str,
    max_qty: str,
    max_market_qty: str,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"symbol": symbol, "pair": symbol, "baseAsset": base}
    entry.update(copy.deepcopy(_COMMON_SYMBOL_FIELDS))
    entry["underlyingSubType"] = [sub_type]
    entry["filters"] = [
        {
            "filterType": "PRICE_FILTER",
            "tickSize": tick,
            "minPrice": min_price,
            "maxPrice": max_price,
        },
        {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001", "maxQty": max_qty},
        {
            "filterType": "MARKET_LOT_SIZE",
            "stepSize": "0.001",
            "minQty": "0.001",
            "maxQty": max_market_qty,
        },
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": "5"},
        {
            "filterType": "PERCENT_PRICE",
            "multiplierUp": "1.0500",
            "multiplierDown": "0.9500",
            "multiplierDecimal": "4",
        },
    ]
    return entry


EXCHANGE_INFO_SYMBOLS: dict[str, dict[str, Any]] = {
    "BTCUSDT": _symbol_entry(
        "BTCUSDT",
        "BTC",
        "PoW",
        tick="0.10",
        min_price="556.80",
        max_price="4529764",
        max_qty="1000",
        max_market_qty="120",
    ),
    "ETHUSDT": _symbol_entry(
        "ETHUSDT",
        "ETH",
        "Layer-1",
        tick="0.01",
        min_price="39.86",
        max_price="306177",
        max_qty="10000",
        max_market_qty="2000",
    ),
}

# unified symbol -> exchange id for the markets the stand-in can serve
UNIFIED_TO_ID: dict[str, str] = {
    "BTC/USDT:USDT": "BTCUSDT",
    "ETH/USDT:USDT": "ETHUSDT",
}

DEFAULT_PRICES: dict[str, dict[str, str]] = {
    "BTCUSDT": {"mark": "65000.0", "bid": "64999.9", "ask": "65000.1", "last": "65000.0"},
    "ETHUSDT": {"mark": "3200.00", "bid": "3199.99", "ask": "3200.01", "last": "3200.00"},
}

# 18 more perpetuals for load tests (the soak bench follows 20 symbols). Their exchangeInfo
# entries are synthetic: BTC's and ETH's shape with a tick size and price band scaled to the
# price, not recorded from Binance; nothing in guardbot reads those filters.
_EXTRA_SYMBOLS: tuple[tuple[str, str, str, str], ...] = (
    # base, sub type, tick size, default mark
    ("SOL", "Layer-1", "0.010", "150.00"),
    ("BNB", "CEX", "0.010", "600.00"),
    ("XRP", "Payment", "0.0001", "0.6000"),
    ("DOGE", "Meme", "0.00001", "0.15000"),
    ("ADA", "Layer-1", "0.0001", "0.4500"),
    ("AVAX", "Layer-1", "0.001", "35.000"),
    ("LINK", "Infrastructure", "0.001", "15.000"),
    ("DOT", "Layer-0", "0.001", "7.000"),
    ("LTC", "PoW", "0.01", "80.00"),
    ("TRX", "Layer-1", "0.00001", "0.12000"),
    ("ATOM", "Layer-0", "0.001", "8.000"),
    ("NEAR", "Layer-1", "0.001", "5.000"),
    ("APT", "Layer-1", "0.001", "9.000"),
    ("ARB", "Layer-2", "0.0001", "1.0000"),
    ("OP", "Layer-2", "0.0001", "2.0000"),
    ("FIL", "Storage", "0.001", "5.000"),
    ("SUI", "Layer-1", "0.0001", "1.5000"),
    ("BCH", "PoW", "0.01", "400.00"),
)
for _base, _sub, _tick, _mark in _EXTRA_SYMBOLS:
    _id = f"{_base}USDT"
    _price = Decimal(_mark)
    EXCHANGE_INFO_SYMBOLS[_id] = _symbol_entry(
        _id,
        _base,
        _sub,
        tick=_tick,
        min_price=str((_price / 100).quantize(Decimal(_tick))),
        max_price=str((_price * 100).quantize(Decimal(_tick))),
        max_qty="10000000",
        max_market_qty="1000000",
    )
    UNIFIED_TO_ID[f"{_base}/USDT:USDT"] = _id
    _step = Decimal(_tick)
    DEFAULT_PRICES[_id] = {
        "mark": _mark,
        "bid": str(_price - _step),
        "ask": str(_price + _step),
        "last": _mark,
    }

# What /fapi/v1/leverageBracket serves for every symbol: (floor, cap, maintenance margin ratio,
# max leverage, cum). Deliberately unlike the bundled snapshot, so a test can tell them apart.
LEVERAGE_BRACKETS: tuple[tuple[int, int, float, int, float], ...] = (
    (0, 50_000, 0.004, 125, 0.0),
    (50_000, 250_000, 0.005, 100, 50.0),
    (250_000, 1_000_000, 0.01, 50, 1_300.0),
    (1_000_000, 5_000_000, 0.025, 20, 16_300.0),
)

# Every REST base URL key of ccxt's binance ``urls['api']`` (ccxt 4.5.90), with the path
# prefix the stand-in gives it.  Only ``fapiPublic`` is served; the rest exist so that a
# stray call lands here (404, recorded) instead of on the internet.
REST_URL_PATHS: dict[str, str] = {
    "sapi": "/sapi/v1",
    "sapiV2": "/sapi/v2",
    "sapiV3": "/sapi/v3",
    "sapiV4": "/sapi/v4",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/dapi/futures/data",
    "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1",
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "papi": "/papi/v1",
    "papiV2": "/papi/v2",
}

# ``urls['api']['ws']`` keys.  ``linear`` must end in exactly ``/ws``: ccxt rewrites it to
# ``<prefix>/market/ws`` or ``<prefix>/public/ws`` (see ``get_ws_url`` in ccxt/pro/binance.py).
WS_URL_PATHS: dict[str, str] = {
    "spot": "/unserved/spot/ws",
    "margin": "/unserved/margin/ws",
    "linear": "/ws",
    "inverse": "/unserved/dstream/ws",
    "stock": "/unserved/stock/ws",
    "option": "/unserved/eoptions/public/ws",
    "optionMarket": "/unserved/eoptions/market/ws",
    "optionPrivate": "/unserved/eoptions/private/ws",
    "papi": "/unserved/pm/ws",
}
WS_API_URL_PATHS: dict[str, str] = {
    "spot": "/unserved/ws-api/v3",
    "linear": "/unserved/ws-fapi/v1",
    "inverse": "/unserved/ws-dapi/v1",
}

_MARK_STREAMS = ("markPrice@1s", "markPrice")
_ALL_MARK_STREAMS = ("!markPrice@arr@1s", "!markPrice@arr")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _num(value: Number) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass
class SymbolState:
    """What the stand-in knows about one contract; all prices are decimal strings."""

    symbol: str
    mark: str
    index: str
    last: str
    bid: str
    ask: str
    bid_qty: str = "5.000"
    ask_qty: str = "5.000"
    funding_rate: str = "0.00010000"
    interest_rate: str = "0.00010000"
    next_funding_time: int = field(
        default_factory=lambda: (_now_ms() // 28_800_000 + 1) * 28_800_000
    )
    open: str = ""
    high: str = ""
    low: str = ""
    volume: str = "1000.000"
    quote_volume: str = ""
    last_qty: str = "0.010"
    book_update_id: int = 1
    updated_ms: int = field(default_factory=_now_ms)

    def __post_init__(self) -> None:
        self.open = self.open or self.last
        self.high = self.high or max(self.last, self.open, key=Decimal)
        self.low = self.low or min(self.last, self.open, key=Decimal)
        if not self.quote_volume:
            self.quote_volume = str(Decimal(self.volume) * Decimal(self.last))

    # ---- REST shapes -------------------------------------------------------------
    def premium_index(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "markPrice": self.mark,
            "indexPrice": self.index,
            "estimatedSettlePrice": self.index,
            "lastFundingRate": self.funding_rate,
            "interestRate": self.interest_rate,
            "nextFundingTime": self.next_funding_time,
            "time": self.updated_ms,
        }

    def ticker_24hr(self) -> dict[str, Any]:
        change = Decimal(self.last) - Decimal(self.open)
        pct = change / Decimal(self.open) * 100 if Decimal(self.open) else Decimal(0)
        now = self.updated_ms
        return {
            "symbol": self.symbol,
            "priceChange": str(change),
            "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": self.last,
            "lastPrice": self.last,
            "lastQty": self.last_qty,
            "openPrice": self.open,
            "highPrice": self.high,
            "lowPrice": self.low,
            "volume": self.volume,
            "quoteVolume": self.quote_volume,
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
        }

    def book_ticker(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "bidPrice": self.bid,
            "bidQty": self.bid_qty,
            "askPrice": self.ask,
            "askQty": self.ask_qty,
            "time": self.updated_ms,
            "lastUpdateId": self.book_update_id,
        }

    # ---- websocket frames --------------------------------------------------------
    def mark_price_frame(self, event_ms: int) -> dict[str, Any]:
        return {
            "e": "markPriceUpdate",
            "E": event_ms,
            "s": self.symbol,
            "p": self.mark,
            "i": self.index,
            "P": self.index,
            "r": self.funding_rate,
            "T": self.next_funding_time,
        }

    def book_ticker_frame(self, event_ms: int) -> dict[str, Any]:
        return {
            "e": "bookTicker",
            "u": self.book_update_id,
            "E": event_ms,
            "T": event_ms,
            "s": self.symbol,
            "b": self.bid,
            "B": self.bid_qty,
            "a": self.ask,
            "A": self.ask_qty,
        }

    def ticker_frame(self, event_ms: int) -> dict[str, Any]:
        rest = self.ticker_24hr()
        return {
            "e": "24hrTicker",
            "E": event_ms,
            "s": self.symbol,
            "p": rest["priceChange"],
            "P": rest["priceChangePercent"],
            "w": rest["weightedAvgPrice"],
            "c": self.last,
            "Q": self.last_qty,
            "o": self.open,
            "h": self.high,
            "l": self.low,
            "v": self.volume,
            "q": self.quote_volume,
            "O": event_ms - 86_400_000,
            "C": event_ms,
            "F": 1,
            "L": 1000,
            "n": 1000,
        }

    def mini_ticker_frame(self, event_ms: int) -> dict[str, Any]:
        return {
            "e": "24hrMiniTicker",
            "E": event_ms,
            "s": self.symbol,
            "c": self.last,
            "o": self.open,
            "h": self.high,
            "l": self.low,
            "v": self.volume,
            "q": self.quote_volume,
        }


@dataclass(eq=False)
class _WsConn:
    ws: web.WebSocketResponse
    request: web.Request
    path: str
    streams: set[str] = field(default_factory=set)


class StandinBinance:
    """Local Binance USDⓈ-M futures stand-in; use as ``async with StandinBinance() as ex``."""

    #: ccxt exchange id the stand-in speaks for.
    exchange_id = "binanceusdm"

    def __init__(
        self,
        symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"),
        *,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port: int | None = None
        self.state: dict[str, SymbolState] = {}
        for sym in symbols:
            market_id = UNIFIED_TO_ID.get(sym, sym)
            if market_id not in EXCHANGE_INFO_SYMBOLS:
                raise ValueError(f"stand-in has no exchangeInfo fixture for {sym!r}")
            prices = DEFAULT_PRICES[market_id]
            self.state[market_id] = SymbolState(
                symbol=market_id,
                mark=prices["mark"],
                index=prices["mark"],
                last=prices["last"],
                bid=prices["bid"],
                ask=prices["ask"],
            )
        #: What ``/fapi/v1/leverageBracket`` serves (a test changes it: the exchange changed its
        #: tiers).
        self.leverage_brackets: tuple[tuple[int, int, float, int, float], ...] = LEVERAGE_BRACKETS
        # observable counters
        self.requests: Counter[str] = Counter()  # REST path -> count (ws upgrades included)
        self.unknown_paths: list[str] = []  # "METHOD /path" of every 404
        self.subscriptions: Counter[str] = Counter()  # stream -> number of SUBSCRIBEs
        self.unsubscriptions: Counter[str] = Counter()  # stream -> number of UNSUBSCRIBEs
        self.frames_sent: Counter[str] = Counter()  # stream -> frames pushed
        self.ws_connects: Counter[str] = Counter()  # ws path -> accepted upgrades
        self.ws_messages: list[Any] = []  # every parsed client message, in order
        self.refused = False
        self._conns: set[_WsConn] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -----------------------------------------------------------------
    async def start(self) -> StandinBinance:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StandinBinance:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- URLs / ccxt config --------------------------------------------------------
    @property
    def rest_url(self) -> str:
        if self.port is None:
            raise RuntimeError("StandinBinance not started")
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """Base of the linear websocket URL, as ccxt's ``urls['api']['ws']['linear']``."""
        if self.port is None:
            raise RuntimeError("StandinBinance not started")
        return f"ws://{self.host}:{self.port}/ws"

    def ccxt_urls(self) -> dict[str, Any]:
        rest, ws_root = self.rest_url, f"ws://{self.host}:{self.port}"
        api: dict[str, Any] = {key: rest + path for key, path in REST_URL_PATHS.items()}
        ws: dict[str, Any] = {key: ws_root + path for key, path in WS_URL_PATHS.items()}
        ws["ws-api"] = {key: ws_root + path for key, path in WS_API_URL_PATHS.items()}
        api["ws"] = ws
        # 'test' and 'demo' are swapped in by set_sandbox_mode / enable_demo_trading
        return {"api": api, "test": copy.deepcopy(api), "demo": copy.deepcopy(api)}

    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        """Constructor config for ``ccxt.pro.binanceusdm`` / ``ccxt.async_support.binanceusdm``."""
        config: dict[str, Any] = {
            "urls": self.ccxt_urls(),
            "options": {
                # fetchCurrencies is a private sapi call; the stand-in serves no currencies
                "fetchCurrencies": False,
                "adjustForTimeDifference": False,
                "fetchMarkets": {"types": ["linear"]},
            },
        }
        for key, value in extra.items():
            if key == "options":
                config["options"].update(value)
            else:
                config[key] = value
        return config

    # ---- test controls -------------------------------------------------------------
    def market_id(self, symbol: str) -> str:
        market_id = UNIFIED_TO_ID.get(symbol, symbol.upper())
        if market_id not in self.state:
            raise KeyError(f"stand-in does not list {symbol!r}")
        return market_id

    async def set_price(
        self,
        symbol: str,
        *,
        mark: Number | None = None,
        index: Number | None = None,
        bid: Number | None = None,
        ask: Number | None = None,
        last: Number | None = None,
        bid_qty: Number | None = None,
        ask_qty: Number | None = None,
        funding_rate: Number | None = None,
        next_funding_time: int | None = None,
    ) -> int:
        """Update REST state and push frames to every subscribed stream it affects.

        ``index`` follows ``mark`` unless given.  Returns the number of frames sent.
        """
        st = self.state[self.market_id(symbol)]
        mark_changed = book_changed = ticker_changed = False
        if mark is not None:
            st.mark = _num(mark)
            st.index = _num(index) if index is not None else st.mark
            mark_changed = True
        elif index is not None:
            st.index = _num(index)
            mark_changed = True
        if funding_rate is not None:
            st.funding_rate = _num(funding_rate)
            mark_changed = True
        if next_funding_time is not None:
            st.next_funding_time = int(next_funding_time)
            mark_changed = True
        for attr, value in (("bid", bid), ("ask", ask), ("bid_qty", bid_qty), ("ask_qty", ask_qty)):
            if value is not None:
                setattr(st, attr, _num(value))
                book_changed = True
        if book_changed:
            st.book_update_id += 1
        if last is not None:
            st.last = _num(last)
            st.high = max(st.high, st.last, key=Decimal)
            st.low = min(st.low, st.last, key=Decimal)
            ticker_changed = True
        st.updated_ms = _now_ms()
        kinds = []
        if mark_changed:
            kinds.append("mark")
        if book_changed:
            kinds.append("book")
        if ticker_changed:
            kinds.append("ticker")
        return await self.push(st.symbol, kinds)

    async def push(self, symbol: str, kinds: Iterable[str] = ("mark", "book", "ticker")) -> int:
        """(Re)send the current state of ``symbol`` for the given kinds of stream."""
        st = self.state[self.market_id(symbol)]
        lower = st.symbol.lower()
        now = _now_ms()
        sent = 0
        for kind in kinds:
            if kind == "mark":
                frame = st.mark_price_frame(now)
                for name in _MARK_STREAMS:
                    sent += await self._broadcast(f"{lower}@{name}", frame)
                all_marks = [s.mark_price_frame(now) for s in self.state.values()]
                for name in _ALL_MARK_STREAMS:
                    sent += await self._broadcast(name, all_marks)
            elif kind == "book":
                frame = st.book_ticker_frame(now)
                sent += await self._broadcast(f"{lower}@bookTicker", frame)
                sent += await self._broadcast("!bookTicker", frame)
            elif kind == "ticker":
                sent += await self._broadcast(f"{lower}@ticker", st.ticker_frame(now))
                sent += await self._broadcast("!ticker@arr", [st.ticker_frame(now)])
                sent += await self._broadcast(f"{lower}@miniTicker", st.mini_ticker_frame(now))
                sent += await self._broadcast("!miniTicker@arr", [st.mini_ticker_frame(now)])
            else:
                raise ValueError(f"unknown stream kind {kind!r}")
        return sent

    async def drop_websockets(self) -> int:
        """Abort every websocket connection at the TCP level (no close frame)."""
        conns = list(self._conns)
        self._conns.clear()
        abort_all(conns)
        await self._notify()
        return len(conns)

    def refuse_connections(self, on: bool = True) -> None:
        """While on, every REST request and websocket upgrade is answered 503."""
        self.refused = on

    @property
    def open_websockets(self) -> int:
        return len(self._conns)

    def subscribed_streams(self) -> set[str]:
        return {s for conn in self._conns for s in conn.streams}

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; re-checked on every subscription/connection change."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def wait_subscribed(self, stream: str, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``stream`` has been SUBSCRIBEd at least ``count`` times in total."""
        await self.wait_for(lambda: self.subscriptions[stream] >= count, timeout)

    # ---- internals -----------------------------------------------------------------
    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _broadcast(self, stream: str, payload: Any) -> int:
        sent = await send_each(self._conns, json.dumps(payload), lambda c: stream in c.streams)
        if sent:
            self.frames_sent[stream] += sent
        return sent

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests[path] += 1
        if self.refused:
            # plain-text body like Binance's gateway: ccxt maps the bare 503 to
            # ExchangeNotAvailable (a NetworkError) instead of a -1001 OperationFailed
            return web.Response(status=503, text="Service Unavailable")
        if _is_ws_path(path):
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return await self._websocket(request)
            return self._unknown(request)
        handler = self._rest_routes.get((request.method, path))
        if handler is None:
            return self._unknown(request)
        return handler(self, request)

    def _unknown(self, request: web.Request) -> web.Response:
        self.unknown_paths.append(f"{request.method} {request.path_qs}")
        return web.json_response({"code": -5000, "msg": "Path not found (stand-in)"}, status=404)

    def _symbol_param(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        symbol = request.query.get("symbol")
        if symbol is None:
            return None, None
        if symbol not in self.state:
            return symbol, web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        return symbol, None

    def _list_or_one(self, request: web.Request, shape: str) -> web.Response:
        symbol, error = self._symbol_param(request)
        if error is not None:
            return error
        if symbol is not None:
            return web.json_response(getattr(self.state[symbol], shape)())
        return web.json_response([getattr(st, shape)() for st in self.state.values()])

    def _exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "timezone": "UTC",
                "serverTime": _now_ms(),
                "futuresType": "U_MARGINED",
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 2400,
                    },
                    {
                        "rateLimitType": "ORDERS",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 1200,
                    },
                ],
                "exchangeFilters": [],
                "assets": [
                    {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}
                ],
                "symbols": [copy.deepcopy(EXCHANGE_INFO_SYMBOLS[sym]) for sym in self.state],
            }
        )

    def _time(self, request: web.Request) -> web.Response:
        return web.json_response({"serverTime": _now_ms()})

    def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({})

    def _premium_index(self, request: web.Request) -> web.Response:
        return self._list_or_one(request, "premium_index")

    def _ticker_24hr(self, request: web.Request) -> web.Response:
        return self._list_or_one(request, "ticker_24hr")

    def _book_ticker(self, request: web.Request) -> web.Response:
        return self._list_or_one(request, "book_ticker")

    def _ticker_price(self, request: web.Request) -> web.Response:
        symbol, error = self._symbol_param(request)
        if error is not None:
            return error

        def shape(st: SymbolState) -> dict[str, Any]:
            return {"symbol": st.symbol, "price": st.last, "time": st.updated_ms}

        if symbol is not None:
            return web.json_response(shape(self.state[symbol]))
        return web.json_response([shape(st) for st in self.state.values()])

    def _leverage_bracket(self, request: web.Request) -> web.Response:
        """``GET /fapi/v1/leverageBracket`` (signed at Binance; the signature is not checked):
        the same brackets for every listed symbol (``leverage_brackets``: four by default),
        ``cum`` as Binance computes it."""
        if request.headers.get("X-MBX-APIKEY") is None:
            return web.json_response({"code": -2014, "msg": "API-key format invalid."}, status=401)
        brackets = [
            {
                "bracket": i + 1,
                "initialLeverage": leverage,
                "notionalCap": cap,
                "notionalFloor": floor,
                "maintMarginRatio": mmr,
                "cum": cum,
            }
            for i, (floor, cap, mmr, leverage, cum) in enumerate(self.leverage_brackets)
        ]
        return web.json_response(
            [{"symbol": sym, "brackets": copy.deepcopy(brackets)} for sym in self.state]
        )

    _rest_routes: Mapping[
        tuple[str, str], Callable[[StandinBinance, web.Request], web.Response]
    ] = {
        ("GET", "/fapi/v1/leverageBracket"): _leverage_bracket,
        ("GET", "/fapi/v1/exchangeInfo"): _exchange_info,
        ("GET", "/fapi/v1/time"): _time,
        ("GET", "/fapi/v1/ping"): _ping,
        ("GET", "/fapi/v1/premiumIndex"): _premium_index,
        ("GET", "/fapi/v1/ticker/24hr"): _ticker_24hr,
        ("GET", "/fapi/v1/ticker/bookTicker"): _book_ticker,
        ("GET", "/fapi/v1/ticker/price"): _ticker_price,
    }

    def _known_stream(self, stream: str) -> bool:
        if stream in _ALL_MARK_STREAMS or stream in (
            "!bookTicker",
            "!ticker@arr",
            "!miniTicker@arr",
        ):
            return True
        sym, _, name = stream.partition("@")
        return sym.upper() in self.state and name in (
            *_MARK_STREAMS,
            "bookTicker",
            "ticker",
            "miniTicker",
        )

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # autoping: answers client pings with pongs
        await ws.prepare(request)
        conn = _WsConn(ws=ws, request=request, path=request.path)
        self._conns.add(conn)
        self.ws_connects[request.path] += 1
        await self._notify()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._ws_message(conn, msg.data)
        finally:
            self._conns.discard(conn)
            await self._notify()
        return ws

    async def _ws_message(self, conn: _WsConn, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            await conn.ws.send_json({"error": {"code": 3, "msg": "Invalid JSON"}})
            return
        self.ws_messages.append(message)
        if not isinstance(message, dict):
            await conn.ws.send_json({"error": {"code": 3, "msg": "Invalid request"}})
            return
        method, params, req_id = message.get("method"), message.get("params", []), message.get("id")
        if method == "SUBSCRIBE":
            bad = [s for s in params if not self._known_stream(s)]
            if bad:
                await conn.ws.send_json(
                    {
                        "error": {"code": 2, "msg": f"Invalid request: unknown stream {bad}"},
                        "id": req_id,
                    }
                )
                return
            conn.streams.update(params)
            # reply first, count second: once a test sees the counter move, the
            # client has its ack and any later frame is a data frame
            await conn.ws.send_json({"result": None, "id": req_id})
            self.subscriptions.update(params)
        elif method == "UNSUBSCRIBE":
            conn.streams.difference_update(params)
            await conn.ws.send_json({"result": None, "id": req_id})
            self.unsubscriptions.update(params)
        elif method == "LIST_SUBSCRIPTIONS":
            await conn.ws.send_json({"result": sorted(conn.streams), "id": req_id})
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            await conn.ws.send_json({"result": None, "id": req_id})
        else:
            await conn.ws.send_json(
                {"error": {"code": 2, "msg": f"Invalid request: method {method!r}"}, "id": req_id}
            )
            return
        await self._notify()


def _is_ws_path(path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return False
    if parts[0] == "ws":
        return len(parts) <= 2
    return parts[0] in ("market", "public") and len(parts) in (2, 3) and parts[1] == "ws"
