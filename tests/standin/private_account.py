"""The futures account behind a venue stand-in's private endpoints, shared by the venues that
serve one (``tests/standin/<venue>_private.py``; Binance, Bybit and OKX keep their own, older
accounts but share :class:`PrivateSession`).

:class:`PrivateSession` is what every private stand-in records and refuses, whatever account is
behind it: the request ``log`` and ``writes()``, ``auth_failures``, the private sockets' count and
their abort, the subscriptions acked on them.

:class:`PrivateAccount` is a mixin for a :class:`~tests.standin.base.VenueStandin` subclass. It
holds one USDT-settled futures account whose state a test sets with the same vocabulary on every
venue (Binance's: amounts signed in base units, ``side`` ``BOTH`` in one-way mode, ``LONG`` /
``SHORT`` in hedge mode), and the bookkeeping the read-only assertions need:

- every request in ``log`` (method, path, credentials sent), ``writes()`` the ones that would
  change the account (anything but GET / HEAD), ``auth_failures``;
- the private websocket connections (``private_connects``, ``open_private_sockets``,
  :meth:`drop_private_sockets`, ``serve_private_ws = False`` to refuse new logins by closing
  the connection, as an exchange that is down would);
- the exchange's own liquidation price of a position (:meth:`liquidation_price`): the one-position
  closed form ``(W - TMM1 + UPNL1 + cum - amount*entry) / (|amount|*rate - amount)``, with the
  venue's rate (:meth:`mm_rate`: its maintenance margin rate, plus the close fee where the venue
  counts it), or a test's override.

The venue subclass supplies the wire shapes: ``push_positions``, ``push_balance``,
``push_order`` (what the exchange pushes on its private stream when the account changes).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from tests.standin.base import WsConn, abort_all, now_ms, send_each

__all__ = [
    "KINDS",
    "AcctOrder",
    "AcctPosition",
    "PrivateAccount",
    "PrivateSession",
    "decimal_text",
    "liquidation_price",
]


def decimal_text(value: Decimal) -> str:
    """A plain decimal string as venues send them (no exponent, no trailing zeros)."""
    return format(value.normalize(), "f") if value else "0"


def liquidation_price(
    wallet: Decimal,
    amount: Decimal,
    entry: Decimal,
    rate: Decimal,
    cum: Decimal = Decimal(0),
    *,
    other_mm: Decimal = Decimal(0),
    other_upnl: Decimal = Decimal(0),
) -> Decimal | None:
    """The price where ``wallet + uPnL`` meets the requirement ``|amount| * price * rate - cum``
    (one position; ``other_*`` the other cross positions at the current mark). None if <= 0."""
    denominator = abs(amount) * rate - amount
    if not denominator:
        return None
    price = (wallet - other_mm + other_upnl + cum - amount * entry) / denominator
    return price.quantize(Decimal("0.01")) if price > 0 else None


#: Binance's order types and close ``how`` (the stand-ins' shared vocabulary) -> order kind
KINDS = {
    "LIMIT": "limit",
    "MARKET": "market",
    "STOP": "stop",
    "STOP_MARKET": "stop",
    "TAKE_PROFIT": "take_profit",
    "TAKE_PROFIT_MARKET": "take_profit",
    "TRAILING_STOP_MARKET": "trailing",
    "LIQUIDATION": "liquidation",
    "ADL": "adl",
}


@dataclass
class AcctPosition:
    """``amount`` signed, in base units; ``side`` BOTH (one-way), LONG or SHORT (hedge)."""

    symbol: str  # unified
    side: str
    amount: Decimal
    entry: Decimal
    isolated_wallet: Decimal = Decimal(0)  # > 0 only for isolated positions
    id: int = 0
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)

    @property
    def hold_side(self) -> str:
        """``long`` / ``short``: the side it is, whatever the position mode."""
        if self.side in ("LONG", "SHORT"):
            return self.side.lower()
        return "long" if self.amount > 0 else "short"


@dataclass
class AcctOrder:
    """An open or just-finished order. ``kind``: ``limit``, ``market``, ``stop``,
    ``take_profit``, ``trailing``, ``liquidation``, ``adl``; amounts in base units."""

    id: int
    symbol: str
    kind: str
    side: str  # buy | sell
    amount: Decimal
    trigger: Decimal = Decimal(0)
    price: Decimal = Decimal(0)
    position_side: str = "BOTH"
    reduce_only: bool = False
    close_position: bool = False  # a whole-position stop / take-profit
    created_ms: int = field(default_factory=now_ms)


class PrivateSession:
    """The bookkeeping of a private stand-in (see the module docstring); call
    :meth:`init_session` from the subclass ``__init__``. ``_private`` holds the private
    connections (a set, or a dict keyed by them); a venue whose private sockets live elsewhere
    overrides :attr:`open_private_sockets` and :meth:`drop_private_sockets`."""

    #: requests that change nothing on the account though they are no GET (Binance's listen key)
    not_writes: ClassVar[tuple[str, ...]] = ()

    # provided by the stand-in
    subscriptions: Any
    _private: Any
    cross_wallet: Decimal
    liquidation_override: dict[tuple[str, str], Decimal]
    if TYPE_CHECKING:

        async def _notify(self) -> None: ...

        def market_id(self, symbol: str) -> str: ...

        async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None: ...

    def init_session(self, *, api_key: str, secret: str) -> None:
        self.api_key = api_key
        self.secret = secret
        self.log: list[tuple[str, str, bool]] = []  # (method, path, API key sent)
        self.auth_failures = 0
        self.serve_private_ws = True  # False: refuse private logins, as a venue that is down

    def record(self, request: web.Request, authed: bool) -> None:
        self.log.append((request.method, request.path, authed))

    def writes(self) -> list[tuple[str, str]]:
        """Requests that would change the account: anything but a read (or a ``not_writes``)."""
        return [
            (m, p)
            for m, p, _k in self.log
            if m not in ("GET", "HEAD", "OPTIONS") and p not in self.not_writes
        ]

    def private_requests(self, path: str) -> int:
        return sum(1 for _m, p, _k in self.log if p == path)

    @property
    def private_subscriptions(self) -> int:
        """Private channel subscriptions acked so far (all connections)."""
        return sum(n for t, n in self.subscriptions.items() if t.startswith("private:"))

    @property
    def open_private_sockets(self) -> int:
        return len(self._private)

    async def wait_private(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        await self.wait_for(predicate, timeout)

    async def drop_private_sockets(self) -> int:
        """Abort the private websocket connections (TCP level, no close frame)."""
        conns = list(self._private)
        self._private.clear()
        abort_all(conns)
        await self._notify()
        return len(conns)

    @staticmethod
    def abort(conn: WsConn) -> None:
        abort_all([conn])

    # ---- the controls every account shares (the Binance stand-in's vocabulary) -------------
    def position_key(self, symbol: str) -> str:
        """How ``positions`` and ``liquidation_override`` name ``symbol``: its market id."""
        return self.market_id(symbol)

    async def push_balance(self) -> int:
        """Push what the venue pushes when the wallet changes; frames sent."""
        raise NotImplementedError

    async def set_wallet(self, cross_wallet: Decimal | str, *, push: bool = True) -> None:
        self.cross_wallet = Decimal(cross_wallet)
        if push:
            await self.push_balance()

    def set_liquidation_price(
        self, symbol: str, price: Decimal | str, *, side: str = "BOTH"
    ) -> None:
        """Report ``price`` as the exchange's liquidation price instead of the formula's."""
        self.liquidation_override[(self.position_key(symbol), side)] = Decimal(price)


class PrivateAccount(PrivateSession):
    """See the module docstring: the first base of a venue's private stand-in, before its
    :class:`~tests.standin.base.VenueStandin` subclass; ``keys`` are the venue's defaults."""

    #: the keys the stand-in accepts unless given others: (API key, secret, password or None)
    keys: ClassVar[tuple[str, str, str | None]] = ("", "", None)

    # provided by VenueStandin
    quotes: dict[str, Any]
    frames_sent: Any
    if TYPE_CHECKING:

        def contract_size(self, symbol: str) -> Decimal: ...

    def __init__(
        self,
        symbols: Iterable[str] = ("BTC/USDT:USDT", "ETH/USDT:USDT"),
        *,
        api_key: str | None = None,
        secret: str | None = None,
        password: str | None = None,
        wallet: Decimal | str = "10000",
        leverage: int = 20,
        **kw: Any,
    ) -> None:
        super().__init__(symbols, **kw)  # the venue stand-in, next in the MRO
        default_key, default_secret, default_password = self.keys
        self.init_session(
            api_key=default_key if api_key is None else api_key,
            secret=default_secret if secret is None else secret,
        )
        self.password = default_password if password is None else password
        self.cross_wallet = Decimal(wallet)
        self.hedge_mode = False
        self.positions: dict[tuple[str, str], AcctPosition] = {}
        self.orders: dict[int, AcctOrder] = {}
        self.leverage: dict[str, int] = {sym: leverage for sym in self.quotes}
        self.margin_mode: dict[str, str] = {sym: "cross" for sym in self.quotes}
        self.liquidation_override: dict[tuple[str, str], Decimal] = {}
        self.private_connects = 0
        self._private: set[WsConn] = set()
        self._ids = itertools.count(7_000_001)

    # ---- venue hooks ----------------------------------------------------------------------
    def mm_rate(self, symbol: str, notional: Decimal) -> tuple[Decimal, Decimal]:
        """(rate, cum) of the liquidation requirement at ``notional`` (see module docstring)."""
        raise NotImplementedError

    async def push_positions(self, changed: list[AcctPosition]) -> int:
        raise NotImplementedError

    async def push_order(
        self, order: AcctOrder, *, status: str, fill_price: Decimal | None = None
    ) -> int:
        """``status``: ``new``, ``filled`` or ``canceled``."""
        raise NotImplementedError

    # ---- what the daemon did --------------------------------------------------------------
    @property
    def private_channels(self) -> int:
        """Private channels a follower subscribes."""
        return len(self.private_topics)

    #: the topics (as ``conn.topics`` holds them) of every private stream the mirror watches
    private_topics: tuple[str, ...] = ()

    def private_streaming(self) -> bool:
        """A private connection is open with every private stream subscribed."""
        return any(set(self.private_topics) <= conn.topics for conn in self._private)

    async def wait_private_streaming(self, timeout: float = 20.0) -> None:
        await self.wait_for(self.private_streaming, timeout)

    async def private_opened(self, conn: WsConn) -> None:
        self._private.add(conn)
        self.private_connects += 1
        await self._notify()

    def on_ws_close(self, conn: WsConn) -> None:
        self._private.discard(conn)

    async def send_private(
        self, payload: Any, topic: str, only: Iterable[WsConn] | None = None
    ) -> int:
        """Send ``payload`` to the private connections subscribed to ``topic``."""
        conns = only if only is not None else self._private
        sent = await send_each(conns, payload, lambda conn: topic in conn.topics)
        if sent:
            self.frames_sent[topic] += sent
        return sent

    # ---- account controls -----------------------------------------------------------------
    # The Binance stand-in's vocabulary (tests/standin/binance_private.py), so the per-venue
    # mirror tests drive every venue alike: amounts in ccxt contracts (converted here to the
    # base units the account keeps), order types and close ``how`` in Binance's names.

    def base_amount(self, symbol: str, contracts: Decimal | str) -> Decimal:
        return Decimal(contracts) * self.contract_size(symbol)

    def position_key(self, symbol: str) -> str:
        return symbol  # this account keeps unified symbols

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
    ) -> AcctPosition:
        """Open or replace a position (0 closes it), ``amount`` in contracts; pushes what the
        venue pushes (the position, then the account)."""
        amount = self.base_amount(symbol, amount)
        if margin is not None:
            self.margin_mode[symbol] = margin
        if leverage is not None:
            self.leverage[symbol] = leverage
        if side != "BOTH":
            self.hedge_mode = True
        previous = self.positions.get((symbol, side))
        pos = AcctPosition(
            symbol,
            side,
            Decimal(amount),
            Decimal(entry) if Decimal(amount) else Decimal(0),
            Decimal(isolated_wallet) if self.margin_mode[symbol] == "isolated" else Decimal(0),
            id=previous.id if previous else next(self._ids),
            created_ms=previous.created_ms if previous else now_ms(),
        )
        if pos.amount:
            self.positions[(symbol, side)] = pos
        else:
            self.positions.pop((symbol, side), None)
            self.liquidation_override.pop((symbol, side), None)
        if push:
            await self.push_positions([pos])
            await self.push_balance()
        return pos

    async def close_position(self, symbol: str, *, side: str = "BOTH", how: str = "MARKET") -> None:
        """Close a position the way ``how`` says (``MARKET``: a manual close, ``STOP_MARKET``,
        ``TAKE_PROFIT_MARKET``, ``LIQUIDATION``, ``ADL``) and push what the venue pushes: the
        closing order, filled, then the position gone and the account."""
        pos = self.positions[(symbol, side)]
        order = AcctOrder(
            next(self._ids),
            symbol,
            KINDS[how],
            "sell" if pos.amount > 0 else "buy",
            abs(pos.amount),
            position_side=side,
            reduce_only=True,
        )
        await self.push_order(order, status="filled", fill_price=self.mark(symbol))
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
    ) -> AcctOrder:
        """An open order: ``type_`` in Binance's names (``LIMIT``, ``STOP_MARKET``,
        ``TAKE_PROFIT_MARKET``, ``TRAILING_STOP_MARKET``), ``quantity`` in contracts."""
        order = AcctOrder(
            next(self._ids),
            symbol,
            KINDS[type_],
            side.lower(),
            self.base_amount(symbol, quantity),
            Decimal(trigger),
            Decimal(price),
            position_side,
            reduce_only,
            close_position,
        )
        self.orders[order.id] = order
        if push:
            await self.push_order(order, status="new")
        return order

    async def cancel_order(self, order_id: int, *, push: bool = True) -> None:
        order = self.orders.pop(order_id)
        if push:
            await self.push_order(order, status="canceled")

    # ---- computed figures -----------------------------------------------------------------
    def mark(self, symbol: str) -> Decimal:
        return Decimal(self.quotes[symbol].mark)

    def upnl(self, pos: AcctPosition) -> Decimal:
        return pos.amount * (self.mark(pos.symbol) - pos.entry)

    def mm(self, pos: AcctPosition) -> Decimal:
        notional = abs(pos.amount) * self.mark(pos.symbol)
        rate, cum = self.mm_rate(pos.symbol, notional)
        return notional * rate - cum

    def liquidation_price(self, symbol: str, side: str = "BOTH") -> Decimal | None:
        key = (symbol, side)
        if key in self.liquidation_override:
            return self.liquidation_override[key]
        pos = self.positions[key]
        rate, cum = self.mm_rate(symbol, abs(pos.amount) * self.mark(symbol))
        if pos.isolated_wallet:
            return liquidation_price(pos.isolated_wallet, pos.amount, pos.entry, rate, cum)
        others = [p for k, p in self.positions.items() if k != key and not p.isolated_wallet]
        return liquidation_price(
            self.cross_wallet,
            pos.amount,
            pos.entry,
            rate,
            cum,
            other_mm=sum((self.mm(p) for p in others), Decimal(0)),
            other_upnl=sum((self.upnl(p) for p in others), Decimal(0)),
        )

    def total_upnl(self) -> Decimal:
        return sum((self.upnl(p) for p in self.positions.values()), Decimal(0))

    def isolated_total(self) -> Decimal:
        return sum((p.isolated_wallet for p in self.positions.values()), Decimal(0))

    def equity(self) -> Decimal:
        """Cross wallet + isolated wallets + every uPnL."""
        return self.cross_wallet + self.isolated_total() + self.total_upnl()

    def initial_margin(self) -> Decimal:
        return sum(
            (
                abs(p.amount) * self.mark(p.symbol) / self.leverage[p.symbol]
                for p in self.positions.values()
            ),
            Decimal(0),
        )
