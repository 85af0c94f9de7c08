"""A local stand-in for KuCoin Futures USDT-margined perpetuals (public market data).

Speaks what ``ccxt.pro.kucoinfutures`` 4.5.90 asks for on ``load_markets``, the feed, the funding
poll and the tier fetch. ccxt's class is KuCoin's unified one, so it speaks two websocket
protocols:

REST (envelope ``{"code": "200000", "data": ...}``): ``GET /api/v3/currencies`` (``load_markets``
asks for currencies), ``/api/v1/contracts/active`` (markets: ``multiplier`` = contract size,
``nextFundingRateTime`` in ms from now), ``POST /api/v1/bullet-public`` (the token and the
websocket endpoint of the classic feed), ``/api/v1/contracts/risk-limit/<symbol>`` (tiers:
``minRiskLimit``/``maxRiskLimit`` in USDT), ``/api/v1/funding-rate/<symbol>/current``
(``fundingTime`` = next settlement, ``granularity`` ms), ``/api/v1/mark-price/<symbol>/current``,
``/api/v1/allTickers`` (``fetch_bids_asks``), ``/api/ua/v2/market/funding-rate``
(``fetch_funding_rates``; KuCoin lists funding index symbols such as ``.XBTUSDTMFPI8H`` beside
the contracts, ccxt drops them).

Classic websocket (``watch_tickers``, ``watch_bids_asks``) at the endpoint the bullet gave
(``/endpoint?token=...&connectId=publicFutures``): the server says
``{"id", "type": "welcome"}`` first; ``{"id", "type": "subscribe", "topic":
"/contractMarket/tickerV2:XBTUSDTM,ETHUSDTM", "response": true}`` is acked ``{"id", "type":
"ack"}``; ``{"id", "type": "ping"}`` is answered ``{"id", "type": "pong"}``. Pushes ``{"type":
"message", "topic", "subject": "tickerV2" | "ticker", "data"}`` (``ts`` in ns).

"Pro" (UTA) websocket (``watch_mark_price``, ``watch_funding_rate``) at ``urls.api.ws.futures``:
``{"sessionId", "message": "welcome", "pingInterval"}`` first; ``{"id", "action": "subscribe",
"channel": "mark-price" | "funding-fee", "tradeType": "FUTURES", "symbol"}`` acked ``{"id",
"result": true}``; pushes ``{"T": "mark-price", "P", "d": {"s", "mp", "ip", "ts"}}`` and
``{"T": "funding-fee", "P", "d": {"s", "fr", "ft", "nt", "gl"}}`` (``ft`` the funding time of
the period in force, ``nt`` the next one). ccxt pings it the classic way; answered the same.

Market ids and contract sizes as KuCoin lists them (XBTUSDTM 0.001 BTC, ETHUSDTM 0.01 ETH;
KuCoin calls bitcoin XBT); prices, risk limits and funding are the stand-in's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import ccxt.pro
from aiohttp import web

from tests.standin.base import (
    Quote,
    RestHandler,
    VenueStandin,
    WsConn,
    local_urls,
    now_ms,
)

__all__ = ["RISK_LIMITS", "StandinKucoinFutures"]

#: base -> (KuCoin's base currency, multiplier, tick size, default mark)
MARKETS: dict[str, tuple[str, str, str, str]] = {
    "BTC": ("XBT", "0.001", "0.1", "65000.0"),
    "ETH": ("ETH", "0.01", "0.01", "3200.00"),
}

#: (level, minRiskLimit, maxRiskLimit, maxLeverage, initialMargin, maintainMargin): USDT value
RISK_LIMITS: tuple[tuple[int, str, str, str, str, str], ...] = (
    (1, "0", "500000", "100", "0.01", "0.005"),
    (2, "500000", "1000000", "75", "0.0134", "0.007"),
    (3, "1000000", "2000000", "50", "0.02", "0.01"),
)

_CLASSIC = "/endpoint"
_UTA = "/uta/futures"
_OK = "200000"


def default_quotes(symbols: Iterable[str]) -> list[Quote]:
    quotes = []
    for sym in symbols:
        base = sym.split("/")[0]
        kucoin_base, _mult, tick, mark = MARKETS[base]
        step = Decimal(tick)
        quotes.append(
            Quote(
                symbol=sym,
                market_id=f"{kucoin_base}USDTM",
                mark=mark,
                index=mark,
                last=mark,
                bid=str(Decimal(mark) - step),
                ask=str(Decimal(mark) + step),
            )
        )
    return quotes


def _ns() -> int:
    return now_ms() * 1_000_000


class StandinKucoinFutures(VenueStandin):
    exchange_id = "kucoinfutures"
    ws_paths = (_CLASSIC, _UTA)

    def __init__(
        self, symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"), **kw: Any
    ) -> None:
        super().__init__(default_quotes(symbols), **kw)
        self.bullets = 0  # POST bullet-public calls (a token per classic connection)

    # ---- ccxt ---------------------------------------------------------------------------
    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        api = local_urls(ccxt.pro.kucoinfutures().urls["api"], self.rest_url, self.ws_root)
        api["ws"] = {
            "spot": self.ws_root + "/unserved/spot",
            "futures": self.ws_root + _UTA,
            "private": self.ws_root + "/unserved/private",
        }
        config: dict[str, Any] = {"urls": {"api": api}, "options": {}}
        for key, value in extra.items():
            if key == "options":
                config["options"].update(value)
            else:
                config[key] = value
        return config

    def contract_size(self, symbol: str) -> Decimal:
        return Decimal(MARKETS[symbol.split("/")[0]][1])

    def tier_caps(self, symbol: str) -> list[Decimal]:
        return [Decimal(row[2]) for row in RISK_LIMITS]

    def stream_topics(self, symbol: str) -> list[str]:
        market_id = self.quote(symbol).market_id
        return [
            f"mark-price:{market_id}",
            f"/contractMarket/tickerV2:{market_id}",
            f"/contractMarket/ticker:{market_id}",
            f"funding-fee:{market_id}",
        ]

    # ---- REST ---------------------------------------------------------------------------
    def bad_symbol_body(self, market_id: str) -> Any:
        return {"code": "100001", "msg": f"Contract {market_id} does not exist"}

    @staticmethod
    def _ok(data: Any) -> dict[str, Any]:
        return {"code": _OK, "data": data}

    def _currencies(self, request: web.Request) -> Any:
        codes = ["USDT"] + [kucoin for kucoin, *_rest in MARKETS.values()]
        return self._ok(
            [
                {
                    "currency": code,
                    "name": code,
                    "fullName": code,
                    "precision": 8,
                    "confirms": None,
                    "contractAddress": None,
                    "isMarginEnabled": True,
                    "isDebitEnabled": True,
                    "chains": [],
                }
                for code in codes
            ]
        )

    def _contract(self, q: Quote) -> dict[str, Any]:
        kucoin_base, multiplier, tick, _mark = MARKETS[q.symbol.split("/")[0]]
        first = RISK_LIMITS[0]
        return {
            "symbol": q.market_id,
            "rootSymbol": "USDT",
            "type": "FFWCSX",
            "firstOpenDate": 1585555200000,
            "expireDate": None,
            "settleDate": None,
            "baseCurrency": kucoin_base,
            "quoteCurrency": "USDT",
            "settleCurrency": "USDT",
            "maxOrderQty": 1000000,
            "maxPrice": 1000000.0,
            "lotSize": 1,
            "tickSize": float(tick),
            "indexPriceTickSize": 0.01,
            "multiplier": float(multiplier),
            "initialMargin": float(first[4]),
            "maintainMargin": float(first[5]),
            "maxRiskLimit": int(first[2]),
            "minRiskLimit": int(first[2]),
            "riskStep": 500000,
            "makerFeeRate": 0.0002,
            "takerFeeRate": 0.0006,
            "takerFixFee": 0.0,
            "makerFixFee": 0.0,
            "settlementFee": None,
            "isDeleverage": True,
            "isQuanto": False,
            "isInverse": False,
            "markMethod": "FairPrice",
            "fairMethod": "FundingRate",
            "fundingBaseSymbol": f".{kucoin_base}INT8H",
            "fundingQuoteSymbol": ".USDTINT8H",
            "fundingRateSymbol": f".{q.market_id}FPI8H",
            "indexSymbol": f".K{kucoin_base}USDT",
            "settlementSymbol": "",
            "status": "Open",
            "fundingFeeRate": float(q.funding_rate),
            "predictedFundingFeeRate": float(q.funding_rate),
            "fundingRateGranularity": q.funding_interval_h * 3_600_000,
            "openInterest": "8724443",
            "turnoverOf24h": float(q.quote_volume()),
            "volumeOf24h": float(q.volume),
            "markPrice": float(q.mark),
            "indexPrice": float(q.index),
            "lastTradePrice": float(q.last),
            "nextFundingRateTime": max(q.next_funding_time - now_ms(), 0),
            "maxLeverage": int(first[3]),
            "lowPrice": float(q.last),
            "highPrice": float(q.last),
            "priceChgPct": 0.0,
            "priceChg": 0.0,
        }

    def _contracts(self, request: web.Request) -> Any:
        return self._ok([self._contract(q) for q in self.quotes.values()])

    def _bullet(self, request: web.Request) -> Any:
        self.bullets += 1
        return self._ok(
            {
                "token": f"standin-token-{self.bullets}",
                "instanceServers": [
                    {
                        "endpoint": self.ws_root + _CLASSIC,
                        "encrypt": True,
                        "protocol": "websocket",
                        "pingInterval": 18000,
                        "pingTimeout": 10000,
                    }
                ],
            }
        )

    def _rest_ticker(self, q: Quote) -> dict[str, Any]:
        return {
            "sequence": q.seq,
            "symbol": q.market_id,
            "side": "buy",
            "size": 1,
            "tradeId": str(q.seq),
            "price": q.last,
            "bestBidPrice": q.bid,
            "bestBidSize": int(q.bid_size),
            "bestAskPrice": q.ask,
            "bestAskSize": int(q.ask_size),
            "ts": _ns(),
        }

    def _all_tickers(self, request: web.Request) -> Any:
        return self._ok([self._rest_ticker(q) for q in self.quotes.values()])

    def _ua_funding_rates(self, request: web.Request) -> Any:
        rows: list[dict[str, Any]] = []
        for q in self.quotes.values():
            granularity = q.funding_interval_h * 3_600_000
            common = {
                "nextFundingRate": q.funding_rate,
                "fundingTime": q.next_funding_time,
                "fundingRateCap": "0.003",
                "fundingRateFloor": "-0.003",
                "currentGranularity": granularity,
                "newGranularity": granularity,
                "newGranularityStartTime": 1750147200000,
            }
            rows.append({"symbol": q.market_id, **common})
            rows.append({"symbol": f".{q.market_id}FPI8H", **common})  # an index: ccxt drops it
        return self._ok(rows)

    def _risk_limit(self, q: Quote) -> Any:
        return self._ok(
            [
                {
                    "symbol": q.market_id,
                    "level": level,
                    "maxRiskLimit": int(cap),
                    "minRiskLimit": int(floor),
                    "maxLeverage": int(lev),
                    "initialMargin": float(imr),
                    "maintainMargin": float(mmr),
                }
                for level, floor, cap, lev, imr, mmr in RISK_LIMITS
            ]
        )

    def _funding_current(self, q: Quote) -> Any:
        granularity = q.funding_interval_h * 3_600_000
        return self._ok(
            {
                "symbol": f".{q.market_id}FPI8H",
                "granularity": granularity,
                "timePoint": q.next_funding_time - granularity,
                "value": float(q.funding_rate),
                "dailyInterestRate": 0.0003,
                "fundingRateCap": 0.003,
                "fundingRateFloor": -0.003,
                "period": 1,
                "fundingTime": q.next_funding_time,
            }
        )

    def _mark_current(self, q: Quote) -> Any:
        return self._ok(
            {
                "symbol": q.market_id,
                "granularity": 1000,
                "timePoint": q.updated_ms,
                "value": float(q.mark),
                "indexPrice": float(q.index),
            }
        )

    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        ("GET", "/api/v3/currencies"): _currencies,
        ("GET", "/api/v1/contracts/active"): _contracts,
        ("POST", "/api/v1/bullet-public"): _bullet,
        ("GET", "/api/v1/allTickers"): _all_tickers,
        ("GET", "/api/ua/v2/market/funding-rate"): _ua_funding_rates,
    }

    #: paths with the contract id in them: prefix, suffix, handler
    _PARAM_ROUTES: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("/api/v1/contracts/risk-limit/", "", "_risk_limit"),
        ("/api/v1/funding-rate/", "/current", "_funding_current"),
        ("/api/v1/mark-price/", "/current", "_mark_current"),
    )

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if not self.refused and request.method == "GET":
            for prefix, suffix, name in self._PARAM_ROUTES:
                if path.startswith(prefix) and path.endswith(suffix):
                    market_id = path[len(prefix) : len(path) - len(suffix)]
                    if "/" in market_id:
                        continue
                    self.requests[path] += 1
                    try:
                        q = self.quote(market_id)
                    except KeyError:
                        return web.json_response(self.bad_symbol_body(market_id), status=400)
                    return web.json_response(getattr(self, name)(q))
        return await super()._dispatch(request)

    # ---- websocket ----------------------------------------------------------------------
    def _classic(self, topic: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"type": "message", "topic": topic, "subject": subject, "data": data}

    def frames(self, quote: Quote, kinds: Iterable[str]) -> list[tuple[str, Any]]:
        kinds = set(kinds)
        mid = quote.market_id
        out: list[tuple[str, Any]] = []
        if "mark" in kinds:
            mark = {"s": mid, "mp": quote.mark, "ip": quote.index, "oi": "1000", "ts": now_ms()}
            out.append((f"mark-price:{mid}", {"T": "mark-price", "P": str(_ns()), "d": mark}))
        if "book" in kinds:
            topic = f"/contractMarket/tickerV2:{mid}"
            book = {
                "symbol": mid,
                "sequence": quote.seq,
                "bestBidSize": int(quote.bid_size),
                "bestBidPrice": quote.bid,
                "bestAskPrice": quote.ask,
                "bestAskSize": int(quote.ask_size),
                "ts": _ns(),
            }
            out.append((topic, self._classic(topic, "tickerV2", book)))
        if "ticker" in kinds:  # KuCoin's v1 ticker is pushed on a trade
            topic = f"/contractMarket/ticker:{mid}"
            out.append((topic, self._classic(topic, "ticker", self._rest_ticker(quote))))
        if "funding" in kinds:
            granularity = quote.funding_interval_h * 3_600_000
            funding = {
                "s": mid,
                "fr": quote.funding_rate,
                "ft": quote.next_funding_time - granularity,
                "nt": quote.next_funding_time,
                "gl": granularity,
                "fc": "0.003",
                "ff": "-0.003",
            }
            out.append((f"funding-fee:{mid}", {"T": "funding-fee", "P": str(_ns()), "d": funding}))
        return out

    async def on_ws_open(self, conn: WsConn) -> None:
        if conn.path == _UTA:
            await conn.send({"sessionId": "standin", "message": "welcome", "pingInterval": 18000})
        else:
            await conn.send({"id": conn.request.query.get("connectId", ""), "type": "welcome"})

    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if not isinstance(message, dict):
            return
        if message.get("type") == "ping":
            self.pings += 1
            await conn.send({"id": message.get("id"), "type": "pong", "timestamp": _ns()})
            return
        if conn.path == _UTA:
            await self._uta(conn, message)
        else:
            await self._classic_message(conn, message)

    async def _classic_message(self, conn: WsConn, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        kind, topic = message.get("type"), str(message.get("topic"))
        channel, _, ids = topic.partition(":")
        known = {q.market_id for q in self.quotes.values()}
        wanted = [i for i in ids.split(",") if i]
        if channel not in ("/contractMarket/tickerV2", "/contractMarket/ticker") or not (
            wanted and set(wanted) <= known
        ):
            await conn.send(
                {"id": request_id, "type": "error", "code": 404, "data": f"topic {topic} not found"}
            )
            return
        topics = [f"{channel}:{i}" for i in wanted]
        if kind == "subscribe":
            await conn.send({"id": request_id, "type": "ack"})
            await self.subscribed(conn, topics)
        elif kind == "unsubscribe":
            await conn.send({"id": request_id, "type": "ack"})
            await self.unsubscribed(conn, topics)

    async def _uta(self, conn: WsConn, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        action, channel = message.get("action"), message.get("channel")
        market_id = str(message.get("symbol"))
        known = {q.market_id for q in self.quotes.values()}
        if (
            channel not in ("mark-price", "funding-fee")
            or message.get("tradeType") != "FUTURES"
            or market_id not in known
        ):
            reason = f"invalid subscription {channel} {market_id}"
            await conn.send({"id": request_id, "result": False, "reason": reason})
            return
        topics = [f"{channel}:{market_id}"]
        await conn.send({"id": request_id, "result": True})
        if action == "subscribe":
            await self.subscribed(conn, topics)
        elif action == "unsubscribe":
            await self.unsubscribed(conn, topics)
