"""Properties of the liquidation price over random positions (docs/rules.md §4, §5).

For every position whose liquidation price ``P`` is positive:

* at ``P`` the margin balance equals the requirement evaluated in the tier the rules demand (the
  tier containing ``Q*P``; the contract tier for OKX; the entry tier for Bybit isolated);
* the margin ratio :func:`snapshot` reports with mark ``P`` is 1;
* a mark 1e-6 (relative) beyond ``P`` is liquidated, one 1e-6 inside is not.

Hypothesis runs derandomized (a fixed sequence of examples), so the suite is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from guardbot.core import margin
from guardbot.core.num import ONE, ZERO, decimal_context
from guardbot.core.position import Position
from guardbot.core.profiles import Profile, get_profile
from guardbot.core.snapshot import snapshot
from guardbot.core.tiers import TierTable

D = Decimal
REL = D("1e-20")
NUDGE = D("1e-6")

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)


def make_table(
    symbol: str, spec: list[tuple[int, str, int | str]], *, derive_cum: bool = True
) -> TierTable:
    """A table from (cap, mmr, max leverage) rows; cum derived unless ``derive_cum`` is false."""
    rows = []
    floor = 0
    for cap, mmr, lev in spec:
        rows.append(
            {"minNotional": floor, "maxNotional": cap, "maintenanceMarginRate": mmr,
             "maxLeverage": lev}
        )  # fmt: skip
        floor = cap
    return TierTable.from_ccxt(symbol, rows, derive_cum=derive_cum)


#: Binance BTCUSDT brackets of the worked examples (historical).
BTC = make_table(
    "BTC/USDT:USDT",
    [
        (50000, "0.004", 125),
        (250000, "0.005", 100),
        (1000000, "0.01", 50),
        (10000000, "0.025", 20),
        (20000000, "0.05", 10),
        (50000000, "0.1", 5),
        (100000000, "0.125", 4),
        (200000000, "0.15", 3),
        (300000000, "0.25", 2),
        (500000000, "0.5", 1),
    ],
)
#: Binance ETHUSDT brackets of the worked examples (historical).
ETH = make_table(
    "ETH/USDT:USDT",
    [
        (10000, "0.005", 100),
        (100000, "0.0065", 75),
        (500000, "0.01", 50),
        (1000000, "0.02", 25),
        (2000000, "0.05", 10),
        (5000000, "0.1", 5),
        (10000000, "0.125", 4),
        (20000000, "0.15", 3),
        (50000000, "0.25", 2),
    ],
)
#: An OKX-style table: bounds in contracts, flat rate, no deduction (contract size 0.01 BTC).
OKX_BTC = make_table(
    "BTC/USDT:USDT",
    [
        (1000, "0.004", 100),
        (5000, "0.005", "66.66"),
        (20000, "0.0075", 50),
        (200000, "0.01", 20),
        (2000000, "0.05", 5),
    ],
    derive_cum=False,
)
OKX_ETH = make_table(
    "ETH/USDT:USDT", [(5000, "0.004", 100), (50000, "0.008", 50), (500000, "0.02", 20)],
    derive_cum=False,
)  # fmt: skip


@dataclass
class Case:
    profile: Profile
    fee: Decimal
    wallet: Decimal  # cross wallet
    pos: Position  # the position solved for; first in ``positions``
    positions: list[Position]
    marks: list[Decimal]


def decimals(low: int, high: int, places: int) -> st.SearchStrategy[Decimal]:
    """Decimals in [low, high] with ``places`` decimal places."""
    scale = 10**places
    return st.integers(low * scale, high * scale).map(lambda n: D(n) / scale)


def make_position(
    table: TierTable,
    sign: int,
    contracts: Decimal,
    entry: Decimal,
    leverage: Decimal,
    *,
    isolated: bool,
    extra: Decimal = ZERO,
    contract_size: Decimal = ONE,
) -> Position:
    pos = Position(
        table.symbol, table, "isolated" if isolated else "cross", leverage, contract_size
    )
    pos.set_size(sign, contracts, entry)
    if isolated:
        pos.isolated_wallet = pos.qty * entry / leverage + extra
    return pos


@st.composite
def cases(
    draw: st.DrawFn,
    profile_name: str,
    *,
    modes: tuple[bool, ...] = (True, False),
    signs: tuple[int, ...] = (1, -1),
) -> Case:
    """A position (isolated or cross) and, for cross, other cross positions and a wallet."""
    profile = get_profile(profile_name)
    okx = profile.tier_basis == "contracts"
    # 0 .. 0.001 where the profile counts the close fee in the requirement (OKX, MEXC, Bitget)
    fee = draw(decimals(0, 1, 4)) / 1000 if profile.taker_fee_in_requirement else ZERO
    table, other_table = (OKX_BTC, OKX_ETH) if okx else (BTC, ETH)
    size = D("0.01") if okx else D(1)
    isolated = draw(st.sampled_from(modes))
    sign = draw(st.sampled_from(signs))
    contracts = draw(decimals(1, 300000, 0) if okx else decimals(0, 3000, 3))
    assume(contracts > 0)
    entry = draw(decimals(1000, 150000, 2))
    leverage = D(draw(st.integers(1, 20 if okx else 125)))
    extra = draw(decimals(0, 50000, 2)) if isolated and draw(st.booleans()) else ZERO
    pos = make_position(
        table, sign, contracts, entry, leverage, isolated=isolated, extra=extra, contract_size=size
    )
    mark = entry * (1 + draw(decimals(-30, 30, 2)) / 100)
    positions, marks = [pos], [mark]
    wallet = ZERO
    if not isolated:
        wallet = draw(decimals(0, 5000000, 2))
        if draw(st.booleans()):
            o_sign = draw(st.sampled_from([1, -1]))
            o_contracts = draw(decimals(1, 100000, 0) if okx else decimals(0, 5000, 2))
            assume(o_contracts > 0)
            o_entry = draw(decimals(100, 5000, 2))
            o_size = D("0.1") if okx else D(1)
            other = make_position(
                other_table, o_sign, o_contracts, o_entry, D(10), isolated=False,
                contract_size=o_size,
            )  # fmt: skip
            positions.append(other)
            marks.append(o_entry * (1 + draw(decimals(-20, 20, 2)) / 100))
        if draw(st.booleans()):
            # An isolated position elsewhere must not change anything on the cross side.
            iso = make_position(other_table, 1, D(1), D(2000), D(5), isolated=True,
                                contract_size=D("0.1") if okx else D(1))  # fmt: skip
            positions.append(iso)
            marks.append(D(1500))
    return Case(profile, fee, wallet, pos, positions, marks)


def at_mark(case: Case, price: Decimal) -> tuple[bool, Decimal | None]:
    """(liquidated, margin ratio) of the solved position with its mark moved to ``price``."""
    views, _account = snapshot(
        case.profile, case.fee, case.wallet, case.positions, [price, *case.marks[1:]]
    )
    return views[0].liquidated, views[0].margin_ratio


def balance_and_requirement(case: Case, price: Decimal) -> tuple[Decimal, Decimal]:
    """Margin balance and requirement backing the solved position, its mark at ``price``."""
    pos = case.pos
    req, _mm, tier = margin.requirement(case.profile, pos, price, case.fee)
    if case.profile.tier_basis == "contracts":
        assert tier == pos.table.tier_for(pos.contracts)
    elif pos.isolated and case.profile.isolated_mm_price == "at_entry":
        assert tier == pos.table.tier_for(pos.qty * pos.entry_price)
    else:
        assert tier == pos.table.tier_for(pos.qty * price)  # the tier containing Q*P
    balance = margin.unrealized_pnl(pos, price)
    if pos.isolated:
        return pos.isolated_wallet + balance, req
    balance += case.wallet
    for other, mark in zip(case.positions[1:], case.marks[1:], strict=True):
        if not other.isolated:
            balance += margin.unrealized_pnl(other, mark)
            req += margin.requirement(case.profile, other, mark, case.fee)[0]
    return balance, req


def check_liquidation_price(case: Case) -> None:
    with decimal_context():
        views, _account = snapshot(case.profile, case.fee, case.wallet, case.positions, case.marks)
        price = views[0].liquidation_price
        assume(price is not None and price > 0)
        assert price is not None

        balance, req = balance_and_requirement(case, price)
        assert abs(balance - req) <= REL * max(abs(balance), abs(req))

        _liquidated, ratio = at_mark(case, price)
        assert ratio is not None
        assert abs(ratio - 1) <= REL

        sign = case.pos.sign
        beyond = price * (1 - sign * NUDGE)  # toward liquidation: lower for a long
        inside = price * (1 + sign * NUDGE)
        assert at_mark(case, beyond)[0] is True
        assert at_mark(case, inside)[0] is False


@PROPERTY_SETTINGS
@given(cases("binance"))
def test_binance_liquidation_price_balances_margin(case: Case) -> None:
    check_liquidation_price(case)


@PROPERTY_SETTINGS
@given(cases("okx"))
def test_okx_liquidation_price_balances_margin_with_fees(case: Case) -> None:
    check_liquidation_price(case)


@PROPERTY_SETTINGS
@given(cases("mexc"))
def test_mexc_liquidation_price_balances_margin_with_fees(case: Case) -> None:
    check_liquidation_price(case)


@PROPERTY_SETTINGS
@given(cases("bitget"))
def test_bitget_liquidation_price_balances_margin_with_fees(case: Case) -> None:
    check_liquidation_price(case)


@PROPERTY_SETTINGS
@given(cases("gate"))
def test_gate_liquidation_price_balances_margin(case: Case) -> None:
    check_liquidation_price(case)


@PROPERTY_SETTINGS
@given(cases("kucoinfutures"))
def test_kucoin_liquidation_price_balances_margin_with_fees(case: Case) -> None:
    check_liquidation_price(case)


@PROPERTY_SETTINGS
@given(cases("generic"))
def test_generic_liquidation_price_balances_margin(case: Case) -> None:
    check_liquidation_price(case)


@PROPERTY_SETTINGS
@given(cases("bybit", modes=(True,)))
def test_bybit_isolated_ratio_at_entry_is_one_at_the_liquidation_price(case: Case) -> None:
    check_liquidation_price(case)


@settings(PROPERTY_SETTINGS, max_examples=50)
@given(cases("binance", signs=(1,)))
def test_long_without_liquidation_price_is_not_liquidated_by_its_price(case: Case) -> None:
    """A long whose solution is <= 0 is safe at every positive mark (docs/rules.md §5.3)."""
    with decimal_context():
        views, _account = snapshot(case.profile, case.fee, case.wallet, case.positions, case.marks)
        assume(views[0].liquidation_price is None)
        for price in (D("0.01"), case.pos.entry_price / 1000, case.marks[0]):
            assert at_mark(case, price)[0] is False
