"""A mirror account survives a checkpoint: the same state and the same events afterwards."""

from __future__ import annotations

from decimal import Decimal

from guardbot.core.checkpoint import dumps, encode, loads, text_pieces
from guardbot.core.commands import TickCmd
from guardbot.core.engine import Engine
from guardbot.core.mirror import MirrorOrder
from tests.mirror.test_engine import BTC, LIQ, long_btc, sim


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
