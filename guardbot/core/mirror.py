"""The ``mirror`` input: what an exchange reports about a real account, in neutral terms.

A mirrored account is never traded by the engine. The adapter that follows the exchange
(:mod:`guardbot.mirror`) turns ccxt's positions, balance and open orders into one
:class:`MirrorCmd`, a complete, immutable picture of the account; the engine replaces the
account's wallet, positions and protective orders with it. Because it is complete (not a delta),
journaling it is enough for a restart or a replay to rebuild the same state.

JSON form (journal, ``simulate``), every number an exact string::

    {"type": "mirror", "account": "main", "wallet": "10000", "hedged": false,
     "positions": [{"symbol": "BTC/USDT:USDT", "side": "long", "contracts": "0.5",
                    "entryPrice": "60000", "leverage": "20", "marginMode": "cross",
                    "isolatedWallet": "0", "liquidationPrice": "40160.64"}],
     "orders": [{"id": "42", "symbol": "BTC/USDT:USDT", "kind": "stop_loss", "side": "sell",
                 "triggerPrice": "55000", "amount": "0.5", "positionSide": null,
                 "reduceOnly": true}],
     "closes": [{"symbol": "BTC/USDT:USDT", "side": "long", "reason": "liquidation"}],
     "source": "rest"}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from guardbot.core.keys import check_keys
from guardbot.core.num import fmt, parse_decimal, shown
from guardbot.errors import InputError

__all__ = [
    "CLOSE_REASONS",
    "ORDER_KINDS",
    "MirrorClose",
    "MirrorCmd",
    "MirrorOrder",
    "MirrorPosition",
    "MirrorState",
    "mirror_to_json",
    "parse_mirror",
]

#: Why the exchange closed a position, as far as it tells (``unknown`` when it does not).
CLOSE_REASONS = ("liquidation", "adl", "stop_loss", "take_profit", "order", "unknown")
#: Protective orders the mirror keeps (plain limit orders guard nothing).
ORDER_KINDS = ("stop_loss", "take_profit", "trailing_stop")


@dataclass(frozen=True, slots=True)
class MirrorPosition:
    symbol: str
    side: str  # long | short
    contracts: Decimal  # > 0
    entry_price: Decimal
    leverage: Decimal
    margin_mode: str  # cross | isolated
    isolated_wallet: Decimal  # 0 for cross
    liquidation_price: Decimal | None  # the exchange's own figure, None if it gave none
    hedged: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.symbol, self.side)


@dataclass(frozen=True, slots=True)
class MirrorOrder:
    id: str
    symbol: str
    kind: str  # one of ORDER_KINDS
    side: str  # buy | sell
    trigger_price: Decimal | None
    amount: Decimal | None  # None: closes the whole position (Binance closePosition)
    position_side: str | None = None  # long | short in hedge mode
    reduce_only: bool = True


@dataclass(frozen=True, slots=True)
class MirrorClose:
    symbol: str
    side: str
    reason: str  # one of CLOSE_REASONS


@dataclass(frozen=True, slots=True)
class MirrorCmd:
    account: str
    wallet: Decimal  # the cross wallet balance (isolated wallets are the positions')
    positions: tuple[MirrorPosition, ...] = ()
    orders: tuple[MirrorOrder, ...] = ()
    closes: tuple[MirrorClose, ...] = ()
    hedged: bool = False
    source: str = "rest"  # rest | stream: what the last change came from

    def same_state(self, other: MirrorCmd | None) -> bool:
        """Equal account state (the origin and close reasons aside)."""
        return (
            other is not None
            and self.account == other.account
            and self.wallet == other.wallet
            and self.positions == other.positions
            and self.orders == other.orders
            and self.hedged == other.hedged
        )


# ---- JSON ---------------------------------------------------------------------------------------


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def mirror_to_json(cmd: MirrorCmd) -> dict[str, Any]:
    return {
        "type": "mirror",
        "account": cmd.account,
        "wallet": fmt(cmd.wallet),
        "hedged": cmd.hedged,
        "positions": [
            {
                "symbol": p.symbol,
                "side": p.side,
                "contracts": fmt(p.contracts),
                "entryPrice": fmt(p.entry_price),
                "leverage": fmt(p.leverage),
                "marginMode": p.margin_mode,
                "isolatedWallet": fmt(p.isolated_wallet),
                "liquidationPrice": _opt(p.liquidation_price),
                "hedged": p.hedged,
            }
            for p in cmd.positions
        ],
        "orders": [
            {
                "id": o.id,
                "symbol": o.symbol,
                "kind": o.kind,
                "side": o.side,
                "triggerPrice": _opt(o.trigger_price),
                "amount": _opt(o.amount),
                "positionSide": o.position_side,
                "reduceOnly": o.reduce_only,
            }
            for o in cmd.orders
        ],
        "closes": [{"symbol": c.symbol, "side": c.side, "reason": c.reason} for c in cmd.closes],
        "source": cmd.source,
    }


def _text(obj: Mapping[str, object], key: str, choices: Sequence[str] | None = None) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(key, f"must be a non-empty string, got {shown(value)}")
    if choices is not None and value not in choices:
        raise InputError(key, f"must be one of {', '.join(choices)}, got {shown(value)}")
    return value


def _dec(obj: Mapping[str, object], key: str, *, minimum: str | None = "0") -> Decimal:
    if obj.get(key) is None:
        raise InputError(key, "is required")
    value = parse_decimal(obj[key], key)
    if minimum is not None and value < Decimal(minimum):
        raise InputError(key, f"must be >= {minimum}, got {shown(obj[key])}")
    return value


def _opt_dec(obj: Mapping[str, object], key: str) -> Decimal | None:
    if obj.get(key) is None:
        return None
    value = parse_decimal(obj[key], key)
    if value <= 0:
        raise InputError(key, f"must be > 0, got {shown(obj[key])}")
    return value


def _flag(obj: Mapping[str, object], key: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise InputError(key, f"must be true or false, got {shown(value)}")
    return value


def _items(obj: Mapping[str, object], key: str) -> list[Mapping[str, object]]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise InputError(key, f"must be a list, got {shown(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise InputError(f"{key}[{i}]", f"must be an object, got {shown(item)}")
    return value


def _position(obj: Mapping[str, object]) -> MirrorPosition:
    check_keys(
        obj,
        {
            "symbol",
            "side",
            "contracts",
            "entryPrice",
            "leverage",
            "marginMode",
            "isolatedWallet",
            "liquidationPrice",
            "hedged",
        },
    )
    contracts = _dec(obj, "contracts")
    if contracts <= 0:
        raise InputError("contracts", f"must be > 0, got {shown(obj['contracts'])}")
    leverage = _dec(obj, "leverage", minimum="1")
    return MirrorPosition(
        symbol=_text(obj, "symbol"),
        side=_text(obj, "side", ("long", "short")),
        contracts=contracts,
        entry_price=_dec(obj, "entryPrice"),
        leverage=leverage,
        margin_mode=_text(obj, "marginMode", ("cross", "isolated")),
        isolated_wallet=_dec(obj, "isolatedWallet"),
        liquidation_price=_opt_dec(obj, "liquidationPrice"),
        hedged=_flag(obj, "hedged", False),
    )


def _order(obj: Mapping[str, object]) -> MirrorOrder:
    check_keys(
        obj,
        {"id", "symbol", "kind", "side", "triggerPrice", "amount", "positionSide", "reduceOnly"},
    )
    position_side = obj.get("positionSide")
    if position_side is not None and position_side not in ("long", "short"):
        raise InputError("positionSide", f"must be long, short or null, got {shown(position_side)}")
    return MirrorOrder(
        id=_text(obj, "id"),
        symbol=_text(obj, "symbol"),
        kind=_text(obj, "kind", ORDER_KINDS),
        side=_text(obj, "side", ("buy", "sell")),
        trigger_price=_opt_dec(obj, "triggerPrice"),
        amount=_opt_dec(obj, "amount"),
        position_side=position_side if isinstance(position_side, str) else None,
        reduce_only=_flag(obj, "reduceOnly", True),
    )


def _close(obj: Mapping[str, object]) -> MirrorClose:
    check_keys(obj, {"symbol", "side", "reason"})
    return MirrorClose(
        _text(obj, "symbol"),
        _text(obj, "side", ("long", "short")),
        _text(obj, "reason", CLOSE_REASONS),
    )


def parse_mirror(obj: Mapping[str, object]) -> MirrorCmd:
    """Parse the JSON form; unknown keys, bad types and impossible values are refused."""
    check_keys(
        obj,
        {"type", "ts", "account", "wallet", "hedged", "positions", "orders", "closes", "source"},
    )
    parsed: list[Any] = []
    for key, parse in (("positions", _position), ("orders", _order), ("closes", _close)):
        items = []
        for i, item in enumerate(_items(obj, key)):
            try:
                items.append(parse(item))
            except InputError as exc:
                raise exc.under(f"{key}[{i}]") from None
        parsed.append(tuple(items))
    positions, orders, closes = parsed
    keys = [p.key for p in positions]
    if len(set(keys)) != len(keys):
        raise InputError("positions", "lists a symbol and side twice")
    return MirrorCmd(
        account=_text(obj, "account"),
        wallet=_dec(obj, "wallet", minimum=None),
        positions=positions,
        orders=orders,
        closes=closes,
        hedged=_flag(obj, "hedged", False),
        source=_text(obj, "source", ("rest", "stream")) if "source" in obj else "rest",
    )


# ---- the engine's side --------------------------------------------------------------------------


@dataclass(slots=True)
class MirrorState:
    """What the engine keeps about a mirrored account besides its wallet and positions."""

    tolerance: Decimal  # |guardbot's - exchange's liquidation price| allowed, as a share of mark
    #: ms of input time a drift must last (beyond tolerance at every evaluation) before
    #: mirror_drift is raised (``mirror_drift_confirm_s``)
    confirm_ms: int = 0
    orders: tuple[MirrorOrder, ...] = ()
    hedged: bool = False
    #: the exchange's liquidation price of each modelled position (None: it gave none)
    exchange_liquidation: dict[str, Decimal | None] = field(default_factory=dict)
    #: guardbot's at the last comparison, and (guardbot's - exchange's) / mark
    liquidation: dict[str, Decimal | None] = field(default_factory=dict)
    drift: dict[str, Decimal | None] = field(default_factory=dict)
    #: positions whose symbol has no price (or no tier table) yet: kept, not evaluated
    unpriced: dict[str, MirrorPosition] = field(default_factory=dict)
    #: alerts raised once until their condition clears: drifting symbols, scopes whose
    #: liquidation is imminent ("" for the cross part), guard violations by rule and symbol
    drifting: set[str] = field(default_factory=set)
    #: positions beyond tolerance, not yet alerted: the input time (ms) since which they are
    pending: dict[str, int] = field(default_factory=dict)
    imminent: set[str] = field(default_factory=set)
    violations: set[str] = field(default_factory=set)
    #: the UTC day and the total wallet at its first update (the daily loss is measured from it)
    day: int | None = None
    day_start_wallet: Decimal | None = None
    updates: int = 0
