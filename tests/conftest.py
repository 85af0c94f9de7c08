"""Fixtures shared across test folders: the private Mosquitto broker (tests/broker.py) and the
stand-in exchange (tests/standin/), for the ``integration`` tests that need them."""

from tests.broker import mosquitto, persistent_mosquitto  # noqa: F401
from tests.standin.conftest import standin  # noqa: F401
