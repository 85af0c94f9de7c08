"""Tier tables as inputs (issue 16 ask 3): a ``tiers`` input replaces a symbol's table at that
input, open positions move to their new tier at once, and one ``tier_tables`` info alert names
what changed. Worked numbers: Binance's formulas (docs/rules.md §2-§5) on small made-up tables.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from guardbot.cli.simulate import build_config, simulate_lines
from guardbot.core.commands import TiersCmd, parse_command
from guardbot.core.engine import Engine
from guardbot.core.events import severity_of, to_jsonable
from guardbot.core.num import decimal_context
from guardbot.errors import InputError

D = Decimal
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"

#: tier 1 up to 50k at 0.4 %, tier 2 to 250k at 0.5 % (Binance's historical first two BTC tiers)
OLD = [
    {"tier": 1, "minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": "0.004",
     "maxLeverage": 125},
    {"tier": 2, "minNotional": 50000, "maxNotional": 250000, "maintenanceMarginRate": "0.005",
     "maxLeverage": 100},
]  # fmt: skip
#: the exchange cut tier 1 to 10k and raised tier 2 to 4 %: a 30k position moves to tier 2
NEW = [
    {"tier": 1, "minNotional": 0, "maxNotional": 10000, "maintenanceMarginRate": "0.01",
     "maxLeverage": 50},
    {"tier": 2, "minNotional": 10000, "maxNotional": 1000000, "maintenanceMarginRate": "0.04",
     "maxLeverage": 20},
]  # fmt: skip


def engine() -> Engine:
    return Engine(
        build_config(
            {
                "type": "config",
                "tiers": {BTC: OLD},
                "accounts": {
                    "iso": {"wallet": 10000, "default_leverage": 20,
                            "default_margin_mode": "isolated"},
                    "cross": {"wallet": 10000, "default_leverage": 20},
                },
            }
        )
    )  # fmt: skip


def tiers_line(rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"tiers": rows, "source": "exchange", "asOf": "2026-12-07T05:00:00Z"}
    entry.update(extra)
    return {"type": "tiers", "tables": {BTC: entry}}


def with_positions() -> Engine:
    eng = engine()
    eng.apply(1, parse_command({"type": "tick", "symbol": BTC, "mark": "60000"}))
    for account in ("iso", "cross"):
        eng.apply(
            2,
            parse_command(
                {"type": "order", "account": account, "id": account, "symbol": BTC,
                 "orderType": "market", "side": "buy", "amount": "0.5"}
            ),
        )  # fmt: skip
    return eng


def position(eng: Engine, account: str) -> dict[str, Any]:
    """The account's first position as ``final`` shows it, numbers back as Decimals."""
    positions = eng.state(eng.accounts[account])["positions"]
    assert isinstance(positions, list)
    return {k: _number(v) for k, v in positions[0].items()}


def _number(value: Any) -> Any:
    try:
        return D(value) if isinstance(value, str) else value
    except ArithmeticError:
        return value


def exact(a: int, b: str) -> Decimal:
    """``a / b`` in the engine's 40-digit arithmetic."""
    with decimal_context():
        return D(a) / D(b)


def test_a_position_moves_to_its_new_tier_at_the_input() -> None:
    eng = with_positions()
    iso_before = position(eng, "iso")
    # isolated, 0.5 BTC at 60000 x20: wallet 1500; tier 1: MM = 30000 x 0.004 = 120,
    # liquidation where 1500 + 0.5 (p - 60000) = 0.5 p x 0.004 -> p = 57000 / 0.996
    assert iso_before["maintenanceMargin"] == D(120)
    assert iso_before["liquidationPrice"] == exact(57000, "0.996")

    events = eng.apply(3, parse_command(tiers_line(NEW)))

    iso = position(eng, "iso")
    # tier 2 of NEW: rate 0.04, deduction 10000 x (0.04 - 0.01) = 300: MM = 1200 - 300 = 900;
    # liquidation: 1500 + 0.5 (p - 60000) = 0.5 p x 0.04 - 300 -> 0.48 p = 28200 -> 58750
    assert iso["maintenanceMargin"] == D(900)
    assert iso["maintenanceMarginRate"] == D("0.04")
    assert iso["liquidationPrice"] == D(58750)
    cross = position(eng, "cross")
    assert cross["maintenanceMargin"] == D(900)
    # cross: 10000 + 0.5 (p - 60000) = 0.5 p x 0.04 - 300 -> p = 19700 / 0.48
    assert cross["liquidationPrice"] == exact(19700, "0.48")

    kinds = [e["type"] for e in events]
    # the tier alert first, then what it causes: the isolated ratio 900 / 1500 = 0.6 crosses
    # the 0.5 level at this input (not at the next tick)
    assert kinds == ["tier_tables", "margin_alert"]
    alert = events[0]
    assert severity_of(alert) == "info" and alert["account"] is None
    assert alert["sources"] == {BTC: "exchange"}
    assert alert["reason"] == (
        "BTC/USDT:USDT: tier table changed: 2 -> 2 tiers, first change at tier 1 "
        "(maintenance rate 0.004 -> 0.01); 2 open positions moved"
    )
    [change] = alert["changes"]
    assert change == {
        "symbol": BTC, "oldTiers": 2, "newTiers": 2, "firstChangedTier": 1,
        "oldMaintenanceMarginRate": D("0.004"), "newMaintenanceMarginRate": D("0.01"),
        "oldContractSize": D(1), "newContractSize": D(1), "asOf": "2026-12-07T05:00:00Z",
    }  # fmt: skip
    moved = {p["account"]: p for p in alert["positions"]}
    assert moved["iso"] == {
        "account": "iso", "symbol": BTC, "side": "long", "marginMode": "isolated",
        "markPrice": D(60000), "oldTier": 1, "oldMaintenanceMarginRate": D("0.004"),
        "oldMaxLeverage": D(125), "oldLiquidationPrice": exact(57000, "0.996"),
        "tier": 2, "maintenanceMarginRate": D("0.04"), "maxLeverage": D(20),
        "leverage": D(20), "liquidationPrice": D(58750),
    }  # fmt: skip
    assert moved["cross"]["liquidationPrice"] == exact(19700, "0.48")
    assert events[1]["scope"] == "position" and events[1]["marginRatio"] == D("0.6")
    json.dumps(to_jsonable(events))  # publishable as it is


def test_the_same_table_changes_nothing_but_where_it_came_from_is_kept() -> None:
    eng = with_positions()
    events = eng.apply(3, parse_command(tiers_line(OLD, source="cache", asOf="2026-12-06")))
    assert events == []
    assert eng.state_root.tier_sources == {BTC: ("cache", "2026-12-06")}
    # a new table for a symbol nobody holds: an alert, no position
    line = {"type": "tiers", "tables": {ETH: {"tiers": NEW, "source": "bundled 2024-05-01"}}}
    [alert] = eng.apply(4, parse_command(line))
    assert alert["positions"] == [] and alert["changes"][0]["symbol"] == ETH


def test_a_higher_rate_liquidates_at_the_input() -> None:
    eng = engine()
    eng.apply(1, parse_command({"type": "tick", "symbol": BTC, "mark": "60000"}))
    eng.apply(
        2,
        parse_command(
            {"type": "order", "account": "iso", "id": "o", "symbol": BTC, "orderType": "market",
             "side": "buy", "amount": "0.5"}
        ),
    )  # fmt: skip
    brutal = [
        {"tier": 1, "minNotional": 0, "maxNotional": 1000000, "maintenanceMarginRate": "0.06",
         "maxLeverage": 10},
    ]  # fmt: skip
    events = eng.apply(3, parse_command(tiers_line(brutal)))
    kinds = [e["type"] for e in events]
    # MM 30000 x 0.06 = 1800 >= the 1500 isolated wallet
    assert kinds[0] == "tier_tables" and "liquidation" in kinds
    assert not eng.accounts["iso"].positions


def test_a_new_contract_size_keeps_the_base_quantity() -> None:
    eng = with_positions()
    eng.apply(
        2,
        parse_command(
            {"type": "order", "account": "cross", "id": "rest", "symbol": BTC,
             "orderType": "limit", "side": "buy", "amount": "0.2", "price": "50000"}
        ),
    )  # fmt: skip
    [alert] = eng.apply(3, parse_command(tiers_line(OLD, contractSize="0.01")))
    assert alert["reason"].startswith("BTC/USDT:USDT: tier table changed: contract size 1 -> 0.01")
    assert alert["changes"][0]["firstChangedTier"] is None
    pos = position(eng, "cross")
    assert pos["contracts"] == D(50) and pos["contractSize"] == D("0.01")
    assert pos["notional"] == D(30000)
    [order] = eng.state(eng.accounts["cross"])["openOrders"]  # type: ignore[misc]
    assert D(order["amount"]) == D(20)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"type": "tiers"}, "tables"),
        ({"type": "tiers", "tables": {}}, "tables"),
        ({"type": "tiers", "tables": {BTC: []}}, 'tables["BTC/USDT:USDT"]'),
        ({"type": "tiers", "tables": {BTC: {"tiers": OLD, "sorce": "x"}}},
         'tables["BTC/USDT:USDT"].sorce'),
        ({"type": "tiers", "tables": {BTC: {"tiers": [{**OLD[0], "maxNotionl": 1}]}}},
         'tables["BTC/USDT:USDT"].tiers[0].maxNotionl'),
        ({"type": "tiers", "tables": {BTC: {"tiers": [{**OLD[0], "maintenanceMarginRate": 2}]}}},
         'tables["BTC/USDT:USDT"].tiers[0].maintenanceMarginRate'),
        ({"type": "tiers", "tables": {BTC: {"tiers": OLD, "contractSize": 0}}},
         'tables["BTC/USDT:USDT"].contractSize'),
        ({"type": "tiers", "tables": {BTC: {"tiers": OLD}}, "extra": 1}, "extra"),
    ],
)  # fmt: skip
def test_a_malformed_tiers_input_is_refused_naming_the_field(
    line: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputError) as info:
        parse_command(line)
    assert info.value.field == field


def test_ccxt_extras_are_accepted_and_the_journal_is_read_leniently() -> None:
    rows = [{**row, "symbol": BTC, "currency": "USDT", "info": {}} for row in OLD]
    cmd = parse_command({"type": "tiers", "tables": {BTC: {"tiers": rows}}})
    assert isinstance(cmd, TiersCmd) and set(cmd.tables[0].rows[0]) == set(OLD[0])
    lenient = parse_command(
        {"type": "tiers", "tables": {BTC: {"tiers": OLD, "future": 1}}}, strict=False
    )
    assert isinstance(lenient, TiersCmd)


def test_simulate_takes_a_tiers_line() -> None:
    lines = [
        {"type": "config", "tiers": {BTC: OLD}, "accounts": {"a": {"wallet": 10000}}},
        {"ts": 1, "type": "tick", "symbol": BTC, "mark": "60000"},
        {"ts": 2, "type": "order", "account": "a", "id": "o", "symbol": BTC,
         "orderType": "market", "side": "buy", "amount": "0.5"},
        {"ts": 3, **tiers_line(NEW)},
    ]  # fmt: skip
    events = list(simulate_lines(json.dumps(line) for line in lines))
    [alert] = [e for e in events if e["type"] == "tier_tables"]
    assert alert["ts"] == 3 and alert["positions"][0]["tier"] == 2
    final = events[-1]["accounts"]["a"]["positions"][0]
    assert D(final["maintenanceMarginRate"]) == D("0.04")
