"""The mirror follower on each further venue's real ccxt.pro path, against its private stand-in
(tests/standin/<venue>_private.py): what tests/mirror/test_follower.py checks for Binance.

The private stand-ins share the Binance stand-in's controls (``set_position``, ``add_order``,
``close_position(how=...)``, ``writes()``), so one test body serves every venue. Waits are on
events (the follower's queue, the stand-in's connection counters); each is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from guardbot.core.mirror import MirrorClose
from guardbot.mirror.venues import mirror_venue
from tests.mirror.test_follower import (
    CLOSE_REASONS,
    TIMEOUT,
    following,
    next_cmd,
    refused_once,
    until_cmd,
)
from tests.standin import bybit_private
from tests.standin.private_venues import PRIVATE_VENUES

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def amount(standin: Any, base: str) -> Decimal:
    """``base`` units of BTC/ETH in the venue's contracts (what ccxt and the book count)."""
    return Decimal(base) / standin.contract_size(BTC)


@pytest_asyncio.fixture(params=sorted(PRIVATE_VENUES))
async def standin(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    factory, _credentials = PRIVATE_VENUES[request.param]
    async with factory((BTC, ETH)) as server:
        yield server


async def test_first_picture_comes_from_rest(standin: Any) -> None:
    await standin.set_position(BTC, amount(standin, "0.5"), "60000", leverage=25, push=False)
    stop = await standin.add_order(
        BTC, "STOP_MARKET", "SELL", "0", trigger="55000", close_position=True, push=False
    )
    await standin.add_order(
        BTC, "TAKE_PROFIT_MARKET", "SELL", amount(standin, "0.5"), trigger="70000", push=False
    )
    await standin.add_order(BTC, "LIMIT", "SELL", amount(standin, "0.1"), price="70000", push=False)
    async with following(standin) as (_follower, updates):
        cmd = await next_cmd(updates)
    assert cmd.source == "rest" and cmd.wallet == Decimal("10000") and not cmd.hedged
    (btc,) = cmd.positions
    assert (btc.symbol, btc.side, btc.contracts, btc.entry_price) == (
        BTC,
        "long",
        amount(standin, "0.5"),
        60000,
    )
    assert (btc.margin_mode, btc.leverage) == ("cross", 25)
    assert btc.liquidation_price == standin.liquidation_price(BTC)
    sl, tp = sorted(cmd.orders, key=lambda o: o.kind)  # the limit order guards nothing
    assert (sl.id, sl.kind, sl.side, sl.trigger_price, sl.amount) == (
        str(stop.id),
        "stop_loss",
        "sell",
        55000,
        None,
    )
    assert (tp.kind, tp.trigger_price, tp.amount, tp.reduce_only) == (
        "take_profit",
        70000,
        amount(standin, "0.5"),
        True,
    )
    assert standin.writes() == []
    assert standin.unknown_paths == []
    # the mirror's own instance lists no currencies (a signed call it does not need)
    assert not [p for _m, p, _k in standin.log if "currencies" in p or "coin/query-info" in p]


async def test_isolated_position(standin: Any) -> None:
    await standin.set_position(
        ETH, -amount(standin, "3"), "3000", margin="isolated", isolated_wallet="450", push=False
    )
    async with following(standin) as (_follower, updates):
        cmd = await next_cmd(updates)
    (eth,) = cmd.positions
    assert (eth.side, eth.margin_mode, eth.isolated_wallet) == ("short", "isolated", 450)
    assert eth.liquidation_price == standin.liquidation_price(ETH)


async def test_stream_update_at_once_then_rest_liquidation_price(standin: Any) -> None:
    if "positions" not in mirror_venue(standin.exchange_id).streams:
        pytest.skip("no position stream in ccxt 4.5.90 (MEXC): test_push_triggers_rest_picture")
    await standin.set_position(BTC, amount(standin, "0.5"), "60000", push=False)
    async with following(standin) as (follower, updates):
        first = await next_cmd(updates)
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        await until_subscribed(standin)
        await standin.set_position(BTC, amount(standin, "0.8"), "61000")
        streamed = await until_cmd(updates, lambda c: c.source == "stream")
        (pos,) = streamed.positions
        assert (pos.contracts, pos.entry_price) == (amount(standin, "0.8"), 61000)
        refreshed = await until_cmd(
            updates, lambda c: c.positions and c.positions[0].liquidation_price is not None
        )
        assert refreshed.positions[0].liquidation_price == standin.liquidation_price(BTC)
        assert refreshed.positions[0].liquidation_price != first.positions[0].liquidation_price
        await standin.set_wallet("12000")
        walleted = await until_cmd(updates, lambda c: c.wallet == 12000)
        assert walleted.source == "stream"
        assert follower.stream_updates >= 2
    assert standin.writes() == []


async def until_subscribed(standin: Any) -> None:
    """The private topics are subscribed (the stand-in counts them after the ack)."""
    await standin.wait_for(lambda: standin.private_subscriptions >= standin.private_channels)


@pytest.mark.parametrize(("how", "reason"), CLOSE_REASONS)
async def test_closed_position_carries_the_exchange_reason(
    standin: Any, how: str, reason: str
) -> None:
    if (standin.exchange_id, how) == ("bitget", "ADL"):
        pytest.skip("Bitget documents an ADL tradeSide (offset_close_*) in hedge mode only")
    if standin.exchange_id == "mexc" and how in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
        pytest.skip(
            "MEXC's order push calls a TP/SL's order a 'close delegate' (category 3) without "
            "saying which, and ccxt 4.5.90 drops push.personal.stop.order"
        )
    await standin.set_position(BTC, -amount(standin, "0.5"), "60000", push=False)
    async with following(standin) as (_follower, updates):
        await next_cmd(updates)
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        await until_subscribed(standin)
        await standin.close_position(BTC, how=how)
        gone = await until_cmd(updates, lambda c: not c.positions)
    assert gone.closes == (MirrorClose(BTC, "short", reason),)


async def test_dropped_stream_leads_to_rest_reconciliation(standin: Any) -> None:
    await standin.set_position(BTC, amount(standin, "0.5"), "60000", push=False)
    async with following(standin) as (follower, updates):
        await next_cmd(updates)
        await standin.wait_for(lambda: standin.private_connects >= 1)
        full = follower.rest_full
        standin.serve_private_ws = False  # the reconnect waits; meanwhile the account changes
        await standin.drop_private_sockets()
        await standin.set_position(ETH, amount(standin, "2"), "3100", push=False)
        standin.serve_private_ws = True
        cmd = await until_cmd(updates, lambda c: len(c.positions) == 2, timeout=30)
        # a venue that pushes a snapshot on subscribe (Bitget) may tell it before REST does
        assert cmd.source == "rest" or getattr(standin, "snapshot_on_subscribe", False)
        async with asyncio.timeout(30):  # bounded poll: the follower has no event for it
            while follower.rest_full <= full:
                await asyncio.sleep(0.02)
        await standin.wait_for(lambda: standin.private_connects >= 2, timeout=30)
    assert standin.writes() == []


async def test_hedge_mode_positions(standin: Any) -> None:
    await standin.set_position(BTC, amount(standin, "0.5"), "60000", side="LONG", push=False)
    await standin.set_position(BTC, -amount(standin, "0.2"), "62000", side="SHORT", push=False)
    await standin.add_order(
        BTC, "STOP_MARKET", "SELL", amount(standin, "0.5"), trigger="55000",
        position_side="LONG", push=False,
    )  # fmt: skip
    async with following(standin) as (_follower, updates):
        cmd = await next_cmd(updates)
        assert cmd.hedged
        assert [(p.side, p.contracts, p.hedged) for p in cmd.positions] == [
            ("long", amount(standin, "0.5"), True),
            ("short", amount(standin, "0.2"), True),
        ]
        assert cmd.orders[0].position_side == "long"
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        await until_subscribed(standin)
        await standin.close_position(BTC, side="SHORT", how="MARKET")
        cmd = await until_cmd(updates, lambda c: len(c.positions) == 1)
        assert cmd.positions[0].side == "long"
        assert cmd.closes == (MirrorClose(BTC, "short", "order"),)
    assert standin.writes() == []


@pytest.mark.parametrize("wrong", ["apiKey", "secret", "password"])
async def test_wrong_keys_one_clear_error(standin: Any, wrong: str) -> None:
    credentials = dict(PRIVATE_VENUES[standin.exchange_id][1])
    if wrong not in credentials:  # a venue without a passphrase: a wrong secret instead
        wrong = "secret"
    credentials[wrong] = f"wrong-{wrong}-4242"
    message = await refused_once(standin, credentials)
    for secret_text in credentials.values():
        assert secret_text not in message
    assert standin.writes() == []


async def test_many_stops_all_read(standin: Any) -> None:
    """More stops than one default page holds (Bybit: 20): every one is mirrored."""
    await standin.set_position(BTC, amount(standin, "0.5"), "60000", push=False)
    for i in range(57):
        await standin.add_order(
            BTC, "STOP_MARKET", "SELL", amount(standin, "0.01"), trigger=str(50000 + i),
            push=False,
        )  # fmt: skip
    async with following(standin) as (_follower, updates):
        cmd = await next_cmd(updates)
    assert sorted(o.trigger_price for o in cmd.orders) == [50000 + i for i in range(57)]
    assert standin.unknown_paths == []


async def test_a_stop_placed_and_cancelled_shows_at_once(standin: Any) -> None:
    """Stops stream (Bybit: the ``order`` topic; OKX: the business socket's ``orders-algo``)."""
    if standin.exchange_id == "mexc":
        pytest.skip("ccxt 4.5.90 reads neither push.personal.plan.order nor stop.order (MEXC)")
    await standin.set_position(BTC, amount(standin, "0.5"), "60000", push=False)
    async with following(standin) as (follower, updates):
        first = await next_cmd(updates)
        assert first.orders == ()
        await standin.wait_for(lambda: standin.private_subscriptions >= standin.private_channels)
        full = follower.rest_full
        stop = await standin.add_order(
            BTC, "STOP_MARKET", "SELL", "0", trigger="55000", close_position=True
        )
        placed = await until_cmd(updates, lambda c: len(c.orders) == 1)
        assert placed.source == "stream"
        assert (placed.orders[0].id, placed.orders[0].kind) == (str(stop.id), "stop_loss")
        await standin.cancel_order(stop.id)
        cancelled = await until_cmd(updates, lambda c: not c.orders)
        assert cancelled.source == "stream"
        assert follower.rest_full == full  # the stream told, not a reconciliation
    assert standin.writes() == []


async def test_bybit_other_categories_on_the_stream_are_not_mirrored() -> None:
    """Bybit's unified account streams every category; REST is asked for USDT linear only, so
    an inverse position or a spot order seen on the stream must not enter the mirror (it would
    be reported closed by the next REST answer)."""
    async with bybit_private.StandinBybitPrivate((BTC, ETH)) as standin:
        await standin.set_position(BTC, "0.5", "60000", push=False)
        async with following(standin, poll_s=0.3) as (follower, updates):
            await next_cmd(updates)
            await standin.wait_for(lambda: standin.private_subscriptions >= 3)
            assert await standin.push_other_category() == 2
            await standin.set_wallet("12000")  # a change after the foreign frames
            cmd = await until_cmd(updates, lambda c: c.wallet == 12000)
            assert [p.symbol for p in cmd.positions] == [BTC] and cmd.orders == ()
            full = follower.rest_full
            async with asyncio.timeout(TIMEOUT):
                while follower.rest_full < full + 2:  # two more reconciliations
                    await asyncio.sleep(0.05)
            await standin.set_wallet("13000")
            seen = []
            await until_cmd(updates, lambda c: seen.append(c) or c.wallet == 13000)
            assert [c.closes for c in seen if c.closes] == []
            assert all([p.symbol for p in c.positions] == [BTC] for c in seen)


async def test_private_socket_kept_alive_by_ping_pong(standin: Any) -> None:
    """ccxt pings the private socket every keepAlive and drops it when two pongs are missed:
    with a 150 ms keepAlive, several rounds pass on one connection, without an error."""
    async with following(standin, streaming={"keepAlive": 150}) as (follower, updates):
        await next_cmd(updates)
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        pings = standin.pings
        async with asyncio.timeout(TIMEOUT):
            while standin.pings < pings + 4:
                await asyncio.sleep(0.05)
        assert standin.private_connects == 1
        assert follower.errors == 0


async def test_push_triggers_rest_picture(standin: Any) -> None:
    """A venue whose streams say that the account changed but not how (MEXC: no position
    stream in ccxt, no wallet in the asset push) takes a complete REST picture soon after a
    push: the new position, the new wallet and the exchange's liquidation price."""
    if not mirror_venue(standin.exchange_id).stream_triggers_rest:
        pytest.skip("the venue's streams carry the change itself")
    async with following(standin) as (follower, updates):
        await next_cmd(updates)
        await until_subscribed(standin)
        full = follower.rest_full
        await standin.set_position(BTC, amount(standin, "0.5"), "60000")
        cmd = await until_cmd(updates, lambda c: len(c.positions) == 1)
        assert cmd.source == "rest" and follower.rest_full == full + 1
        assert cmd.positions[0].liquidation_price == standin.liquidation_price(BTC)
        await standin.set_wallet("1500")
        cmd = await until_cmd(updates, lambda c: c.wallet == 1500)
        assert cmd.source == "rest"
    assert standin.writes() == []
