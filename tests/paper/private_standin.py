"""The Binance stand-in plus the signed USDⓈ-M endpoints ccxt's fetch_positions, fetch_balance,
fetch_leverage and fetch_margin_mode call, so the real ccxt parses real-shaped private answers
(one BTC position, cross at 10x)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from aiohttp import web

from tests.standin.binance import StandinBinance

POSITION = {
    "symbol": "BTCUSDT",
    "positionSide": "BOTH",
    "positionAmt": "0.500",
    "entryPrice": "60000.0",
    "breakEvenPrice": "60030.0",
    "markPrice": "61000.00000000",
    "unRealizedProfit": "500.00000000",
    "liquidationPrice": "41000.5",
    "isolatedMargin": "0",
    "notional": "30500.00000000",
    "marginAsset": "USDT",
    "isolatedWallet": "0",
    "initialMargin": "3050.00000000",
    "maintMargin": "122.00000000",
    "positionInitialMargin": "3050.00000000",
    "openOrderInitialMargin": "0",
    "adl": 1,
    "bidNotional": "0",
    "askNotional": "0",
    "updateTime": 1767225600000,
}

ACCOUNT = {
    "totalInitialMargin": "3050.0",
    "totalMaintMargin": "122.0",
    "totalWalletBalance": "10000.0",
    "totalUnrealizedProfit": "500.0",
    "totalMarginBalance": "10500.0",
    "totalPositionInitialMargin": "3050.0",
    "totalOpenOrderInitialMargin": "0",
    "totalCrossWalletBalance": "10000.0",
    "totalCrossUnPnl": "500.0",
    "availableBalance": "7450.0",
    "maxWithdrawAmount": "7450.0",
    "assets": [
        {
            "asset": "USDT",
            "walletBalance": "10000.0",
            "unrealizedProfit": "500.0",
            "marginBalance": "10500.0",
            "maintMargin": "122.0",
            "initialMargin": "3050.0",
            "positionInitialMargin": "3050.0",
            "openOrderInitialMargin": "0",
            "crossWalletBalance": "10000.0",
            "crossUnPnl": "500.0",
            "availableBalance": "7450.0",
            "maxWithdrawAmount": "7450.0",
            "updateTime": 1767225600000,
        }
    ],
    "positions": [],
}

BRACKETS = [
    {
        "symbol": symbol,
        "brackets": [
            {
                "bracket": 1,
                "initialLeverage": 125,
                "notionalCap": 50000,
                "notionalFloor": 0,
                "maintMarginRatio": 0.004,
                "cum": 0.0,
            }
        ],
    }
    for symbol in ("BTCUSDT", "ETHUSDT")
]


# GET /fapi/v1/symbolConfig (ccxt's fetch_leverages and fetch_margin_mode read it)
SYMBOL_CONFIG = [
    {
        "symbol": symbol,
        "marginType": "CROSSED",
        "isAutoAddMargin": "false",
        "leverage": 10,
        "maxNotionalValue": "1000000",
    }
    for symbol in ("BTCUSDT", "ETHUSDT")
]


class PrivateStandin(StandinBinance):
    def _position_risk(self, request: web.Request) -> web.Response:
        return web.json_response([POSITION])

    def _account(self, request: web.Request) -> web.Response:
        return web.json_response(ACCOUNT)

    def _brackets(self, request: web.Request) -> web.Response:
        return web.json_response(BRACKETS)

    def _symbol_config(self, request: web.Request) -> web.Response:
        wanted = request.query.get("symbol")
        return web.json_response([c for c in SYMBOL_CONFIG if wanted in (None, c["symbol"])])

    # the base declares the table as a plain class attribute (read through self)
    _rest_routes: ClassVar[  # type: ignore[misc]
        Mapping[tuple[str, str], Callable[[StandinBinance, web.Request], web.Response]]
    ] = {
        **StandinBinance._rest_routes,
        ("GET", "/fapi/v3/positionRisk"): _position_risk,  # type: ignore[dict-item]
        ("GET", "/fapi/v3/account"): _account,  # type: ignore[dict-item]
        ("GET", "/fapi/v1/leverageBracket"): _brackets,  # type: ignore[dict-item]
        ("GET", "/fapi/v1/symbolConfig"): _symbol_config,  # type: ignore[dict-item]
    }


def credentials() -> dict[str, Any]:
    """Fake credentials: ccxt signs private calls; the stand-in does not check them."""
    return {"apiKey": "standin-key", "secret": "standin-secret"}
