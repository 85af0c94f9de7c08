"""Tier tables for the daemon: resolved at start (exchange, SQLite cache or bundled snapshot, see
:mod:`guardbot.tiers.fetch`) and refetched daily in ccxt mode. A fallback table raises one
``tier_tables`` warning alert per start.

The tables in force are engine inputs (issue 16 ask 3, :mod:`guardbot.core.tier_inputs`): after
recovery has rebuilt the state with the tables journaled so far, the ones resolved at this start
are journaled as a ``tiers`` input for every symbol whose rows, contract size or source differ
from the ones in force, and a daily refresh that fetches a changed table journals it the same
way, applied at once (positions move to their new tier; ``tier_tables`` info alert). A symbol
with no table resolved today keeps the one in force (a table is never removed), and a refresh
whose fetch failed changes nothing (the table in force is at least as recent as a fallback)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import structlog

from guardbot.config import Config
from guardbot.core.engine import Engine
from guardbot.core.events import Event
from guardbot.core.tiers import Tier
from guardbot.daemon.pipeline import StepPipeline
from guardbot.store.journal import Journal
from guardbot.tiers.fetch import DAY_MS, Fetcher, ResolvedTiers, ccxt_fetcher, resolve_tiers
from guardbot.tiers.source import BundledTiers, bundled_for, read_user_tiers

__all__ = ["TIER_REFRESH_S", "TierTables", "tiers_input"]

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
        #: What :meth:`resolve_at_start` resolved (None before).
        self.resolved: ResolvedTiers | None = None

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
        fallback warnings. The engine serves a journal that holds no ``tiers`` input (written
        before they were journaled); :meth:`journal_at_start` then records these tables."""
        resolved = await self.resolve(journal, self.fetcher(), now_ms)
        self.resolved = resolved
        self.sources = dict(resolved.sources)
        engine = Engine(self._config.engine_config(resolved.tables, resolved.contract_sizes))
        _log.info("tier tables", sources=self.sources)
        return engine, resolved.warnings

    async def journal_at_start(self, pipeline: StepPipeline) -> list[Event]:
        """After recovery: journal and apply the tables resolved at this start where they differ
        from the ones in force (rows, contract size or source); the events it caused."""
        resolved = self.resolved
        if resolved is None:
            return []
        body = tiers_input(resolved, pipeline.engine, compare_source=True)
        engine = pipeline.engine
        # a symbol with no table today keeps the journaled one, and says where it came from
        for symbol, source in resolved.sources.items():
            if source == "none" and symbol in engine.state_root.tier_sources:
                self.sources[symbol] = engine.state_root.tier_sources[symbol][0] or source
        if body is None:
            return []
        return await pipeline.apply_input(body)

    async def refresh(self, journal: Journal, pipeline: StepPipeline) -> None:
        """Refetch the tier tables daily; a changed table is journaled and applied at once."""
        if self.fetcher() is None:
            return
        while True:
            await asyncio.sleep(TIER_REFRESH_S)
            await self.refresh_once(journal, pipeline)

    async def refresh_once(self, journal: Journal, pipeline: StepPipeline) -> list[Event]:
        """Fetch every table now (into the cache); journal and apply those the exchange changed
        (a failed fetch changes nothing); the events it caused."""
        fetch = self.fetcher()
        if fetch is None:
            return []
        fresh = await self.resolve(journal, fetch, pipeline.now_ms(), max_age_ms=0)
        fetched = ResolvedTiers(
            tables={s: t for s, t in fresh.tables.items() if fresh.sources.get(s) == "exchange"},
            contract_sizes=dict(fresh.contract_sizes),
            sources={s: v for s, v in fresh.sources.items() if v == "exchange"},
            as_of=dict(fresh.as_of),
        )
        body = tiers_input(fetched, pipeline.engine, compare_source=False)
        if body is None:
            return []
        events = await pipeline.apply_input(body)
        self.sources.update({s: "exchange" for s in body["tables"]})
        _log.info("tier tables changed", symbols=sorted(body["tables"]))
        return events

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


def tiers_input(
    resolved: ResolvedTiers, engine: Engine, *, compare_source: bool
) -> dict[str, Any] | None:
    """A ``tiers`` input (docs/contracts.md §2) for the symbols of ``resolved`` whose rows or
    contract size (and source, with ``compare_source``) differ from those in force in
    ``engine``; None when none does. Rows carry their maintenance amount, so the table the
    engine rebuilds from them is the one resolved, whatever the profile derives."""
    config = engine.config
    in_force = engine.state_root.tier_sources
    tables: dict[str, Any] = {}
    for symbol in sorted(resolved.tables):
        table = resolved.tables[symbol]
        size = resolved.contract_sizes.get(symbol)
        source = resolved.sources.get(symbol)
        old = config.tiers.get(symbol)
        same = (
            old is not None
            and old.tiers == table.tiers
            and (size is None or size == config.contract_sizes.get(symbol, Decimal(1)))
        )
        if same and (not compare_source or in_force.get(symbol, (None,))[0] == source):
            continue
        entry: dict[str, Any] = {"tiers": [_row(t) for t in table.tiers]}
        if size is not None:
            entry["contractSize"] = size
        if source is not None:
            entry["source"] = source
        as_of = resolved.as_of.get(symbol)
        if as_of:
            entry["asOf"] = as_of
        tables[symbol] = entry
    return {"type": "tiers", "tables": tables} if tables else None


def _row(tier: Tier) -> dict[str, Any]:
    return {
        "tier": tier.tier,
        "minNotional": tier.floor,
        "maxNotional": tier.cap,
        "maintenanceMarginRate": tier.mmr,
        "maxLeverage": tier.max_leverage,
        "maintenanceAmount": tier.cum,
    }
