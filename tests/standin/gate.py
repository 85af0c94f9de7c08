"""A local stand-in for Gate USDT-settled perpetual futures (API v4 public market data).

Speaks what ``ccxt.pro.gate`` 4.5.90 asks for on ``load_markets``, the feed, the funding poll and
the tier fetch (paths as Gate serves them, under ``/api/v4``):

REST: ``GET /spot/currencies`` (``load_markets`` asks for currencies), ``/futures/usdt/contracts``
(markets; also what ``fetch_funding_rates`` reads: ``funding_rate``, ``funding_next_apply`` in
seconds, ``funding_interval``), ``/futures/usdt/contracts/<contract>``, ``/futures/usdt/tickers``,
``/futures/usdt/risk_limit_tiers`` (``contract=``: one market, as ccxt's
``fetch_market_leverage_tiers`` asks).

Websocket ``/v4/ws/futures/usdt`` (Gate's test-net shape: ccxt tells market types from the URL):
``{"time", "id", "channel", "event": "subscribe", "payload": [contracts]}`` acked with
``{"time", "time_ms", "id", "channel", "event": "subscribe", "result": {"status": "success"}}``;
``futures.tickers`` (``mark_price``, ``index_price``, ``funding_rate``; no next funding time) and
``futures.book_ticker`` (``b``/``a``); keep-alive by websocket protocol pings (ccxt sends no
application ping to Gate).

Contract sizes (``quanto_multiplier``) as Gate lists them (BTC_USDT 0.0001, ETH_USDT 0.01);
prices, risk limits and funding are the stand-in's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import ccxt.pro
from aiohttp import web

from tests.standin.base import (
    Quote,
    RestError,
    RestHandler,
    VenueStandin,
    WsConn,
    local_urls,
    now_ms,
)

__all__ = ["RISK_LIMIT_TIERS", "StandinGate"]

#: base -> (quanto multiplier, price tick, default mark)
MARKETS: dict[str, tuple[str, str, str]] = {
    "BTC": ("0.0001", "0.1", "65000.0"),
    "ETH": ("0.01", "0.01", "3200.00"),
}

#: (risk_limit, initial_rate, maintenance_rate, leverage_max, deduction): USDT notional
RISK_LIMIT_TIERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("1000000", "0.01", "0.005", "100", "0"),
    ("3000000", "0.02", "0.01", "50", "5000"),
    ("6000000", "0.04", "0.02", "25", "35000"),
)

_WS_PATH = "/v4/ws/futures/usdt"


def default_quotes(symbols: Iterable[str]) -> list[Quote]:
    quotes = []
    for sym in symbols:
        base = sym.split("/")[0]
        _q, tick, mark = MARKETS[base]
        step = Decimal(tick)
        quotes.append(
            Quote(
                symbol=sym,
                market_id=f"{base}_USDT",
                mark=mark,
                index=mark,
                last=mark,
                bid=str(Decimal(mark) - step),
                ask=str(Decimal(mark) + step),
            )
        )
    return quotes


class StandinGate(VenueStandin):
    exchange_id = "gate"
    ws_paths = ("/v4/ws",)

    def __init__(
        self, symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"), **kw: Any
    ) -> None:
        super().__init__(default_quotes(symbols), **kw)

    # ---- ccxt ---------------------------------------------------------------------------
    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        api = local_urls(ccxt.pro.gate().urls["api"], self.rest_url, self.ws_root)
        api["swap"] = {"usdt": self.ws_root + _WS_PATH, "btc": self.ws_root + "/unserved/btc"}
        config: dict[str, Any] = {
            "urls": {"api": api, "test": dict(api)},
            "options": {
                "fetchMarkets": {"types": ["swap"]},
                "swap": {"fetchMarkets": {"settlementCurrencies": ["usdt"]}},
                "defaultType": "swap",
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
        return Decimal(MARKETS[symbol.split("/")[0]][0])

    def tier_caps(self, symbol: str) -> list[Decimal]:
        return [Decimal(row[0]) for row in RISK_LIMIT_TIERS]

    def stream_topics(self, symbol: str) -> list[str]:
        market_id = self.quote(symbol).market_id
        return [f"futures.tickers:{market_id}", f"futures.book_ticker:{market_id}"]

    # ---- REST ---------------------------------------------------------------------------
    def bad_symbol_body(self, market_id: str) -> Any:
        return {"label": "CONTRACT_NOT_FOUND", "message": f"contract {market_id} not found"}

    def _currencies(self, request: web.Request) -> Any:
        return [
            {
                "currency": code,
                "name": code,
                "delisted": False,
                "withdraw_disabled": False,
                "withdraw_delayed": False,
                "deposit_disabled": False,
                "trade_disabled": False,
                "chain": code,
            }
            for code in ("USDT", *MARKETS)
        ]

    def _contract(self, q: Quote) -> dict[str, Any]:
        base = q.symbol.split("/")[0]
        multiplier, tick, _mark = MARKETS[base]
        first = RISK_LIMIT_TIERS[0]
        return {
            "name": q.market_id,
            "type": "direct",
            "quanto_multiplier": multiplier,
            "ref_discount_rate": "0",
            "order_price_deviate": "0.5",
            "maintenance_rate": first[2],
            "mark_type": "index",
            "last_price": q.last,
            "mark_price": q.mark,
            "index_price": q.index,
            "funding_rate_indicative": q.funding_rate,
            "mark_price_round": tick,
            "funding_offset": 0,
            "in_delisting": False,
            "risk_limit_base": first[0],
            "interest_rate": "0.0003",
            "order_price_round": tick,
            "order_size_min": 1,
            "ref_rebate_rate": "0.2",
            "funding_interval": q.funding_interval_h * 3600,
            "risk_limit_step": "1000000",
            "leverage_min": "1",
            "leverage_max": first[3],
            "risk_limit_max": RISK_LIMIT_TIERS[-1][0],
            "maker_fee_rate": "-0.0001",
            "taker_fee_rate": "0.00075",
            "funding_rate": q.funding_rate,
            "order_size_max": 1000000,
            "funding_next_apply": q.next_funding_time // 1000,
            "short_users": 100,
            "config_change_time": 1609899548,
            "trade_size": 1000000,
            "position_size": 500000,
            "long_users": 100,
            "funding_impact_value": "60000",
            "orders_limit": 50,
            "trade_id": 1,
            "orderbook_id": q.seq,
            "enable_bonus": True,
            "enable_credit": True,
            "create_time": 1669688556,
            "funding_cap_ratio": "0.75",
            "status": "trading",
            "launch_time": 1609899548,
        }

    def _contracts(self, request: web.Request) -> Any:
        return [self._contract(q) for q in self.quotes.values()]

    def _named(self, market_id: str) -> Quote:
        try:
            return self.quote(market_id)
        except KeyError:
            raise RestError(400, self.bad_symbol_body(market_id)) from None

    def _rest_ticker(self, q: Quote) -> dict[str, Any]:
        return {
            "contract": q.market_id,
            "last": q.last,
            "low_24h": q.last,
            "high_24h": q.last,
            "change_percentage": "0",
            "total_size": "500000",
            "volume_24h": q.volume,
            "volume_24h_base": q.volume,
            "volume_24h_quote": q.quote_volume(),
            "volume_24h_settle": q.quote_volume(),
            "mark_price": q.mark,
            "funding_rate": q.funding_rate,
            "funding_rate_indicative": q.funding_rate,
            "index_price": q.index,
            "quanto_base_rate": "",
            "lowest_ask": q.ask,
            "lowest_size": q.ask_size,
            "highest_bid": q.bid,
            "highest_size": q.bid_size,
        }

    def _tickers(self, request: web.Request) -> Any:
        one = self.query_symbol(request, "contract")
        return [self._rest_ticker(q) for q in ([one] if one else self.quotes.values())]

    def _risk_limit_tiers(self, request: web.Request) -> Any:
        one = self.query_symbol(request, "contract")
        quotes = [one] if one is not None else list(self.quotes.values())
        return [
            {
                "tier": i + 1,
                "risk_limit": limit,
                "initial_rate": imr,
                "maintenance_rate": mmr,
                "leverage_max": lev,
                "contract": q.market_id,
                "deduction": deduction,
            }
            for q in quotes
            for i, (limit, imr, mmr, lev, deduction) in enumerate(RISK_LIMIT_TIERS)
        ]

    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        ("GET", "/api/v4/spot/currencies"): _currencies,
        ("GET", "/api/v4/futures/usdt/contracts"): _contracts,
        ("GET", "/api/v4/futures/usdt/tickers"): _tickers,
        ("GET", "/api/v4/futures/usdt/risk_limit_tiers"): _risk_limit_tiers,
    }

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        # /futures/usdt/contracts/<contract>: the one path with a parameter
        prefix = "/api/v4/futures/usdt/contracts/"
        if request.path.startswith(prefix) and not self.refused:
            self.requests[request.path] += 1
            try:
                return web.json_response(self._contract(self._named(request.path[len(prefix) :])))
            except RestError as exc:
                return web.json_response(exc.body, status=exc.status)
        return await super()._dispatch(request)

    # ---- websocket ----------------------------------------------------------------------
    def _ws_ticker(self, q: Quote) -> dict[str, Any]:
        return {
            "contract": q.market_id,
            "last": q.last,
            "change_percentage": "0",
            "funding_rate": q.funding_rate,
            "funding_rate_indicative": q.funding_rate,
            "mark_price": q.mark,
            "index_price": q.index,
            "total_size": "500000",
            "volume_24h": q.volume,
            "volume_24h_btc": "0",
            "volume_24h_usd": q.quote_volume(),
            "quanto_base_rate": "",
            "volume_24h_quote": q.quote_volume(),
            "volume_24h_settle": q.quote_volume(),
            "volume_24h_base": q.volume,
            "low_24h": q.last,
            "high_24h": q.last,
        }

    def _ws_book(self, q: Quote) -> dict[str, Any]:
        return {
            "t": now_ms(),
            "u": q.seq,
            "s": q.market_id,
            "b": q.bid,
            "B": q.bid_size,
            "a": q.ask,
            "A": q.ask_size,
        }

    @staticmethod
    def _update(channel: str, result: Any) -> dict[str, Any]:
        ms = now_ms()
        return {
            "time": ms // 1000,
            "time_ms": ms,
            "channel": channel,
            "event": "update",
            "result": result,
        }

    def frames(self, quote: Quote, kinds: Iterable[str]) -> list[tuple[str, Any]]:
        kinds = set(kinds)
        out: list[tuple[str, Any]] = []
        if kinds & {"mark", "ticker", "funding"}:
            out.append(
                (
                    f"futures.tickers:{quote.market_id}",
                    self._update("futures.tickers", [self._ws_ticker(quote)]),
                )
            )
        if "book" in kinds:
            out.append(
                (
                    f"futures.book_ticker:{quote.market_id}",
                    self._update("futures.book_ticker", self._ws_book(quote)),
                )
            )
        return out

    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if not isinstance(message, dict):
            return
        channel, event = message.get("channel"), message.get("event")
        payload = [p for p in message.get("payload") or [] if isinstance(p, str)]
        ms = now_ms()
        base = {"time": ms // 1000, "time_ms": ms, "id": message.get("id"), "channel": channel}
        if channel == "futures.ping":
            self.pings += 1
            await conn.send({**base, "channel": "futures.pong", "event": "", "result": None})
            return
        known = channel in ("futures.tickers", "futures.book_ticker")
        unknown = [p for p in payload if p not in {q.market_id for q in self.quotes.values()}]
        if event == "subscribe":
            if not known or unknown:
                await conn.send(
                    {**base, "event": "subscribe",
                     "error": {"code": 2, "message": f"unknown contract {unknown}"},
                     "result": {"status": "failed"}}
                )  # fmt: skip
                return
            await conn.send({**base, "event": "subscribe", "result": {"status": "success"}})
            await self.subscribed(conn, [f"{channel}:{p}" for p in payload])
        elif event == "unsubscribe":
            await conn.send({**base, "event": "unsubscribe", "result": {"status": "success"}})
            await self.unsubscribed(conn, [f"{channel}:{p}" for p in payload])
