"""Unknown keys in any input (the TOML configuration, ``calc``, ``simulate``, MQTT commands) are
refused the same way: the key's path, the keys that are known there and the closest of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from guardbot.errors import InputError

__all__ = ["check_keys", "closest", "unknown_key"]


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name most like ``word`` (the key a typo meant), or None when none is close."""
    names = list(known)
    by_case = {name.lower(): name for name in names}
    if word.lower() in by_case:  # only the case differs: reduceonly -> reduceOnly
        return by_case[word.lower()]
    match = difflib.get_close_matches(word, names, n=1, cutoff=0.75)
    if match:
        return match[0]
    # A known name inside the word or the word inside one: taker_fee -> taker, stopLoss ->
    # stopLossPrice; only when exactly one name fits.
    lowered = word.lower()
    inside = [n for n in names if len(n) > 2 and (n.lower() in lowered or lowered in n.lower())]
    return inside[0] if len(inside) == 1 else None


def unknown_key(word: str, known: Iterable[str]) -> str:
    """The message for an unknown key: the known keys and, when one is close, a did-you-mean."""
    names = sorted(known)
    guess = closest(word, names)
    hint = f"; did you mean {guess!r}?" if guess is not None else ""
    return f"unknown key (known: {', '.join(names)}){hint}"


def check_keys(
    obj: Mapping[str, object], known: Iterable[str], where: str = "", *, ignored: Iterable[str] = ()
) -> None:
    """Raise :class:`InputError` at ``<where>.<key>`` for the first key of ``obj`` that is neither
    ``known`` nor ``ignored`` (a listed pass-through name: accepted, not shown among the known)."""
    names = known if isinstance(known, (set, frozenset)) else set(known)
    if obj.keys() <= names:  # the common case, at C speed (parse_command runs per input)
        return
    passing = set(ignored)
    for key in obj:
        if key not in names and key not in passing:
            field = f"{where}.{key}" if where else str(key)
            raise InputError(field, unknown_key(str(key), names))
