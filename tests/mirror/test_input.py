"""The ``mirror`` input's JSON form: round trip, and refusals that name the key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from guardbot.core.mirror import (
    MirrorClose,
    MirrorCmd,
    MirrorOrder,
    MirrorPosition,
    mirror_to_json,
    parse_mirror,
)
from guardbot.errors import InputError

CMD = MirrorCmd(
    account="main",
    wallet=Decimal("10000.5"),
    positions=(
        MirrorPosition(
            "BTC/USDT:USDT",
            "long",
            Decimal("0.5"),
            Decimal(60000),
            Decimal(20),
            "cross",
            Decimal(0),
            Decimal("40160.64"),
        ),
        MirrorPosition(
            "ETH/USDT:USDT",
            "short",
            Decimal(3),
            Decimal(3000),
            Decimal(10),
            "isolated",
            Decimal(450),
            None,
            hedged=True,
        ),
    ),
    orders=(
        MirrorOrder("7", "BTC/USDT:USDT", "stop_loss", "sell", Decimal(55000), None),
        MirrorOrder("8", "ETH/USDT:USDT", "take_profit", "buy", Decimal(2500), Decimal(3), "short"),
    ),
    closes=(MirrorClose("SOL/USDT:USDT", "long", "liquidation"),),
    hedged=True,
    source="stream",
)


def test_round_trip() -> None:
    assert parse_mirror(mirror_to_json(CMD)) == CMD


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    doc = mirror_to_json(CMD)
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("bogus",), 1, "bogus"),
        (("wallet",), "abc", "wallet"),
        (("positions", 0, "contracts"), "0", "positions[0].contracts"),
        (("positions", 0, "side"), "both", "positions[0].side"),
        (("positions", 0, "leverage"), "0.5", "positions[0].leverage"),
        (("positions", 1, "marginMode"), "portfolio", "positions[1].marginMode"),
        (("positions", 1, "extra"), 1, "positions[1].extra"),
        (("orders", 0, "kind"), "limit", "orders[0].kind"),
        (("orders", 1, "positionSide"), "both", "orders[1].positionSide"),
        (("closes", 0, "reason"), "magic", "closes[0].reason"),
        (("hedged",), "yes", "hedged"),
        (("positions",), {}, "positions"),
    ],
)
def test_refusals_name_the_key(path: tuple[Any, ...], value: Any, field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_mirror(_with(path, value))
    assert caught.value.field == field


def test_a_position_listed_twice_is_refused() -> None:
    doc = mirror_to_json(CMD)
    doc["positions"].append(doc["positions"][0])
    with pytest.raises(InputError, match="twice"):
        parse_mirror(doc)
