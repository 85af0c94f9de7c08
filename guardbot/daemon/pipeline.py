"""The step pipeline: every input is applied to the engine and journaled with its events and outbox
rows in ONE :meth:`~guardbot.store.journal.Journal.commit_step`, and only then is the publisher
woken ("saved before published", docs/architecture.md §2).

:class:`StepPipeline` holds what that rule needs and nothing of MQTT: the engine, the journal, the
step lock (feed ticks and control commands interleave at awaits, and the journal's order must be
the engine's), the next input seq (alert ids are ``<instance>-<input seq>-<row index>``, the
scheme of :class:`~guardbot.store.journal.OutboxRow`: the daemon is the journal's only writer, so
it knows the seq its next step gets and puts the same id in the payload and on the row), ticks
with the funding they cross and the ``[[seed]]`` once every symbol is priced, commands, and feed
health inputs. ``wake`` is called after a commit that wrote outbox rows; a test can check that
what it is woken for is already in the database.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from guardbot.core.commands import Command, TickCmd, parse_command
from guardbot.core.engine import Engine
from guardbot.core.events import ALERT_TYPES, Event, severity_of, to_jsonable
from guardbot.core.funding import FundingDue, FundingSchedule
from guardbot.feeds.base import FeedRecovered, FeedStale, TickUpdate
from guardbot.formats.alert_text import alert_text
from guardbot.formats.ticklines import tick_body  # the one tick-line writer (journal form)
from guardbot.metrics.prometheus import Metrics
from guardbot.mqtt.topics import Message, event_messages
from guardbot.store.journal import Journal, OutboxRow

__all__ = ["StepPipeline", "tick_body"]

_log = structlog.get_logger("guardbot.daemon")


class StepPipeline:
    """Applies inputs to ``engine`` and journals each with its events and outbox rows.

    ``journal`` may be attached later (:meth:`attach`): the daemon builds the pipeline before it
    opens the database. ``symbols`` are the configured ones (the seed waits for a price of each;
    a whole-feed ``FeedStale`` marks each stale).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        instance: str,
        prefix: str,
        symbols: Sequence[str],
        metrics: Metrics,
        clock: Callable[[], float],
        wake: Callable[[], None],
        journal: Journal | None = None,
    ) -> None:
        self.engine = engine
        self.instance = instance
        self.prefix = prefix
        self.symbols = tuple(symbols)
        self.metrics = metrics
        self._clock = clock
        self._wake = wake
        self.journal = journal
        #: Serializes "apply an input to the engine, then journal it": feed ticks and control
        #: commands interleave at awaits, and the journal's order must be the engine's.
        self.lock = asyncio.Lock()
        #: The seq the next committed input gets (set by recovery from the journal).
        self.next_seq = 1
        self.funding = FundingSchedule()
        #: Newest tick per symbol and whether it is journaled (flushed on a clean stop).
        self.last_tick: dict[str, tuple[int, TickCmd, bool]] = {}
        #: ``[[seed]]`` commands still to apply: on a first start, once every symbol has a price
        #: (market orders need one).
        self.pending_seed: list[dict[str, Any]] = []
        #: Called after a feed health input changed the set of stale symbols.
        self.on_health: Callable[[FeedStale | FeedRecovered], None] = lambda _item: None
        #: More messages for an alert's payload, journaled right after its row (Home Assistant's
        #: event entity); None: none.
        self.alert_extra: Callable[[Mapping[str, Any]], Sequence[Message]] | None = None

    def attach(self, journal: Journal) -> None:
        self.journal = journal

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- commands -------------------------------------------------------------------------------

    async def apply_command(self, obj: Mapping[str, Any]) -> list[Event]:
        """Apply one input object (an ``order``, ``cancel``, ... line) now, journal it with its
        events, and return the events. :class:`~guardbot.errors.InputError` for a malformed
        object (nothing applied); :class:`~guardbot.errors.StoreError` is fatal for the caller.
        """
        command = parse_command(obj)
        async with self.lock:
            return await self._apply_locked(obj, command, self.now_ms())

    async def control_command(self, obj: Mapping[str, Any]) -> list[Event]:
        """A command from ``.../cmd``: like :meth:`apply_command`, but the newest tick of each
        symbol is journaled first (recovery must re-apply it at the prices it saw live), and a
        command the engine refused (only ``order_rejected``) is journaled as ``refused_command``,
        which recovery skips: it changed nothing, and the replayed state may lack what refused it
        (a stale feed)."""
        command = parse_command(obj)
        async with self.lock:
            await self.flush_ticks()
            ts = self.now_ms()
            events = self.engine.apply(ts, command)
            refused = bool(events) and all(e.get("type") == "order_rejected" for e in events)
            await self.commit(ts, "refused_command" if refused else str(obj["type"]), obj, events)
            return events

    async def apply_input(self, obj: Mapping[str, Any]) -> list[Event]:
        """An input the daemon itself makes (``tiers``): like :meth:`control_command`, applied
        after the newest tick of each symbol is journaled (its effect depends on the marks, and
        recovery must re-apply it at the same ones), then journaled with its events in one
        commit before anything is published."""
        command = parse_command(obj)
        async with self.lock:
            await self.flush_ticks()
            return await self._apply_locked(obj, command, self.now_ms())

    async def _apply_locked(self, obj: Mapping[str, Any], command: Command, ts: int) -> list[Event]:
        events = self.engine.apply(ts, command)
        await self.commit(ts, str(obj.get("type")), obj, events)
        return events

    async def _apply_seed(self, ts: int) -> list[Event]:
        """Apply the ``[[seed]]`` commands (validated by the config loader) at ``ts``, journaled
        as ONE ``seed`` input: a kill in the middle of the seed must not leave it half applied
        (a restart with a non-empty journal does not seed again)."""
        seed, self.pending_seed = self.pending_seed, []
        await self.flush_ticks()  # the prices the seed orders fill at must replay too
        caused: list[Event] = []
        for obj in seed:
            events = self.engine.apply(ts, parse_command(obj))
            rejected = [e for e in events if e.get("type") == "order_rejected"]
            _log.info("seed command applied", type=obj.get("type"), rejected=len(rejected))
            caused += events
        await self.commit(ts, "seed", {"type": "seed", "commands": seed}, caused)
        return caused

    # -- steps ----------------------------------------------------------------------------------

    def outbox_rows(self, seq: int, events: Sequence[Event]) -> list[OutboxRow]:
        """The MQTT messages of ``events``, as outbox rows of input ``seq``."""
        rows: list[OutboxRow] = []
        for event in events:
            alert_id = None
            messages: list[Message] = []
            if event.get("type") in ALERT_TYPES:
                # event_messages gives the alert first, then .../events/<type>.
                alert_id = f"{self.instance}-{seq}-{len(rows)}"
                text = alert_text(event, self._position_of(event))
                messages = event_messages(self.prefix, self.instance, event, alert_id, text=text)
                if self.alert_extra is not None:
                    alert = json.loads(messages[0].payload)
                    messages[1:1] = self.alert_extra(alert)
            else:
                messages = event_messages(self.prefix, self.instance, event, None)
            for message in messages:
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

    def _position_of(self, event: Event) -> dict[str, Any] | None:
        """Side and size of the position an alert is about, for its sentence."""
        account = self.engine.accounts.get(str(event.get("account")))
        symbol = event.get("symbol") or event.get("liquidationSymbol")
        if account is None or not isinstance(symbol, str):
            return None
        open_ = [p for p in account.symbol_positions(symbol) if p.is_open]
        side = event.get("positionSide")
        if side is not None:  # a hedged account's alert names its side
            open_ = [p for p in open_ if p.side == side]
        if len(open_) != 1:
            return None  # both sides of a hedged symbol: the sentence names the symbol only
        return {"side": open_[0].side, "contracts": open_[0].contracts}

    async def commit(
        self,
        ts: int,
        kind: str,
        body: Mapping[str, Any],
        events: Sequence[Event],
        received_at: float | None = None,
    ) -> int:
        """Journal one input with its events and outbox rows, then wake the publisher."""
        assert self.journal is not None, "attach a journal first"
        expected = self.next_seq
        outbox = self.outbox_rows(expected, events)
        seq = await self.journal.commit_step(
            ts=ts, kind=kind, body=body, events=events, outbox=outbox
        )
        self.next_seq = seq + 1
        self.metrics.events(events)
        if outbox and received_at is not None:
            self.metrics.publish_expected(seq, received_at)
        for event in events:
            if event.get("type") in ALERT_TYPES:
                _log_alert(event)
        if seq != expected:  # pragma: no cover - a second writer on the same database
            _log.error("journal seq differs from the expected one", expected=expected, got=seq)
        if outbox:
            self._wake()
        return seq

    async def alert(self, event: Event) -> None:
        """Journal an alert of the daemon's own (``tier_tables``, ...) as an input of its type."""
        body = {k: v for k, v in event.items() if k not in ("ts", "account")}
        async with self.lock:
            await self.commit(int(str(event["ts"])), str(event["type"]), body, [event])

    async def tick(self, item: TickUpdate, received: float) -> list[Event]:
        """Apply one tick (and the funding it crosses, and the seed once priced) under the step
        lock; return every event that caused."""
        async with self.lock:
            return await self._on_tick(item, received)

    async def _on_tick(self, item: TickUpdate, received: float) -> list[Event]:
        tick = item.tick
        caused: list[Event] = []
        due = self.funding.observe(tick.symbol, item.ts, tick.funding_rate, item.next_funding_ts)
        if due is not None:
            caused += await self._apply_funding(due)
        started = time.perf_counter()
        events = self.engine.tick(item.ts, tick)
        self.metrics.tick_applied(
            tick.symbol, time.perf_counter() - started, self._clock() - item.ts / 1000
        )
        # A tick that moved a trailing stop, or started or cancelled a mirror drift's wait for
        # confirmation, is journaled even without events: recovery must see it to rebuild the
        # stop's trigger price, and the wait's start (the drift alerts), exactly.
        engine = self.engine
        journaled = bool(events) or engine.tick_moved_orders or engine.tick_changed_drift_wait
        if journaled:
            await self.commit(item.ts, "tick", tick_body(tick), events, received)
            caused += events
        self.last_tick[tick.symbol] = (item.ts, tick, journaled)
        if self.pending_seed and all(s in self.last_tick for s in self.symbols):
            caused += await self._apply_seed(item.ts)
        return caused

    async def _apply_funding(self, due: FundingDue) -> list[Event]:
        """Settle funding at its time, before the tick that crossed it (journaled even when no
        position is open, so that a restart does not settle it again)."""
        body = {"type": "funding", "symbol": due.symbol, "rate": due.rate}
        events = self.engine.apply(due.funding_ts, parse_command(body))
        await self.commit(due.funding_ts, "funding", body, events)
        _log.info("funding settled", symbol=due.symbol, rate=str(due.rate), events=len(events))
        return events

    async def feed_health(self, item: FeedStale | FeedRecovered) -> Event:
        """Mark the symbol's (or every symbol's) price stale or fresh and journal the alert."""
        async with self.lock:
            symbols = [item.symbol] if item.symbol is not None else list(self.symbols)
            stale = isinstance(item, FeedStale)
            for symbol in symbols:
                self.engine.set_price_stale(symbol, stale)
                self.metrics.set_feed_stale(symbol, stale)
            ts = self.now_ms()
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
            self.on_health(item)
            body = {k: v for k, v in event.items() if k not in ("ts", "account")}
            await self.commit(ts, str(event["type"]), body, [event])
            return event

    async def flush_ticks(self) -> None:
        """Journal the newest unjournaled tick of each symbol (no events), for recovery."""
        for symbol, (ts, tick, journaled) in sorted(self.last_tick.items()):
            if not journaled:
                await self.commit(ts, "tick", tick_body(tick), [])
                self.last_tick[symbol] = (ts, tick, True)

    def replayed(self, ts: int, command: Command) -> None:
        """Recovery re-applied ``command``: a tick is the symbol's newest price (journaled) and
        tells the funding schedule the rate."""
        if isinstance(command, TickCmd):
            self.last_tick[command.symbol] = (ts, command, True)
            self.funding.observe(command.symbol, ts, command.funding_rate)


def _log_alert(event: Event) -> None:
    """Every alert in the log too, with its fields (after it is durable in the journal)."""
    severity = severity_of(event)
    fields = {k: v for k, v in to_jsonable(event).items() if k not in ("type", "severity")}
    if "level" in fields:  # structlog's own "level" key (info, warning, ...) would replace it
        fields["alertLevel"] = fields.pop("level")
    if severity in ("critical", "margin_call"):
        _log.error(str(event["type"]), severity=severity, **fields)
    elif severity == "warning":
        _log.warning(str(event["type"]), severity=severity, **fields)
    else:
        _log.info(str(event["type"]), severity=severity, **fields)
