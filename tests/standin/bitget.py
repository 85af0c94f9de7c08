"""A local stand-in for Bitget USDT-M futures (API v2 public market data, classic account).

Speaks what ``ccxt.pro.bitget`` 4.5.90 asks for on ``load_markets``, the feed, the funding poll
and the tier fetch (envelope ``{"code": "00000", "msg": "success", "requestTime", "data"}``):

REST: ``GET /api/v2/spot/public/coins`` (currencies), ``/api/v2/spot/public/symbols`` and
``/api/v2/margin/currencies`` (ccxt loads spot markets unless told otherwise: empty here),
``/api/v2/mix/market/contracts`` (one call per ``productType``; only ``USDT-FUTURES`` lists
contracts), ``/api/v2/mix/market/tickers`` (also ``fetch_funding_rates``: ``fundingRate``,
``nextFundingTime``), ``/api/v2/mix/market/query-position-lever`` (one market per call:
``startUnit``/``endUnit`` in USDT, ``keepMarginRate``), ``/api/v2/mix/market/symbol-price``.

Websocket ``/v2/ws/public``: ``{"op": "subscribe", "args": [{"instType", "channel": "ticker",
"instId"}]}`` acked per argument with ``{"event": "subscribe", "arg"}``, a snapshot of the
channel pushed after it; text ``ping`` answered with text ``pong``. The ticker carries
``markPrice``, ``indexPrice``, ``fundingRate`` and ``nextFundingTime`` (ccxt leaves them in
``info``) beside ``bidPr``/``askPr``/``lastPr``; ccxt's ``watch_bids_asks`` reads the same channel.

Numbers are the stand-in's own; contracts are in base units (ccxt: contract size 1).
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

__all__ = ["POSITION_LEVER", "StandinBitget"]

PRODUCT = "USDT-FUTURES"

#: base -> (price tick, default mark)
MARKETS: dict[str, tuple[str, str]] = {
    "BTC": ("0.1", "65000.0"),
    "ETH": ("0.01", "3200.00"),
}

#: (startUnit, endUnit, leverage, keepMarginRate): USDT position value
POSITION_LEVER: tuple[tuple[str, str, str, str], ...] = (
    ("0", "200000", "125", "0.004"),
    ("200000", "1000000", "100", "0.005"),
    ("1000000", "5000000", "50", "0.01"),
)


def default_quotes(symbols: Iterable[str]) -> list[Quote]:
    quotes = []
    for sym in symbols:
        base = sym.split("/")[0]
        tick, mark = MARKETS[base]
        step = Decimal(tick)
        quotes.append(
            Quote(
                symbol=sym,
                market_id=f"{base}USDT",
                mark=mark,
                index=mark,
                last=mark,
                bid=str(Decimal(mark) - step),
                ask=str(Decimal(mark) + step),
            )
        )
    return quotes


class StandinBitget(VenueStandin):
    exchange_id = "bitget"
    ws_paths = ("/v2/ws",)

    def __init__(
        self, symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"), **kw: Any
    ) -> None:
        super().__init__(default_quotes(symbols), **kw)

    # ---- ccxt ---------------------------------------------------------------------------
    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        api = local_urls(ccxt.pro.bitget().urls["api"], self.rest_url, self.ws_root)
        config: dict[str, Any] = {
            "urls": {"api": api},
            "options": {
                "fetchMarkets": {"types": ["swap"]},
                "defaultType": "swap",
                "uta": False,
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
        return Decimal(1)

    def tier_caps(self, symbol: str) -> list[Decimal]:
        return [Decimal(row[1]) for row in POSITION_LEVER]

    def stream_topics(self, symbol: str) -> list[str]:
        return [f"ticker:{self.quote(symbol).market_id}"]

    # ---- REST ---------------------------------------------------------------------------
    @staticmethod
    def _envelope(data: Any) -> dict[str, Any]:
        return {"code": "00000", "msg": "success", "requestTime": now_ms(), "data": data}

    def bad_symbol_body(self, market_id: str) -> Any:
        return {"code": "40034", "msg": "Parameter does not exist", "requestTime": now_ms()}

    @staticmethod
    def _usdt_only(request: web.Request) -> bool:
        return request.query.get("productType", PRODUCT).upper() == PRODUCT

    def _coins(self, request: web.Request) -> Any:
        return self._envelope(
            [
                {"coinId": str(i + 1), "coin": coin, "transfer": "true", "chains": []}
                for i, coin in enumerate(("USDT", *MARKETS))
            ]
        )

    def _empty(self, request: web.Request) -> Any:
        return self._envelope([])

    def _contract(self, q: Quote) -> dict[str, Any]:
        base = q.symbol.split("/")[0]
        tick, _mark = MARKETS[base]
        return {
            "symbol": q.market_id,
            "baseCoin": base,
            "quoteCoin": "USDT",
            "buyLimitPriceRatio": "0.9",
            "sellLimitPriceRatio": "0.9",
            "feeRateUpRatio": "0.1",
            "makerFeeRate": "0.0002",
            "takerFeeRate": "0.0006",
            "openCostUpRatio": "0.1",
            "supportMarginCoins": ["USDT"],
            "minTradeNum": "0.001",
            "priceEndStep": "1",
            "volumePlace": "3",
            "pricePlace": str(len(tick.split(".")[1])),
            "sizeMultiplier": "0.001",
            "symbolType": "perpetual",
            "minTradeUSDT": "5",
            "maxSymbolOrderNum": "999999",
            "maxProductOrderNum": "999999",
            "maxPositionNum": "150",
            "symbolStatus": "normal",
            "offTime": "-1",
            "limitOpenTime": "-1",
            "deliveryTime": "",
            "deliveryStartTime": "",
            "launchTime": "",
            "fundInterval": str(q.funding_interval_h),
            "minLever": "1",
            "maxLever": "125",
            "posLimit": "0.05",
            "maintainTime": "",
        }

    def _contracts(self, request: web.Request) -> Any:
        if not self._usdt_only(request):
            return self._envelope([])
        one = self.query_symbol(request)
        return self._envelope([self._contract(q) for q in ([one] if one else self.quotes.values())])

    def _ticker(self, q: Quote) -> dict[str, str]:
        return {
            "symbol": q.market_id,
            "lastPr": q.last,
            "askPr": q.ask,
            "bidPr": q.bid,
            "bidSz": q.bid_size,
            "askSz": q.ask_size,
            "high24h": q.last,
            "low24h": q.last,
            "ts": str(now_ms()),
            "change24h": "0",
            "baseVolume": q.volume,
            "quoteVolume": q.quote_volume(),
            "usdtVolume": q.quote_volume(),
            "openUtc": q.last,
            "changeUtc24h": "0",
            "indexPrice": q.index,
            "fundingRate": q.funding_rate,
            "holdingAmount": "1000",
            "deliveryStartTime": None,
            "deliveryTime": None,
            "deliveryStatus": "",
            "open24h": q.last,
            "markPrice": q.mark,
            "nextFundingTime": str(q.next_funding_time),
        }

    def _tickers(self, request: web.Request) -> Any:
        if not self._usdt_only(request):
            raise RestError(400, self.bad_symbol_body(request.query.get("productType", "")))
        one = self.query_symbol(request)
        return self._envelope([self._ticker(q) for q in ([one] if one else self.quotes.values())])

    def _symbol_price(self, request: web.Request) -> Any:
        one = self.query_symbol(request)
        quotes = [one] if one else list(self.quotes.values())
        return self._envelope(
            [
                {"symbol": q.market_id, "price": q.last, "indexPrice": q.index,
                 "markPrice": q.mark, "ts": str(now_ms())}
                for q in quotes
            ]
        )  # fmt: skip

    def _position_lever(self, request: web.Request) -> Any:
        q = self.query_symbol(request)
        if q is None or not self._usdt_only(request):
            raise RestError(400, self.bad_symbol_body(request.query.get("symbol", "")))
        return self._envelope(
            [
                {"symbol": q.market_id, "level": str(i + 1), "startUnit": start,
                 "endUnit": end, "leverage": lev, "keepMarginRate": mmr}
                for i, (start, end, lev, mmr) in enumerate(POSITION_LEVER)
            ]
        )  # fmt: skip

    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        ("GET", "/api/v2/spot/public/coins"): _coins,
        ("GET", "/api/v2/spot/public/symbols"): _empty,
        ("GET", "/api/v2/margin/currencies"): _empty,
        ("GET", "/api/v2/mix/market/contracts"): _contracts,
        ("GET", "/api/v2/mix/market/tickers"): _tickers,
        ("GET", "/api/v2/mix/market/ticker"): _tickers,
        ("GET", "/api/v2/mix/market/symbol-price"): _symbol_price,
        ("GET", "/api/v2/mix/market/query-position-lever"): _position_lever,
    }

    # ---- websocket ----------------------------------------------------------------------
    def decode(self, data: str | bytes) -> Any:
        if data in ("ping", b"ping"):
            return "ping"
        return super().decode(data)

    def _push(self, q: Quote, action: str = "snapshot") -> dict[str, Any]:
        ws_ticker = self._ticker(q)
        ws_ticker["instId"] = q.market_id
        return {
            "action": action,
            "arg": {"instType": PRODUCT, "channel": "ticker", "instId": q.market_id},
            "data": [ws_ticker],
            "ts": now_ms(),
        }

    def frames(self, quote: Quote, kinds: Iterable[str]) -> list[tuple[str, Any]]:
        return [(f"ticker:{quote.market_id}", self._push(quote))]

    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if await self.answer_text_ping(conn, message) or not isinstance(message, dict):
            return
        op = message.get("op")
        args = [a for a in message.get("args") or [] if isinstance(a, dict)]
        for arg in args:
            channel, market_id = arg.get("channel"), str(arg.get("instId"))
            try:
                q = self.quote(market_id)
            except KeyError:
                q = None
            if op == "subscribe":
                if channel != "ticker" or q is None or arg.get("instType") != PRODUCT:
                    await conn.send(
                        {"event": "error", "arg": arg, "code": 30001,
                         "msg": f"instType:{arg.get('instType')},channel:{channel},"
                                f"instId:{market_id} doesn't exist"}
                    )  # fmt: skip
                    continue
                await conn.send({"event": "subscribe", "arg": arg})
                await self.subscribed(conn, [f"ticker:{market_id}"])
                await conn.send(self._push(q))
            elif op == "unsubscribe":
                await conn.send({"event": "unsubscribe", "arg": arg})
                await self.unsubscribed(conn, [f"ticker:{market_id}"])
