"""How the paper exchange's commands reach the engine: directly (replay) or journaled (daemon)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from guardbot.core.commands import parse_command
from guardbot.core.engine import Engine
from guardbot.core.events import Event

__all__ = ["ApplyFn", "Commit", "engine_apply", "journaled_apply"]

#: Executes one command (an docs/contracts.md §2 input object) and returns the events it caused.
ApplyFn = Callable[[Mapping[str, Any]], Awaitable[list[Event]]]


def engine_apply(
    engine: Engine,
    clock: Callable[[], int | None] | None = None,
    *,
    record: Callable[[list[Event]], object] | None = None,
) -> ApplyFn:
    """The replay-side ``apply``: parse the command and run it in ``engine`` directly.

    Commands happen at ``clock()`` (ms) or, without a clock, at the engine's time (its last
    tick's), never at the wall clock, so a run depends on its inputs only. ``record`` sees every
    command's events (``guardbot replay`` writes them to ``events.jsonl``).
    """

    async def apply(command: Mapping[str, Any]) -> list[Event]:
        events = engine.apply(clock() if clock is not None else None, parse_command(command))
        if record is not None:
            record(events)
        return events

    return apply


#: The daemon's journal step: ``(ts, kind, body, events)`` made durable (``Daemon._commit``).
Commit = Callable[[int, str, Mapping[str, Any], Sequence[Event]], Awaitable[object]]


def journaled_apply(
    engine: Engine,
    commit: Commit,
    clock: Callable[[], int],
    *,
    lock: asyncio.Lock | None = None,
) -> ApplyFn:
    """The daemon-side ``apply``: run the command at ``clock()`` and journal it with its events
    before the strategy sees them, so a restart re-applies it (the journal's replay) and its
    alerts are durable before they are published.

    ``lock`` is the host's step lock (the daemon's ``_step_lock``): each command and its commit
    then form one step, never interleaved with a tick's or another command source's. Call the
    runner's hooks *outside* that lock (asyncio locks are not reentrant).
    """

    async def step(command: Mapping[str, Any]) -> list[Event]:
        parsed = parse_command(command)  # a malformed command is refused before the journal
        ts = clock()
        events = engine.apply(ts, parsed)
        await commit(ts, str(command["type"]), dict(command), events)
        return events

    async def apply(command: Mapping[str, Any]) -> list[Event]:
        if lock is None:
            return await step(command)
        async with lock:
            return await step(command)

    return apply
