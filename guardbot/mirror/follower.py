"""Follow one exchange account, read-only: private streams for speed, REST for truth.

:class:`MirrorFollower` owns nothing but reading. Through one ccxt.pro instance built with the
account's keys it:

- takes a complete REST picture (positions, balance, open orders including stops, leverage and
  margin mode, position mode) at start, after every reconnect of the private stream, and every
  ``poll_s`` as a reconciliation;
- applies the private streams (``watch_positions``, ``watch_balance``, ``watch_orders``) as they
  come, and refreshes the positions over REST ``refresh_s`` after a stream change, for the
  exchange's liquidation price the stream does not carry;
- yields a :class:`~guardbot.core.mirror.MirrorCmd` each time the account changed.

It calls no endpoint that writes (the Binance listen key, which ccxt creates and keeps alive for
the user data stream, is the only non-GET request). Keys never leave the ccxt instance: error
texts are cleaned of them and of URL query strings before they are shown.

Rejected keys (ccxt ``AuthenticationError`` / ``PermissionDenied``) end the follower with one
:class:`MirrorAuthError` naming the account: retrying cannot help and would only hammer the
exchange. Network and exchange errors are retried with jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import random as _random
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from functools import partial
from types import TracebackType
from typing import Any, Self

import structlog

from guardbot.core.mirror import MirrorCmd
from guardbot.errors import GuardbotError
from guardbot.mirror.book import AccountBook
from guardbot.mirror.venues import MirrorVenue
from guardbot.runtime.backoff import backoff_delay

__all__ = ["MirrorAuthError", "MirrorFollower", "clean_error"]

_log = structlog.get_logger("guardbot.mirror")


class MirrorAuthError(GuardbotError):
    """The exchange refused the account's keys (the message names the account, not the key)."""

    def __init__(self, account: str, reason: str) -> None:
        self.account = account
        self.reason = reason
        super().__init__(f"mirror account {account!r}: the exchange refused its API key: {reason}")


def clean_error(exc: BaseException, secrets: tuple[str | None, ...] = ()) -> str:
    """``Type: message`` without URL query strings (signatures, listen keys) or key values."""
    text = f"{type(exc).__name__}: {exc}"
    text = re.sub(r"\?\S*", "?…", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:300]


class MirrorFollower:
    """See the module docstring: ``async with`` it, then ``async for cmd in f.updates()``.

    ``exchange`` is a ccxt.pro instance with the account's credentials, closed by the caller.
    """

    def __init__(
        self,
        account: str,
        exchange: Any,
        venue: MirrorVenue,
        *,
        poll_s: float = 30.0,
        refresh_s: float = 2.0,
        random: Callable[[], float] = _random.random,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.account = account
        self.exchange = exchange
        self.venue = venue
        self.poll_s = poll_s
        self.refresh_s = refresh_s
        self._random = random
        self._sleep = sleep
        self.book = AccountBook(account, venue)
        self._queue: asyncio.Queue[MirrorCmd | BaseException] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._resync = False
        self._refresh_at: float | None = None
        #: a stream said the account changed without saying how (stream_triggers_rest)
        self._full_soon = False
        self._full_at: float | None = None
        self._last: MirrorCmd | None = None
        self._failed: MirrorAuthError | None = None
        #: (id, status, filled) of the order updates applied, so ccxt's cache is read once each
        self._seen_orders: set[tuple[Any, Any, Any]] = set()
        # observable counters (status, metrics, tests)
        self.connects = 0
        self.rest_full = 0
        self.rest_positions = 0
        self.stream_updates = 0
        self.stream_resets = 0
        self.errors = 0
        self.last_error: str | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        self._hook_connections()
        watchers = {"positions": self._watch_positions, "balance": self._watch_balance}
        self._tasks = [
            asyncio.create_task(self._reconcile_loop(), name=f"mirror-{self.account}-rest"),
            *(
                asyncio.create_task(
                    self._watch(what, watchers[what]), name=f"mirror-{self.account}-{what}"
                )
                for what in self.venue.streams
            ),
        ]
        # one task per order stream of the venue (OKX: plain orders and algo orders)
        for i, stream in enumerate(self.venue.order_streams(self.exchange)):
            what = "orders" if i == 0 else f"orders-{i}"
            self._tasks.append(
                asyncio.create_task(
                    self._watch(what, partial(self._watch_orders, stream)),
                    name=f"mirror-{self.account}-{what}",
                )
            )
        for task in self._tasks:
            task.add_done_callback(self._task_done)
        return self

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A reading task that died of an unexpected error ends :meth:`updates` with it: a
        mirror that silently stopped following would be worse than a loud failure."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._queue.put_nowait(exc)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def updates(self) -> AsyncGenerator[MirrorCmd, None]:
        """Each change of the account; raises :class:`MirrorAuthError` when the keys are refused."""
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    def status(self) -> dict[str, Any]:
        state = (
            "failed"
            if self._failed is not None
            else "connecting"
            if not self._ready.is_set()
            else "following"
        )
        return {
            "state": state,
            "connects": self.connects,
            "restReconciles": self.rest_full,
            "restPositionRefreshes": self.rest_positions,
            "streamUpdates": self.stream_updates,
            "errors": self.errors,
            "lastError": self.last_error,
        }

    # ---- internals -----------------------------------------------------------------------
    def _secrets(self) -> tuple[str | None, ...]:
        ex = self.exchange
        return (
            getattr(ex, "apiKey", None),
            getattr(ex, "secret", None),
            getattr(ex, "password", None),
        )

    def _hook_connections(self) -> None:
        """Count private-stream (re)connections through ccxt's ``on_connected`` user hook: a
        socket's connection after its first is a reconnect, after which a REST picture is due
        (a venue may have more than one private socket: OKX's algo orders have their own)."""
        original = getattr(self.exchange, "on_connected", None)
        urls: set[str] = set()

        def on_connected(client: Any, message: Any = None) -> None:
            if original is not None:
                original(client, message)
            self.connects += 1
            url = str(getattr(client, "url", ""))
            if url in urls:
                self._resync = True
                self._wake.set()
            urls.add(url)

        self.exchange.on_connected = on_connected
        self.venue.attach(self.exchange, self._stream_reset)

    def _stream_reset(self, why: str) -> None:
        """The venue said the private stream's session ended (Binance: ``listenKeyExpired``):
        what happened meanwhile is only known to REST."""
        self.stream_resets += 1
        _log.info("mirror stream session ended; reconciling", account=self.account, why=why)
        self._resync = True
        self._wake.set()

    def _fail(self, exc: BaseException) -> None:
        if self._failed is not None:
            return
        self._failed = MirrorAuthError(self.account, clean_error(exc, self._secrets()))
        _log.error(
            "mirror keys refused; following stopped",
            account=self.account,
            reason=self._failed.reason,
        )
        self._queue.put_nowait(self._failed)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()

    def _note_error(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = clean_error(exc, self._secrets())
        _log.warning(
            "mirror read failed; retrying", account=self.account, what=what, error=self.last_error
        )

    def _emit(self, source: str) -> None:
        cmd = self.book.command(source)
        if cmd is None:
            return
        if cmd.same_state(self._last) and not cmd.closes:
            return
        self._last = cmd
        self._queue.put_nowait(cmd)

    async def _full(self) -> None:
        ex = self.exchange
        if not ex.markets:
            await ex.load_markets()
        settings = await self.venue.fetch_settings(ex)
        hedged = await self.venue.fetch_hedged(ex)
        balance = await ex.fetch_balance()
        orders = await self.venue.fetch_open_orders(ex)
        positions = await ex.fetch_positions()
        self._orders_from_cache()
        self.book.apply_rest(
            positions=positions, balance=balance, orders=orders, settings=settings, hedged=hedged
        )
        self.rest_full += 1
        self._emit("rest")
        self._ready.set()
        await self.venue.maintain(ex)

    async def _positions_only(self) -> None:
        positions = await self.exchange.fetch_positions()
        self._orders_from_cache()
        self.book.apply_rest(positions=positions)
        self.rest_positions += 1
        self._emit("rest")

    async def _reconcile_loop(self) -> None:
        import ccxt

        loop = asyncio.get_running_loop()
        attempt = 0
        next_full = loop.time()
        while True:
            now = loop.time()
            try:
                if (
                    self._resync
                    or now >= next_full
                    or (self._full_at is not None and now >= self._full_at)
                ):
                    self._resync = False
                    self._full_at = None
                    await self._full()
                    next_full = loop.time() + self.poll_s
                elif self._refresh_at is not None and now >= self._refresh_at:
                    self._refresh_at = None
                    await self._positions_only()
                attempt = 0
            except (ccxt.AuthenticationError, ccxt.PermissionDenied) as exc:
                self._fail(exc)
                return
            except ccxt.BaseError as exc:
                self._note_error("rest", exc)
                self._resync = True
                await self._sleep(backoff_delay(attempt, self._random))
                attempt += 1
                continue
            if self.book.needs_positions and self._refresh_at is None:
                self._refresh_at = loop.time() + self.refresh_s
            if self._full_soon and self._full_at is None:
                # one picture for a burst of pushes, refresh_s after the first
                self._full_soon = False
                self._full_at = loop.time() + self.refresh_s
            deadline = min(t for t in (next_full, self._refresh_at, self._full_at) if t is not None)
            self._wake.clear()
            if self._resync:
                continue
            try:
                async with asyncio.timeout(max(deadline - loop.time(), 0.0)):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _watch_positions(self) -> None:
        positions = await self.exchange.watch_positions()
        # The closing order's update comes just before the position's, but the orders watcher
        # may not have been waiting for it (reconnecting, or not scheduled yet): ccxt keeps it
        # in its order cache, so the close reason is taken from there first.
        self._orders_from_cache()
        self.book.apply_stream_positions(self.venue.stream_positions(self.exchange, positions))

    async def _watch_balance(self) -> None:
        self.book.apply_stream_balance(await self.exchange.watch_balance())

    async def _watch_orders(self, stream: Callable[[], Awaitable[Any]]) -> None:
        orders = await stream()
        self._orders_from_cache()
        self.book.apply_stream_orders(self._unseen(orders))

    def _unseen(self, orders: Any) -> list[Mapping[str, Any]]:
        fresh = []
        for order in orders or ():
            key = (order.get("id"), order.get("status"), order.get("filled"))
            if key not in self._seen_orders:
                self._seen_orders.add(key)
                fresh.append(order)
        return fresh

    def _orders_from_cache(self) -> None:
        cache = getattr(self.exchange, "orders", None)
        if cache:
            self.book.apply_stream_orders(self._unseen(list(cache)))

    async def _watch(self, what: str, once: Callable[[], Awaitable[None]]) -> None:
        import ccxt

        attempt = 0
        await self._ready.wait()  # stream updates apply on top of a complete picture
        while True:
            try:
                await once()
            except (ccxt.AuthenticationError, ccxt.PermissionDenied) as exc:
                self._fail(exc)
                return
            # ConnectionError: ccxt.pro (4.5.90) lets aiohttp's ClientConnectionResetError out
            # of a private login sent on a socket that was dropped meanwhile (seen on Bybit's
            # ``authenticate``); it is a lost connection like any other, so it is retried
            except (ccxt.BaseError, ConnectionError) as exc:
                self._note_error(what, exc)
                self._resync = True
                self._wake.set()
                await self._sleep(backoff_delay(attempt, self._random))
                attempt += 1
                continue
            attempt = 0
            self.stream_updates += 1
            self._emit("stream")
            if self.venue.stream_triggers_rest:
                self._full_soon = True
                self._wake.set()
            if self.book.needs_positions:
                self._wake.set()


def exchange_options(
    base: Mapping[str, Any], venue: MirrorVenue, credentials: Mapping[str, str]
) -> dict[str, Any]:
    """Constructor options for the account's own ccxt instance: ``base`` (``[exchange.ccxt]``),
    the venue's mirror options, and the credentials."""
    options: dict[str, Any] = {k: v for k, v in base.items() if k != "options"}
    merged = dict(base.get("options") or {})
    merged.update(venue.ccxt_options)
    options["options"] = merged
    if venue.ccxt_has:
        options["has"] = {**(base.get("has") or {}), **venue.ccxt_has}
    options.update(credentials)
    return options
