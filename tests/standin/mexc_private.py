"""The MEXC USDT-M futures stand-in with an account behind it: the signed private contract REST
endpoints and the private websocket pushes, as the real ``ccxt.pro.mexc`` 4.5.90 calls them.

``StandinMexcPrivate`` extends :class:`~tests.standin.mexc.StandinMexc` (public REST and the
ticker stream unchanged) with the account of :class:`~tests.standin.private_account.
PrivateAccount`. Volumes are contracts of ``contractSize`` (BTC_USDT 0.0001 BTC).

Signed REST (headers ``ApiKey``, ``Request-Time``, ``Signature`` = hex HMAC-SHA256 of key + time
+ the sorted query; a wrong key answers ``{"success": false, "code": 401}``, a wrong signature
code 602, as MEXC documents them), envelope ``{"success": true, "code": 0, "data"}``:
``GET /api/v1/private/position/open_positions``, ``/account/assets``, ``/position/position_mode``
(1 hedge, 2 one-way), ``/order/list/open_orders``, ``/planorder/list/orders`` (``states=1``),
``/stoporder/list/orders`` (``is_finished=0``: position TP/SL orders).

Private websocket (the contract socket ``/edge``): ``{"method": "login", "param": {apiKey,
reqTime, signature}}`` (HMAC-SHA256 of key + reqTime) answered ``{"channel": "rs.login",
"data": "success"}`` or ``{"channel": "rs.error", "data": "..."}``; after login the exchange
pushes everything private unasked: ``push.personal.position`` (which ccxt 4.5.90 drops),
``push.personal.asset`` (``positionMargin``, ``frozenBalance``, ``availableBalance``,
``cashBalance``: no equity) and ``push.personal.order`` (``side`` 1-4, ``category``, ``state``).

The exchange's liquidation price: MEXC's requirement, the tier's maintenance margin rate (tiers in
contracts) plus the close fee at the taker rate (docs/rules.md §14.1), in the closed form of
:func:`~tests.standin.private_account.liquidation_price`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from tests.standin.base import RestError, RestHandler, WsConn, now_ms, signature_ok
from tests.standin.mexc import RISK, StandinMexc
from tests.standin.private_account import AcctOrder, AcctPosition, PrivateAccount, decimal_text

__all__ = ["API_KEY", "SECRET", "StandinMexcPrivate"]

API_KEY = "mx0vglstandinkey0123456789"
SECRET = "mexc-standin-secret-0123456789abcdef"
TAKER = Decimal("0.0002")  # the contracts' takerFeeRate (tests/standin/mexc.py)
_PRIVATE = "/api/v1/private/"

_s = decimal_text


def _num(value: Decimal) -> float | int:
    """A number as MEXC sends it (JSON numbers)."""
    return int(value) if value == value.to_integral_value() else float(value)


class StandinMexcPrivate(PrivateAccount, StandinMexc):
    """See the module docstring. Use as ``async with StandinMexcPrivate() as ex``."""

    private_topics = ("private:login",)

    keys = (API_KEY, SECRET, None)

    # ---- rules ----------------------------------------------------------------------------
    def mm_rate(self, symbol: str, notional: Decimal) -> tuple[Decimal, Decimal]:
        contracts = notional / self.mark(symbol) / self.contract_size(symbol)
        step = Decimal(RISK["riskIncrVol"])
        tier = int(contracts // step) if contracts > step else 0
        rate = Decimal(RISK["maintenanceMarginRate"]) + tier * Decimal(RISK["riskIncrMmr"])
        return rate + TAKER, Decimal(0)

    # ---- shapes ---------------------------------------------------------------------------
    def _vol(self, symbol: str, base: Decimal) -> Decimal:
        return abs(base) / self.contract_size(symbol)

    def _position_entry(self, pos: AcctPosition) -> dict[str, Any]:
        sym = pos.symbol
        isolated = self.margin_mode[sym] == "isolated"
        lev = self.leverage[sym]
        im = pos.isolated_wallet if isolated else abs(pos.amount) * pos.entry / lev
        liq = self.liquidation_price(sym, pos.side) if pos.amount else None
        return {
            "positionId": pos.id,
            "symbol": self.quote(sym).market_id,
            "positionType": 1 if pos.hold_side == "long" else 2,
            "openType": 1 if isolated else 2,
            "state": 1 if pos.amount else 3,
            "holdVol": _num(self._vol(sym, pos.amount)),
            "frozenVol": 0,
            "closeVol": 0,
            "holdAvgPrice": _num(pos.entry),
            "openAvgPrice": _num(pos.entry),
            "closeAvgPrice": 0,
            "liquidatePrice": _num(liq) if liq is not None else 0,
            "oim": _num(im),
            "im": _num(im),
            "holdFee": 0,
            "realised": 0,
            "leverage": lev,
            "adlLevel": 1,
            "autoAddIm": False,
            "createTime": pos.created_ms,
            "updateTime": now_ms(),
        }

    def _asset(self, *, rest: bool) -> dict[str, Any]:
        upnl = self.total_upnl()
        margin = sum(
            (
                p.isolated_wallet or abs(p.amount) * p.entry / self.leverage[p.symbol]
                for p in self.positions.values()
            ),
            Decimal(0),
        )
        wallet = self.cross_wallet + self.isolated_total()
        available = max(wallet + min(upnl, Decimal(0)) - margin, Decimal(0))
        entry: dict[str, Any] = {
            "currency": "USDT",
            "positionMargin": _num(margin),
            "frozenBalance": 0,
            "availableBalance": _num(available),
            "cashBalance": _num(available),
            "bonus": 0,
        }
        if rest:
            entry |= {
                "equity": _num(wallet + upnl),
                "unrealized": _num(upnl),
                "availableCash": _num(available),
                "availableOpen": _num(available),
            }
        return entry

    @staticmethod
    def _side_code(order: AcctOrder, closes: str) -> int:
        """MEXC's ``side``: 1 open long, 2 close short, 3 open short, 4 close long."""
        if order.reduce_only or order.close_position or order.kind != "limit":
            return 4 if closes == "long" else 2
        return 1 if order.side == "buy" else 3

    def _closes(self, order: AcctOrder) -> str:
        if order.position_side in ("LONG", "SHORT"):
            return order.position_side.lower()
        return "long" if order.side == "sell" else "short"

    def _order_entry(self, order: AcctOrder, *, state: int, deal: Decimal | None) -> dict:
        closes = self._closes(order)
        category = {"liquidation": 2, "adl": 4}.get(order.kind, 3 if order.reduce_only else 1)
        return {
            "orderId": str(order.id),
            "symbol": self.quote(order.symbol).market_id,
            "positionId": 0,
            "price": _num(order.price),
            "vol": _num(self._vol(order.symbol, order.amount)),
            "leverage": self.leverage[order.symbol],
            "side": self._side_code(order, closes),
            "category": category,
            "orderType": 5 if state == 3 else 1,
            "dealAvgPrice": _num(deal) if deal is not None else 0,
            "dealVol": _num(self._vol(order.symbol, order.amount)) if state == 3 else 0,
            "orderMargin": 0,
            "usedMargin": 0,
            "takerFee": 0,
            "makerFee": 0,
            "profit": 0,
            "feeCurrency": "USDT",
            "openType": 1 if self.margin_mode[order.symbol] == "isolated" else 2,
            "state": state,
            "errorCode": 0,
            "externalOid": f"standin-{order.id}",
            "remainVol": 0 if state == 3 else _num(self._vol(order.symbol, order.amount)),
            "createTime": order.created_ms,
            "updateTime": now_ms(),
            "version": 1,
        }

    def _plan_entry(self, order: AcctOrder) -> dict[str, Any]:
        closes = self._closes(order)
        falls = (closes == "long") == (order.kind in ("stop", "trailing"))
        return {
            "id": str(order.id),
            "symbol": self.quote(order.symbol).market_id,
            "leverage": self.leverage[order.symbol],
            "side": self._side_code(order, closes),
            "triggerPrice": _num(order.trigger),
            "price": 0,
            "vol": _num(self._vol(order.symbol, order.amount)),
            "openType": 1 if self.margin_mode[order.symbol] == "isolated" else 2,
            "triggerType": 2 if falls else 1,
            "state": 1,
            "executeCycle": 87600,
            "trend": 1,
            "orderType": 5,
            "errorCode": 0,
            "createTime": order.created_ms,
            "updateTime": order.created_ms,
        }

    def _stop_entry(self, order: AcctOrder) -> dict[str, Any]:
        """A position TP/SL order (one leg set: the stand-in's orders carry one price)."""
        closes = self._closes(order)
        price = _num(order.trigger)
        return {
            "id": order.id,
            "orderId": "0",
            "symbol": self.quote(order.symbol).market_id,
            "positionId": 0,
            "stopLossPrice": price if order.kind == "stop" else None,
            "takeProfitPrice": price if order.kind == "take_profit" else None,
            "state": 1,
            "triggerSide": 1 if order.kind == "take_profit" else 2,
            "positionType": 1 if closes == "long" else 2,
            "vol": 0 if order.close_position else _num(self._vol(order.symbol, order.amount)),
            "realityVol": 0,
            "placeOrderId": 0,
            "errorCode": 0,
            "version": 1,
            "isFinished": 0,
            "createTime": order.created_ms,
            "updateTime": order.created_ms,
        }

    @staticmethod
    def _is_position_tpsl(order: AcctOrder) -> bool:
        """Whole-position stops are TP/SL orders; sized ones are trigger (plan) orders."""
        return order.kind in ("stop", "take_profit") and order.close_position

    @staticmethod
    def _is_plan(order: AcctOrder) -> bool:
        return order.kind in ("stop", "take_profit", "trailing") and not order.close_position

    # ---- REST -----------------------------------------------------------------------------
    @staticmethod
    def _ok(data: Any) -> dict[str, Any]:
        return {"success": True, "code": 0, "data": data}

    def _check_auth(self, request: web.Request) -> None:
        headers = request.headers
        if headers.get("ApiKey") != self.api_key:
            self.auth_failures += 1
            raise RestError(200, {"success": False, "code": 401, "message": "Not logged in"})
        payload = self.api_key + headers.get("Request-Time", "") + request.rel_url.raw_query_string
        if not signature_ok(headers.get("Signature", ""), self.secret, payload):
            self.auth_failures += 1
            raise RestError(
                200, {"success": False, "code": 602, "message": "Signature verification failed"}
            )

    def _r_positions(self, request: web.Request) -> Any:
        self._check_auth(request)
        return self._ok([self._position_entry(p) for p in self.positions.values()])

    def _r_assets(self, request: web.Request) -> Any:
        self._check_auth(request)
        return self._ok([self._asset(rest=True)])

    def _r_position_mode(self, request: web.Request) -> Any:
        self._check_auth(request)
        return self._ok(1 if self.hedge_mode else 2)

    def _r_open_orders(self, request: web.Request) -> Any:
        self._check_auth(request)
        return self._ok(
            [
                self._order_entry(o, state=2, deal=None)
                for o in self.orders.values()
                if o.kind in ("limit", "market")
            ]
        )

    def _r_plan_orders(self, request: web.Request) -> Any:
        self._check_auth(request)
        return self._ok([self._plan_entry(o) for o in self.orders.values() if self._is_plan(o)])

    def _r_stop_orders(self, request: web.Request) -> Any:
        self._check_auth(request)
        return self._ok(
            [self._stop_entry(o) for o in self.orders.values() if self._is_position_tpsl(o)]
        )

    def _r_currencies(self, request: web.Request) -> Any:
        # the daemon's feed instance shares the exchange-level key and lists currencies with
        # it (ccxt's signed spot call in load_markets); the mirror's own instance does not
        return []

    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        **StandinMexc.rest_routes,
        ("GET", "/api/v3/capital/config/getall"): _r_currencies,
        ("GET", _PRIVATE + "position/open_positions"): _r_positions,
        ("GET", _PRIVATE + "account/assets"): _r_assets,
        ("GET", _PRIVATE + "position/position_mode"): _r_position_mode,
        ("GET", _PRIVATE + "order/list/open_orders"): _r_open_orders,
        ("GET", _PRIVATE + "planorder/list/orders"): _r_plan_orders,
        ("GET", _PRIVATE + "stoporder/list/orders"): _r_stop_orders,
    }

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if not self._is_ws(request.path):
            self.record(request, "ApiKey" in request.headers)
        return await super()._dispatch(request)

    # ---- private websocket ----------------------------------------------------------------
    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if not isinstance(message, dict) or message.get("method") != "login":
            await super().on_ws_message(conn, message)
            return
        if not self.serve_private_ws:
            self.abort(conn)
            return
        param = message.get("param") if isinstance(message.get("param"), dict) else {}
        signed = f"{param.get('apiKey')}{param.get('reqTime')}"
        if param.get("apiKey") != self.api_key or not signature_ok(
            param.get("signature", ""), self.secret, signed
        ):
            self.auth_failures += 1
            await conn.send({"channel": "rs.error", "data": "invalid apiKey", "ts": now_ms()})
            return
        await conn.send({"channel": "rs.login", "data": "success", "ts": now_ms()})
        await self.private_opened(conn)
        await self.subscribed(conn, ["private:login"])

    # ---- pushes ---------------------------------------------------------------------------
    async def _push_private(self, channel: str, data: Any) -> int:
        frame = {"channel": channel, "data": data, "ts": now_ms()}
        return await self.send_private(frame, "private:login")

    async def push_positions(self, changed: list[AcctPosition]) -> int:
        sent = 0
        for pos in changed:
            sent += await self._push_private("push.personal.position", self._position_entry(pos))
        return sent

    async def push_balance(self) -> int:
        return await self._push_private("push.personal.asset", self._asset(rest=False))

    async def push_order(
        self, order: AcctOrder, *, status: str, fill_price: Decimal | None = None
    ) -> int:
        if status != "filled" and (self._is_plan(order) or self._is_position_tpsl(order)):
            # push.personal.plan.order / stop.order exist; ccxt 4.5.90 reads neither
            kind = "plan" if self._is_plan(order) else "stop"
            entry = self._plan_entry(order) if kind == "plan" else self._stop_entry(order)
            entry["state"] = 1 if status == "new" else 2
            return await self._push_private(f"push.personal.{kind}.order", entry)
        state = {"new": 2, "filled": 3, "canceled": 4}[status]
        return await self._push_private(
            "push.personal.order", self._order_entry(order, state=state, deal=fill_price)
        )
