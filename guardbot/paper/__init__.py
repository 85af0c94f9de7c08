"""Dry-run strategies: a ccxt-compatible paper exchange on the engine, strategies and a runner."""

from guardbot.paper.exchange import (
    ApplyFn,
    PaperExchange,
    engine_apply,
    exception_for,
    journaled_apply,
)
from guardbot.paper.runner import StrategyError, StrategyRunner
from guardbot.paper.strategy import Strategy, StrategyLoadError, load_strategy

__all__ = [
    "ApplyFn",
    "PaperExchange",
    "Strategy",
    "StrategyError",
    "StrategyLoadError",
    "StrategyRunner",
    "engine_apply",
    "exception_for",
    "journaled_apply",
    "load_strategy",
]
