"""Checkpoints and retention for the daemon (the codec is :mod:`guardbot.core.checkpoint`).

Every ``[store] checkpoint_interval_s`` and at a clean stop, the engine state, the funding
schedule and each symbol's newest tick are walked into a detached tree under the step lock (so
the checkpoint is the state after exactly input ``next_seq - 1``: no input is between the engine
and the journal then); the tree's JSON text is made after the lock is released, in slices of
about 2 ms between which the event loop turns (the waiting inputs run first), and stored in the
journal's database in one transaction with its SHA-256.
After each checkpoint, inputs older than it and older than ``retention_days`` are pruned, with
the events and sent outbox rows older than ``retention_days`` (ages are counted back from the
newest input's time).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from guardbot.core import checkpoint
from guardbot.core.checkpoint import CheckpointError, DaemonState
from guardbot.daemon.pipeline import StepPipeline
from guardbot.store.journal import Journal

__all__ = [
    "CheckpointInfo",
    "Checkpointer",
    "snapshot_state",
    "snapshot_text",
    "snapshot_tree",
]

_log = structlog.get_logger("guardbot.daemon")

DAY_MS = 86_400_000


@dataclass(slots=True)
class CheckpointInfo:
    """The newest checkpoint written or loaded: its input seq and time (epoch ms)."""

    input_seq: int
    ts: int


def snapshot_state(pipeline: StepPipeline) -> DaemonState:
    """What a checkpoint of the pipeline holds (live objects: encode it holding the step lock,
    with the engine's event buffer emptied)."""
    return DaemonState(
        engine=pipeline.engine.state_root,
        funding=pipeline.funding,
        last_ticks={s: (ts, tick) for s, (ts, tick, _j) in pipeline.last_tick.items()},
    )


def snapshot_tree(pipeline: StepPipeline) -> Any:
    """The pipeline's state as the checkpoint codec's tree: a detached copy made of plain lists,
    dicts and strings, which later inputs do not change (call it holding the step lock)."""
    st = pipeline.engine.state_root
    out, st.out = st.out, []  # the last input's event buffer is not state
    # The walk allocates a node per value: without this, the collections those allocations
    # trigger (the older generations walking every live object) land inside the lock.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return checkpoint.encode(snapshot_state(pipeline))
    finally:
        st.out = out
        if collecting:
            gc.enable()


def snapshot_text(pipeline: StepPipeline) -> str:
    """The pipeline's state as checkpoint text (call it holding the step lock)."""
    return checkpoint.text_of(snapshot_tree(pipeline))


#: The longest the event loop runs a checkpoint's text without a turn (seconds).
TEXT_SLICE_S = 0.002


async def _text(tree: Any) -> str:
    """The checkpoint text of ``tree`` (:func:`checkpoint.text_of`'s bytes), made in slices of
    about :data:`TEXT_SLICE_S` with a turn of the event loop before each."""
    parts: list[str] = []
    clock = time.perf_counter
    await asyncio.sleep(0)  # the inputs that waited for the step lock go first
    deadline = clock() + TEXT_SLICE_S
    for n, piece in enumerate(checkpoint.text_pieces(tree)):
        parts.append(piece)
        if n % 32 == 0 and clock() >= deadline:
            await asyncio.sleep(0)
            deadline = clock() + TEXT_SLICE_S
    return "".join(parts)


class Checkpointer:
    """Writes checkpoints of ``pipeline`` into ``journal`` and prunes what they cover."""

    def __init__(
        self,
        pipeline: StepPipeline,
        journal: Journal,
        *,
        interval_s: float,
        retention_days: float,
        now_ms: Callable[[], int],
        outbox_cursor: Callable[[], int | None] = lambda: None,
    ) -> None:
        self._pipeline = pipeline
        #: The notifications' outbox cursor: rows after it are kept whatever their age (an
        #: alert a failing service has not taken yet must outlive retention).
        self._outbox_cursor = outbox_cursor
        self._journal = journal
        self.interval_s = interval_s
        self.retention_ms = int(retention_days * DAY_MS)
        self._now_ms = now_ms
        #: The newest checkpoint (None before the first).
        self.latest: CheckpointInfo | None = None
        #: Seconds the last checkpoint took to walk the state (under the lock), to make its text
        #: (after the lock) and to store it.
        self.last_encode_s = 0.0
        self.last_text_s = 0.0
        self.last_store_s = 0.0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.write()

    async def write(self) -> CheckpointInfo | None:
        """Write one checkpoint now (nothing when no input came since the last one)."""
        pipeline = self._pipeline
        async with pipeline.lock:
            seq = pipeline.next_seq - 1
            if seq <= 0 or (self.latest is not None and self.latest.input_seq == seq):
                return self.latest
            _log.info("checkpoint starting", input_seq=seq)
            started = time.perf_counter()
            try:
                tree = snapshot_tree(pipeline)
            except CheckpointError as exc:
                # A state the codec cannot walk is a bug to report, not a reason to stop
                # guarding: the journal still holds every input; retention waits.
                _log.error("checkpoint not written", error=str(exc))
                return self.latest
            self.last_encode_s = time.perf_counter() - started
        # The tree is a detached copy: its text is made after the lock is released, a slice at
        # a time with a turn of the event loop between slices, so ticks wait at most a slice
        # (the JSON encoder holds the GIL: a thread would not free the loop).
        started = time.perf_counter()
        text = await _text(tree)
        del tree
        self.last_text_s = time.perf_counter() - started
        ts = self._now_ms()
        started = time.perf_counter()
        await self._journal.put_checkpoint(
            input_seq=seq, ts=ts, fmt=checkpoint.FORMAT, sha256=checkpoint.digest(text), body=text
        )
        self.last_store_s = time.perf_counter() - started
        self.latest = CheckpointInfo(seq, ts)
        # Age is measured against the newest input's time, not the wall clock: a replayed or
        # simulated feed's old timestamps must not make its fresh history look expired.
        newest = await self._journal.last_input()
        horizon = (newest[1] if newest is not None else ts) - self.retention_ms
        inputs, events = await self._journal.prune(
            through_seq=seq, before_ts=horizon, keep_outbox_after=self._outbox_cursor()
        )
        _log.info(
            "checkpoint written",
            input_seq=seq,
            bytes=len(text),
            encode_ms=round(self.last_encode_s * 1000, 1),
            text_ms=round(self.last_text_s * 1000, 1),
            pruned_inputs=inputs,
            pruned_events=events,
        )
        return self.latest
