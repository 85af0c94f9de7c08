"""The further mirror venues' private stand-ins by ccxt id, with the keys each accepts (Binance's
is tests/standin/binance_private.py): one table for the per-venue follower and daemon tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tests.standin import bitget_private, bybit_private, gate_private, mexc_private, okx_private

__all__ = ["PRIVATE_VENUES", "guardbot_env"]

#: ccxt id -> (private stand-in class, the credentials it accepts, as ccxt names them)
PRIVATE_VENUES: dict[str, tuple[Callable[..., Any], dict[str, str]]] = {
    "mexc": (
        mexc_private.StandinMexcPrivate,
        {"apiKey": mexc_private.API_KEY, "secret": mexc_private.SECRET},
    ),
    "gate": (
        gate_private.StandinGatePrivate,
        {"apiKey": gate_private.API_KEY, "secret": gate_private.SECRET},
    ),
    "bitget": (
        bitget_private.StandinBitgetPrivate,
        {
            "apiKey": bitget_private.API_KEY,
            "secret": bitget_private.SECRET,
            "password": bitget_private.PASSPHRASE,
        },
    ),
    "bybit": (
        bybit_private.StandinBybitPrivate,
        {"apiKey": bybit_private.API_KEY, "secret": bybit_private.SECRET},
    ),
    "okx": (
        okx_private.StandinOkxPrivate,
        {
            "apiKey": okx_private.API_KEY,
            "secret": okx_private.SECRET,
            "password": okx_private.PASSPHRASE,
        },
    ),
}

_ENV_NAMES = {
    "apiKey": "GUARDBOT_EXCHANGE_API_KEY",
    "secret": "GUARDBOT_EXCHANGE_SECRET",
    "password": "GUARDBOT_EXCHANGE_PASSWORD",
}


def guardbot_env(credentials: Mapping[str, str]) -> dict[str, str]:
    """The daemon's default environment variables holding ``credentials``."""
    return {_ENV_NAMES[name]: value for name, value in credentials.items()}
