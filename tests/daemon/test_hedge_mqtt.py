"""Hedge mode over MQTT (issue 13) against a real in-process :class:`Daemon` and a private
Mosquitto: ``set_position_mode`` on the control topic, a long and a short on one symbol, both
sides in the retained account snapshot, the two refusals of the contract, and the liquidation
alert naming the side it liquidated.

Every wait is on an MQTT message or on the feed going idle, bounded by ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from guardbot.daemon.service import Daemon
from tests.broker import Mosquitto
from tests.daemon.test_daemon import BTC, EventFeed, Subscriber, states
from tests.daemon.test_daemon_ops import (
    CONTROL,
    TOKEN,
    alive,
    command,
    control_ready,
    finish,
    inputs,
    make_config,
    request,
    start,
)

pytestmark = pytest.mark.integration

LIMIT = 40.0
SNAPSHOT = "guardbot/t1/accounts/demo"
ALERTS = "guardbot/t1/alerts/#"
#: Down from 60,000 until the long (0.3 BTC against a 0.1 BTC short, 1,000 USDT cross at 25x)
#: is liquidated: the net 0.2 BTC loses 200 USDT per 1,000 USDT of price.
DOWN = tuple(str(mark) for mark in range(59_000, 54_000, -500))


def mode(rid: str, position_mode: str) -> dict[str, Any]:
    return {
        "requestId": rid,
        "token": TOKEN,
        "type": "set_position_mode",
        "account": "demo",
        "positionMode": position_mode,
    }


def sides(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The snapshot's positions on BTC by side (``long``/``short``)."""
    return {p["side"]: p for p in snapshot["positions"] if p["symbol"] == BTC}


async def test_hedge_mode_over_mqtt(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = make_config(tmp_path, mosquitto, extra=CONTROL)
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed)
    stop = asyncio.Event()
    async with asyncio.timeout(LIMIT):
        task = start(daemon, stop)
        try:
            await alive(task, control_ready(daemon))
            await feed.pushed("60000")
            async with (
                aiomqtt.Client(mosquitto.host, mosquitto.port) as client,
                Subscriber(mosquitto, [SNAPSHOT, ALERTS]) as sub,
            ):
                hedged = await request(client, mode("m1", "hedged"), "m1")
                assert hedged["ok"] is True, hedged
                assert [(e["type"], e["positionMode"]) for e in hedged["events"]] == [
                    ("position_mode_changed", "hedged")
                ]

                # An order of a hedged account must name its side: refused, nothing changes.
                before = states(daemon)
                sideless = await request(client, command("o0"), "o0")
                assert (sideless["ok"], sideless["code"]) == (False, "POSITION_SIDE_REQUIRED")
                assert [e["type"] for e in sideless["events"]] == ["order_rejected"]
                assert states(daemon) == before

                long = await request(
                    client, command("o1", amount="0.3", params={"positionSide": "LONG"}), "o1"
                )
                short = await request(
                    client,
                    command("o2", side="sell", amount="0.1", params={"positionSide": "short"}),
                    "o2",
                )
                for reply, side, amount in ((long, "long", "0.3"), (short, "short", "0.1")):
                    assert reply["ok"] is True, reply
                    [fill] = [e for e in reply["events"] if e["type"] == "fill"]
                    assert (fill["positionSide"], fill["amount"]) == (side, amount)

                # Both sides live side by side, each its own position with ccxt's hedged flag.
                await sub.until(lambda t, p: t == SNAPSHOT and set(sides(p)) == {"long", "short"})
                snapshot = sub.received[-1][1]
                by_side = sides(snapshot)
                assert {s: (p["contracts"], p["hedged"]) for s, p in by_side.items()} == {
                    "long": ("0.3", True),
                    "short": ("0.1", True),
                }
                assert all(p["marginMode"] == "cross" for p in by_side.values())
                assert by_side["long"]["entryPrice"] == by_side["short"]["entryPrice"] == "60000"

                # The mode cannot change under open positions.
                oneway = await request(client, mode("m2", "oneway"), "m2")
                assert (oneway["ok"], oneway["code"]) == (
                    False,
                    "POSITION_MODE_CHANGE_WITH_OPEN_POSITION",
                )
                assert daemon.engine.account("demo").position_mode == "hedged"

                # Down to the cross account's liquidation (account scope: both sides go, each
                # in the tier of its own size); each alert names the side it liquidated.
                feed.push(*DOWN)
                await sub.until(
                    lambda _t, _p: (
                        len([t for t, _ in sub.received if t.endswith("/liquidation")]) == 2
                    )
                )
                liquidations = [p for t, p in sub.received if t.endswith("/liquidation")]
                assert {p["positionSide"]: p["contracts"] for p in liquidations} == {
                    "long": "0.3",
                    "short": "0.1",
                }
                assert all(p["side"] == p["positionSide"] for p in liquidations)
                assert all(p["symbol"] == BTC and p["partial"] is False for p in liquidations)
                assert {p["markPrice"] for p in liquidations} == {"55500"}
            await feed.idle.wait()
        finally:
            await finish(task, stop)
    # The journal holds the accepted commands in order; refusals by the engine as refused.
    kinds = [k for k, _b in inputs(tmp_path / "data")]
    assert kinds[:7] == [
        "tiers",  # the tier tables in force, journaled at the first start (issue 16 ask 3)
        "tick",
        "set_position_mode",
        "refused_command",
        "order",
        "order",
        "refused_command",
    ]
