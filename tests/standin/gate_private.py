"""The Gate USDT futures stand-in with an account behind it: the signed private REST endpoints and
the private websocket channels, as the real ``ccxt.pro.gate`` 4.5.90 calls them (API v4).

``StandinGatePrivate`` extends :class:`~tests.standin.gate.StandinGate` (public REST and the
ticker streams unchanged) with the account of :class:`~tests.standin.private_account.
PrivateAccount`. Sizes are contracts of ``quanto_multiplier`` (BTC_USDT 0.0001 BTC).

Signed REST (headers ``KEY``, ``Timestamp``, ``SIGN`` = hex HMAC-SHA512 of ``method\\n/api/v4
path\\nquery\\nhex SHA-512 of the body\\ntimestamp``; a wrong key answers 401 ``INVALID_KEY``, a
wrong signature 401 ``INVALID_SIGNATURE``, as Gate documents them):

- ``GET /api/v4/account/detail`` (``user_id``, ``key.mode`` 1: a classic account),
- ``GET /api/v4/futures/usdt/positions`` (``size`` signed contracts, ``leverage`` 0 with
  ``cross_leverage_limit`` for cross, ``margin``, ``liq_price``, ``mode`` single / dual_long /
  dual_short), ``GET /api/v4/futures/usdt/accounts`` (``total`` without unrealised PnL,
  ``unrealised_pnl``, ``position_margin``, ``available``, ``in_dual_mode``, ``user``),
- ``GET /api/v4/futures/usdt/orders?status=open`` and ``GET /api/v4/futures/usdt/price_orders
  ?status=open`` (price-triggered orders: ``initial``, ``trigger`` with ``rule``, ``order_type``).

Private websocket (the futures socket ``/v4/ws/futures/usdt``): ``subscribe`` with an ``auth``
block (``method: api_key``, ``KEY``, ``SIGN`` = hex HMAC-SHA512 of ``channel=<c>&event=subscribe
&time=<t>``) and the user id first in ``payload``, acked ``{"event": "subscribe", "result":
{"status": "success"}}`` or answered ``{"error": {"code": 4|11, "message"}}`` (bad key or
signature; a wrong user id: code 2); channels ``futures.positions``, ``futures.balances``,
``futures.orders``, ``futures.autoorders``; no snapshot on subscribe (Gate pushes changes only).
A closed position is pushed with ``size`` 0.

The exchange's liquidation price: Gate's maintenance margin graduated by position value (each
tier's ``maintenance_rate`` less its ``deduction``, docs/rules.md §14.3), in the closed form of
:func:`~tests.standin.private_account.liquidation_price`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from tests.standin.base import RestError, RestHandler, WsConn, now_ms, signature_ok
from tests.standin.gate import RISK_LIMIT_TIERS, StandinGate
from tests.standin.private_account import AcctOrder, AcctPosition, PrivateAccount, decimal_text

__all__ = ["API_KEY", "SECRET", "USER_ID", "StandinGatePrivate"]

API_KEY = "gate-standin-api-key-0123456789abcdef"
SECRET = "gate-standin-secret-0123456789abcdef0123456789abcdef"
USER_ID = 10406147
PRIVATE_CHANNELS = ("futures.positions", "futures.balances", "futures.orders", "futures.autoorders")

_s = decimal_text


def _size(value: Decimal) -> Any:
    """A size as Gate sends it (an integer, or a decimal string with X-Gate-Size-Decimal)."""
    return int(value) if value == value.to_integral_value() else _s(value)


class StandinGatePrivate(PrivateAccount, StandinGate):
    """See the module docstring. Use as ``async with StandinGatePrivate() as ex``."""

    private_topics = tuple(f"private:{c}" for c in PRIVATE_CHANNELS)
    #: ccxt keeps a Gate socket alive with protocol pings, no application ping: count them
    count_protocol_pings = True

    keys = (API_KEY, SECRET, None)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._update_ids: dict[tuple[str, str], int] = {}

    # ---- rules ----------------------------------------------------------------------------
    def mm_rate(self, symbol: str, notional: Decimal) -> tuple[Decimal, Decimal]:
        for limit, _im, mmr, _lev, deduction in RISK_LIMIT_TIERS:
            if notional <= Decimal(limit):
                return Decimal(mmr), Decimal(deduction)
        _limit, _im, mmr, _lev, deduction = RISK_LIMIT_TIERS[-1]
        return Decimal(mmr), Decimal(deduction)

    # ---- shapes ---------------------------------------------------------------------------
    def _contracts(self, symbol: str, base: Decimal) -> Decimal:
        return base / self.contract_size(symbol)

    def _mode(self, pos: AcctPosition) -> str:
        if pos.side == "LONG":
            return "dual_long"
        if pos.side == "SHORT":
            return "dual_short"
        return "single"

    def _position_entry(self, pos: AcctPosition) -> dict[str, Any]:
        sym = pos.symbol
        mark = self.mark(sym)
        isolated = self.margin_mode[sym] == "isolated"
        lev = self.leverage[sym]
        margin = pos.isolated_wallet if isolated else abs(pos.amount) * pos.entry / lev
        liq = self.liquidation_price(sym, pos.side) if pos.amount else None
        rate, _cum = self.mm_rate(sym, abs(pos.amount) * mark)
        key = (sym, pos.side)
        self._update_ids[key] = self._update_ids.get(key, 0) + 1
        ms = now_ms()
        return {
            "user": USER_ID,
            "contract": self.quote(sym).market_id,
            "size": _size(self._contracts(sym, pos.amount)),
            "leverage": str(lev) if isolated else "0",
            "risk_limit": RISK_LIMIT_TIERS[0][0],
            "leverage_max": RISK_LIMIT_TIERS[0][3],
            "maintenance_rate": RISK_LIMIT_TIERS[0][2],
            "value": _s(abs(pos.amount) * mark),
            "margin": _s(margin),
            "entry_price": _s(pos.entry),
            "liq_price": _s(liq) if liq is not None else "0",
            "mark_price": _s(mark),
            "initial_margin": _s(abs(pos.amount) * mark / lev),
            "maintenance_margin": _s(abs(pos.amount) * mark * rate),
            "unrealised_pnl": _s(self.upnl(pos)),
            "realised_pnl": "0",
            "history_pnl": "0",
            "last_close_pnl": "0",
            "realised_point": "0",
            "history_point": "0",
            "adl_ranking": 5,
            "pending_orders": 0,
            "close_order": None,
            "mode": self._mode(pos),
            "cross_leverage_limit": str(lev) if not isolated else "0",
            "update_time": ms // 1000,
            "update_id": self._update_ids[key],
            "open_time": pos.created_ms // 1000,
            "time": ms // 1000,
            "time_ms": ms,
        }

    def _account(self) -> dict[str, Any]:
        total = self.cross_wallet + self.isolated_total()
        upnl = self.total_upnl()
        cross_upnl = sum(
            (self.upnl(p) for p in self.positions.values() if not p.isolated_wallet), Decimal(0)
        )
        position_margin = sum(
            (
                p.isolated_wallet or abs(p.amount) * p.entry / self.leverage[p.symbol]
                for p in self.positions.values()
            ),
            Decimal(0),
        )
        return {
            "user": USER_ID,
            "currency": "USDT",
            "total": _s(total),
            "unrealised_pnl": _s(upnl),
            "position_margin": _s(position_margin),
            "order_margin": "0",
            "available": _s(max(total + cross_upnl - position_margin, Decimal(0))),
            "point": "0",
            "bonus": "0",
            "in_dual_mode": self.hedge_mode,
            "enable_credit": False,
            "position_initial_margin": _s(self.initial_margin()),
            "maintenance_margin": _s(
                sum((self.mm(p) for p in self.positions.values()), Decimal(0))
            ),
            "enable_evolved_classic": True,
            "cross_initial_margin": "0",
            "cross_maintenance_margin": "0",
            "cross_order_margin": "0",
            "cross_unrealised_pnl": _s(cross_upnl),
            "cross_available": "0",
            "isolated_position_margin": _s(self.isolated_total()),
            "history": {"dnw": _s(total), "pnl": "0", "fee": "0", "refr": "0", "fund": "0"},
        }

    def _closing_side(self, order: AcctOrder) -> str:
        if order.position_side in ("LONG", "SHORT"):
            return order.position_side.lower()
        return "long" if order.side == "sell" else "short"

    def _signed_contracts(self, order: AcctOrder) -> Decimal:
        contracts = self._contracts(order.symbol, order.amount)
        return contracts if order.side == "buy" else -contracts

    def _plain_order(self, order: AcctOrder, *, status: str, fill: Decimal | None) -> dict:
        ms = now_ms()
        finished = status != "new"
        text = {"liquidation": "liquidation", "adl": "auto_deleveraging"}.get(order.kind, "api")
        finish_as = {"filled": "filled", "canceled": "cancelled", "new": "_new"}[status]
        if status == "filled" and order.kind == "adl":
            finish_as = "auto_deleveraged"
        size = self._signed_contracts(order)
        return {
            "id": order.id,
            "user": USER_ID,
            "contract": self.quote(order.symbol).market_id,
            "create_time": order.created_ms / 1000,
            "create_time_ms": order.created_ms,
            "finish_time": ms / 1000 if finished else 0,
            "finish_time_ms": ms if finished else 0,
            "finish_as": finish_as,
            "status": "finished" if finished else "open",
            "size": _size(size),
            "iceberg": 0,
            "price": _s(order.price),
            "fill_price": _s(fill) if fill is not None else "0",
            "left": 0 if status == "filled" else _size(size),
            "is_close": order.close_position,
            "is_reduce_only": order.reduce_only,
            "is_liq": order.kind == "liquidation",
            "tif": "ioc" if status == "filled" else "gtc",
            "text": text,
            "tkfr": "0.00075",
            "mkfr": "-0.0001",
            "refu": 0,
            "refr": "0",
            "stp_act": "-",
            "amend_text": "-",
        }

    def _price_order(self, order: AcctOrder, *, status: str) -> dict:
        closes = self._closing_side(order)
        whole = order.close_position
        if self.hedge_mode or order.position_side in ("LONG", "SHORT"):
            order_type = f"plan-close-{closes}-position" if whole else f"close-{closes}-order"
        else:
            order_type = f"close-{closes}-position" if whole else f"close-{closes}-order"
        falls = (closes == "long") == (order.kind in ("stop", "trailing"))
        auto = f"close_{closes}" if whole and self.hedge_mode else ""
        ms = now_ms()
        return {
            "id": order.id,
            "user": USER_ID,
            "trigger": {
                "strategy_type": 0,
                "price_type": 1,
                "price": _s(order.trigger),
                "rule": 2 if falls else 1,
                "expiration": 0,
            },
            "initial": {
                "contract": self.quote(order.symbol).market_id,
                "size": 0 if whole else _size(self._signed_contracts(order)),
                "price": "0",
                "tif": "ioc",
                "text": "api",
                "iceberg": 0,
                "is_close": whole and not self.hedge_mode,
                "is_reduce_only": True,
                "auto_size": auto,
            },
            "trade_id": 0,
            "status": "open" if status == "new" else "finished",
            "finish_as": {"new": "", "canceled": "cancelled", "filled": "succeeded"}[status],
            "reason": "",
            "create_time": order.created_ms // 1000,
            "finish_time": ms // 1000 if status != "new" else 0,
            "is_stop_order": False,
            "me_order_id": 0,
            "order_type": order_type,
        }

    @staticmethod
    def _is_trigger(order: AcctOrder) -> bool:
        return order.kind in ("stop", "take_profit", "trailing")

    # ---- REST -----------------------------------------------------------------------------
    def _check_auth(self, request: web.Request) -> None:
        headers = request.headers
        if headers.get("KEY") != self.api_key:
            self.auth_failures += 1
            raise RestError(401, {"label": "INVALID_KEY", "message": "Invalid key provided"})
        payload = "\n".join(
            [
                request.method,
                request.path,
                request.rel_url.raw_query_string,
                hashlib.sha512(b"").hexdigest(),
                headers.get("Timestamp", ""),
            ]
        )
        if not signature_ok(headers.get("SIGN", ""), self.secret, payload, algo=hashlib.sha512):
            self.auth_failures += 1
            raise RestError(401, {"label": "INVALID_SIGNATURE", "message": "Signature mismatch"})

    def _r_account_detail(self, request: web.Request) -> Any:
        self._check_auth(request)
        return {"user_id": USER_ID, "ip_whitelist": [], "currency_pairs": [],
                "key": {"mode": 1}, "tier": 0, "copy_trading_role": 0}  # fmt: skip

    def _r_positions(self, request: web.Request) -> Any:
        self._check_auth(request)
        return [self._position_entry(p) for p in self.positions.values()]

    def _r_accounts(self, request: web.Request) -> Any:
        self._check_auth(request)
        return self._account()

    def _r_orders(self, request: web.Request) -> Any:
        self._check_auth(request)
        if request.query.get("status") != "open":
            raise RestError(400, {"label": "INVALID_PARAM_VALUE", "message": "status"})
        return [
            self._plain_order(o, status="new", fill=None)
            for o in self.orders.values()
            if not self._is_trigger(o)
        ]

    def _r_price_orders(self, request: web.Request) -> Any:
        self._check_auth(request)
        if request.query.get("status") != "open":
            raise RestError(400, {"label": "INVALID_PARAM_VALUE", "message": "status"})
        return [
            self._price_order(o, status="new") for o in self.orders.values() if self._is_trigger(o)
        ]

    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {
        **StandinGate.rest_routes,
        ("GET", "/api/v4/account/detail"): _r_account_detail,
        ("GET", "/api/v4/futures/usdt/positions"): _r_positions,
        ("GET", "/api/v4/futures/usdt/accounts"): _r_accounts,
        ("GET", "/api/v4/futures/usdt/orders"): _r_orders,
        ("GET", "/api/v4/futures/usdt/price_orders"): _r_price_orders,
    }

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if not self._is_ws(request.path):
            self.record(request, "KEY" in request.headers)
        return await super()._dispatch(request)

    # ---- private websocket ----------------------------------------------------------------
    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        if not isinstance(message, dict) or message.get("channel") not in PRIVATE_CHANNELS:
            await super().on_ws_message(conn, message)
            return
        channel, event = message["channel"], message.get("event")
        ms = now_ms()
        base = {"time": ms // 1000, "time_ms": ms, "id": message.get("id"), "channel": channel}
        if event != "subscribe":
            await conn.send({**base, "event": event, "result": {"status": "success"}})
            return
        if not self.serve_private_ws:
            self.abort(conn)
            return
        auth = message.get("auth") if isinstance(message.get("auth"), dict) else {}
        signed = f"channel={channel}&event=subscribe&time={message.get('time')}"
        error = None
        if auth.get("KEY") != self.api_key:
            error = (4, "invalid key")
        elif not signature_ok(auth.get("SIGN", ""), self.secret, signed, algo=hashlib.sha512):
            error = (11, "signature mismatch")
        elif (message.get("payload") or [None])[0] != str(USER_ID):
            error = (2, "invalid argument: user id")
        if error is not None:
            if error[0] != 2:
                self.auth_failures += 1
            await conn.send(
                {**base, "event": "subscribe", "error": {"code": error[0], "message": error[1]},
                 "result": {"status": "failed"}}
            )  # fmt: skip
            return
        await conn.send({**base, "event": "subscribe", "result": {"status": "success"}})
        if conn not in self._private:
            await self.private_opened(conn)
        await self.subscribed(conn, [f"private:{channel}"])

    # ---- pushes ---------------------------------------------------------------------------
    def _frame(self, channel: str, result: list[Any]) -> dict[str, Any]:
        ms = now_ms()
        return {"time": ms // 1000, "time_ms": ms, "channel": channel, "event": "update",
                "result": result}  # fmt: skip

    async def push_positions(self, changed: list[AcctPosition]) -> int:
        frame = self._frame("futures.positions", [self._position_entry(p) for p in changed])
        return await self.send_private(frame, "private:futures.positions")

    async def push_balance(self) -> int:
        ms = now_ms()
        entry = {
            "balance": float(self.cross_wallet + self.isolated_total()),
            "change": "0",
            "text": "standin",
            "time": ms // 1000,
            "time_ms": ms,
            "type": "dnw",
            "user": str(USER_ID),
            "currency": "usdt",
        }
        return await self.send_private(
            self._frame("futures.balances", [entry]), "private:futures.balances"
        )

    async def push_order(
        self, order: AcctOrder, *, status: str, fill_price: Decimal | None = None
    ) -> int:
        sent = 0
        if self._is_trigger(order):
            # the price-triggered order: placed, cancelled, or fired (then its order fills)
            frame = self._frame("futures.autoorders", [self._price_order(order, status=status)])
            sent += await self.send_private(frame, "private:futures.autoorders")
            if status != "filled":
                return sent
            order = AcctOrder(order.id + 1, order.symbol, "market", order.side, order.amount,
                              position_side=order.position_side, reduce_only=True)  # fmt: skip
        frame = self._frame(
            "futures.orders", [self._plain_order(order, status=status, fill=fill_price)]
        )
        return sent + await self.send_private(frame, "private:futures.orders")
