"""The guardbot daemon: feed -> engine -> journal (SQLite) -> publisher (MQTT), in one TaskGroup.

:class:`Daemon` composes the adapters around the pure engine (docs/architecture.md §2)::

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
``status``
    Refreshes the outbox depth and republishes the retained status every ``status_interval``.
``control`` (``[control] enabled = true``)
    :class:`~guardbot.mqtt.listener.ControlListener` on ``.../cmd``: every command passes the
    :class:`~guardbot.mqtt.commands.CommandGate` (token, shape, symbol, account), is applied and
    journaled like any input (after the newest prices, so that recovery replays it at the prices
    it saw), and gets a reply on ``.../reply/<requestId>``.
``watchdog`` (under systemd with ``WatchdogSec``), ``tier-refresh`` (ccxt mode)
    ``WATCHDOG=1`` while healthy; the tier tables refetched into the cache daily.
``shutdown``
    Waits for ``stop``; then stops the feed (holding the step lock, so that no input is between
    the engine and the journal), lets the strategy's ``on_stop`` run, lets the publisher drain
    for up to :attr:`Daemon.drain_timeout` seconds, publishes ``offline`` and returns.

A ``[strategy]`` runs on a :class:`~guardbot.paper.PaperExchange` whose commands take the control
path; its hooks are called after each step, outside the step lock.

Alert ids are ``<instance>-<input seq>-<row index>``, the scheme of
:class:`~guardbot.store.journal.OutboxRow`: the daemon is the journal's only writer, so it knows the
seq its next step gets and puts the same id in the alert payload (``alertId``) and on the row.

Restart recovery: the engine is rebuilt by re-applying the journal's stored inputs in order
(``inputs_after(0)``) with publishing suppressed — their events are journaled already, and outbox
rows not yet sent are still delivered by the publisher, each once with its stored ``alertId``.
Ticks that produce no events are not journaled while running, so recovery restores positions,
wallets, orders and alert levels as of the last event-producing input; marks are refreshed by the
next live tick. To narrow that gap, a clean stop journals the newest unjournaled tick of each
symbol (an input without events), so after a clean stop the marks are restored too. A tick
that moves a trailing stop without an event (``Engine.tick_moved_orders``) is journaled too, so
the stops' extremes replay exactly. ``feed_stale`` / ``feed_recovered`` (and ``tier_tables``,
``refused_command``) inputs are not replayed: staleness belongs to the previous feed session.

Funding: a :class:`~guardbot.core.funding.FundingSchedule` turns a tick that crosses a funding time
into a journaled ``funding`` input applied just before that tick.

Tier tables come from the exchange, the SQLite cache or the bundled snapshot
(:mod:`guardbot.tiers.fetch`); a fallback raises one ``tier_tables`` warning alert per start.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any

import structlog

from guardbot import __version__
from guardbot.config import Config
from guardbot.core.commands import Command, TickCmd, parse_command
from guardbot.core.engine import Engine
from guardbot.core.events import ALERT_TYPES, Event, to_jsonable
from guardbot.core.funding import FundingDue, FundingSchedule
from guardbot.core.tiers import Tier
from guardbot.daemon.errors import first_error, guardbot_error
from guardbot.daemon.feed_loop import DEFAULT_SIM_PRICES, FeedFactory, default_feed
from guardbot.daemon.outbox import _Outbox
from guardbot.daemon.pipeline import _log_alert, tick_body
from guardbot.daemon.sdnotify import Notifier, watchdog_loop
from guardbot.daemon.status import FeedStatus, status_payload
from guardbot.errors import ConfigError
from guardbot.feeds.base import Feed, FeedEvent, FeedRecovered, FeedStale, TickUpdate
from guardbot.metrics.prometheus import Metrics, MetricsServer, engine_margin_rows
from guardbot.mqtt.client import BrokerSettings
from guardbot.mqtt.commands import CommandGate, RecentReplies
from guardbot.mqtt.listener import ControlListener, handle_command
from guardbot.mqtt.publisher import Publisher
from guardbot.mqtt.topics import Message, account_topic, compact_json, event_messages
from guardbot.paper import PaperExchange, StrategyRunner, load_strategy
from guardbot.runtime.backoff import backoff_delay
from guardbot.runtime.net import is_loopback_host
from guardbot.store.journal import Journal, OutboxRow
from guardbot.tiers.fetch import DAY_MS, Fetcher, ResolvedTiers, ccxt_fetcher, resolve_tiers
from guardbot.tiers.source import load_bundled

__all__ = [
    "DEFAULT_SIM_PRICES",
    "Daemon",
    "FeedFactory",
    "default_feed",
    "first_error",
    "guardbot_error",
    "tick_body",
]

_log = structlog.get_logger("guardbot.daemon")

#: How often the tier tables are refetched into the cache (``[feed] mode = "ccxt"``).
TIER_REFRESH_S = 24 * 3600.0

#: Input kinds that are journaled but not re-applied to the engine on recovery.
_NOT_REPLAYED = frozenset({"feed_stale", "feed_recovered", "tier_tables", "refused_command"})
#: While the journal is replayed at start: how often (seconds) to log the progress and tell
#: systemd (STATUS, EXTEND_TIMEOUT_USEC), and by how much each report pushes back its start
#: deadline (TimeoutStartSec=), so that a large journal does not get the unit killed mid-replay.
RECOVERY_PROGRESS_S = 5.0
RECOVERY_EXTEND_S = 60.0


class Daemon:
    """The guardbot daemon built from a :class:`Config`; see the module docstring.

    ``feed_factory`` builds the feed (default: :func:`default_feed`), ``clock`` gives epoch
    seconds, ``data_dir`` overrides ``[guardbot] data_dir`` (created if missing).

    ``initial_commands`` is a testing/demo hook: command objects (the ``order``, ``deposit``, ...
    lines of ``simulate``) applied and journaled once, on the first start with an empty journal,
    so that the accounts have positions without the MQTT command topic (``[[seed]]`` is the
    configuration's way to do the same).
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
        status_interval: float = 5.0,
        tier_fetcher: Fetcher | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.instance = config.guardbot.instance
        self.prefix = config.mqtt.topic_prefix
        self.data_dir = Path(data_dir) if data_dir is not None else config.guardbot.data_dir
        self._feed_factory = feed_factory
        self._clock = clock
        self._initial_commands = [dict(c) for c in initial_commands]
        #: ``[[seed]]`` commands still to apply: on a first start, once every symbol has a price
        #: (market orders need one).
        self._pending_seed: list[dict[str, Any]] = []
        self._tier_fetcher = tier_fetcher
        #: systemd notifications (READY, STOPPING, WATCHDOG); a no-op outside systemd.
        self._notifier = notifier if notifier is not None else Notifier.from_env(unset=True)
        #: Seconds between recovery progress reports (RECOVERY_PROGRESS_S; tests lower it).
        self.recovery_progress_s = RECOVERY_PROGRESS_S
        self._watchdog_stop = asyncio.Event()
        #: The ``[strategy]`` running on the paper exchange, once :meth:`run` started it.
        self.runner: StrategyRunner | None = None
        self._feed: Feed | None = None
        #: How often the feed was restarted after an unexpected error.
        self.feed_restarts = 0
        self._stale_since: float | None = None
        self.snapshot_interval = snapshot_interval
        self.drain_timeout = drain_timeout
        bundled = load_bundled(config.exchange.profile.name)
        self._bundled = bundled
        #: symbol -> where its tier table came from (set by :meth:`run`).
        self.tier_sources: dict[str, str] = {}
        self.engine = Engine(config.engine_config(bundled.tables, bundled.contract_sizes))
        self.metrics = Metrics(symbols=config.exchange.symbols)
        self.metrics_server: MetricsServer | None = None
        #: Serializes "apply an input to the engine, then journal it": feed ticks and control
        #: commands interleave at awaits, and the journal's order must be the engine's.
        self._step_lock = asyncio.Lock()
        self._funding = FundingSchedule()
        #: Symbols the feed reports stale (``None``: the whole feed).
        self._stale: set[str | None] = set()
        self._outbox_depth = 0
        self._outbox_oldest_ms: int | None = None
        self.status_interval = status_interval
        self._publisher: Publisher | None = None
        #: The ``.../cmd`` listener when ``[control] enabled = true`` (set by :meth:`run`).
        self.control: ControlListener | None = None
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

        Raises :class:`~guardbot.errors.GuardbotError` subclasses (``ConfigError``,
        ``StoreError``, ``InputError`` from a bad replay line, ...) for fatal failures; those end
        every task first.
        """
        mqtt = self.config.mqtt
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"guardbot.data_dir: cannot create {self.data_dir}: {exc.strerror}"
            ) from None
        async with AsyncExitStack() as stack:
            journal = await stack.enter_async_context(
                Journal.in_data_dir(self.data_dir, instance=self.instance)
            )
            self._journal = journal
            warnings = await self._resolve_tiers(journal)
            await self._recover(journal)
            await self._warn_tiers(warnings)
            outbox = _Outbox(journal, self._wake, self.metrics)
            self._outbox = outbox
            await self._start_broker(stack)
            publisher = Publisher(
                BrokerSettings.from_section(mqtt),
                instance=self.instance,
                prefix=self.prefix,
                qos=mqtt.qos,
                clock=self._clock,
                status_info=self._status_info,
            )
            self._publisher = publisher
            await self._refresh_outbox_stats()
            self.runner = self._strategy_runner()
            self.control = self._control_listener()
            await self._start_metrics(stack)
            self.ready.set()
            self._notifier.ready(f"recovered {self.recovered_inputs} inputs")
            _log.info(
                "guardbot daemon started",
                instance=self.instance,
                data_dir=str(self.data_dir),
                recovered_inputs=self.recovered_inputs,
                pending=await outbox.depth(),
            )
            if self.runner is not None:
                await self.runner.start()
            async with asyncio.TaskGroup() as group:
                pub_task = group.create_task(
                    publisher.run(outbox, wake=self._wake), name="publisher"
                )
                others = [
                    group.create_task(self._feed_loop(), name="feed"),
                    group.create_task(self._snapshots(), name="snapshots"),
                    group.create_task(self._status_loop(), name="status"),
                    *self._extra_tasks(group),
                ]
                group.create_task(
                    self._shutdown(stop, publisher, pub_task, others),
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
        self._on_stopping()
        if self.control is not None:
            # Before taking the step lock: the command in hand finishes and gets its reply.
            await self.control.close(timeout=self.drain_timeout)
        # Holding the step lock, no task is between applying an input and journaling it: the
        # cancellation cannot leave the engine ahead of the journal.
        async with self._step_lock:
            for task in others:
                task.cancel()
            await asyncio.wait(others)  # unlike ``await task``, never swallows our cancellation
        if self.runner is not None:
            await self.runner.stop()  # on_stop may still send commands: after the lock
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

    # -- optional components (embedded broker, control, metrics, systemd) -----------------------

    async def _start_broker(self, stack: AsyncExitStack) -> None:
        """Start the embedded loopback broker when ``embedded_broker`` asks for one."""
        mqtt = self.config.mqtt
        if mqtt.embedded_broker == "never":
            return
        from guardbot.mqtt.broker import BrokerStartError, EmbeddedBroker, should_embed

        embed = await asyncio.to_thread(should_embed, mqtt.embedded_broker, mqtt.host, mqtt.port)
        if not embed:
            return
        try:
            broker = await stack.enter_async_context(EmbeddedBroker(mqtt.host, mqtt.port))
        except BrokerStartError:
            if mqtt.embedded_broker == "always":
                raise
            # "auto": something started listening since the probe; that is the broker to use.
            _log.warning("embedded broker not started: the port is taken", url=mqtt.url)
            return
        _log.info("embedded mqtt broker started", url=broker.url, startup_s=broker.startup_s)

    async def _start_metrics(self, stack: AsyncExitStack) -> None:
        """Serve ``/metrics`` (``[metrics] enabled``), with the hooks that refresh the gauges read
        at scrape time (MQTT connection, feed drops, outbox, margin ratios)."""
        section = self.config.metrics
        if not section.enabled:
            return
        if not is_loopback_host(section.host):
            _log.warning("metrics served beyond loopback", listen=section.listen)
        self.metrics_server = await stack.enter_async_context(
            MetricsServer(self.metrics, section.host, section.port)
        )
        m = self.metrics
        publisher = self._publisher
        assert publisher is not None

        def mqtt() -> None:
            status = publisher.status()
            m.set_mqtt_connected(status.connected)
            m.sync_reconnects("mqtt", status.reconnects)

        m.add_refresh_hook(mqtt)

        def feed() -> None:
            # The feed of the moment: it is replaced after a crash.
            feed_status = getattr(self._feed, "status", None)
            if callable(feed_status):
                m.sync_feed_status(feed_status())

        m.add_refresh_hook(feed)

        async def outbox() -> None:
            await self._refresh_outbox_stats()
            oldest = self._outbox_oldest_ms
            m.set_outbox(
                self._outbox_depth, None if oldest is None else (self._now_ms() - oldest) / 1000
            )

        m.add_refresh_hook(outbox)
        m.add_refresh_hook(lambda: m.set_accounts(*engine_margin_rows(self.engine)))

    def _extra_tasks(self, group: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        """The optional tasks beside the feed: systemd watchdog, daily tier refresh, commands."""
        tasks: list[asyncio.Task[None]] = []
        if self._notifier.watchdog_interval() is not None:
            tasks.append(
                group.create_task(
                    watchdog_loop(self._notifier, self._healthy, self._watchdog_stop),
                    name="watchdog",
                )
            )
        if self.config.feed.mode == "ccxt":
            tasks.append(group.create_task(self._tier_refresh(), name="tier-refresh"))
        if self.control is not None:
            tasks.append(group.create_task(self.control.run(), name="control"))
        return tasks

    def _strategy_runner(self) -> StrategyRunner | None:
        """The ``[strategy]`` on a paper exchange whose commands go through
        :meth:`control_command`: journaled (with the prices they saw) before the strategy sees
        their events, like a command from ``.../cmd``."""
        section = self.config.strategy
        if section is None:
            return None
        strategy = load_strategy(section.path)(section.params)
        exchange = PaperExchange(
            self.engine,
            self.control_command,
            account=next(iter(self.config.accounts), None),
            symbols=self.config.exchange.symbols,
        )
        _log.info("strategy loaded", strategy=section.path)
        return StrategyRunner(strategy, exchange, stop_on_error=section.stop_on_error)

    def _control_listener(self) -> ControlListener | None:
        """The ``.../cmd`` listener when ``[control] enabled = true`` (docs/architecture.md §5)."""
        control = self.config.control
        if not control.enabled:
            return None
        if control.token is None:  # pragma: no cover - load_config refuses it
            raise ConfigError(f"control.token_env: {control.token_env} is not set")
        gate = CommandGate(
            control.token.reveal(),
            self.config.exchange.symbols,
            accounts=list(self.config.accounts) or None,
        )
        recent = RecentReplies()

        async def handler(payload: bytes) -> Mapping[str, Any]:
            return await handle_command(gate, payload, self.control_command, recent=recent)

        mqtt = self.config.mqtt
        return ControlListener(
            BrokerSettings.from_section(mqtt),
            self.config.topic_base,
            handler,
            instance=self.instance,
            qos=mqtt.qos,
        )

    def _on_stopping(self) -> None:
        """The shutdown begins: systemd stops expecting watchdog pings."""
        self._notifier.stopping("draining the outbox")
        self._watchdog_stop.set()

    def _healthy(self) -> bool:
        """For the systemd watchdog: False once the feed has been stale for a grace period (a
        short exchange blip must not restart the daemon; a feed stuck for minutes should)."""
        if not self._stale:
            self._stale_since = None
            return True
        now = time.monotonic()
        if self._stale_since is None:
            self._stale_since = now
        grace = max(60.0, 6 * self.config.feed.stale_after_s)
        return now - self._stale_since < grace

    # -- tier tables ----------------------------------------------------------------------------

    def _tier_fetch(self) -> Fetcher | None:
        fetch = self._tier_fetcher
        if fetch is None and self.config.feed.mode == "ccxt":
            from guardbot.feeds.exchange import ccxt_factory

            exchange = self.config.exchange
            fetch = ccxt_fetcher(ccxt_factory(exchange.id), exchange.ccxt_options())
        return fetch

    async def _resolve(
        self, journal: Journal, fetch: Fetcher | None, max_age_ms: int = DAY_MS
    ) -> ResolvedTiers:
        exchange = self.config.exchange
        return await resolve_tiers(
            exchange.id,
            exchange.symbols,
            journal,
            self._bundled,
            now_ms=self._now_ms(),
            fetch=fetch,
            derive_cum=exchange.profile.deducts_cum,
            max_age_ms=max_age_ms,
        )

    async def _resolve_tiers(self, journal: Journal) -> list[str]:
        """Pick the tier tables (exchange, cache or snapshot) and rebuild the engine on them."""
        resolved = await self._resolve(journal, self._tier_fetch())
        self.tier_sources = dict(resolved.sources)
        self.engine = Engine(self.config.engine_config(resolved.tables, resolved.contract_sizes))
        _log.info("tier tables", sources=self.tier_sources)
        return resolved.warnings

    async def _tier_refresh(self) -> None:
        """Refetch the tier tables daily into the cache. A changed table takes effect at the next
        start (recovery replays the journal with the tables of the run that wrote it); until
        then a ``tier_tables`` alert says that the exchange changed it."""
        fetch = self._tier_fetch()
        journal = self._journal
        if fetch is None or journal is None:
            return
        while True:
            await asyncio.sleep(TIER_REFRESH_S)
            fresh = await self._resolve(journal, fetch, max_age_ms=0)
            changed = [
                s
                for s, source in fresh.sources.items()
                if source == "exchange" and fresh.tables[s].tiers != self._tiers_of(s)
            ]
            if changed:
                await self._warn_tiers(
                    [
                        f"{s}: the exchange changed its tier table; the new one is cached and "
                        "applies after a restart"
                        for s in changed
                    ]
                )

    def _tiers_of(self, symbol: str) -> tuple[Tier, ...] | None:
        table = self.engine.config.tiers.get(symbol)
        return None if table is None else table.tiers

    async def _warn_tiers(self, warnings: Sequence[str]) -> None:
        """One ``tier_tables`` warning alert per start that uses a fallback table."""
        if not warnings or self.config.feed.mode != "ccxt":
            return  # offline modes (sim, replay) use the snapshot on purpose
        for text in warnings:
            _log.warning("tier table fallback", detail=text)
        ts = self._now_ms()
        event: Event = {
            "type": "tier_tables",
            "ts": ts,
            "account": None,
            "severity": "warning",
            "sources": dict(self.tier_sources),
            "reason": "; ".join(warnings),
        }
        body = {k: v for k, v in event.items() if k not in ("ts", "account")}
        async with self._step_lock:
            await self._commit(ts, "tier_tables", body, [event])

    # -- recovery -------------------------------------------------------------------------------

    async def _recover(self, journal: Journal) -> None:
        """Re-apply every stored input in order; nothing is published (see module docstring)."""
        count = 0
        last_seq = 0
        read = 0
        reported = time.monotonic()
        async for seq, ts, kind, body in journal.inputs_after(0):
            last_seq = seq
            read += 1
            now = time.monotonic()
            if now - reported >= self.recovery_progress_s:
                reported = now
                _log.info("recovering the journal", inputs=read, seq=seq)
                self._notifier.extend_timeout(
                    RECOVERY_EXTEND_S, status=f"recovering: {read} inputs read"
                )
            if kind in _NOT_REPLAYED:
                continue
            # Not strict: journals written before unknown keys were refused may hold some.
            command = parse_command(body, strict=False)
            self.engine.apply(ts, command)
            if isinstance(command, TickCmd):
                self._last_tick[command.symbol] = (ts, command, True)
                self._funding.observe(command.symbol, ts, command.funding_rate)
            count += 1
        self.recovered_inputs = count
        self._next_seq = last_seq + 1
        if last_seq == 0:
            self._pending_seed = [dict(c) for c in self.config.seed]
            for obj in self._initial_commands:
                await self.apply_command(obj)

    async def apply_command(self, obj: Mapping[str, Any]) -> list[Event]:
        """Apply one input object (an ``order``, ``cancel``, ... line) now, journal it with its
        events, and return the events. :class:`~guardbot.errors.InputError` for a malformed
        object (nothing applied); :class:`~guardbot.errors.StoreError` is fatal for the caller.
        """
        command = parse_command(obj)
        async with self._step_lock:
            return await self._apply_locked(obj, command, self._now_ms())

    async def control_command(self, obj: Mapping[str, Any]) -> list[Event]:
        """A command from ``.../cmd``: like :meth:`apply_command`, but the newest tick of each
        symbol is journaled first (recovery must re-apply it at the prices it saw live), and a
        command the engine refused (only ``order_rejected``) is journaled as ``refused_command``,
        which recovery skips: it changed nothing, and the replayed state may lack what refused it
        (a stale feed)."""
        command = parse_command(obj)
        async with self._step_lock:
            await self._flush_ticks()
            ts = self._now_ms()
            events = self.engine.apply(ts, command)
            refused = bool(events) and all(e.get("type") == "order_rejected" for e in events)
            await self._commit(ts, "refused_command" if refused else str(obj["type"]), obj, events)
            return events

    async def _apply_locked(self, obj: Mapping[str, Any], command: Command, ts: int) -> list[Event]:
        events = self.engine.apply(ts, command)
        await self._commit(ts, str(obj.get("type")), obj, events)
        return events

    async def _apply_seed(self, ts: int) -> list[Event]:
        """Apply the ``[[seed]]`` commands (validated by the config loader) at ``ts``."""
        seed, self._pending_seed = self._pending_seed, []
        await self._flush_ticks()  # the prices the seed orders fill at must replay too
        caused: list[Event] = []
        for obj in seed:
            events = await self._apply_locked(obj, parse_command(obj), ts)
            rejected = [e for e in events if e.get("type") == "order_rejected"]
            _log.info("seed command applied", type=obj.get("type"), rejected=len(rejected))
            caused += events
        return caused

    # -- steps ----------------------------------------------------------------------------------

    def _outbox_rows(self, seq: int, events: Sequence[Event]) -> list[OutboxRow]:
        rows: list[OutboxRow] = []
        for event in events:
            alert_id = None
            if event.get("type") in ALERT_TYPES:
                # event_messages gives the alert first, then .../events/<type>.
                alert_id = f"{self.instance}-{seq}-{len(rows)}"
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
        self,
        ts: int,
        kind: str,
        body: Mapping[str, Any],
        events: Sequence[Event],
        received_at: float | None = None,
    ) -> int:
        """Journal one input with its events and outbox rows, then wake the publisher."""
        assert self._journal is not None
        expected = self._next_seq
        outbox = self._outbox_rows(expected, events)
        seq = await self._journal.commit_step(
            ts=ts, kind=kind, body=body, events=events, outbox=outbox
        )
        self._next_seq = seq + 1
        self.metrics.events(events)
        if outbox and received_at is not None:
            self.metrics.publish_expected(seq, received_at)
        for event in events:
            if event.get("type") in ALERT_TYPES:
                _log_alert(event)
        if seq != expected:  # pragma: no cover - a second writer on the same database
            _log.error("journal seq differs from the expected one", expected=expected, got=seq)
        if outbox:
            self._wake.set()
        return seq

    async def _feed_loop(self) -> None:
        """Run the feed; after an unexpected error, log it and start a new feed with jittered
        backoff. A :class:`GuardbotError` (bad configuration, a bad replay line, the database)
        is not retried: it ends the daemon."""
        attempt = 0
        while True:
            consumed = 0
            try:
                async with self._feed_factory(self.config) as feed:
                    self._feed = feed
                    updates = feed.updates()
                    try:
                        async for item in updates:
                            consumed += 1
                            await self._on_feed(item)
                    finally:
                        aclose = getattr(updates, "aclose", None)
                        if aclose is not None:  # an async generator: run its cleanup now
                            await aclose()
                _log.info("feed ended")
                return
            except Exception as exc:
                if guardbot_error(exc) is not None:
                    raise
                if consumed:
                    attempt = 0  # it worked for a while: start the backoff over
                delay = backoff_delay(attempt, random.random)
                attempt += 1
                self.feed_restarts += 1
                self.metrics.reconnected("feed")
                _log.error(
                    "feed crashed; starting a new one",
                    error=f"{type(first_error(exc)).__name__}: {first_error(exc)}",
                    restart_in_s=round(delay, 2),
                    restarts=self.feed_restarts,
                    exc_info=exc,
                )
                await asyncio.sleep(delay)

    async def _on_feed(self, item: FeedEvent) -> None:
        runner = self.runner
        if isinstance(item, TickUpdate):
            received = time.monotonic()
            self.metrics.tick_received(item.tick.symbol)
            async with self._step_lock:
                events = await self._on_tick(item, received)
            if runner is not None:
                # Outside the step lock: the strategy's own commands take it.
                await runner.on_events(events)
                await runner.on_tick(item.tick.symbol, item.ts)
        else:
            async with self._step_lock:
                event = await self._on_feed_health(item)
            if runner is not None:
                await runner.on_events([event])

    async def _on_tick(self, item: TickUpdate, received: float) -> list[Event]:
        """Apply one tick (and the funding it crosses, and the seed once priced); return every
        event that caused."""
        tick = item.tick
        caused: list[Event] = []
        due = self._funding.observe(tick.symbol, item.ts, tick.funding_rate, item.next_funding_ts)
        if due is not None:
            caused += await self._apply_funding(due)
        started = time.perf_counter()
        events = self.engine.tick(item.ts, tick)
        self.metrics.tick_applied(
            tick.symbol, time.perf_counter() - started, self._clock() - item.ts / 1000
        )
        # A tick that moved a trailing stop is journaled even without events: recovery must
        # see it to rebuild the stop's trigger price exactly.
        journaled = bool(events) or self.engine.tick_moved_orders
        if journaled:
            await self._commit(item.ts, "tick", tick_body(tick), events, received)
            caused += events
        self._last_tick[tick.symbol] = (item.ts, tick, journaled)
        if self._pending_seed and all(s in self._last_tick for s in self.config.exchange.symbols):
            caused += await self._apply_seed(item.ts)
        return caused

    async def _apply_funding(self, due: FundingDue) -> list[Event]:
        """Settle funding at its time, before the tick that crossed it (journaled even when no
        position is open, so that a restart does not settle it again)."""
        body = {"type": "funding", "symbol": due.symbol, "rate": due.rate}
        events = self.engine.apply(due.funding_ts, parse_command(body))
        await self._commit(due.funding_ts, "funding", body, events)
        _log.info("funding settled", symbol=due.symbol, rate=str(due.rate), events=len(events))
        return events

    async def _on_feed_health(self, item: FeedStale | FeedRecovered) -> Event:
        symbols = [item.symbol] if item.symbol is not None else list(self.config.exchange.symbols)
        stale = isinstance(item, FeedStale)
        for symbol in symbols:
            self.engine.set_price_stale(symbol, stale)
            self.metrics.set_feed_stale(symbol, stale)
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
        if stale:
            self._stale.add(item.symbol)
        else:
            self._stale.discard(item.symbol)
        if self._publisher is not None:
            self._publisher.refresh_status(self._wake)
        body = {k: v for k, v in event.items() if k not in ("ts", "account")}
        await self._commit(ts, str(event["type"]), body, [event])
        return event

    # -- status ---------------------------------------------------------------------------------

    def _status_info(self) -> dict[str, Any]:
        """What the retained ``.../status`` carries besides ts/version (docs/contracts.md §3),
        built by
        :func:`~guardbot.daemon.status.status_payload`, which the health check reads back."""
        now = self._now_ms()
        feeds: dict[str, FeedStatus] = {}
        for symbol in self.config.exchange.symbols:
            last = self._last_tick.get(symbol)
            stale = symbol in self._stale or None in self._stale
            feeds[symbol] = FeedStatus(stale, last[0] if last is not None else None)
        oldest = self._outbox_oldest_ms
        info = status_payload(
            ts=now,
            version=__version__,
            feeds=feeds,
            outbox_depth=self._outbox_depth,
            outbox_oldest_age_ms=None if oldest is None else max(0, now - oldest),
        )
        del info["ts"], info["version"]  # the publisher stamps its own
        info["tiers"] = dict(self.tier_sources)
        return info

    async def _refresh_outbox_stats(self) -> None:
        assert self._journal is not None
        self._outbox_depth = await self._journal.outbox_depth()
        self._outbox_oldest_ms = await self._journal.oldest_pending_ts()

    async def _status_loop(self) -> None:
        """Republish the retained status every ``status_interval`` s (health checks read its
        ``ts`` to tell a live daemon from a stale retained message)."""
        assert self._outbox is not None  # set by run() before the tasks start
        emptied = self._outbox.emptied
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(self.status_interval):
                    await emptied.wait()
            emptied.clear()
            await self._refresh_outbox_stats()
            if self._publisher is not None:
                self._publisher.refresh_status(self._wake)

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
