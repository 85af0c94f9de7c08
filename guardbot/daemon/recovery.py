"""Restart recovery: the engine is rebuilt by re-applying the journal's stored inputs in order.

Nothing is published while recovering: the inputs' events are journaled already, and outbox rows
not yet sent are still delivered by the publisher, each once with its stored ``alertId``. Ticks
that produce no events are not journaled while running, so recovery restores positions, wallets,
orders and alert levels as of the last journaled input; marks are refreshed by the next live
tick (a clean stop journals the newest tick of each symbol, so after one the marks are restored
too). ``feed_stale`` / ``feed_recovered`` (and ``tier_tables``, ``refused_command``) inputs are
not replayed: staleness belongs to the previous feed session.
"""

from __future__ import annotations

import time

import structlog

from guardbot.core.commands import parse_command
from guardbot.daemon.pipeline import StepPipeline
from guardbot.daemon.sdnotify import Notifier
from guardbot.store.journal import Journal

__all__ = ["NOT_REPLAYED", "RECOVERY_EXTEND_S", "RECOVERY_PROGRESS_S", "Recovered", "recover"]

_log = structlog.get_logger("guardbot.daemon")

#: Input kinds that are journaled but not re-applied to the engine on recovery.
NOT_REPLAYED = frozenset(
    {"feed_stale", "feed_recovered", "tier_tables", "refused_command", "mirror_failed"}
)
#: While the journal is replayed at start: how often (seconds) to log the progress and tell
#: systemd (STATUS, EXTEND_TIMEOUT_USEC), and by how much each report pushes back its start
#: deadline (TimeoutStartSec=), so that a large journal does not get the unit killed mid-replay.
RECOVERY_PROGRESS_S = 5.0
RECOVERY_EXTEND_S = 60.0


class Recovered:
    """What :func:`recover` did: ``applied`` inputs re-applied, ``last_seq`` the newest seq read
    (0: an empty journal, a first start)."""

    __slots__ = ("applied", "last_seq")

    def __init__(self, applied: int, last_seq: int) -> None:
        self.applied = applied
        self.last_seq = last_seq


async def recover(
    journal: Journal,
    pipeline: StepPipeline,
    notifier: Notifier,
    *,
    progress_s: float = RECOVERY_PROGRESS_S,
) -> Recovered:
    """Re-apply every stored input to ``pipeline.engine`` in order; set the pipeline's next seq."""
    count = 0
    last_seq = 0
    read = 0
    reported = time.monotonic()
    engine = pipeline.engine
    async for seq, ts, kind, body in journal.inputs_after(0):
        last_seq = seq
        read += 1
        now = time.monotonic()
        if now - reported >= progress_s:
            reported = now
            _log.info("recovering the journal", inputs=read, seq=seq)
            notifier.extend_timeout(RECOVERY_EXTEND_S, status=f"recovering: {read} inputs read")
        if kind in NOT_REPLAYED:
            continue
        # Not strict: journals written before unknown keys were refused may hold some.
        command = parse_command(body, strict=False)
        engine.apply(ts, command)
        pipeline.replayed(ts, command)
        count += 1
    pipeline.next_seq = last_seq + 1
    return Recovered(count, last_seq)
