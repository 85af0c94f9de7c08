"""The engine reproduces the worked examples of docs/rules.md (tests/data/margin_examples.json).

One test per example id. Values are compared within the example's tolerance (per field, or its
``default_abs``), and exactly where the example gives none or where the rule is exact arithmetic
(EX07 maintenance margins, EX13 max removable, EX22 costs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guardbot.core import margin
from guardbot.core.num import ZERO, decimal_context
from guardbot.core.position import Position
from guardbot.core.profiles import get_profile
from guardbot.core.snapshot import snapshot
from guardbot.core.tiers import TierTable

DATA = json.loads(
    (Path(__file__).parent.parent / "data" / "margin_examples.json").read_text("utf-8"),
    parse_float=Decimal,
)
EXAMPLES: dict[str, dict[str, Any]] = {ex["id"]: ex for ex in DATA["examples"]}
BINANCE = get_profile("binance")
NO_FEE = ZERO

Example = dict[str, Any]


def d(value: object) -> Decimal:
    assert isinstance(value, (int, Decimal)) and not isinstance(value, bool), value
    return Decimal(value)


def table(name: str) -> TierTable:
    rows = [
        {
            "tier": row["tier"],
            "minNotional": row["floor"],
            "maxNotional": row["cap"],
            "maintenanceMarginRate": row["mmr"],
            "maxLeverage": row.get("max_leverage"),
            "maintenanceAmount": row["cum"],
        }
        for row in DATA["bracket_tables"][name]
    ]
    return TierTable.from_ccxt(name, rows)


BTC = table("BINANCE_BTCUSDT_LEGACY")
ETH = table("BINANCE_ETHUSDT_LEGACY")


def position(
    tiers: TierTable,
    side: str | int,
    qty: object,
    entry: object,
    *,
    mode: str = "cross",
    leverage: object = 10,
    wallet: object = 0,
) -> Position:
    sign = side if isinstance(side, int) else {"long": 1, "short": -1}[side]
    pos = Position(tiers.symbol, tiers, mode, d(leverage))
    pos.set_size(sign, d(qty), d(entry))
    pos.isolated_wallet = d(wallet)
    return pos


class Expect:
    """Compares a computed value with an expected one, using the example's tolerance."""

    def __init__(self, example: Example) -> None:
        self.example = example
        self.tolerance: Mapping[str, Decimal] = example.get("tolerance", {})
        self.rounding: Mapping[str, Decimal] = DATA["published_rounding"].get(example["id"], {})

    def __call__(self, field: str, got: Decimal | None, expected: object = None) -> None:
        want = d(self.example["expected"][field] if expected is None else expected)
        assert got is not None, f"{field}: got None, expected {want}"
        tol = self.tolerance.get(field, self.rounding.get(field, self.tolerance.get("default_abs")))
        if tol is None:
            assert got == want, f"{field}: got {got}, expected exactly {want}"
        else:
            assert abs(got - want) <= tol, f"{field}: got {got}, expected {want} ± {tol}"


# --- cross, Binance's published example ----------------------------------------------------


def published_account(example: Example) -> tuple[Position, Position, Decimal, Decimal]:
    """The EX01/EX02 account: (solved position, other position, its mark, cross wallet)."""
    inputs = example["inputs"]
    own, other = inputs["position"], inputs["other_cross_positions"][0]
    tables = {"ETHUSDT": ETH, "BTCUSDT": BTC}
    pos = position(tables[inputs["symbol"]], own["side"], own["qty"], own["entry_price"])
    oth = position(tables[other["symbol"]], other["side"], other["qty"], other["entry_price"])
    return pos, oth, d(other["mark_price"]), d(inputs["cross_wallet_balance"])


def check_published_cross(example: Example) -> None:
    expect = Expect(example)
    want = example["expected"]
    inputs = example["inputs"]
    pos, other, other_mark, wallet = published_account(example)
    own_mark = d(inputs["position"]["mark_price"])

    views, _account = snapshot(BINANCE, NO_FEE, wallet, [pos, other], [own_mark, other_mark])
    expect("liquidation_price", views[0].liquidation_price)

    # The other position's MM and uPnL as the engine computes them (TMM1, UPNL1 of the FAQ).
    tmm1, _tier = margin.maintenance(BINANCE, other, other_mark)
    upnl1 = margin.unrealized_pnl(other, other_mark)
    published = inputs["other_cross_positions"][0]
    expect("TMM1", tmm1, published["maintenance_margin"])
    expect("UPNL1", upnl1, published["unrealized_pnl"])
    if "TMM1" in want:
        expect("TMM1", tmm1)
        expect("UPNL1", upnl1)

    # The formula with the published TMM1/UPNL1, and the tier it settles on.
    wallet_net = wallet - d(published["maintenance_margin"]) + d(published["unrealized_pnl"])
    solved = margin.liquidation_price(BINANCE, pos, wallet_net, NO_FEE)
    assert solved is not None
    price, tier = solved
    expect("liquidation_price", price)
    assert tier.tier == want["tier_used_at_liquidation"]
    assert tier.mmr == d(want["mmr_used"])
    assert tier.cum == d(want["cum_used"])


def check_ex03(example: Example) -> None:
    expect = Expect(example)
    want = example["expected"]
    eth, btc, _btc_mark, wallet = published_account(EXAMPLES["EX01"])
    for i, check in enumerate(want["checks"]):
        marks = [d(check["eth_mark"]), d(check["btc_mark"])]
        _views, account = snapshot(BINANCE, NO_FEE, wallet, [eth, btc], marks)
        expect("margin_ratio", account.margin_ratio, check["margin_ratio"])
        assert account.liquidated is check["liquidated"], f"checks[{i}]"
        if i == 0:
            expect("total_maintenance_margin", account.maintenance_margin)
            expect("margin_balance", account.margin_balance)
            expect("margin_ratio", account.margin_ratio)


# --- isolated ------------------------------------------------------------------------------


def isolated_from(inputs: Mapping[str, Any]) -> Position:
    return position(
        BTC,
        inputs["side"],
        inputs["qty"],
        inputs["entry_price"],
        mode="isolated",
        leverage=inputs["leverage"],
        wallet=inputs["isolated_wallet_balance"],
    )


def check_ex04(example: Example) -> None:
    expect = Expect(example)
    inputs = example["inputs"]
    pos = isolated_from(inputs)
    entry, mark = d(inputs["entry_price"]), d(inputs["mark_price"])
    im_entry = margin.initial_margin(BINANCE, pos, entry)
    expect("initial_margin", im_entry)
    expect("maintenance_margin_at_entry", margin.maintenance(BINANCE, pos, entry)[0])

    [view], _account = snapshot(BINANCE, NO_FEE, ZERO, [pos], [mark])
    expect("liquidation_price", view.liquidation_price)
    expect("bankruptcy_price", view.bankruptcy_price)
    expect("maintenance_margin_at_mark", view.maintenance_margin)
    expect("margin_balance_at_mark", view.collateral)
    expect("margin_ratio_at_mark", view.margin_ratio)
    expect("unrealized_pnl_at_mark", view.unrealized_pnl)
    expect("roe_at_mark", view.unrealized_pnl / im_entry)
    assert view.liquidated is example["expected"]["liquidated_at_mark"]


def check_ex05(example: Example) -> None:
    expect = Expect(example)
    inputs = example["inputs"]
    pos = isolated_from(inputs)
    [view], _account = snapshot(BINANCE, NO_FEE, ZERO, [pos], [d(inputs["mark_price"])])
    expect("liquidation_price", view.liquidation_price)
    expect("bankruptcy_price", view.bankruptcy_price)
    expect("unrealized_pnl_at_mark", view.unrealized_pnl)
    expect("margin_ratio_at_mark", view.margin_ratio)
    assert view.liquidated is example["expected"]["liquidated_at_mark"]
    [at_41900], _account = snapshot(BINANCE, NO_FEE, ZERO, [pos], [Decimal(41900)])
    assert at_41900.liquidated is example["expected"]["liquidated_at_41900"]


def only_tier(tiers: TierTable, number: int) -> list[margin.Piece]:
    """A requirement made of one tier at every price: the naive, tier-inconsistent solution."""
    tier = tiers.tiers[number - 1]
    return [margin.Piece(tier.mmr, tier.cum, None, None, tier)]


def check_ex06(example: Example) -> None:
    expect = Expect(example)
    want = example["expected"]
    inputs = example["inputs"]
    pos = isolated_from(inputs)
    entry = d(inputs["entry_price"])
    assert BTC.tier_for(pos.qty * entry).tier == want["tier_at_entry"]
    expect("maintenance_margin_at_entry", margin.maintenance(BINANCE, pos, entry)[0])

    naive = margin.solve_level_price(
        pos.sign, pos.qty, entry, pos.isolated_wallet, only_tier(BTC, want["tier_at_entry"])
    )
    assert naive is not None
    expect("naive_liquidation_price_with_entry_tier", naive[0])
    inconsistent = BTC.tier_for(pos.qty * naive[0]).tier != want["tier_at_entry"]
    assert inconsistent is want["naive_is_inconsistent"]

    solved = margin.liquidation_price(BINANCE, pos, pos.isolated_wallet, NO_FEE)
    assert solved is not None
    price, tier = solved
    expect("liquidation_price", price)
    assert tier.tier == want["tier_used_at_liquidation"]
    expect("notional_at_liquidation", pos.qty * price)
    expect("maintenance_margin_at_liquidation", margin.maintenance(BINANCE, pos, price)[0])
    [view], _account = snapshot(BINANCE, NO_FEE, ZERO, [pos], [entry])
    expect("liquidation_price", view.liquidation_price)


# --- tiers and leverage --------------------------------------------------------------------


def check_ex07(example: Example) -> None:
    for row in example["expected"]["rows"]:
        notional = d(row["notional"])
        tier = BTC.tier_for(notional)
        assert tier.tier == row["tier"], notional
        assert tier.mmr == d(row["mmr"])
        assert tier.cum == d(row["cum"])
        assert BTC.max_leverage_for(notional) == row["max_leverage"]
        pos = position(BTC, "long", 1, notional)
        mm, _tier = margin.maintenance(BINANCE, pos, notional)
        assert mm == d(row["maintenance_margin"]), notional  # exact: MM is exact arithmetic


def check_ex08(example: Example) -> None:
    want = example["expected"]
    inputs = example["inputs"]
    assert BTC.max_leverage_for(d(inputs["position_notional"])) == want["max_leverage_at_300000"]
    assert BTC.max_value_for_leverage(Decimal(75)) == d(want["max_notional_at_75x"])
    assert BTC.max_value_for_leverage(Decimal(50)) == d(want["max_notional_at_50x"])
    results = []
    for request in inputs["requests"]:
        exposure = d(request.get("position_notional", inputs["position_notional"]))
        exposure += d(request.get("order_notional", 0))
        allowed = d(request["leverage"]) <= BTC.max_leverage_for(exposure)
        # The same decision from the other side: the exposure fits the leverage's notional cap.
        assert allowed is (exposure <= BTC.max_value_for_leverage(d(request["leverage"])))
        results.append("accepted" if allowed else "rejected")
    assert results == want["results"]


# --- low leverage, cross dependence, margin transfers ---------------------------------------


def check_ex09(example: Example) -> None:
    expect = Expect(example)
    want = example["expected"]
    cases = {case["case"]: case for case in example["inputs"]["cases"]}

    a = cases["a"]
    pos_a = isolated_from(a)
    raw_a = margin.liquidation_price(BINANCE, pos_a, pos_a.isolated_wallet, NO_FEE)
    assert raw_a is not None
    expect("a_liquidation_price_raw", raw_a[0])
    [view_a], _account = snapshot(BINANCE, NO_FEE, ZERO, [pos_a], [pos_a.entry_price])
    assert (view_a.liquidation_price is not None) is want["a_has_liquidation_price"]

    b = cases["b"]
    pos_b = position(BTC, b["side"], b["qty"], b["entry_price"])
    wallet_b = d(b["cross_wallet_balance"])
    raw_b = margin.liquidation_price(BINANCE, pos_b, wallet_b, NO_FEE)
    assert raw_b is not None
    expect("b_liquidation_price_raw", raw_b[0])
    [view_b], _account = snapshot(BINANCE, NO_FEE, wallet_b, [pos_b], [pos_b.entry_price])
    assert (view_b.liquidation_price is not None) is want["b_has_liquidation_price"]
    assert view_b.liquidated is False

    c = cases["c"]
    pos_c = isolated_from(c)
    solved = margin.liquidation_price(BINANCE, pos_c, pos_c.isolated_wallet, NO_FEE)
    assert solved is not None
    expect("c_liquidation_price", solved[0])
    assert solved[1].tier == want["c_tier_used"]
    naive = margin.solve_level_price(
        pos_c.sign, pos_c.qty, pos_c.entry_price, pos_c.isolated_wallet, only_tier(BTC, 1)
    )
    assert naive is not None
    expect("c_naive_tier1_value", naive[0])
    [view_c], _account = snapshot(BINANCE, NO_FEE, ZERO, [pos_c], [pos_c.entry_price])
    expect("c_liquidation_price", view_c.liquidation_price)


def ex10_account() -> tuple[Position, Position, Decimal, Decimal]:
    inputs = EXAMPLES["EX10"]["inputs"]
    own, other = inputs["position"], inputs["other_cross_positions"][0]
    btc = position(BTC, own["side"], own["qty"], own["entry_price"])
    eth = position(ETH, other["side"], other["qty"], other["entry_price"])
    return btc, eth, d(other["mark_price"]), d(inputs["cross_wallet_balance"])


def check_ex10(example: Example) -> None:
    expect = Expect(example)
    btc, eth, eth_mark, wallet = ex10_account()
    # The BTC mark does not enter its own cross liquidation price; use the entry.
    views, _account = snapshot(BINANCE, NO_FEE, wallet, [btc, eth], [btc.entry_price, eth_mark])
    btc_view, eth_view = views
    expect("eth_notional", eth_view.notional)
    assert margin.maintenance(BINANCE, eth, eth_mark)[1].tier == example["expected"]["eth_tier"]
    expect("TMM1", eth_view.maintenance_margin)
    expect("UPNL1", eth_view.unrealized_pnl)
    expect("btc_liquidation_price_with_eth", btc_view.liquidation_price)
    [alone], _account = snapshot(BINANCE, NO_FEE, wallet, [btc], [btc.entry_price])
    expect("btc_liquidation_price_if_alone", alone.liquidation_price)


def check_ex11(example: Example) -> None:
    expect = Expect(example)
    btc, eth, _eth_mark, wallet = ex10_account()
    for i, check in enumerate(example["expected"]["checks"]):
        marks = [d(check["btc_mark"]), d(check["eth_mark"])]
        _views, account = snapshot(BINANCE, NO_FEE, wallet, [btc, eth], marks)
        expect("margin_balance", account.margin_balance, check["margin_balance"])
        expect("maintenance_margin", account.maintenance_margin, check["maintenance_margin"])
        expect("margin_ratio", account.margin_ratio, check["margin_ratio"])
        assert account.liquidated is check["liquidated"], f"checks[{i}]"


def check_ex12(example: Example) -> None:
    expect = Expect(example)
    inputs = example["inputs"]
    want = example["expected"]["liquidation_price"]
    base = d(inputs["isolated_wallet_balance"])
    for key, wallet in (
        ("base_3000", base),
        ("after_add_1000", base + 1000),
        ("after_remove_500", base - 500),
    ):
        pos = isolated_from(inputs | {"isolated_wallet_balance": wallet})
        [view], _account = snapshot(BINANCE, NO_FEE, ZERO, [pos], [pos.entry_price])
        expect("liquidation_price", view.liquidation_price, want[key])


def check_ex13(example: Example) -> None:
    older = BINANCE.with_options({"max_removable_rule": "binance_older"})
    cases = zip(example["inputs"]["cases"], example["expected"]["cases"], strict=True)
    for case, want in cases:
        size = d(case["signed_size"])
        pos = position(
            BTC,
            1 if size > 0 else -1,
            abs(size),
            case["entry_price"],
            mode="isolated",
            leverage=case["leverage"],
            wallet=case["isolated_wallet_balance"],
        )
        mark = d(case["mark_price"])
        assert margin.max_removable(BINANCE, pos, mark, NO_FEE) == d(want["max_removable"])
        got_older = margin.max_removable(older, pos, mark, NO_FEE)
        assert got_older == d(want["max_removable_older_doc_variant"])


def check_ex22(example: Example) -> None:
    inputs = example["inputs"]
    want = example["expected"]
    qty, price, mark = d(inputs["qty"]), d(inputs["order_price"]), d(inputs["mark_price"])
    leverage = d(inputs["leverage"])
    long_cost = margin.order_cost(BINANCE, 1, qty, price, mark, leverage, NO_FEE)
    short_cost = margin.order_cost(BINANCE, -1, qty, price, mark, leverage, NO_FEE)
    im = qty * price / leverage
    # Exact: the published 462.66 is a display truncation of 462.665.
    assert im == d(want["initial_margin"])
    assert long_cost == d(want["long_cost"])
    assert long_cost - im == d(want["long_open_loss"])
    assert short_cost == d(want["short_cost"])
    assert short_cost - im == d(want["short_open_loss"])


CHECKS: dict[str, Callable[[Example], None]] = {
    "EX01": check_published_cross,
    "EX02": check_published_cross,
    "EX03": check_ex03,
    "EX04": check_ex04,
    "EX05": check_ex05,
    "EX06": check_ex06,
    "EX07": check_ex07,
    "EX08": check_ex08,
    "EX09": check_ex09,
    "EX10": check_ex10,
    "EX11": check_ex11,
    "EX12": check_ex12,
    "EX13": check_ex13,
    "EX22": check_ex22,
}


def test_every_example_has_a_check() -> None:
    assert sorted(CHECKS) == sorted(EXAMPLES)


@pytest.mark.parametrize("example", list(EXAMPLES.values()), ids=list(EXAMPLES))
def test_example(example: Example) -> None:
    with decimal_context():
        CHECKS[example["id"]](example)


def test_tables_satisfy_the_cum_recursion() -> None:
    """The copied tables are internally consistent: every cum follows docs/rules.md §2.3."""
    for name in ("BINANCE_BTCUSDT_LEGACY", "BINANCE_ETHUSDT_LEGACY", "BYBIT_XYZUSDT_ILLUSTRATION"):
        given = table(name)
        rows = [
            {k: v for k, v in tier.to_ccxt(name).items() if k != "maintenanceAmount"}
            for tier in given.tiers
        ]
        derived = TierTable.from_ccxt(name, rows)
        assert [t.cum for t in derived.tiers] == [t.cum for t in given.tiers], name
