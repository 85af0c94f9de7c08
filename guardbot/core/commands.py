"""Engine inputs: ticks and commands, parsed and validated from JSON-like objects.

The same parser serves ``guardbot simulate`` (JSON Lines), the daemon's MQTT command topic and the
paper exchange, so a malformed command is refused with the same message everywhere. Shape errors
(missing field, not a number, NaN, a non-positive amount) raise :class:`InputError`; whether an
order may trade is the engine's decision and comes back as an ``order_rejected`` event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from guardbot.core.keys import check_keys
from guardbot.core.mirror import MirrorCmd, parse_mirror
from guardbot.core.num import parse_decimal, shown
from guardbot.core.tiers import CCXT_TIER_EXTRAS, TIER_ROW_FIELDS, TierTable
from guardbot.errors import InputError

__all__ = [
    "COMMAND_FIELDS",
    "ORDER_PARAMS",
    "PASS_THROUGH_PARAMS",
    "BalanceCmd",
    "CancelCmd",
    "Command",
    "FundingCmd",
    "MarginCmd",
    "OrderCmd",
    "SetLeverageCmd",
    "SetMarginModeCmd",
    "SetPositionModeCmd",
    "SetTradingStateCmd",
    "TickCmd",
    "TierInput",
    "TiersCmd",
    "parse_command",
]


@dataclass(frozen=True, slots=True)
class TickCmd:
    symbol: str
    mark: Decimal
    last: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    index: Decimal | None = None
    funding_rate: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderCmd:
    account: str | None
    id: str
    symbol: str
    order_type: str  # market | limit
    side: int  # +1 buy, -1 sell
    amount: Decimal
    price: Decimal | None = None
    reduce_only: bool = False
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    trigger_price: Decimal | None = None
    trigger_direction: int = 0  # 0: infer from the side (a stop)
    trigger_price_type: str | None = None  # mark | last; None: the engine's default
    trailing_percent: Decimal | None = None
    trailing_trigger_price: Decimal | None = None
    time_in_force: str = "GTC"
    post_only: bool = False
    #: ``params.positionSide``: None (absent or ``both``: one-way), ``long`` or ``short``.
    position_side: str | None = None
    #: ``params.positionSide`` was given and is not long, short or both: INVALID_ORDER.
    position_side_invalid: str | None = None
    #: ``params.widenStopLoss``: the attached stop-loss may replace a tighter one.
    widen_stop_loss: bool = False


@dataclass(frozen=True, slots=True)
class CancelCmd:
    account: str | None
    id: str


@dataclass(frozen=True, slots=True)
class SetLeverageCmd:
    account: str | None
    symbol: str
    leverage: Decimal


@dataclass(frozen=True, slots=True)
class SetMarginModeCmd:
    account: str | None
    symbol: str
    margin_mode: str


@dataclass(frozen=True, slots=True)
class SetPositionModeCmd:
    account: str | None
    position_mode: str  # oneway | hedged


@dataclass(frozen=True, slots=True)
class MarginCmd:
    account: str | None
    symbol: str
    amount: Decimal
    add: bool
    position_side: str | None = None  # which side of a hedged account


@dataclass(frozen=True, slots=True)
class BalanceCmd:
    account: str | None
    amount: Decimal
    deposit: bool


@dataclass(frozen=True, slots=True)
class FundingCmd:
    symbol: str
    rate: Decimal


@dataclass(frozen=True, slots=True)
class SetTradingStateCmd:
    account: str | None
    state: str
    reason: str


@dataclass(frozen=True, slots=True)
class TierInput:
    """One symbol's tier table as a ``tiers`` input carries it: ccxt rows (validated, only the
    fields guardbot reads), the contract size (None: the one in force stays) and where the table
    came from (``source``: ``exchange``, ``cache``, ``cache-stale``, ``bundled <asOf>``, ...;
    ``asOf``: when it was fetched, or the snapshot's date), which the engine keeps as state."""

    symbol: str
    rows: tuple[Mapping[str, object], ...]
    contract_size: Decimal | None = None
    source: str | None = None
    as_of: str | None = None


@dataclass(frozen=True, slots=True)
class TiersCmd:
    """Replace these symbols' tier tables (and contract sizes); the others stay."""

    tables: tuple[TierInput, ...]


Command = (
    TickCmd
    | OrderCmd
    | CancelCmd
    | SetLeverageCmd
    | SetMarginModeCmd
    | SetPositionModeCmd
    | MarginCmd
    | BalanceCmd
    | FundingCmd
    | SetTradingStateCmd
    | MirrorCmd
    | TiersCmd
)

_TIME_IN_FORCE = {"GTC", "IOC", "FOK", "PO"}

#: The fields of each input type (``ts`` on every line of ``simulate``); any other key is refused,
#: naming the closest known one, so a typo never silently changes the result.
COMMAND_FIELDS: Mapping[str, frozenset[str]] = {
    kind: frozenset({"type", "ts", *fields})
    for kind, fields in {
        "tick": ("symbol", "mark", "last", "bid", "ask", "index", "fundingRate"),
        "order": ("account", "id", "symbol", "orderType", "side", "amount", "price", "params"),
        "cancel": ("account", "id"),
        "set_leverage": ("account", "symbol", "leverage"),
        "set_margin_mode": ("account", "symbol", "marginMode"),
        "set_position_mode": ("account", "positionMode"),
        "add_margin": ("account", "symbol", "amount", "positionSide"),
        "reduce_margin": ("account", "symbol", "amount", "positionSide"),
        "deposit": ("account", "amount"),
        "withdraw": ("account", "amount"),
        "funding": ("symbol", "rate"),
        "set_trading_state": ("account", "state", "reason"),
        "tiers": ("tables",),
    }.items()
}
#: The fields of one symbol's entry in a ``tiers`` input's ``tables``.
TIER_INPUT_FIELDS = frozenset({"tiers", "contractSize", "source", "asOf"})
#: The order ``params`` guardbot models (ccxt's unified names).
ORDER_PARAMS = frozenset(
    {
        "reduceOnly",
        "stopLossPrice",
        "takeProfitPrice",
        "triggerPrice",
        "triggerDirection",
        "triggerPriceType",
        "trailingPercent",
        "trailingTriggerPrice",
        "timeInForce",
        "postOnly",
        "positionSide",
        "widenStopLoss",  # guardbot's own: see Code.STOP_LOSS_WOULD_WIDEN
    }
)
#: ccxt order params that venues know and guardbot does not model, accepted and ignored because
#: they change no fill, price or position: the shape of the venue's response and self-trade
#: prevention (guardbot's book holds one account's orders, which never meet each other).
#: Anything else unknown is refused: an ignored ``workingType`` or ``marginMode`` would give a
#: silently different result.
PASS_THROUGH_PARAMS = frozenset(
    {"newOrderRespType", "selfTradePrevention", "selfTradePreventionMode"}
)


def _str(obj: Mapping[str, object], key: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InputError(key, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(key, f"must be a non-empty string, got {shown(value)}")
    return value


def _symbol(obj: Mapping[str, object]) -> str:
    symbol = _str(obj, "symbol")
    assert symbol is not None
    return symbol


def _num(
    obj: Mapping[str, object], key: str, *, required: bool = True, positive: bool = True
) -> Decimal | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InputError(key, "is required")
        return None
    number = parse_decimal(value, key)
    if positive and number <= 0:
        raise InputError(key, f"must be > 0, got {shown(value)}")
    return number


def _req_num(obj: Mapping[str, object], key: str, *, positive: bool = True) -> Decimal:
    number = _num(obj, key, positive=positive)
    assert number is not None
    return number


def _bool(obj: Mapping[str, object], key: str) -> bool:
    value = obj.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(key, f"must be true or false, got {shown(value)}")
    return value


def _choice(
    obj: Mapping[str, object], key: str, choices: tuple[str, ...], *, any_case: bool = False
) -> str:
    value = obj.get(key)
    if value is None:
        raise InputError(key, f"is required (one of {', '.join(choices)})")
    if any_case and isinstance(value, str) and value.lower() in choices:
        # ccxt's venues take 'MARKET' / 'BUY' as well as the unified lower case.
        return value.lower()
    if value not in choices:
        raise InputError(key, f"must be one of {', '.join(choices)}, got {shown(value)}")
    assert isinstance(value, str)
    return value


def _position_side(obj: Mapping[str, object]) -> tuple[str | None, str | None]:
    """``positionSide`` case-insensitively (ccxt's Binance param is ``LONG``/``SHORT``/``BOTH``):
    (long | short | None, the raw value when it names no side)."""
    value = obj.get("positionSide")
    if value is None:
        return None, None
    if not isinstance(value, str):
        raise InputError("positionSide", f"must be long, short or both, got {shown(value)}")
    side = value.lower()
    if side in ("long", "short"):
        return side, None
    if side == "both":
        return None, None
    return None, value


def parse_tick(obj: Mapping[str, object]) -> TickCmd:
    return TickCmd(
        symbol=_symbol(obj),
        mark=_req_num(obj, "mark"),
        last=_num(obj, "last", required=False),
        bid=_num(obj, "bid", required=False),
        ask=_num(obj, "ask", required=False),
        index=_num(obj, "index", required=False),
        funding_rate=_num(obj, "fundingRate", required=False, positive=False),
    )


def parse_order(obj: Mapping[str, object]) -> OrderCmd:
    order_id = obj.get("id")
    if isinstance(order_id, bool) or not isinstance(order_id, (str, int)) or order_id == "":
        raise InputError(
            "id", f"must be a non-empty string (client order id), got {shown(order_id)}"
        )
    order_type = _choice(obj, "orderType", ("market", "limit"), any_case=True)
    side = _choice(obj, "side", ("buy", "sell"), any_case=True)
    amount = _req_num(obj, "amount")
    price = _num(obj, "price", required=False)
    if order_type == "limit" and price is None:
        raise InputError("price", "is required for a limit order")
    params = obj.get("params") or {}
    if not isinstance(params, Mapping):
        raise InputError("params", f"must be an object, got {shown(params)}")
    check_keys(params, ORDER_PARAMS, "params", ignored=PASS_THROUGH_PARAMS)
    try:
        tif = params.get("timeInForce", "GTC")
        if tif not in _TIME_IN_FORCE:
            raise InputError("timeInForce", f"must be one of GTC, IOC, FOK, PO, got {shown(tif)}")
        post_only = _bool(params, "postOnly") or tif == "PO"
        direction = params.get("triggerDirection")
        if direction is None:
            trigger_direction = 0
        elif direction in ("above", "up", "ascending"):
            trigger_direction = 1
        elif direction in ("below", "down", "descending"):
            trigger_direction = -1
        else:
            raise InputError("triggerDirection", f"must be above or below, got {shown(direction)}")
        price_type = params.get("triggerPriceType")
        if price_type is not None and price_type not in ("mark", "last"):
            raise InputError("triggerPriceType", f"must be mark or last, got {shown(price_type)}")
        position_side, invalid_side = _position_side(params)
        trailing = _num(params, "trailingPercent", required=False)
        if trailing is not None and trailing >= 100:
            raise InputError("trailingPercent", f"must be > 0 and < 100, got {trailing}")
        cmd = OrderCmd(
            account=_str(obj, "account", required=False),
            id=str(order_id),
            symbol=_symbol(obj),
            order_type=order_type,
            side=1 if side == "buy" else -1,
            amount=amount,
            price=price,
            reduce_only=_bool(params, "reduceOnly"),
            stop_loss_price=_num(params, "stopLossPrice", required=False),
            take_profit_price=_num(params, "takeProfitPrice", required=False),
            trigger_price=_num(params, "triggerPrice", required=False),
            trigger_direction=trigger_direction,
            trigger_price_type=price_type if isinstance(price_type, str) else None,
            trailing_percent=trailing,
            trailing_trigger_price=_num(params, "trailingTriggerPrice", required=False),
            time_in_force="PO" if post_only and tif == "GTC" else str(tif),
            post_only=post_only,
            position_side=position_side,
            position_side_invalid=invalid_side,
            widen_stop_loss=_bool(params, "widenStopLoss"),
        )
    except InputError as exc:
        if exc.field in {"account", "symbol", "id"}:
            raise
        raise exc.under("params") from None
    return cmd


def parse_tiers(obj: Mapping[str, object], *, strict: bool = True) -> TiersCmd:
    """A ``tiers`` input: ``{"type": "tiers", "tables": {symbol: {"tiers": [ccxt rows],
    "contractSize", "source", "asOf"}}}`` (docs/contracts.md §2). The rows are validated here
    (the maintenance amount is derived by the engine, whose profile says whether to)."""
    raw = obj.get("tables")
    if not isinstance(raw, Mapping) or not raw:
        raise InputError(
            "tables", f"must be a non-empty object of symbol -> table, got {shown(raw)}"
        )
    out: list[TierInput] = []
    for symbol, entry in raw.items():
        where = f"tables[{json.dumps(symbol)}]"
        if not isinstance(symbol, str) or not symbol.strip():
            raise InputError(where, "the symbol must be a non-empty string")
        if not isinstance(entry, Mapping):
            raise InputError(where, f"must be an object, got {shown(entry)}")
        try:
            if strict:
                check_keys(entry, TIER_INPUT_FIELDS)
            rows = entry.get("tiers")
            if isinstance(rows, (list, tuple)):
                for i, row in enumerate(rows):
                    if strict and isinstance(row, Mapping):
                        check_keys(row, TIER_ROW_FIELDS, f"tiers[{i}]", ignored=CCXT_TIER_EXTRAS)
            try:
                TierTable.from_ccxt(symbol, rows)
            except InputError as exc:
                raise exc.under("tiers") from None
            assert isinstance(rows, (list, tuple))
            clean = tuple(
                {k: v for k, v in row.items() if k in TIER_ROW_FIELDS}
                for row in rows
                if isinstance(row, Mapping)
            )
            out.append(
                TierInput(
                    symbol=symbol,
                    rows=clean,
                    contract_size=_num(entry, "contractSize", required=False),
                    source=_str(entry, "source", required=False),
                    as_of=_str(entry, "asOf", required=False),
                )
            )
        except InputError as exc:
            raise exc.under(where) from None
    return TiersCmd(tuple(out))


def parse_command(obj: Mapping[str, object], *, strict: bool = True) -> Command:
    """Parse one input object by its ``type``; field paths in errors are relative to ``obj``.

    ``strict``: refuse keys the type does not have (every input); False only to read back
    journals written before unknown keys were refused.
    """
    kind = obj.get("type")
    if strict and isinstance(kind, str) and kind in COMMAND_FIELDS:
        check_keys(obj, COMMAND_FIELDS[kind])
    if not strict and kind == "order" and isinstance(obj.get("params"), Mapping):
        params = obj["params"]
        assert isinstance(params, Mapping)
        obj = {**obj, "params": {k: v for k, v in params.items() if k in ORDER_PARAMS}}
    if kind == "tick":
        return parse_tick(obj)
    if kind == "order":
        return parse_order(obj)
    if kind == "mirror":  # what an exchange reports of a mirror account (guardbot.core.mirror)
        return parse_mirror(obj)
    if kind == "tiers":  # the tier tables in force (guardbot.core.tier_inputs)
        return parse_tiers(obj, strict=strict)
    account = _str(obj, "account", required=False)
    if kind == "cancel":
        order_id = obj.get("id")
        if isinstance(order_id, bool) or not isinstance(order_id, (str, int)) or order_id == "":
            raise InputError("id", f"must be a non-empty string, got {shown(order_id)}")
        return CancelCmd(account, str(order_id))
    if kind == "set_leverage":
        # Not _req_num's "> 0": leverage 0 and 0.5 get the same ">= 1".
        leverage = _req_num(obj, "leverage", positive=False)
        if leverage < 1:
            raise InputError("leverage", f"must be >= 1, got {shown(obj.get('leverage'))}")
        return SetLeverageCmd(account, _symbol(obj), leverage)
    if kind == "set_margin_mode":
        mode = _choice(obj, "marginMode", ("cross", "isolated"))
        return SetMarginModeCmd(account, _symbol(obj), mode)
    if kind == "set_position_mode":
        return SetPositionModeCmd(account, _choice(obj, "positionMode", ("oneway", "hedged")))
    if kind in ("add_margin", "reduce_margin"):
        side, invalid = _position_side(obj)
        if invalid is not None:
            raise InputError("positionSide", f"must be long, short or both, got {shown(invalid)}")
        amount = _req_num(obj, "amount")
        return MarginCmd(account, _symbol(obj), amount, kind == "add_margin", side)
    if kind in ("deposit", "withdraw"):
        return BalanceCmd(account, _req_num(obj, "amount"), kind == "deposit")
    if kind == "funding":
        return FundingCmd(_symbol(obj), _req_num(obj, "rate", positive=False))
    if kind == "set_trading_state":
        state = _choice(obj, "state", ("active", "reducing", "halted"))
        reason = obj.get("reason", "set by command")
        if not isinstance(reason, str):
            raise InputError("reason", f"must be a string, got {shown(reason)}")
        return SetTradingStateCmd(account, state, reason)
    if kind is None:
        raise InputError("type", "is required")
    raise InputError("type", f"unknown type {shown(kind)}")
