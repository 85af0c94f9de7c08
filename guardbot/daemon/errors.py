"""Reading the failure out of what a task group raised."""

from __future__ import annotations

from guardbot.errors import GuardbotError

__all__ = ["first_error", "guardbot_error"]


def first_error(exc: BaseException) -> BaseException:
    """The first leaf of (nested) exception groups: what a one-line report should name."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def guardbot_error(exc: BaseException) -> GuardbotError | None:
    """The :class:`GuardbotError` inside ``exc`` (possibly an exception group), if any."""
    if isinstance(exc, GuardbotError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        match, _ = exc.split(GuardbotError)
        if match is not None:
            leaf = first_error(match)
            return leaf if isinstance(leaf, GuardbotError) else None
    return None
