"""A local stand-in for MEXC USDT-M perpetual futures ("contract" API v1, public market data).

Speaks what ``ccxt.pro.mexc`` 4.5.90 asks for on ``load_markets``, the feed, the funding poll and
the tier fetch:

REST: ``GET /api/v3/exchangeInfo`` (ccxt always loads spot markets too: an empty list here),
``/api/v1/contract/detail`` (swap markets; also the source of ccxt's tiers: ``maxVol``,
``riskIncrVol``/``riskIncrMmr``/``riskIncrImr`` step the rates up per ``riskIncrVol`` contracts),
``/api/v1/contract/ticker``, ``/api/v1/contract/funding_rate/<symbol>`` (``nextSettleTime``,
``collectCycle`` hours). Envelope ``{"success": true, "code": 0, "data": ...}``.

Websocket ``/edge``: ``{"method": "sub.ticker" | "sub.funding.rate", "param": {"symbol"}}``
acked ``{"channel": "rs.sub.ticker", "data": "success", "ts"}``; ``{"method": "ping"}`` answered
``{"channel": "pong", "data": ts}``. ``push.ticker`` carries ``fairPrice`` (the mark),
``indexPrice``, ``fundingRate``, ``bid1``/``ask1``; ``push.funding.rate`` the rate and
``nextSettleTime``. There is no bid/ask stream for swaps (ccxt's ``watch_bids_asks`` raises
NotSupported before sending anything).

Contract sizes as MEXC lists them (BTC_USDT 0.0001 BTC, ETH_USDT 0.01 ETH); prices and risk
steps are the stand-in's own. By default every contract is in MEXC's older ``INCREASE`` risk
mode (the steps above, which ccxt parses); ``risk_levels={"BTC": [...]}`` serves a contract in
``CUSTOM`` mode instead, as MEXC does for its large contracts: ``riskLimitMode`` ``CUSTOM``, the
``riskIncr*`` fields 0 and the levels in ``riskLimitCustom`` (``imr``, ``level``,
``maxLeverage``, ``maxVol``, ``mmr``: the shape recorded from MEXC in gocryptotrader's
``exchanges/mexc/testdata/http.json``, see guardbot/data/tiers/mexc.json).
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

__all__ = ["RISK", "StandinMexc"]

#: base -> (contract size, price unit, default mark)
MARKETS: dict[str, tuple[str, str, str]] = {
    "BTC": ("0.0001", "0.1", "65000.0"),
    "ETH": ("0.01", "0.01", "3200.00"),
}

#: The contract detail's risk fields: tiers of ``riskIncrVol`` contracts up to ``maxVol``, the
#: first at ``maintenanceMarginRate``/``initialMarginRate``, each next one ``riskIncr*`` higher.
RISK = {
    "maintenanceMarginRate": "0.004",
    "initialMarginRate": "0.01",
    "maxVol": "6000000",
    "riskIncrVol": "2000000",
    "riskIncrMmr": "0.004",
    "riskIncrImr": "0.01",
}

_WS_PATH = "/edge"


def default_quotes(symbols: Iterable[str]) -> list[Quote]:
    quotes = []
    for sym in symbols:
        base = sym.split("/")[0]
        _cs, tick, mark = MARKETS[base]
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


def _num(text: str) -> float | int:
    """MEXC sends JSON numbers, not strings."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() and "." not in text else float(text)


class StandinMexc(VenueStandin):
    exchange_id = "mexc"
    ws_paths = (_WS_PATH,)

    def __init__(
        self,
        symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"),
        *,
        risk_levels: Mapping[str, list[dict[str, Any]]] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(default_quotes(symbols), **kw)
        #: base -> the ``riskLimitCustom`` levels of a CUSTOM-mode contract (may be empty)
        self.risk_levels: dict[str, list[dict[str, Any]]] = dict(risk_levels or {})

    # ---- ccxt ---------------------------------------------------------------------------
    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        api = local_urls(ccxt.pro.mexc().urls["api"], self.rest_url, self.ws_root)
        api["ws"] = {"spot": self.ws_root + "/unserved/ws", "swap": self.ws_root + _WS_PATH}
        config: dict[str, Any] = {
            "urls": {"api": api},
            "options": {"defaultType": "swap", "adjustForTimeDifference": False},
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
        levels = self.risk_levels.get(symbol.split("/")[0])
        if levels is not None:
            return sorted(Decimal(str(level["maxVol"])) for level in levels)
        step, top = Decimal(RISK["riskIncrVol"]), Decimal(RISK["maxVol"])
        return [step * k for k in range(1, int(top / step) + 1)]

    def stream_topics(self, symbol: str) -> list[str]:
        market_id = self.quote(symbol).market_id
        return [f"ticker:{market_id}", f"funding.rate:{market_id}"]

    # ---- REST ---------------------------------------------------------------------------
    @staticmethod
    def _envelope(data: Any) -> dict[str, Any]:
        return {"success": True, "code": 0, "data": data}

    def bad_symbol_body(self, market_id: str) -> Any:
        return {"success": False, "code": 1001, "message": "contract not exists"}

    def _exchange_info(self, request: web.Request) -> Any:
        return {"timezone": "CST", "serverTime": now_ms(), "rateLimits": [], "symbols": []}

    def _detail(self, q: Quote) -> dict[str, Any]:
        base = q.symbol.split("/")[0]
        size, unit, _mark = MARKETS[base]
        return {
            "symbol": q.market_id,
            "displayName": f"{base}_USDT永续",
            "displayNameEn": f"{base}_USDT PERPETUAL",
            "positionOpenType": 3,
            "baseCoin": base,
            "quoteCoin": "USDT",
            "settleCoin": "USDT",
            "contractSize": _num(size),
            "minLeverage": 1,
            "maxLeverage": 100,
            "priceScale": len(unit.split(".")[1]) if "." in unit else 0,
            "volScale": 0,
            "amountScale": 4,
            "priceUnit": _num(unit),
            "volUnit": 1,
            "minVol": 1,
            "maxVol": _num(RISK["maxVol"]),
            "bidLimitPriceRate": 0.1,
            "askLimitPriceRate": 0.1,
            "takerFeeRate": 0.0002,
            "makerFeeRate": 0,
            "maintenanceMarginRate": _num(RISK["maintenanceMarginRate"]),
            "initialMarginRate": _num(RISK["initialMarginRate"]),
            "riskBaseVol": _num(RISK["riskIncrVol"]),
            "riskIncrVol": _num(RISK["riskIncrVol"]),
            "riskIncrMmr": _num(RISK["riskIncrMmr"]),
            "riskIncrImr": _num(RISK["riskIncrImr"]),
            "riskLevelLimit": 3,
            "priceCoefficientVariation": 0.1,
            "indexOrigin": ["BINANCE", "OKX"],
            "state": 0,
            "isNew": False,
            "isHot": True,
            "isHidden": False,
            "conceptPlate": [],
            "riskLimitType": "BY_VOLUME",
            "maxNumOrders": [200, 50],
            "marketOrderMaxLevel": 20,
            "marketOrderPriceLimitRate1": 0.2,
            "marketOrderPriceLimitRate2": 0.005,
            "triggerProtect": 0.1,
            "appraisal": 0,
            "showAppraisalCountdown": 0,
            "automaticDelivery": 0,
            "apiAllowed": False,
            "riskLimitMode": "INCREASE",
            **self._custom(base),
        }

    def _custom(self, base: str) -> dict[str, Any]:
        """The fields of a CUSTOM-mode contract (none for an INCREASE-mode one)."""
        levels = self.risk_levels.get(base)
        if levels is None:
            return {}
        return {
            "riskLimitMode": "CUSTOM",
            "riskIncrVol": 0,
            "riskIncrMmr": 0,
            "riskIncrImr": 0,
            "riskLevelLimit": 1,
            "riskLimitCustom": [dict(level) for level in levels],
        }

    def _details(self, request: web.Request) -> Any:
        one = self.query_symbol(request)
        quotes = [one] if one is not None else list(self.quotes.values())
        details = [self._detail(q) for q in quotes]
        return self._envelope(details[0] if one is not None else details)

    def _ticker_data(self, q: Quote) -> dict[str, Any]:
        return {
            "symbol": q.market_id,
            "lastPrice": _num(q.last),
            "riseFallRate": 0,
            "fairPrice": _num(q.mark),
            "indexPrice": _num(q.index),
            "volume24": _num(q.volume),
            "amount24": float(q.quote_volume()),
            "maxBidPrice": _num(q.mark) * 1.1,
            "minAskPrice": _num(q.mark) * 0.9,
            "lower24Price": _num(q.last),
            "high24Price": _num(q.last),
            "timestamp": q.updated_ms,
            "bid1": _num(q.bid),
            "ask1": _num(q.ask),
            "holdVol": 1000,
            "riseFallValue": 0,
            "fundingRate": _num(q.funding_rate),
            "zone": "UTC+8",
            "riseFallRates": [0, 0, 0, 0, 0, 0],
            "riseFallRatesOfTimezone": [0, 0, 0],
        }

    def _tickers(self, request: web.Request) -> Any:
        one = self.query_symbol(request)
        if one is not None:
            return self._envelope(self._ticker_data(one))
        return self._envelope([self._ticker_data(q) for q in self.quotes.values()])

    def _funding_data(self, q: Quote) -> dict[str, Any]:
        return {
            "symbol": q.market_id,
            "fundingRate": _num(q.funding_rate),
            "maxFundingRate": 0.003,
            "minFundingRate": -0.003,
            "collectCycle": q.funding_interval_h,
            "nextSettleTime": q.next_funding_time,
            "timestamp": now_ms(),
        }

    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        ("GET", "/api/v3/exchangeInfo"): _exchange_info,
        ("GET", "/api/v1/contract/detail"): _details,
        ("GET", "/api/v1/contract/ticker"): _tickers,
    }

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        # /api/v1/contract/funding_rate/<symbol>: the one path with a parameter
        prefix = "/api/v1/contract/funding_rate/"
        if request.path.startswith(prefix) and not self.refused:
            self.requests[request.path] += 1
            try:
                quote = self.quote(request.path[len(prefix) :])
            except KeyError:
                return web.json_response(self.bad_symbol_body(request.path[len(prefix) :]))
            return web.json_response(self._envelope(self._funding_data(quote)))
        return await super()._dispatch(request)

    # ---- websocket ----------------------------------------------------------------------
    def _push(self, channel: str, q: Quote) -> dict[str, Any]:
        if channel == "ticker":
            data: dict[str, Any] = self._ticker_data(q)
        else:
            data = {
                "symbol": q.market_id,
                "rate": _num(q.funding_rate),
                "nextSettleTime": q.next_funding_time,
            }
        return {"symbol": q.market_id, "data": data, "channel": f"push.{channel}", "ts": now_ms()}

    def frames(self, quote: Quote, kinds: Iterable[str]) -> list[tuple[str, Any]]:
        kinds = set(kinds)
        out = []
        if kinds & {"mark", "book", "ticker", "funding"}:
            out.append((f"ticker:{quote.market_id}", self._push("ticker", quote)))
        if "funding" in kinds:
            out.append((f"funding.rate:{quote.market_id}", self._push("funding.rate", quote)))
        return out

    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if not isinstance(message, dict):
            return
        method = message.get("method")
        if method == "ping":
            self.pings += 1
            await conn.send({"channel": "pong", "data": now_ms()})
            return
        param = message.get("param") if isinstance(message.get("param"), dict) else {}
        market_id = str(param.get("symbol"))
        verb, _, channel = str(method).partition(".")
        if verb not in ("sub", "unsub") or channel not in ("ticker", "funding.rate"):
            await conn.send({"channel": "rs.error", "data": f"unknown method {method}"})
            return
        try:
            quote = self.quote(market_id)
        except KeyError:
            await conn.send({"channel": "rs.error", "data": f"unknown symbol {market_id}"})
            return
        await conn.send({"channel": f"rs.{method}", "data": "success", "ts": now_ms()})
        if verb == "sub":
            await self.subscribed(conn, [f"{channel}:{market_id}"])
            await conn.send(self._push(channel, quote))
        else:
            await self.unsubscribed(conn, [f"{channel}:{market_id}"])
