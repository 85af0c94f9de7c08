"""What differs between venues when reading an account through ccxt: one small module per venue.

ccxt unifies the structures, not every field guardbot needs. The pieces a venue fills its own way
are here and nowhere else: which calls list the open stop / take-profit orders, where the cross
wallet balance is (ccxt's unified ``total`` is not a wallet balance on every venue), where an
isolated position's wallet is, and how a closing order tells why it closed.

Each venue's class lives in its own module here and is registered in ``VENUES``; each is verified
against the local stand-in of that venue's private REST endpoints and streams (tests/standin/).
Other venues are refused at configuration load, naming them: the ones whose ccxt class cannot
read positions at all, and the others until their quirks are written down and verified here.
"""

from __future__ import annotations

from guardbot.errors import ConfigError
from guardbot.mirror.venues.base import MirrorVenue, info_of, to_decimal
from guardbot.mirror.venues.binance import BinanceUsdm
from guardbot.mirror.venues.bitget import Bitget
from guardbot.mirror.venues.bybit import Bybit
from guardbot.mirror.venues.gate import Gate
from guardbot.mirror.venues.mexc import Mexc
from guardbot.mirror.venues.okx import Okx

__all__ = [
    "VENUES",
    "BinanceUsdm",
    "Bitget",
    "Bybit",
    "Gate",
    "Mexc",
    "MirrorVenue",
    "Okx",
    "info_of",
    "mirror_venue",
    "to_decimal",
]

VENUES: dict[str, MirrorVenue] = {
    "binanceusdm": BinanceUsdm(),
    "bybit": Bybit(),
    "okx": Okx(),
    "bitget": Bitget(),
    "gate": Gate(),
    "mexc": Mexc(),
}


def mirror_venue(exchange_id: str, *, where: str = "exchange.id") -> MirrorVenue:
    """The venue's mirror support, or :class:`ConfigError` naming the venue and why not."""
    venue = VENUES.get(exchange_id)
    if venue is not None:
        return venue
    import ccxt.pro

    cls = getattr(ccxt.pro, exchange_id, None)
    # the class attribute ``has`` is the base class's; an instance merges the venue's own
    has = cls().describe().get("has", {}) if cls is not None else {}
    if not has.get("fetchPositions"):
        raise ConfigError(
            f"{where}: a mirror account needs private position data, and ccxt cannot read "
            f"positions on {exchange_id!r}"
        )
    raise ConfigError(
        f"{where}: mirror accounts are not supported on {exchange_id!r} yet "
        f"(supported: {', '.join(sorted(VENUES))})"
    )
