"""The mirror follower on the real ccxt.pro binanceusdm path, against the private stand-in.

Waits are on events (the follower's queue, the stand-in's connection counters); each is bounded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from guardbot.core.mirror import MirrorClose, MirrorCmd
from guardbot.errors import ConfigError
from guardbot.mirror.follower import MirrorAuthError, MirrorFollower, exchange_options
from guardbot.mirror.venues import mirror_venue
from tests.standin.binance_private import API_KEY, SECRET, StandinBinancePrivate
from tests.standin.private_venues import PRIVATE_VENUES

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
TIMEOUT = 10.0
KEYS = {"apiKey": API_KEY, "secret": SECRET}
#: how a position closes on the exchange (the stand-ins' ``close_position(how=...)``) -> the
#: reason the follower reports
CLOSE_REASONS = [
    ("LIQUIDATION", "liquidation"),
    ("ADL", "adl"),
    ("STOP_MARKET", "stop_loss"),
    ("TAKE_PROFIT_MARKET", "take_profit"),
    ("MARKET", "order"),
]


@asynccontextmanager
async def following(
    standin: Any,
    *,
    credentials: dict[str, str] | None = None,
    poll_s: float = 60.0,
    refresh_s: float = 0.05,
    **extra: Any,
) -> AsyncIterator[tuple[MirrorFollower, AsyncIterator[MirrorCmd]]]:
    """A follower of ``standin``'s account on the real ccxt.pro class of its venue (also the
    per-venue tests'), with ``credentials`` (the stand-in's own by default); ``extra`` goes
    to the ccxt config."""
    venue = mirror_venue(standin.exchange_id)
    if credentials is None:
        credentials = PRIVATE_VENUES.get(standin.exchange_id, (None, KEYS))[1]
    config = exchange_options(
        # no client-side rate limiting against the local stand-in: Binance weighs a
        # symbol-less open-orders call 40, which ccxt would pace to seconds
        standin.ccxt_config(enableRateLimit=False, **extra),
        venue,
        credentials,
    )
    exchange = getattr(ccxtpro, standin.exchange_id)(config)
    try:
        async with MirrorFollower(
            "main", exchange, venue, poll_s=poll_s, refresh_s=refresh_s, random=lambda: 0.0
        ) as follower:
            yield follower, aiter(follower.updates())
    finally:
        await exchange.close()


async def next_cmd(updates: AsyncIterator[MirrorCmd], timeout: float = TIMEOUT) -> MirrorCmd:
    async with asyncio.timeout(timeout):
        return await anext(updates)


async def until_cmd(
    updates: AsyncIterator[MirrorCmd], predicate: Any, timeout: float = TIMEOUT
) -> MirrorCmd:
    async with asyncio.timeout(timeout):
        while True:
            cmd = await anext(updates)
            if predicate(cmd):
                return cmd


async def refused_once(standin: Any, credentials: dict[str, str]) -> str:
    """Follow with wrong ``credentials``: one refused request, the follower failed and no
    retry; the error's text, which names the account."""
    async with following(standin, credentials=credentials, poll_s=0.05) as (follower, updates):
        with pytest.raises(MirrorAuthError) as caught:
            await next_cmd(updates)
        assert follower.status()["state"] == "failed"
        failures = standin.auth_failures
        await asyncio.sleep(0.3)  # would be several polls; the follower must have stopped
        assert standin.auth_failures == failures == 1
    message = str(caught.value)
    assert "'main'" in message and "refused" in message
    return message


@pytest.fixture
async def standin() -> AsyncIterator[StandinBinancePrivate]:
    async with StandinBinancePrivate((BTC, ETH)) as server:
        yield server


async def test_first_picture_comes_from_rest(standin: StandinBinancePrivate) -> None:
    await standin.set_position(BTC, "0.5", "60000", leverage=25, push=False)
    await standin.set_position(
        ETH, "-3", "3000", margin="isolated", isolated_wallet="450", leverage=20, push=False
    )
    stop = await standin.add_order(
        BTC, "STOP_MARKET", "SELL", "0", trigger="55000", close_position=True, push=False
    )
    await standin.add_order(
        ETH, "TAKE_PROFIT_MARKET", "BUY", "3", trigger="2500", reduce_only=True, push=False
    )
    await standin.add_order(BTC, "LIMIT", "SELL", "0.1", price="70000", push=False)
    async with following(standin) as (_follower, updates):
        cmd = await next_cmd(updates)
    assert cmd.source == "rest" and cmd.account == "main"
    assert cmd.wallet == Decimal("10000") and not cmd.hedged
    btc, eth = cmd.positions
    assert (btc.symbol, btc.side, btc.contracts, btc.entry_price) == (
        BTC,
        "long",
        1 / Decimal(2),
        60000,
    )
    assert (btc.margin_mode, btc.leverage, btc.isolated_wallet) == ("cross", 25, 0)
    assert btc.liquidation_price == standin.liquidation_price(BTC)
    assert (eth.side, eth.contracts, eth.margin_mode, eth.isolated_wallet) == (
        "short",
        3,
        "isolated",
        450,
    )
    assert eth.liquidation_price == standin.liquidation_price(ETH)
    sl, tp = sorted(cmd.orders, key=lambda o: o.kind)
    assert (sl.id, sl.kind, sl.side, sl.trigger_price, sl.amount) == (
        str(stop.id),
        "stop_loss",
        "sell",
        55000,
        None,
    )
    assert (tp.kind, tp.side, tp.trigger_price, tp.amount, tp.reduce_only) == (
        "take_profit",
        "buy",
        2500,
        3,
        True,
    )
    assert standin.writes() == []
    assert standin.unknown_paths == []


async def test_stream_update_at_once_then_rest_liquidation_price(
    standin: StandinBinancePrivate,
) -> None:
    await standin.set_position(BTC, "0.5", "60000", push=False)
    async with following(standin) as (follower, updates):
        first = await next_cmd(updates)
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        await standin.set_position(BTC, "0.8", "61000")
        streamed = await until_cmd(updates, lambda c: c.source == "stream")
        (pos,) = streamed.positions
        assert (pos.contracts, pos.entry_price) == (Decimal("0.8"), 61000)
        assert pos.liquidation_price is None  # the stream carries none; stale until REST says
        refreshed = await until_cmd(updates, lambda c: c.positions[0].liquidation_price is not None)
        assert refreshed.positions[0].liquidation_price == standin.liquidation_price(BTC)
        assert refreshed.positions[0].liquidation_price != first.positions[0].liquidation_price
        assert follower.rest_positions >= 1
        await standin.set_wallet("12000")
        walleted = await until_cmd(updates, lambda c: c.wallet == 12000)
        assert walleted.source == "stream"
    assert standin.writes() == []


@pytest.mark.parametrize(("how", "reason"), CLOSE_REASONS)
async def test_closed_position_carries_the_exchange_reason(
    standin: StandinBinancePrivate, how: str, reason: str
) -> None:
    await standin.set_position(BTC, "-0.5", "60000", push=False)
    async with following(standin) as (_follower, updates):
        await next_cmd(updates)
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        await standin.close_position(BTC, how=how)
        gone = await until_cmd(updates, lambda c: not c.positions)
    assert gone.closes == (MirrorClose(BTC, "short", reason),)


async def test_dropped_stream_leads_to_rest_reconciliation(standin: StandinBinancePrivate) -> None:
    await standin.set_position(BTC, "0.5", "60000", push=False)
    async with following(standin) as (follower, updates):
        await next_cmd(updates)
        await standin.wait_for(lambda: standin.private_connects >= 1)
        full = follower.rest_full
        standin.serve_private_ws = False  # the reconnect waits; meanwhile the account changes
        await standin.drop_private_sockets()
        await standin.set_position(ETH, "2", "3100", push=False)  # nobody hears this frame
        standin.serve_private_ws = True
        cmd = await until_cmd(updates, lambda c: len(c.positions) == 2)
        assert cmd.source == "rest"
        assert follower.rest_full > full
        await standin.wait_for(lambda: standin.private_connects >= 2)
        assert follower.connects >= 2
    assert standin.writes() == []


async def test_poll_reconciles_what_the_stream_missed(standin: StandinBinancePrivate) -> None:
    async with following(standin, poll_s=0.3) as (follower, updates):
        empty = await next_cmd(updates)
        assert empty.positions == ()
        await standin.set_position(BTC, "0.2", "64000", push=False)
        cmd = await until_cmd(updates, lambda c: len(c.positions) == 1)
        assert cmd.source == "rest"
        assert follower.rest_full >= 2


async def test_hedge_mode_positions(standin: StandinBinancePrivate) -> None:
    await standin.set_position(BTC, "0.5", "60000", side="LONG", push=False)
    await standin.set_position(BTC, "-0.2", "62000", side="SHORT", push=False)
    await standin.add_order(
        BTC, "STOP_MARKET", "SELL", "0.5", trigger="55000", position_side="LONG", push=False
    )
    async with following(standin) as (_follower, updates):
        cmd = await next_cmd(updates)
        assert cmd.hedged
        assert [(p.side, p.contracts, p.hedged) for p in cmd.positions] == [
            ("long", Decimal("0.5"), True),
            ("short", Decimal("0.2"), True),
        ]
        assert cmd.orders[0].position_side == "long"
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        await standin.close_position(BTC, side="SHORT", how="MARKET")
        cmd = await until_cmd(updates, lambda c: len(c.positions) == 1)
        assert cmd.positions[0].side == "long"
        assert cmd.closes == (MirrorClose(BTC, "short", "order"),)


async def test_listen_key_keepalive_is_the_only_write(standin: StandinBinancePrivate) -> None:
    async with following(standin, poll_s=0.2, options={"listenKeyRefreshRate": 100}) as (
        follower,
        updates,
    ):
        await next_cmd(updates)
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        async with asyncio.timeout(TIMEOUT):
            while standin.keepalives < 2 or follower.rest_full < 3:
                await asyncio.sleep(0.05)
    methods = {(m, p) for m, p, _k in standin.log if m != "GET"}
    assert methods == {("POST", "/fapi/v1/listenKey"), ("PUT", "/fapi/v1/listenKey")}
    assert standin.writes() == []


async def test_listen_key_expired_new_key_and_rest_reconciliation(
    standin: StandinBinancePrivate,
) -> None:
    """``listenKeyExpired``: ccxt 4.5.90 ignores it; the venue drops the key and the socket,
    ccxt creates a new key, and REST tells what the silent stream missed."""
    await standin.set_position(BTC, "0.5", "60000", push=False)
    async with following(standin) as (follower, updates):
        await next_cmd(updates)
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        full = follower.rest_full
        await standin.set_position(ETH, "2", "3100", push=False)  # nobody hears this
        assert await standin.expire_listen_key() == 1
        cmd = await until_cmd(updates, lambda c: len(c.positions) == 2)
        assert cmd.source == "rest" and follower.rest_full > full
        assert follower.stream_resets == 1
        # a new key, a connection with it, the old socket closed
        await standin.wait_for(
            lambda: (
                len(standin.listen_keys) == 2
                and standin.private_connects == 2
                and standin.open_private_sockets == 1
            )
        )
        # and the stream is heard again on the new key
        await standin.set_wallet("12000")
        walleted = await until_cmd(updates, lambda c: c.wallet == 12000)
        assert walleted.source == "stream"
    methods = {(m, p) for m, p, _k in standin.log if m != "GET"}
    assert methods == {("POST", "/fapi/v1/listenKey")}
    assert standin.writes() == []


@pytest.mark.parametrize(("api_key", "secret"), [("wrong-key", SECRET), (API_KEY, "wrong-secret")])
async def test_wrong_keys_one_clear_error(
    standin: StandinBinancePrivate, api_key: str, secret: str
) -> None:
    message = await refused_once(standin, {"apiKey": api_key, "secret": secret})
    for secret_text in (api_key, secret, "signature"):
        assert secret_text not in message


def test_venue_without_positions_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"cannot read positions on 'bitstamp'"):
        mirror_venue("bitstamp", where="accounts.x.mirror")
    with pytest.raises(ConfigError, match="not supported on 'kucoinfutures'"):
        mirror_venue("kucoinfutures")
    assert mirror_venue("binanceusdm").id == "binanceusdm"
    assert mirror_venue("bybit").id == "bybit"


async def test_an_unexpected_error_ends_the_updates_loudly(standin: StandinBinancePrivate) -> None:
    async with following(standin) as (follower, updates):
        await next_cmd(updates)

        def broken(_positions: object) -> None:
            raise RuntimeError("a bug in the book")

        follower.book.apply_stream_positions = broken  # type: ignore[method-assign]
        await standin.wait_for(lambda: standin.open_private_sockets >= 1)
        await standin.set_position(BTC, "0.1", "60000")
        with pytest.raises(RuntimeError, match="a bug in the book"):
            await next_cmd(updates)
