"""ccxt's side of the paper exchange: its arguments and params in, its exceptions out.

ccxt numbers (float, int, decimal string) become exact Decimals once, here; ccxt order params
become the engine's order params (the mapping is tabled in examples/strategies/README.md); the
engine's refusal codes become the ccxt exceptions a real exchange's equivalent error maps to.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import ccxt

from guardbot.core.codes import Code
from guardbot.core.num import fmt

__all__ = [
    "CODE_EXCEPTIONS",
    "Number",
    "exception_for",
    "order_params",
    "order_side",
    "order_type",
]

#: A number as ccxt methods take it (ccxt also accepts decimal strings).
Number = float | str | Decimal

#: Guard and admission codes -> the ccxt exception a real exchange's equivalent error maps to
#: (ccxt's binance ``exceptions`` table where Binance has the error: -2019, -2021, -2022, -2027).
CODE_EXCEPTIONS: Mapping[str, type[Exception]] = MappingProxyType(
    {
        Code.INVALID_ORDER: ccxt.InvalidOrder,
        Code.UNKNOWN_SYMBOL: ccxt.BadSymbol,
        Code.LEVERAGE_EXCEEDS_MAX: ccxt.OperationRejected,
        Code.MARGIN_INSUFFICIENT: ccxt.InsufficientFunds,
        Code.REDUCE_ONLY_NO_POSITION: ccxt.InvalidOrder,
        Code.REDUCE_ONLY_WOULD_INCREASE_POSITION: ccxt.InvalidOrder,
        Code.NOTIONAL_EXCEEDS_MAX: ccxt.OperationRejected,
        Code.EXPOSURE_EXCEEDS_MAX: ccxt.OperationRejected,
        Code.STOP_LOSS_REQUIRED: ccxt.InvalidOrder,
        Code.TRADING_STATE_REDUCING: ccxt.OperationRejected,
        Code.TRADING_HALTED: ccxt.OperationRejected,
        Code.MARGIN_MODE_CHANGE_WITH_OPEN_POSITION: ccxt.OperationRejected,
        Code.ORDER_WOULD_TRIGGER_IMMEDIATELY: ccxt.OrderImmediatelyFillable,
        # transient (the feed lost the price): a NetworkError, which strategies retry
        Code.PRICE_STALE: ccxt.ExchangeNotAvailable,
        # Binance -4067/-4068 (position mode with open orders/positions), -4061 (position side)
        Code.POSITION_MODE_CHANGE_WITH_OPEN_POSITION: ccxt.BadRequest,
        Code.POSITION_SIDE_REQUIRED: ccxt.InvalidOrder,
        # a strategy on the paper exchange never trades a mirror account
        Code.MIRROR_READ_ONLY: ccxt.PermissionDenied,
        Code.STOP_LOSS_WOULD_WIDEN: ccxt.InvalidOrder,
    }
)

# Parameters with no effect on a one-way USDT-margined paper account (accepted and ignored).
_IGNORED_PARAMS = frozenset(
    {"newOrderRespType", "workingType", "priceProtect", "selfTradePrevention"}
)
_ORDER_PARAMS = frozenset(
    {
        "reduceOnly",
        "stopLossPrice",
        "takeProfitPrice",
        "triggerPrice",
        "stopPrice",
        "stopLoss",
        "takeProfit",
        "trailingPercent",
        "trailingTriggerPrice",
        "triggerDirection",
        "triggerPriceType",
        "timeInForce",
        "postOnly",
        "leverage",
        "marginMode",
        "clientOrderId",
        "positionSide",
        "hedged",
        "widenStopLoss",  # guardbot's: an attached stopLoss may replace a tighter one
    }
)


def exception_for(code: str, reason: str) -> Exception:
    """The ccxt exception for a guard ``code``; the message starts with the code."""
    cls = CODE_EXCEPTIONS.get(code, ccxt.ExchangeError)
    error: Exception = cls(f"guardbot {code}: {reason}")
    return error


def _dec(value: object, name: str) -> Decimal:
    """A ccxt numeric argument (float, int, str, Decimal) as an exact Decimal."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ccxt.BadRequest(f"guardbot: {name} must be a number, got {value!r}")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation:
        raise ccxt.BadRequest(f"guardbot: {name} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ccxt.BadRequest(f"guardbot: {name} must be finite, got {value!r}")
    return number


def order_type(type: object) -> str:
    """ccxt's order ``type`` in any case ('MARKET' too: ccxt's binance upper-cases it before
    sending, so venues take either); conditional types go through params on the paper exchange."""
    kind = type.lower() if isinstance(type, str) else type
    if kind not in ("market", "limit"):
        raise ccxt.NotSupported(
            f"guardbot createOrder() supports market and limit orders, got type {type!r}"
            " (use params.triggerPrice / stopLossPrice / trailingPercent for conditional ones)"
        )
    return str(kind)


def order_side(side: object) -> str:
    """ccxt's order ``side`` in any case ('BUY' too, as ccxt's binance sends it)."""
    value = side.lower() if isinstance(side, str) else side
    if value not in ("buy", "sell"):
        raise ccxt.InvalidOrder(f"guardbot createOrder() side must be buy or sell, got {side!r}")
    return str(value)


def _opt_dec(params: Mapping[str, Any], key: str) -> Decimal | None:
    value = params.get(key)
    return None if value is None else _dec(value, f"params.{key}")


def order_params(
    side: str, params: Mapping[str, Any], *, close_only_stops: bool = True
) -> tuple[dict[str, Any], str | None, Decimal | None]:
    """ccxt order params -> (engine params, margin mode, leverage); the mapping is tabled in
    examples/strategies/README.md. ``close_only_stops`` (the guard of that name) makes every
    stand-alone stop-loss and take-profit order reduce-only."""
    for key in params:
        if key not in _ORDER_PARAMS and key not in _IGNORED_PARAMS:
            raise ccxt.NotSupported(f"guardbot createOrder() does not support params.{key}")
    out: dict[str, Any] = {}
    position_side = params.get("positionSide")
    if position_side is not None:
        # Binance's LONG / SHORT / BOTH, any case; the account's position mode decides
        out["positionSide"] = position_side
    elif params.get("hedged"):
        raise ccxt.ArgumentsRequired(
            "guardbot createOrder() in hedge mode needs params.positionSide (long or short)"
        )
    reduce_only = bool(params.get("reduceOnly", False))
    if reduce_only:
        out["reduceOnly"] = True
    trigger = _opt_dec(params, "triggerPrice")
    if trigger is None:
        trigger = _opt_dec(params, "stopPrice")  # create_stop_order's spelling
    stop_loss = _opt_dec(params, "stopLossPrice")
    take_profit = _opt_dec(params, "takeProfitPrice")
    if stop_loss is not None and take_profit is not None:
        raise ccxt.InvalidOrder(
            "guardbot createOrder() takes one of stopLossPrice and takeProfitPrice (a stand-"
            "alone order); attach both with params.stopLoss and params.takeProfit"
        )
    if stop_loss is not None or take_profit is not None:
        # ccxt's stand-alone stop-loss / take-profit order (type 2)
        if trigger is not None:
            raise ccxt.InvalidOrder(
                "guardbot createOrder(): triggerPrice excludes stopLossPrice/takeProfitPrice"
            )
        if reduce_only or close_only_stops:
            # reduce-only: cancelled with its position, never opening one when it fires late
            out["reduceOnly"] = True
            out["stopLossPrice" if stop_loss is not None else "takeProfitPrice"] = fmt(
                stop_loss if stop_loss is not None else take_profit  # type: ignore[arg-type]
            )
        else:
            # not reduce-only: a plain conditional order; a stop fires in the direction of
            # its side (a sell stop on a fall), a take-profit against it
            rises = (side == "buy") == (stop_loss is not None)
            trigger = stop_loss if stop_loss is not None else take_profit
            out["triggerDirection"] = "above" if rises else "below"
    if trigger is not None:
        out["triggerPrice"] = fmt(trigger)
        direction = params.get("triggerDirection")
        if direction is not None:
            out["triggerDirection"] = direction
    for key, attached in (("stopLoss", "stopLossPrice"), ("takeProfit", "takeProfitPrice")):
        spec = params.get(key)
        if spec is None:
            continue
        if isinstance(spec, Mapping):
            price = spec.get("triggerPrice")
            if price is None:
                raise ccxt.ArgumentsRequired(
                    f"guardbot createOrder() params.{key} needs a triggerPrice"
                )
            if spec.get("price") is not None or spec.get("type") == "limit":
                raise ccxt.NotSupported(
                    f"guardbot attaches market {key} orders only (no limit price)"
                )
        else:
            price = spec
        # ccxt's attached stop-loss / take-profit (type 3): protects the opened position
        out[attached] = fmt(_dec(price, f"params.{key}.triggerPrice"))
    trailing = _opt_dec(params, "trailingPercent")
    if trailing is not None:
        out["trailingPercent"] = fmt(trailing)
        activation = _opt_dec(params, "trailingTriggerPrice")
        if activation is not None:
            out["trailingTriggerPrice"] = fmt(activation)
    price_type = params.get("triggerPriceType")
    if price_type is not None:
        out["triggerPriceType"] = price_type
    tif = params.get("timeInForce")
    if tif is not None:
        out["timeInForce"] = "PO" if tif == "GTX" else tif  # Binance calls post-only GTX
    if params.get("postOnly"):
        out["postOnly"] = True
    if params.get("widenStopLoss"):
        out["widenStopLoss"] = True
    mode = params.get("marginMode")
    leverage = _opt_dec(params, "leverage")
    return out, (str(mode) if mode is not None else None), leverage
