"""The Bybit v5 stand-in with a unified trading account behind it: the signed private endpoints and
the private websocket, as the real ``ccxt.pro.bybit`` calls them (ccxt 4.5.90), USDT linear only.

``StandinBybitPrivate`` extends :class:`~tests.standin.bybit.StandinBybit` (public REST and market
streams unchanged) with one account whose state a test sets. Its controls speak the vocabulary of
the Binance private stand-in (``side`` ``BOTH`` / ``LONG`` / ``SHORT``, ``how`` ``MARKET`` /
``STOP_MARKET`` / ``TAKE_PROFIT_MARKET`` / ``LIQUIDATION`` / ``ADL``) so one test drives either.

Served private REST, signed as v5 asks (headers ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``,
``X-BAPI-RECV-WINDOW``, ``X-BAPI-SIGN`` = hex HMAC-SHA256 of timestamp + key + recv window +
query string); a wrong key answers ``retCode`` 10003, a wrong signature 10004, as Bybit does:

- ``GET /v5/asset/coin/query-info`` (``fetch_currencies``, part of ``load_markets`` once a key
  is set);
- ``GET /v5/user/query-api`` and ``GET /v5/account/info`` (ccxt's ``is_unified_enabled``, asked
  before any private call; ``account/info`` is also ``fetch_margin_mode``: ``marginMode``);
- ``GET /v5/account/wallet-balance`` (``fetch_balance``, ``accountType=UNIFIED``);
- ``GET /v5/position/list`` (``fetch_positions``, ``category=linear&settleCoin=USDT``);
- ``GET /v5/order/realtime`` (``fetch_open_orders``; ``orderFilter=StopOrder`` lists the
  conditional orders, without it the plain ones, as a classic account answers; ``limit``
  default 20, at most 50, ``cursor`` / ``nextPageCursor`` pagination).

The private websocket is ``/v5/private``: ``{"op": "auth", "args": [key, expires, signature]}``
(signature: hex HMAC-SHA256 of ``GET/realtime`` + expires) acked ``{"success": true, "op":
"auth", ...}``; ``subscribe`` acked like the public one (refused before auth); ``{"op": "ping"}``
answered ``{"op": "pong", "args": [ms], ...}``. Topics ``position``, ``wallet``, ``order`` with
Bybit's field names (v5 "Position", "Wallet", "Order" websocket pages).

Every request is recorded in ``log``; ``writes()`` lists anything but a GET (Bybit has no
listen key: a read-only mirror sends no other method at all). The exchange's liquidation price
follows docs/rules.md §5.4: cross one-way as Binance's closed form with Bybit's risk limit
(``mmDeduction`` as cum), isolated frozen at entry; or a test's override.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from tests.standin.base import RestHandler, WsConn, now_ms, send_each, signature_ok
from tests.standin.bybit import RISK_LIMITS, StandinBybit
from tests.standin.private_account import PrivateSession, decimal_text, liquidation_price

__all__ = ["API_KEY", "SECRET", "StandinBybitPrivate"]

API_KEY = "standin-bybit-key-0123456789"
SECRET = "standin-bybit-secret-abcdefgh"
PRIVATE_WS_PATH = "/v5/private"

_IDX = {"BOTH": 0, "LONG": 1, "SHORT": 2}


_s = decimal_text


@dataclass
class Position:
    symbol: str  # exchange id, BTCUSDT
    side: str  # BOTH | LONG | SHORT (positionIdx 0 / 1 / 2)
    amount: Decimal  # signed
    entry: Decimal
    balance: Decimal = Decimal(0)  # positionBalance of an isolated position
    leverage: int = 10
    updated_ms: int = field(default_factory=now_ms)


@dataclass
class Order:
    id: str
    link_id: str
    symbol: str
    order_type: str  # Market | Limit
    stop_order_type: str  # "" | StopLoss | TakeProfit | TrailingStop | Stop | ...
    side: str  # Buy | Sell
    qty: Decimal
    trigger: Decimal = Decimal(0)
    price: Decimal = Decimal(0)
    position_idx: int = 0
    reduce_only: bool = False
    full: bool = False  # tpslMode Full: closes the whole position (qty "0")
    trigger_direction: int = 0
    create_type: str = "CreateByUser"
    created_ms: int = field(default_factory=now_ms)


def _risk(notional: Decimal) -> tuple[Decimal, Decimal]:
    """(maintenance margin rate, mmDeduction) of the risk limit holding ``notional``."""
    for cap, mmr, _imr, _lev, deduction in RISK_LIMITS:
        if notional <= Decimal(cap):
            return Decimal(mmr), Decimal(deduction or 0)
    _cap, mmr, _imr, _lev, deduction = RISK_LIMITS[-1]
    return Decimal(mmr), Decimal(deduction or 0)


class StandinBybitPrivate(PrivateSession, StandinBybit):
    """See the module docstring. Use as ``async with StandinBybitPrivate() as ex``."""

    #: Private topics a follower subscribes (position, wallet, order).
    private_channels = 3

    def __init__(
        self,
        symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"),
        *,
        api_key: str = API_KEY,
        secret: str = SECRET,
        wallet: Decimal | str = "10000",
        **kw: Any,
    ) -> None:
        super().__init__(symbols, **kw)
        self.init_session(api_key=api_key, secret=secret)
        self.cross_wallet = Decimal(wallet)
        self.margin_mode = "REGULAR_MARGIN"  # or ISOLATED_MARGIN (account-wide in a UTA)
        self.positions: dict[tuple[str, str], Position] = {}
        self.orders: dict[str, Order] = {}
        self.leverage: dict[str, int] = {q.market_id: 10 for q in self.quotes.values()}
        self.liquidation_override: dict[tuple[str, str], Decimal] = {}
        self.private_connects = 0
        self._private: dict[WsConn, set[str]] = {}
        self._authed: set[WsConn] = set()
        self._ids = itertools.count(1000)

    # ---- ccxt ---------------------------------------------------------------------------
    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        config = super().ccxt_config(**extra)
        for key in ("api", "test", "demotrading"):
            config["urls"][key]["ws"]["private"]["contract"] = f"{self.ws_root}{PRIVATE_WS_PATH}"
        return config

    # ---- account controls ----------------------------------------------------------------
    def market_id(self, symbol: str) -> str:
        return self.quote(symbol).market_id

    async def set_position(
        self,
        symbol: str,
        amount: Decimal | str,
        entry: Decimal | str,
        *,
        side: str = "BOTH",
        margin: str | None = None,
        isolated_wallet: Decimal | str = "0",
        leverage: int | None = None,
        push: bool = True,
        reason: str = "ORDER",
    ) -> Position:
        """Open or replace a position (0 closes it); pushes the ``position`` topic.
        ``margin="isolated"`` switches the whole account to ISOLATED_MARGIN (a UTA has one
        margin mode for all its derivatives)."""
        sym = self.market_id(symbol)
        if margin is not None:
            self.margin_mode = "ISOLATED_MARGIN" if margin == "isolated" else "REGULAR_MARGIN"
        if leverage is not None:
            self.leverage[sym] = leverage
        pos = Position(
            sym,
            side,
            Decimal(amount),
            Decimal(entry) if Decimal(amount) else Decimal(0),
            Decimal(isolated_wallet) if self.isolated else Decimal(0),
            self.leverage[sym],
        )
        if pos.amount:
            self.positions[(sym, side)] = pos
        else:
            self.positions.pop((sym, side), None)
            self.liquidation_override.pop((sym, side), None)
        if push:
            await self.push_position(pos)
        return pos

    async def close_position(self, symbol: str, *, side: str = "BOTH", how: str = "MARKET") -> None:
        """Close a position the way ``how`` says (Binance stand-in vocabulary) and push what
        Bybit pushes: the closing order (Filled, with its ``createType``), then the position."""
        sym = self.market_id(symbol)
        pos = self.positions[(sym, side)]
        create_type, stop_type = {
            "LIQUIDATION": ("CreateByLiq", ""),
            "ADL": ("CreateByAdl_PassThrough", ""),
            "STOP_MARKET": ("CreateByStopLoss", "StopLoss"),
            "TAKE_PROFIT_MARKET": ("CreateByTakeProfit", "TakeProfit"),
        }.get(how, ("CreateByUser", ""))
        order = Order(
            f"standin-{next(self._ids)}",
            "",
            sym,
            "Market",
            stop_type,
            "Sell" if pos.amount > 0 else "Buy",
            abs(pos.amount),
            position_idx=_IDX[side],
            reduce_only=True,
            create_type=create_type,
        )
        await self.push_order(order, status="Filled", fill_price=Decimal(self.quote(sym).mark))
        await self.set_position(symbol, 0, 0, side=side)

    async def add_order(
        self,
        symbol: str,
        type_: str,
        side: str,
        quantity: Decimal | str,
        *,
        trigger: Decimal | str = "0",
        price: Decimal | str = "0",
        position_side: str = "BOTH",
        reduce_only: bool = False,
        close_position: bool = False,
        push: bool = True,
    ) -> Order:
        """An open order in Binance stand-in terms: ``STOP_MARKET`` is a ``StopLoss`` (a
        ``tpslMode=Full`` position stop when ``close_position``), ``TAKE_PROFIT_MARKET`` a
        ``TakeProfit``, ``LIMIT`` a plain order."""
        stop_type = {"STOP_MARKET": "StopLoss", "TAKE_PROFIT_MARKET": "TakeProfit"}.get(type_, "")
        if type_ == "TRAILING_STOP_MARKET":
            stop_type = "TrailingStop"
        side_ = side.capitalize()
        order = Order(
            f"standin-{next(self._ids)}",
            f"link-{next(self._ids)}",
            self.market_id(symbol),
            "Limit" if type_ == "LIMIT" else "Market",
            stop_type,
            side_,
            Decimal(0) if close_position else Decimal(quantity),
            Decimal(trigger),
            Decimal(price),
            _IDX[position_side],
            reduce_only or bool(stop_type),
            close_position,
            # a sell stop triggers on a fall (2), a sell take-profit on a rise (1)
            trigger_direction=(2 if side_ == "Sell" else 1)
            if stop_type == "StopLoss"
            else (1 if side_ == "Sell" else 2)
            if stop_type
            else 0,
        )
        self.orders[order.id] = order
        if push:
            await self.push_order(order, status="Untriggered" if stop_type else "New")
        return order

    async def cancel_order(self, order_id: str, *, push: bool = True) -> None:
        """Cancel an open order; an untriggered conditional one ends ``Deactivated``."""
        order = self.orders.pop(order_id)
        if push:
            await self.push_order(
                order, status="Deactivated" if order.stop_order_type else "Cancelled"
            )

    async def drop_private_sockets(self) -> int:
        self._authed.clear()
        return await super().drop_private_sockets()

    async def drop_websockets(self) -> int:
        return await super().drop_websockets() + await self.drop_private_sockets()

    # ---- computed figures ----------------------------------------------------------------
    @property
    def isolated(self) -> bool:
        return self.margin_mode == "ISOLATED_MARGIN"

    def _mark(self, sym: str) -> Decimal:
        return Decimal(self.quote(sym).mark)

    def _upnl(self, pos: Position) -> Decimal:
        return pos.amount * (self._mark(pos.symbol) - pos.entry)

    def _mm(self, pos: Position) -> Decimal:
        notional = abs(pos.amount) * self._mark(pos.symbol)
        mmr, deduction = _risk(notional)
        return notional * mmr - deduction

    def liquidation_price(self, symbol: str, side: str = "BOTH") -> Decimal | None:
        """The ``liqPrice`` the stand-in reports (override, or docs/rules.md §5.4)."""
        sym = self.market_id(symbol)
        key = (sym, side)
        if key in self.liquidation_override:
            return self.liquidation_override[key]
        pos = self.positions[key]
        if self.isolated:
            # frozen at entry: P = EP -/+ (positionBalance - MM(entry)) / Q
            q = abs(pos.amount)
            mmr, deduction = _risk(q * pos.entry)
            room = (pos.balance - (q * pos.entry * mmr - deduction)) / q
            price = pos.entry - room if pos.amount > 0 else pos.entry + room
            return price.quantize(Decimal("0.01")) if price > 0 else None
        mmr, deduction = _risk(abs(pos.amount) * self._mark(sym))
        others = [p for k, p in self.positions.items() if k != key]
        return liquidation_price(
            self.cross_wallet,
            pos.amount,
            pos.entry,
            mmr,
            deduction,
            other_mm=sum((self._mm(p) for p in others), Decimal(0)),
            other_upnl=sum((self._upnl(p) for p in others), Decimal(0)),
        )

    # ---- payloads ------------------------------------------------------------------------
    def _position_entry(self, pos: Position) -> dict[str, Any]:
        mark = self._mark(pos.symbol)
        q = abs(pos.amount)
        liq = self.liquidation_price(pos.symbol, pos.side) if pos.amount else None
        im = q * pos.entry / Decimal(pos.leverage)
        if pos.amount > 0:
            side = "Buy"
        elif pos.amount < 0:
            side = "Sell"
        else:
            side = ""
        return {
            "positionIdx": _IDX[pos.side],
            "riskId": 1,
            "riskLimitValue": RISK_LIMITS[0][0],
            "symbol": pos.symbol,
            "side": side,
            "size": _s(q),
            "avgPrice": _s(pos.entry),
            "entryPrice": _s(pos.entry),
            "positionValue": _s(q * pos.entry),
            "tradeMode": 1 if self.isolated else 0,
            "positionStatus": "Normal",
            "autoAddMargin": 0,
            "adlRankIndicator": 2 if pos.amount else 0,
            "leverage": str(pos.leverage),
            "positionBalance": _s(pos.balance if self.isolated else im),
            "markPrice": _s(mark),
            "liqPrice": _s(liq) if liq is not None else "",
            "bustPrice": "",
            "positionMM": _s(self._mm(pos)) if pos.amount else "0",
            "positionIM": _s(im),
            "tpslMode": "Full",
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
            "unrealisedPnl": _s(self._upnl(pos)),
            "curRealisedPnl": "0",
            "cumRealisedPnl": "0",
            "seq": next(self._ids),
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
            "sessionAvgPrice": "",
            "createdTime": str(pos.updated_ms),
            "updatedTime": str(now_ms()),
        }

    def _coin(self) -> dict[str, Any]:
        upnl = sum((self._upnl(p) for p in self.positions.values()), Decimal(0))
        im = sum(
            (abs(p.amount) * p.entry / Decimal(p.leverage) for p in self.positions.values()),
            Decimal(0),
        )
        mm = sum((self._mm(p) for p in self.positions.values()), Decimal(0))
        return {
            "coin": "USDT",
            "equity": _s(self.cross_wallet + upnl),
            "usdValue": _s(self.cross_wallet + upnl),
            "walletBalance": _s(self.cross_wallet),
            "free": "",
            "locked": "0",
            "spotHedgingQty": "0",
            "borrowAmount": "0",
            "availableToWithdraw": "",
            "accruedInterest": "0",
            "totalOrderIM": "0",
            "totalPositionIM": _s(im),
            "totalPositionMM": _s(mm),
            "unrealisedPnl": _s(upnl),
            "cumRealisedPnl": "0",
            "bonus": "0",
            "marginCollateral": True,
            "collateralSwitch": True,
        }

    def _wallet_entry(self) -> dict[str, Any]:
        coin = self._coin()
        return {
            "accountType": "UNIFIED",
            "accountIMRate": "0",
            "accountMMRate": "0",
            "totalEquity": coin["equity"],
            "totalWalletBalance": coin["walletBalance"],
            "totalMarginBalance": coin["equity"],
            "totalAvailableBalance": coin["equity"],
            "totalPerpUPL": coin["unrealisedPnl"],
            "totalInitialMargin": coin["totalPositionIM"],
            "totalMaintenanceMargin": coin["totalPositionMM"],
            "accountLTV": "0",
            "coin": [coin],
        }

    @staticmethod
    def _order_entry(
        order: Order, status: str, fill_price: Decimal | None = None
    ) -> dict[str, Any]:
        filled = order.qty if status == "Filled" else Decimal(0)
        return {
            "category": "linear",
            "symbol": order.symbol,
            "orderId": order.id,
            "orderLinkId": order.link_id,
            "blockTradeId": "",
            "side": order.side,
            "positionIdx": order.position_idx,
            "orderStatus": status,
            "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": _s(fill_price) if fill_price is not None else "",
            "leavesQty": _s(order.qty - filled),
            "leavesValue": "0",
            "cumExecQty": _s(filled),
            "cumExecValue": _s(filled * (fill_price or Decimal(0))),
            "cumExecFee": "0",
            "timeInForce": "GTC" if order.order_type == "Limit" else "IOC",
            "orderType": order.order_type,
            "stopOrderType": order.stop_order_type,
            "orderIv": "",
            "triggerPrice": _s(order.trigger) if order.trigger else "",
            "takeProfit": "",
            "stopLoss": "",
            "triggerBy": "MarkPrice" if order.stop_order_type else "",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": order.trigger_direction,
            "placeType": "",
            "lastPriceOnCreated": "",
            "closeOnTrigger": order.full,
            "reduceOnly": order.reduce_only,
            "smpGroup": 0,
            "smpType": "None",
            "smpOrderId": "",
            "slLimitPrice": "0",
            "tpLimitPrice": "0",
            "tpslMode": "Full" if order.full else ("Partial" if order.stop_order_type else ""),
            "createType": order.create_type,
            "marketUnit": "",
            "price": _s(order.price),
            "qty": _s(order.qty),
            "createdTime": str(order.created_ms),
            "updatedTime": str(now_ms()),
        }

    async def push_other_category(self) -> int:
        """What the unified account's topics also carry: an inverse position (``BTCUSD``) and a
        spot TP/SL order, neither of which REST is asked about; frames sent."""
        inverse = {
            "category": "inverse", "symbol": "BTCUSD", "side": "Buy", "size": "100",
            "positionIdx": 0, "avgPrice": "60000", "entryPrice": "60000", "leverage": "10",
            "positionValue": "0.00166667", "positionBalance": "0.00016667", "tradeMode": 0,
            "markPrice": "60000", "liqPrice": "55000", "positionIM": "0.00016667",
            "positionMM": "0.00000834", "unrealisedPnl": "0", "positionStatus": "Normal",
            "createdTime": str(now_ms()), "updatedTime": str(now_ms()),
        }  # fmt: skip
        spot = {
            **self._order_entry(
                Order("spot-1", "", "BTCUSDT", "Limit", "tpslOrder", "Sell", Decimal("0.1"),
                      Decimal(55000)),
                "Untriggered",
            ),
            "category": "spot",
        }  # fmt: skip
        return await self._push("position", [inverse]) + await self._push("order", [spot])

    # ---- private pushes ------------------------------------------------------------------
    async def push_position(self, pos: Position) -> int:
        return await self._push("position", [self._position_entry(pos)])

    async def push_balance(self) -> int:
        return await self._push("wallet", [self._wallet_entry()])

    async def push_order(
        self, order: Order, *, status: str, fill_price: Decimal | None = None
    ) -> int:
        return await self._push("order", [self._order_entry(order, status, fill_price)])

    async def _push(self, topic: str, data: list[dict[str, Any]]) -> int:
        frame = {
            "id": f"standin-{next(self._ids)}",
            "topic": topic,
            "creationTime": now_ms(),
            "data": data,
        }
        subscribed = dict(self._private)  # connection -> its topics, as the push starts
        sent = await send_each(subscribed, frame, lambda conn: topic in subscribed[conn])
        if sent:
            self.frames_sent[topic] += sent
        return sent

    # ---- request handling ----------------------------------------------------------------
    def _error(self, code: int, msg: str) -> web.Response:
        body = {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": now_ms()}
        return web.json_response(body)

    def _auth_error(self, request: web.Request) -> web.Response | None:
        headers = request.headers
        key = headers.get("X-BAPI-API-KEY")
        if key != self.api_key:
            self.auth_failures += 1
            return self._error(10003, "API key is invalid.")
        payload = (
            headers.get("X-BAPI-TIMESTAMP", "")
            + key
            + headers.get("X-BAPI-RECV-WINDOW", "")
            + request.query_string
        )
        if not signature_ok(headers.get("X-BAPI-SIGN", ""), self.secret, payload):
            self.auth_failures += 1
            return self._error(10004, "error sign! origin_string[...]")
        return None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.record(request, "X-BAPI-API-KEY" in request.headers)
        if self.refused:
            return await super()._dispatch(request)
        if path == PRIVATE_WS_PATH:
            self.requests[path] += 1
            return await self._private_websocket(request)
        route = self.private_routes.get((request.method, path))
        if route is None:
            return await super()._dispatch(request)
        self.requests[path] += 1
        error = self._auth_error(request)
        if error is not None:
            return error
        return web.json_response(self._envelope(route(self, request)))

    def _r_query_api(self, request: web.Request) -> Any:
        return {
            "id": "13770661",
            "note": "guardbot read-only",
            "apiKey": self.api_key,
            "readOnly": 1,
            "secret": "",
            "permissions": {
                "ContractTrade": [],
                "Spot": [],
                "Wallet": [],
                "Options": [],
                "Derivatives": [],
                "CopyTrading": [],
                "BlockTrade": [],
                "Exchange": [],
                "NFT": [],
                "Affiliate": [],
            },
            "ips": ["*"],
            "type": 1,
            "deadlineDay": 83,
            "expiredAt": "",
            "createdAt": "2026-01-01T00:00:00Z",
            "unified": 0,
            "uta": 1,
            "userID": 24600000,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
            "rsaPublicKey": "",
            "isMaster": True,
            "parentUid": "0",
            "kycLevel": "LEVEL_DEFAULT",
            "kycRegion": "",
        }

    def _r_account_info(self, request: web.Request) -> Any:
        return {
            "marginMode": self.margin_mode,
            "updatedTime": str(now_ms()),
            "unifiedMarginStatus": 5,
            "dcpStatus": "OFF",
            "timeWindow": 10,
            "smpGroup": 0,
            "isMasterTrader": False,
            "spotHedgingStatus": "OFF",
        }

    def _r_wallet_balance(self, request: web.Request) -> Any:
        return {"list": [self._wallet_entry()]}

    def _r_position_list(self, request: web.Request) -> Any:
        wanted = request.query.get("symbol")
        return {
            "category": "linear",
            "nextPageCursor": "",
            "list": [
                self._position_entry(p)
                for p in self.positions.values()
                if wanted is None or p.symbol == wanted
            ],
        }

    def _r_open_orders(self, request: web.Request) -> Any:
        """Pages of ``limit`` orders (default 20, at most 50); ``nextPageCursor`` names the next
        page while there is one (an opaque string to the client: here an offset)."""
        conditional = request.query.get("orderFilter") == "StopOrder"
        orders = [o for o in self.orders.values() if bool(o.stop_order_type) == conditional]
        limit = min(int(request.query.get("limit", "20")), 50)
        start = int(request.query.get("cursor", "0").removeprefix("page:"))
        page = orders[start : start + limit]
        more = start + limit < len(orders)
        return {
            "category": "linear",
            "nextPageCursor": f"page:{start + limit}" if more else "",
            "list": [
                self._order_entry(o, "Untriggered" if o.stop_order_type else "New") for o in page
            ],
        }

    def _coins(self) -> list[str]:
        return ["USDT", *(q.market_id.removesuffix("USDT") for q in self.quotes.values())]

    def _r_coin_info(self, request: web.Request) -> Any:
        chain = {
            "chainType": "",
            "confirmation": "12",
            "withdrawFee": "1",
            "depositMin": "0",
            "withdrawMin": "2",
            "minAccuracy": "8",
            "chainDeposit": "1",
            "chainWithdraw": "1",
            "withdrawPercentageFee": "0",
            "contractAddress": "",
        }
        return {
            "rows": [
                {
                    "name": coin,
                    "coin": coin,
                    "remainAmount": "1000000",
                    "chains": [{**chain, "chain": coin, "chainType": coin}],
                }
                for coin in (
                    "USDT",
                    *(q.market_id.removesuffix("USDT") for q in self.quotes.values()),
                )
            ]
        }

    private_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        ("GET", "/v5/asset/coin/query-info"): _r_coin_info,
        ("GET", "/v5/user/query-api"): _r_query_api,
        ("GET", "/v5/account/info"): _r_account_info,
        ("GET", "/v5/account/wallet-balance"): _r_wallet_balance,
        ("GET", "/v5/position/list"): _r_position_list,
        ("GET", "/v5/order/realtime"): _r_open_orders,
    }

    async def _private_websocket(self, request: web.Request) -> web.StreamResponse:
        if not self.serve_private_ws or request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = WsConn(ws=ws, request=request, path=request.path)
        self._private[conn] = set()
        self.private_connects += 1
        await self._notify()
        conn_id = f"standin-private-{self.private_connects}"
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                message = json.loads(msg.data)
                self.ws_messages.append(message)
                await self._on_private(conn, conn_id, message)
        finally:
            self._private.pop(conn, None)
            self._authed.discard(conn)
            await self._notify()
        return ws

    async def _on_private(self, conn: WsConn, conn_id: str, message: Any) -> None:
        op, req_id = message.get("op"), message.get("req_id")
        if op == "ping":
            self.pings += 1
            await conn.send(
                {"req_id": req_id, "op": "pong", "args": [str(now_ms())], "conn_id": conn_id}
            )
        elif op == "auth":
            key, expires, signature = [*(message.get("args") or []), "", "", ""][:3]
            ok = key == self.api_key and signature_ok(
                signature, self.secret, f"GET/realtime{expires}"
            )
            if ok:
                self._authed.add(conn)
            else:
                self.auth_failures += 1
            await conn.send(
                {
                    "success": ok,
                    "ret_msg": "" if ok else "Request not authorized",
                    "op": "auth",
                    "conn_id": conn_id,
                }
            )
        elif op == "subscribe":
            args = [a for a in message.get("args") or [] if isinstance(a, str)]
            ok = conn in self._authed and all(a in ("position", "wallet", "order") for a in args)
            await conn.send(
                {
                    "success": ok,
                    "ret_msg": "" if ok else "Request not authorized",
                    "conn_id": conn_id,
                    "req_id": req_id,
                    "op": "subscribe",
                }
            )
            if ok:
                self._private.setdefault(conn, set()).update(args)
                await self.subscribed(conn, [f"private:{a}" for a in args])
