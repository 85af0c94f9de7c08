"""Restart recovery: the newest usable checkpoint (:mod:`guardbot.daemon.checkpoints`) is loaded and
the journal's inputs after it are re-applied in order (without a checkpoint: every input).

Nothing is published while recovering: the inputs' events are journaled already, and outbox rows
not yet sent are still delivered by the publisher, each once with its stored ``alertId``. Ticks
that produce no events are not journaled while running, so recovery restores positions, wallets,
orders and alert levels as of the last journaled input; marks are refreshed by the next live
tick (a clean stop journals the newest tick of each symbol, so after one the marks are restored
too). ``feed_stale`` / ``feed_recovered`` (and ``tier_tables``, ``refused_command``) inputs are
not replayed: staleness belongs to the previous feed session.

``tiers`` inputs (the tier tables in force, guardbot.core.tier_inputs) are re-applied in order
like any input, so the state is rebuilt with the tables that were in force at each input; a
checkpoint carries the tables in force at its input. A journal written before tiers were
journaled has none: it replays under the tables resolved at this start, as it always did.
"""

from __future__ import annotations

import time

import structlog

from guardbot.core import checkpoint
from guardbot.core.checkpoint import CheckpointError, DaemonState
from guardbot.core.commands import parse_command
from guardbot.core.engine import Engine
from guardbot.daemon.pipeline import StepPipeline
from guardbot.daemon.sdnotify import Notifier
from guardbot.errors import StoreError
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
    """What :func:`recover` did: ``applied`` inputs re-applied, ``last_seq`` the newest seq
    (0: an empty journal, a first start), ``checkpoint_seq``/``checkpoint_ts`` of the checkpoint
    loaded (0/None: none), ``warnings`` about checkpoints skipped."""

    __slots__ = ("applied", "checkpoint_seq", "checkpoint_ts", "last_seq", "warnings")

    def __init__(
        self,
        applied: int,
        last_seq: int,
        checkpoint_seq: int = 0,
        checkpoint_ts: int | None = None,
        warnings: list[str] | None = None,
    ) -> None:
        self.applied = applied
        self.last_seq = last_seq
        self.checkpoint_seq = checkpoint_seq
        self.checkpoint_ts = checkpoint_ts
        self.warnings = warnings or []


async def load_checkpoint(
    journal: Journal, pipeline: StepPipeline
) -> tuple[int, int | None, list[str]]:
    """Install the newest usable checkpoint into ``pipeline``.

    Returns ``(input_seq, checkpoint ts, warnings)``: ``input_seq`` 0 when none was used (replay
    from the start). A checkpoint is skipped, with a warning, when its digest does not match
    (damaged), it cannot be decoded in this code (another format), it was made under another
    engine configuration while the journal can still rebuild the state under today's (a replay
    would rebuild something else), or the inputs after it are no longer
    all stored. A journal whose start was pruned must load a checkpoint: if none is usable the
    start fails with a :class:`StoreError` naming the database, never a silently empty state.
    """
    first = await journal.first_input_seq()
    complete = first is None or first <= 1
    fingerprint = checkpoint.config_fingerprint(pipeline.engine.config)
    warnings: list[str] = []
    fallback: tuple[int, int, int, DaemonState] | None = None
    for cp_id, input_seq, ts, fmt, sha256, body in await journal.checkpoints():
        where = f"checkpoint {cp_id} (after input {input_seq})"
        if first is not None and first > input_seq + 1:
            warnings.append(f"{where}: inputs after it were pruned")
            continue
        if checkpoint.digest(body) != sha256:
            warnings.append(f"{where}: damaged (digest mismatch)")
            continue
        try:
            state = checkpoint.loads(body)
        except CheckpointError as exc:
            warnings.append(f"{where}: unusable ({exc}; format {fmt})")
            continue
        if not isinstance(state, DaemonState):
            warnings.append(f"{where}: unusable (not a daemon checkpoint)")
            continue
        if checkpoint.config_fingerprint(state.engine.config) != fingerprint:
            if complete:
                warnings.append(
                    f"{where}: made under another configuration; "
                    "the journal is replayed under today's"
                )
                continue
            if fallback is None:
                fallback = (cp_id, input_seq, ts, state)
            continue
        _install(pipeline, state)
        return input_seq, ts, warnings
    if fallback is not None:
        cp_id, input_seq, ts, state = fallback
        warnings.append(
            f"checkpoint {cp_id} (after input {input_seq}) was made under another configuration "
            "and the journal before it is pruned: its configuration stays in force until the "
            "state is rebuilt"
        )
        _install(pipeline, state)
        return input_seq, ts, warnings
    if not complete:
        raise StoreError(
            journal.path,
            f"no usable checkpoint and the journal starts at input {first} (older inputs were "
            f"pruned): the state cannot be rebuilt ({'; '.join(warnings) or 'no checkpoint'}) "
            "— restore the database from a backup, or move it aside to start empty",
        )
    return 0, None, warnings


def _install(pipeline: StepPipeline, state: DaemonState) -> None:
    pipeline.engine = Engine.from_state(state.engine)
    pipeline.funding = state.funding
    pipeline.last_tick = {s: (ts, tick, True) for s, (ts, tick) in state.last_ticks.items()}


async def recover(
    journal: Journal,
    pipeline: StepPipeline,
    notifier: Notifier,
    *,
    progress_s: float = RECOVERY_PROGRESS_S,
    use_checkpoints: bool = True,
) -> Recovered:
    """Load the newest usable checkpoint (see :func:`load_checkpoint`), then re-apply every
    stored input after it to ``pipeline.engine`` in order; set the pipeline's next seq."""
    start: int = 0
    cp_ts: int | None = None
    warnings: list[str] = []
    if use_checkpoints:
        start, cp_ts, warnings = await load_checkpoint(journal, pipeline)
    count = 0
    last_seq = start
    read = 0
    reported = time.monotonic()
    engine = pipeline.engine
    async for seq, ts, kind, body in journal.inputs_after(start):
        last_seq = seq
        read += 1
        now = time.monotonic()
        if now - reported >= progress_s:
            reported = now
            _log.info("recovering the journal", inputs=read, seq=seq)
            notifier.extend_timeout(RECOVERY_EXTEND_S, status=f"recovering: {read} inputs read")
        if kind in NOT_REPLAYED:
            continue
        if kind == "seed":  # the [[seed]] commands, journaled as one input
            for obj in body["commands"]:
                engine.apply(ts, parse_command(obj, strict=False))
            count += 1
            continue
        # Not strict: journals written before unknown keys were refused may hold some.
        command = parse_command(body, strict=False)
        engine.apply(ts, command)
        pipeline.replayed(ts, command)
        count += 1
    last = await journal.last_input()
    if last is not None:
        last_seq = max(last_seq, last[0])
    pipeline.next_seq = last_seq + 1
    return Recovered(count, last_seq, start, cp_ts, warnings)
