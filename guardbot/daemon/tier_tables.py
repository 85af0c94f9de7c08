"""Tier tables for the daemon: resolved at start (exchange, SQLite cache or bundled snapshot, see
:mod:`guardbot.tiers.fetch`) and refetched daily into the cache in ccxt mode. A fallback table
raises one ``tier_tables`` warning alert per start."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from guardbot.config import Config
from guardbot.core.engine import Engine
from guardbot.core.events import Event
from guardbot.core.tiers import Tier
from guardbot.daemon.pipeline import StepPipeline
from guardbot.store.journal import Journal
from guardbot.tiers.fetch import DAY_MS, Fetcher, ResolvedTiers, ccxt_fetcher, resolve_tiers
from guardbot.tiers.source import BundledTiers, bundled_for, read_user_tiers

__all__ = ["TIER_REFRESH_S", "TierTables"]

_log = structlog.get_logger("guardbot.daemon")

#: How often the tier tables are refetched into the cache (``[feed] mode = "ccxt"``).
TIER_REFRESH_S = 24 * 3600.0


class TierTables:
    """Resolves the tier tables for ``config``'s symbols; ``fetcher`` overrides the ccxt one."""

    def __init__(self, config: Config, fetcher: Fetcher | None = None) -> None:
        self._config = config
        self._fetcher = fetcher
        exchange = config.exchange
        self.bundled: BundledTiers = (
            read_user_tiers(exchange.tiers_file, exchange.profile.name)
            if exchange.tiers_file is not None
            else bundled_for(exchange.id, exchange.profile.name)
        )
        #: symbol -> where its tier table came from (set by :meth:`resolve_at_start`).
        self.sources: dict[str, str] = {}

    def initial_engine(self) -> Engine:
        """An engine on the bundled tables (before the start-up resolution)."""
        bundled = self.bundled
        return Engine(self._config.engine_config(bundled.tables, bundled.contract_sizes))

    def fetcher(self) -> Fetcher | None:
        fetch = self._fetcher
        if fetch is None and self._config.feed.mode == "ccxt":
            from guardbot.feeds.exchange import ccxt_factory

            exchange = self._config.exchange
            fetch = ccxt_fetcher(ccxt_factory(exchange.id), exchange.ccxt_options())
        return fetch

    async def resolve(
        self, journal: Journal, fetch: Fetcher | None, now_ms: int, max_age_ms: int = DAY_MS
    ) -> ResolvedTiers:
        exchange = self._config.exchange
        return await resolve_tiers(
            exchange.id,
            exchange.symbols,
            journal,
            self.bundled,
            now_ms=now_ms,
            fetch=fetch,
            derive_cum=exchange.profile.deducts_cum,
            max_age_ms=max_age_ms,
        )

    async def resolve_at_start(self, journal: Journal, now_ms: int) -> tuple[Engine, list[str]]:
        """Pick the tier tables (exchange, cache or snapshot); an engine on them and the
        fallback warnings."""
        resolved = await self.resolve(journal, self.fetcher(), now_ms)
        self.sources = dict(resolved.sources)
        engine = Engine(self._config.engine_config(resolved.tables, resolved.contract_sizes))
        _log.info("tier tables", sources=self.sources)
        return engine, resolved.warnings

    async def refresh(self, journal: Journal, pipeline: StepPipeline) -> None:
        """Refetch the tier tables daily into the cache. A changed table takes effect at the next
        start (recovery replays the journal with the tables of the run that wrote it); until
        then a ``tier_tables`` alert says that the exchange changed it."""
        fetch = self.fetcher()
        if fetch is None:
            return
        while True:
            await asyncio.sleep(TIER_REFRESH_S)
            fresh = await self.resolve(journal, fetch, pipeline.now_ms(), max_age_ms=0)
            changed = [
                s
                for s, source in fresh.sources.items()
                if source == "exchange" and fresh.tables[s].tiers != _tiers_of(pipeline.engine, s)
            ]
            if changed:
                await self.warn(
                    pipeline,
                    [
                        f"{s}: the exchange changed its tier table; the new one is cached and "
                        "applies after a restart"
                        for s in changed
                    ],
                )

    async def warn(self, pipeline: StepPipeline, warnings: Sequence[str]) -> None:
        """One ``tier_tables`` warning alert per start that uses a fallback table."""
        if not warnings or self._config.feed.mode != "ccxt":
            return  # offline modes (sim, replay) use the snapshot on purpose
        for text in warnings:
            _log.warning("tier table fallback", detail=text)
        event: Event = {
            "type": "tier_tables",
            "ts": pipeline.now_ms(),
            "account": None,
            "severity": "warning",
            "sources": dict(self.sources),
            "reason": "; ".join(warnings),
        }
        await pipeline.alert(event)


def _tiers_of(engine: Engine, symbol: str) -> tuple[Tier, ...] | None:
    table = engine.config.tiers.get(symbol)
    return None if table is None else table.tiers
