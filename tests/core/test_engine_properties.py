"""Engine invariants over random input sequences (docs/contracts.md §2, docs/rules.md §1, §7, §9.1).

A Hypothesis strategy builds a config line (profile binance, bybit or okx; two accounts, one cross
and one isolated by default; a policy leverage cap; the historical Binance BTCUSDT/ETHUSDT tiers,
or the same rates in contracts with ``contractSizes`` for okx) and a sequence of inputs over two
symbols: ticks (a random walk of marks with occasional 20% jumps, bid/ask around the mark), market
and limit orders (some reduce-only, some with stop-loss/take-profit on the protective side),
cancels, set_leverage, set_margin_mode, add/reduce_margin, deposit/withdraw and funding.

``test_engine_invariants_hold_after_every_input`` checks after every input:

* after a liquidation no wallet of that account is below zero; without a cross position, no
  input takes the cross wallet from >= 0 to below 0;
* an isolated liquidation returns to the cross wallet exactly ``isolatedWallet - loss`` (so it
  loses at most the isolated wallet) and touches no other isolated wallet; the insurance fund
  and the ledger's liquidation losses move by what the events say; an account liquidation
  leaves no cross position;
* every fill moves the position by exactly its amount; a reduce-only fill never grows ``|q|``
  and never flips it; the positions are what the fills say;
* isolated wallets change only through events of their own position;
* the leverage in force never exceeds min(policy cap, tier-1 max leverage); an accepted
  ``set_leverage`` or opening order respects the tier max of the exposure at that moment;
* every event has ``type``, ``ts`` (the input's) and ``account``; rejection codes are the
  documented ones.

The ledger identity ``total_wallet() == ledger.expected_total()`` has its own two properties
(in the engine's 40-digit arithmetic, and exactly), so that a rounding drift cannot hide the
other invariants. Minimal cases of every defect these properties found follow the properties.
``guardbot simulate`` is run twice on the same random input, and in other processes with other
hash seeds: the bytes must be identical.

Hypothesis runs derandomized (a fixed sequence of examples), so the suite is deterministic.
Shrinking is off (a 70-input case takes minutes to shrink): set GUARDBOT_SHRINK=1 to turn it on.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, localcontext
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from guardbot.cli.main import main
from guardbot.cli.simulate import build_config
from guardbot.core.commands import parse_command
from guardbot.core.engine import Engine
from guardbot.core.num import decimal_context, fmt, fmt_opt
from tests.tiertables import BTC_TIERS, ETH_TIERS, ccxt_rows

D = Decimal
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
SYMBOLS = (BTC, ETH)
CROSS = "c"  # default_margin_mode cross
ISO = "i"  # default_margin_mode isolated
HEDGED = "h"  # position_mode hedged, cross or isolated by default
ACCOUNTS = (CROSS, ISO, HEDGED)
SIDES = ["long", "short", "LONG", "Short"]  # positionSide is case-insensitive

#: docs/contracts.md §2, "Rejection codes".
REJECTION_CODES = frozenset(
    {
        "INVALID_ORDER",
        "UNKNOWN_SYMBOL",
        "LEVERAGE_EXCEEDS_MAX",
        "MARGIN_INSUFFICIENT",
        "REDUCE_ONLY_NO_POSITION",
        "REDUCE_ONLY_WOULD_INCREASE_POSITION",
        "NOTIONAL_EXCEEDS_MAX",
        "EXPOSURE_EXCEEDS_MAX",
        "STOP_LOSS_REQUIRED",
        "TRADING_STATE_REDUCING",
        "TRADING_HALTED",
        "MARGIN_MODE_CHANGE_WITH_OPEN_POSITION",
        "ORDER_WOULD_TRIGGER_IMMEDIATELY",
        "PRICE_STALE",
        "POSITION_MODE_CHANGE_WITH_OPEN_POSITION",
        "POSITION_SIDE_REQUIRED",
        "STOP_LOSS_WOULD_WIDEN",
    }
)

#: okx: the same rates and leverages with bounds in contracts (BTC 0.01 per contract, worth
#: about 300 USDT at the start price; ETH 0.1, about 200 USDT).
CONTRACT_SIZES = {BTC: D("0.01"), ETH: D("0.1")}
OKX_TIERS = {
    BTC: [(cap // 300, mmr, lev) for cap, mmr, lev in BTC_TIERS],
    ETH: [(cap // 200, mmr, lev) for cap, mmr, lev in ETH_TIERS],
}
USDT_TIERS = {BTC: BTC_TIERS, ETH: ETH_TIERS}

START = {BTC: D(30000), ETH: D(2000)}
TICK_SIZE = {BTC: D("0.1"), ETH: D("0.01")}
#: Order sizes in base units (BTC, ETH); okx orders divide by the contract size.
#: Some sit just below and above the first tier caps at the start prices (BTC 50k and 250k USDT
#: are 1.67 and 8.33 BTC; ETH 10k and 100k USDT are 5 and 50 ETH; the okx tables in contracts
#: put their caps at the same sizes).
BASE_AMOUNTS = {
    BTC: ["0.001", "0.01", "0.05", "0.1", "0.3", "0.5", "1", "1.6", "1.7", "2", "5", "8.3",
          "8.4", "10", "40"],
    ETH: ["0.01", "0.1", "0.5", "1", "4.9", "5.1", "10", "30", "49", "51", "100", "500"],
}  # fmt: skip
LEVERAGES = ["1", "2", "3", "5", "10", "20", "25", "33", "50", "75", "100", "125", "150"]

#: Shrinking a 70-input failure takes minutes, so it is off unless GUARDBOT_SHRINK=1; a failure
#: message names the input that broke the invariant and the events it caused.
_PHASES = (
    tuple(Phase)
    if os.environ.get("GUARDBOT_SHRINK") == "1"
    else (Phase.explicit, Phase.reuse, Phase.generate)
)
PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    phases=_PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Invariants are compared exactly: any rounding in the test's own sums raises.
EXACT = Context(prec=2000, rounding=ROUND_HALF_EVEN, traps=[Inexact])


def tier_spec(profile: str, symbol: str) -> list[tuple[int, str, int]]:
    return OKX_TIERS[symbol] if profile == "okx" else USDT_TIERS[symbol]


def tier_max_leverage(profile: str, symbol: str, value: Decimal) -> Decimal:
    """Max leverage for an exposure (cap inclusive, floor exclusive; beyond the table: 0)."""
    for cap, _mmr, lev in tier_spec(profile, symbol):
        if value <= cap:
            return D(lev)
    return D(0)


# ------------------------------------------------------------------------------ the strategy


@dataclass
class Scenario:
    profile: str
    cap: int | None
    config: dict[str, Any]
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def jsonl(self) -> str:
        lines = [json.dumps(self.config)] + [json.dumps(obj) for obj in self.inputs]
        return "\n".join(lines) + "\n"


def _q(value: Decimal, quantum: Decimal) -> Decimal:
    return value.quantize(quantum, rounding=ROUND_HALF_EVEN)


def _num(value: Decimal) -> str:
    """Decimal strings (interfaces: numbers may be given as strings), exact."""
    return format(value.normalize(), "f")


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    profile = draw(st.sampled_from(["binance", "bybit", "okx"]))
    cap = draw(st.sampled_from([20, 50, 125]))
    fees = draw(
        st.sampled_from([("0", "0"), ("0.0002", "0.0005"), ("0.0002", "0.0004"), ("0", "0.001")])
    )
    lev_c = draw(st.sampled_from(["5", "20", "75"]))
    lev_i = draw(st.sampled_from(["3", "10", "50", "150"]))
    hedged_mode = draw(st.sampled_from(["cross", "isolated"]))
    config: dict[str, Any] = {
        "type": "config",
        "profile": profile,
        "profile_options": {
            "liquidation_steps": draw(st.sampled_from(["full", "tiered"])),
            "hedge_tier_basis": draw(st.sampled_from(["side", "combined"])),
            # a margin-mode switch with a position open moves margin between the wallets
            "margin_mode_switch": draw(st.sampled_from(["flat", "with_position"])),
        },
        "tiers": {s: ccxt_rows(tier_spec(profile, s)) for s in SYMBOLS},
        "fees": {"maker": fees[0], "taker": fees[1]},
        "accounts": {
            CROSS: {"wallet": 10000, "default_margin_mode": "cross", "default_leverage": lev_c},
            ISO: {"wallet": 10000, "default_margin_mode": "isolated", "default_leverage": lev_i},
            HEDGED: {
                "wallet": 10000,
                "default_margin_mode": hedged_mode,
                "default_leverage": lev_c if hedged_mode == "cross" else lev_i,
                "position_mode": "hedged",
            },
        },
        "guards": {"max_leverage": cap},
    }
    if profile == "okx":
        config["contractSizes"] = {s: _num(v) for s, v in CONTRACT_SIZES.items()}
    scenario = Scenario(profile, cap, config)

    marks = dict(START)
    seen: set[str] = set()
    ids: list[str] = []
    ts = 1_700_000_000_000
    steps = draw(st.integers(min_value=10, max_value=70))
    kinds = (
        ["tick"] * 8
        + ["market"] * 4
        + ["limit"] * 3
        + ["reduce"] * 2
        + ["cancel", "set_leverage", "set_leverage", "set_margin_mode"]
        + ["add_margin", "reduce_margin", "deposit", "withdraw", "funding"]
        + ["set_position_mode"]
    )
    for _ in range(steps):
        ts += draw(st.integers(min_value=0, max_value=3_600_000))
        kind = draw(st.sampled_from(kinds))
        symbol = draw(st.sampled_from(SYMBOLS))
        account = draw(st.sampled_from(ACCOUNTS))
        if symbol not in seen and kind != "tick" and draw(st.integers(0, 9)) < 8:
            kind = "tick"  # mostly: a price first, so that orders trade
        obj: dict[str, Any] = {"ts": ts}
        if kind == "tick":
            seen.add(symbol)
            if draw(st.integers(0, 6)) == 0:
                step = D(draw(st.sampled_from([-20, 20]))) / 100
            else:
                step = D(draw(st.integers(-100, 100))) / 10000
            marks[symbol] = max(_q(marks[symbol] * (1 + step), TICK_SIZE[symbol]), D(1))
            mark = marks[symbol]
            obj.update(type="tick", symbol=symbol, mark=_num(mark))
            if draw(st.integers(0, 9)) < 9:
                spread = TICK_SIZE[symbol] * draw(st.integers(1, 20))
                obj["bid"] = _num(mark - spread)
                obj["ask"] = _num(mark + spread)
            if draw(st.booleans()):
                obj["last"] = _num(mark + TICK_SIZE[symbol] * draw(st.integers(-10, 10)))
        elif kind in ("market", "limit", "reduce"):
            order_id = f"o{len(ids)}"
            ids.append(order_id)
            side = draw(st.sampled_from(["buy", "sell"]))
            base = D(draw(st.sampled_from(BASE_AMOUNTS[symbol])))
            amount = base / CONTRACT_SIZES[symbol] if profile == "okx" else base
            order_type = "limit" if kind == "limit" else draw(st.sampled_from(["market", "limit"]))
            if kind == "market":
                order_type = "market"
            obj.update(
                type="order",
                account=account,
                id=order_id,
                symbol=symbol,
                orderType=order_type,
                side=side,
                amount=_num(amount),
            )
            mark = marks[symbol]
            if order_type == "limit":
                offset = D(draw(st.integers(-300, 300))) / 10000
                obj["price"] = _num(_q(mark * (1 + offset), TICK_SIZE[symbol]))
                if draw(st.integers(0, 9)) == 0:
                    obj.setdefault("params", {})["timeInForce"] = "IOC"
            params: dict[str, Any] = obj.setdefault("params", {})
            sign = 1 if side == "buy" else -1
            if account == HEDGED:
                # an order against its side reduces it: sell+long, buy+short
                closing = "long" if side == "sell" else "short"
                opening = "short" if side == "sell" else "long"
                params["positionSide"] = (
                    closing if kind == "reduce" else draw(st.sampled_from([*SIDES, opening]))
                )
            if kind == "reduce" and (account != HEDGED or draw(st.booleans())):
                params["reduceOnly"] = True
                if draw(st.integers(0, 3)) == 0:
                    # a stand-alone stop for the position this order reduces (side -sign)
                    which = draw(st.sampled_from(["stopLossPrice", "takeProfitPrice"]))
                    away = D(draw(st.integers(2, 100))) / 1000
                    direction = sign if which == "stopLossPrice" else -sign
                    params[which] = _num(_q(mark * (1 + direction * away), TICK_SIZE[symbol]))
            elif draw(st.integers(0, 2)) == 0:
                # attached protection on the protective side of the position the order opens
                if draw(st.integers(0, 3)):
                    away = D(draw(st.integers(2, 100))) / 1000
                    params["stopLossPrice"] = _num(_q(mark * (1 - sign * away), TICK_SIZE[symbol]))
                if draw(st.integers(0, 3)):
                    away = D(draw(st.integers(2, 100))) / 1000
                    params["takeProfitPrice"] = _num(
                        _q(mark * (1 + sign * away), TICK_SIZE[symbol])
                    )
            if not params:
                del obj["params"]
        elif kind == "cancel":
            pool = [*ids, *(f"{i}-sl" for i in ids), *(f"{i}-tp" for i in ids), "nope"]
            obj.update(type="cancel", account=account, id=draw(st.sampled_from(pool)))
        elif kind == "set_leverage":
            leverage = draw(st.sampled_from(LEVERAGES))
            obj.update(type="set_leverage", account=account, symbol=symbol, leverage=leverage)
        elif kind == "set_margin_mode":
            mode = draw(st.sampled_from(["cross", "isolated"]))
            obj.update(type="set_margin_mode", account=account, symbol=symbol, marginMode=mode)
        elif kind in ("add_margin", "reduce_margin"):
            amount = D(draw(st.sampled_from(["0.5", "1", "10", "50", "200", "1000", "5000"])))
            obj.update(type=kind, account=account, symbol=symbol, amount=_num(amount))
            if account == HEDGED:
                obj["positionSide"] = draw(st.sampled_from(SIDES))
        elif kind == "set_position_mode":
            mode = draw(st.sampled_from(["oneway", "hedged"]))
            obj.update(type=kind, account=account, positionMode=mode)
        elif kind in ("deposit", "withdraw"):
            amount = D(draw(st.sampled_from(["0.01", "1", "100", "1000", "5000", "20000"])))
            obj.update(type=kind, account=account, amount=_num(amount))
        else:
            rate = D(draw(st.sampled_from([-500, -100, -10, -1, 1, 3, 10, 100, 500, 3000])))
            obj.update(type="funding", symbol=symbol, rate=_num(rate / 100000))
        scenario.inputs.append(obj)
    return scenario


# ------------------------------------------------------------------------------ the checker


@dataclass(frozen=True)
class PosState:
    signed: Decimal  # signed contracts
    isolated: bool
    isolated_wallet: Decimal


def _positions(engine: Engine, account_id: str) -> dict[str, PosState]:
    account = engine.accounts[account_id]
    return {
        s: PosState(D(p.sign) * p.contracts, p.isolated, p.isolated_wallet)
        for s, p in account.positions.items()
        if p.sign != 0
    }


def _key(engine: Engine, account_id: str, event: Mapping[str, Any]) -> str:
    """Where the event's position is kept: its symbol, and its side in a hedged account."""
    if engine.accounts[account_id].hedged:
        return f"{event['symbol']}#{event['positionSide']}"
    return str(event["symbol"])


def _symbol_of(key: str) -> str:
    return key.split("#")[0]


def _held(before: Mapping[str, PosState], symbol: str) -> Decimal:
    """Contracts held in ``symbol``: one position, or both sides of a hedged account."""
    return sum((abs(p.signed) for k, p in before.items() if _symbol_of(k) == symbol), D(0))


def _tier_index(profile: str, symbol: str, value: Decimal) -> int:
    for i, (cap, _mmr, _lev) in enumerate(tier_spec(profile, symbol)):
        if value <= cap:
            return i
    return len(tier_spec(profile, symbol))


def _exposure(
    engine: Engine, profile: str, account_id: str, symbol: str, signed: Decimal, price: Decimal
) -> Decimal:
    """docs/rules.md §2.2/§8.3: |position| plus the open (opening) order exposure of the symbol."""
    account = engine.accounts[account_id]
    size = CONTRACT_SIZES[symbol] if profile == "okx" else D(1)
    orders = [
        o
        for o in account.orders.values()
        if o.symbol == symbol and not o.reduce_only and o.kind is None and o.price is not None
    ]
    if profile == "okx":
        return abs(signed) + sum((o.amount for o in orders), D(0))
    return abs(signed) * size * price + sum((o.amount * size * o.price for o in orders), D(0))


def _quote(engine: Engine, symbol: str, side: int) -> Decimal | None:
    market = engine.markets.get(symbol)
    if market is None:
        return None
    preferred = market.ask if side > 0 else market.bid
    return preferred or market.last or market.mark


class Checker:
    """Runs inputs one by one through an :class:`Engine` and checks every invariant."""

    def __init__(
        self, scenario: Scenario, *, ledger: str | None = None, others: bool = True
    ) -> None:
        """``ledger``: None (skip the ledger identity), ``"engine"`` (compare in the engine's
        40-digit arithmetic) or ``"exact"`` (compare in exact arithmetic); ``others``: check the
        other invariants too."""
        self.scenario = scenario
        self.ledger = ledger
        self.others = others
        self.profile = scenario.profile
        self.engine = Engine(build_config(scenario.config))
        self.accounts = tuple(a for a in ACCOUNTS if a in self.engine.accounts)
        self.counts: dict[str, int] = {}

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _fail(self, message: str, obj: Mapping[str, Any], events: list[dict[str, Any]]) -> str:
        return f"{message}\ninput: {json.dumps(obj)}\nevents: {events!r}"

    def run(self) -> None:
        for obj in self.scenario.inputs:
            self.step(obj)

    def step(self, obj: Mapping[str, Any]) -> None:
        engine = self.engine
        before_wallet = {a: engine.accounts[a].wallet for a in self.accounts}
        before_fund = {a: engine.accounts[a].insurance_fund for a in self.accounts}
        before_losses = {a: engine.accounts[a].ledger.liquidation_losses for a in self.accounts}
        before_pos = {a: _positions(engine, a) for a in self.accounts}
        pre_leverage: dict[str, tuple[Decimal, Decimal] | None] = {}
        if obj["type"] == "set_leverage":
            account, symbol = obj["account"], obj["symbol"]
            held = _held(before_pos[account], symbol)
            market = engine.markets.get(symbol)
            mark = market.mark if market is not None else None
            exposure = (
                _exposure(engine, self.profile, account, symbol, held, mark)
                if mark is not None
                else D(0)
            )
            pre_leverage[account] = (exposure, tier_max_leverage(self.profile, symbol, exposure))
        order_check: tuple[Decimal, Decimal] | None = None
        if obj["type"] == "order":
            order_check = self._order_exposure(obj, before_pos[obj["account"]])
        events = engine.apply(obj["ts"], parse_command(obj))
        for e in events:
            kind = e["type"]
            if kind == "fill" and e.get("reduceOnly"):
                self._count("reduce_only_fill")
            if kind == "liquidation":
                self._count(f"liquidation_{e.get('scope')}")
                if e["partial"]:
                    self._count("liquidation_partial")
            if kind == "fill" and e["account"] == HEDGED and engine.accounts[HEDGED].hedged:
                self._count("fill_hedged")
            self._count(kind)
        with localcontext(EXACT):
            if self.ledger is not None:
                self._check_ledger(obj, events)
            if not self.others:
                return
            self._check_events(obj, events)
            self._check_fills(obj, events, before_pos)
            self._check_liquidations(obj, events, before_wallet, before_pos)
            self._check_liquidation_books(obj, events, before_fund, before_losses)
            self._check_isolated_wallets(obj, events, before_pos)
            self._check_no_overdraft(obj, events, before_wallet, before_pos)
            self._check_leverage(obj, events, pre_leverage, order_check)
        self._check_levels(obj, events)

    # ------------------------------------------------------------------ individual invariants

    def _check_levels(self, obj: Mapping[str, Any], events: list[dict[str, Any]]) -> None:
        """``Engine.levels`` (what replay's samples print) is the margin snapshot's part, to the
        digit, for every one-way account."""
        for name in self.accounts:
            account = self.engine.accounts[name]
            if account.hedged:
                continue
            views, view = self.engine.views(account)
            positions, rows, ratio = self.engine.levels(account)
            got = [(p.symbol, *map(fmt_opt, row)) for p, row in zip(positions, rows, strict=True)]
            want = [
                (
                    v.symbol,
                    fmt(v.unrealized_pnl),
                    fmt_opt(v.margin_ratio) if v.margin_mode == "isolated" else None,
                    fmt_opt(v.liquidation_price),
                )
                for v in views
            ]
            assert got == want, self._fail("levels() is not the snapshot's", obj, events)
            assert fmt_opt(ratio) == fmt_opt(view.margin_ratio), self._fail(
                "levels() ratio is not the snapshot's", obj, events
            )

    def _check_events(self, obj: Mapping[str, Any], events: list[dict[str, Any]]) -> None:
        for e in events:
            for key in ("type", "ts", "account"):
                assert key in e, self._fail(f"event without {key!r}", obj, events)
            assert e["ts"] == obj["ts"], self._fail("event ts is not the input's", obj, events)
            assert e["account"] in ACCOUNTS, self._fail("event of no known account", obj, events)
            if e["type"] == "order_rejected":
                assert e.get("code") in REJECTION_CODES, self._fail(
                    f"undocumented rejection code {e.get('code')!r}", obj, events
                )
                assert "id" in e and "reason" in e, self._fail("rejection fields", obj, events)

    def _check_ledger(self, obj: Mapping[str, Any], events: list[dict[str, Any]]) -> None:
        """``total_wallet() == ledger.expected_total()`` for every account."""
        for a in self.accounts:
            account = self.engine.accounts[a]
            if self.ledger == "engine":
                with decimal_context():
                    total, expected = account.total_wallet(), account.ledger.expected_total()
            else:  # exact: the test's context traps any rounding
                total, expected = account.total_wallet(), account.ledger.expected_total()
            assert total == expected, self._fail(
                f"ledger identity ({self.ledger} arithmetic) broken for {a}: total_wallet "
                f"{total} != ledger {expected} (off by {total - expected})",
                obj,
                events,
            )

    def _check_fills(
        self,
        obj: Mapping[str, Any],
        events: list[dict[str, Any]],
        before_pos: dict[str, dict[str, PosState]],
    ) -> None:
        tracked = {a: {s: p.signed for s, p in before_pos[a].items()} for a in self.accounts}
        for e in events:
            a = e["account"]
            if e["type"] == "liquidation":
                sign = 1 if e["side"] == "long" else -1
                tracked[a][_key(self.engine, a, e)] = sign * e["remainingContracts"]
                continue
            if e["type"] != "fill":
                continue
            symbol = _key(self.engine, a, e)
            before = tracked[a].get(symbol, D(0))
            side = 1 if e["side"] == "buy" else -1
            amount = e["amount"]
            after_side = e["positionSide"]
            after = e["positionContracts"] * (
                1 if after_side == "long" else -1 if after_side == "short" else 0
            )
            assert amount > 0, self._fail("fill of a non-positive amount", obj, events)
            assert after == before + side * amount, self._fail(
                f"fill moved {a} {symbol} from {before} to {after}, not by {side * amount}",
                obj,
                events,
            )
            if e["reduceOnly"]:
                assert before != 0, self._fail("reduce-only fill with no position", obj, events)
                assert abs(after) <= abs(before), self._fail(
                    f"reduce-only fill increased |q|: {before} -> {after}", obj, events
                )
                assert after == 0 or (after > 0) == (before > 0), self._fail(
                    f"reduce-only fill flipped the position: {before} -> {after}", obj, events
                )
            tracked[a][symbol] = after
        for a in self.accounts:
            now = {s: p.signed for s, p in _positions(self.engine, a).items()}
            expected = {s: q for s, q in tracked[a].items() if q != 0}
            assert now == expected, self._fail(
                f"positions of {a} are {now}, the events say {expected}", obj, events
            )

    def _check_liquidations(
        self,
        obj: Mapping[str, Any],
        events: list[dict[str, Any]],
        before_wallet: dict[str, Decimal],
        before_pos: dict[str, dict[str, PosState]],
    ) -> None:
        quiet = {"liquidation", "order_cancelled", "margin_alert", "margin_recovered"}
        quiet |= {"trading_state", "order_amended"}
        for a in self.accounts:
            own = [e for e in events if e["account"] == a]
            liquidations = [e for e in own if e["type"] == "liquidation"]
            if not liquidations:
                continue
            account = self.engine.accounts[a]
            assert account.wallet >= 0, self._fail(
                f"cross wallet of {a} is {account.wallet} after a liquidation", obj, events
            )
            for symbol, pos in account.positions.items():
                if pos.isolated:
                    assert pos.isolated_wallet >= 0, self._fail(
                        f"isolated wallet of {a} {symbol} is {pos.isolated_wallet} "
                        "after a liquidation",
                        obj,
                        events,
                    )
            for e in liquidations:
                if e["partial"]:
                    self._check_partial(obj, events, e)
            isolated = [e for e in liquidations if e["scope"] == "position"]
            whole = [e for e in isolated if not e["partial"]]
            for e in whole:
                assert _key(self.engine, a, e) not in account.positions, self._fail(
                    "an isolated liquidation left the position open", obj, events
                )
                returned = e["isolatedWallet"] - e["loss"]
                assert returned >= 0, self._fail(
                    f"isolated liquidation lost {e['loss']}, more than the isolated wallet "
                    f"{e['isolatedWallet']}",
                    obj,
                    events,
                )
            if not isolated or any(e["type"] not in quiet for e in own):
                continue
            if any(e["scope"] != "position" for e in liquidations):
                continue
            # Only isolated liquidations touched this account's money in this input: a partial
            # step keeps what is left in the isolated wallet, a whole one returns it.
            expected = before_wallet[a] + sum(e["isolatedWallet"] - e["loss"] for e in whole)
            assert account.wallet == expected, self._fail(
                f"cross wallet of {a} went {before_wallet[a]} -> {account.wallet}; the "
                f"liquidation events returned {expected - before_wallet[a]}",
                obj,
                events,
            )
            first: dict[str, dict[str, Any]] = {}
            for e in isolated:
                first.setdefault(_key(self.engine, a, e), e)
            for key, e in first.items():
                prior = before_pos[a].get(key)
                assert prior is not None and prior.isolated, self._fail(
                    "isolated liquidation of a position that was not isolated", obj, events
                )
                assert e["isolatedWallet"] == prior.isolated_wallet, self._fail(
                    f"liquidation reports isolatedWallet {e['isolatedWallet']}, the position "
                    f"held {prior.isolated_wallet}",
                    obj,
                    events,
                )
            for key, prior in before_pos[a].items():
                pos = account.positions.get(key)
                if prior.isolated and pos is not None and key not in first:
                    assert pos.isolated_wallet == prior.isolated_wallet, self._fail(
                        f"another isolated wallet ({key}) changed in a liquidation",
                        obj,
                        events,
                    )

    def _tier_peer(self, events: list[dict[str, Any]], e: Mapping[str, Any]) -> Decimal:
        """The contracts of the other side that count in the tier of ``e``'s side when it was
        stepped: what the other side holds now plus what this input liquidated of it later
        (only liquidations follow a liquidation step within one input)."""
        account = self.engine.accounts[e["account"]]
        basis = self.engine.profile.hedge_tier_basis
        if basis == "side" or not account.hedged or e["scope"] != "account":
            return D(0)
        other = "short" if e["positionSide"] == "long" else "long"
        pos = account.positions.get(f"{e['symbol']}#{other}")
        peer = pos.contracts if pos is not None and not pos.isolated else D(0)
        later = events[next(i for i, x in enumerate(events) if x is e) + 1 :]
        return peer + sum(
            (
                x["contracts"]
                for x in later
                if x["type"] == "liquidation"
                and x["account"] == e["account"]
                and x["symbol"] == e["symbol"]
                and x["positionSide"] == other
            ),
            D(0),
        )

    def _check_partial(
        self, obj: Mapping[str, Any], events: list[dict[str, Any]], e: Mapping[str, Any]
    ) -> None:
        """A partial liquidation leaves the position in a lower tier (docs/rules.md §7.1),
        keeps its entry and side, and takes only what it reports."""
        symbol, mark = e["symbol"], e["markPrice"]
        at = mark
        if self.profile == "bybit" and e["scope"] == "position":
            at = e["entryPrice"]  # bybit tiers an isolated position at its entry (§5.4)
        before, after = e["contracts"] + e["remainingContracts"], e["remainingContracts"]
        assert e["contracts"] > 0 and after > 0, self._fail("empty partial step", obj, events)
        # The cross sides of a hedged symbol tiered together (docs/rules.md §8.6): the step
        # takes the two together into a lower tier, the other side's size unchanged by it.
        peer = self._tier_peer(events, e)
        before, after = before + peer, after + peer
        if self.profile == "okx":
            tiers = (_tier_index("okx", symbol, before), _tier_index("okx", symbol, after))
        else:
            tiers = (
                _tier_index(self.profile, symbol, before * at),
                _tier_index(self.profile, symbol, after * at),
            )
        assert tiers[1] < tiers[0], self._fail(
            f"a partial liquidation of {symbol} went from tier {tiers[0]} to {tiers[1]}",
            obj,
            events,
        )
        assert e["price"] == mark, self._fail("a partial step fills at the mark", obj, events)

    def _check_liquidation_books(
        self,
        obj: Mapping[str, Any],
        events: list[dict[str, Any]],
        before_fund: dict[str, Decimal],
        before_losses: dict[str, Decimal],
    ) -> None:
        """The insurance fund and the ledger's liquidation losses move by exactly what the
        liquidation events say; an account liquidation leaves no cross position (§7.1, §7.3)."""
        for a in self.accounts:
            account = self.engine.accounts[a]
            liquidations = [e for e in events if e["account"] == a and e["type"] == "liquidation"]
            adl = [e for e in events if e["account"] == a and e["type"] == "adl"]
            fund = before_fund[a] + sum((e["insuranceFundDelta"] for e in liquidations), D(0))
            # what the fund could not cover was auto-deleveraged; the fund never goes below 0
            fund += sum((e["amount"] for e in adl), D(0))
            assert account.insurance_fund >= 0, self._fail("negative insurance fund", obj, events)
            assert account.insurance_fund == fund, self._fail(
                f"insurance fund of {a} is {account.insurance_fund}, the events say {fund}",
                obj,
                events,
            )
            losses = before_losses[a] + sum((e["loss"] for e in liquidations), D(0))
            assert account.ledger.liquidation_losses == losses, self._fail(
                f"ledger liquidation losses of {a} are {account.ledger.liquidation_losses}, "
                f"the events say {losses}",
                obj,
                events,
            )
            if any(e["scope"] == "account" and not e["partial"] for e in liquidations):
                cross = [s for s, p in account.positions.items() if not p.isolated]
                assert not cross, self._fail(
                    f"cross positions {cross} of {a} survived an account liquidation", obj, events
                )

    def _check_isolated_wallets(
        self,
        obj: Mapping[str, Any],
        events: list[dict[str, Any]],
        before_pos: dict[str, dict[str, PosState]],
    ) -> None:
        """An isolated wallet changes only through its own position's events (a fill, funding,
        a margin transfer, a leverage change): never through a cross liquidation or another
        symbol (docs/rules.md §4.1, §7.3)."""
        movers = {
            "fill",
            "funding",
            "margin_changed",
            "leverage_changed",
            "liquidation",
            # margin_mode_switch = "with_position" converts an open position in place
            "margin_mode_changed",
        }
        for a in self.accounts:
            account = self.engine.accounts[a]
            touched = {e.get("symbol") for e in events if e["account"] == a and e["type"] in movers}
            for symbol, prior in before_pos[a].items():
                pos = account.positions.get(symbol)
                if not prior.isolated or pos is None or _symbol_of(symbol) in touched:
                    continue
                assert pos.isolated_wallet == prior.isolated_wallet, self._fail(
                    f"isolated wallet of {a} {symbol} moved {prior.isolated_wallet} -> "
                    f"{pos.isolated_wallet} with no event of that position",
                    obj,
                    events,
                )

    def _check_no_overdraft(
        self,
        obj: Mapping[str, Any],
        events: list[dict[str, Any]],
        before_wallet: dict[str, Decimal],
        before_pos: dict[str, dict[str, PosState]],
    ) -> None:
        """Without a cross position, nothing may take the cross wallet from >= 0 to below 0:
        what an isolated position draws from it passed the admission check (§3.3: cost within
        the available balance), a liquidation returns what is left and never draws (§7.3), and
        a position is liquidated before its losses exceed its isolated wallet."""
        for a in self.accounts:
            account = self.engine.accounts[a]
            cross_before = any(not p.isolated for p in before_pos[a].values())
            cross_after = any(not p.isolated for p in account.positions.values())
            if cross_before or cross_after or before_wallet[a] < 0:
                continue
            assert account.wallet >= 0, self._fail(
                f"cross wallet of {a} (no cross position) went {before_wallet[a]} -> "
                f"{account.wallet}",
                obj,
                events,
            )

    def _order_exposure(
        self, obj: Mapping[str, Any], before: dict[str, PosState]
    ) -> tuple[Decimal, Decimal] | None:
        """(exposure if the order fills, its tier's max leverage) for an opening, plain order.

        docs/rules.md §2.2: position notional (at mark) plus open-order notional. The part of the
        position that stays is valued at mark, what the order opens at its price (limit price,
        or the quote a market order takes), other resting opening orders at theirs.
        """
        params = obj.get("params", {})
        if params.get("reduceOnly"):
            return None
        symbol = obj["symbol"]
        side = 1 if obj["side"] == "buy" else -1
        amount = D(obj["amount"])
        if self.engine.accounts[obj["account"]].hedged:
            # a side only opens with its own orders; the tier counts both sides (§2.2)
            position_side = str(params.get("positionSide", "")).lower()
            if position_side != ("long" if side > 0 else "short"):
                return None
            stay, opening = _held(before, symbol), amount
        else:
            pos = before.get(symbol)
            held = abs(pos.signed) if pos else D(0)
            same_side = pos is None or pos.signed == 0 or (pos.signed > 0) == (side > 0)
            stay = held if same_side else max(D(0), held - amount)
            opening = amount if same_side else max(D(0), amount - held)
        if opening <= 0:
            return None
        market = self.engine.markets.get(symbol)
        mark = market.mark if market is not None else None
        price = D(obj["price"]) if "price" in obj else _quote(self.engine, symbol, side)
        if price is None or mark is None:
            return None
        account = self.engine.accounts[obj["account"]]
        orders = [
            o
            for o in account.orders.values()
            if o.symbol == symbol and not o.reduce_only and o.kind is None and o.price is not None
        ]
        if self.profile == "okx":
            exposure = stay + opening + sum((o.amount for o in orders), D(0))
        else:
            exposure = stay * mark + opening * price
            exposure += sum((o.amount * o.price for o in orders), D(0))
        return exposure, tier_max_leverage(self.profile, symbol, exposure)

    def _check_leverage(
        self,
        obj: Mapping[str, Any],
        events: list[dict[str, Any]],
        pre_leverage: dict[str, tuple[Decimal, Decimal] | None],
        order_check: tuple[Decimal, Decimal] | None,
    ) -> None:
        cap = D(self.scenario.cap) if self.scenario.cap is not None else None
        for a in self.accounts:
            account = self.engine.accounts[a]
            for symbol, setting in account.settings.items():
                bound = D(tier_spec(self.profile, symbol)[0][2])
                if cap is not None:
                    bound = min(bound, cap)
                assert setting.leverage <= bound, self._fail(
                    f"{a} {symbol} leverage {setting.leverage} above min(cap, tier-1 max) {bound}",
                    obj,
                    events,
                )
                for pos in account.symbol_positions(symbol):
                    assert pos.leverage <= bound, self._fail(
                        f"{a} {symbol} position leverage {pos.leverage} above {bound}",
                        obj,
                        events,
                    )
        for e in events:
            if e["type"] == "leverage_changed":
                exposure, tier_max = pre_leverage[e["account"]] or (D(0), D(0))
                assert e["leverage"] <= tier_max, self._fail(
                    f"set_leverage {e['leverage']} accepted above the tier max {tier_max} "
                    f"of the exposure {exposure}",
                    obj,
                    events,
                )
            if e["type"] == "order_accepted" and order_check is not None and e["id"] == obj["id"]:
                exposure, tier_max = order_check
                leverage = self.engine.accounts[e["account"]].settings[obj["symbol"]].leverage
                assert leverage <= tier_max, self._fail(
                    f"order accepted at leverage {leverage} with exposure {exposure} in a tier "
                    f"of max leverage {tier_max}",
                    obj,
                    events,
                )


# ------------------------------------------------------------------------------ the tests


def test_engine_invariants_hold_after_every_input() -> None:
    """Every invariant but the ledger identity (tested below, so that a rounding drift there
    does not hide the others) after every input; then check that the random inputs reached
    the code worth checking."""
    counts: dict[str, int] = {}

    @PROPERTY_SETTINGS
    @given(scenarios())
    def run(scenario: Scenario) -> None:
        checker = Checker(scenario)
        checker.run()
        for kind, n in checker.counts.items():
            counts[kind] = counts.get(kind, 0) + n

    run()
    for kind in (
        "fill",
        "reduce_only_fill",
        "stop_triggered",
        "liquidation_position",
        "liquidation_account",
        "funding",
        "leverage_changed",
        "margin_changed",
        "margin_mode_changed",
        "balance_changed",
        "order_cancelled",
        "order_rejected",
        "margin_alert",
        "fill_hedged",
        "position_mode_changed",
        "adl",
    ):
        assert counts.get(kind, 0) > 0, f"the generator never produced {kind}: {counts}"


@st.composite
def squeezes(draw: st.DrawFn) -> Scenario:
    """One account, one-way or hedged, cross or isolated, opens a position above the first tier
    (and in hedge mode a smaller opposite side), then the mark walks against it in small steps
    until it is liquidated: the liquidation steps of every profile, full and tiered."""
    profile = draw(st.sampled_from(["binance", "bybit", "okx"]))
    hedged = draw(st.booleans())
    mode = draw(st.sampled_from(["cross", "isolated"]))
    leverage = draw(st.sampled_from(["10", "20", "40"]))
    steps = draw(st.sampled_from(["tiered", "full"]))
    account = HEDGED if hedged else (CROSS if mode == "cross" else ISO)
    config: dict[str, Any] = {
        "type": "config",
        "profile": profile,
        "profile_options": {
            "liquidation_steps": steps,
            "hedge_tier_basis": draw(st.sampled_from(["side", "combined"])),
        },
        "tiers": {s: ccxt_rows(tier_spec(profile, s)) for s in SYMBOLS},
        "fees": {"maker": "0", "taker": draw(st.sampled_from(["0", "0.0005"]))},
        "accounts": {
            a: {
                "wallet": 100000 if a == account else 10000,
                "default_margin_mode": mode if a == account else "cross",
                "default_leverage": leverage,
                **({"position_mode": "hedged"} if a == HEDGED else {}),
            }
            for a in ACCOUNTS
        },
    }
    if profile == "okx":
        config["contractSizes"] = {s: _num(v) for s, v in CONTRACT_SIZES.items()}
    size = CONTRACT_SIZES[BTC] if profile == "okx" else D(1)
    side = draw(st.sampled_from(["buy", "sell"]))
    sign = 1 if side == "buy" else -1
    ts = 1_700_000_000_000
    inputs: list[dict[str, Any]] = [
        {"type": "tick", "ts": ts, "symbol": BTC, "mark": "30000"},
    ]
    base = D(draw(st.sampled_from(["2", "5", "9", "20", "40"])))

    def order(oid: str, order_side: str, amount: Decimal, position_side: str | None) -> None:
        obj: dict[str, Any] = {"type": "order", "ts": ts, "account": account, "id": oid,
                               "symbol": BTC, "orderType": "market", "side": order_side,
                               "amount": _num(amount / size)}  # fmt: skip
        if position_side is not None:
            obj["params"] = {"positionSide": position_side}
        inputs.append(obj)

    order("big", side, base, ("LONG" if sign > 0 else "SHORT") if hedged else None)
    if hedged and draw(st.booleans()):
        order("hedge", "sell" if sign > 0 else "buy", base / 4, "short" if sign > 0 else "long")
    mark = D(30000)
    for _ in range(draw(st.integers(20, 120))):
        ts += 1000
        mark = _q(mark * (1 - sign * D(draw(st.integers(1, 40))) / 10000), TICK_SIZE[BTC])
        inputs.append({"type": "tick", "ts": ts, "symbol": BTC, "mark": _num(mark)})
        if draw(st.integers(0, 30)) == 0:
            inputs.append({"type": "funding", "ts": ts, "symbol": BTC, "rate": "0.001"})
    return Scenario(profile, None, config, inputs)


def test_liquidation_steps_keep_every_invariant() -> None:
    """Squeezes to liquidation on every profile, one-way and hedged, cross and isolated, full
    and tiered: every invariant of the checker (a partial step leaves the position in a lower
    tier, wallets are never below zero after a liquidation, an isolated liquidation touches only
    its own side's wallet, the insurance fund and ADL add up) and the exact ledger identity."""
    counts: dict[str, int] = {}

    @settings(PROPERTY_SETTINGS, max_examples=80)
    @given(squeezes())
    def run(scenario: Scenario) -> None:
        checker = Checker(scenario, ledger="exact")
        checker.run()
        for kind, n in checker.counts.items():
            counts[kind] = counts.get(kind, 0) + n

    run()
    for kind in ("liquidation_partial", "liquidation_position", "liquidation_account"):
        assert counts.get(kind, 0) > 0, f"the squeezes never produced {kind}: {counts}"


@settings(PROPERTY_SETTINGS, max_examples=40)  # the exact test below implies this one
@given(scenarios())
def test_ledger_identity_holds_after_every_input(scenario: Scenario) -> None:
    """``acct.total_wallet() == acct.ledger.expected_total()`` after every input, both sides
    evaluated in the engine's own arithmetic context (40 significant digits)."""
    Checker(scenario, ledger="engine", others=False).run()


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(scenarios())
def test_ledger_identity_is_exact_after_every_input(scenario: Scenario) -> None:
    """The ledger explains the wallets "to the last digit" (account.Ledger): the same identity
    compared in exact arithmetic, not after rounding both sides to 28 or 40 digits."""
    Checker(scenario, ledger="exact", others=False).run()


def _market(ts: int, account: str, order_id: str, side: str, amount: str) -> dict[str, Any]:
    return {"type": "order", "ts": ts, "account": account, "id": order_id, "symbol": BTC,
            "orderType": "market", "side": side, "amount": amount}  # fmt: skip


def _tick(ts: int, mark: str) -> dict[str, Any]:
    return {"type": "tick", "ts": ts, "symbol": BTC, "mark": mark}


def test_ledger_identity_after_partial_closes_of_an_averaged_entry() -> None:
    """Minimal case of a drift visible at the engine's own precision: a cross long bought at
    30000 and 30001 (entry 30000.666..., rounded to 40 digits), closed in three market sells
    of 0.01 at 30000. Each realized PnL (-0.00666...67) is added to the ~10000 cross wallet,
    which keeps 36 decimals, while the ledger sums the PnLs at full length: after the second
    close the wallets total 9999.986666666666666666666666666666666666 and the ledger says
    9999.986666666666666666666666666666666667."""
    config = {"type": "config", "accounts": {CROSS: {"wallet": 10000}, ISO: {"wallet": 10000}}}
    inputs = [
        _tick(1, "30000"),
        _market(2, CROSS, "a", "buy", "0.01"),
        _tick(3, "30001"),
        _market(4, CROSS, "b", "buy", "0.02"),
        _tick(5, "30000"),
        _market(6, CROSS, "c1", "sell", "0.01"),
        _market(7, CROSS, "c2", "sell", "0.01"),
        _market(8, CROSS, "c3", "sell", "0.01"),
    ]
    Checker(Scenario("binance", None, config, inputs), ledger="engine").run()


def test_ledger_identity_is_exact_after_an_isolated_open_at_leverage_3() -> None:
    """Minimal case of the exact drift: an isolated buy of 0.01 BTC at 30001 with leverage 3
    moves 300.01/3 = 100.00333... from the cross wallet into the isolated wallet; the cross
    wallet keeps 40 digits (9899.996666666666666666666666666666666667), so wallet + isolated
    wallet = 10000.0000000000000000000000000000000000003 while the ledger says 10000."""
    config = {
        "type": "config",
        "accounts": {
            ISO: {"wallet": 10000, "default_margin_mode": "isolated", "default_leverage": 3},
            CROSS: {"wallet": 10000},
        },
    }
    inputs = [_tick(1, "30001"), _market(2, ISO, "a", "buy", "0.01")]
    Checker(Scenario("binance", None, config, inputs), ledger="exact").run()


def _eth(ts: int, mark: str, **quote: str) -> dict[str, Any]:
    return {"type": "tick", "ts": ts, "symbol": ETH, "mark": mark, **quote}


FEE_CONFIG: dict[str, Any] = {
    "type": "config",
    "fees": {"maker": "0.0002", "taker": "0.0005"},
    "accounts": {
        ISO: {"wallet": 10000, "default_margin_mode": "isolated", "default_leverage": 10},
        CROSS: {"wallet": 10000},
    },
}


def _fee_case(amount: str) -> Checker:
    buy = {"type": "order", "ts": 2, "account": ISO, "id": "o1", "symbol": ETH,
           "orderType": "market", "side": "buy", "amount": amount}  # fmt: skip
    checker = Checker(
        Scenario("binance", None, FEE_CONFIG, [_eth(1, "2000"), buy, _eth(3, "1700")]),
        ledger="exact",
    )
    checker.run()
    return checker


def test_cross_wallet_not_negative_after_an_isolated_liquidation_when_fees_apply() -> None:
    """Minimal case (binance, taker 0.05%): an isolated 10x buy of 50 ETH at 2000 needs IM 10000,
    the whole available balance; if it is admitted, the fill also debits the 50 fee from the
    cross wallet (-50), and the isolated liquidation at 1700 leaves it there: after a
    liquidation no wallet may be below 0 (§7.4), and a fill the balance cannot pay should not
    be admitted (§3.3). Either fix passes: refuse the order, or keep the wallet >= 0."""
    checker = _fee_case("50")
    assert checker.engine.accounts[ISO].wallet >= 0


def test_isolated_liquidation_with_fees_leaves_the_cross_wallet_intact() -> None:
    """The same at 49 ETH, which fits with its fees: IM 9800 and fee 49 leave 151 in the cross
    wallet; the liquidation at 1700 takes the 9800 isolated wallet and nothing else."""
    checker = _fee_case("49")
    assert checker.counts.get("liquidation_position") == 1
    assert checker.engine.accounts[ISO].wallet == D(151)


def test_leverage_cut_with_a_resting_order_cannot_overdraw_the_cross_wallet() -> None:
    """Minimal case: an isolated limit buy of 20 ETH at 1900 rests at 20x (IM 1900 of the 10000
    wallet); set_leverage 1 is accepted although the order now needs 38000 (§8.3: a decrease
    must fit in the available balance, Binance -2028); when the limit fills, 38000 is moved into
    the isolated wallet and the cross wallet ends at -28000 with no loss, fee or liquidation.
    Whatever the fix (refuse the leverage change, or refuse the fill), the account that lost
    10 USDT of unrealized PnL must not owe 28000."""
    config = {
        "type": "config",
        "accounts": {
            ISO: {"wallet": 10000, "default_margin_mode": "isolated", "default_leverage": 20},
            CROSS: {"wallet": 10000},
        },
    }
    inputs = [
        _eth(1, "2000", bid="1999", ask="2001"),
        {"type": "order", "ts": 2, "account": ISO, "id": "o1", "symbol": ETH,
         "orderType": "limit", "side": "buy", "amount": "20", "price": "1900"},
        {"type": "set_leverage", "ts": 3, "account": ISO, "symbol": ETH, "leverage": "1"},
        _eth(4, "1890", bid="1889", ask="1890"),
    ]  # fmt: skip
    checker = Checker(Scenario("binance", None, config, inputs), ledger="exact")
    checker.run()
    account = checker.engine.accounts[ISO]
    assert account.wallet >= 0, f"cross wallet {account.wallet} after a fill at 1x"


@pytest.mark.parametrize(("profile", "amount"), [("okx", "66"), ("bybit", "0.66")])
def test_marketable_sell_limit_cannot_overdraw_the_cross_wallet(profile: str, amount: str) -> None:
    """Minimal case (okx: 66 contracts of 0.01 BTC; bybit: 0.66 BTC; isolated at 1x, 10000
    wallet, no fees): a sell limit at 15000 with the bid at 30000 is admitted on its cost at the
    limit price (0.66 * 15000 / 1 = 9900 <= 10000), fills at once at the bid, and the isolated
    wallet is funded at the fill price (19800): the cross wallet ends at -9800 with nothing
    lost. (binance's open-loss term covers the gap and rejects the order.)"""
    config: dict[str, Any] = {
        "type": "config",
        "profile": profile,
        "tiers": {BTC: ccxt_rows(tier_spec(profile, BTC))},
        "accounts": {
            ISO: {"wallet": 10000, "default_margin_mode": "isolated", "default_leverage": 1},
            CROSS: {"wallet": 10000},
        },
    }
    if profile == "okx":
        config["contractSizes"] = {BTC: "0.01"}
    inputs = [
        {"type": "tick", "ts": 1, "symbol": BTC, "mark": "30000", "bid": "30000", "ask": "30001"},
        {"type": "order", "ts": 2, "account": ISO, "id": "o1", "symbol": BTC,
         "orderType": "limit", "side": "sell", "amount": amount, "price": "15000"},
    ]  # fmt: skip
    checker = Checker(Scenario(profile, None, config, inputs), ledger="exact")
    checker.run()
    assert checker.engine.accounts[ISO].wallet >= 0


# ------------------------------------------------------------------------------ determinism


@contextlib.contextmanager
def _input_file(text: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "input.jsonl")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        yield path


def _run_cli(path: str) -> tuple[int, str]:
    out = io.StringIO()
    err = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["simulate", path])
    assert err.getvalue() == "", err.getvalue()
    return status, out.getvalue()


@settings(PROPERTY_SETTINGS, max_examples=10)
@given(scenarios())
def test_simulate_is_byte_for_byte_deterministic(scenario: Scenario) -> None:
    with _input_file(scenario.jsonl()) as path:
        first = _run_cli(path)
        second = _run_cli(path)
    assert first[0] == 0
    assert first == second
    lines = first[1].splitlines()
    assert lines, "simulate wrote nothing"
    final = json.loads(lines[-1])
    assert final["type"] == "final"
    assert set(final["accounts"]) == set(ACCOUNTS)


@settings(PROPERTY_SETTINGS, max_examples=2)
@given(scenarios())
def test_simulate_output_does_not_depend_on_the_hash_seed(scenario: Scenario) -> None:
    """The same bytes from another process with another PYTHONHASHSEED (set and dict orders of
    strings change with it)."""
    with _input_file(scenario.jsonl()) as path:
        status, expected = _run_cli(path)
        for hash_seed in ("0", "4242"):
            proc = subprocess.run(
                [sys.executable, "-m", "guardbot", "simulate", path],
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "PYTHONHASHSEED": hash_seed},
                check=False,
            )
            assert (proc.returncode, proc.stdout, proc.stderr) == (status, expected, "")
