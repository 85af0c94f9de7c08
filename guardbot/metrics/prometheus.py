"""Prometheus metrics of the daemon: the :class:`Metrics` registry and its :class:`MetricsServer`.

:class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry` (never the global
default one), so tests and several daemons in one process do not collide. The daemon calls
intention-revealing methods on it. The per-tick ones (:meth:`Metrics.tick_received`,
:meth:`Metrics.tick_applied`) keep plain Python numbers per symbol that a custom collector turns
into samples at scrape time, so a call costs a dict lookup and a few additions (about 0.1 and
0.3 µs, against 4 µs through prometheus-client's locked metric objects)::

    metrics = Metrics(version=__version__)
    metrics.tick_received("BTC/USDT:USDT")
    metrics.tick_applied("BTC/USDT:USDT", engine_seconds=0.00012, lag_seconds=0.08)
    metrics.events(events)                       # alerts, liquidations, refused orders
    metrics.add_refresh_hook(outbox_gauges)      # run just before each scrape
    async with MetricsServer(metrics, host="127.0.0.1", port=9108) as server:
        ...                                      # GET http://127.0.0.1:<server.port>/metrics

Values that other components already count cumulatively (a feed's drops and reconnects, the MQTT
publisher's reconnects) are mirrored with :meth:`Metrics.sync_dropped` /
:meth:`Metrics.sync_reconnects`, which add the increase since the last call; slow or async sources
(the outbox depth is a database query) are read in refresh hooks, at scrape time only. Every metric
is listed in ``docs/metrics.md``.

The server runs on aiohttp inside the daemon's event loop (no thread): metrics are read in the
thread that writes them, which is what lets the tick metrics go without locks. Use one
:class:`Metrics` from one event loop thread only. It negotiates the exposition format with the
scraper (``prometheus_client.aiohttp.make_aiohttp_handler``): the classic text format by default,
OpenMetrics when Prometheus asks for it.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import socket
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from guardbot import __version__
from guardbot.core.events import ALERT_TYPES, severity_of
from guardbot.errors import ConfigError
from guardbot.runtime.net import format_host_port as format_listen
from guardbot.runtime.net import is_loopback_host as is_loopback
from guardbot.runtime.net import parse_host_port

if TYPE_CHECKING:
    # aiohttp is imported when a server starts: it would add ~0.2 s to every import of this
    # module, server or not.
    from aiohttp import web

    from guardbot.core.engine import Engine

__all__ = [
    "COMPONENTS",
    "DEFAULT_LISTEN",
    "ENGINE_SECONDS_BUCKETS",
    "LISTEN_KEY",
    "PUBLISH_SECONDS_BUCKETS",
    "LiquidationRow",
    "MarginRow",
    "Metrics",
    "MetricsServer",
    "RefreshHook",
    "engine_liquidation_rows",
    "engine_margin_rows",
    "format_listen",
    "is_loopback",
    "parse_listen",
]

_log = structlog.get_logger("guardbot.metrics")

#: The configuration key of the listen address, named in every error about it.
LISTEN_KEY = "metrics.listen"
#: Loopback by default: metrics name accounts and symbols, which is nobody else's business.
DEFAULT_LISTEN = "127.0.0.1:9108"

#: Engine time per tick: the engine takes 10-15 µs per tick on the development machine, so the
#: buckets start below that at 50 µs (``le="5e-05"`` holds the normal case) and reach 100 ms, where
#: a tick would already delay the feed noticeably.
ENGINE_SECONDS_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
)
#: Tick receive to PUBACK: a journal commit plus a loopback MQTT round trip is a few ms; seconds
#: mean a slow disk or broker. Beyond 5 s (a broker outage) only ``+Inf`` and the sum tell.
PUBLISH_SECONDS_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

#: Latency tracking stops remembering the oldest unacknowledged ticks beyond this many, so that an
#: MQTT outage of hours cannot grow memory without bound.
MAX_PENDING_PUBLISH = 10_000

#: Components whose reconnects are counted.
COMPONENTS = ("feed", "mqtt")

#: A refresh hook: a function called before each scrape, sync or async.
RefreshHook = Callable[[], Awaitable[None] | None]


class MarginRow(NamedTuple):
    """One margin ratio: ``symbol`` is ``None`` for the account's cross part."""

    account: str
    symbol: str | None
    margin_ratio: Decimal | None


class LiquidationRow(NamedTuple):
    """One open position's distance to liquidation (fraction of the mark), or None."""

    account: str
    symbol: str
    side: str
    distance: Decimal | None


class MirrorRow(NamedTuple):
    """A mirrored position's liquidation price by guardbot and by the exchange, and the drift."""

    account: str
    symbol: str
    ours: Decimal | None
    theirs: Decimal | None
    drift: Decimal | None


class _SymbolStats:
    """Plain per-symbol tick counts: an attribute increment per tick, no lock (see
    :class:`_TickCollector`)."""

    __slots__ = ("applied", "lag", "received")

    def __init__(self) -> None:
        self.received = 0
        self.applied = 0
        self.lag: float | None = None


class _TickCollector(Collector):
    """Exposes the per-tick metrics, kept in plain Python numbers, at scrape time.

    prometheus-client's own metrics take a ``threading.Lock`` and check labels on every update:
    about 0.6 µs per counter increment and 1.6 µs per histogram observation on the development
    machine, against 10-15 µs for the engine to apply a tick. Everything here is updated and read
    in the daemon's event loop thread only, so plain ints and floats are enough, and a tick costs
    a dict lookup, two increments and a bisect.
    """

    def __init__(self) -> None:
        self.symbols: dict[str, _SymbolStats] = {}
        self.bounds = ENGINE_SECONDS_BUCKETS
        # "le" values as prometheus-client's Histogram writes them ("5e-05", "+Inf"), so the
        # series keep the same labels should this become a library Histogram again.
        self.le: tuple[str, ...] = tuple(
            floatToGoString(b)  # type: ignore[no-untyped-call]
            for b in (*ENGINE_SECONDS_BUCKETS, math.inf)
        )
        self.engine_counts = [0] * (len(ENGINE_SECONDS_BUCKETS) + 1)  # the last is +Inf
        self.engine_sum = 0.0

    def _families(
        self,
    ) -> tuple[CounterMetricFamily, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily]:
        return (
            CounterMetricFamily(
                "guardbot_ticks_received",
                "Merged ticks the feed delivered to the daemon.",
                labels=["symbol"],
            ),
            CounterMetricFamily(
                "guardbot_ticks_applied", "Ticks the margin engine applied.", labels=["symbol"]
            ),
            GaugeMetricFamily(
                "guardbot_feed_lag_seconds",
                "Receive time minus exchange event time of the latest applied tick.",
                labels=["symbol"],
            ),
            HistogramMetricFamily(
                "guardbot_engine_tick_seconds", "Engine time to apply one tick.", labels=[]
            ),
        )

    def describe(self) -> Iterable[Metric]:
        # Names only, so that the registry can refuse a duplicate without a collect().
        return self._families()

    def collect(self) -> Iterable[Metric]:
        received, applied, lag, engine = self._families()
        for symbol, stats in self.symbols.items():
            received.add_metric([symbol], stats.received)
            applied.add_metric([symbol], stats.applied)
            if stats.lag is not None:
                lag.add_metric([symbol], stats.lag)
        cumulative = 0
        buckets: list[tuple[str, float]] = []
        for le, count in zip(self.le, self.engine_counts, strict=True):
            cumulative += count
            buckets.append((le, cumulative))
        engine.add_metric([], buckets, self.engine_sum)
        return (received, applied, lag, engine)


def _ratio_value(ratio: Decimal | None) -> float:
    # None means no collateral left (margin balance <= 0): liquidatable now, so above any
    # threshold an alert rule may use.
    return float("inf") if ratio is None else float(ratio)


class Metrics:
    """Every guardbot metric, in a registry of its own; see the module docstring and
    ``docs/metrics.md``.

    ``symbols`` (the configured ones) and the components ``feed`` and ``mqtt`` get their series at
    0 from the start, so that ``rate()`` and absence alerts work before the first event.
    ``process_collector`` adds the standard ``process_*`` metrics (CPU seconds, resident memory,
    open file descriptors; Linux only) and ``python_info``.
    """

    def __init__(
        self,
        *,
        symbols: Iterable[str] = (),
        version: str = __version__,
        process_collector: bool = True,
        max_pending_publish: int = MAX_PENDING_PUBLISH,
    ) -> None:
        if max_pending_publish < 1:
            raise ValueError(f"max_pending_publish must be >= 1, got {max_pending_publish}")
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        if process_collector:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        Info("guardbot_build", "Build of the running guardbot.", registry=r).info(
            {"version": version}
        )

        self._dropped = Counter(
            "guardbot_ticks_dropped",
            "Price updates refused before reaching the engine, by reason.",
            ["symbol", "reason"],
            registry=r,
        )
        self._stale = Gauge(
            "guardbot_feed_stale",
            "1 while the symbol's price is stale (no fresh mark price), else 0.",
            ["symbol"],
            registry=r,
        )
        self._reconnects = Counter(
            "guardbot_reconnects",
            "Reconnections after a lost connection, by component (feed, mqtt).",
            ["component"],
            registry=r,
        )
        self._publish_seconds = Histogram(
            "guardbot_tick_to_publish_seconds",
            "From receiving a tick to the PUBACK of the first MQTT message it caused.",
            buckets=PUBLISH_SECONDS_BUCKETS,
            registry=r,
        )
        self._alerts = Counter(
            "guardbot_alerts",
            "Alerts raised, by type and severity.",
            ["type", "severity"],
            registry=r,
        )
        self._liquidations = Counter(
            "guardbot_liquidations",
            "Positions liquidated by the shadow engine, by account and scope "
            "(position: an isolated position, account: a cross liquidation).",
            ["account", "scope"],
            registry=r,
        )
        self._refused = Counter(
            "guardbot_orders_refused",
            "Orders refused by the guards or order admission, by code.",
            ["code"],
            registry=r,
        )
        self._feed_backlog = Gauge(
            "guardbot_feed_backlog",
            "Feed events received and not yet applied by the engine (the feed's queue).",
            registry=r,
        )
        self._outbox_depth = Gauge(
            "guardbot_outbox_depth",
            "MQTT messages waiting in the outbox.",
            registry=r,
        )
        self._outbox_age = Gauge(
            "guardbot_outbox_oldest_unsent_age_seconds",
            "Age of the oldest unsent outbox message; 0 when the outbox is empty.",
            registry=r,
        )
        self._notify_backlog = Gauge(
            "guardbot_notify_backlog",
            "Alerts in the outbox not yet handled by [notify] (0 without notifications).",
            registry=r,
        )
        self._db_bytes = Gauge(
            "guardbot_db_bytes",
            "Size of the journal database (file and write-ahead log).",
            registry=r,
        )
        self._journal_inputs = Gauge(
            "guardbot_journal_inputs",
            "Inputs stored in the journal (what a start without a checkpoint would replay).",
            registry=r,
        )
        self._checkpoint_age = Gauge(
            "guardbot_checkpoint_age_seconds",
            "Age of the newest checkpoint of the engine state; -1 before the first.",
            registry=r,
        )
        self._positions = Gauge(
            "guardbot_open_positions",
            "Open positions, by account.",
            ["account"],
            registry=r,
        )
        self._margin_ratio = Gauge(
            "guardbot_margin_ratio",
            'Maintenance requirement / margin balance; symbol="" is the cross part of the account, '
            "a symbol an isolated position; +Inf when no collateral is left.",
            ["account", "symbol"],
            registry=r,
        )
        self._liq_distance = Gauge(
            "guardbot_liquidation_distance_ratio",
            "Distance of the mark price from the position's liquidation price, as a fraction of "
            "the mark (0.05 = 5 %); positions without a liquidation price have no series.",
            ["account", "symbol", "side"],
            registry=r,
        )
        self._mirror_liq = Gauge(
            "guardbot_mirror_liquidation_price",
            "Liquidation price of a mirrored position: source=guardbot (recomputed locally) or "
            "source=exchange (as the exchange reported it); absent when unknown.",
            ["account", "symbol", "source"],
            registry=r,
        )
        self._mirror_drift = Gauge(
            "guardbot_mirror_liquidation_drift_ratio",
            "(guardbot's - exchange's liquidation price) / mark of a mirrored position.",
            ["account", "symbol"],
            registry=r,
        )
        self._mqtt_connected = Gauge(
            "guardbot_mqtt_connected",
            "1 while connected to the MQTT broker, else 0.",
            registry=r,
        )
        self._refresh_errors = Counter(
            "guardbot_metrics_refresh_errors",
            "Refresh hooks that failed or timed out before a scrape (values shown are stale).",
            registry=r,
        )

        self._ticks = _TickCollector()
        r.register(self._ticks)
        self._symbols = self._ticks.symbols
        self._alert_children: dict[tuple[str, str], Callable[[], None]] = {}
        self._seen_totals: dict[tuple[str, ...], float] = {}
        self._margin_keys: set[tuple[str, str]] = set()
        self._position_keys: set[str] = set()
        self._distance_keys: set[tuple[str, str, str]] = set()
        self._mirror_liq_keys: set[tuple[str, str, str]] = set()
        self._mirror_drift_keys: set[tuple[str, str]] = set()
        self._pending_publish: dict[Hashable, float] = {}
        self._max_pending_publish = max_pending_publish
        self._hooks: list[RefreshHook] = []

        for symbol in symbols:
            self._symbol(symbol)
            self._stale.labels(symbol).set(0)
        for component in COMPONENTS:
            self._reconnects.labels(component)

    # -- ticks (hot path) -----------------------------------------------------------------------

    def _symbol(self, symbol: str) -> _SymbolStats:
        stats = self._symbols[symbol] = _SymbolStats()
        return stats

    def tick_received(self, symbol: str) -> None:
        """A merged tick for ``symbol`` came out of the feed."""
        stats = self._symbols.get(symbol) or self._symbol(symbol)
        stats.received += 1

    def tick_applied(
        self, symbol: str, engine_seconds: float, lag_seconds: float | None = None
    ) -> None:
        """The engine applied a tick of ``symbol`` in ``engine_seconds``; ``lag_seconds`` is the
        receive time minus the exchange's event time (``None``: the exchange gave no time)."""
        stats = self._symbols.get(symbol) or self._symbol(symbol)
        stats.applied += 1
        if lag_seconds is not None:
            stats.lag = lag_seconds
        ticks = self._ticks
        # bisect_left: the first bound >= the value, i.e. the "le" bucket it falls in
        ticks.engine_counts[bisect_left(ticks.bounds, engine_seconds)] += 1
        ticks.engine_sum += engine_seconds

    def tick_dropped(self, symbol: str, reason: str, count: int = 1) -> None:
        """``count`` updates of ``symbol`` were refused for ``reason`` (e.g. ``non_positive``)."""
        self._dropped.labels(symbol, reason).inc(count)

    def sync_dropped(self, symbol: str, totals: Mapping[str, int]) -> None:
        """Mirror a cumulative per-reason drop count (``SymbolState.dropped``)."""
        for reason, total in totals.items():
            delta = self._delta(("dropped", symbol, reason), total)
            if delta:
                self._dropped.labels(symbol, reason).inc(delta)

    def sync_feed_status(self, status: Mapping[str, Any]) -> None:
        """Mirror the drops, reconnects and backlog of a feed's ``status()`` snapshot
        (:meth:`~guardbot.feeds.ccxt_feed.CcxtFeed.status`: ``{"reconnects": n, "backlog": n,
        "symbols": {symbol: {"dropped": {reason: n}}}}``); missing keys are skipped, as feeds
        differ."""
        reconnects = status.get("reconnects")
        if isinstance(reconnects, int):
            self.sync_reconnects("feed", reconnects)
        backlog = status.get("backlog")
        if isinstance(backlog, int):
            self._feed_backlog.set(backlog)
        symbols = status.get("symbols")
        if isinstance(symbols, Mapping):
            for symbol, info in symbols.items():
                dropped = info.get("dropped") if isinstance(info, Mapping) else None
                if isinstance(dropped, Mapping):
                    self.sync_dropped(str(symbol), dropped)

    def set_feed_stale(self, symbol: str, stale: bool) -> None:
        self._stale.labels(symbol).set(1 if stale else 0)

    # -- connections ----------------------------------------------------------------------------

    def reconnected(self, component: str, count: int = 1) -> None:
        """``component`` (``feed``, ``mqtt``) reconnected ``count`` times."""
        self._reconnects.labels(component).inc(count)

    def sync_reconnects(self, component: str, total: int) -> None:
        """Mirror a cumulative reconnect count (``PublisherStatus.reconnects``, the ccxt feed's
        ``status()["reconnects"]``)."""
        delta = self._delta(("reconnects", component), total)
        if delta:
            self._reconnects.labels(component).inc(delta)

    def set_mqtt_connected(self, connected: bool) -> None:
        self._mqtt_connected.set(1 if connected else 0)

    def _delta(self, key: tuple[str, ...], total: float) -> float:
        """How much a mirrored cumulative ``total`` grew since the last call with ``key``.

        A total below the last one means its source started over (a new feed or publisher
        object): everything it counts is new, so the whole total is added.
        """
        last = self._seen_totals.get(key, 0)
        self._seen_totals[key] = total
        return total - last if total >= last else total

    # -- engine events --------------------------------------------------------------------------

    def alert(self, kind: str, severity: str) -> None:
        """An alert of type ``kind`` with ``severity`` was raised."""
        inc = self._alert_children.get((kind, severity))
        if inc is None:
            inc = self._alert_children[(kind, severity)] = self._alerts.labels(kind, severity).inc
        inc()

    def events(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Count the alerts, liquidations and refused orders among engine event dicts.

        Call it once per committed step (live events only: replayed inputs were counted by the
        process that journaled them).
        """
        for event in events:
            kind = event.get("type")
            if kind not in ALERT_TYPES:
                continue
            self.alert(str(kind), severity_of(event))
            if kind == "liquidation":
                account = event.get("account")
                scope = event.get("scope")
                self._liquidations.labels(
                    "" if account is None else str(account), "" if scope is None else str(scope)
                ).inc()
            elif kind == "order_rejected":
                self._refused.labels(str(event.get("code"))).inc()

    # -- publishing -----------------------------------------------------------------------------

    def published(self, latency_seconds: float) -> None:
        """Observe one tick-to-PUBACK latency."""
        self._publish_seconds.observe(latency_seconds)

    def publish_expected(self, key: Hashable, received_at: float) -> None:
        """A tick received at ``received_at`` (``time.monotonic()``) caused messages that are
        waiting for their PUBACK; ``key`` identifies its step (the daemon's input seq)."""
        pending = self._pending_publish
        if key in pending:
            return  # the first receive time is the one that counts
        if len(pending) >= self._max_pending_publish:
            # dicts keep insertion order: drop the oldest, whose latency is unknowable anyway
            del pending[next(iter(pending))]
        pending[key] = received_at

    def publish_acked(self, key: Hashable, acked_at: float) -> float | None:
        """A message of step ``key`` was acknowledged at ``acked_at`` (``time.monotonic()``).

        Observes and returns the latency the first time for ``key``; ``None`` for later messages
        of the same step and for steps never passed to :meth:`publish_expected`.
        """
        received_at = self._pending_publish.pop(key, None)
        if received_at is None:
            return None
        latency = acked_at - received_at
        self._publish_seconds.observe(latency)
        return latency

    def set_outbox(self, depth: int, oldest_age_seconds: float | None) -> None:
        """Outbox gauges; ``oldest_age_seconds`` is ``None`` (shown as 0) when nothing waits."""
        self._outbox_depth.set(depth)
        self._outbox_age.set(0.0 if oldest_age_seconds is None else max(0.0, oldest_age_seconds))

    def set_notify_backlog(self, alerts: int) -> None:
        """Alerts the notifications have still to handle (:meth:`Notifier.backlog`)."""
        self._notify_backlog.set(alerts)

    def set_store(self, db_bytes: int, journal_inputs: int, checkpoint_age_s: float | None) -> None:
        """Database gauges; ``checkpoint_age_s`` ``None`` (shown as -1) before any checkpoint."""
        self._db_bytes.set(db_bytes)
        self._journal_inputs.set(journal_inputs)
        self._checkpoint_age.set(-1.0 if checkpoint_age_s is None else checkpoint_age_s)

    # -- accounts -------------------------------------------------------------------------------

    def set_accounts(
        self,
        margin: Iterable[MarginRow | tuple[str, str | None, Decimal | None]],
        open_positions: Mapping[str, int],
    ) -> None:
        """Replace the margin-ratio and open-position gauges with the current set.

        ``margin`` holds ``(account, symbol, margin_ratio)``: symbol ``None`` for the cross part,
        ratio ``None`` for no collateral left (+Inf). Series of accounts and positions no longer
        in the set are removed, so a closed position does not linger at its last ratio.
        """
        keys: set[tuple[str, str]] = set()
        for account, symbol, ratio in margin:
            key = (account, symbol or "")
            keys.add(key)
            self._margin_ratio.labels(*key).set(_ratio_value(ratio))
        for key in self._margin_keys - keys:
            self._margin_ratio.remove(*key)
        self._margin_keys = keys
        for account, count in open_positions.items():
            self._positions.labels(account).set(count)
        current = set(open_positions)
        for account in self._position_keys - current:
            self._positions.remove(account)
        self._position_keys = current

    def set_liquidation_distances(self, rows: Iterable[LiquidationRow]) -> None:
        """Replace the liquidation-distance gauge with the current open positions' distances;
        positions that closed (or lost their liquidation price) lose their series."""
        keys: set[tuple[str, str, str]] = set()
        for account, symbol, side, distance in rows:
            if distance is None:
                continue
            key = (account, symbol, side)
            keys.add(key)
            self._liq_distance.labels(*key).set(float(distance))
        for key in self._distance_keys - keys:
            self._liq_distance.remove(*key)
        self._distance_keys = keys

    def set_mirrors(self, rows: Iterable[MirrorRow]) -> None:
        """Replace the mirror gauges with ``rows``; series of closed positions are removed."""
        liq_keys: set[tuple[str, str, str]] = set()
        drift_keys: set[tuple[str, str]] = set()
        for row in rows:
            for source, price in (("guardbot", row.ours), ("exchange", row.theirs)):
                if price is not None:
                    key = (row.account, row.symbol, source)
                    liq_keys.add(key)
                    self._mirror_liq.labels(*key).set(float(price))
            if row.drift is not None:
                drift_keys.add((row.account, row.symbol))
                self._mirror_drift.labels(row.account, row.symbol).set(float(row.drift))
        for key in self._mirror_liq_keys - liq_keys:
            self._mirror_liq.remove(*key)
        for pair in self._mirror_drift_keys - drift_keys:
            self._mirror_drift.remove(*pair)
        self._mirror_liq_keys, self._mirror_drift_keys = liq_keys, drift_keys

    # -- scrape-time refresh --------------------------------------------------------------------

    def add_refresh_hook(self, hook: RefreshHook) -> None:
        """Call ``hook`` (sync, or async and awaited) before each scrape, in order."""
        self._hooks.append(hook)

    async def refresh(self, *, timeout: float = 2.0) -> None:
        """Run the refresh hooks in order. A hook that fails, or takes longer than ``timeout``
        seconds, is logged and counted in ``guardbot_metrics_refresh_errors_total``; the scrape
        still gets every other value. A sync hook cannot be interrupted: keep them quick."""
        for hook in self._hooks:
            try:
                async with asyncio.timeout(timeout):
                    result = hook()
                    if inspect.isawaitable(result):
                        await result
            except TimeoutError:
                self._refresh_errors.inc()
                _log.warning("metrics refresh hook timed out", hook=repr(hook), timeout_s=timeout)
            # A broken source (say, the journal) must not blank the whole scrape: report it and
            # serve its last values; CancelledError is no Exception and still propagates.
            except Exception:
                self._refresh_errors.inc()
                _log.warning("metrics refresh hook failed", hook=repr(hook), exc_info=True)


def engine_margin_rows(engine: Engine) -> tuple[list[MarginRow], dict[str, int]]:
    """Margin rows and open-position counts of every account of ``engine``, for
    :meth:`Metrics.set_accounts`: the cross part of each account (ratio 0 without cross
    positions) and each isolated position."""
    rows: list[MarginRow] = []
    counts: dict[str, int] = {}
    for account in engine.iter_accounts():
        views, view = engine.views(account)
        counts[account.id] = len(views)
        rows.append(MarginRow(account.id, None, view.margin_ratio))
        # the two isolated sides of a hedged symbol are two series: symbol#long, symbol#short
        rows.extend(
            MarginRow(account.id, f"{v.symbol}#{v.side}" if v.hedged else v.symbol, v.margin_ratio)
            for v in views
            if v.margin_mode == "isolated"
        )
    return rows, counts


def engine_liquidation_rows(engine: Engine) -> list[LiquidationRow]:
    """Every open position's distance to its liquidation price, for
    :meth:`Metrics.set_liquidation_distances`."""
    rows: list[LiquidationRow] = []
    for account in engine.iter_accounts():
        views, _view = engine.views(account)
        for v in views:
            percent = v.distance_percent
            rows.append(
                LiquidationRow(
                    account.id, v.symbol, v.side, None if percent is None else percent / 100
                )
            )
    return rows


def engine_mirror_rows(engine: Engine) -> list[MirrorRow]:
    """Both liquidation prices and the drift of every mirrored position, for
    :meth:`Metrics.set_mirrors`."""
    rows: list[MirrorRow] = []
    for account in engine.iter_accounts():
        state = account.mirror
        if state is None:
            continue
        for symbol in sorted(account.positions):
            rows.append(
                MirrorRow(
                    account.id,
                    symbol,
                    state.liquidation.get(symbol),
                    state.exchange_liquidation.get(symbol),
                    state.drift.get(symbol),
                )
            )
    return rows


# -- the listen address ---------------------------------------------------------------------------


def parse_listen(text: str, *, key: str = LISTEN_KEY) -> tuple[str, int]:
    """``"host:port"`` to ``(host, port)``; IPv6 hosts in brackets (``"[::1]:9108"``).

    Port 0 asks for a free port. Raises :class:`ConfigError` naming ``key``.
    """
    return parse_host_port(text, key=key, example=DEFAULT_LISTEN)


# -- the HTTP server ------------------------------------------------------------------------------


def _bind(host: str, port: int, key: str) -> socket.socket:
    where = format_listen(host, port)
    fix = f"set {key} to a free address (port 0 picks one) or stop what listens there"
    try:
        infos = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE | socket.AI_NUMERICSERV
        )
    except socket.gaierror as exc:
        raise ConfigError(f"{key}: cannot resolve {where}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted daemon bind while old connections sit in TIME_WAIT; on Linux it does
        # not let two listeners share the port, so "already in use" is still reported.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"{key}: cannot listen on {where}: {exc.strerror or exc}; {fix}"
        ) from None
    sock.setblocking(False)
    return sock


class MetricsServer:
    """Serves ``GET /metrics`` of ``metrics`` on ``host``:``port`` while entered.

    ``port=0`` picks a free port; :attr:`port` tells which. Entering raises
    :class:`ConfigError` naming ``key`` (``metrics.listen``) when the address cannot be bound.
    Each scrape first runs the refresh hooks (:meth:`Metrics.refresh`). Other paths answer 404.
    """

    def __init__(
        self,
        metrics: Metrics,
        host: str = "127.0.0.1",
        port: int = 9108,
        *,
        key: str = LISTEN_KEY,
        refresh_timeout: float = 2.0,
        shutdown_timeout: float = 1.0,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self._requested_port = port
        self._key = key
        self._refresh_timeout = refresh_timeout
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._expose: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None

    @property
    def port(self) -> int:
        """The bound port (the free one picked for port 0); only while entered."""
        if self._port is None:
            raise RuntimeError("MetricsServer is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{format_listen(self.host, self.port)}/metrics"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await self.metrics.refresh(timeout=self._refresh_timeout)
        assert self._expose is not None  # set by start() before the first request can arrive
        return await self._expose(request)

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("MetricsServer is already started")
        from aiohttp import web
        from prometheus_client.aiohttp import make_aiohttp_handler

        sock = _bind(self.host, self._requested_port, self._key)
        # The library's handler negotiates the format (text 0.0.4 / 1.0.0, OpenMetrics) and gzip.
        self._expose = make_aiohttp_handler(self.metrics.registry)
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        # No access log: Prometheus scrapes every few seconds and would flood the daemon's log.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=self._shutdown_timeout)
        try:
            await runner.setup()
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        self._runner = runner
        self._port = int(sock.getsockname()[1])
        _log.info("metrics server listening", url=self.url)

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
