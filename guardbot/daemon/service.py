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
``notify`` (``[notify] urls_env`` set)
    :class:`~guardbot.notify.notifier.Notifier` reads the alerts from the journal's outbox with
    its own durable cursor and sends them through apprise (never on the tick path).
``homeassistant-birth`` (``[homeassistant] enabled = true``)
    Publishes every discovery config again when Home Assistant announces itself; the configs and
    states themselves go through the outbox (:mod:`guardbot.daemon.integrations`).
``watchdog`` (under systemd with ``WatchdogSec``), ``tier-refresh`` (ccxt mode)
    ``WATCHDOG=1`` while healthy; the tier tables refetched daily, a changed one journaled as a
    ``tiers`` input and applied at once.
``shutdown``
    Waits for ``stop``; then stops the feed (holding the step lock, so that no input is between
    the engine and the journal), lets the strategy's ``on_stop`` run, lets the publisher drain
    for up to :attr:`Daemon.drain_timeout` seconds, publishes ``offline`` and returns.

A ``[strategy]`` runs on a :class:`~guardbot.paper.PaperExchange` whose commands take the control
path; its hooks are called after each step, outside the step lock.

The parts, each in its own module: the step pipeline ("saved before published", alert ids) in
:mod:`~guardbot.daemon.pipeline`, recovery in :mod:`~guardbot.daemon.recovery`, the feed loop with
its restarts and staleness grace in :mod:`~guardbot.daemon.feed_loop`, tier resolution and refresh
in :mod:`~guardbot.daemon.tier_tables`, the outbox and account snapshots in
:mod:`~guardbot.daemon.outbox`, the status in :mod:`~guardbot.daemon.status_report`. This module
holds start-up, the task group and shutdown.

Restart recovery (:mod:`guardbot.daemon.recovery`): the engine is loaded from the newest usable
checkpoint (written every ``[store] checkpoint_interval_s`` and at a clean stop,
:mod:`guardbot.daemon.checkpoints`) and the journal's inputs after it are re-applied in order with
publishing suppressed. A clean stop journals the newest
unjournaled tick of each symbol, so after a clean stop the marks are restored too. A tick that
moves a trailing stop without an event (``Engine.tick_moved_orders``), or starts or cancels a
mirror drift's wait for confirmation (``Engine.tick_changed_drift_wait``), is journaled too, so
the stops' extremes and the drift alerts replay exactly.

Funding: a :class:`~guardbot.core.funding.FundingSchedule` turns a tick that crosses a funding time
into a journaled ``funding`` input applied just before that tick.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from guardbot.config import Config
from guardbot.core.engine import Engine
from guardbot.core.events import Event
from guardbot.daemon.checkpoints import Checkpointer, CheckpointInfo
from guardbot.daemon.errors import first_error, guardbot_error
from guardbot.daemon.feed_loop import (
    DEFAULT_SIM_PRICES,
    FeedFactory,
    FeedHealth,
    FeedLoop,
    default_feed,
)
from guardbot.daemon.integrations import HomeAssistantBridge, build_notifier
from guardbot.daemon.mirror_loop import MirrorLoop, mirror_loops
from guardbot.daemon.outbox import AccountSnapshots, Outbox
from guardbot.daemon.pipeline import StepPipeline, tick_body
from guardbot.daemon.recovery import RECOVERY_PROGRESS_S, Recovered, recover
from guardbot.daemon.sdnotify import Notifier, watchdog_loop
from guardbot.daemon.status_report import StatusReport
from guardbot.daemon.tier_tables import TierTables
from guardbot.errors import ConfigError
from guardbot.feeds.base import FeedEvent, FeedRecovered, FeedStale, TickUpdate
from guardbot.metrics.prometheus import (
    Metrics,
    MetricsServer,
    engine_liquidation_rows,
    engine_margin_rows,
    engine_mirror_rows,
)
from guardbot.mqtt.client import BrokerSettings
from guardbot.mqtt.commands import CommandGate, RecentReplies
from guardbot.mqtt.listener import ControlListener, handle_command
from guardbot.mqtt.publisher import Publisher
from guardbot.mqtt.topics import Message
from guardbot.notify.notifier import Notifier as AlertNotifier
from guardbot.runtime.net import is_loopback_host
from guardbot.store.journal import Journal
from guardbot.store.lock import DataDirLock
from guardbot.tiers.fetch import Fetcher

__all__ = [
    "DEFAULT_SIM_PRICES",
    "Daemon",
    "FeedFactory",
    "default_feed",
    "first_error",
    "guardbot_error",
    "tick_body",
]

if TYPE_CHECKING:  # ccxt (~2 s, ~65 MB) is imported only by a feed or mirror that needs it
    from guardbot.feeds.exchange import ExchangeFactory
    from guardbot.paper import StrategyRunner

_log = structlog.get_logger("guardbot.daemon")


def log_refused(reply: Mapping[str, Any], token: str) -> None:
    """Log a refused command by its reply: the code, the request id and the reason, with the
    control token cut out wherever it appears (a malformed payload's excerpt may hold it)."""
    reason = str(reply.get("reason", ""))
    if token:
        reason = reason.replace(token, "[REDACTED]")
    _log.warning(
        "command refused",
        code=reply.get("code"),
        requestId=reply.get("requestId"),
        reason=reason[:300],
    )


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
        mirror_factory: ExchangeFactory | None = None,
    ) -> None:
        self.config = config
        self.instance = config.guardbot.instance
        self.prefix = config.mqtt.topic_prefix
        self.data_dir = Path(data_dir) if data_dir is not None else config.guardbot.data_dir
        self._clock = clock
        self._initial_commands = [dict(c) for c in initial_commands]
        #: systemd notifications (READY, STOPPING, WATCHDOG); a no-op outside systemd.
        self._notifier = notifier if notifier is not None else Notifier.from_env(unset=True)
        #: Seconds between recovery progress reports (RECOVERY_PROGRESS_S; tests lower it).
        self.recovery_progress_s = RECOVERY_PROGRESS_S
        self._watchdog_stop = asyncio.Event()
        #: The ``[strategy]`` running on the paper exchange, once :meth:`run` started it.
        self.runner: StrategyRunner | None = None
        self.drain_timeout = drain_timeout
        self.tiers = TierTables(config, tier_fetcher)
        self.metrics = Metrics(symbols=config.exchange.symbols)
        self.metrics_server: MetricsServer | None = None
        self._wake = asyncio.Event()
        #: ``[notify]``'s delivery loop (set by :meth:`run` when ``urls_env`` is set).
        self.notify: AlertNotifier | None = None
        self._notify_task: asyncio.Task[None] | None = None
        #: The stale symbols and the watchdog's judgement of them.
        self.feed_health = FeedHealth.for_config(config)
        self.pipeline = StepPipeline(
            self.tiers.initial_engine(),
            instance=self.instance,
            prefix=self.prefix,
            symbols=config.exchange.symbols,
            metrics=self.metrics,
            clock=clock,
            wake=self._committed,
        )
        self.pipeline.on_health = self._feed_health_changed
        #: Home Assistant discovery (``[homeassistant] enabled = true``).
        self.homeassistant: HomeAssistantBridge | None = None
        if config.homeassistant.enabled:
            self.homeassistant = HomeAssistantBridge(config, self._put_retained)
            self.pipeline.alert_extra = self.homeassistant.alert_messages
        self.feed_loop = FeedLoop(config, feed_factory, self._on_feed, self.metrics)
        self.status = StatusReport(
            tuple(config.exchange.symbols),
            self.feed_health,
            self._last_tick_ts,
            lambda: self.tiers.sources,
            self._now_ms,
            status_interval,
            checkpoint_ts=self._checkpoint_ts,
        )
        self._publisher: Publisher | None = None
        #: The ``.../cmd`` listener when ``[control] enabled = true`` (set by :meth:`run`).
        self.control: ControlListener | None = None
        #: The publisher's source (set by :meth:`run`): the journal's outbox and the snapshots.
        self.outbox: Outbox | None = None
        self.snapshots: AccountSnapshots | None = None
        self.snapshot_interval = snapshot_interval
        #: Set once recovery and the initial commands are done (tests wait on it).
        self.ready = asyncio.Event()
        #: How many inputs recovery re-applied, and what else it did (set by :meth:`run`).
        self.recovered_inputs = 0
        #: One follower task per ``[accounts.<name>] mirror = true`` (guardbot.mirror).
        self.mirrors: list[MirrorLoop] = mirror_loops(
            config, self.pipeline, now_ms=self._now_ms, factory=mirror_factory
        )
        self.recovered: Recovered | None = None
        #: Checkpoints and retention (set by :meth:`run` once the journal is open).
        self.checkpointer: Checkpointer | None = None

    @property
    def engine(self) -> Engine:
        """The engine of the moment (rebuilt on the resolved tier tables at start)."""
        return self.pipeline.engine

    @property
    def tier_sources(self) -> dict[str, str]:
        """symbol -> where its tier table came from (set by :meth:`run`)."""
        return self.tiers.sources

    @property
    def feed_restarts(self) -> int:
        """How often the feed was restarted after an unexpected error."""
        return self.feed_loop.restarts

    def _checkpoint_ts(self) -> int | None:
        latest = self.checkpointer.latest if self.checkpointer is not None else None
        return None if latest is None else latest.ts

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _last_tick_ts(self, symbol: str) -> int | None:
        last = self.pipeline.last_tick.get(symbol)
        return last[0] if last is not None else None

    def status_info(self) -> dict[str, Any]:
        """What the retained ``.../status`` carries besides ts/version."""
        return self.status.info()

    async def apply_command(self, obj: Mapping[str, Any]) -> list[Event]:
        """See :meth:`StepPipeline.apply_command`."""
        return await self.pipeline.apply_command(obj)

    async def control_command(self, obj: Mapping[str, Any]) -> list[Event]:
        """See :meth:`StepPipeline.control_command`."""
        return await self.pipeline.control_command(obj)

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
        pipeline = self.pipeline
        async with AsyncExitStack() as stack:
            stack.enter_context(DataDirLock(self.data_dir))
            journal = await stack.enter_async_context(
                Journal.in_data_dir(self.data_dir, instance=self.instance)
            )
            # A read-only database (permissions, an immutable file, a read-only mount) opens and
            # reads fine: refuse it now, naming the file, rather than at the first input.
            await journal.check_writable()
            pipeline.attach(journal)
            self.status.journal = journal
            self.notify = build_notifier(self.config, journal)
            if self.notify is not None:
                await self.notify.prepare()  # before this run commits anything
                self.status.notify_backlog = self.notify.backlog
            pipeline.engine, warnings = await self.tiers.resolve_at_start(journal, self._now_ms())
            recovered = await recover(
                journal, pipeline, self._notifier, progress_s=self.recovery_progress_s
            )
            self.recovered_inputs = recovered.applied
            self.recovered = recovered
            store = self.config.store
            checkpointer = Checkpointer(
                pipeline,
                journal,
                interval_s=store.checkpoint_interval_s,
                retention_days=store.retention_days,
                now_ms=self._now_ms,
                outbox_cursor=self._notify_cursor,
            )
            self.checkpointer = checkpointer
            if recovered.checkpoint_seq:
                checkpointer.latest = CheckpointInfo(
                    recovered.checkpoint_seq, recovered.checkpoint_ts or self._now_ms()
                )
            # The state just rebuilt lives as long as the process: out of the collector's
            # generations, so that a collection's cost does not grow with it.
            gc.collect()
            gc.freeze()
            # The tables resolved today, journaled where they differ from those in force.
            await self.tiers.journal_at_start(pipeline)
            if recovered.last_seq == 0:
                pipeline.pending_seed = [dict(c) for c in self.config.seed]
                for obj in self._initial_commands:
                    await pipeline.apply_command(obj)
            await self.tiers.warn(pipeline, warnings)
            await self._warn_checkpoints(recovered.warnings)
            outbox = Outbox(journal, self._wake, self.metrics)
            self.outbox = outbox
            self.snapshots = AccountSnapshots(
                lambda: pipeline.engine,
                outbox,
                lock=pipeline.lock,
                prefix=self.prefix,
                instance=self.instance,
                now_ms=self._now_ms,
                interval=self.snapshot_interval,
                on_snapshot=self.homeassistant.on_snapshot if self.homeassistant else None,
            )
            if self.homeassistant is not None:
                self.homeassistant.start()
            embedded = await self._start_broker(stack)
            broker = BrokerSettings.from_section(mqtt)
            publisher = Publisher(
                broker,
                instance=self.instance,
                prefix=self.prefix,
                qos=mqtt.qos,
                clock=self._clock,
                status_info=self.status.info,
            )
            self._publisher = publisher
            await self.status.refresh()
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
                # What it runs against, so that a log says it without reading the config: the
                # broker (its URL never carries credentials), control, each symbol's tier source.
                broker="embedded" if embedded else "external",
                broker_url=broker.url,
                control="enabled" if self.control is not None else "disabled",
                tier_sources=dict(self.tiers.sources),
            )
            if self.runner is not None:
                await self.runner.start()
            async with asyncio.TaskGroup() as group:
                pub_task = group.create_task(
                    publisher.run(outbox, wake=self._wake), name="publisher"
                )
                others = [
                    group.create_task(self.feed_loop.run(), name="feed"),
                    group.create_task(self.snapshots.run(), name="snapshots"),
                    group.create_task(
                        self.status.run(outbox.emptied, self._republish_status), name="status"
                    ),
                    group.create_task(checkpointer.run(), name="checkpoint"),
                    *self._extra_tasks(group, journal),
                ]
                group.create_task(
                    self._shutdown(stop, publisher, pub_task, others),
                    name="shutdown",
                )
            await pipeline.flush_ticks()
            await checkpointer.write()  # a clean stop: the next start replays nothing
            _log.info("guardbot daemon stopped", pending=await outbox.depth())
        pipeline.journal = None
        self.status.journal = None
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
        await self._stop_integrations()
        if self.control is not None:
            # Before taking the step lock: the command in hand finishes and gets its reply.
            await self.control.close(timeout=self.drain_timeout)
        # Holding the step lock, no task is between applying an input and journaling it: the
        # cancellation cannot leave the engine ahead of the journal.
        async with self.pipeline.lock:
            for task in others:
                task.cancel()
            await asyncio.wait(others)  # unlike ``await task``, never swallows our cancellation
        if self.runner is not None:
            await self.runner.stop()  # on_stop may still send commands: after the lock
        assert self.outbox is not None and self.snapshots is not None
        self.snapshots.publish()  # the final state, if it changed
        try:
            async with asyncio.timeout(self.drain_timeout):
                await self.outbox.wait_drained()
        except TimeoutError:
            _log.warning(
                "outbox not drained; the rest is published after the next start",
                pending=await self.outbox.depth(),
            )
        await publisher.close(timeout=self.drain_timeout)
        if not pub_task.done():
            pub_task.cancel()

    async def _on_feed(self, item: FeedEvent) -> None:
        """One feed item through the pipeline; then the strategy's hooks, outside the step lock
        (the strategy's own commands take it)."""
        runner = self.runner
        if isinstance(item, TickUpdate):
            received = time.monotonic()
            self.metrics.tick_received(item.tick.symbol)
            events = await self.pipeline.tick(item, received)
            if runner is not None:
                await runner.on_events(events)
                await runner.on_tick(item.tick.symbol, item.ts)
        else:
            event = await self.pipeline.feed_health(item)
            if runner is not None:
                await runner.on_events([event])

    async def _warn_checkpoints(self, warnings: Sequence[str]) -> None:
        """One ``checkpoint`` warning alert when start-up skipped a checkpoint (its reasons)."""
        if not warnings:
            return
        for text in warnings:
            _log.warning("checkpoint skipped", detail=text)
        event: Event = {
            "type": "checkpoint",
            "ts": self._now_ms(),
            "account": None,
            "severity": "warning",
            "reason": "; ".join(warnings),
        }
        await self.pipeline.alert(event)

    def _feed_health_changed(self, item: FeedStale | FeedRecovered) -> None:
        self.feed_health.mark(item)
        self._republish_status()
        if self.homeassistant is not None:
            self.homeassistant.feed_changed(healthy=not self.feed_health.stale)

    def _committed(self) -> None:
        """A step wrote outbox rows: wake the publisher and the notifications."""
        self._wake.set()
        if self.notify is not None:
            self.notify.wake()

    def _put_retained(self, message: Message) -> None:
        if self.outbox is not None:
            self.outbox.put_retained(message)

    async def _stop_integrations(self) -> None:
        """The notification in hand is finished (and its cursor saved) within the drain
        timeout; Home Assistant's birth watcher stops."""
        if self.homeassistant is not None:
            await self.homeassistant.watcher.close()
        task = self._notify_task
        if self.notify is not None and task is not None:
            self.notify.close()
            done, _ = await asyncio.wait([task], timeout=self.drain_timeout)
            if not done:
                _log.warning("notification not delivered before the stop; sent after the restart")

    def _republish_status(self) -> None:
        if self._publisher is not None:
            self._publisher.refresh_status(self._wake)

    # -- optional components (embedded broker, control, metrics, systemd) -----------------------

    async def _start_broker(self, stack: AsyncExitStack) -> bool:
        """Start the embedded loopback broker when ``embedded_broker`` asks for one; whether it
        did."""
        mqtt = self.config.mqtt
        if mqtt.embedded_broker == "never":
            return False
        from guardbot.mqtt.broker import BrokerStartError, EmbeddedBroker, should_embed

        embed = await asyncio.to_thread(should_embed, mqtt.embedded_broker, mqtt.host, mqtt.port)
        if not embed:
            return False
        try:
            broker = await stack.enter_async_context(EmbeddedBroker(mqtt.host, mqtt.port))
        except BrokerStartError:
            if mqtt.embedded_broker == "always":
                raise
            # "auto": something started listening since the probe; that is the broker to use.
            _log.warning(
                "embedded broker not started: the port is taken",
                url=BrokerSettings.from_section(mqtt).url,
            )
            return False
        _log.info("embedded mqtt broker started", url=broker.url, startup_s=broker.startup_s)
        return True

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
            feed_status = getattr(self.feed_loop.feed, "status", None)
            if callable(feed_status):
                m.sync_feed_status(feed_status())

        m.add_refresh_hook(feed)

        status = self.status

        async def outbox() -> None:
            await status.refresh()
            oldest = status.outbox_oldest_ms
            m.set_outbox(
                status.outbox_depth, None if oldest is None else (self._now_ms() - oldest) / 1000
            )
            m.set_store(
                status.db_bytes, status.journal_inputs, status.checkpoint_age_s(self._now_ms())
            )
            m.set_notify_backlog(status.notify_pending)

        m.add_refresh_hook(outbox)
        m.add_refresh_hook(lambda: m.set_accounts(*engine_margin_rows(self.engine)))
        m.add_refresh_hook(
            lambda: m.set_liquidation_distances(engine_liquidation_rows(self.engine))
        )
        if self.mirrors:
            m.add_refresh_hook(lambda: m.set_mirrors(engine_mirror_rows(self.engine)))

    def _notify_cursor(self) -> int | None:
        """The notifications' outbox cursor (None without ``[notify]``: nothing held back)."""
        return None if self.notify is None else self.notify.cursor

    def _extra_tasks(self, group: asyncio.TaskGroup, journal: Journal) -> list[asyncio.Task[None]]:
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
            tasks.append(
                group.create_task(self.tiers.refresh(journal, self.pipeline), name="tier-refresh")
            )
        if self.control is not None:
            tasks.append(group.create_task(self.control.run(), name="control"))
        if self.homeassistant is not None:
            tasks.append(
                group.create_task(self.homeassistant.watcher.run(), name="homeassistant-birth")
            )
        if self.notify is not None:
            self._notify_task = group.create_task(self.notify.run(), name="notify")
            tasks.append(self._notify_task)
        for loop in self.mirrors:
            tasks.append(group.create_task(loop.run(), name=f"mirror-{loop.name}"))
        return tasks

    def _strategy_runner(self) -> StrategyRunner | None:
        """The ``[strategy]`` on a paper exchange whose commands go through
        :meth:`StepPipeline.control_command`: journaled (with the prices they saw) before the
        strategy sees their events, like a command from ``.../cmd``."""
        section = self.config.strategy
        if section is None:
            return None
        # Imported here: the paper exchange speaks ccxt's exceptions, and ccxt is not worth
        # loading for a daemon without a strategy.
        from guardbot.paper import PaperExchange, StrategyRunner, load_strategy

        strategy = load_strategy(section.path)(section.params)
        exchange = PaperExchange(
            self.engine,
            self.pipeline.control_command,
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

        token = control.token.reveal()

        async def handler(payload: bytes) -> Mapping[str, Any]:
            reply = await handle_command(
                gate, payload, self.pipeline.control_command, recent=recent
            )
            if not reply.get("ok"):
                log_refused(reply, token)
            return reply

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
        # Looked up at each call, so that a test can wrap ``feed_health.healthy``.
        return self.feed_health.healthy()
