"""The Binance USDⓈ-M stand-in with an account behind it: signed private endpoints and the
user data stream, as the real ``ccxt.pro.binanceusdm`` calls them (ccxt 4.5.90).

``StandinBinancePrivate`` extends :class:`~tests.standin.binance.StandinBinance` (public REST and
market streams unchanged) with one futures account whose state a test sets:

Served private REST (signed with HMAC-SHA256 and checked against ``api_key`` / ``secret``; a wrong
key answers 401 ``-2015``, a wrong signature 400 ``-1022``, as Binance does):

- ``GET /fapi/v3/positionRisk`` (``fetch_positions``), ``GET /fapi/v3/account`` (``fetch_balance``),
  ``GET /fapi/v1/openOrders`` and ``GET /fapi/v1/openAlgoOrders`` (``fetch_open_orders``, plain and
  ``trigger=True``), ``GET /fapi/v1/symbolConfig`` (``fetch_leverages`` / ``fetch_margin_modes``),
  ``GET /fapi/v1/positionSide/dual`` (``fetch_position_mode``); ``/fapi/v1/leverageBracket`` as the
  public stand-in serves it.
- ``POST /fapi/v1/listenKey`` (create) and ``PUT /fapi/v1/listenKey`` (keep-alive): API key only,
  no signature, like Binance's USER_STREAM endpoints.

The user data stream is ``/private/ws?listenKey=<key>`` (where ccxt's ``get_private_ws_url`` puts
it): ``ACCOUNT_UPDATE``, ``ORDER_TRADE_UPDATE`` and ``ALGO_UPDATE`` frames in Binance's shapes.
:meth:`StandinBinancePrivate.expire_listen_key` ends a key the way Binance does ("Event: User
Data Stream Expired"): a ``listenKeyExpired`` frame, then nothing more on the sockets opened with
that key (they stay open), a keep-alive or a connection with it refused (``-1125``).

Every request is recorded in ``log`` (method, path, whether an API key came with it); ``writes()``
lists the ones that would change the account: anything but a GET, except the listen key. The
exchange's own liquidation price follows Binance's published formula (support FAQ 360033525271,
the one-position form; see :func:`binance_liquidation_price`), or a test's override.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from tests.standin.base import now_ms, send_each, signature_ok
from tests.standin.binance import LEVERAGE_BRACKETS, UNIFIED_TO_ID, StandinBinance, _WsConn
from tests.standin.private_account import PrivateSession, decimal_text, liquidation_price

API_KEY = "standin-api-key-0123456789"
SECRET = "standin-secret-abcdefghijkl"
LISTEN_KEY_PATH = "/fapi/v1/listenKey"
PRIVATE_WS_PATH = "/private/ws"


_s = decimal_text


@dataclass
class StandinPosition:
    """One position of the account. ``amount`` is signed in one-way mode (``side == 'BOTH'``);
    in hedge mode ``side`` is ``LONG`` (amount > 0) or ``SHORT`` (amount < 0)."""

    symbol: str  # exchange id, BTCUSDT
    side: str  # BOTH | LONG | SHORT
    amount: Decimal
    entry: Decimal
    isolated_wallet: Decimal = Decimal(0)  # > 0 only for isolated positions
    realized: Decimal = Decimal(0)
    updated_ms: int = field(default_factory=now_ms)


@dataclass
class StandinOrder:
    """An open order; ``algo`` orders (stops, take-profits) are listed by ``openAlgoOrders``."""

    id: int
    client_id: str
    symbol: str
    type: str  # LIMIT | STOP_MARKET | TAKE_PROFIT_MARKET | TRAILING_STOP_MARKET | ...
    side: str  # BUY | SELL
    quantity: Decimal
    price: Decimal = Decimal(0)
    trigger: Decimal = Decimal(0)
    position_side: str = "BOTH"
    reduce_only: bool = False
    close_position: bool = False
    algo: bool = False
    created_ms: int = field(default_factory=now_ms)


def _bracket(notional: Decimal) -> tuple[Decimal, Decimal]:
    """(maintenance margin rate, cum) of the stand-in's bracket for ``notional``."""
    mmr, cum = Decimal(str(LEVERAGE_BRACKETS[0][2])), Decimal(0)
    for floor, _cap, rate, _lev, c in LEVERAGE_BRACKETS:
        if notional > floor:
            mmr, cum = Decimal(str(rate)), Decimal(str(c))
    return mmr, cum


#: Binance's USDⓈ-M liquidation price of one one-way position (support FAQ 360033525271):
#: ``(WB - TMM1 + UPNL1 + cum - amount*entry) / (|amount|*mmr - amount)`` (WB: cross wallet, or
#: the isolated wallet with TMM1 = UPNL1 = 0); the closed form every venue stand-in shares.
binance_liquidation_price = liquidation_price


class StandinBinancePrivate(PrivateSession, StandinBinance):
    """See the module docstring. Use as ``async with StandinBinancePrivate() as ex``."""

    #: the listen key's create and keep-alive change nothing on the account
    not_writes = (LISTEN_KEY_PATH,)

    def __init__(
        self,
        symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"),
        *,
        api_key: str = API_KEY,
        secret: str = SECRET,
        wallet: Decimal | str = "10000",
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(symbols, host=host)
        self.init_session(api_key=api_key, secret=secret)
        self.cross_wallet = Decimal(wallet)
        self.dual_side = False
        self.positions: dict[tuple[str, str], StandinPosition] = {}
        self.orders: dict[int, StandinOrder] = {}
        self.leverage: dict[str, int] = {sym: 20 for sym in self.state}
        self.margin_type: dict[str, str] = {sym: "cross" for sym in self.state}
        self.liquidation_override: dict[tuple[str, str], Decimal] = {}
        # what happened besides the session's log: listen keys, private sockets
        self.listen_keys: list[str] = []
        self.expired_keys: set[str] = set()
        self.keepalives = 0
        self.private_connects = 0
        self._private: set[_WsConn] = set()
        self._ids = itertools.count(1000)

    # ---- account controls (each pushes what Binance would push) -------------------------
    async def push_balance(self) -> int:
        return await self.push_account_update([], reason="DEPOSIT")

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
    ) -> StandinPosition:
        """Open or replace a position (0 closes it); pushes an ``ACCOUNT_UPDATE``."""
        sym = self.market_id(symbol)
        if margin is not None:
            self.margin_type[sym] = margin
        if leverage is not None:
            self.leverage[sym] = leverage
        if side != "BOTH":
            self.dual_side = True
        pos = StandinPosition(
            sym,
            side,
            Decimal(amount),
            Decimal(entry) if Decimal(amount) else Decimal(0),
            Decimal(isolated_wallet) if self.margin_type[sym] == "isolated" else Decimal(0),
        )
        if pos.amount:
            self.positions[(sym, side)] = pos
        else:
            self.positions.pop((sym, side), None)
            self.liquidation_override.pop((sym, side), None)
        if push:
            await self.push_account_update([pos], reason=reason)
        return pos

    async def close_position(self, symbol: str, *, side: str = "BOTH", how: str = "MARKET") -> None:
        """Close a position the way ``how`` says and push what Binance pushes: the order's
        ``ORDER_TRADE_UPDATE`` (FILLED), then the ``ACCOUNT_UPDATE`` with amount 0.

        ``how``: ``MARKET`` (a manual close), ``STOP_MARKET``, ``TAKE_PROFIT_MARKET`` (a triggered
        stop / take-profit), ``LIQUIDATION`` (client id ``autoclose-...``), ``ADL``."""
        sym = self.market_id(symbol)
        pos = self.positions[(sym, side)]
        client_id = {
            "LIQUIDATION": f"autoclose-{next(self._ids)}",
            "ADL": "adl_autoclose",
        }.get(how, f"standin-{next(self._ids)}")
        order_type = {"LIQUIDATION": "LIQUIDATION", "ADL": "MARKET"}.get(how, how)
        order = StandinOrder(
            next(self._ids),
            client_id,
            sym,
            order_type,
            "SELL" if pos.amount > 0 else "BUY",
            abs(pos.amount),
            position_side=side,
            reduce_only=True,
        )
        await self.push_order_update(
            order, status="FILLED", fill_price=Decimal(self.state[sym].mark)
        )
        await self.set_position(symbol, 0, 0, side=side, reason="ORDER")

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
    ) -> StandinOrder:
        """An open order; stop and take-profit types are algo orders (``ALGO_UPDATE``)."""
        algo = type_ not in ("LIMIT", "MARKET")
        order = StandinOrder(
            next(self._ids),
            f"standin-{next(self._ids)}",
            self.market_id(symbol),
            type_,
            side,
            Decimal(quantity),
            Decimal(price),
            Decimal(trigger),
            position_side,
            reduce_only,
            close_position,
            algo,
        )
        self.orders[order.id] = order
        if push:
            await self.push_order_update(order, status="NEW")
        return order

    async def cancel_order(self, order_id: int, *, push: bool = True) -> None:
        order = self.orders.pop(order_id)
        if push:
            await self.push_order_update(order, status="CANCELED")

    async def expire_listen_key(self) -> int:
        """Expire the newest listen key: push ``listenKeyExpired`` on its sockets, which then
        hear nothing more; frames sent."""
        key = self.listen_keys[-1]
        self.expired_keys.add(key)
        frame = {"e": "listenKeyExpired", "E": now_ms(), "listenKey": key}
        sent = 0
        for conn in list(self._private):
            if conn.request.query.get("listenKey") == key and not conn.ws.closed:
                await conn.ws.send_str(json.dumps(frame))
                sent += 1
        return sent

    async def drop_websockets(self) -> int:
        return await super().drop_websockets() + await self.drop_private_sockets()

    # ---- computed account figures --------------------------------------------------------
    def _mark(self, sym: str) -> Decimal:
        return Decimal(self.state[sym].mark)

    def _upnl(self, pos: StandinPosition) -> Decimal:
        return pos.amount * (self._mark(pos.symbol) - pos.entry)

    def _mm(self, pos: StandinPosition) -> Decimal:
        notional = abs(pos.amount) * self._mark(pos.symbol)
        mmr, cum = _bracket(notional)
        return notional * mmr - cum

    def liquidation_price(self, symbol: str, side: str = "BOTH") -> Decimal | None:
        """The liquidation price the stand-in reports for a position (override or formula)."""
        sym = self.market_id(symbol)
        key = (sym, side)
        if key in self.liquidation_override:
            return self.liquidation_override[key]
        pos = self.positions[key]
        mmr, cum = _bracket(abs(pos.amount) * self._mark(sym))
        if pos.isolated_wallet:
            return binance_liquidation_price(pos.isolated_wallet, pos.amount, pos.entry, mmr, cum)
        others = [p for k, p in self.positions.items() if k != key and not p.isolated_wallet]
        return binance_liquidation_price(
            self.cross_wallet,
            pos.amount,
            pos.entry,
            mmr,
            cum,
            other_mm=sum((self._mm(p) for p in others), Decimal(0)),
            other_upnl=sum((self._upnl(p) for p in others), Decimal(0)),
        )

    def wallet_balance(self) -> Decimal:
        """Binance's ``walletBalance``: the cross wallet plus the isolated wallets."""
        return self.cross_wallet + sum(
            (p.isolated_wallet for p in self.positions.values()), Decimal(0)
        )

    # ---- REST shapes ---------------------------------------------------------------------
    def _position_risk_entry(self, pos: StandinPosition) -> dict[str, Any]:
        mark = self._mark(pos.symbol)
        upnl = self._upnl(pos)
        notional = pos.amount * mark
        leverage = Decimal(self.leverage[pos.symbol])
        isolated_margin = pos.isolated_wallet + upnl if pos.isolated_wallet else Decimal(0)
        liq = self.liquidation_price(pos.symbol, pos.side)
        return {
            "symbol": pos.symbol,
            "positionSide": pos.side,
            "positionAmt": _s(pos.amount),
            "entryPrice": _s(pos.entry),
            "breakEvenPrice": _s(pos.entry),
            "markPrice": _s(mark),
            "unRealizedProfit": _s(upnl),
            "liquidationPrice": _s(liq) if liq is not None else "0",
            "isolatedMargin": _s(isolated_margin),
            "notional": _s(notional),
            "marginAsset": "USDT",
            "isolatedWallet": _s(pos.isolated_wallet),
            "initialMargin": _s(abs(notional) / leverage),
            "maintMargin": _s(self._mm(pos)),
            "positionInitialMargin": _s(abs(notional) / leverage),
            "openOrderInitialMargin": "0",
            "adl": 1,
            "bidNotional": "0",
            "askNotional": "0",
            "updateTime": pos.updated_ms,
        }

    def _account(self) -> dict[str, Any]:
        upnl = sum((self._upnl(p) for p in self.positions.values()), Decimal(0))
        cross_upnl = sum(
            (self._upnl(p) for p in self.positions.values() if not p.isolated_wallet), Decimal(0)
        )
        mm = sum((self._mm(p) for p in self.positions.values()), Decimal(0))
        im = sum(
            (
                abs(p.amount) * self._mark(p.symbol) / self.leverage[p.symbol]
                for p in self.positions.values()
            ),
            Decimal(0),
        )
        wallet = self.wallet_balance()
        available = max(self.cross_wallet + cross_upnl - im, Decimal(0))
        asset = {
            "asset": "USDT",
            "walletBalance": _s(wallet),
            "unrealizedProfit": _s(upnl),
            "marginBalance": _s(wallet + upnl),
            "maintMargin": _s(mm),
            "initialMargin": _s(im),
            "positionInitialMargin": _s(im),
            "openOrderInitialMargin": "0",
            "crossWalletBalance": _s(self.cross_wallet),
            "crossUnPnl": _s(cross_upnl),
            "availableBalance": _s(available),
            "maxWithdrawAmount": _s(available),
            "updateTime": now_ms(),
        }
        return {
            "totalInitialMargin": _s(im),
            "totalMaintMargin": _s(mm),
            "totalWalletBalance": _s(wallet),
            "totalUnrealizedProfit": _s(upnl),
            "totalMarginBalance": _s(wallet + upnl),
            "totalPositionInitialMargin": _s(im),
            "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": _s(self.cross_wallet),
            "totalCrossUnPnl": _s(cross_upnl),
            "availableBalance": _s(available),
            "maxWithdrawAmount": _s(available),
            "assets": [asset],
            "positions": [
                {
                    "symbol": p.symbol,
                    "positionSide": p.side,
                    "positionAmt": _s(p.amount),
                    "unrealizedProfit": _s(self._upnl(p)),
                    "isolatedMargin": _s(p.isolated_wallet + self._upnl(p))
                    if p.isolated_wallet
                    else "0",
                    "notional": _s(p.amount * self._mark(p.symbol)),
                    "isolatedWallet": _s(p.isolated_wallet),
                    "initialMargin": "0",
                    "maintMargin": _s(self._mm(p)),
                    "updateTime": p.updated_ms,
                }
                for p in self.positions.values()
            ],
        }

    @staticmethod
    def _order_entry(order: StandinOrder) -> dict[str, Any]:
        if order.algo:
            return {
                "algoId": order.id,
                "clientAlgoId": order.client_id,
                "algoType": "CONDITIONAL",
                "orderType": order.type,
                "symbol": order.symbol,
                "side": order.side,
                "positionSide": order.position_side,
                "timeInForce": "GTC",
                "quantity": _s(order.quantity),
                "algoStatus": "NEW",
                "triggerPrice": _s(order.trigger),
                "price": _s(order.price),
                "icebergQuantity": None,
                "selfTradePreventionMode": "EXPIRE_MAKER",
                "workingType": "MARK_PRICE",
                "priceMatch": "NONE",
                "closePosition": order.close_position,
                "priceProtect": False,
                "reduceOnly": order.reduce_only,
                "createTime": order.created_ms,
                "updateTime": order.created_ms,
                "triggerTime": 0,
                "goodTillDate": 0,
            }
        return {
            "avgPrice": "0",
            "clientOrderId": order.client_id,
            "cumQuote": "0",
            "executedQty": "0",
            "orderId": order.id,
            "origQty": _s(order.quantity),
            "origType": order.type,
            "price": _s(order.price),
            "reduceOnly": order.reduce_only,
            "side": order.side,
            "positionSide": order.position_side,
            "status": "NEW",
            "stopPrice": "0",
            "closePosition": False,
            "symbol": order.symbol,
            "time": order.created_ms,
            "timeInForce": "GTC",
            "type": order.type,
            "activatePrice": "0",
            "priceRate": "0",
            "updateTime": order.created_ms,
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
        }

    # ---- user data stream frames ---------------------------------------------------------
    async def push_account_update(
        self, positions: Iterable[StandinPosition], *, reason: str = "ORDER"
    ) -> int:
        now = now_ms()
        frame = {
            "e": "ACCOUNT_UPDATE",
            "E": now,
            "T": now,
            "a": {
                "m": reason,
                "B": [
                    {
                        "a": "USDT",
                        "wb": _s(self.wallet_balance()),
                        "cw": _s(self.cross_wallet),
                        "bc": "0",
                    }
                ],
                "P": [
                    {
                        "s": p.symbol,
                        "pa": _s(p.amount),
                        "ep": _s(p.entry),
                        "bep": _s(p.entry),
                        "cr": _s(p.realized),
                        "up": _s(self._upnl(p)),
                        "mt": self.margin_type[p.symbol],
                        "iw": _s(p.isolated_wallet),
                        "ps": p.side,
                        "ma": "USDT",
                    }
                    for p in positions
                ],
            },
        }
        return await self.push_private(frame)

    async def push_order_update(
        self, order: StandinOrder, *, status: str, fill_price: Decimal | None = None
    ) -> int:
        now = now_ms()
        if order.algo:
            frame: dict[str, Any] = {
                "e": "ALGO_UPDATE",
                "T": now,
                "E": now,
                "o": {
                    "caid": order.client_id,
                    "aid": order.id,
                    "at": "CONDITIONAL",
                    "o": order.type,
                    "s": order.symbol,
                    "S": order.side,
                    "ps": order.position_side,
                    "f": "GTC",
                    "q": _s(order.quantity),
                    "X": status,
                    "ai": "",
                    "ap": "0",
                    "aq": "0",
                    "act": "0",
                    "tp": _s(order.trigger),
                    "p": _s(order.price),
                    "V": "EXPIRE_MAKER",
                    "wt": "MARK_PRICE",
                    "pm": "NONE",
                    "cp": order.close_position,
                    "pP": False,
                    "R": order.reduce_only,
                    "tt": 0,
                    "gtd": 0,
                },
            }
            return await self.push_private(frame)
        filled = order.quantity if status == "FILLED" else Decimal(0)
        price = fill_price if fill_price is not None else Decimal(0)
        frame = {
            "e": "ORDER_TRADE_UPDATE",
            "E": now,
            "T": now,
            "o": {
                "s": order.symbol,
                "c": order.client_id,
                "S": order.side,
                "o": order.type,
                "f": "GTC",
                "q": _s(order.quantity),
                "p": _s(order.price),
                "ap": _s(price),
                "sp": _s(order.trigger),
                "x": "TRADE" if status == "FILLED" else status,
                "X": status,
                "i": order.id,
                "l": _s(filled),
                "z": _s(filled),
                "L": _s(price),
                "n": "0",
                "N": "USDT",
                "T": now,
                "t": next(self._ids),
                "b": "0",
                "a": "0",
                "m": False,
                "R": order.reduce_only,
                "wt": "MARK_PRICE",
                "ot": order.type,
                "ps": order.position_side,
                "cp": order.close_position,
                "rp": "0",
                "pP": False,
                "si": 0,
                "ss": 0,
                "V": "NONE",
                "pm": "NONE",
                "gtd": 0,
            },
        }
        return await self.push_private(frame)

    async def push_private(self, frame: Mapping[str, Any]) -> int:
        sent = await send_each(
            self._private,
            frame,
            lambda conn: conn.request.query.get("listenKey") not in self.expired_keys,
        )
        if sent:
            self.frames_sent[str(frame.get("e"))] += sent
        return sent

    # ---- request handling ----------------------------------------------------------------
    def _auth_error(self, request: web.Request, *, signed: bool) -> web.Response | None:
        key = request.headers.get("X-MBX-APIKEY")
        if key is None:
            return web.json_response({"code": -2014, "msg": "API-key format invalid."}, status=401)
        if key != self.api_key:
            self.auth_failures += 1
            return web.json_response(
                {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
                status=401,
            )
        if signed:
            query = request.query_string
            body, sep, signature = query.rpartition("&signature=")
            if not sep or not signature_ok(signature, self.secret, body):
                self.auth_failures += 1
                return web.json_response(
                    {"code": -1022, "msg": "Signature for this request is not valid."}, status=400
                )
        return None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.record(request, "X-MBX-APIKEY" in request.headers)
        if self.refused:
            return await super()._dispatch(request)
        if path == PRIVATE_WS_PATH:
            self.requests[path] += 1
            return await self._private_websocket(request)
        route = self._private_routes.get((request.method, path))
        if route is None:
            if request.method not in ("GET", "HEAD"):
                self.requests[path] += 1
                return self._unknown(request)
            return await super()._dispatch(request)
        self.requests[path] += 1
        signed = path != LISTEN_KEY_PATH
        error = self._auth_error(request, signed=signed)
        if error is not None:
            return error
        return route(self, request)

    def _r_position_risk(self, request: web.Request) -> web.Response:
        wanted = request.query.get("symbol")
        return web.json_response(
            [
                self._position_risk_entry(p)
                for p in self.positions.values()
                if wanted is None or p.symbol == wanted
            ]
        )

    def _r_account(self, request: web.Request) -> web.Response:
        return web.json_response(self._account())

    def _r_open_orders(self, request: web.Request) -> web.Response:
        return web.json_response([self._order_entry(o) for o in self.orders.values() if not o.algo])

    def _r_open_algo_orders(self, request: web.Request) -> web.Response:
        return web.json_response([self._order_entry(o) for o in self.orders.values() if o.algo])

    def _r_symbol_config(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "symbol": sym,
                    "marginType": "ISOLATED" if self.margin_type[sym] == "isolated" else "CROSSED",
                    "isAutoAddMargin": "false",
                    "leverage": self.leverage[sym],
                    "maxNotionalValue": "1000000",
                }
                for sym in self.state
            ]
        )

    def _r_position_mode(self, request: web.Request) -> web.Response:
        return web.json_response({"dualSidePosition": self.dual_side})

    def _r_listen_key_create(self, request: web.Request) -> web.Response:
        key = f"standin-listen-key-{len(self.listen_keys) + 1:04d}"
        self.listen_keys.append(key)
        return web.json_response({"listenKey": key})

    def _r_listen_key_keepalive(self, request: web.Request) -> web.Response:
        if not self.listen_keys or self.listen_keys[-1] in self.expired_keys:
            return web.json_response(
                {"code": -1125, "msg": "This listenKey does not exist."}, status=400
            )
        self.keepalives += 1
        return web.json_response({"listenKey": self.listen_keys[-1] if self.listen_keys else ""})

    _private_routes: Mapping[
        tuple[str, str], Callable[[StandinBinancePrivate, web.Request], web.Response]
    ] = {
        ("GET", "/fapi/v3/positionRisk"): _r_position_risk,
        ("GET", "/fapi/v3/account"): _r_account,
        ("GET", "/fapi/v1/openOrders"): _r_open_orders,
        ("GET", "/fapi/v1/openAlgoOrders"): _r_open_algo_orders,
        ("GET", "/fapi/v1/symbolConfig"): _r_symbol_config,
        ("GET", "/fapi/v1/positionSide/dual"): _r_position_mode,
        ("POST", LISTEN_KEY_PATH): _r_listen_key_create,
        ("PUT", LISTEN_KEY_PATH): _r_listen_key_keepalive,
    }

    async def _private_websocket(self, request: web.Request) -> web.StreamResponse:
        key = request.query.get("listenKey")
        if (
            not self.serve_private_ws
            or key not in self.listen_keys
            or key in self.expired_keys
            or request.headers.get("Upgrade", "").lower() != "websocket"
        ):
            return web.json_response({"code": -1125, "msg": "Invalid listen key."}, status=400)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _WsConn(ws=ws, request=request, path=request.path)
        self._private.add(conn)
        self.private_connects += 1
        await self._notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.ws_messages.append(msg.data)
        finally:
            self._private.discard(conn)
            await self._notify()
        return ws


async def until(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``predicate`` every loop turn-ish (10 ms) until true; for state that has no event."""
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


def ccxt_credentials(api_key: str = API_KEY, secret: str = SECRET) -> dict[str, str]:
    return {"apiKey": api_key, "secret": secret}


__all__ = [
    "API_KEY",
    "SECRET",
    "UNIFIED_TO_ID",
    "StandinBinancePrivate",
    "StandinOrder",
    "StandinPosition",
    "binance_liquidation_price",
    "ccxt_credentials",
    "until",
]
