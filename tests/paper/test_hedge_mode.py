"""Hedge mode on the paper exchange: ccxt's set_position_mode, Binance's positionSide param,
and fetch_positions listing both sides with ``hedged: true`` (docs/rules.md §8.6)."""

from __future__ import annotations

import ccxt
import pytest

from tests.paper.paperkit import BTC, make_exchange, tick


async def test_a_binance_hedge_mode_strategy_runs_unchanged() -> None:
    exchange, _recorded = make_exchange(wallet=100_000, leverage=10)
    tick(exchange, 1000, 30000)
    assert (await exchange.fetch_position_mode(BTC))["hedged"] is False
    await exchange.set_position_mode(True, BTC)
    assert (await exchange.fetch_position_mode(BTC))["hedged"] is True
    # as written for Binance's hedge mode: positionSide LONG / SHORT, closing with the side
    await exchange.create_order(BTC, "market", "buy", 2, None, {"positionSide": "LONG"})
    await exchange.create_order(BTC, "market", "sell", 1, None, {"positionSide": "SHORT"})
    positions = await exchange.fetch_positions([BTC])
    assert [(p["side"], p["contracts"], p["hedged"]) for p in positions] == [
        ("long", 2.0, True),
        ("short", 1.0, True),
    ]
    closed = await exchange.create_order(BTC, "market", "sell", 2, None, {"positionSide": "LONG"})
    assert closed["status"] == "closed" and closed["filled"] == 2.0
    positions = await exchange.fetch_positions([BTC])
    assert [(p["side"], p["contracts"]) for p in positions] == [("short", 1.0)]


async def test_hedge_mode_refusals_are_ccxt_exceptions() -> None:
    exchange, _recorded = make_exchange(wallet=100_000, leverage=10, position_mode="hedged")
    tick(exchange, 1000, 30000)
    with pytest.raises(ccxt.InvalidOrder, match="POSITION_SIDE_REQUIRED"):
        await exchange.create_order(BTC, "market", "buy", 1)
    with pytest.raises(ccxt.ArgumentsRequired, match="positionSide"):
        await exchange.create_order(BTC, "market", "buy", 1, None, {"hedged": True})
    await exchange.create_order(BTC, "market", "buy", 1, None, {"positionSide": "long"})
    with pytest.raises(ccxt.BadRequest, match="POSITION_MODE_CHANGE_WITH_OPEN_POSITION"):
        await exchange.set_position_mode(False)


async def test_isolated_margin_of_one_side() -> None:
    exchange, _recorded = make_exchange(
        wallet=100_000, leverage=10, mode="isolated", position_mode="hedged"
    )
    tick(exchange, 1000, 30000)
    await exchange.create_order(BTC, "market", "buy", 1, None, {"positionSide": "LONG"})
    await exchange.create_order(BTC, "market", "sell", 1, None, {"positionSide": "SHORT"})
    added = await exchange.add_margin(BTC, 100, {"positionSide": "SHORT"})
    assert added["total"] == 3100.0
    positions = {p["side"]: p for p in await exchange.fetch_positions([BTC])}
    assert (positions["long"]["collateral"], positions["short"]["positionMargin"]) == (
        3000.0,
        3100.0,
    )
