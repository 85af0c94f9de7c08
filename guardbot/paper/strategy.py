"""The :class:`Strategy` base class and its loader.

A strategy is a class with async hooks that receive the exchange (a
:class:`~guardbot.paper.exchange.PaperExchange`, or any object with ccxt's unified API)::

    class Breakout(Strategy):
        async def on_tick(self, exchange, ticker):
            if ticker["last"] > self.params["level"]:
                await exchange.create_order(ticker["symbol"], "market", "buy", 0.01)

It is named ``"path/to/file.py:ClassName"`` or by an installed entry point of the group
``guardbot.strategies`` (``name = "package.module:ClassName"`` in the distribution's metadata).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from guardbot.core.events import Event
from guardbot.errors import GuardbotError

__all__ = ["ENTRY_POINT_GROUP", "Strategy", "StrategyLoadError", "load_strategy"]

ENTRY_POINT_GROUP = "guardbot.strategies"


class StrategyLoadError(GuardbotError):
    """The strategy could not be found, imported or is not a :class:`Strategy`."""


class Strategy:
    """Base class of strategies; override the hooks you need (each does nothing by default).

    ``params`` is the ``[strategy] params`` table of the configuration (or ``--params``).
    Exceptions raised by a hook are logged and counted by the runner; they do not stop the run
    unless the runner was made with ``stop_on_error=True``.
    """

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = dict(params or {})

    async def on_start(self, exchange: Any) -> None:
        """Called once before the first tick (markets are loaded; prices may not be known)."""

    async def on_tick(self, exchange: Any, ticker: dict[str, Any]) -> None:
        """Called after each tick, with the ccxt ticker of the symbol that ticked."""

    async def on_event(self, exchange: Any, event: Event) -> None:
        """Called for each engine event of the strategy's account: ``fill``,
        ``stop_triggered``, ``margin_alert``, ``liquidation``, ``order_rejected``, ..."""

    async def on_stop(self, exchange: Any) -> None:
        """Called once after the last tick (or when the host stops)."""


def load_strategy(spec: str) -> type[Strategy]:
    """The :class:`Strategy` subclass named by ``spec``.

    ``"path/to/file.py:ClassName"`` imports the file; a bare ``name`` looks up the entry point
    ``name`` of the group ``guardbot.strategies``. Raises :class:`StrategyLoadError` with what is
    wrong and how to fix it.
    """
    path_text, sep, class_name = spec.rpartition(":")
    if sep and path_text.endswith(".py"):
        return _from_file(Path(path_text), class_name, spec)
    if not sep and spec.endswith(".py"):
        raise StrategyLoadError(f"strategy {spec!r}: name the class too, as {spec}:ClassName")
    return _from_entry_point(spec)


def _check(obj: object, where: str) -> type[Strategy]:
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise StrategyLoadError(
            f"strategy {where}: {obj!r} is not a subclass of guardbot.paper.Strategy"
        )
    return obj


def _from_file(path: Path, class_name: str, spec: str) -> type[Strategy]:
    if not class_name.isidentifier():
        raise StrategyLoadError(f"strategy {spec!r}: {class_name!r} is not a class name")
    if not path.is_file():
        raise StrategyLoadError(f"strategy {spec!r}: file {path} not found")
    resolved = path.resolve()
    # a unique module name per file, so two strategies named alike do not replace each other
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:12]
    module_name = f"guardbot_strategy_{resolved.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(module_name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise StrategyLoadError(f"strategy {spec!r}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up here
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise StrategyLoadError(
            f"strategy {spec!r}: importing {path} failed: {type(exc).__name__}: {exc}"
        ) from exc
    obj = getattr(module, class_name, None)
    if obj is None:
        found = sorted(
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, Strategy) and value is not Strategy
        )
        hint = f" (strategies in the file: {', '.join(found)})" if found else ""
        raise StrategyLoadError(f"strategy {spec!r}: {path} has no class {class_name}{hint}")
    return _check(obj, repr(spec))


def _from_entry_point(name: str) -> type[Strategy]:
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        listed = ", ".join(known) if known else "none installed"
        raise StrategyLoadError(
            f"strategy {name!r}: not a file.py:ClassName and no entry point of that name in group"
            f" {ENTRY_POINT_GROUP} ({listed})"
        )
    entry = next(iter(found))
    try:
        obj = entry.load()
    except Exception as exc:
        raise StrategyLoadError(
            f"strategy {name!r}: loading entry point {entry.value} failed:"
            f" {type(exc).__name__}: {exc}"
        ) from exc
    return _check(obj, f"{name!r} ({entry.value})")
