"""One task per mirror account (``[accounts.<name>] mirror = true``): follow the real account and
apply what the exchange reports as journaled ``mirror`` inputs.

Each account gets its own ccxt.pro instance, built from ``[exchange.ccxt]`` (never the
exchange-level credentials), the venue's mirror options and the account's own keys, so several
sub-accounts can be mirrored by one daemon. The inputs go through the step pipeline like a
command: the newest ticks are journaled first, then the input with its events, so a restart and
a replay rebuild the same state and alerts; after a restart the first REST picture replaces the
replayed state.

Refused keys end that account's task with one ``mirror_failed`` alert (critical) naming the
account and the exchange's reason; the daemon and the other accounts go on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from guardbot.config.sections import AccountSection, Config
from guardbot.core.mirror import mirror_to_json
from guardbot.daemon.pipeline import StepPipeline
from guardbot.mirror.follower import MirrorAuthError, MirrorFollower, exchange_options
from guardbot.mirror.venues import mirror_venue

if TYPE_CHECKING:
    from guardbot.feeds.exchange import ExchangeFactory

__all__ = ["MirrorLoop", "mirror_loops"]

_log = structlog.get_logger("guardbot.daemon")


class MirrorLoop:
    """Follows the mirror account ``name``; :meth:`run` is the daemon's task."""

    def __init__(
        self,
        name: str,
        account: AccountSection,
        config: Config,
        pipeline: StepPipeline,
        *,
        factory: ExchangeFactory | None = None,
        now_ms: Callable[[], int],
    ) -> None:
        self.name = name
        self.account = account
        self.config = config
        self.pipeline = pipeline
        self.venue = mirror_venue(config.exchange.id, where=f"accounts.{name}.mirror")
        if factory is None:
            # Imported here: ccxt costs ~2 s and ~65 MB, which a daemon without mirror accounts
            # (or in sim/replay mode) must not pay at start.
            from guardbot.feeds.exchange import ccxt_factory

            factory = ccxt_factory(config.exchange.id)
        self._factory = factory
        self._now_ms = now_ms
        self.follower: MirrorFollower | None = None
        self.failed: str | None = None

    def status(self) -> dict[str, Any]:
        if self.follower is None:
            return {"state": "starting"}
        return self.follower.status()

    async def run(self) -> None:
        base: dict[str, Any] = copy.deepcopy(dict(self.config.exchange.ccxt))
        exchange = self._factory(exchange_options(base, self.venue, self.account.credentials()))
        try:
            async with MirrorFollower(
                self.name, exchange, self.venue, poll_s=self.account.mirror_poll_s
            ) as follower:
                self.follower = follower
                try:
                    async for cmd in follower.updates():
                        # like a command: the newest ticks are journaled first, so a replay
                        # evaluates the picture at the marks it was applied at live
                        await self.pipeline.control_command(mirror_to_json(cmd))
                except MirrorAuthError as exc:
                    self.failed = exc.reason
                    await self.pipeline.alert(
                        {
                            "type": "mirror_failed",
                            "ts": self._now_ms(),
                            "account": self.name,
                            "reason": f"the exchange refused the API key of mirror account "
                            f"{self.name!r} ({self.account.api_key_env} / "
                            f"{self.account.secret_env}): {exc.reason}",
                        }
                    )
        finally:
            try:
                await exchange.close()
            except Exception as exc:  # closing must not hide the real exit cause
                _log.warning("closing the mirror exchange failed", error=type(exc).__name__)


def mirror_loops(
    config: Config,
    pipeline: StepPipeline,
    *,
    now_ms: Callable[[], int],
    factory: ExchangeFactory | None = None,
) -> list[MirrorLoop]:
    """A loop per mirror account of ``config``, by account name."""
    return [
        MirrorLoop(name, account, config, pipeline, factory=factory, now_ms=now_ms)
        for name, account in sorted(config.accounts.items())
        if account.mirror
    ]
