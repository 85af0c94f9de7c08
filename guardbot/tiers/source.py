"""Bundled leverage-tier snapshots: the last-resort tier source (docs/architecture.md §3).

Snapshots are keyed by exchange: one dated file per venue, ``guardbot/data/tiers/<venue>.json``
(ccxt ids map to venues: ``binanceusdm`` -> ``binance``, ``gateio`` -> ``gate``, ...), whatever
profile the user runs; the file's ``exchange`` names the ccxt id its tables were recorded on. A
venue without a file (``generic``) has an empty snapshot: its symbols need fetched, cached or
user-supplied tables. The file's ``profile`` names the rules its
rows follow (whether ``maintenanceAmount`` is derived)::

    {"profile": "binance", "exchange": "binanceusdm", "asOf": "2024-05-01",
     "source": "...", "notes": "...",
     "tierBasis": "notional", "contractSize": {"BTC/USDT:USDT": 1},
     "tiers": {"BTC/USDT:USDT": [{"minNotional": 0, "maxNotional": 50000,
                                  "maintenanceMarginRate": 0.004, "maxLeverage": 125}, ...]},
     "symbols": {"BTC/USDT:USDT": {"asOf": "2024-04-20", "source": "..."}}}

``asOf`` and ``source`` are the file's; ``symbols`` (optional) gives a table its own date and
source where it was published apart from the others. ``tierBasis`` says the unit of the bounds:
``notional`` (USDT value) or ``contracts`` (then ``contractSize`` converts, e.g. OKX).

Rows are ccxt unified leverage tiers; ``maintenanceAmount`` is derived for profiles whose MM
formula deducts it. Exchanges change their tiers at any time, so a snapshot is a fallback for
offline use, never a substitute for live tables.
"""

from __future__ import annotations

import datetime
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType

from guardbot.core.num import decimal_context, parse_decimal
from guardbot.core.profiles import PROFILES
from guardbot.core.tiers import TierTable
from guardbot.errors import GuardbotError, InputError

__all__ = [
    "BundledTiers",
    "bundled_for",
    "load_bundled",
    "parse_bundled",
    "read_bundled",
    "read_user_tiers",
    "snapshot_venue",
]


@dataclass(frozen=True, slots=True)
class BundledTiers:
    """The tier tables and contract sizes of one profile's bundled snapshot."""

    profile: str
    as_of: str
    source: str
    tables: Mapping[str, TierTable]
    contract_sizes: Mapping[str, Decimal]
    notes: str = ""
    #: the ccxt exchange id the tables were recorded on ("" for a user's file that names none)
    exchange: str = ""
    #: symbol -> (asOf, source) where a table has its own, else the file's apply
    symbol_meta: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    def as_of_for(self, symbol: str) -> str:
        """The date of ``symbol``'s table: its own where the snapshot gives one, else the file's."""
        meta = self.symbol_meta.get(symbol)
        return meta[0] if meta is not None and meta[0] else self.as_of

    def source_for(self, symbol: str) -> str:
        """Where ``symbol``'s table comes from: its own source if given, else the file's."""
        meta = self.symbol_meta.get(symbol)
        return meta[1] if meta is not None and meta[1] else self.source

    def contract_size(self, symbol: str) -> Decimal:
        """The contract size of ``symbol`` (1 when the snapshot does not list it)."""
        return self.contract_sizes.get(symbol, Decimal(1))


#: ccxt exchange id -> the venue whose snapshot it uses (venue names map to themselves).
_SNAPSHOT_VENUES = {
    "binanceusdm": "binance",
    "okex": "okx",
    "okex5": "okx",
    "gateio": "gate",
}


def snapshot_venue(name: str) -> str:
    """The venue whose snapshot ``name`` (a ccxt exchange id or a venue/profile name) uses."""
    lowered = name.lower()
    return _SNAPSHOT_VENUES.get(lowered, lowered)


def load_bundled(name: str) -> BundledTiers:
    """The bundled snapshot for an exchange id (``binanceusdm``) or venue name (``binance``),
    read once per process; an empty one for a known venue that ships none.

    Raises :class:`GuardbotError` when the name is unknown or its snapshot is unusable.
    """
    return _load(snapshot_venue(name))


def bundled_for(exchange_id: str, profile: str) -> BundledTiers:
    """The snapshot of the venue ``exchange_id`` names, whatever profile runs on it; a venue
    guardbot has no snapshot mapping for (outside ccxt, ``generic``) falls back to the
    profile's."""
    venue = snapshot_venue(exchange_id)
    return _load(venue if venue in PROFILES else snapshot_venue(profile))


@functools.cache
def _load(venue: str) -> BundledTiers:
    if venue not in PROFILES:
        known = ", ".join(sorted(PROFILES))
        raise GuardbotError(f"no bundled tiers for unknown profile {venue!r} (known: {known})")
    resource = resources.files("guardbot") / "data" / "tiers" / f"{venue}.json"
    if not resource.is_file():
        return BundledTiers(venue, "", "", MappingProxyType({}), MappingProxyType({}))
    return read_bundled(venue, resource)


def read_bundled(profile: str, resource: Traversable) -> BundledTiers:
    """Read and validate a snapshot file (any path-like resource: a package file, a ``Path``)."""
    name = f"bundled tiers {profile}.json"
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GuardbotError(f"{name}: not found in this installation") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GuardbotError(f"{name}: cannot be read ({exc})") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise GuardbotError(
            f"{name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    try:
        return parse_bundled(profile, data)
    except InputError as exc:
        raise GuardbotError(f"{name}: {exc}") from None


_KEYS = frozenset(
    {"profile", "exchange", "asOf", "source", "notes", "tierBasis", "contractSize", "tiers",
     "symbols"}
)  # fmt: skip
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_bundled(profile: str, data: object) -> BundledTiers:
    """Validate a decoded snapshot; errors are :class:`InputError` with the field path."""
    if profile not in PROFILES:
        raise InputError("profile", f"unknown profile {profile!r}")
    prof = PROFILES[profile]
    if not isinstance(data, Mapping):
        raise InputError("", "must be a JSON object")
    for key in data:
        if key not in _KEYS:
            raise InputError(str(key), f"unknown key (known: {', '.join(sorted(_KEYS))})")
    if data.get("profile") != profile:
        raise InputError("profile", f"must be {profile!r}, got {data.get('profile')!r}")
    basis = data.get("tierBasis", prof.tier_basis)
    if basis != prof.tier_basis:
        raise InputError("tierBasis", f"must be {prof.tier_basis!r}, got {basis!r}")
    as_of = _date(data, "asOf", required=True)
    source = _text(data, "source")
    notes = _text(data, "notes")
    exchange = _text(data, "exchange")
    venue = snapshot_venue(exchange)
    if exchange and venue in PROFILES and venue != profile:
        raise InputError("exchange", f"{exchange!r} is not a {profile!r} venue")

    raw_tiers = data.get("tiers")
    if not isinstance(raw_tiers, Mapping) or not raw_tiers:
        raise InputError("tiers", "must be a non-empty object of symbol -> tier rows")
    raw_sizes = data.get("contractSize", {})
    if not isinstance(raw_sizes, Mapping):
        raise InputError("contractSize", "must be an object of symbol -> contract size")

    tables: dict[str, TierTable] = {}
    sizes: dict[str, Decimal] = {}
    with decimal_context():
        for symbol, rows in raw_tiers.items():
            try:
                tables[symbol] = TierTable.from_ccxt(symbol, rows, derive_cum=prof.deducts_cum)
            except InputError as exc:
                raise exc.under(f"tiers[{json.dumps(symbol)}]") from None
        for symbol, value in raw_sizes.items():
            where = f"contractSize[{json.dumps(symbol)}]"
            size = parse_decimal(value, where)
            if size <= 0:
                raise InputError(where, f"must be > 0, got {size}")
            sizes[symbol] = size
    meta = _symbol_meta(data.get("symbols", {}), tables)
    return BundledTiers(
        profile=profile,
        as_of=as_of,
        source=source,
        tables=MappingProxyType(tables),
        contract_sizes=MappingProxyType(sizes),
        notes=notes,
        exchange=exchange,
        symbol_meta=MappingProxyType(meta),
    )


def _symbol_meta(raw: object, tables: Mapping[str, TierTable]) -> dict[str, tuple[str, str]]:
    if not isinstance(raw, Mapping):
        raise InputError("symbols", "must be an object of symbol -> {asOf, source}")
    meta: dict[str, tuple[str, str]] = {}
    for symbol, entry in raw.items():
        where = f"symbols[{json.dumps(symbol)}]"
        if symbol not in tables:
            raise InputError(where, "has no table in 'tiers'")
        if not isinstance(entry, Mapping):
            raise InputError(where, "must be an object with asOf and/or source")
        for key in entry:
            if key not in ("asOf", "source"):
                raise InputError(f"{where}.{key}", "unknown key (known: asOf, source)")
        try:
            meta[symbol] = (_date(entry, "asOf"), _text(entry, "source"))
        except InputError as exc:
            raise exc.under(where) from None
    return meta


def read_user_tiers(path: Path, profile: str) -> BundledTiers:
    """A user's tier file (``[exchange] tiers_file``), in the bundled snapshot's format; its
    ``profile`` may be left out (the configured one is meant). :class:`GuardbotError` names the
    file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text, parse_float=Decimal)
    except (OSError, UnicodeDecodeError) as exc:
        raise GuardbotError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise GuardbotError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if isinstance(data, dict):
        data.setdefault("profile", profile)
    try:
        return parse_bundled(profile, data)
    except InputError as exc:
        raise GuardbotError(f"{path}: {exc}") from None


def _date(data: Mapping[str, object], key: str, *, required: bool = False) -> str:
    """A ``YYYY-MM-DD`` date that exists in the calendar."""
    value = _text(data, key, required=required)
    if value:
        try:
            if not _DATE.fullmatch(value):
                raise ValueError(value)
            datetime.date.fromisoformat(value)
        except ValueError:
            raise InputError(key, f"must be a date YYYY-MM-DD, got {value!r}") from None
    return value


def _text(data: Mapping[str, object], key: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise InputError(key, "must be a non-empty string")
    return value
