"""A local stand-in for Bybit v5 linear (USDT perpetual) public market data.

Speaks what ``ccxt.pro.bybit`` 4.5.90 asks for on ``load_markets``, the feed and the tier fetch:

REST (envelope ``{"retCode": 0, "retMsg": "OK", "result": ..., "time": ms}``):
``GET /v5/market/instruments-info`` (``category=linear``, ``limit``, ``cursor`` pagination: two
pages; ``status=PreLaunch`` answers an empty list), ``/v5/market/time``, ``/v5/market/tickers``
(also what ``fetch_funding_rates`` reads), ``/v5/market/risk-limit`` (``cursor`` pagination).

Websocket ``/v5/public/linear``: ``{"op": "subscribe", "req_id", "args": [topics]}`` acked with
``{"success": true, "ret_msg": "", "conn_id", "req_id", "op": "subscribe"}``; ``{"op": "ping"}``
answered ``{"success": true, "ret_msg": "pong", ..., "op": "ping"}``. Topics ``tickers.<id>``
(a snapshot on subscribe, then deltas holding only the changed fields, as Bybit sends them) and
``orderbook.1.<id>`` (level 1: a snapshot per change).

Market fixtures are shaped like Bybit's responses; the numbers (prices, risk-limit tiers) are
the stand-in's own, chosen so that tests can tell them from the bundled snapshot.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from tests.standin.base import Quote, RestError, RestHandler, VenueStandin, WsConn, now_ms

__all__ = ["RISK_LIMITS", "StandinBybit"]

_INSTRUMENT: dict[str, Any] = {
    "contractType": "LinearPerpetual",
    "status": "Trading",
    "quoteCoin": "USDT",
    "launchTime": "1585526400000",
    "deliveryTime": "0",
    "deliveryFeeRate": "",
    "priceScale": "2",
    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "unifiedMarginTrade": True,
    "fundingInterval": 480,
    "settleCoin": "USDT",
    "copyTrading": "both",
    "upperFundingRate": "0.00375",
    "lowerFundingRate": "-0.00375",
    "isPreListing": False,
    "preListingInfo": None,
}

#: base -> (tick size, qty step, default mark)
MARKETS: dict[str, tuple[str, str, str]] = {
    "BTC": ("0.10", "0.001", "65000.00"),
    "ETH": ("0.01", "0.01", "3200.00"),
    "SOL": ("0.010", "0.1", "150.000"),
}

#: (risk limit value, maintenance margin rate, initial margin rate, max leverage, mmDeduction)
RISK_LIMITS: tuple[tuple[str, str, str, str, str], ...] = (
    ("2000000", "0.005", "0.01", "100.00", ""),
    ("4000000", "0.01", "0.02", "50.00", "10000"),
    ("6000000", "0.015", "0.03", "33.33", "30000"),
)


def _instrument(base: str) -> dict[str, Any]:
    tick, step, _mark = MARKETS[base]
    entry = {"symbol": f"{base}USDT", "baseCoin": base, **copy.deepcopy(_INSTRUMENT)}
    entry["priceFilter"] = {"minPrice": tick, "maxPrice": "1999999.80", "tickSize": tick}
    entry["lotSizeFilter"] = {
        "maxOrderQty": "1190.000",
        "minOrderQty": step,
        "qtyStep": step,
        "postOnlyMaxOrderQty": "1190.000",
        "maxMktOrderQty": "500.000",
        "minNotionalValue": "5",
    }
    return entry


def default_quotes(symbols: Iterable[str]) -> list[Quote]:
    quotes = []
    for sym in symbols:
        base = sym.split("/")[0]
        tick, _step, mark = MARKETS[base]
        quotes.append(
            Quote(
                symbol=sym,
                market_id=f"{base}USDT",
                mark=mark,
                index=mark,
                last=mark,
                bid=str(float(mark) - float(tick)),
                ask=str(float(mark) + float(tick)),
            )
        )
    return quotes


class StandinBybit(VenueStandin):
    exchange_id = "bybit"
    ws_paths = ("/v5/public",)

    def __init__(
        self, symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"), **kw: Any
    ) -> None:
        super().__init__(default_quotes(symbols), **kw)
        self._conn_ids = itertools.count(1)
        #: The ticker fields each connection last saw per topic (deltas carry only changes).
        self._sent: dict[str, dict[str, str]] = {}

    # ---- ccxt ---------------------------------------------------------------------------
    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        rest = self.rest_url
        ws = {
            "public": {
                key: f"{self.ws_root}/v5/public/{key}"
                for key in ("spot", "inverse", "option", "linear")
            },
            "private": {
                "spot": {
                    "unified": f"{self.ws_root}/unserved/v5/private",
                    "nonUnified": f"{self.ws_root}/unserved/spot/private/v3",
                },
                "contract": f"{self.ws_root}/unserved/v5/private",
                "usdc": f"{self.ws_root}/unserved/usdc",
                "trade": f"{self.ws_root}/unserved/v5/trade",
            },
        }
        api: dict[str, Any] = {k: rest for k in ("spot", "futures", "v2", "public", "private")}
        api["ws"] = ws
        config: dict[str, Any] = {
            "urls": {"api": api, "test": copy.deepcopy(api), "demotrading": copy.deepcopy(api)},
            "options": {
                "fetchMarkets": {"types": ["linear"]},
                "adjustForTimeDifference": False,
            },
        }
        for key, value in extra.items():
            if key == "options":
                config["options"].update(value)
            else:
                config[key] = value
        return config

    def contract_size(self, symbol: str) -> Decimal:
        return Decimal(1)  # linear contracts are in base units (ccxt: contractSize 1)

    def tier_caps(self, symbol: str) -> list[Decimal]:
        return [Decimal(row[0]) for row in RISK_LIMITS]

    def stream_topics(self, symbol: str) -> list[str]:
        market_id = self.quote(symbol).market_id
        return [f"tickers.{market_id}", f"orderbook.1.{market_id}"]

    # ---- REST ---------------------------------------------------------------------------
    @staticmethod
    def _envelope(result: Any) -> dict[str, Any]:
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms()}

    def bad_symbol_body(self, market_id: str) -> Any:
        return {"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {}}

    def _category(self, request: web.Request) -> None:
        if request.query.get("category") != "linear":
            raise RestError(200, {"retCode": 10001, "retMsg": "stand-in serves linear only"})

    def _instruments(self, request: web.Request) -> Any:
        self._category(request)
        if request.query.get("status") == "PreLaunch":
            return self._envelope({"category": "linear", "list": [], "nextPageCursor": ""})
        entries = [_instrument(q.market_id.removesuffix("USDT")) for q in self.quotes.values()]
        half = (len(entries) + 1) // 2
        if request.query.get("cursor") == "page2":
            page, cursor = entries[half:], ""
        else:
            page, cursor = entries[:half], "page2" if entries[half:] else ""
        return self._envelope({"category": "linear", "list": page, "nextPageCursor": cursor})

    def _time(self, request: web.Request) -> Any:
        ms = now_ms()
        return self._envelope({"timeSecond": str(ms // 1000), "timeNano": str(ms * 1_000_000)})

    def _rest_ticker(self, q: Quote) -> dict[str, Any]:
        return {
            "symbol": q.market_id,
            "lastPrice": q.last,
            "indexPrice": q.index,
            "markPrice": q.mark,
            "prevPrice24h": q.last,
            "price24hPcnt": "0",
            "highPrice24h": q.last,
            "lowPrice24h": q.last,
            "prevPrice1h": q.last,
            "openInterest": "1000",
            "openInterestValue": q.quote_volume(),
            "turnover24h": q.quote_volume(),
            "volume24h": q.volume,
            "fundingRate": q.funding_rate,
            "nextFundingTime": str(q.next_funding_time),
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "ask1Size": q.ask_size,
            "bid1Price": q.bid,
            "ask1Price": q.ask,
            "bid1Size": q.bid_size,
            "basis": "",
        }

    def _tickers(self, request: web.Request) -> Any:
        self._category(request)
        one = self.query_symbol(request)
        quotes = [one] if one is not None else list(self.quotes.values())
        return self._envelope(
            {"category": "linear", "list": [self._rest_ticker(q) for q in quotes]}
        )

    def _risk_limit(self, request: web.Request) -> Any:
        self._category(request)
        one = self.query_symbol(request)
        rows = []
        for q in [one] if one is not None else self.quotes.values():
            for i, (value, mmr, imr, lev, deduction) in enumerate(RISK_LIMITS):
                rows.append(
                    {
                        "id": i + 1,
                        "symbol": q.market_id,
                        "riskLimitValue": value,
                        "maintenanceMargin": mmr,
                        "initialMargin": imr,
                        "isLowestRisk": 1 if i == 0 else 0,
                        "maxLeverage": lev,
                        "mmDeduction": deduction,
                    }
                )
        half = len(RISK_LIMITS) * ((len(self.quotes) + 1) // 2) if one is None else len(rows)
        if request.query.get("cursor") == "risk2":
            page, cursor = rows[half:], ""
        else:
            page, cursor = rows[:half], "risk2" if rows[half:] else ""
        return self._envelope({"category": "linear", "list": page, "nextPageCursor": cursor})

    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        ("GET", "/v5/market/instruments-info"): _instruments,
        ("GET", "/v5/market/time"): _time,
        ("GET", "/v5/market/tickers"): _tickers,
        ("GET", "/v5/market/risk-limit"): _risk_limit,
    }

    # ---- websocket ----------------------------------------------------------------------
    def _ws_ticker(self, q: Quote) -> dict[str, str]:
        return {
            "symbol": q.market_id,
            "tickDirection": "PlusTick",
            "price24hPcnt": "0",
            "lastPrice": q.last,
            "prevPrice24h": q.last,
            "highPrice24h": q.last,
            "lowPrice24h": q.last,
            "prevPrice1h": q.last,
            "markPrice": q.mark,
            "indexPrice": q.index,
            "openInterest": "1000",
            "openInterestValue": q.quote_volume(),
            "turnover24h": q.quote_volume(),
            "volume24h": q.volume,
            "nextFundingTime": str(q.next_funding_time),
            "fundingRate": q.funding_rate,
            "bid1Price": q.bid,
            "bid1Size": q.bid_size,
            "ask1Price": q.ask,
            "ask1Size": q.ask_size,
        }

    def _book(self, q: Quote, ts: int) -> dict[str, Any]:
        return {
            "topic": f"orderbook.1.{q.market_id}",
            "type": "snapshot",
            "ts": ts,
            "data": {
                "s": q.market_id,
                "b": [[q.bid, q.bid_size]],
                "a": [[q.ask, q.ask_size]],
                "u": q.seq,
                "seq": q.seq,
            },
            "cts": ts,
        }

    def frames(self, quote: Quote, kinds: Iterable[str]) -> list[tuple[str, Any]]:
        ts = now_ms()
        out: list[tuple[str, Any]] = []
        topic = f"tickers.{quote.market_id}"
        full = self._ws_ticker(quote)
        before = self._sent.get(topic, {})
        delta = {k: v for k, v in full.items() if before.get(k) != v or k == "symbol"}
        self._sent[topic] = full
        if len(delta) > 1:
            out.append(
                (topic, {"topic": topic, "type": "delta", "data": delta, "cs": ts, "ts": ts})
            )
        if "book" in kinds:
            out.append((f"orderbook.1.{quote.market_id}", self._book(quote, ts)))
        return out

    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if not isinstance(message, dict):
            return
        op, req_id = message.get("op"), message.get("req_id")
        conn_id = f"standin-{next(self._conn_ids)}"
        if op == "ping":
            self.pings += 1
            pong = {"success": True, "ret_msg": "pong", "conn_id": conn_id, "req_id": req_id}
            await conn.send({**pong, "op": "ping"})
            return
        args = [a for a in message.get("args") or [] if isinstance(a, str)]
        if op == "subscribe":
            bad = [a for a in args if not self._known(a)]
            error = f"error:handler not found,topic:{bad[0]}" if bad else ""
            ack = {"success": not bad, "ret_msg": error, "conn_id": conn_id, "req_id": req_id}
            await conn.send({**ack, "op": "subscribe"})
            if bad:
                return
            await self.subscribed(conn, args)
            # Bybit sends a snapshot right after a subscription.
            ts = now_ms()
            for topic in args:
                market_id = topic.rsplit(".", 1)[1]
                q = self.quote(market_id)
                if topic.startswith("tickers."):
                    data = self._ws_ticker(q)
                    self._sent[topic] = data
                    await conn.send(
                        {"topic": topic, "type": "snapshot", "data": data, "cs": ts, "ts": ts}
                    )
                else:
                    await conn.send(self._book(q, ts))
        elif op == "unsubscribe":
            ack = {"success": True, "ret_msg": "", "conn_id": conn_id, "req_id": req_id}
            await conn.send({**ack, "op": "unsubscribe"})
            await self.unsubscribed(conn, args)

    def _known(self, topic: str) -> bool:
        prefix, _, market_id = topic.rpartition(".")
        return prefix in ("tickers", "orderbook.1") and any(
            q.market_id == market_id for q in self.quotes.values()
        )
