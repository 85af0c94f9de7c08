"""The OKX v5 stand-in with a trading account behind it: the signed private endpoints and the
private websocket, as the real ``ccxt.pro.okx`` calls them (ccxt 4.5.90), USDT swaps only.

``StandinOkxPrivate`` extends :class:`~tests.standin.okx.StandinOkx` (public REST and market
streams unchanged) with one account whose state a test sets. Its controls speak the vocabulary of
the Binance private stand-in (amounts in contracts, ``side`` ``BOTH`` / ``LONG`` / ``SHORT``,
``how`` ``MARKET`` / ``STOP_MARKET`` / ``TAKE_PROFIT_MARKET`` / ``LIQUIDATION`` / ``ADL``).

Served private REST, signed as v5 asks (headers ``OK-ACCESS-KEY``, ``OK-ACCESS-PASSPHRASE``,
``OK-ACCESS-TIMESTAMP``, ``OK-ACCESS-SIGN`` = base64 HMAC-SHA256 of timestamp + method + path
with query); a wrong key answers HTTP 401 ``50111``, a wrong passphrase ``50105``, a wrong
signature ``50113``, as OKX does:

- ``GET /api/v5/asset/currencies`` (``fetch_currencies``, part of ``load_markets`` with a key);
- ``GET /api/v5/account/balance`` (``fetch_balance``), ``GET /api/v5/account/positions``
  (``fetch_positions``), ``GET /api/v5/account/config`` (``fetch_position_mode``: ``posMode``);
- ``GET /api/v5/trade/orders-pending`` (plain open orders) and
  ``GET /api/v5/trade/orders-algo-pending`` (``ordType`` required: ``conditional``, ``oco``,
  ``trigger``, ``move_order_stop``).

The private websocket is ``/ws/v5/private``: ``{"op": "login", "args": [{apiKey, passphrase,
timestamp, sign}]}`` (sign: base64 HMAC-SHA256 of timestamp + ``GET/users/self/verify``) acked
``{"event": "login", "code": "0"}`` or refused ``{"event": "error", "code": "60009"}``;
``subscribe`` acked per argument (refused before login); text ``ping`` answered ``pong``.
Channels ``positions``, ``account``, ``orders`` with OKX's field names (v5 "Positions channel",
"Account channel", "Order channel"); the business socket ``/ws/v5/business`` logs in the same
way and serves ``orders-algo`` ("Algo orders channel": stops and take-profits as ``live``,
``canceled``, ``effective``).

Every request is recorded in ``log``; ``writes()`` lists anything but a GET (OKX has no listen
key). The exchange's liquidation price follows docs/rules.md §4.2 / §5.5 (tier by contracts,
the taker rate added to the requirement), or a test's override.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from tests.standin.base import (
    RestError,
    RestHandler,
    WsConn,
    abort_all,
    now_ms,
    send_each,
    signature_ok,
)
from tests.standin.okx import MARKETS, POSITION_TIERS, StandinOkx
from tests.standin.private_account import PrivateSession, decimal_text

__all__ = ["API_KEY", "PASSPHRASE", "SECRET", "StandinOkxPrivate"]

API_KEY = "standin-okx-key-0123456789"
SECRET = "standin-okx-secret-abcdefgh"
PASSPHRASE = "standin-okx-passphrase-42"
PRIVATE_WS_PATH = "/ws/v5/private"
BUSINESS_WS_PATH = "/ws/v5/business"  # algo orders (orders-algo), with a login of its own
TAKER = Decimal("0.0005")  # the liquidation fee in the requirement (docs/rules.md §4.2)

_POS_SIDE = {"BOTH": "net", "LONG": "long", "SHORT": "short"}


_s = decimal_text


@dataclass
class Position:
    symbol: str  # instId, BTC-USDT-SWAP
    side: str  # BOTH | LONG | SHORT
    amount: Decimal  # contracts, signed
    entry: Decimal
    margin: Decimal = Decimal(0)  # > 0 only for isolated positions
    leverage: int = 10
    isolated: bool = False
    created_ms: int = field(default_factory=now_ms)
    pos_id: str = ""


@dataclass
class Order:
    id: str
    symbol: str
    ord_type: str  # limit | market | conditional | oco | trigger | move_order_stop
    side: str  # buy | sell
    size: Decimal  # contracts ("" with closeFraction)
    pos_side: str = "net"
    px: Decimal = Decimal(0)
    sl_trigger: Decimal = Decimal(0)
    tp_trigger: Decimal = Decimal(0)
    trigger: Decimal = Decimal(0)
    reduce_only: bool = False
    close_fraction: bool = False
    category: str = "normal"
    algo_id: str = ""  # set on an order an algo order triggered
    created_ms: int = field(default_factory=now_ms)

    @property
    def algo(self) -> bool:
        return self.ord_type in ("conditional", "oco", "trigger", "move_order_stop")


def _tier(contracts: Decimal) -> Decimal:
    """The maintenance margin rate of the position tier holding ``contracts``."""
    for _min, max_sz, mmr, _imr, _lev in POSITION_TIERS:
        if contracts <= Decimal(max_sz):
            return Decimal(mmr)
    return Decimal(POSITION_TIERS[-1][2])


class StandinOkxPrivate(PrivateSession, StandinOkx):
    """See the module docstring. Use as ``async with StandinOkxPrivate() as ex``."""

    #: Private channels a follower subscribes (positions, account, orders, orders-algo).
    private_channels = 4

    def __init__(
        self,
        symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"),
        *,
        api_key: str = API_KEY,
        secret: str = SECRET,
        passphrase: str = PASSPHRASE,
        wallet: Decimal | str = "10000",
        **kw: Any,
    ) -> None:
        super().__init__(symbols, **kw)
        self.init_session(api_key=api_key, secret=secret)
        self.passphrase = passphrase
        self.cross_wallet = Decimal(wallet)  # cash not set aside for isolated positions
        self.hedged = False
        self.positions: dict[tuple[str, str], Position] = {}
        self.orders: dict[str, Order] = {}
        self.leverage: dict[str, int] = {q.market_id: 10 for q in self.quotes.values()}
        self.margin_mode: dict[str, str] = {q.market_id: "cross" for q in self.quotes.values()}
        self.liquidation_override: dict[tuple[str, str], Decimal] = {}
        self._authed: set[WsConn] = set()
        self._ids = itertools.count(600000000000000000)

    # ---- what the daemon did (private sockets live among the base's connections) -----------
    def _private_conns(self, paths: tuple[str, ...] = (PRIVATE_WS_PATH,)) -> list[WsConn]:
        return [c for c in self._conns if c.path in paths]

    @property
    def open_private_sockets(self) -> int:
        return len(self._private_conns())

    @property
    def private_connects(self) -> int:
        return self.ws_connects[PRIVATE_WS_PATH]

    # ---- account controls ----------------------------------------------------------------
    def market_id(self, symbol: str) -> str:
        return self.quote(symbol).market_id

    def contract_value(self, sym: str) -> Decimal:
        return Decimal(MARKETS[sym.split("-")[0]][0])

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
        """Open or replace a position (``amount`` in contracts, 0 closes it); pushes the
        ``positions`` channel, then ``account``."""
        sym = self.market_id(symbol)
        if margin is not None:
            self.margin_mode[sym] = margin
        if leverage is not None:
            self.leverage[sym] = leverage
        if side != "BOTH":
            self.hedged = True
        isolated = self.margin_mode[sym] == "isolated"
        previous = self.positions.get((sym, side))
        pos = Position(
            sym,
            side,
            Decimal(amount),
            Decimal(entry) if Decimal(amount) else Decimal(0),
            Decimal(isolated_wallet) if isolated else Decimal(0),
            self.leverage[sym],
            isolated,
            pos_id=previous.pos_id if previous else str(next(self._ids)),
        )
        if pos.amount:
            self.positions[(sym, side)] = pos
        else:
            self.positions.pop((sym, side), None)
            self.liquidation_override.pop((sym, side), None)
        if push:
            await self.push_positions([pos])
            await self.push_balance()
        return pos

    async def close_position(self, symbol: str, *, side: str = "BOTH", how: str = "MARKET") -> None:
        """Close a position the way ``how`` says and push what OKX pushes: the closing order
        (``filled``, its ``category``; ``algoId`` and the trigger when a stop or take-profit
        fired), then the position with ``pos`` 0."""
        sym = self.market_id(symbol)
        pos = self.positions[(sym, side)]
        mark = Decimal(self.quote(sym).mark)
        order = Order(
            str(next(self._ids)),
            sym,
            "market",
            "sell" if pos.amount > 0 else "buy",
            abs(pos.amount),
            _POS_SIDE[side],
            reduce_only=True,
            category={"LIQUIDATION": "full_liquidation", "ADL": "adl"}.get(how, "normal"),
            algo_id=str(next(self._ids)) if how in ("STOP_MARKET", "TAKE_PROFIT_MARKET") else "",
            sl_trigger=mark if how == "STOP_MARKET" else Decimal(0),
            tp_trigger=mark if how == "TAKE_PROFIT_MARKET" else Decimal(0),
        )
        await self.push_orders([self._order_entry(order, state="filled", fill=mark)])
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
        """An open order in Binance stand-in terms: ``STOP_MARKET`` / ``TAKE_PROFIT_MARKET`` are
        ``conditional`` algo orders (``closeFraction=1`` when ``close_position``),
        ``TRAILING_STOP_MARKET`` a ``move_order_stop``, ``LIMIT`` a plain order."""
        ord_type = {
            "STOP_MARKET": "conditional",
            "TAKE_PROFIT_MARKET": "conditional",
            "TRAILING_STOP_MARKET": "move_order_stop",
            "LIMIT": "limit",
        }.get(type_, "market")
        order = Order(
            str(next(self._ids)),
            self.market_id(symbol),
            ord_type,
            side.lower(),
            Decimal(0) if close_position else Decimal(quantity),
            _POS_SIDE[position_side],
            px=Decimal(price),
            sl_trigger=Decimal(trigger) if type_ == "STOP_MARKET" else Decimal(0),
            tp_trigger=Decimal(trigger) if type_ == "TAKE_PROFIT_MARKET" else Decimal(0),
            trigger=Decimal(trigger) if ord_type == "move_order_stop" else Decimal(0),
            reduce_only=reduce_only or ord_type != "limit",
            close_fraction=close_position,
        )
        self.orders[order.id] = order
        if push:
            await self.push_orders([self._order_entry(order, state="live")], algo=order.algo)
        return order

    async def cancel_order(self, order_id: str, *, push: bool = True) -> None:
        order = self.orders.pop(order_id)
        if push:
            await self.push_orders([self._order_entry(order, state="canceled")], algo=order.algo)

    async def drop_private_sockets(self) -> int:
        conns = self._private_conns((PRIVATE_WS_PATH, BUSINESS_WS_PATH))
        for conn in conns:
            self._conns.discard(conn)
            self._authed.discard(conn)
        abort_all(conns)
        await self._notify()
        return len(conns)

    # ---- computed figures ----------------------------------------------------------------
    def _mark(self, sym: str) -> Decimal:
        return Decimal(self.quote(sym).mark)

    def _qty(self, pos: Position) -> Decimal:
        """Signed base units."""
        return pos.amount * self.contract_value(pos.symbol)

    def _upnl(self, pos: Position) -> Decimal:
        return self._qty(pos) * (self._mark(pos.symbol) - pos.entry)

    def _mm(self, pos: Position) -> Decimal:
        """Maintenance margin plus the liquidation fee (the requirement of §4.2)."""
        return abs(self._qty(pos)) * self._mark(pos.symbol) * (_tier(abs(pos.amount)) + TAKER)

    def liquidation_price(self, symbol: str, side: str = "BOTH") -> Decimal | None:
        """The ``liqPx`` the stand-in reports (override, or docs/rules.md §4.2 / §5.5)."""
        sym = self.market_id(symbol)
        key = (sym, side)
        if key in self.liquidation_override:
            return self.liquidation_override[key]
        pos = self.positions[key]
        q = self._qty(pos)
        rate = _tier(abs(pos.amount)) + TAKER
        if pos.isolated:
            # (margin + q (P - EP)) = |q| P rate
            numerator, denominator = pos.margin - q * pos.entry, abs(q) * rate - q
        else:
            others = [p for k, p in self.positions.items() if k != key and not p.isolated]
            equity = self.cross_wallet + sum((self._upnl(p) for p in others), Decimal(0))
            required = sum((self._mm(p) for p in others), Decimal(0))
            numerator, denominator = equity - required - q * pos.entry, abs(q) * rate - q
        if not denominator:
            return None
        price = numerator / denominator
        return price.quantize(Decimal("0.1")) if price > 0 else None

    # ---- payloads ------------------------------------------------------------------------
    def _position_entry(self, pos: Position) -> dict[str, Any]:
        mark = self._mark(pos.symbol)
        q = abs(self._qty(pos))
        liq = self.liquidation_price(pos.symbol, pos.side) if pos.amount else None
        imr = q * mark / Decimal(pos.leverage)
        return {
            "adl": "1",
            "availPos": _s(abs(pos.amount)),
            "avgPx": _s(pos.entry) if pos.amount else "",
            "baseBal": "",
            "bePx": _s(pos.entry),
            "bizRefId": "",
            "bizRefType": "",
            "cTime": str(pos.created_ms),
            "ccy": "USDT",
            "closeOrderAlgo": [],
            "deltaBS": "",
            "deltaPA": "",
            "fee": "0",
            "fundingFee": "0",
            "gammaBS": "",
            "gammaPA": "",
            "idxPx": _s(mark),
            "imr": "" if pos.isolated else _s(imr),
            "instId": pos.symbol,
            "instType": "SWAP",
            "interest": "",
            "last": _s(mark),
            "lever": str(pos.leverage),
            "liab": "",
            "liabCcy": "",
            "liqPenalty": "0",
            "liqPx": _s(liq) if liq is not None else "",
            "margin": _s(pos.margin) if pos.isolated else "",
            "markPx": _s(mark),
            "mgnMode": "isolated" if pos.isolated else "cross",
            "mgnRatio": "",
            "mmr": _s(q * mark * _tier(abs(pos.amount))),
            "notionalUsd": _s(q * mark),
            "optVal": "",
            "pendingCloseOrdLiabVal": "",
            "pnl": "0",
            "pos": _s(pos.amount) if pos.side == "BOTH" else _s(abs(pos.amount)),
            "posCcy": "",
            "posId": pos.pos_id,
            "posSide": _POS_SIDE[pos.side],
            "quoteBal": "",
            "realizedPnl": "0",
            "spotInUseAmt": "",
            "spotInUseCcy": "",
            "thetaBS": "",
            "thetaPA": "",
            "tradeId": "",
            "uTime": str(now_ms()),
            "upl": _s(self._upnl(pos)),
            "uplLastPx": _s(self._upnl(pos)),
            "uplRatio": "0",
            "uplRatioLastPx": "0",
            "usdPx": "",
            "vegaBS": "",
            "vegaPA": "",
        }

    def _balance_entry(self) -> dict[str, Any]:
        positions = list(self.positions.values())
        iso = [p for p in positions if p.isolated]
        iso_upl = sum((self._upnl(p) for p in iso), Decimal(0))
        iso_margin = sum((p.margin for p in iso), Decimal(0))
        upl = sum((self._upnl(p) for p in positions), Decimal(0))
        cash = self.cross_wallet + iso_margin  # isolated margin stays part of the cash balance
        detail = {
            "availBal": _s(self.cross_wallet),
            "availEq": _s(self.cross_wallet),
            "cashBal": _s(cash),
            "ccy": "USDT",
            "crossLiab": "0",
            "disEq": _s(cash + upl),
            "eq": _s(cash + upl),
            "eqUsd": _s(cash + upl),
            "fixedBal": "0",
            "frozenBal": _s(iso_margin),
            "imr": "0",
            "interest": "0",
            "isoEq": _s(iso_margin + iso_upl),
            "isoLiab": "0",
            "isoUpl": _s(iso_upl),
            "liab": "0",
            "maxLoan": "0",
            "mgnRatio": "",
            "mmr": "0",
            "notionalLever": "0",
            "ordFrozen": "0",
            "spotInUseAmt": "",
            "stgyEq": "0",
            "twap": "0",
            "uTime": str(now_ms()),
            "upl": _s(upl),
            "uplLiab": "0",
        }
        return {
            "adjEq": "",
            "borrowFroz": "",
            "details": [detail],
            "imr": "",
            "isoEq": detail["isoEq"],
            "mgnRatio": "",
            "mmr": "",
            "notionalUsd": "",
            "ordFroz": "",
            "totalEq": detail["eq"],
            "uTime": str(now_ms()),
            "upl": detail["upl"],
        }

    def _order_entry(
        self, order: Order, *, state: str, fill: Decimal | None = None
    ) -> dict[str, Any]:
        filled = order.size if state == "filled" else Decimal(0)
        if order.algo:
            return {
                "activePx": "",
                "actualPx": "",
                "actualSide": "",
                "actualSz": "0",
                "algoClOrdId": "",
                "algoId": order.id,
                "attachAlgoOrds": [],
                "cTime": str(order.created_ms),
                "callbackRatio": "0.01" if order.ord_type == "move_order_stop" else "",
                "callbackSpread": "",
                "ccy": "",
                "clOrdId": "",
                "closeFraction": "1" if order.close_fraction else "",
                "failCode": "",
                "instId": order.symbol,
                "instType": "SWAP",
                "last": _s(self._mark(order.symbol)),
                "lever": str(self.leverage[order.symbol]),
                "moveTriggerPx": _s(order.trigger) if order.trigger else "",
                "ordId": "",
                "ordIdList": [],
                "ordPx": "",
                "ordType": order.ord_type,
                "posSide": order.pos_side,
                "pxLimit": "",
                "pxSpread": "",
                "pxVar": "",
                "quickMgnType": "",
                "reduceOnly": "true" if order.reduce_only else "false",
                "side": order.side,
                "slOrdPx": "-1" if order.sl_trigger else "",
                "slTriggerPx": _s(order.sl_trigger) if order.sl_trigger else "",
                "slTriggerPxType": "mark" if order.sl_trigger else "",
                "state": state,
                "sz": "" if order.close_fraction else _s(order.size),
                "szLimit": "",
                "tag": "",
                "tdMode": self.margin_mode[order.symbol],
                "tgtCcy": "",
                "timeInterval": "",
                "tpOrdPx": "-1" if order.tp_trigger else "",
                "tpTriggerPx": _s(order.tp_trigger) if order.tp_trigger else "",
                "tpTriggerPxType": "mark" if order.tp_trigger else "",
                "triggerPx": "",
                "triggerPxType": "",
                "triggerTime": "",
                "uTime": str(now_ms()),
            }
        return {
            "accFillSz": _s(filled),
            "algoClOrdId": "",
            "algoId": order.algo_id,
            "attachAlgoClOrdId": "",
            "attachAlgoOrds": [],
            "avgPx": _s(fill) if fill is not None else "",
            "cTime": str(order.created_ms),
            "cancelSource": "",
            "cancelSourceReason": "",
            "category": order.category,
            "ccy": "",
            "clOrdId": "",
            "fee": "0",
            "feeCcy": "USDT",
            "fillPx": _s(fill) if fill is not None else "",
            "fillSz": _s(filled),
            "fillTime": str(now_ms()) if filled else "",
            "instId": order.symbol,
            "instType": "SWAP",
            "isTpLimit": "false",
            "lever": str(self.leverage[order.symbol]),
            "linkedAlgoOrd": {"algoId": ""},
            "ordId": order.id,
            "ordType": order.ord_type,
            "pnl": "0",
            "posSide": order.pos_side,
            "px": _s(order.px) if order.px else "",
            "pxType": "",
            "pxUsd": "",
            "pxVol": "",
            "quickMgnType": "",
            "rebate": "0",
            "rebateCcy": "USDT",
            "reduceOnly": "true" if order.reduce_only else "false",
            "side": order.side,
            "slOrdPx": "",
            "slTriggerPx": _s(order.sl_trigger) if order.sl_trigger else "",
            "slTriggerPxType": "",
            "source": "",
            "state": state,
            "stpId": "",
            "stpMode": "cancel_maker",
            "sz": _s(order.size),
            "tag": "",
            "tdMode": self.margin_mode[order.symbol],
            "tgtCcy": "",
            "tpOrdPx": "",
            "tpTriggerPx": _s(order.tp_trigger) if order.tp_trigger else "",
            "tpTriggerPxType": "",
            "tradeId": str(next(self._ids)) if filled else "",
            "uTime": str(now_ms()),
        }

    # ---- private pushes ------------------------------------------------------------------
    async def push_positions(self, positions: Iterable[Position]) -> int:
        data = [self._position_entry(p) for p in positions]
        return await self._push_private(
            "positions", {"channel": "positions", "instType": "ANY"}, data
        )

    async def push_balance(self) -> int:
        return await self._push_private("account", {"channel": "account"}, [self._balance_entry()])

    async def push_orders(self, data: list[dict[str, Any]], *, algo: bool = False) -> int:
        channel = "orders-algo" if algo else "orders"
        return await self._push_private(channel, {"channel": channel, "instType": "ANY"}, data)

    async def _push_private(self, channel: str, arg: dict[str, Any], data: list[Any]) -> int:
        frame = {"arg": {**arg, "uid": "77982378738415879"}, "data": data}
        conns = self._private_conns((PRIVATE_WS_PATH, BUSINESS_WS_PATH))
        sent = await send_each(conns, frame, lambda conn: f"private:{channel}" in conn.topics)
        if sent:
            self.frames_sent[channel] += sent
        return sent

    # ---- request handling ----------------------------------------------------------------
    def _auth_error(self, request: web.Request) -> web.Response | None:
        headers = request.headers
        key = headers.get("OK-ACCESS-KEY")
        if not key:
            return self._refuse("50103", 'Request header "OK-ACCESS-KEY" cannot be empty.')
        if key != self.api_key:
            return self._refuse("50111", "Invalid OK-ACCESS-KEY.")
        if headers.get("OK-ACCESS-PASSPHRASE") != self.passphrase:
            return self._refuse("50105", "OK-ACCESS-PASSPHRASE incorrect.")
        payload = headers.get("OK-ACCESS-TIMESTAMP", "") + request.method + request.path_qs
        if not signature_ok(headers.get("OK-ACCESS-SIGN", ""), self.secret, payload, b64=True):
            return self._refuse("50113", "Invalid Sign.")
        return None

    def _refuse(self, code: str, msg: str) -> web.Response:
        self.auth_failures += 1
        return web.json_response({"code": code, "msg": msg, "data": []}, status=401)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.record(request, "OK-ACCESS-KEY" in request.headers)
        if path in (PRIVATE_WS_PATH, BUSINESS_WS_PATH) and not self.serve_private_ws:
            self.requests[path] += 1
            return web.Response(status=503, text="Service Unavailable")
        route = self.private_routes.get((request.method, path))
        if route is None or self.refused:
            return await super()._dispatch(request)
        self.requests[path] += 1
        error = self._auth_error(request)
        if error is not None:
            return error
        try:
            return web.json_response(self._envelope(route(self, request)))
        except RestError as exc:
            return web.json_response(exc.body, status=exc.status)

    def _r_currencies(self, request: web.Request) -> Any:
        coins = ["USDT", *(q.market_id.split("-")[0] for q in self.quotes.values())]
        return [
            {
                "ccy": coin,
                "chain": f"{coin}-ERC20",
                "name": coin,
                "canDep": True,
                "canWd": True,
                "canInternal": True,
                "minDep": "0.00000001",
                "minWd": "0.001",
                "maxWd": "500",
                "wdTickSz": "8",
                "minFee": "0.0005",
                "maxFee": "0.001",
                "mainNet": True,
                "needTag": False,
                "logoLink": "",
                "wdQuota": "10000000",
                "usedWdQuota": "0",
                "minDepArrivalConfirm": "1",
                "minWdUnlockConfirm": "1",
                "depQuotaFixed": "",
                "usedDepQuotaFixed": "",
                "burningFeeRate": "",
            }
            for coin in coins
        ]

    def _r_balance(self, request: web.Request) -> Any:
        return [self._balance_entry()]

    def _r_positions(self, request: web.Request) -> Any:
        wanted = request.query.get("instId")
        return [
            self._position_entry(p)
            for p in self.positions.values()
            if wanted is None or p.symbol in wanted.split(",")
        ]

    def _r_config(self, request: web.Request) -> Any:
        return [
            {
                "acctLv": "2",
                "autoLoan": False,
                "ctIsoMode": "automatic",
                "enableSpotBorrow": False,
                "greeksType": "PA",
                "ip": "",
                "kycLv": "3",
                "label": "guardbot read-only",
                "level": "Lv1",
                "levelTmp": "",
                "liquidationGear": "-1",
                "mainUid": "44705892343",
                "mgnIsoMode": "automatic",
                "opAuth": "1",
                "perm": "read_only",
                "posMode": "long_short_mode" if self.hedged else "net_mode",
                "roleType": "0",
                "spotBorrowAutoRepay": False,
                "spotOffsetType": "",
                "spotRoleType": "0",
                "spotTraderInsts": [],
                "traderInsts": [],
                "type": "0",
                "uid": "44705892343",
            }
        ]

    def _r_orders_pending(self, request: web.Request) -> Any:
        return [self._order_entry(o, state="live") for o in self.orders.values() if not o.algo]

    def _r_algo_pending(self, request: web.Request) -> Any:
        wanted = request.query.get("ordType")
        if wanted not in ("conditional", "oco", "trigger", "move_order_stop", "iceberg", "twap"):
            return self._problem("51000", "Parameter ordType error")
        return [
            self._order_entry(o, state="live")
            for o in self.orders.values()
            if o.algo and o.ord_type == wanted
        ]

    @staticmethod
    def _problem(code: str, msg: str) -> Any:
        raise RestError(200, {"code": code, "msg": msg, "data": []})

    private_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        ("GET", "/api/v5/asset/currencies"): _r_currencies,
        ("GET", "/api/v5/account/balance"): _r_balance,
        ("GET", "/api/v5/account/positions"): _r_positions,
        ("GET", "/api/v5/account/config"): _r_config,
        ("GET", "/api/v5/trade/orders-pending"): _r_orders_pending,
        ("GET", "/api/v5/trade/orders-algo-pending"): _r_algo_pending,
    }

    # ---- private websocket -----------------------------------------------------------------
    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if conn.path not in (PRIVATE_WS_PATH, BUSINESS_WS_PATH):
            await super().on_ws_message(conn, message)
            return
        channels = (
            ("orders-algo",)
            if conn.path == BUSINESS_WS_PATH
            else ("positions", "account", "orders")
        )
        if await self.answer_text_ping(conn, message) or not isinstance(message, dict):
            return
        op = message.get("op")
        conn_id = f"standinpriv{id(conn) % 100000}"
        if op == "login":
            (arg,) = message.get("args") or [{}]
            signed = f"{arg.get('timestamp')}GET/users/self/verify"
            ok = (
                arg.get("apiKey") == self.api_key
                and arg.get("passphrase") == self.passphrase
                and signature_ok(arg.get("sign", ""), self.secret, signed, b64=True)
            )
            if ok:
                self._authed.add(conn)
                await conn.send({"event": "login", "code": "0", "msg": "", "connId": conn_id})
            else:
                self.auth_failures += 1
                await conn.send(
                    {"event": "error", "code": "60009", "msg": "Login failed.", "connId": conn_id}
                )
            return
        if op == "subscribe":
            for arg in message.get("args") or []:
                channel = arg.get("channel")
                if conn not in self._authed or channel not in channels:
                    await conn.send(
                        {
                            "event": "error",
                            "code": "60011",
                            "msg": "Please log in",
                            "connId": conn_id,
                        }
                    )
                    continue
                await conn.send({"event": "subscribe", "arg": arg, "connId": conn_id})
                await self.subscribed(conn, [f"private:{channel}"])
