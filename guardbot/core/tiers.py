"""Leverage-tier tables (Binance brackets, Bybit risk limits, OKX position tiers).

Rows follow ccxt's unified leverage-tier structure (``tier``, ``minNotional``, ``maxNotional``,
``maintenanceMarginRate``, ``maxLeverage``) plus ``maintenanceAmount`` (Binance ``cum``, Bybit
"MM deduction"). A value ``n`` belongs to the first tier whose cap it does not exceed
(``n <= cap_k``, cap inclusive, as the exchanges publish their tables); beyond the last cap, the
last tier. Admission refuses any order or leverage change that would take an exposure beyond the
last cap (``max_leverage_for`` is 0 there, and the reason names the table's end), so only a
position that was already beyond it (a table replaced by a shorter one, a mirrored exchange
position against a partial bundled table) is evaluated with the last tier's rate.

Tables are accepted as venues publish them: a tier's ``minNotional`` may equal the previous
``maxNotional`` (Binance, Bybit) or lie one step above it (OKX and ccxt: ``minSz`` = previous
``maxSz`` + one lot, in contracts); a size in such a step belongs to the upper tier. Only
overlapping tiers, bounds that do not increase and maintenance rates outside (0, 1) are errors.
For contract-based profiles the bounds are in contracts, as ccxt reports those venues' tiers.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from guardbot.core.num import ZERO, parse_decimal
from guardbot.errors import InputError, TierTableError

__all__ = ["CCXT_TIER_EXTRAS", "TIER_ROW_FIELDS", "Tier", "TierTable"]

#: The fields of a tier row guardbot reads, and the ccxt leverage-tier fields it does not need.
TIER_ROW_FIELDS = frozenset(
    {
        "tier",
        "minNotional",
        "maxNotional",
        "maintenanceMarginRate",
        "maxLeverage",
        "maintenanceAmount",
    }
)
CCXT_TIER_EXTRAS = frozenset({"symbol", "currency", "info"})


@dataclass(frozen=True, slots=True)
class Tier:
    tier: int
    floor: Decimal
    cap: Decimal
    mmr: Decimal
    max_leverage: Decimal
    cum: Decimal

    def to_ccxt(self, symbol: str) -> dict[str, object]:
        return {
            "tier": self.tier,
            "symbol": symbol,
            "currency": "USDT",
            "minNotional": self.floor,
            "maxNotional": self.cap,
            "maintenanceMarginRate": self.mmr,
            "maxLeverage": self.max_leverage,
            "maintenanceAmount": self.cum,
        }


class TierTable:
    """An ordered tier table for one symbol (steps between tiers allowed, no overlaps)."""

    __slots__ = ("_caps", "symbol", "tiers")

    def __init__(self, symbol: str, tiers: Sequence[Tier]) -> None:
        if not tiers:
            raise TierTableError("", "needs at least one tier")
        self.symbol = symbol
        self.tiers: tuple[Tier, ...] = tuple(tiers)
        self._caps = [t.cap for t in self.tiers]

    @classmethod
    def from_ccxt(cls, symbol: str, rows: object, *, derive_cum: bool = True) -> TierTable:
        """Build a table from ccxt-style rows, validating every field.

        ``maintenanceAmount`` is taken when given and otherwise derived by the recursion
        ``cum_1 = 0, cum_k = cum_{k-1} + cap_{k-1} * (mmr_k - mmr_{k-1})`` (Binance's, whose
        ``cap_{k-1}`` is ``floor_k``); with
        ``derive_cum=False`` (flat-tier profiles) it is always zero.
        """
        if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
            raise TierTableError("", "must be a list of tiers")
        if not rows:
            raise TierTableError("", "must hold at least one tier")
        tiers: list[Tier] = []
        prev: Tier | None = None
        for i, row in enumerate(rows):
            where = f"[{i}]"
            if not isinstance(row, Mapping):
                raise TierTableError(where, "must be an object")
            floor = _field(row, "minNotional", where, required=prev is not None, default=ZERO)
            cap = _field(row, "maxNotional", where)
            mmr = _field(row, "maintenanceMarginRate", where)
            max_lev = _optional_field(row, "maxLeverage", where)
            if floor < 0:
                raise TierTableError(f"{where}.minNotional", f"must be >= 0, got {floor}")
            if cap <= floor:
                raise TierTableError(
                    f"{where}.maxNotional", f"must be > minNotional ({floor}), got {cap}"
                )
            if not ZERO < mmr < 1:
                raise TierTableError(
                    f"{where}.maintenanceMarginRate", f"must be > 0 and < 1, got {mmr}"
                )
            if max_lev is None:
                max_lev = prev.max_leverage if prev is not None else Decimal(1)
            if max_lev < 1:
                raise TierTableError(f"{where}.maxLeverage", f"must be >= 1, got {max_lev}")
            if prev is not None and floor < prev.cap:
                raise TierTableError(
                    f"{where}.minNotional",
                    f"overlaps the previous tier: must be >= its maxNotional ({prev.cap}), "
                    f"got {floor}",
                )
            if derive_cum:
                given = row.get("maintenanceAmount")
                if given is None and isinstance(row.get("info"), Mapping):
                    given = row["info"].get("cum")
                if given is not None:
                    cum = parse_decimal(given, f"{where}.maintenanceAmount")
                elif prev is None:
                    cum = ZERO
                else:
                    # continuity at the previous cap, the last value of the previous tier (the
                    # same as at this floor when the tiers touch)
                    cum = prev.cum + prev.cap * (mmr - prev.mmr)
            else:
                cum = ZERO
            tier_no = row.get("tier", i + 1)
            if isinstance(tier_no, bool) or not isinstance(tier_no, (int, float, str, Decimal)):
                raise TierTableError(f"{where}.tier", "must be a number")
            try:
                number = int(Decimal(str(tier_no)))
            except ArithmeticError:
                raise TierTableError(
                    f"{where}.tier", f"must be a number, got {tier_no!r}"
                ) from None
            tier = Tier(number, floor, cap, mmr, max_lev, cum)
            tiers.append(tier)
            prev = tier
        return cls(symbol, tiers)

    def tier_for(self, value: Decimal) -> Tier:
        """The tier containing ``value`` (cap inclusive); beyond the last cap, the last tier."""
        i = bisect_left(self._caps, value)
        tiers = self.tiers
        return tiers[i] if i < len(tiers) else tiers[-1]

    def index_for(self, value: Decimal) -> int:
        i = bisect_left(self._caps, value)
        return i if i < len(self.tiers) else len(self.tiers) - 1

    @property
    def max_value(self) -> Decimal:
        """The largest value the table covers (the last tier's cap)."""
        return self._caps[-1]

    def max_leverage_for(self, value: Decimal) -> Decimal:
        """Max leverage allowed for an exposure of ``value``; 0 beyond the table."""
        if value > self._caps[-1]:
            return ZERO
        return self.tier_for(value).max_leverage

    def max_value_for_leverage(self, leverage: Decimal) -> Decimal:
        """The most exposure allowed at ``leverage`` (Binance ``maxNotionalValue``)."""
        best = ZERO
        for t in self.tiers:
            if t.max_leverage >= leverage and t.cap > best:
                best = t.cap
        return best

    def to_ccxt(self) -> list[dict[str, object]]:
        return [t.to_ccxt(self.symbol) for t in self.tiers]

    def __repr__(self) -> str:
        return f"TierTable({self.symbol!r}, {len(self.tiers)} tiers)"


def _field(
    row: Mapping[str, object],
    name: str,
    where: str,
    *,
    required: bool = True,
    default: Decimal | None = None,
) -> Decimal:
    value = row.get(name)
    if value is None:
        if required or default is None:
            raise TierTableError(f"{where}.{name}", "is required")
        return default
    try:
        return parse_decimal(value, f"{where}.{name}")
    except InputError as exc:
        raise TierTableError(exc.field, exc.message) from None


def _optional_field(row: Mapping[str, object], name: str, where: str) -> Decimal | None:
    if row.get(name) is None:
        return None
    return _field(row, name, where)
