"""Rejection codes returned by guards and order admission (docs/contracts.md §2).

``CATEGORY_CONDITION`` names, as nautilus_trader spells risk denials. Binance and Bybit error codes
that each mirrors are given where there is one.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Code"]


class Code(StrEnum):
    INVALID_ORDER = "INVALID_ORDER"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    LEVERAGE_EXCEEDS_MAX = "LEVERAGE_EXCEEDS_MAX"  # Binance -2027 / -4028, Bybit 110013
    MARGIN_INSUFFICIENT = "MARGIN_INSUFFICIENT"  # Binance -2019 / -2028 / -4051
    REDUCE_ONLY_NO_POSITION = "REDUCE_ONLY_NO_POSITION"  # Binance -2022, Bybit 110017
    REDUCE_ONLY_WOULD_INCREASE_POSITION = "REDUCE_ONLY_WOULD_INCREASE_POSITION"  # -2022 / -4118
    NOTIONAL_EXCEEDS_MAX = "NOTIONAL_EXCEEDS_MAX"
    EXPOSURE_EXCEEDS_MAX = "EXPOSURE_EXCEEDS_MAX"
    STOP_LOSS_REQUIRED = "STOP_LOSS_REQUIRED"
    TRADING_STATE_REDUCING = "TRADING_STATE_REDUCING"
    TRADING_HALTED = "TRADING_HALTED"
    MARGIN_MODE_CHANGE_WITH_OPEN_POSITION = "MARGIN_MODE_CHANGE_WITH_OPEN_POSITION"  # -4047/-4048
    ORDER_WOULD_TRIGGER_IMMEDIATELY = "ORDER_WOULD_TRIGGER_IMMEDIATELY"  # Binance -2021 / -4142
    PRICE_STALE = "PRICE_STALE"
    # Binance -4067 (open orders) / -4068 (position), Bybit 110024 / 110028
    POSITION_MODE_CHANGE_WITH_OPEN_POSITION = "POSITION_MODE_CHANGE_WITH_OPEN_POSITION"
    POSITION_SIDE_REQUIRED = "POSITION_SIDE_REQUIRED"  # hedged account, no params.positionSide
    MIRROR_READ_ONLY = (
        "MIRROR_READ_ONLY"  # the account mirrors a real one: guardbot never changes it
    )
    # an attached stop-loss farther from the price than the position's stop, which it would
    # replace, without params.widenStopLoss (no venue code: a venue replaces it silently)
    STOP_LOSS_WOULD_WIDEN = "STOP_LOSS_WOULD_WIDEN"
