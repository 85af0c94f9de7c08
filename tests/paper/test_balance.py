"""fetch_balance keeps ccxt's balance invariants on every call: ``used >= 0`` and
``free + used == total`` per currency (so ``free <= total``), in the exact values under ``info``
and, to float precision, in the unified fields.

``total`` is the wallet (cross wallet + isolated wallets, docs/contracts.md §2). ``free`` is the
engine's available balance for orders, without unrealized profit: that profit is not in the
wallet yet, and counting it made ``free`` exceed ``total`` (issue 11: ``used`` -192.80 after a
replay).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import ccxt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardbot.paper import PaperExchange
from tests.core.enginekit import ETH
from tests.paper.paperkit import BTC, make_exchange, tick


def check(balance: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    """Assert the invariants on ``balance``; return its exact (free, used, total)."""
    exact = balance["info"]["balance"]["USDT"]
    free, used, total = (Decimal(exact[k]) for k in ("free", "used", "total"))
    assert used >= 0, exact
    assert free + used == total, exact
    assert free <= Decimal(balance["info"]["availableBalance"])  # never more than orders may use
    row = balance["USDT"]
    assert row == {"free": float(free), "used": float(used), "total": float(total)}
    assert row["used"] >= 0
    assert math.isclose(row["free"] + row["used"], row["total"], rel_tol=1e-12, abs_tol=1e-9)
    for key in ("free", "used", "total"):
        assert balance[key] == {"USDT": row[key]}
    return free, used, total


async def _balance(exchange: PaperExchange) -> tuple[Decimal, Decimal, Decimal]:
    return check(await exchange.fetch_balance())


async def test_unrealized_profit_is_not_free() -> None:
    # 1 BTC long at 30,000, 10x: 3,000 initial margin. At 34,000 the profit (4,000) exceeds it;
    # free counted the profit (10,000 + 4,000 - 3,000 = 11,000 > total) and used was -1,000
    exchange, _ = make_exchange(wallet=10_000, leverage=10)
    tick(exchange, 1000, 30000)
    assert await _balance(exchange) == (10000, 0, 10000)
    await exchange.create_order(BTC, "market", "buy", 1)
    assert await _balance(exchange) == (7000, 3000, 10000)
    tick(exchange, 2000, 34000)  # the initial margin grows with the mark: 3,400
    assert await _balance(exchange) == (6600, 3400, 10000)
    # the engine still lets orders use the profit: its available balance is in info
    assert (await exchange.fetch_balance())["info"]["availableBalance"] == "10600"


async def test_unrealized_loss_is_used() -> None:
    exchange, _ = make_exchange(wallet=10_000, leverage=10)
    tick(exchange, 1000, 30000)
    await exchange.create_order(BTC, "market", "buy", 1)
    tick(exchange, 2000, 28000)  # loss 2,000, initial margin 2,800
    assert await _balance(exchange) == (5200, 4800, 10000)


async def test_isolated_wallets_and_open_orders_are_used() -> None:
    exchange, _ = make_exchange(wallet=10_000, leverage=10)
    tick(exchange, 1000, 30000)
    await exchange.create_order(BTC, "market", "buy", 1, None, {"marginMode": "isolated"})
    assert await _balance(exchange) == (7000, 3000, 10000)  # the isolated wallet: 3,000
    tick(exchange, 2000, 36000)  # isolated profit is in neither free nor total
    assert await _balance(exchange) == (7000, 3000, 10000)
    tick(exchange, 2000, 2000, symbol=ETH)
    await exchange.create_order(ETH, "limit", "buy", 5, 1900)  # 950 reserved by the order
    assert await _balance(exchange) == (6050, 3950, 10000)


async def test_through_a_liquidation() -> None:
    exchange, _ = make_exchange(wallet=1_000, leverage=50, taker="0.0005")
    tick(exchange, 1000, 30000)
    await exchange.create_order(BTC, "market", "buy", 1)  # 600 initial margin, 15 fee
    await _balance(exchange)
    tick(exchange, 2000, 30500)  # a profit above the fee
    await _balance(exchange)
    events = tick(exchange, 3000, 29000)  # a loss beyond the wallet: liquidated
    assert any(e["type"] == "liquidation" for e in events)
    free, used, total = await _balance(exchange)
    assert used == 0 and free == total


MARKS = {BTC: (20_000, 40_000), ETH: (1_000, 3_000)}

step = st.one_of(
    st.tuples(st.just("tick"), st.sampled_from([BTC, ETH]), st.floats(0, 1)),
    st.tuples(
        st.just("order"),
        st.sampled_from([BTC, ETH]),
        st.sampled_from(["buy", "sell"]),
        st.sampled_from(["0.001", "0.01", "0.05", "0.2", "1"]),
        st.sampled_from([None, "0.97", "1.03"]),  # market, or a limit this far from the mark
        st.booleans(),  # reduce-only
    ),
    st.tuples(st.just("leverage"), st.sampled_from([BTC, ETH]), st.sampled_from([2, 10, 50, 100])),
    st.tuples(st.just("mode"), st.sampled_from([BTC, ETH]), st.sampled_from(["cross", "isolated"])),
    st.tuples(st.just("margin"), st.sampled_from([BTC, ETH]), st.sampled_from(["add", "reduce"])),
    st.tuples(st.just("cancel"), st.sampled_from([BTC, ETH])),
)


async def _step(exchange: PaperExchange, ts: int, action: tuple[Any, ...]) -> None:
    kind, symbol = action[0], action[1]
    low, high = MARKS[symbol]
    try:
        if kind == "tick":
            tick(exchange, ts, round(low + (high - low) * action[2], 1), symbol=symbol)
        elif kind == "order":
            _, _, side, amount, offset, reduce_only = action
            mark = (await exchange.fetch_ticker(symbol))["markPrice"]
            if mark is None:
                return
            price = None if offset is None else round(mark * float(offset), 1)
            await exchange.create_order(
                symbol,
                "market" if price is None else "limit",
                side,
                amount,
                price,
                {"reduceOnly": True} if reduce_only else {},
            )
        elif kind == "leverage":
            await exchange.set_leverage(action[2], symbol)
        elif kind == "mode":
            await exchange.set_margin_mode(action[2], symbol)
        elif kind == "margin":
            method = exchange.add_margin if action[2] == "add" else exchange.reduce_margin
            await method(symbol, 100)
        else:
            await exchange.cancel_all_orders(symbol)
    except ccxt.BaseError:
        pass  # a refusal (a guard, no position, stale price, ...): the balance is still checked


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(step, min_size=5, max_size=50), st.sampled_from([1_000, 10_000]))
async def test_invariants_hold_after_every_call(
    actions: list[tuple[Any, ...]], wallet: int
) -> None:
    exchange, _ = make_exchange(wallet=wallet, leverage=20, taker="0.0005", maker="0.0002")
    await _balance(exchange)
    tick(exchange, 500, 30000)
    tick(exchange, 500, 2000, symbol=ETH)
    for i, action in enumerate(actions, start=1):
        await _step(exchange, 1000 * i, action)
        await _balance(exchange)
