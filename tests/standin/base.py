"""What every venue stand-in shares: the local server, per-symbol quotes, subscriptions, faults.

A venue stand-in (``tests/standin/<venue>.py``) subclasses :class:`VenueStandin` and supplies:

* ``rest_routes``: ``{(method, path): handler}``; a handler gets the request and returns the JSON
  body (the base wraps it; a :class:`RestError` becomes that status and body);
* ``on_ws_message(conn, message)``: the venue's subscribe/ack/ping protocol; subscribed topics go
  into ``conn.topics`` through :meth:`subscribed`;
* ``on_ws_open(conn)`` (optional): what the venue sends first on a new socket (a welcome);
  ``on_ws_close(conn)`` (optional): what the stand-in forgets when a socket ends;
* ``count_protocol_pings`` (optional): answer websocket protocol pings here and count them in
  ``pings``, for a venue that ccxt keeps alive with protocol pings only (Gate);
* ``frames(symbol, kinds)``: ``(topic, payload)`` pairs to push when a quote changes;
* ``ccxt_config()``: the constructor config that points the real ccxt class at the server;
* ``stream_topics(symbol)``: the topics a guardbot feed subscribes to for ``symbol`` (tests wait
  for them).

The server listens on 127.0.0.1 (ephemeral port). Frames are pushed only when a test changes a
quote (``set_price``) or on the venue's own subscribe snapshot, never on a timer. Paths nobody
serves answer 404 and are recorded in ``unknown_paths``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import TracebackType
from typing import Any, ClassVar, Self

from aiohttp import WSMsgType, web

__all__ = [
    "KINDS",
    "Quote",
    "RestError",
    "RestHandler",
    "VenueStandin",
    "WsConn",
    "abort_all",
    "hmac_digest",
    "hour_grid_ms",
    "local_urls",
    "now_ms",
    "send_each",
    "signature_ok",
]

Number = str | int | float | Decimal

#: What a quote change can touch: the mark (and index), the best bid/ask, the last trade, funding.
KINDS = ("mark", "book", "ticker", "funding")


def now_ms() -> int:
    return int(time.time() * 1000)


def hour_grid_ms(hours: int, ts: int | None = None) -> int:
    """The next UTC multiple of ``hours`` after ``ts`` (now), in ms: a venue's next funding time."""
    step = hours * 3_600_000
    return ((now_ms() if ts is None else ts) // step + 1) * step


def local_urls(api: Any, rest_root: str, ws_root: str) -> Any:
    """A ccxt ``urls['api']`` tree with every ``https://host`` / ``wss://host`` replaced by the
    stand-in's root, paths kept (so the stand-in serves the venue's own paths)."""
    if isinstance(api, dict):
        return {k: local_urls(v, rest_root, ws_root) for k, v in api.items()}
    if isinstance(api, str) and "://" in api:
        scheme, rest = api.split("://", 1)
        path = "/" + rest.split("/", 1)[1] if "/" in rest else ""
        return (ws_root if scheme.startswith("ws") else rest_root) + path
    return api


def hmac_digest(secret: str, payload: str, *, algo: Any = hashlib.sha256, b64: bool = False) -> str:
    """HMAC of ``payload`` under ``secret``: hex digits, or base64 where the venue signs so."""
    mac = hmac.new(secret.encode(), payload.encode(), algo)
    return base64.b64encode(mac.digest()).decode() if b64 else mac.hexdigest()


def signature_ok(sent: Any, secret: str, payload: str, **how: Any) -> bool:
    """Whether ``sent`` is the signature of ``payload`` (``how``: see :func:`hmac_digest`)."""
    return hmac.compare_digest(str(sent), hmac_digest(secret, payload, **how))


def abort_all(conns: Iterable[Any]) -> int:
    """Abort each websocket connection at the TCP level (no close frame); how many."""
    count = 0
    for conn in conns:
        transport = conn.request.transport
        if transport is not None:
            transport.abort()
        count += 1
    return count


async def send_each(
    conns: Iterable[Any], payload: Any, wanted: Callable[[Any], bool] = lambda _c: True
) -> int:
    """Send ``payload`` (text, or JSON of it) to each open connection ``wanted`` accepts; how
    many took it (one closing meanwhile is skipped, as a venue drops a frame to a gone socket)."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    sent = 0
    for conn in list(conns):
        if not wanted(conn) or conn.ws.closed:
            continue
        try:
            await conn.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            continue
        sent += 1
    return sent


def _text(value: Number) -> str:
    return repr(value) if isinstance(value, float) else str(value)


@dataclass
class Quote:
    """One contract's market state; prices are decimal strings, as venues send them."""

    symbol: str  # unified
    market_id: str  # the venue's id
    mark: str
    index: str
    last: str
    bid: str
    ask: str
    bid_size: str = "5"
    ask_size: str = "5"
    funding_rate: str = "0.0001"
    funding_interval_h: int = 8
    next_funding_time: int = 0
    volume: str = "1000"
    seq: int = 1
    updated_ms: int = field(default_factory=now_ms)

    def __post_init__(self) -> None:
        if not self.next_funding_time:
            self.next_funding_time = hour_grid_ms(self.funding_interval_h)

    def quote_volume(self) -> str:
        return str(Decimal(self.volume) * Decimal(self.last))


class RestError(Exception):
    """Raised by a REST handler: answer ``status`` with ``body``."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass(eq=False)
class WsConn:
    ws: web.WebSocketResponse
    request: web.Request
    path: str
    topics: set[str] = field(default_factory=set)

    async def send(self, payload: Any) -> None:
        await self.ws.send_str(payload if isinstance(payload, str) else json.dumps(payload))


RestHandler = Callable[[Any, web.Request], Any]


class VenueStandin:
    """See the module docstring. Use as ``async with StandinX() as venue``."""

    #: ccxt exchange id the stand-in speaks for.
    exchange_id = ""
    #: ``{(method, path): handler(self, request) -> JSON body}``
    rest_routes: ClassVar[Mapping[tuple[str, str], RestHandler]] = {}
    #: Path prefixes served as websockets.
    ws_paths: tuple[str, ...] = ()
    #: Answer (and count) websocket protocol pings here instead of in aiohttp.
    count_protocol_pings: ClassVar[bool] = False

    def __init__(self, quotes: Iterable[Quote], *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port: int | None = None
        self.quotes: dict[str, Quote] = {q.symbol: q for q in quotes}
        self.requests: Counter[str] = Counter()  # REST path -> count (ws upgrades included)
        self.unknown_paths: list[str] = []
        self.subscriptions: Counter[str] = Counter()  # topic -> number of subscribes
        self.frames_sent: Counter[str] = Counter()  # topic -> frames pushed
        self.ws_connects: Counter[str] = Counter()
        self.ws_messages: list[Any] = []  # every parsed client message, in order
        self.pings = 0
        self.refused = False
        self._conns: set[WsConn] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # ---- venue hooks ----------------------------------------------------------------------
    async def on_ws_open(self, conn: WsConn) -> None:
        """Sent on every new socket before anything is read (nothing by default)."""

    def on_ws_close(self, conn: WsConn) -> None:
        """Called when a socket ends, before waiters are woken (nothing by default)."""

    async def on_ws_message(self, conn: WsConn, message: Any) -> None:
        raise NotImplementedError

    def frames(self, quote: Quote, kinds: Iterable[str]) -> list[tuple[str, Any]]:
        raise NotImplementedError

    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        raise NotImplementedError

    def stream_topics(self, symbol: str) -> list[str]:
        raise NotImplementedError

    def contract_size(self, symbol: str) -> Decimal:
        """The contract size ccxt reports for ``symbol`` (base units per contract)."""
        raise NotImplementedError

    def tier_caps(self, symbol: str) -> list[Decimal]:
        """The caps of the tier table the stand-in serves for ``symbol``, as guardbot reads it."""
        raise NotImplementedError

    def decode(self, data: str | bytes) -> Any:
        """A client message as the venue reads it (JSON; some venues also take plain text)."""
        return json.loads(data)

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        await self.drop_websockets()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def rest_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        return f"http://{self.host}:{self.port}"

    @property
    def ws_root(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        return f"ws://{self.host}:{self.port}"

    # ---- test controls --------------------------------------------------------------------
    def quote(self, symbol: str) -> Quote:
        for q in self.quotes.values():
            if symbol in (q.symbol, q.market_id):
                return q
        raise KeyError(f"stand-in does not list {symbol!r}")

    async def set_price(
        self,
        symbol: str,
        *,
        mark: Number | None = None,
        index: Number | None = None,
        bid: Number | None = None,
        ask: Number | None = None,
        last: Number | None = None,
        funding_rate: Number | None = None,
        next_funding_time: int | None = None,
    ) -> int:
        """Change a quote and push the venue's frames for what changed; frames sent."""
        q = self.quote(symbol)
        kinds: list[str] = []
        if mark is not None or index is not None:
            if mark is not None:
                q.mark = _text(mark)
                q.index = _text(index) if index is not None else q.mark
            else:
                assert index is not None
                q.index = _text(index)
            kinds.append("mark")
        if bid is not None or ask is not None:
            q.bid = _text(bid) if bid is not None else q.bid
            q.ask = _text(ask) if ask is not None else q.ask
            q.seq += 1
            kinds.append("book")
        if last is not None:
            q.last = _text(last)
            kinds.append("ticker")
        if funding_rate is not None or next_funding_time is not None:
            q.funding_rate = _text(funding_rate) if funding_rate is not None else q.funding_rate
            q.next_funding_time = next_funding_time or q.next_funding_time
            kinds.append("funding")
        q.updated_ms = now_ms()
        return await self.push(q.symbol, kinds)

    async def push(self, symbol: str, kinds: Iterable[str] = KINDS) -> int:
        q = self.quote(symbol)
        sent = 0
        for topic, payload in self.frames(q, list(kinds)):
            sent += await self.broadcast(topic, payload)
        return sent

    async def drop_websockets(self) -> int:
        """Abort every websocket connection at the TCP level (no close frame)."""
        conns = list(self._conns)
        self._conns.clear()
        count = abort_all(conns)
        await self._notify()
        return count

    def refuse_connections(self, on: bool = True) -> None:
        """While on, every REST request and websocket upgrade is answered 503."""
        self.refused = on

    @property
    def open_websockets(self) -> int:
        return len(self._conns)

    def subscribed_topics(self) -> set[str]:
        return {t for conn in self._conns for t in conn.topics}

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds; re-checked on every subscription/connection change."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def wait_subscribed(self, topic: str, count: int = 1, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: self.subscriptions[topic] >= count, timeout)

    async def wait_streaming(self, symbols: Iterable[str], timeout: float = 10.0) -> None:
        """Wait until every topic the feed needs for ``symbols`` is subscribed on an open socket."""
        wanted = {t for s in symbols for t in self.stream_topics(s)}
        await self.wait_for(lambda: wanted <= self.subscribed_topics(), timeout)

    def subscribe_counts(self, symbols: Iterable[str]) -> dict[str, int]:
        return {t: self.subscriptions[t] for s in symbols for t in self.stream_topics(s)}

    # ---- for venue subclasses -------------------------------------------------------------
    async def subscribed(self, conn: WsConn, topics: Iterable[str]) -> None:
        """Record topics as subscribed on ``conn`` (after the ack was sent: a test that sees the
        counter move knows the client has its ack)."""
        topics = list(topics)
        conn.topics.update(topics)
        self.subscriptions.update(topics)
        await self._notify()

    async def answer_text_ping(self, conn: WsConn, message: Any) -> bool:
        """Answer a text ``ping`` with ``pong`` and count it (OKX's and Bitget's keep-alive);
        whether ``message`` was one."""
        if message != "ping":
            return False
        self.pings += 1
        await conn.send("pong")
        return True

    async def unsubscribed(self, conn: WsConn, topics: Iterable[str]) -> None:
        conn.topics.difference_update(topics)
        await self._notify()

    async def broadcast(self, topic: str, payload: Any) -> int:
        sent = await send_each(self._conns, payload, lambda conn: topic in conn.topics)
        if sent:
            self.frames_sent[topic] += sent
        return sent

    def query_symbol(self, request: web.Request, key: str = "symbol") -> Quote | None:
        """The quote a ``?symbol=`` style parameter names (``None`` when absent)."""
        value = request.query.get(key)
        if value is None or value == "":
            return None
        try:
            return self.quote(value)
        except KeyError:
            raise RestError(400, self.bad_symbol_body(value)) from None

    def bad_symbol_body(self, market_id: str) -> Any:
        return {"error": f"unknown symbol {market_id}"}

    # ---- internals ------------------------------------------------------------------------
    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _is_ws(self, path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.ws_paths)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests[path] += 1
        if self.refused:
            return web.Response(status=503, text="Service Unavailable")
        if self._is_ws(path) and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        handler = self.rest_routes.get((request.method, path))
        if handler is None:
            self.unknown_paths.append(f"{request.method} {request.path_qs}")
            return web.json_response({"error": "path not found (stand-in)"}, status=404)
        try:
            body = handler(self, request)
            if isinstance(body, Awaitable):
                body = await body
        except RestError as exc:
            return web.json_response(exc.body, status=exc.status)
        return web.json_response(body)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        # autoping (the default): aiohttp answers protocol-level pings with pongs
        ws = web.WebSocketResponse(autoping=not self.count_protocol_pings)
        await ws.prepare(request)
        conn = WsConn(ws=ws, request=request, path=request.path)
        self._conns.add(conn)
        self.ws_connects[request.path] += 1
        await self._notify()
        try:
            await self.on_ws_open(conn)
            async for msg in ws:
                if msg.type == WSMsgType.PING and self.count_protocol_pings:
                    self.pings += 1
                    await ws.pong(msg.data)
                    continue
                if msg.type == WSMsgType.CLOSE:
                    await ws.close()
                    break
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    message = self.decode(msg.data)
                except ValueError:
                    await conn.send({"error": "invalid JSON (stand-in)"})
                    continue
                self.ws_messages.append(message)
                await self.on_ws_message(conn, message)
        finally:
            self._conns.discard(conn)
            self.on_ws_close(conn)
            await self._notify()
        return ws
