"""Optional dependencies: ``pip install 'guardbot[report]'`` (matplotlib, numpy), ``[broker]``
(amqtt, the embedded demo broker), ``[notify]`` (apprise). A feature that needs one calls
:func:`require_extra` before importing it, so a base install says which extra to add instead of
failing with a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib.util

from guardbot.errors import GuardbotError

__all__ = ["EXTRAS", "MissingExtraError", "require_extra"]

#: extra -> the modules it provides (pyproject.toml's [project.optional-dependencies]).
EXTRAS: dict[str, tuple[str, ...]] = {
    "report": ("matplotlib", "numpy"),
    "broker": ("amqtt",),
    "notify": ("apprise",),
}


class MissingExtraError(GuardbotError):
    """A feature's optional dependency is not installed; the message names the extra."""

    def __init__(self, feature: str, extra: str, module: str, hint: str = "") -> None:
        self.extra = extra
        self.module = module
        super().__init__(
            f"{feature} needs the optional dependency {module!r}, which is not installed: "
            f"pip install 'guardbot[{extra}]'" + (f" ({hint})" if hint else "")
        )


def require_extra(extra: str, feature: str, *, hint: str = "") -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` can be imported."""
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtraError(feature, extra, module, hint)
