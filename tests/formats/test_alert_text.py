"""The ``text`` of alert payloads: one sentence, numbers rounded for people.

The first row is the example of issue 15 (a position's margin call); the others cover every alert
type the engine and the daemon raise, with numbers as the engine gives them (Decimal) and as the
wire carries them (decimal strings).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from guardbot.core.events import ALERT_TYPES
from guardbot.formats.alert_text import alert_text, people_percent, people_price

D = Decimal
MARGIN_CALL: dict[str, Any] = {
    "type": "margin_alert",
    "account": "main",
    "scope": "position",
    "symbol": "BTC/USDT:USDT",
    "level": 2,
    "threshold": D("0.8"),
    "severity": "margin_call",
    "marginRatio": D("0.81234"),
    "liquidationPrice": D("56210.42"),
    "liquidationSymbol": "BTC/USDT:USDT",
    "markPrice": D("58950.1"),
    "distancePercent": D("4.65"),
}

CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None, str]] = [
    (
        "issue 15 example",
        MARGIN_CALL,
        {"side": "long", "contracts": D("0.300")},
        "BTC/USDT:USDT long 0.3 @ 58,950: margin ratio 81 % (margin call at 80 %), "
        "liquidation 56,210, 4.6 % away",
    ),
    (
        "position unknown to the caller",
        MARGIN_CALL,
        None,
        "BTC/USDT:USDT: margin ratio 81 % (margin call at 80 %), liquidation 56,210, 4.6 % away",
    ),
    (
        "cross account, wire strings",
        {
            "type": "margin_alert", "account": "main", "symbol": None, "threshold": "0.5",
            "severity": "warning", "marginRatio": "0.0512", "liquidationPrice": "0.123456",
            "liquidationSymbol": "DOGE/USDT:USDT", "distancePercent": "12.04",
        },
        None,
        "main cross margin: margin ratio 5.1 % (warning at 50 %), "
        "liquidation DOGE/USDT:USDT 0.12346, 12 % away",
    ),
    (
        "cross account, nearest position known",
        {
            "type": "margin_alert", "account": "main", "symbol": None, "threshold": "0.8",
            "severity": "margin_call", "marginRatio": "0.86", "liquidationPrice": "57761.2",
            "liquidationSymbol": "BTC/USDT:USDT", "markPrice": "57800", "distancePercent": "0.07",
        },
        {"side": "long", "contracts": "0.4"},
        "BTC/USDT:USDT long 0.4 @ 57,800 (main cross): margin ratio 86 % (margin call at 80 %), "
        "liquidation 57,761, 0.1 % away",
    ),
    (
        "recovered",
        {"type": "margin_recovered", "account": "main", "symbol": None, "marginRatio": "0.42"},
        None,
        "main cross margin: margin ratio back to 42 %",
    ),
    (
        "liquidation",
        {
            "type": "liquidation", "symbol": "ETH/USDT:USDT", "side": "short",
            "contracts": D("2.50"), "price": D("3012.449"), "markPrice": D("3010"),
            "loss": D("152.3371"),
        },
        None,
        "ETH/USDT:USDT short 2.5 liquidated at 3,012.4 (mark 3,010), loss 152.34",
    ),
    (
        "stop",
        {
            "type": "stop_triggered", "symbol": "BTC/USDT:USDT", "kind": "stop_market",
            "id": "o-7", "priceType": "mark", "price": D("57999.5"), "triggerPrice": D("58000"),
        },
        None,
        "BTC/USDT:USDT stop market o-7 triggered: mark 58,000 crossed 58,000",
    ),
    (
        "rejected",
        {"type": "order_rejected", "id": "o-9", "code": "insufficient_margin",
         "reason": "needs 120 USDT, 80 available"},
        None,
        "order o-9 rejected: needs 120 USDT, 80 available (insufficient_margin)",
    ),
    (
        "trading state",
        {"type": "trading_state", "state": "reduce_only", "reason": "daily loss limit"},
        None,
        "trading reduce only: daily loss limit",
    ),
    (
        "feed stale",
        {"type": "feed_stale", "symbol": None, "reason": "no mark for 12 s"},
        None,
        "price feed stale for every symbol: no mark for 12 s",
    ),
    (
        "feed back",
        {"type": "feed_recovered", "symbol": "BTC/USDT:USDT"},
        None,
        "price feed back for BTC/USDT:USDT",
    ),
    (
        "tier tables",
        {"type": "tier_tables", "reason": "BTC/USDT:USDT: bundled snapshot"},
        None,
        "tier tables: BTC/USDT:USDT: bundled snapshot",
    ),
    (
        "mirror: liquidation imminent",
        {
            "type": "liquidation_imminent", "account": "real", "symbol": None,
            "marginRatio": D("1.02"), "markPrice": D("58200"),
            "liquidationPrice": D("58232.93172"), "exchangeLiquidationPrice": D("58232.93"),
        },
        None,
        "real cross margin: liquidation imminent on the exchange: margin ratio 102 %, "
        "mark 58,200, liquidation 58,233 (exchange 58,233)",
    ),
    (
        "mirror: position closed",
        {
            "type": "position_closed", "account": "real", "symbol": "ETH/USDT:USDT",
            "side": "short", "contracts": "2.000", "reason": "stop_loss",
        },
        None,
        "ETH/USDT:USDT short 2 closed on the exchange (stop loss)",
    ),
    (
        "mirror: drift",
        {
            "type": "mirror_drift", "account": "real", "symbol": "BTC/USDT:USDT",
            "liquidationPrice": "57228.91", "exchangeLiquidationPrice": "51506.02",
            "driftPercent": "9.5381", "tolerancePercent": "0.500",
        },
        None,
        "BTC/USDT:USDT: guardbot's liquidation price 57,229 differs from the exchange's 51,506 "
        "by 9.5 % of mark (tolerance 0.5 %)",
    ),
    (
        "mirror: guard violation",
        {
            "type": "guard_violation", "account": "real", "rule": "STOP_LOSS_REQUIRED",
            "reason": "BTC/USDT:USDT long has no stop-loss on the exchange",
        },
        None,
        "guard STOP_LOSS_REQUIRED: BTC/USDT:USDT long has no stop-loss on the exchange",
    ),
    (
        "mirror: keys refused",
        {"type": "mirror_failed", "account": "real", "reason": "the exchange refused its key"},
        None,
        "mirror account real stopped: the exchange refused its key",
    ),
    (
        "checkpoint",
        {"type": "checkpoint", "reason": "checkpoint 3 (input 120): damaged; loaded checkpoint 2"},
        None,
        "checkpoint: checkpoint 3 (input 120): damaged; loaded checkpoint 2",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("event", "position", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_alert_text(event: dict[str, Any], position: dict[str, Any] | None, expected: str) -> None:
    assert alert_text(event, position) == expected


def test_every_alert_type_has_a_sentence() -> None:
    covered = {case[1]["type"] for case in CASES}
    assert covered == set(ALERT_TYPES)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("58950.1"), "58,950"),
        (D("123456.7"), "123,457"),
        (D("1.23456"), "1.2346"),
        ("0.000123456", "0.00012346"),
        (D("0"), "0"),
        (None, "-"),
        ("nan", "-"),
    ],
)
def test_people_price(value: object, expected: str) -> None:
    assert people_price(value) == expected


def test_people_percent() -> None:
    assert [people_percent(x) for x in (D("0.81234"), D("0.0999"), None)] == [
        "81 %",
        "10 %",
        "- %",
    ]
