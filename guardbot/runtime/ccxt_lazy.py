"""Import only the ccxt exchange modules that are used.

``import ccxt.pro`` runs three package ``__init__`` modules (``ccxt``, ``ccxt.async_support``,
``ccxt.pro``) that import every exchange ccxt has, sync, async and websocket: about 900 modules
and 100 MB of resident memory, of which the daemon uses one exchange (issue 16 ask 5).

:func:`install` puts a finder in front of ``sys.meta_path`` for those three packages only. It
loads each package from ccxt's own ``__init__`` source with one kind of statement left out:
``from <package>.<name> import <name>``, the import of an exchange class. Everything else runs
as written (version, errors, base classes, the ``exchanges`` lists), so the packages hold what
they always held. An exchange name is resolved on first use (``ccxt.pro.binanceusdm``,
``ccxt.async_support.binance`` as ``ccxt.pro.binance`` subclasses it): its module is imported
then, and the package attribute is the class, as the ``from`` import would have made it.

It changes how much is imported, never what a name means: every class is ccxt's own, by the
same code path. Installed before the first ``import ccxt`` of the process (a module that imports
ccxt calls it first); if ccxt was imported already, it is left as it is.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["LAZY_PACKAGES", "LazyPackage", "install"]

#: The packages whose ``__init__`` imports every exchange.
LAZY_PACKAGES = ("ccxt", "ccxt.async_support", "ccxt.pro")

_lock = threading.Lock()


class LazyPackage(types.ModuleType):
    """A ccxt package whose exchange classes are imported when first looked up."""

    def __getattr__(self, name: str) -> Any:
        # Only called when ``name`` is not in the module's dict.
        if name in type(self)._names_of(self):
            importlib.import_module(f"{self.__name__}.{name}")
            try:
                return self.__dict__[name]
            except KeyError:  # pragma: no cover - the import binds it (see __setattr__)
                pass
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system binds a submodule on its package once loaded; ccxt's own __init__
        # then rebinds the name to the exchange class (``from ccxt.pro.okx import okx``), and
        # its modules rely on that (``class okx(ccxt.async_support.okx)``).
        if name in type(self)._names_of(self) and isinstance(value, types.ModuleType):
            cls = getattr(value, name, None)
            if isinstance(cls, type):
                value = cls
        super().__setattr__(name, value)

    @staticmethod
    def _names_of(module: types.ModuleType) -> frozenset[str]:
        names = module.__dict__.get("_guardbot_lazy_names")
        return names if isinstance(names, frozenset) else frozenset()


def _lazy_statements(tree: ast.Module, package: str) -> tuple[ast.Module, frozenset[str]]:
    """``tree`` without its ``from <package>.<name> import <name>`` statements, and those
    names."""
    kept: list[ast.stmt] = []
    names: set[str] = set()
    for node in tree.body:
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module is not None
            and len(node.names) == 1
            and node.names[0].asname is None
            and node.module == f"{package}.{node.names[0].name}"
        ):
            names.add(node.names[0].name)
            continue
        kept.append(node)
    return ast.Module(body=kept, type_ignores=tree.type_ignores), frozenset(names)


class _Loader(importlib.abc.Loader):
    def __init__(self, real: importlib.machinery.SourceFileLoader) -> None:
        self._real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return LazyPackage(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__name__
        source = self._real.get_source(name)
        if source is None:  # pragma: no cover - ccxt ships its sources
            raise ImportError(f"no source for {name}", name=name)
        tree, names = _lazy_statements(ast.parse(source), name)
        module.__dict__["_guardbot_lazy_names"] = names
        code = compile(tree, self._real.get_filename(name), "exec")
        exec(code, module.__dict__)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in LAZY_PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None  # not ccxt as shipped (a zip, a frozen build): import it as it is
        spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Put the finder in front of ``sys.meta_path`` once (a no-op after the first call)."""
    with _lock:
        if any(isinstance(f, _Finder) for f in sys.meta_path):
            return
        sys.meta_path.insert(0, _Finder())
