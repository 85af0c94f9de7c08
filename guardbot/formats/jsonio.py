"""Exact JSON reading shared by every command: Decimals, no duplicate keys, one-line errors."""

from __future__ import annotations

import json
from decimal import Decimal

from guardbot.errors import InputError

__all__ = ["EXACT_DECODER", "loads_exact"]


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):  # rare: find the key to name
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


#: The decoder of :func:`loads_exact`, built once, for loops over many lines: its ``decode``
#: raises :class:`ValueError` (duplicate keys included) or :class:`RecursionError` on bad input;
#: :func:`loads_exact` then gives the one-line message.
EXACT_DECODER = json.JSONDecoder(
    parse_float=Decimal, parse_constant=Decimal, object_pairs_hook=_no_duplicate_keys
)


def loads_exact(text: str, where: str, *, lines: bool = True) -> object:
    """Parse ``text``; numbers become Decimals (exact), and ``NaN``/``Infinity`` are kept as
    Decimals so that the field check can name them. Errors are :class:`InputError` on ``where``;
    with ``lines=False`` (one JSON Lines line) a syntax error gives its column only.
    """
    try:
        return json.loads(
            text,
            parse_float=Decimal,
            parse_constant=Decimal,
            object_pairs_hook=_no_duplicate_keys,
        )
    except json.JSONDecodeError as exc:
        position = f"line {exc.lineno} column {exc.colno}" if lines else f"column {exc.colno}"
        raise InputError(where, f"invalid JSON at {position}: {exc.msg}") from None
    except _DuplicateKey as exc:
        raise InputError(where, f"invalid JSON: duplicate key {json.dumps(exc.key)}") from None
    except RecursionError:
        raise InputError(where, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        raise InputError(where, f"invalid JSON: {exc}") from None
