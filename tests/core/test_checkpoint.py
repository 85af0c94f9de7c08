"""Checkpoints (issue 16 ask 1): the state rebuilt from a checkpoint plus the later inputs is the
state rebuilt from every input, field by field, after random command streams; a damaged or
foreign checkpoint is refused with a reason, never loaded as a different state."""

from __future__ import annotations

import enum
import json
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardbot.cli.simulate import build_config
from guardbot.core import checkpoint
from guardbot.core.checkpoint import CheckpointError
from guardbot.core.commands import parse_command
from guardbot.core.engine import Engine
from guardbot.core.funding import FundingSchedule
from tests.core.test_engine_properties import (
    CONTRACT_SIZES,
    SYMBOLS,
    Scenario,
    scenarios,
    tier_spec,
)
from tests.tiertables import ccxt_rows


def _apply(engine: Engine, inputs: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for obj in inputs:
        out.append(engine.apply(obj["ts"], parse_command(obj)))
    return out


def _fields(engine: Engine) -> Any:
    """Every field of the engine's state, as the checkpoint encoding walks it (object ids are
    numbered by first sight, so two equal graphs give equal trees)."""
    st_ = engine.state_root
    out = st_.out
    st_.out = []  # the event buffer of the last input is not state
    try:
        return checkpoint.encode(st_)
    finally:
        st_.out = out


@settings(max_examples=60, deadline=None)
@given(scenario=scenarios(), cut=st.floats(min_value=0, max_value=1))
def test_checkpoint_plus_tail_equals_the_whole_journal(scenario: Scenario, cut: float) -> None:
    _check_cut(scenario.config, scenario.inputs, cut)


def _check_cut(config: dict[str, Any], inputs: list[dict[str, Any]], cut: float) -> None:
    k = int(cut * len(inputs))
    whole = Engine(build_config(config))
    whole_events = _apply(whole, inputs)

    first = Engine(build_config(config))
    head_events = _apply(first, inputs[:k])
    text = checkpoint.dumps(first.state_root)
    restored = Engine.from_state(checkpoint.loads(text))
    tail_events = _apply(restored, inputs[k:])

    assert head_events + tail_events == whole_events
    assert _fields(restored) == _fields(whole)
    for name, account in whole.accounts.items():
        assert restored.state(restored.accounts[name]) == whole.state(account)
    # A checkpoint of the restored engine is the same text: nothing was lost or added.
    text = checkpoint.dumps(restored.state_root)
    assert text == checkpoint.dumps(whole.state_root)
    assert "".join(checkpoint.text_pieces(checkpoint.encode(restored.state_root))) == text


def _tier_variant(profile: str, symbol: str, variant: int) -> list[dict[str, object]]:
    """The scenario's table (0), its rates x1.5 (1), its caps halved (2), its first 4 tiers (3)."""
    spec = tier_spec(profile, symbol)
    if variant == 1:
        spec = [(cap, str(Decimal(mmr) * Decimal("1.5")), lev) for cap, mmr, lev in spec]
    elif variant == 2:
        spec = [(max(cap // 2, 1 + i), mmr, lev) for i, (cap, mmr, lev) in enumerate(spec)]
    elif variant == 3:
        spec = spec[:4]
    return ccxt_rows(spec)


@settings(max_examples=60, deadline=None)
@given(
    scenario=scenarios(),
    cut=st.floats(min_value=0, max_value=1),
    changes=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1),
            st.integers(min_value=0, max_value=3),
            st.sampled_from(SYMBOLS),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_checkpoint_plus_tail_equals_the_whole_journal_with_tier_changes(
    scenario: Scenario, cut: float, changes: list[tuple[float, int, str, bool]]
) -> None:
    """``tiers`` inputs (issue 16 ask 3) anywhere in the stream, before or after the cut: the
    checkpoint carries the tables in force, the tail re-applies the later ones."""
    inputs = list(scenario.inputs)
    for where, variant, symbol, resize in changes:
        i = int(where * len(inputs))
        ts = inputs[i - 1]["ts"] if i else inputs[0]["ts"] if inputs else 0
        entry: dict[str, Any] = {
            "tiers": _tier_variant(scenario.profile, symbol, variant),
            "source": "exchange",
            "asOf": f"2026-12-0{variant + 1}T00:00:00.000Z",
        }
        if resize and scenario.profile == "okx":
            entry["contractSize"] = str(CONTRACT_SIZES[symbol] / 10)
        inputs.insert(i, {"ts": ts, "type": "tiers", "tables": {symbol: entry}})
    _check_cut(scenario.config, inputs, cut)


class _PlainEncoder:
    """The checkpoint walk as a plain recursion (the codec's first version): the fast walk the
    daemon runs under its step lock must write exactly this tree."""

    def __init__(self) -> None:
        self.ids: dict[int, int] = {}
        self.keep: list[object] = []

    def walk(self, value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return {"e": f"{type(value).__module__}:{type(value).__qualname__}",
                    "v": self.walk(value.value)}  # fmt: skip
        if value is None or isinstance(value, bool | int | str):
            return value
        if isinstance(value, Decimal):
            return {"d": str(value)}
        if isinstance(value, float):
            return {"f": repr(value)}
        if isinstance(value, tuple):
            if hasattr(value, "_fields"):
                name = f"{type(value).__module__}:{type(value).__qualname__}"
                return {"nt": name, "t": [self.walk(v) for v in value]}
            return {"t": [self.walk(v) for v in value]}
        if isinstance(value, frozenset):
            return {"fs": [self.walk(v) for v in value]}
        if id(value) in self.ids:
            return {"r": self.ids[id(value)]}
        ref = self.ids[id(value)] = len(self.ids)
        self.keep.append(value)
        if isinstance(value, list):
            return {"o": ref, "l": [self.walk(v) for v in value]}
        if isinstance(value, dict | MappingProxyType):
            return {"o": ref, "m": [[self.walk(k), self.walk(v)] for k, v in value.items()]}
        if isinstance(value, set):
            return {"o": ref, "s": [self.walk(v) for v in value]}
        cls = type(value)
        names: list[str] = []
        for klass in cls.__mro__:
            slots = klass.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name not in ("__weakref__", "__dict__") and name not in names:
                    names.append(name)
        if hasattr(value, "__dict__"):
            names += [n for n in vars(value) if n not in names]
        attrs: dict[str, Any] = {}
        for name in names:
            try:
                attrs[name] = self.walk(object.__getattribute__(value, name))
            except AttributeError:
                continue
        return {"o": ref, "c": f"{cls.__module__}:{cls.__qualname__}", "a": attrs}


@settings(max_examples=30, deadline=None)
@given(scenario=scenarios())
def test_the_fast_walk_writes_the_plain_recursions_tree(scenario: Scenario) -> None:
    engine = Engine(build_config(scenario.config))
    _apply(engine, scenario.inputs)
    engine.state_root.out = []
    tree = checkpoint.encode(engine.state_root)
    assert tree == _PlainEncoder().walk(engine.state_root)
    assert checkpoint.text_of(tree) == checkpoint.dumps(engine.state_root)
    # the daemon makes the text in slices: the same bytes
    assert "".join(checkpoint.text_pieces(tree)) == checkpoint.text_of(tree)


def test_sharing_survives_a_load() -> None:
    # An order is in its account's book and in its market's trigger heap: one object after a
    # load too, so that cancelling it in the book also takes it out of the heap.
    scenario_config = {
        "type": "config",
        "accounts": {"a": {"wallet": 10000, "default_leverage": 10}},
    }
    engine = Engine(build_config(scenario_config))
    btc = "BTC/USDT:USDT"
    _apply(
        engine,
        [
            {"ts": 1, "type": "tick", "symbol": btc, "mark": "60000"},
            {
                "ts": 2,
                "type": "order",
                "account": "a",
                "id": "o1",
                "symbol": btc,
                "orderType": "market",
                "side": "buy",
                "amount": "0.1",
                "params": {"stopLossPrice": "55000"},
            },
        ],
    )
    restored = Engine.from_state(checkpoint.loads(checkpoint.dumps(engine.state_root)))
    account = restored.accounts["a"]
    [stop] = account.orders.values()
    heaps = restored.markets[btc].triggers["mark"]
    assert any(entry[2] is stop for heap in heaps for entry in heap)
    assert restored.config.tiers[btc].tiers == engine.config.tiers[btc].tiers


def test_funding_schedule_round_trips() -> None:
    schedule = FundingSchedule()
    schedule.observe("BTC/USDT:USDT", 1_700_000_000_000, Decimal("0.0001"), 1_700_003_600_000)
    again = checkpoint.loads(checkpoint.dumps(schedule))
    assert checkpoint.encode(again) == checkpoint.encode(schedule)


def _engine_text() -> str:
    engine = Engine(build_config({"type": "config", "accounts": {"a": {"wallet": 100}}}))
    return checkpoint.dumps(engine.state_root)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t: t[: len(t) // 2], "not JSON"),
        (lambda t: t.replace('"format":1', '"format":99'), "unknown checkpoint format 99"),
        (lambda t: t.replace("guardbot.core.account:Account", "os:system"), "not engine state"),
        (
            lambda t: t.replace("guardbot.core.account:Account", "guardbot.core.account:Gone"),
            "no longer exists",
        ),
        (lambda t: t.replace('"wallet"', '"wallet_renamed"', 1), "no such attribute"),
        (lambda t: json.dumps({"format": 1}), "not a checkpoint"),
    ],
)
def test_a_damaged_or_foreign_checkpoint_is_refused(damage: Any, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        checkpoint.loads(damage(_engine_text()))


def test_a_field_added_since_is_filled_from_its_default() -> None:
    text = _engine_text()
    # An older checkpoint without the account's insurance_fund (a field with a default).
    doc = json.loads(text)
    for node in _objects(doc["state"]):
        if node.get("c") == "guardbot.core.account:Account":
            del node["a"]["insurance_fund"]
    state = checkpoint.loads(json.dumps(doc))
    assert state.accounts["a"].insurance_fund == 0


def test_a_field_without_default_missing_is_refused() -> None:
    doc = json.loads(_engine_text())
    for node in _objects(doc["state"]):
        if node.get("c") == "guardbot.core.account:Account":
            del node["a"]["wallet"]
    with pytest.raises(CheckpointError, match="wallet: missing"):
        checkpoint.loads(json.dumps(doc))


def test_only_engine_state_is_written() -> None:
    with pytest.raises(CheckpointError, match="not engine state"):
        checkpoint.dumps({"x": object()})


def _objects(tree: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "c" in node:
                found.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found
