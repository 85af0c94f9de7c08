"""Feed plugins: prices from your own code, for venues ccxt does not carry (CoinEx, Bitunix, ...).

``[feed] mode = "plugin"`` and ``plugin = "path/to/file.py:make_feed"`` (or the name of an entry
point in the group ``guardbot.feeds``, as strategies have ``guardbot.strategies``). The object
named is called once per feed start as ``factory(symbols, options)`` (``options``: the
``[feed] plugin_options`` table) and returns a :class:`~guardbot.feeds.base.Feed`: an async
context manager whose ``updates()`` yields ``TickUpdate`` (and, if it knows, ``FeedStale`` /
``FeedRecovered``). Prices in a ``TickCmd`` are ``Decimal``s; convert exchange floats with
:func:`guardbot.feeds.base.to_decimal`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from guardbot.errors import GuardbotError
from guardbot.feeds.base import Feed

__all__ = ["ENTRY_POINT_GROUP", "FeedFactory", "FeedPluginError", "load_feed_plugin"]

ENTRY_POINT_GROUP = "guardbot.feeds"

#: ``factory(symbols, options) -> Feed``
FeedFactory = Callable[[Sequence[str], Mapping[str, Any]], Feed]


class FeedPluginError(GuardbotError):
    """The plugin cannot be loaded; the message says what is wrong and how to fix it."""


def load_feed_plugin(spec: str) -> FeedFactory:
    """The callable ``spec`` names: ``"file.py:name"`` or an entry point of ``guardbot.feeds``."""
    path_text, sep, name = spec.rpartition(":")
    if sep and path_text.endswith(".py"):
        obj = _from_file(Path(path_text), name, spec)
    elif spec.endswith(".py"):
        raise FeedPluginError(f"feed plugin {spec!r}: name the factory too, as {spec}:make_feed")
    else:
        obj = _from_entry_point(spec)
    if not callable(obj):
        raise FeedPluginError(f"feed plugin {spec!r}: {obj!r} is not callable")
    factory: FeedFactory = obj
    return factory


def _from_file(path: Path, name: str, spec: str) -> object:
    if not name.isidentifier():
        raise FeedPluginError(f"feed plugin {spec!r}: {name!r} is not a Python name")
    if not path.is_file():
        raise FeedPluginError(f"feed plugin {spec!r}: file {path} not found")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:12]
    module_name = f"guardbot_feed_{resolved.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(module_name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise FeedPluginError(f"feed plugin {spec!r}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise FeedPluginError(
            f"feed plugin {spec!r}: importing {path} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not hasattr(module, name):
        raise FeedPluginError(f"feed plugin {spec!r}: {path} has no {name}")
    return getattr(module, name)


def _from_entry_point(name: str) -> object:
    found = entry_points(group=ENTRY_POINT_GROUP, name=name)
    if not found:
        known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        listed = ", ".join(known) if known else "none installed"
        raise FeedPluginError(
            f"feed plugin {name!r}: not a file.py:name and no entry point of that name in group "
            f"{ENTRY_POINT_GROUP} ({listed})"
        )
    entry = next(iter(found))
    try:
        return entry.load()
    except Exception as exc:
        raise FeedPluginError(
            f"feed plugin {name!r}: loading entry point {entry.value} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
