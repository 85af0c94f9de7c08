"""Secrets read from the environment: exchange credentials, the MQTT password, the control token."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["EXCHANGE_SECRET_ENV", "Secret"]

#: ccxt constructor key -> the environment variable that supplies it.
EXCHANGE_SECRET_ENV: Mapping[str, str] = {
    "apiKey": "GUARDBOT_EXCHANGE_API_KEY",
    "secret": "GUARDBOT_EXCHANGE_SECRET",
    "password": "GUARDBOT_EXCHANGE_PASSWORD",
}


class Secret:
    """A secret string: ``repr`` and ``str`` hide it, :meth:`reveal` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)
