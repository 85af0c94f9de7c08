"""The Bitget USDT-M stand-in with an account behind it: the signed private REST endpoints and the
private websocket, as the real ``ccxt.pro.bitget`` 4.5.90 calls them (classic account, API v2).

``StandinBitgetPrivate`` extends :class:`~tests.standin.bitget.StandinBitget` (public REST and
the ticker stream unchanged) with the account of :class:`~tests.standin.private_account.
PrivateAccount`.

Signed REST (headers ``ACCESS-KEY``, ``ACCESS-SIGN`` = base64 HMAC-SHA256 of ``timestamp +
method + path + ?query``, ``ACCESS-TIMESTAMP``, ``ACCESS-PASSPHRASE``; a wrong key answers
``40006`` "Invalid ACCESS_KEY", a wrong passphrase ``40012``, a wrong signature ``40009``, as
Bitget documents them), envelope ``{"code": "00000", "msg": "success", "requestTime", "data"}``:

- ``GET /api/v2/mix/position/all-position`` (``fetch_positions``: ``productType``,
  ``marginCoin``), ``GET /api/v2/mix/account/accounts`` (``fetch_balance``),
  ``GET /api/v2/mix/order/orders-pending`` (``fetch_open_orders``: ``data.entrustedList``),
  ``GET /api/v2/mix/order/orders-plan-pending`` (``planType`` ``normal_plan`` / ``profit_loss``
  / ``track_plan``), ``GET /api/v2/mix/account/account`` (one symbol's leverage, margin mode and
  position mode: ``fetch_leverage`` / ``fetch_margin_mode``).

Private websocket ``/v2/ws/private``: ``{"op": "login", "args": [{apiKey, passphrase,
timestamp, sign}]}`` (sign = base64 HMAC-SHA256 of ``timestamp + "GET/user/verify"``) answered
``{"event": "login", "code": 0}`` or ``{"event": "error", "code": 30011|30012|30015, "msg"}``;
subscribe before login answers ``30004``; ``{"op": "subscribe", "args": [{"instType":
"USDT-FUTURES", "channel": "positions"|"account"|"orders"|"orders-algo", "instId"|"coin":
"default"}]}`` acked
per argument with ``{"event": "subscribe", "arg"}`` and followed by a snapshot of the channel
(none for orders); text ``ping`` -> ``pong``. Every positions push is a ``snapshot`` of all
open positions (an empty list once the last one closed); account pushes carry ``equity``,
``unrealizedPL``, ``available``, ``maxOpenPosAvailable``, ``maxTransferOut``,
``crossedRiskRate``, ``usdtEquity``; order pushes the v2 order channel fields (``tradeSide``,
``posSide``, ``posMode``, ``orderSource``, ``accBaseVolume``, ...); plan orders placed or
cancelled go out on ``orders-algo`` (``planType``, ``triggerPrice``, ``status`` live /
cancelled), their fills on ``orders``.

The exchange's liquidation price: Bitget's requirement is the position value x the tier's
``keepMarginRate`` plus the close fee at the taker rate (docs/rules.md §14.2), in the closed
form of :func:`~tests.standin.private_account.liquidation_price`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from tests.standin.base import RestError, RestHandler, WsConn, now_ms, signature_ok
from tests.standin.bitget import POSITION_LEVER, PRODUCT, StandinBitget
from tests.standin.private_account import (
    AcctOrder,
    AcctPosition,
    PrivateAccount,
    decimal_text,
)

__all__ = ["API_KEY", "PASSPHRASE", "SECRET", "StandinBitgetPrivate"]

API_KEY = "bg_standin-api-key-0123456789"
SECRET = "standin-bitget-secret-abcdefghijkl"
PASSPHRASE = "standin-passphrase-42"
PRIVATE_WS_PATH = "/v2/ws/private"
TAKER = Decimal("0.0006")  # the contracts' takerFeeRate (tests/standin/bitget.py)

_s = decimal_text

#: how a closing order's kind shows in Bitget's order fields: (tradeSide hedge, one-way, source)
_CLOSE_FIELDS = {
    "market": ("close", "{side}_single", "normal"),
    "stop": ("close", "{side}_single", "pos_loss_market"),
    "take_profit": ("close", "{side}_single", "pos_profit_market"),
    "liquidation": ("burst_close_{hold}", "burst_{side}_single", "normal"),
    "adl": ("offset_close_{hold}", "{side}_single", "normal"),
}
_PRIVATE_CHANNELS = ("positions", "account", "orders", "orders-algo")
_PLAN_TYPES = {"stop": "pos_loss", "take_profit": "pos_profit", "trailing": "track_plan"}


class StandinBitgetPrivate(PrivateAccount, StandinBitget):
    """See the module docstring. Use as ``async with StandinBitgetPrivate() as ex``."""

    private_topics = (
        "private:positions",
        "private:account",
        "private:orders",
        "private:orders-algo",
    )
    #: positions and account are pushed whole right after their subscribe ack
    snapshot_on_subscribe = True

    keys = (API_KEY, SECRET, PASSPHRASE)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._logged_in: set[WsConn] = set()

    # ---- rules ----------------------------------------------------------------------------
    def mm_rate(self, symbol: str, notional: Decimal) -> tuple[Decimal, Decimal]:
        rate = Decimal(POSITION_LEVER[0][3])
        for start, _end, _lev, keep in POSITION_LEVER:
            if notional > Decimal(start):
                rate = Decimal(keep)
        return rate + TAKER, Decimal(0)

    # ---- shapes ---------------------------------------------------------------------------
    def _pos_mode(self) -> str:
        return "hedge_mode" if self.hedge_mode else "one_way_mode"

    def _position_entry(self, pos: AcctPosition) -> dict[str, Any]:
        mark = self.mark(pos.symbol)
        size = abs(pos.amount)
        leverage = self.leverage[pos.symbol]
        isolated = self.margin_mode[pos.symbol] == "isolated"
        margin = pos.isolated_wallet if isolated else size * pos.entry / leverage
        liq = self.liquidation_price(pos.symbol, pos.side)
        rate, _cum = self.mm_rate(pos.symbol, size * mark)
        upnl = self.upnl(pos)
        return {
            "marginCoin": "USDT",
            "symbol": self.quote(pos.symbol).market_id,
            "holdSide": pos.hold_side,
            "openDelegateSize": "0",
            "marginSize": _s(margin),
            "available": _s(size),
            "locked": "0",
            "total": _s(size),
            "leverage": str(leverage),
            "achievedProfits": "0",
            "openPriceAvg": _s(pos.entry),
            "marginMode": "isolated" if isolated else "crossed",
            "posMode": self._pos_mode(),
            "unrealizedPL": _s(upnl),
            "liquidationPrice": _s(liq) if liq is not None else "0",
            "keepMarginRate": _s(rate - TAKER),
            "markPrice": _s(mark),
            "marginRatio": _s(self.mm(pos) / max(self.equity(), Decimal(1))),
            "breakEvenPrice": _s(pos.entry),
            "totalFee": "0",
            "deductedFee": "0",
            "cTime": str(pos.created_ms),
            "uTime": str(pos.updated_ms),
            "autoMargin": "off",
        }

    def _account_entry(self) -> dict[str, Any]:
        equity = self.equity()
        upnl = self.total_upnl()
        cross_upnl = sum(
            (self.upnl(p) for p in self.positions.values() if not p.isolated_wallet), Decimal(0)
        )
        available = max(self.cross_wallet + cross_upnl - self.initial_margin(), Decimal(0))
        return {
            "marginCoin": "USDT",
            "locked": "0",
            "available": _s(self.cross_wallet + self.isolated_total()),
            "crossedMaxAvailable": _s(available),
            "isolatedMaxAvailable": _s(available),
            "maxTransferOut": _s(available),
            "accountEquity": _s(equity),
            "usdtEquity": _s(equity),
            "btcEquity": "0",
            "crossedRiskRate": "0",
            "unrealizedPL": _s(upnl),
            "coupon": "0",
            "crossedUnrealizedPL": _s(cross_upnl),
            "isolatedUnrealizedPL": _s(upnl - cross_upnl),
        }

    def _order_fields(self, order: AcctOrder) -> dict[str, Any]:
        """What plain and plan orders share, in Bitget's hedge-mode side convention."""
        hold = (
            order.position_side.lower()
            if order.position_side in ("LONG", "SHORT")
            else ("long" if order.side == "sell" else "short")
        )
        closing = order.reduce_only or order.close_position or order.kind in _PLAN_TYPES
        side = order.side
        if self.hedge_mode and closing:
            side = "buy" if hold == "long" else "sell"  # Bitget names the position's direction
        if self.hedge_mode:
            trade_side = "close" if closing else "open"
        else:
            trade_side = f"{'buy' if order.side == 'buy' else 'sell'}_single"
        return {
            "symbol": self.quote(order.symbol).market_id,
            "orderId": str(order.id),
            "clientOid": f"standin-{order.id}",
            "side": side,
            "posSide": hold if self.hedge_mode else "net",
            "posMode": self._pos_mode(),
            "tradeSide": trade_side,
            "marginCoin": "USDT",
            "marginMode": "isolated" if self.margin_mode[order.symbol] == "isolated" else "crossed",
            "enterPointSource": "API",
            "cTime": str(order.created_ms),
            "uTime": str(order.created_ms),
        }

    def _plain_order_entry(self, order: AcctOrder) -> dict[str, Any]:
        return {
            **self._order_fields(order),
            "size": _s(order.amount),
            "baseVolume": "0",
            "fee": "0",
            "price": _s(order.price),
            "priceAvg": "",
            "status": "live",
            "force": "gtc",
            "totalProfits": "0",
            "quoteVolume": "0",
            "leverage": str(self.leverage[order.symbol]),
            "orderType": order.kind if order.kind in ("limit", "market") else "limit",
            "orderSource": "normal",
            "presetStopSurplusPrice": "",
            "presetStopLossPrice": "",
            "reduceOnly": "YES" if order.reduce_only else "NO",
        }

    def _plan_type(self, order: AcctOrder) -> str:
        if order.kind in ("stop", "take_profit") and order.close_position:
            return _PLAN_TYPES[order.kind]
        if order.kind == "stop":
            return "loss_plan"
        if order.kind == "take_profit":
            return "profit_plan"
        if order.kind == "trailing":
            return "track_plan"
        return "normal_plan"

    def _plan_order_entry(self, order: AcctOrder) -> dict[str, Any]:
        return {
            **self._order_fields(order),
            "planType": self._plan_type(order),
            "size": "" if order.close_position else _s(order.amount),
            "price": "0",
            "executePrice": "0",
            "callbackRatio": "",
            "triggerPrice": _s(order.trigger),
            "triggerType": "mark_price",
            "planStatus": "live",
            "orderType": "market",
            "stopSurplusTriggerPrice": "",
            "stopSurplusExecutePrice": "",
            "stopSurplusTriggerType": "",
            "stopLossTriggerPrice": "",
            "stopLossExecutePrice": "",
            "stopLossTriggerType": "",
        }

    @staticmethod
    def _is_plan(order: AcctOrder) -> bool:
        return order.kind not in ("limit", "market")

    # ---- REST -----------------------------------------------------------------------------
    def _envelope_ok(self, data: Any) -> dict[str, Any]:
        return {"code": "00000", "msg": "success", "requestTime": now_ms(), "data": data}

    def _refuse(self, code: str, msg: str) -> RestError:
        self.auth_failures += 1
        return RestError(400, {"code": code, "msg": msg, "requestTime": now_ms(), "data": None})

    def _check_auth(self, request: web.Request) -> None:
        headers = request.headers
        if headers.get("ACCESS-KEY") != self.api_key:
            raise self._refuse("40006", "Invalid ACCESS_KEY")
        if headers.get("ACCESS-PASSPHRASE") != self.password:
            raise self._refuse("40012", "apikey/password is incorrect")
        timestamp = headers.get("ACCESS-TIMESTAMP", "")
        query = request.rel_url.raw_query_string
        payload = timestamp + request.method + request.path + (f"?{query}" if query else "")
        if not signature_ok(headers.get("ACCESS-SIGN", ""), self.secret, payload, b64=True):
            raise self._refuse("40009", "sign signature error")
        if request.query.get("productType", PRODUCT).upper() != PRODUCT:
            raise RestError(400, {"code": "40034", "msg": "Parameter productType error"})

    def _r_positions(self, request: web.Request) -> Any:
        self._check_auth(request)
        return self._envelope_ok([self._position_entry(p) for p in self.positions.values()])

    def _r_accounts(self, request: web.Request) -> Any:
        self._check_auth(request)
        return self._envelope_ok([self._account_entry()])

    def _r_orders_pending(self, request: web.Request) -> Any:
        self._check_auth(request)
        entries = [self._plain_order_entry(o) for o in self.orders.values() if not self._is_plan(o)]
        return self._envelope_ok({"entrustedList": entries or None, "endId": None})

    def _r_plan_pending(self, request: web.Request) -> Any:
        self._check_auth(request)
        wanted = request.query.get("planType")
        groups = {
            "normal_plan": ("normal_plan",),
            "profit_loss": ("pos_loss", "pos_profit", "loss_plan", "profit_plan"),
            "track_plan": ("track_plan", "moving_plan"),
        }
        if wanted not in groups:
            raise RestError(400, {"code": "40034", "msg": "Parameter planType error"})
        entries = [
            self._plan_order_entry(o)
            for o in self.orders.values()
            if self._is_plan(o) and self._plan_type(o) in groups[wanted]
        ]
        return self._envelope_ok({"entrustedList": entries or None, "endId": None})

    def _r_account(self, request: web.Request) -> Any:
        self._check_auth(request)
        q = self.query_symbol(request)
        if q is None:
            raise RestError(400, {"code": "40019", "msg": "Parameter symbol cannot be empty"})
        lev = str(self.leverage[q.symbol])
        return self._envelope_ok(
            {
                **self._account_entry(),
                "marginMode": "isolated" if self.margin_mode[q.symbol] == "isolated" else "crossed",
                "crossedMarginLeverage": lev,
                "isolatedLongLever": lev,
                "isolatedShortLever": lev,
                "posMode": self._pos_mode(),
            }
        )

    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        **StandinBitget.rest_routes,
        ("GET", "/api/v2/mix/position/all-position"): _r_positions,
        ("GET", "/api/v2/mix/account/accounts"): _r_accounts,
        ("GET", "/api/v2/mix/account/account"): _r_account,
        ("GET", "/api/v2/mix/order/orders-pending"): _r_orders_pending,
        ("GET", "/api/v2/mix/order/orders-plan-pending"): _r_plan_pending,
    }

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if not self._is_ws(request.path):
            self.record(request, "ACCESS-KEY" in request.headers)
        return await super()._dispatch(request)

    # ---- private websocket ----------------------------------------------------------------
    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if conn.path != PRIVATE_WS_PATH:
            await super().on_ws_message(conn, message)
            return
        if await self.answer_text_ping(conn, message) or not isinstance(message, dict):
            return
        op = message.get("op")
        args = [a for a in message.get("args") or [] if isinstance(a, dict)]
        if op == "login":
            await self._login(conn, args[0] if args else {})
            return
        if op != "subscribe":
            return
        for arg in args:
            if conn not in self._logged_in:
                await conn.send({"event": "error", "code": 30004, "msg": "User not logged in"})
                continue
            channel = arg.get("channel")
            if arg.get("instType") != PRODUCT or channel not in _PRIVATE_CHANNELS:
                await conn.send(
                    {"event": "error", "arg": arg, "code": 30001,
                     "msg": f"instType:{arg.get('instType')},channel:{channel} doesn't exist"}
                )  # fmt: skip
                continue
            await conn.send({"event": "subscribe", "arg": arg})
            await self.subscribed(conn, [f"private:{channel}"])
            if channel == "positions":
                await self.push_positions([], only=[conn])
            elif channel == "account":
                await self.push_balance(only=[conn])

    async def _login(self, conn: WsConn, arg: Mapping[str, Any]) -> None:
        if not self.serve_private_ws:
            self.abort(conn)
            return
        signed = str(arg.get("timestamp", "")) + "GET/user/verify"
        error = None
        if arg.get("apiKey") != self.api_key:
            error = (30011, "Invalid ACCESS_KEY")
        elif arg.get("passphrase") != self.password:
            error = (30012, "Invalid ACCESS_PASSPHRASE")
        elif not signature_ok(arg.get("sign", ""), self.secret, signed, b64=True):
            error = (30015, "Invalid sign")
        if error is not None:
            self.auth_failures += 1
            await conn.send({"event": "error", "code": error[0], "msg": error[1]})
            return
        self._logged_in.add(conn)
        await conn.send({"event": "login", "code": 0})
        await self.private_opened(conn)

    def on_ws_close(self, conn: WsConn) -> None:
        self._logged_in.discard(conn)
        super().on_ws_close(conn)

    # ---- pushes ---------------------------------------------------------------------------
    def _ws_position(self, pos: AcctPosition) -> dict[str, Any]:
        entry = self._position_entry(pos)
        return {
            "posId": str(pos.id),
            "instId": entry["symbol"],
            "marginCoin": "USDT",
            "marginSize": entry["marginSize"],
            "marginMode": entry["marginMode"],
            "holdSide": entry["holdSide"],
            "posMode": entry["posMode"],
            "total": entry["total"],
            "available": entry["available"],
            "frozen": "0",
            "openPriceAvg": entry["openPriceAvg"],
            "leverage": self.leverage[pos.symbol],
            "achievedProfits": "0",
            "unrealizedPL": entry["unrealizedPL"],
            "unrealizedPLR": "0",
            "liquidationPrice": entry["liquidationPrice"],
            "keepMarginRate": entry["keepMarginRate"],
            "marginRate": entry["marginRatio"],
            "cTime": entry["cTime"],
            "uTime": str(now_ms()),
            "autoMargin": "off",
        }

    async def push_positions(
        self, changed: list[AcctPosition], *, only: Iterable[WsConn] | None = None
    ) -> int:
        frame = {
            "action": "snapshot",
            "arg": {"instType": PRODUCT, "channel": "positions", "instId": "default"},
            "data": [self._ws_position(p) for p in self.positions.values()],
            "ts": now_ms(),
        }
        return await self.send_private(frame, "private:positions", only)

    async def push_balance(self, *, only: Iterable[WsConn] | None = None) -> int:
        entry = self._account_entry()
        frame = {
            "action": "snapshot",
            "arg": {"instType": PRODUCT, "channel": "account", "coin": "default"},
            "data": [
                {
                    "marginCoin": "USDT",
                    "frozen": "0",
                    "available": entry["available"],
                    "maxOpenPosAvailable": entry["crossedMaxAvailable"],
                    "maxTransferOut": entry["maxTransferOut"],
                    "equity": entry["accountEquity"],
                    "usdtEquity": entry["usdtEquity"],
                    "crossedRiskRate": "0",
                    "unrealizedPL": entry["unrealizedPL"],
                }
            ],
            "ts": now_ms(),
        }
        return await self.send_private(frame, "private:account", only)

    async def push_order(
        self, order: AcctOrder, *, status: str, fill_price: Decimal | None = None
    ) -> int:
        if self._is_plan(order) and status != "filled":
            return await self._push_plan_order(order, status)
        fields = self._order_fields(order)
        hold = (
            fields["posSide"]
            if fields["posSide"] != "net"
            else ("long" if order.side == "sell" else "short")
        )
        trade_side, single, source = _CLOSE_FIELDS.get(order.kind, _CLOSE_FIELDS["market"])
        if status == "filled" and order.reduce_only:
            fields["tradeSide"] = (trade_side if self.hedge_mode else single).format(
                side=order.side, hold=hold
            )
        filled = order.amount if status == "filled" else Decimal(0)
        price = fill_price if fill_price is not None else Decimal(0)
        frame = {
            "action": "snapshot",
            "arg": {"instType": PRODUCT, "channel": "orders", "instId": "default"},
            "data": [
                {
                    **fields,
                    "instId": fields["symbol"],
                    "price": _s(order.price),
                    "size": _s(order.amount),
                    "notionalUsd": _s(order.amount * price),
                    "orderType": "market" if status == "filled" else "limit",
                    "force": "gtc",
                    "fillPrice": _s(price),
                    "tradeId": str(order.id + 1),
                    "baseVolume": _s(filled),
                    "fillTime": str(now_ms()),
                    "fillFee": "0",
                    "fillFeeCoin": "USDT",
                    "tradeScope": "T",
                    "accBaseVolume": _s(filled),
                    "priceAvg": _s(price),
                    "status": {"filled": "filled", "new": "live", "canceled": "canceled"}[status],
                    "leverage": str(self.leverage[order.symbol]),
                    "orderSource": source if status == "filled" else "normal",
                    "reduceOnly": "yes" if order.reduce_only else "no",
                    "presetStopSurplusPrice": "",
                    "presetStopLossPrice": "",
                    "feeDetail": [{"feeCoin": "USDT", "fee": "0"}],
                    "cTime": str(order.created_ms),
                    "uTime": str(now_ms()),
                }
            ],
            "ts": now_ms(),
        }
        return await self.send_private(frame, "private:orders")

    async def _push_plan_order(self, order: AcctOrder, status: str) -> int:
        """The ``orders-algo`` channel's push of a plan order placed or cancelled."""
        entry = self._plan_order_entry(order)
        frame = {
            "action": "snapshot",
            "arg": {"instType": PRODUCT, "channel": "orders-algo", "instId": "default"},
            "data": [
                {
                    **entry,
                    "instId": entry["symbol"],
                    "actualSize": "0",
                    "triggerTime": "",
                    "status": {"new": "live", "canceled": "cancelled"}[status],
                    "uTime": str(now_ms()),
                }
            ],
            "ts": now_ms(),
        }
        return await self.send_private(frame, "private:orders-algo")
