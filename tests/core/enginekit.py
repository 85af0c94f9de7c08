"""Builders shared by the engine tests: tier tables, configs and a small engine driver.

The tier tables are the historical Binance BTCUSDT and ETHUSDT brackets of docs/rules.md
(copied here: tests read no file outside the repo). They are passed in the config's ``tiers`` so
the tests do not depend on the bundled snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext
from typing import Any

from guardbot.cli.simulate import build_config, simulate_lines
from guardbot.core.codes import Code
from guardbot.core.engine import Engine
from guardbot.core.events import Event

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
#: A third symbol (ETH's table) for scenarios that need one more position.
SOL = "SOL/USDT:USDT"
#: A symbol that has no tier table, neither here nor in any bundled snapshot.
NOPE = "NOPE/USDT:USDT"

DAY_MS = 86_400_000

# (floor, cap, mmr, max leverage, cum) — cum follows the recursion of docs/rules.md §2.3.
BTC_ROWS = [
    (0, 50_000, "0.004", 125, 0),
    (50_000, 250_000, "0.005", 100, 50),
    (250_000, 1_000_000, "0.01", 50, 1_300),
    (1_000_000, 10_000_000, "0.025", 20, 16_300),
    (10_000_000, 20_000_000, "0.05", 10, 266_300),
    (20_000_000, 50_000_000, "0.1", 5, 1_266_300),
    (50_000_000, 100_000_000, "0.125", 4, 2_516_300),
    (100_000_000, 200_000_000, "0.15", 3, 5_016_300),
    (200_000_000, 300_000_000, "0.25", 2, 25_016_300),
    (300_000_000, 500_000_000, "0.5", 1, 100_016_300),
]
ETH_ROWS = [
    (0, 10_000, "0.005", 100, 0),
    (10_000, 100_000, "0.0065", 75, 15),
    (100_000, 500_000, "0.01", 50, 365),
    (500_000, 1_000_000, "0.02", 25, 5_365),
    (1_000_000, 2_000_000, "0.05", 10, 35_365),
    (2_000_000, 5_000_000, "0.1", 5, 135_365),
    (5_000_000, 10_000_000, "0.125", 4, 260_365),
    (10_000_000, 20_000_000, "0.15", 3, 510_365),
    (20_000_000, 50_000_000, "0.25", 2, 2_510_365),
]


def ccxt_rows(rows: Iterable[tuple[int, int, str, int, int]]) -> list[dict[str, Any]]:
    return [
        {
            "tier": i,
            "minNotional": floor,
            "maxNotional": cap,
            "maintenanceMarginRate": mmr,
            "maxLeverage": lev,
            "maintenanceAmount": cum,
        }
        for i, (floor, cap, mmr, lev, cum) in enumerate(rows, start=1)
    ]


TIERS = {BTC: ccxt_rows(BTC_ROWS), ETH: ccxt_rows(ETH_ROWS), SOL: ccxt_rows(ETH_ROWS)}

#: Every rejection code of docs/contracts.md §2.
CODES = frozenset(c.value for c in Code)


def D(value: object) -> Decimal:
    """An exact Decimal from an int or a decimal string."""
    assert isinstance(value, (int, str, Decimal)) and not isinstance(value, bool), value
    return Decimal(value)


def exact_div(a: object, b: object) -> Decimal:
    """``a / b`` with 60 significant digits (more than the engine's 40), for closeness checks."""
    with localcontext() as ctx:
        ctx.prec = 60
        return D(a) / D(b)


def close(a: Decimal | None, b: Decimal, tol: str = "1e-20") -> bool:
    assert a is not None
    return abs(a - b) <= Decimal(tol)


def config(
    *,
    profile: str = "binance",
    wallet: object = 100_000,
    mode: str = "cross",
    leverage: object = 10,
    maker: object = 0,
    taker: object = 0,
    accounts: Mapping[str, Mapping[str, Any]] | None = None,
    guards: Mapping[str, Any] | None = None,
    alerts: Mapping[str, Any] | None = None,
    trigger_price: str | None = None,
    profile_options: Mapping[str, Any] | None = None,
    position_mode: str | None = None,
) -> dict[str, Any]:
    """A ``config`` line (docs/contracts.md §2) with one account ``a`` unless ``accounts`` is
    given."""
    obj: dict[str, Any] = {
        "type": "config",
        "profile": profile,
        "tiers": TIERS,
        "fees": {"maker": str(maker), "taker": str(taker)},
        "accounts": dict(accounts)
        if accounts is not None
        else {
            "a": {
                "wallet": str(wallet),
                "default_margin_mode": mode,
                "default_leverage": str(leverage),
            }
        },
    }
    if guards is not None:
        obj["guards"] = dict(guards)
    if alerts is not None:
        obj["alerts"] = dict(alerts)
    if trigger_price is not None:
        obj["trigger_price"] = trigger_price
    if profile_options is not None:
        obj["profile_options"] = dict(profile_options)
    if position_mode is not None:
        for spec in obj["accounts"].values():
            spec["position_mode"] = position_mode
    return obj


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    return value


class Sim:
    """Drives an :class:`Engine` built from a config line; one call per input line.

    Every call goes through the same JSON round trip as ``guardbot simulate`` would see
    (``simulate_lines`` parses lines with :func:`parse_command`), and returns that line's events.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.config = config(**kwargs)
        self.engine = Engine(build_config(json.loads(json.dumps(self.config))))
        self.ts = 0
        self.events: list[Event] = []
        self.lines: list[dict[str, Any]] = [self.config]

    # -------------------------------------------------------------- driving

    def line(self, obj: Mapping[str, Any], ts: int | None = None) -> list[Event]:
        from guardbot.core.commands import parse_command

        if ts is None:
            self.ts += 1000
        else:
            assert ts >= self.ts
            self.ts = ts
        raw = json.loads(json.dumps(_jsonable({**obj, "ts": self.ts})), parse_float=Decimal)
        self.lines.append(raw)
        events = self.engine.apply(self.ts, parse_command(raw))
        self.events.extend(events)
        return list(events)

    def tick(
        self, mark: object, symbol: str = BTC, ts: int | None = None, **kw: object
    ) -> list[Event]:
        return self.line({"type": "tick", "symbol": symbol, "mark": mark, **kw}, ts)

    def order(
        self,
        oid: str,
        side: str,
        amount: object,
        *,
        symbol: str = BTC,
        price: object = None,
        account: str = "a",
        ts: int | None = None,
        **params: object,
    ) -> list[Event]:
        obj: dict[str, Any] = {
            "type": "order",
            "account": account,
            "id": oid,
            "symbol": symbol,
            "orderType": "market" if price is None else "limit",
            "side": side,
            "amount": amount,
        }
        if price is not None:
            obj["price"] = price
        if params:
            obj["params"] = params
        return self.line(obj, ts)

    def cmd(
        self, kind: str, account: str = "a", ts: int | None = None, **fields: object
    ) -> list[Event]:
        return self.line({"type": kind, "account": account, **fields}, ts)

    def funding(self, rate: object, symbol: str = BTC) -> list[Event]:
        return self.line({"type": "funding", "symbol": symbol, "rate": rate})

    # -------------------------------------------------------------- reading

    def account(self, account: str = "a") -> Any:
        return self.engine.accounts[account]

    def position(self, symbol: str = BTC, account: str = "a") -> Any:
        return self.engine.accounts[account].positions.get(symbol)

    def view(self, symbol: str = BTC, account: str = "a") -> Any:
        views, _ = self.engine.views(self.engine.accounts[account])
        return next(v for v in views if v.symbol == symbol)

    def check_ledger(self) -> None:
        """The wallet identity of every account holds exactly (cross + isolated == ledger).

        Summed with enough precision that the sums themselves cannot round: a default 28-digit
        context would hide a difference in the 40th digit of the engine's numbers.
        """
        with localcontext() as ctx:
            ctx.prec = 1000
            for acc in self.engine.accounts.values():
                total = acc.total_wallet()
                expected = acc.ledger.expected_total()
                assert total == expected, (acc.id, total, expected, acc.ledger)

    def replay(self) -> list[Event]:
        """The same lines through ``simulate_lines``: the events must be identical."""
        return list(simulate_lines(json.dumps(_jsonable(x)) for x in self.lines))


def of_type(events: Iterable[Event], kind: str) -> list[Event]:
    return [e for e in events if e["type"] == kind]


def one(events: Iterable[Event], kind: str) -> Event:
    found = of_type(events, kind)
    assert len(found) == 1, (kind, events)
    return found[0]


def types(events: Iterable[Event]) -> list[str]:
    return [e["type"] for e in events]


def rejected(events: Iterable[Event]) -> Event:
    """The single ``order_rejected`` of ``events``; its code must be one of docs/contracts.md §2."""
    ev = one(events, "order_rejected")
    assert ev["code"] in CODES, ev
    return ev
