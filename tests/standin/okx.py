"""A local stand-in for OKX v5 USDT-margined perpetual swaps (public market data).

Speaks what ``ccxt.pro.okx`` 4.5.90 asks for on ``load_markets``, the feed and the tier fetch:

REST (envelope ``{"code": "0", "msg": "", "data": [...]}``): ``GET /api/v5/public/instruments``
(``instType=SWAP``), ``/api/v5/public/time``, ``/api/v5/public/mark-price``,
``/api/v5/public/funding-rate`` (``instId=ANY`` or one), ``/api/v5/market/tickers``,
``/api/v5/market/ticker``, ``/api/v5/public/position-tiers`` (``instType=SWAP``, ``tdMode``,
``instFamily``; one market per call, as ccxt's ``fetch_market_leverage_tiers`` asks).

Websocket ``/ws/v5/public``: ``{"op": "subscribe", "args": [{"channel", "instId"}]}`` acked per
argument with ``{"event": "subscribe", "arg": {...}, "connId"}``, the channel's current data
pushed right after (OKX pushes on subscription); text ``ping`` answered with text ``pong``.
Channels ``mark-price``, ``bbo-tbt``, ``tickers``, ``funding-rate``.

Tiers are in contracts (``minSz``/``maxSz``) with OKX's step: a tier starts one lot (0.01) above
the previous tier's ``maxSz``. Contract values as OKX lists them (BTC-USDT-SWAP 0.01 BTC,
ETH-USDT-SWAP 0.1 ETH); prices and tier numbers are the stand-in's own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from tests.standin.base import Quote, RestError, RestHandler, VenueStandin, WsConn, now_ms

__all__ = ["POSITION_TIERS", "StandinOkx"]

#: base -> (contract value, tick size, default mark)
MARKETS: dict[str, tuple[str, str, str]] = {
    "BTC": ("0.01", "0.1", "65000.0"),
    "ETH": ("0.1", "0.01", "3200.00"),
}

#: (minSz, maxSz, mmr, imr, maxLever): contracts, OKX's "+ one lot" step between tiers.
POSITION_TIERS: tuple[tuple[str, str, str, str, str], ...] = (
    ("0", "500", "0.004", "0.01", "100"),
    ("500.01", "1000", "0.005", "0.0133", "75"),
    ("1000.01", "2000", "0.01", "0.02", "50"),
)

CHANNELS = ("mark-price", "bbo-tbt", "tickers", "funding-rate")


def default_quotes(symbols: Iterable[str]) -> list[Quote]:
    quotes = []
    for sym in symbols:
        base = sym.split("/")[0]
        _ct, tick, mark = MARKETS[base]
        step = Decimal(tick)
        quotes.append(
            Quote(
                symbol=sym,
                market_id=f"{base}-USDT-SWAP",
                mark=mark,
                index=mark,
                last=mark,
                bid=str(Decimal(mark) - step),
                ask=str(Decimal(mark) + step),
            )
        )
    return quotes


class StandinOkx(VenueStandin):
    exchange_id = "okx"
    ws_paths = ("/ws/v5",)

    def __init__(
        self, symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"), **kw: Any
    ) -> None:
        super().__init__(default_quotes(symbols), **kw)
        self._conn_ids = itertools.count(1)

    # ---- ccxt ---------------------------------------------------------------------------
    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        api = {"rest": self.rest_url, "ws": f"{self.ws_root}/ws/v5"}
        config: dict[str, Any] = {
            "urls": {"api": api, "test": dict(api)},
            "options": {"fetchMarkets": {"types": ["swap"]}, "adjustForTimeDifference": False},
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
        return [Decimal(row[1]) for row in POSITION_TIERS]

    def stream_topics(self, symbol: str) -> list[str]:
        market_id = self.quote(symbol).market_id
        return [f"{channel}:{market_id}" for channel in CHANNELS]

    # ---- REST ---------------------------------------------------------------------------
    @staticmethod
    def _envelope(data: list[Any]) -> dict[str, Any]:
        return {"code": "0", "msg": "", "data": data}

    def bad_symbol_body(self, market_id: str) -> Any:
        return {"code": "51001", "msg": "Instrument ID does not exist", "data": []}

    @staticmethod
    def _swap_only(request: web.Request) -> None:
        if request.query.get("instType", "SWAP") != "SWAP":
            raise RestError(200, {"code": "51000", "msg": "stand-in serves SWAP only", "data": []})

    def _instrument(self, q: Quote) -> dict[str, Any]:
        base = q.symbol.split("/")[0]
        ct_val, tick, _mark = MARKETS[base]
        return {
            "alias": "",
            "baseCcy": "",
            "category": "1",
            "ctMult": "1",
            "ctType": "linear",
            "ctVal": ct_val,
            "ctValCcy": base,
            "expTime": "",
            "instFamily": f"{base}-USDT",
            "instId": q.market_id,
            "instType": "SWAP",
            "lever": "100",
            "listTime": "1611916828000",
            "lotSz": "0.01",
            "maxIcebergSz": "100000000.0000000000000000",
            "maxLmtAmt": "20000000",
            "maxLmtSz": "100000000",
            "maxMktAmt": "",
            "maxMktSz": "12000",
            "maxStopSz": "12000",
            "maxTriggerSz": "100000000.0000000000000000",
            "maxTwapSz": "100000000.0000000000000000",
            "minSz": "0.01",
            "optType": "",
            "quoteCcy": "",
            "settleCcy": "USDT",
            "state": "live",
            "stk": "",
            "tickSz": tick,
            "uly": f"{base}-USDT",
            "ruleType": "normal",
        }

    def _instruments(self, request: web.Request) -> Any:
        self._swap_only(request)
        return self._envelope([self._instrument(q) for q in self.quotes.values()])

    def _time(self, request: web.Request) -> Any:
        return self._envelope([{"ts": str(now_ms())}])

    def _selected(self, request: web.Request) -> list[Quote]:
        one = self.query_symbol(request, "instId")
        return [one] if one is not None else list(self.quotes.values())

    def _mark_entry(self, q: Quote) -> dict[str, str]:
        return {"instType": "SWAP", "instId": q.market_id, "markPx": q.mark, "ts": str(now_ms())}

    def _mark_prices(self, request: web.Request) -> Any:
        self._swap_only(request)
        return self._envelope([self._mark_entry(q) for q in self._selected(request)])

    def _funding_entry(self, q: Quote) -> dict[str, str]:
        return {
            "formulaType": "noRate",
            "fundingRate": q.funding_rate,
            "fundingTime": str(q.next_funding_time),
            "impactValue": "",
            "instId": q.market_id,
            "instType": "SWAP",
            "interestRate": "0",
            "maxFundingRate": "0.00375",
            "method": "current_period",
            "minFundingRate": "-0.00375",
            "nextFundingRate": "",
            "nextFundingTime": str(q.next_funding_time + q.funding_interval_h * 3_600_000),
            "premium": "0",
            "settFundingRate": q.funding_rate,
            "settState": "settled",
            "ts": str(now_ms()),
        }

    def _funding(self, request: web.Request) -> Any:
        if request.query.get("instId") == "ANY":
            quotes = list(self.quotes.values())
        else:
            quotes = self._selected(request)
        return self._envelope([self._funding_entry(q) for q in quotes])

    def _ticker_entry(self, q: Quote) -> dict[str, str]:
        return {
            "instType": "SWAP",
            "instId": q.market_id,
            "last": q.last,
            "lastSz": "1",
            "askPx": q.ask,
            "askSz": q.ask_size,
            "bidPx": q.bid,
            "bidSz": q.bid_size,
            "open24h": q.last,
            "high24h": q.last,
            "low24h": q.last,
            # OKX swaps: volCcy24h is the base amount, vol24h counts contracts
            "volCcy24h": q.volume,
            "vol24h": str(Decimal(q.volume) / self.contract_size(q.symbol)),
            "sodUtc0": q.last,
            "sodUtc8": q.last,
            "ts": str(now_ms()),
        }

    def _tickers(self, request: web.Request) -> Any:
        self._swap_only(request)
        return self._envelope([self._ticker_entry(q) for q in self._selected(request)])

    def _position_tiers(self, request: web.Request) -> Any:
        self._swap_only(request)
        family = request.query.get("instFamily", "")
        if request.query.get("tdMode") not in ("cross", "isolated"):
            raise RestError(200, {"code": "51000", "msg": "Parameter tdMode error", "data": []})
        if not any(q.market_id.removesuffix("-SWAP") == family for q in self.quotes.values()):
            raise RestError(200, {"code": "51000", "msg": "Parameter instFamily error", "data": []})
        rows = [
            {
                "baseMaxLoan": "",
                "imr": imr,
                "instFamily": family,
                "instId": "",
                "maxLever": lever,
                "maxSz": max_sz,
                "minSz": min_sz,
                "mmr": mmr,
                "optMgnFactor": "0",
                "quoteMaxLoan": "",
                "tier": str(i + 1),
                "uly": family,
            }
            for i, (min_sz, max_sz, mmr, imr, lever) in enumerate(POSITION_TIERS)
        ]
        return self._envelope(rows)

    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        ("GET", "/api/v5/public/instruments"): _instruments,
        ("GET", "/api/v5/public/time"): _time,
        ("GET", "/api/v5/public/mark-price"): _mark_prices,
        ("GET", "/api/v5/public/funding-rate"): _funding,
        ("GET", "/api/v5/market/tickers"): _tickers,
        ("GET", "/api/v5/market/ticker"): _tickers,
        ("GET", "/api/v5/public/position-tiers"): _position_tiers,
    }

    # ---- websocket ----------------------------------------------------------------------
    def decode(self, data: str | bytes) -> Any:
        if data in ("ping", b"ping"):
            return "ping"
        return super().decode(data)

    def _push(self, channel: str, q: Quote) -> dict[str, Any]:
        arg = {"channel": channel, "instId": q.market_id}
        if channel == "mark-price":
            data = [self._mark_entry(q)]
        elif channel == "tickers":
            data = [self._ticker_entry(q)]
        elif channel == "funding-rate":
            data = [self._funding_entry(q)]
        else:
            data = [
                {
                    "asks": [[q.ask, q.ask_size, "0", "1"]],
                    "bids": [[q.bid, q.bid_size, "0", "1"]],
                    "ts": str(now_ms()),
                    "seqId": q.seq,
                }
            ]
        return {"arg": arg, "data": data}

    def frames(self, quote: Quote, kinds: Iterable[str]) -> list[tuple[str, Any]]:
        kinds = set(kinds)
        channels = []
        if "mark" in kinds:
            channels.append("mark-price")
        if "book" in kinds:
            channels.append("bbo-tbt")
        if kinds & {"book", "ticker"}:
            channels.append("tickers")
        if "funding" in kinds:
            channels.append("funding-rate")
        return [(f"{c}:{quote.market_id}", self._push(c, quote)) for c in channels]

    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if await self.answer_text_ping(conn, message) or not isinstance(message, dict):
            return
        op = message.get("op")
        args = [a for a in message.get("args") or [] if isinstance(a, dict)]
        conn_id = f"standin{next(self._conn_ids)}"
        if op == "subscribe":
            for arg in args:
                channel, market_id = arg.get("channel"), arg.get("instId")
                try:
                    q = self.quote(str(market_id))
                except KeyError:
                    q = None
                if channel not in CHANNELS or q is None:
                    await conn.send(
                        {"event": "error", "code": "60018", "connId": conn_id,
                         "msg": f"Wrong URL or channel:{channel},instId:{market_id} doesn't exist."}
                    )  # fmt: skip
                    continue
                await conn.send({"event": "subscribe", "arg": arg, "connId": conn_id})
                await self.subscribed(conn, [f"{channel}:{market_id}"])
                await conn.send(self._push(channel, q))
        elif op == "unsubscribe":
            for arg in args:
                await conn.send({"event": "unsubscribe", "arg": arg, "connId": conn_id})
                await self.unsubscribed(conn, [f"{arg.get('channel')}:{arg.get('instId')}"])
