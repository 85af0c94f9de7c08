"""The account book alone (no I/O): how REST pictures and stream updates merge."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from guardbot.core.mirror import MirrorClose
from guardbot.mirror.book import AccountBook
from guardbot.mirror.venues import BinanceUsdm

BTC = "BTC/USDT:USDT"
BALANCE = {"info": {"assets": [{"asset": "USDT", "crossWalletBalance": "1000"}]}}


def rest_position(contracts: str, side: str = "long", liq: str = "58000") -> dict[str, Any]:
    return {
        "symbol": BTC,
        "side": side,
        "contracts": float(contracts),
        "entryPrice": 60000.0,
        "liquidationPrice": float(liq),
        "marginMode": "cross",
        "hedged": False,
        "info": {"isolatedWallet": "0"},
    }


def ready_book(*positions: dict[str, Any]) -> AccountBook:
    book = AccountBook("a", BinanceUsdm())
    settings = {BTC: (Decimal(20), "cross")}
    book.apply_rest(
        positions=positions, balance=BALANCE, orders=[], settings=settings, hedged=False
    )
    assert book.ready
    return book


def test_one_way_close_reported_with_side_both() -> None:
    book = ready_book(rest_position("0.5"))
    book.apply_stream_positions(
        [{"symbol": BTC, "side": "both", "contracts": 0.0, "hedged": False, "info": {}}]
    )
    cmd = book.command("stream")
    assert cmd is not None and cmd.positions == ()
    assert cmd.closes == (MirrorClose(BTC, "long", "unknown"),)


def test_a_one_way_flip_replaces_the_side() -> None:
    book = ready_book(rest_position("0.5"))
    update = {"symbol": BTC, "side": "short", "contracts": 0.2, "entryPrice": 61000.0,
              "marginMode": "cross", "hedged": False, "info": {"iw": "0"}}  # fmt: skip
    book.apply_stream_positions([update])
    cmd = book.command("stream")
    assert cmd is not None
    assert [(p.side, p.contracts, p.liquidation_price) for p in cmd.positions] == [
        ("short", Decimal("0.2"), None)
    ]
    assert cmd.closes == (MirrorClose(BTC, "long", "unknown"),)
    assert book.needs_positions


def test_rest_keeps_an_unexplained_disappearance_for_one_more_answer() -> None:
    book = ready_book(rest_position("0.5"))
    book.command("rest")
    book.apply_rest(positions=[])
    kept = book.command("rest")
    assert kept is not None and len(kept.positions) == 1 and kept.closes == ()
    assert book.needs_positions  # the next answer decides, soon
    book.apply_stream_orders(
        [
            {
                "id": "1",
                "symbol": BTC,
                "side": "sell",
                "status": "closed",
                "filled": 0.5,
                "clientOrderId": "autoclose-9",
                "info": {"o": "LIQUIDATION"},
            }
        ]
    )
    book.apply_rest(positions=[])
    gone = book.command("rest")
    assert gone is not None and gone.positions == ()
    assert gone.closes == (MirrorClose(BTC, "long", "liquidation"),)


def test_a_stream_wallet_change_makes_the_exchange_cross_liquidation_stale() -> None:
    book = ready_book(rest_position("0.5"))
    book.apply_stream_balance({"info": {"a": {"B": [{"a": "USDT", "wb": "1500", "cw": "1500"}]}}})
    cmd = book.command("stream")
    assert cmd is not None and cmd.wallet == 1500
    assert cmd.positions[0].liquidation_price is None
