"""The guardbot daemon: feed -> engine -> journal (SQLite) -> publisher (MQTT), in one TaskGroup.

:class:`Daemon` composes the adapters around the pure engine (design §2)::

    stop = asyncio.Event()
    status = await Daemon(load_config("guardbot.toml")).run(stop)   # returns 0 after stop.set()

Tasks (named, in one :class:`asyncio.TaskGroup`):

``feed``
    Each :class:`~guardbot.feeds.base.TickUpdate` goes through ``engine.tick``. ``FeedStale`` /
    ``FeedRecovered`` mark the symbol's price stale in the engine and raise ``feed_stale`` /
    ``feed_recovered`` alert events. Every input that produced events is committed with those
    events and their outbox rows in ONE ``Journal.commit_step`` *before* the publisher is woken
    (the ordering rule: an alert is durable before it is published).
``publisher``
    :class:`~guardbot.mqtt.publisher.Publisher` drains the outbox (the journal's, plus the
    in-memory account snapshots) and publishes the retained ``online``/``offline`` status.
``snapshots``
    Retained ``.../accounts/<account>`` at most once per second per account, only when the
    account's state changed since the last one.
``shutdown``
    Waits for ``stop``; then stops the feed, lets the publisher drain for up to
    :attr:`Daemon.drain_timeout` seconds, publishes ``offline`` and returns.

Alert ids are ``<instance>-<input seq>-<row index>``, the scheme of
:class:`~guardbot.store.journal.OutboxRow`: the daemon is the journal's only writer, so it knows the
seq its next step gets and puts the same id in the alert payload (``alertId``) and on the row.

Restart recovery: the engine is rebuilt by re-applying the journal's stored inputs in order
(``inputs_after(0)``) with publishing suppressed — their events are journaled already, and outbox
rows not yet sent are still delivered by the publisher, each once with its stored ``alertId``.
Ticks that produce no events are not journaled while running, so recovery restores positions,
wallets, orders and alert levels as of the last event-producing input; marks are refreshed by the
next live tick. To narrow that gap, a clean stop journals the newest unjournaled tick of each
symbol (an input without events), so after a clean stop the marks are restored too. Known
limitation: state that ticks change without an event — the price extremes of trailing stops —
is not restored exactly (a trailing stop re-arms from the replayed prices). ``feed_stale`` /
``feed_recovered`` inputs are not replayed: staleness belongs to the previous feed session.

Not in scope yet: the embedded MQTT broker (``embedded_broker = "always"`` is refused with a
:class:`~guardbot.errors.ConfigError`; ``"auto"`` with nothing listening only logs a warning and
keeps the alerts in the outbox until a broker is reachable), the MQTT command topic and control.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from guardbot.config import Config
from guardbot.core.commands import TickCmd, parse_command
from guardbot.core.engine import Engine
from guardbot.core.events import ALERT_TYPES, Event, to_jsonable
from guardbot.errors import ConfigError, GuardbotError
from guardbot.feeds.base import Feed, FeedEvent, FeedStale, TickUpdate
from guardbot.mqtt.publisher import OutboxRow as PublisherRow
from guardbot.mqtt.publisher import Publisher
from guardbot.mqtt.topics import Message, account_topic, compact_json, event_messages
from guardbot.store.journal import Journal, OutboxRow
from guardbot.tiersource import load_bundled

__all__ = ["DEFAULT_SIM_PRICES", "Daemon", "FeedFactory", "default_feed", "tick_body"]

_log = structlog.get_logger("guardbot.daemon")

#: A function building the price feed from the configuration (injectable for tests).
FeedFactory = Callable[[Config], Feed]

#: Start prices of the simulated feed; symbols not listed start at 100.
DEFAULT_SIM_PRICES: Mapping[str, Decimal] = {
    "BTC/USDT:USDT": Decimal(60000),
    "ETH/USDT:USDT": Decimal(3000),
    "SOL/USDT:USDT": Decimal(150),
}

#: Input kinds that are journaled but not re-applied to the engine on recovery.
_NOT_REPLAYED = frozenset({"feed_stale", "feed_recovered"})


def default_feed(config: Config) -> Feed:
    """The feed ``[feed] mode`` asks for: ``sim``, ``replay`` or ``ccxt``."""
    section = config.feed
    symbols = config.exchange.symbols
    if section.mode == "sim":
        from guardbot.feeds.sim import SimFeed

        prices = {s: DEFAULT_SIM_PRICES.get(s, Decimal(100)) for s in symbols}
        return SimFeed(symbols, prices, seed=section.sim_seed, interval_s=1.0 / section.speed)
    if section.mode == "replay":
        from guardbot.feeds.replay import ReplayFeed

        if section.replay_file is None:  # pragma: no cover - load_config refuses it
            raise ConfigError('feed.replay_file: required when feed.mode is "replay"')
        return ReplayFeed(section.replay_file, speed=section.speed)
    import ccxt.pro

    from guardbot.feeds.ccxt_feed import CcxtFeed

    exchange = getattr(ccxt.pro, config.exchange.id)(config.exchange.ccxt_options())
    return CcxtFeed(
        exchange,
        symbols,
        stale_after_s=section.stale_after_s,
        rest_poll_s=section.rest_poll_s,
    )


def tick_body(tick: TickCmd) -> dict[str, Any]:
    """A tick as the journal stores it: a ``tick`` input line that ``parse_command`` reads back."""
    body: dict[str, Any] = {"type": "tick", "symbol": tick.symbol, "mark": tick.mark}
    for key, value in (
        ("last", tick.last),
        ("bid", tick.bid),
        ("ask", tick.ask),
        ("index", tick.index),
        ("fundingRate", tick.funding_rate),
    ):
        if value is not None:
            body[key] = value
    return body


@dataclass(frozen=True, slots=True)
class _SnapshotRow:
    id: int
    topic: str
    payload: str
    qos: int = 1
    retain: bool = True


class _Outbox:
    """The publisher's :class:`~guardbot.mqtt.publisher.OutboxSource`: the journal's outbox first,
    then the latest in-memory account snapshot of each account (negative ids; a newer snapshot of
    an account replaces an unsent older one, as only the retained latest matters)."""

    def __init__(self, journal: Journal, wake: asyncio.Event) -> None:
        self._journal = journal
        self._wake = wake
        self._snapshots: dict[str, _SnapshotRow] = {}
        self._next_id = -1
        self._changed = asyncio.Event()

    def put_snapshot(self, account: str, message: Message) -> None:
        row = _SnapshotRow(self._next_id, message.topic, message.payload, message.qos, True)
        self._next_id -= 1
        self._snapshots[account] = row
        self._wake.set()

    async def pending(self, limit: int) -> Sequence[PublisherRow]:
        rows: list[PublisherRow] = list(await self._journal.pending(limit))
        if len(rows) < limit:
            snaps = sorted(self._snapshots.values(), key=lambda r: -r.id)
            rows.extend(snaps[: limit - len(rows)])
        return rows

    async def mark_sent(self, ids: Sequence[int], ts: int) -> None:
        stored = [i for i in ids if i > 0]
        if stored:
            await self._journal.mark_sent(stored, ts)
        gone = {i for i in ids if i < 0}
        if gone:
            for account in [a for a, r in self._snapshots.items() if r.id in gone]:
                del self._snapshots[account]
        self._changed.set()

    async def depth(self) -> int:
        return await self._journal.outbox_depth() + len(self._snapshots)

    async def wait_drained(self) -> None:
        """Return once nothing is left to publish (checked after every acknowledged row)."""
        while True:
            self._changed.clear()
            if await self.depth() == 0:
                return
            await self._changed.wait()


class Daemon:
    """The guardbot daemon built from a :class:`Config`; see the module docstring.

    ``feed_factory`` builds the feed (default: :func:`default_feed`), ``clock`` gives epoch
    seconds, ``data_dir`` overrides ``[guardbot] data_dir`` (created if missing).

    ``initial_commands`` is a testing/demo hook: command objects (the ``order``, ``deposit``, ...
    lines of ``simulate``) applied and journaled once, on the first start with an empty journal,
    so that the accounts have positions without the MQTT command topic (not implemented yet).
    """

    def __init__(
        self,
        config: Config,
        *,
        feed_factory: FeedFactory = default_feed,
        clock: Callable[[], float] = time.time,
        data_dir: str | Path | None = None,
        initial_commands: Sequence[Mapping[str, Any]] = (),
        snapshot_interval: float = 1.0,
        drain_timeout: float = 3.0,
    ) -> None:
        self.config = config
        self.instance = config.guardbot.instance
        self.prefix = config.mqtt.topic_prefix
        self.data_dir = Path(data_dir) if data_dir is not None else config.guardbot.data_dir
        self._feed_factory = feed_factory
        self._clock = clock
        self._initial_commands = [dict(c) for c in initial_commands]
        self.snapshot_interval = snapshot_interval
        self.drain_timeout = drain_timeout
        bundled = load_bundled(config.exchange.profile.name)
        self.tiers_as_of = bundled.as_of
        self.engine = Engine(config.engine_config(bundled.tables, bundled.contract_sizes))
        self._journal: Journal | None = None
        self._outbox: _Outbox | None = None
        self._wake = asyncio.Event()
        self._next_seq = 1
        #: Newest tick per symbol and whether it is journaled (flushed on a clean stop).
        self._last_tick: dict[str, tuple[int, TickCmd, bool]] = {}
        self._published_state: dict[str, str] = {}
        #: Set once recovery and the initial commands are done (tests wait on it).
        self.ready = asyncio.Event()
        #: How many inputs recovery re-applied.
        self.recovered_inputs = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set; return 0 after a clean stop.

        Raises :class:`ConfigError` for ``embedded_broker = "always"`` (not implemented), and
        :class:`~guardbot.errors.GuardbotError` subclasses (``StoreError``, ``InputError`` from a
        bad replay line, ...) for failures; those end every task first.
        """
        mqtt = self.config.mqtt
        if mqtt.embedded_broker == "always":
            raise ConfigError(
                'mqtt.embedded_broker: "always" is not implemented yet (the embedded broker is '
                'not in this build); use "auto" or "never" with an external broker at mqtt.url'
            )
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"guardbot.data_dir: cannot create {self.data_dir}: {exc.strerror}"
            ) from None
        _log.warning(
            "bundled tier tables in use; live tables may differ",
            profile=self.config.exchange.profile.name,
            as_of=self.tiers_as_of,
        )
        async with AsyncExitStack() as stack:
            journal = await stack.enter_async_context(
                Journal.in_data_dir(self.data_dir, instance=self.instance)
            )
            self._journal = journal
            await self._recover(journal)
            outbox = _Outbox(journal, self._wake)
            self._outbox = outbox
            if not await asyncio.to_thread(self._broker_reachable):
                hint = (
                    "the embedded broker is not implemented yet; "
                    if mqtt.embedded_broker == "auto"
                    else ""
                )
                _log.warning(
                    "mqtt broker not reachable; alerts stay in the outbox until it is",
                    url=mqtt.url,
                    hint=hint + "start a broker at mqtt.url",
                )
            publisher = Publisher(
                hostname=mqtt.host,
                port=mqtt.port,
                instance=self.instance,
                prefix=self.prefix,
                username=mqtt.username,
                password=mqtt.password.reveal() if mqtt.password is not None else None,
                tls_ca=str(mqtt.tls_ca) if mqtt.tls_ca is not None else None,
                clock=self._clock,
            )
            feed = await stack.enter_async_context(self._feed_factory(self.config))
            self.ready.set()
            _log.info(
                "guardbot daemon started",
                instance=self.instance,
                data_dir=str(self.data_dir),
                recovered_inputs=self.recovered_inputs,
                pending=await outbox.depth(),
            )
            async with asyncio.TaskGroup() as group:
                pub_task = group.create_task(
                    publisher.run(outbox, wake=self._wake), name="publisher"
                )
                feed_task = group.create_task(self._feed_loop(feed), name="feed")
                snap_task = group.create_task(self._snapshots(), name="snapshots")
                group.create_task(
                    self._shutdown(stop, publisher, pub_task, (feed_task, snap_task)),
                    name="shutdown",
                )
            await self._flush_ticks()
            _log.info("guardbot daemon stopped", pending=await outbox.depth())
        self._journal = None
        return 0

    async def _shutdown(
        self,
        stop: asyncio.Event,
        publisher: Publisher,
        pub_task: asyncio.Task[None],
        others: Sequence[asyncio.Task[None]],
    ) -> None:
        await stop.wait()
        _log.info("stopping", drain_timeout_s=self.drain_timeout)
        for task in others:
            task.cancel()
        await asyncio.wait(others)  # unlike ``await task``, never swallows our own cancellation
        await self._publish_snapshots()  # the final state, if it changed
        assert self._outbox is not None
        try:
            async with asyncio.timeout(self.drain_timeout):
                await self._outbox.wait_drained()
        except TimeoutError:
            _log.warning(
                "outbox not drained; the rest is published after the next start",
                pending=await self._outbox.depth(),
            )
        await publisher.close(timeout=self.drain_timeout)
        if not pub_task.done():
            pub_task.cancel()

    def _broker_reachable(self) -> bool:
        mqtt = self.config.mqtt
        try:
            with socket.create_connection((mqtt.host, mqtt.port), timeout=1.0):
                return True
        except OSError:
            return False

    # -- recovery -------------------------------------------------------------------------------

    async def _recover(self, journal: Journal) -> None:
        """Re-apply every stored input in order; nothing is published (see module docstring)."""
        count = 0
        last_seq = 0
        async for seq, ts, kind, body in journal.inputs_after(0):
            last_seq = seq
            if kind in _NOT_REPLAYED:
                continue
            command = parse_command(body)
            self.engine.apply(ts, command)
            if isinstance(command, TickCmd):
                self._last_tick[command.symbol] = (ts, command, True)
            count += 1
        self.recovered_inputs = count
        self._next_seq = last_seq + 1
        if last_seq == 0 and self._initial_commands:
            for obj in self._initial_commands:
                command = parse_command(obj)
                ts = self._now_ms()
                events = self.engine.apply(ts, command)
                await self._commit(ts, str(obj.get("type")), obj, events)

    # -- steps ----------------------------------------------------------------------------------

    def _outbox_rows(self, seq: int, events: Sequence[Event]) -> list[OutboxRow]:
        rows: list[OutboxRow] = []
        for event in events:
            alert_id = None
            if event.get("type") in ALERT_TYPES:
                # event_messages gives .../events/<type> first, then the alert.
                alert_id = f"{self.instance}-{seq}-{len(rows) + 1}"
            for message in event_messages(self.prefix, self.instance, event, alert_id):
                rows.append(
                    OutboxRow(
                        topic=message.topic,
                        payload=message.payload,
                        qos=message.qos,
                        retain=message.retain,
                        alert_id=f"{self.instance}-{seq}-{len(rows)}",
                    )
                )
        return rows

    async def _commit(
        self, ts: int, kind: str, body: Mapping[str, Any], events: Sequence[Event]
    ) -> int:
        """Journal one input with its events and outbox rows, then wake the publisher."""
        assert self._journal is not None
        expected = self._next_seq
        outbox = self._outbox_rows(expected, events)
        seq = await self._journal.commit_step(
            ts=ts, kind=kind, body=body, events=events, outbox=outbox
        )
        self._next_seq = seq + 1
        if seq != expected:  # pragma: no cover - a second writer on the same database
            _log.error("journal seq differs from the expected one", expected=expected, got=seq)
        if outbox:
            self._wake.set()
        return seq

    async def _feed_loop(self, feed: Feed) -> None:
        updates = feed.updates()
        try:
            async for item in updates:
                await self._on_feed(item)
        finally:
            aclose = getattr(updates, "aclose", None)
            if aclose is not None:  # an async generator: run its cleanup now
                await aclose()
        _log.info("feed ended")

    async def _on_feed(self, item: FeedEvent) -> None:
        if isinstance(item, TickUpdate):
            events = self.engine.tick(item.ts, item.tick)
            journaled = bool(events)
            if journaled:
                await self._commit(item.ts, "tick", tick_body(item.tick), events)
            self._last_tick[item.tick.symbol] = (item.ts, item.tick, journaled)
            return
        symbols = [item.symbol] if item.symbol is not None else list(self.config.exchange.symbols)
        stale = isinstance(item, FeedStale)
        for symbol in symbols:
            self.engine.set_price_stale(symbol, stale)
        ts = self._now_ms()
        event: Event
        if isinstance(item, FeedStale):
            event = {
                "type": "feed_stale",
                "ts": ts,
                "account": None,
                "symbol": item.symbol,
                "sinceTs": item.since_ts,
                "reason": item.reason,
            }
        else:
            event = {"type": "feed_recovered", "ts": ts, "account": None, "symbol": item.symbol}
        _log.warning(event["type"], symbol=item.symbol)
        body = {k: v for k, v in event.items() if k not in ("ts", "account")}
        await self._commit(ts, str(event["type"]), body, [event])

    async def _flush_ticks(self) -> None:
        """Journal the newest unjournaled tick of each symbol (no events), for recovery."""
        for symbol, (ts, tick, journaled) in sorted(self._last_tick.items()):
            if not journaled:
                await self._commit(ts, "tick", tick_body(tick), [])
                self._last_tick[symbol] = (ts, tick, True)

    # -- account snapshots ----------------------------------------------------------------------

    async def _snapshots(self) -> None:
        while True:
            await self._publish_snapshots()
            await asyncio.sleep(self.snapshot_interval)

    async def _publish_snapshots(self) -> None:
        if self._outbox is None:
            return
        for account in self.engine.iter_accounts():
            name = account.id
            snapshot = self.engine.state(account)
            state = compact_json(to_jsonable(snapshot))
            if self._published_state.get(name) == state:
                continue
            self._published_state[name] = state
            payload = compact_json({"account": name, "ts": self._now_ms(), **snapshot})
            topic = account_topic(self.prefix, self.instance, name)
            self._outbox.put_snapshot(name, Message(topic, payload, qos=1, retain=True))


def first_error(exc: BaseException) -> BaseException:
    """The first leaf of (nested) exception groups: what a one-line report should name."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def guardbot_error(exc: BaseException) -> GuardbotError | None:
    """The :class:`GuardbotError` inside ``exc`` (possibly an exception group), if any."""
    if isinstance(exc, GuardbotError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        match, _ = exc.split(GuardbotError)
        if match is not None:
            leaf = first_error(match)
            return leaf if isinstance(leaf, GuardbotError) else None
    return None
