"""guardbot.mqtt.commands (command gate, replies) and the pure parts of guardbot.cli.control."""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from typing import Any

import pytest

from guardbot.cli.control import (
    add_cancel_arguments,
    add_leverage_arguments,
    add_order_arguments,
    cancel_requests,
    leverage_requests,
    order_requests,
    render_status,
)
from guardbot.core.commands import CancelCmd, OrderCmd, SetLeverageCmd
from guardbot.errors import ConfigError, InputError
from guardbot.mqtt.commands import (
    BAD_COMMAND,
    BAD_ENCODING,
    BAD_JSON,
    BAD_REQUEST_ID,
    FORBIDDEN_COMMAND,
    MAX_PAYLOAD_BYTES,
    UNAUTHORIZED,
    UNKNOWN_ACCOUNT,
    UNKNOWN_SYMBOL,
    Accepted,
    CommandGate,
    RecentReplies,
    Rejected,
    reply_ok,
    reply_rejected,
    reply_topic,
)
from guardbot.mqtt.listener import handle_command

TOKEN = "s3cret-token-value"
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


def gate(accounts: list[str] | None = None) -> CommandGate:
    return CommandGate(TOKEN, [BTC, ETH], accounts=accounts)


def payload(**fields: Any) -> bytes:
    obj: dict[str, Any] = {"requestId": "r-1", "token": TOKEN}
    obj.update(fields)
    return json.dumps({k: v for k, v in obj.items() if v is not ...}).encode()


ORDER = {
    "type": "order",
    "account": "a",
    "id": "o1",
    "symbol": BTC,
    "orderType": "limit",
    "side": "buy",
    "amount": "0.1",
    "price": "30000",
}


# --- the gate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code", "request_id", "in_reason"),
    [
        (b"\xff\xfe{}", BAD_ENCODING, None, "UTF-8"),
        (b"{not json", BAD_JSON, None, "invalid JSON"),
        (b'{"requestId":"r","requestId":"s"}', BAD_JSON, None, "duplicate key"),
        (b"[1, 2]", BAD_JSON, None, "JSON object"),
        (b" " * (MAX_PAYLOAD_BYTES + 1), BAD_JSON, None, "larger than"),
        (payload(requestId=...), BAD_REQUEST_ID, None, "requestId"),
        (payload(requestId="a/b"), BAD_REQUEST_ID, None, "requestId"),
        (payload(requestId="a+b"), BAD_REQUEST_ID, None, "requestId"),
        (payload(requestId="#"), BAD_REQUEST_ID, None, "requestId"),
        (payload(requestId="x" * 65), BAD_REQUEST_ID, None, "requestId"),
        (payload(requestId=7), BAD_REQUEST_ID, None, "requestId"),
        (payload(token=..., **ORDER), UNAUTHORIZED, "r-1", "token"),
        (payload(token="wrong", **ORDER), UNAUTHORIZED, "r-1", "token"),
        (payload(token=TOKEN + "x", **ORDER), UNAUTHORIZED, "r-1", "token"),
        (payload(token=123, **ORDER), UNAUTHORIZED, "r-1", "token"),
        (payload(type="tick", symbol=BTC, mark=1), FORBIDDEN_COMMAND, "r-1", "tick"),
        (payload(type="deposit", amount=5), FORBIDDEN_COMMAND, "r-1", "deposit"),
        (payload(type="withdraw", amount=5), FORBIDDEN_COMMAND, "r-1", "withdraw"),
        (payload(type="funding", symbol=BTC, rate=1), FORBIDDEN_COMMAND, "r-1", "funding"),
        (payload(type="set_trading_state", state="active"), FORBIDDEN_COMMAND, "r-1", "set_"),
        (payload(type="explode"), BAD_COMMAND, "r-1", "type: must be one of"),
        (payload(type=...), BAD_COMMAND, "r-1", "type"),
        (payload(**{**ORDER, "amount": "-1"}), BAD_COMMAND, "r-1", "amount: must be > 0"),
        (payload(**{**ORDER, "side": "up"}), BAD_COMMAND, "r-1", "side"),
        (payload(**{**ORDER, "price": ...}), BAD_COMMAND, "r-1", "price: is required"),
        (payload(**{**ORDER, "ts": 5}), BAD_COMMAND, "r-1", "ts"),
        (payload(**{**ORDER, "symbol": "DOGE/USDT:USDT"}), UNKNOWN_SYMBOL, "r-1", "DOGE"),
        (payload(**{**ORDER, "account": "a/b"}), UNKNOWN_ACCOUNT, "r-1", "account"),
        (payload(type="set_leverage", symbol=BTC, leverage="0.5"), BAD_COMMAND, "r-1", ">= 1"),
        (
            payload(type="set_margin_mode", symbol=BTC, marginMode="x"),
            BAD_COMMAND,
            "r-1",
            "marginMode",
        ),
        (payload(type="add_margin", symbol="X/Y:Z", amount=1), UNKNOWN_SYMBOL, "r-1", "X/Y:Z"),
        (payload(type="cancel"), BAD_COMMAND, "r-1", "id"),
        # Issue 11: unknown keys were ignored; the reason names the key and the closest one.
        (
            payload(**{**ORDER, "params": {"stopLosPrice": "29000"}}),
            BAD_COMMAND,
            "r-1",
            "params.stopLosPrice: unknown key (known: positionSide, postOnly, reduceOnly,"
            " stopLossPrice,",
        ),
        (
            payload(**{**ORDER, "params": {"reduceonly": True}}),
            BAD_COMMAND,
            "r-1",
            "did you mean 'reduceOnly'?",
        ),
        (payload(**{**ORDER, "marginMod": "isolated"}), BAD_COMMAND, "r-1", "marginMod: unknown"),
        (
            payload(type="set_leverage", symbol=BTC, leverage="5", levrage="6"),
            BAD_COMMAND,
            "r-1",
            "levrage: unknown key (known: account, leverage, symbol, ts, type); did you mean "
            "'leverage'?",
        ),
    ],
)
def test_gate_rejects(raw: bytes, code: str, request_id: str | None, in_reason: str) -> None:
    verdict = gate().check(raw)
    assert isinstance(verdict, Rejected), verdict
    assert (verdict.code, verdict.request_id) == (code, request_id)
    assert in_reason in verdict.reason
    assert TOKEN not in verdict.reason


@pytest.mark.parametrize(
    "raw",
    [
        b'{"requestId":"r-1","token":"' + TOKEN.encode() + b'","type":"order","account":"a",'
        b'"id":"o1","symbol":"BTC/USDT:USDT","orderType":"market","side":"buy","amount":NaN}',
        b'{"requestId":"r-1","token":"' + TOKEN.encode() + b'","type":"order","account":"a",'
        b'"id":"o1","symbol":"BTC/USDT:USDT","orderType":"market","side":"buy","amount":1,'
        b'"extra":Infinity}',
    ],
)
def test_gate_rejects_non_finite_numbers(raw: bytes) -> None:
    verdict = gate().check(raw)
    assert isinstance(verdict, Rejected)
    assert verdict.code == BAD_JSON
    assert "finite" in verdict.reason


def test_gate_unauthorized_comes_before_command_checks() -> None:
    # An unauthorised sender learns nothing about the command's validity.
    verdict = gate().check(payload(token="nope", type="tick"))
    assert isinstance(verdict, Rejected) and verdict.code == UNAUTHORIZED


def test_gate_accepts_order_exactly() -> None:
    verdict = gate().check(payload(**{**ORDER, "amount": 0.1, "params": {"stopLossPrice": "1"}}))
    assert isinstance(verdict, Accepted)
    assert verdict.request_id == "r-1"
    assert "token" not in verdict.body and "requestId" not in verdict.body
    assert verdict.body["amount"] == Decimal("0.1")  # exact, never a float
    assert isinstance(verdict.command, OrderCmd)
    assert verdict.command.amount == Decimal("0.1")
    assert verdict.command.stop_loss_price == Decimal(1)


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"type": "cancel", "id": "o1"}, CancelCmd),
        ({"type": "set_leverage", "symbol": ETH, "leverage": 20}, SetLeverageCmd),
        ({"type": "set_margin_mode", "symbol": BTC, "marginMode": "isolated"}, object),
        ({"type": "add_margin", "symbol": BTC, "amount": "10"}, object),
        ({"type": "reduce_margin", "symbol": BTC, "amount": "10"}, object),
        ({"type": "set_position_mode", "positionMode": "hedged"}, object),
        ({"type": "add_margin", "symbol": BTC, "amount": "10", "positionSide": "SHORT"}, object),
    ],
)
def test_gate_accepts_other_commands(fields: dict[str, Any], kind: type) -> None:
    verdict = gate().check(payload(**fields))
    assert isinstance(verdict, Accepted)
    assert isinstance(verdict.command, kind)
    assert verdict.body == {k: (Decimal(v) if k == "leverage" else v) for k, v in fields.items()}


def test_gate_known_accounts() -> None:
    assert isinstance(gate(["a"]).check(payload(**ORDER)), Accepted)
    verdict = gate(["b", "c"]).check(payload(**ORDER))
    assert isinstance(verdict, Rejected)
    assert verdict.code == UNKNOWN_ACCOUNT and "b, c" in verdict.reason
    # No account: the engine picks the only one (or refuses with an InputError).
    assert isinstance(gate(["b"]).check(payload(type="cancel", id="x")), Accepted)


def test_gate_refuses_empty_token_and_hides_it() -> None:
    with pytest.raises(ConfigError, match="token_env"):
        CommandGate("", [BTC])
    assert TOKEN not in repr(gate())


# --- replies -----------------------------------------------------------------------------------


def test_reply_topic() -> None:
    assert reply_topic("guardbot/main", "r-1") == "guardbot/main/reply/r-1"
    assert reply_topic("guardbot/main", None) == "guardbot/main/reply/invalid"
    assert reply_topic("guardbot/main", "a/#") == "guardbot/main/reply/invalid"


def test_reply_ok_with_events_as_exact_strings() -> None:
    events = [
        {"type": "order_accepted", "ts": 1, "account": "a", "id": "o1", "price": Decimal("1.50")},
        {"type": "fill", "ts": 1, "account": "a", "id": "o1", "price": Decimal("1E+3")},
    ]
    assert reply_ok("r-1", events) == {
        "requestId": "r-1",
        "ok": True,
        "events": [
            {"type": "order_accepted", "ts": 1, "account": "a", "id": "o1", "price": "1.5"},
            {"type": "fill", "ts": 1, "account": "a", "id": "o1", "price": "1000"},
        ],
    }


def test_reply_ok_false_on_engine_rejection() -> None:
    events = [
        {"type": "order_rejected", "ts": 1, "account": "a", "id": "o1", "code": "PRICE_STALE",
         "reason": "no price"},
        {"type": "order_rejected", "ts": 1, "account": "a", "id": "o1", "code": "OTHER",
         "reason": "second"},
    ]  # fmt: skip
    reply = reply_ok("r-1", events)
    assert reply["ok"] is False
    assert (reply["code"], reply["reason"]) == ("PRICE_STALE", "no price")
    assert len(reply["events"]) == 2


def test_reply_rejected() -> None:
    assert reply_rejected(Rejected(None, BAD_JSON, "x")) == {
        "requestId": None,
        "ok": False,
        "code": BAD_JSON,
        "reason": "x",
    }


def test_recent_replies_is_bounded() -> None:
    recent = RecentReplies(2)
    for rid in ("a", "b", "c"):
        recent.put(rid, {"requestId": rid})
    assert recent.get("a") is None
    assert recent.get("c") == {"requestId": "c"}
    with pytest.raises(ValueError):
        RecentReplies(0)


# --- handle_command (no broker) ----------------------------------------------------------------


class FakeApply:
    def __init__(self, error: Exception | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.error = error

    async def __call__(self, body: Any) -> list[dict[str, Any]]:
        if self.error is not None:
            raise self.error
        self.bodies.append(dict(body))
        return [{"type": "leverage_changed", "ts": 1, "account": "a", "symbol": BTC,
                 "leverage": Decimal(5)}]  # fmt: skip


async def test_handle_command_applies_once_per_request_id() -> None:
    apply = FakeApply()
    recent = RecentReplies()
    raw = payload(type="set_leverage", account="a", symbol=BTC, leverage=5)
    first = await handle_command(gate(), raw, apply, recent=recent)
    second = await handle_command(gate(), raw, apply, recent=recent)
    assert first == second
    assert first["ok"] is True and first["events"][0]["leverage"] == "5"
    assert len(apply.bodies) == 1


async def test_handle_command_rejected_does_not_apply() -> None:
    apply = FakeApply()
    reply = await handle_command(gate(), payload(token="x", **ORDER), apply)
    assert reply == {"requestId": "r-1", "ok": False, "code": UNAUTHORIZED,
                     "reason": "token: missing or wrong"}  # fmt: skip
    assert apply.bodies == []


async def test_handle_command_input_error_is_a_reply_other_errors_propagate() -> None:
    reply = await handle_command(
        gate(), payload(**ORDER), FakeApply(InputError("account", "is required"))
    )
    assert (reply["ok"], reply["code"], reply["reason"]) == (
        False,
        BAD_COMMAND,
        "account: is required",
    )
    with pytest.raises(OSError, match="disk"):
        await handle_command(gate(), payload(**ORDER), FakeApply(OSError("disk full")))


# --- CLI: building commands (no broker) --------------------------------------------------------


def parse(add: Any, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


def test_order_command_fields() -> None:
    args = parse(
        add_order_arguments,
        [BTC, "buy", "0.10", "--price", "30000.50", "--account", "a", "--reduce-only",
         "--stop-loss", "29000", "--take-profit", "1e5", "--client-order-id", "my-1"],
    )  # fmt: skip
    [request] = order_requests(args)
    assert request.body == {
        "type": "order",
        "id": "my-1",
        "symbol": BTC,
        "orderType": "limit",
        "side": "buy",
        "amount": "0.1",
        "price": "30000.5",
        "params": {"reduceOnly": True, "stopLossPrice": "29000", "takeProfitPrice": "100000"},
        "account": "a",
    }


def test_order_command_position_side_for_hedge_mode() -> None:
    args = parse(add_order_arguments, [BTC, "sell", "1", "--position-side", "long"])
    [request] = order_requests(args)
    assert request.body["params"] == {"positionSide": "long"}


def test_order_command_widen_stop_loss() -> None:
    # issue 11 item 3: widening the position's stop by an attached one is asked for explicitly
    args = parse(add_order_arguments, [BTC, "buy", "0.01", "--stop-loss", "55000"])
    [request] = order_requests(args)
    assert request.body["params"] == {"stopLossPrice": "55000"}
    args = parse(
        add_order_arguments, [BTC, "buy", "0.01", "--stop-loss", "55000", "--widen-stop-loss"]
    )
    [request] = order_requests(args)
    assert request.body["params"] == {"stopLossPrice": "55000", "widenStopLoss": True}


def test_order_with_margin_mode_and_leverage_sends_them_first() -> None:
    args = parse(
        add_order_arguments, [ETH, "sell", "2", "--leverage", "20", "--margin-mode", "isolated"]
    )
    kinds = [r.body["type"] for r in order_requests(args)]
    assert kinds == ["set_margin_mode", "set_leverage", "order"]
    order = order_requests(args)[-1].body
    assert order["orderType"] == "market" and order["id"].startswith("cli-")
    assert "account" not in order


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        ([BTC, "buy", "abc"], "AMOUNT"),
        ([BTC, "buy", "0"], "AMOUNT"),
        ([BTC, "buy", "1", "--price", "NaN"], "--price"),
        ([BTC, "buy", "1", "--type", "limit"], "--price"),
        ([BTC, "buy", "1", "--stop-loss", "-3"], "--stop-loss"),
        ([BTC, "buy", "1", "--leverage", "0.5"], "--leverage"),
    ],
)
def test_order_command_bad_arguments_name_the_argument(argv: list[str], field: str) -> None:
    with pytest.raises(InputError) as info:
        order_requests(parse(add_order_arguments, argv))
    assert info.value.field == field


def test_cancel_and_leverage_commands() -> None:
    [cancel] = cancel_requests(parse(add_cancel_arguments, ["o1", "--account", "a"]))
    assert cancel.body == {"type": "cancel", "id": "o1", "account": "a"}
    [lev] = leverage_requests(parse(add_leverage_arguments, [BTC, "25"]))
    assert lev.body == {"type": "set_leverage", "symbol": BTC, "leverage": "25"}
    with pytest.raises(InputError) as info:
        leverage_requests(parse(add_leverage_arguments, [BTC, "x"]))
    assert info.value.field == "LEVERAGE"


# --- CLI: status table (no broker) -------------------------------------------------------------

NOW = 1_700_000_010_000


def test_render_status_full() -> None:
    status = {
        "state": "degraded",
        "ts": NOW - 1500,
        "version": "1.2.3",
        "feeds": {BTC: {"stale": False, "lastTs": NOW - 400}, ETH: {"stale": True, "lastTs": None}},
        "outbox": {"depth": 3, "oldestAgeMs": 125_000},
        "notify": {"backlog": 2},
    }
    account = {
        "account": "demo",
        "wallet": "10000",
        "balance": {"USDT": {"free": "9000", "used": "1000", "total": "10000"}},
        "marginRatio": "0.0123",
        "tradingState": "active",
        "positions": [
            {"symbol": BTC, "side": "long", "contracts": "0.5", "entryPrice": "30000",
             "markPrice": "29000", "unrealizedPnl": "-500", "liquidationPrice": "14500"},
        ],
    }  # fmt: skip
    text = render_status(status, {"demo": account}, NOW)
    assert "daemon   degraded  version 1.2.3  status age 1.5s" in text
    assert f"{BTC}  fresh  0.4s" in text
    assert f"{ETH}  stale  -" in text
    assert "outbox   depth 3  oldest 2m 05s" in text
    assert "notify   backlog 2" in text
    assert "demo     10,000  9,500   1.23%" in text
    # distance = |29000 - 14500| / 29000 = 50%
    assert "long  0.5        30,000  29,000  14,500     50%" in text


def test_render_status_lists_open_orders_with_ids_triggers_and_distance() -> None:
    # Issue 11 item 5: status listed no orders, so cancel had nothing to act on.
    account = {
        "wallet": "1000",
        "positions": [
            {"symbol": BTC, "side": "long", "contracts": "0.300", "entryPrice": "60000.5",
             "markPrice": "58950.1", "unrealizedPnl": "-315",
             "liquidationPrice": "56924.36412315930388219544846050870147256"},
        ],
        "openOrders": [
            {"id": "demo-btc-long-sl", "symbol": BTC, "orderType": "market", "side": "sell",
             "amount": None, "price": None, "reduceOnly": True, "closePosition": True,
             "kind": "stop_loss", "triggerPrice": "57000"},
            {"id": "tp-1", "symbol": BTC, "orderType": "market", "side": "sell",
             "amount": "0.1", "price": None, "reduceOnly": True, "kind": "take_profit",
             "triggerPrice": "63000"},
            {"id": "bid-1", "symbol": BTC, "orderType": "limit", "side": "buy",
             "amount": "0.0100", "price": "55000", "reduceOnly": False},
            {"id": "eth-1", "symbol": ETH, "orderType": "limit", "side": "sell",
             "amount": "2", "price": "3012.55", "reduceOnly": False},
        ],
    }  # fmt: skip
    text = render_status({"state": "online"}, {"demo": account}, NOW)
    lines = text.splitlines()
    # Prices at the market's decimals (0.1 here): no 40-digit liquidation price.
    assert "long  0.3        60,000.5  58,950.1  56,924.4   3.44%" in text
    start = lines.index("open orders (guardbot cancel ID)")
    assert lines[start + 1].split() == [
        "ACCOUNT", "ID", "SYMBOL", "KIND", "SIDE", "AMOUNT", "TRIGGER", "PRICE", "DIST",
    ]  # fmt: skip
    rows = [line.split() for line in lines[start + 2 :]]
    assert rows == [
        ["demo", "demo-btc-long-sl", BTC, "stop_loss", "sell", "all", "57,000.0", "market",
         "3.31%"],
        ["demo", "tp-1", BTC, "take_profit", "reduce-only", "sell", "0.1", "63,000.0", "market",
         "6.87%"],
        ["demo", "bid-1", BTC, "limit", "buy", "0.01", "-", "55,000.0", "6.7%"],
        ["demo", "eth-1", ETH, "limit", "sell", "2", "-", "3,012.55", "-"],
    ]  # fmt: skip
    assert "open orders: none" in render_status({}, {"x": {"wallet": "1"}}, NOW)


def test_render_status_calls_a_feed_fresh_only_within_stale_after_s() -> None:
    # Issue 11 item 8: the retained status said fresh for a tick minutes old.
    status = {"feeds": {BTC: {"stale": False, "lastTs": NOW - 12_000}}}
    assert f"{BTC}  fresh  12.0s" in render_status(status, {}, NOW)
    assert f"{BTC}  stale  12.0s" in render_status(status, {}, NOW, stale_after_s=10)
    assert f"{BTC}  fresh  12.0s" in render_status(status, {}, NOW, stale_after_s=15)


def test_render_status_shows_the_sides_of_a_hedged_symbol() -> None:
    side = {"symbol": BTC, "entryPrice": "30000", "markPrice": "29000", "hedged": True}
    account = {
        "wallet": "10000",
        "positions": [
            {**side, "side": "long", "contracts": "2", "liquidationPrice": "25000"},
            {**side, "side": "short", "contracts": "1", "liquidationPrice": "40000"},
        ],
    }
    text = render_status({"state": "online"}, {"h": account}, NOW)
    assert f"h        {BTC}  long   2          30,000  29,000  25,000" in text
    assert f"h        {BTC}  short  1          30,000  29,000  40,000" in text


def test_render_status_missing_keys() -> None:
    text = render_status({"state": "online"}, {"x": {"positions": "junk"}, "y": []}, NOW)
    assert "daemon   online  version -  status age -" in text
    assert "x        -       -       -" in text
    assert render_status({}, {}, NOW).endswith("accounts: none published\n")


def test_recent_replies_memory_is_bounded_by_its_size() -> None:
    """Issue 16: the replies cache holds ``size`` replies whatever the number of commands; the
    memory it holds after 2N replies equals that after N once full (tracemalloc, not timing)."""
    import gc
    import tracemalloc

    events = [
        {"type": "order_accepted", "ts": 1, "account": "iso", "id": "open-1", "symbol": BTC,
         "side": "buy", "orderType": "market", "amount": "0.2", "stopLossPrice": "57600.0"},
        {"type": "fill", "ts": 1, "account": "iso", "id": "open-1", "symbol": BTC, "side": "buy",
         "amount": "0.2", "price": "60000.1", "fee": "6.00001", "realizedPnl": "0"},
    ]  # fmt: skip
    recent = RecentReplies(64)

    def put(start: int, n: int) -> int:
        for i in range(start, start + n):
            recent.put(f"soak-{i}", {"requestId": f"soak-{i}", "ok": True, "events": events})
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        put(0, 64)
        after_n = put(64, 500)
        after_2n = put(564, 500)
    finally:
        tracemalloc.stop()
    assert after_2n - after_n < 1024  # key strings of another length at most
    assert recent.get("soak-1063") == {"requestId": "soak-1063", "ok": True, "events": events}
    assert recent.get("soak-999") is None
