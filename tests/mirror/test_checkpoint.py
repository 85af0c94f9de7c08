"""A mirror account survives a checkpoint: the same state and the same events afterwards."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from guardbot.core.checkpoint import decode, dumps, encode, loads, text_pieces
from guardbot.core.commands import Command, TickCmd, parse_command
from guardbot.core.engine import Engine
from guardbot.core.mirror import MirrorOrder
from tests.mirror.test_engine import BTC, CANCELLED_WAIT, LIQ, daemon_journal, long_btc, sim


def test_checkpoint_round_trip_keeps_the_mirror() -> None:
    s = sim(require_stop_loss=True)
    s.tick(60000)
    stop = MirrorOrder("9", BTC, "stop_loss", "sell", Decimal(55000), None)
    s.line(long_btc(LIQ * Decimal("0.9"), orders=(stop,)))
    s.tick(58200)  # liquidation_imminent raised: its once-only state must survive too
    text = dumps(s.engine.state_root)
    # the daemon makes the text in slices: the same bytes (mirror state: frozensets, NamedTuples)
    assert "".join(text_pieces(encode(s.engine.state_root))) == text
    restored = Engine.from_state(loads(text))
    before = s.engine.state(s.engine.account("m"))
    assert restored.state(restored.account("m")) == before
    state = restored.account("m").mirror
    assert state is not None and state.orders == (stop,) and state.imminent == {""}
    for engine in (s.engine, restored):
        assert engine.apply(s.ts + 1000, engine_tick(58100)) == []  # still once
    assert [e["type"] for e in restored.apply(s.ts + 2000, engine_tick(59500))] == [
        e["type"] for e in s.engine.apply(s.ts + 2000, engine_tick(59500))
    ]


def engine_tick(mark: int) -> TickCmd:
    return TickCmd(BTC, Decimal(mark))


def test_checkpoint_during_a_drift_wait_then_the_tail_equals_the_full_replay() -> None:
    """The wait's start (MirrorState.pending) is in the checkpoint: restored at any point of the
    journal, the tail after it raises the live run's alerts at the same times."""
    live, journal = daemon_journal(CANCELLED_WAIT)
    for cut in range(1, len(journal)):
        head = sim()
        for line in journal[:cut]:
            head.line({k: v for k, v in line.items() if k != "ts"}, ts=line["ts"])
        restored = Engine.from_state(loads(dumps(head.engine.state_root)))
        state, kept = restored.account("m").mirror, head.engine.account("m").mirror
        assert state is not None and kept is not None and state.pending == kept.pending
        tail = [e for line in journal[cut:] for e in restored.apply(line["ts"], command(line))]
        assert head.events + tail == live.events, cut


def test_a_checkpoint_written_before_the_drift_wait_loads() -> None:
    """A checkpoint of the layout before ``pending`` and ``drift_wait_changed`` existed: they
    load as their defaults (no wait, nothing flagged), as the codec does for any new field."""
    s = sim()
    s.tick(60000, ts=1_000)
    s.line(long_btc(LIQ * Decimal("0.9")), ts=2_000)
    tree = encode(s.engine.state_root)
    removed = _drop(tree, {"pending", "drift_wait_changed"})
    assert removed == {"pending", "drift_wait_changed"}
    restored = Engine.from_state(decode(tree))
    state = restored.account("m").mirror
    assert state is not None and state.pending == {}
    assert restored.tick_changed_drift_wait is False
    # the old checkpoint knew no wait: the next report starts one, confirmed 5 s after it
    assert restored.apply(3_000, command(long_btc(LIQ * Decimal("0.9")))) == []
    assert restored.apply(7_999, engine_tick(60000)) == []
    assert [e["type"] for e in restored.apply(8_000, engine_tick(60000))] == ["mirror_drift"]


def _drop(node: Any, names: set[str]) -> set[str]:
    """Remove the attributes ``names`` from every object of the encoded tree; those removed."""
    removed: set[str] = set()
    if isinstance(node, dict):
        attrs = node.get("a")
        if isinstance(attrs, dict):
            removed |= {name for name in names if attrs.pop(name, None) is not None}
        for value in node.values():
            removed |= _drop(value, names)
    elif isinstance(node, list):
        for value in node:
            removed |= _drop(value, names)
    return removed


def command(line: dict[str, Any]) -> Command:
    return parse_command(json.loads(json.dumps({**line}, default=str), parse_float=Decimal))
