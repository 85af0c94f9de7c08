"""Admission alone: configuration and markets in, an account and a command in, a Decision out.

It is a checker, not a part of the engine's state machine: it raises no event, moves no money
and books no order, so it can answer "would this order pass?" for any account.
"""

from __future__ import annotations

from decimal import Decimal

from guardbot.cli.simulate import build_config
from guardbot.core.admission import Admission
from guardbot.core.codes import Code
from guardbot.core.commands import OrderCmd, TickCmd
from guardbot.core.engine import Engine
from tests.core.enginekit import BTC, config


def _engine() -> Engine:
    engine = Engine(build_config(config(wallet=1_000, leverage=10)))
    engine.apply(1, TickCmd(BTC, Decimal(50_000)))
    return engine


def _order(amount: str, **kw: object) -> OrderCmd:
    return OrderCmd("a", "o1", BTC, "market", 1, Decimal(amount), **kw)  # type: ignore[arg-type]


def test_a_standalone_admission_decides_without_touching_the_account() -> None:
    engine = _engine()
    account = engine.accounts["a"]
    before = (account.wallet, dict(account.orders), account.order_margin, dict(account.positions))
    admission = Admission(engine.config, engine.markets)
    # 0.19 BTC at 50,000 and 10x: 950 of initial margin fits in 1,000; 0.21 needs 1,050
    assert admission.check(account, _order("0.19")).ok
    refused = admission.check(account, _order("0.21"))
    assert refused.code == Code.MARGIN_INSUFFICIENT
    assert refused.reason == "order cost 1050 exceeds the available balance 1000"
    assert admission.check(account, _order("0.1", reduce_only=True)).code == (
        Code.REDUCE_ONLY_NO_POSITION
    )
    after = (account.wallet, dict(account.orders), account.order_margin, dict(account.positions))
    assert after == before


def test_the_engine_applies_the_same_decision() -> None:
    engine = _engine()
    wallet = engine.accounts["a"].wallet
    decision = engine.admission.check(engine.accounts["a"], _order("0.21"))
    events = engine.apply(2, _order("0.21"))
    assert [(e["type"], e["code"], e["reason"]) for e in events] == [
        ("order_rejected", decision.code, decision.reason)
    ]
    assert engine.accounts["a"].wallet == wallet
