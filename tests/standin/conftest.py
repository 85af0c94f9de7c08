"""Fixtures for the local exchange stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.standin.binance import StandinBinance


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[StandinBinance]:
    """A started Binance USDⓈ-M stand-in listing BTC/USDT:USDT and ETH/USDT:USDT."""
    async with StandinBinance(("BTC/USDT:USDT", "ETH/USDT:USDT")) as server:
        yield server
