"""Dry-run strategies: a ccxt-compatible paper exchange on the engine, strategies and a runner."""

from guardbot.paper.apply import ApplyFn, engine_apply, journaled_apply
from guardbot.paper.exchange import PaperExchange
from guardbot.paper.runner import StrategyError, StrategyRunner
from guardbot.paper.strategy import Strategy, StrategyLoadError, load_strategy
from guardbot.paper.translate import exception_for

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
