"""A strategy written with ccxt method names only, run on the paper exchange over scripted ticks:
its fills, stops, a refusal, margin alerts and the liquidation, as the strategy and ccxt see them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from guardbot.paper import StrategyRunner, load_strategy
from tests.paper.paperkit import BTC, drive, make_exchange

STRATEGY = Path(__file__).parent / "strategies" / "scripted.py"

# tick: 1 buy 1 @30000 (SL 29000, TP 32000) | 3 TP fires | 4 limit buy 1 @31500 rests |
# 5 limit fills, strategy adds a reduce-only SL @30000 | 6 SL fires | 7 all-in refused, then 6 |
# 8-10 the long of 6 sinks into alerts and liquidation
MARKS = [30000, 31000, 32000, 32000, 31400, 29900, 30000, 29000, 28500, 28300]


@pytest.fixture
async def run() -> tuple[object, object, object]:
    # one liquidation in one step (the stepwise kind has its own tests in tests/core)
    exchange, recorded = make_exchange(
        wallet=10_000, leverage=10, profile_options={"liquidation_steps": "full"}
    )
    strategy = load_strategy(f"{STRATEGY}:Scripted")({})
    runner = StrategyRunner(strategy, exchange)
    await runner.start()
    await drive(runner, recorded, MARKS)
    await runner.stop()
    assert runner.errors == 0
    return strategy, exchange, recorded


def _types(events: list[dict[str, object]]) -> list[object]:
    return [e["type"] for e in events]


async def test_entry_fills_and_returns_a_closed_ccxt_order(run: tuple[object, ...]) -> None:
    strategy, _exchange, _recorded = run
    entry = strategy.orders["entry"]  # type: ignore[attr-defined]
    assert entry["status"] == "closed"
    assert (entry["symbol"], entry["type"], entry["side"]) == (BTC, "market", "buy")
    assert (entry["amount"], entry["filled"], entry["remaining"]) == (1.0, 1.0, 0.0)
    assert entry["average"] == 30000.0 and entry["cost"] == 30000.0
    assert entry["stopLossPrice"] == 29000.0 and entry["takeProfitPrice"] == 32000.0
    assert entry["fee"] == {"cost": 0.0, "currency": "USDT"}
    assert entry["info"]["type"] == "fill"


async def test_take_profit_then_limit_then_stand_alone_stop(run: tuple[object, ...]) -> None:
    strategy, _exchange, _recorded = run
    seen = strategy.seen  # type: ignore[attr-defined]
    stops = [e for e in seen if e["type"] == "stop_triggered"]
    assert [(s["kind"], str(s["price"])) for s in stops] == [
        ("take_profit", "32000"),
        ("stop_loss", "29900"),
    ]
    limit = strategy.orders["limit"]  # type: ignore[attr-defined]
    assert limit["status"] == "open" and limit["filled"] == 0.0 and limit["price"] == 31500.0
    limit_fill = next(e for e in seen if e["type"] == "fill" and e["id"] == limit["id"])
    assert limit_fill["liquidity"] == "maker" and str(limit_fill["price"]) == "31500"
    stop = strategy.orders["stop"]  # type: ignore[attr-defined]
    assert stop["status"] == "open" and stop["reduceOnly"] is True
    assert stop["triggerPrice"] == 30000.0 and stop["stopLossPrice"] == 30000.0


async def test_refusal_is_a_ccxt_exception_with_the_guard_code(run: tuple[object, ...]) -> None:
    strategy, _exchange, recorded = run
    assert len(strategy.refusals) == 1  # type: ignore[attr-defined]
    assert strategy.refusals[0].startswith("guardbot MARGIN_INSUFFICIENT: ")  # type: ignore[attr-defined]
    rejected = [e for e in recorded.events if e["type"] == "order_rejected"]  # type: ignore[attr-defined]
    assert [e["code"] for e in rejected] == ["MARGIN_INSUFFICIENT"]
    # the strategy saw the refusal as an event too
    assert "order_rejected" in _types(strategy.seen)  # type: ignore[attr-defined]


async def test_margin_alerts_then_liquidation(run: tuple[object, ...]) -> None:
    strategy, exchange, _recorded = run
    kinds = _types(strategy.seen)  # type: ignore[attr-defined]
    assert "margin_alert" in kinds
    assert kinds.index("margin_alert") < kinds.index("liquidation")
    assert kinds.count("liquidation") == 1
    assert strategy.final_positions == []  # type: ignore[attr-defined]
    balance = strategy.final_balance  # type: ignore[attr-defined]
    assert balance["USDT"]["total"] == 0.0 and balance["total"] == {"USDT": 0.0}
    # the forced close is reported as Binance does: an autoclose market order and its trade
    closed = strategy.closed  # type: ignore[attr-defined]
    autoclose = [o for o in closed if o["id"].startswith("autoclose-")]
    assert len(autoclose) == 1
    assert autoclose[0]["side"] == "sell" and autoclose[0]["amount"] == 6.0
    assert await exchange.fetch_open_orders() == []  # type: ignore[attr-defined]


async def test_history_matches_the_fills(run: tuple[object, ...]) -> None:
    strategy, _exchange, recorded = run
    fills = [e for e in recorded.events if e["type"] == "fill"]  # type: ignore[attr-defined]
    liquidations = [e for e in recorded.events if e["type"] == "liquidation"]  # type: ignore[attr-defined]
    trades = strategy.trades  # type: ignore[attr-defined]
    assert len(trades) == len(fills) + len(liquidations) == 6
    assert [t["side"] for t in trades] == ["buy", "sell", "buy", "sell", "buy", "sell"]
    assert [t["amount"] for t in trades] == [1.0, 1.0, 1.0, 1.0, 6.0, 6.0]
    ids = [o["id"] for o in strategy.closed]  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids)) == 6
    assert all(t["order"] in ids for t in trades)
    assert strategy.stopped  # type: ignore[attr-defined]
