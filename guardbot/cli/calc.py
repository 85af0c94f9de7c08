"""``guardbot calc``: validate a margin-snapshot request and compute it (docs/contracts.md §1).

:func:`parse_calc_input` turns the decoded JSON object into a :class:`CalcInput`, refusing bad input
with an :class:`~guardbot.errors.InputError` whose field path names the exact spot
(``positions[1].entryPrice: must be > 0, got "-5"``). :func:`compute` runs the core snapshot and
:func:`run_calc` returns the output object of the contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from guardbot.core.keys import check_keys
from guardbot.core.num import ONE, ZERO, decimal_context, parse_decimal, shown
from guardbot.core.position import Position
from guardbot.core.profiles import Profile, get_profile
from guardbot.core.snapshot import AccountView, PositionView, snapshot
from guardbot.core.tiers import CCXT_TIER_EXTRAS, TIER_ROW_FIELDS, TierTable
from guardbot.errors import GuardbotError, InputError
from guardbot.tiers.source import BundledTiers, load_bundled

__all__ = [
    "CCXT_POSITION_OUTPUTS",
    "CCXT_TIER_EXTRAS",
    "TIER_ROW_FIELDS",
    "CalcInput",
    "CalcResult",
    "PositionInput",
    "compute",
    "parse_calc_input",
    "run_calc",
]

#: ccxt unified symbol of a linear contract: ``BASE/QUOTE:SETTLE`` with an optional expiry suffix.
_SYMBOL = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._]*/[A-Za-z0-9][A-Za-z0-9._]*:[A-Za-z0-9][A-Za-z0-9._]*(-[A-Za-z0-9]+)?"
)
#: Input numbers are bounded so that no product or quotient the engine forms can leave the
#: arithmetic context (which would be an exception, not an answer).

BundledLoader = Callable[[str], BundledTiers]

_TOP_FIELDS = ("profile", "positionMode", "tiers", "fees", "account", "positions")
_POSITION_FIELDS = (
    "symbol",
    "side",
    "contracts",
    "contractSize",
    "entryPrice",
    "markPrice",
    "marginMode",
    "leverage",
    "collateral",
    "isolatedWallet",
    "hedged",
    "isolated",
)
#: Fields of a ccxt position structure that calc computes itself (or that change no margin
#: figure): accepted and ignored, so the output of ``fetch_positions`` can be given as it is.
#: ``hedged`` and ``isolated`` are read (and checked); ``positionMargin`` is refused: it is the
#: margin of an isolated position, which calc must not silently replace by its own estimate.
CCXT_POSITION_OUTPUTS = frozenset(
    {
        "id",
        "info",
        "timestamp",
        "datetime",
        "lastUpdateTimestamp",
        "notional",
        "unrealizedPnl",
        "realizedPnl",
        "liquidationPrice",
        "maintenanceMargin",
        "maintenanceMarginPercentage",
        "initialMargin",
        "initialMarginPercentage",
        "marginRatio",
        "percentage",
        "lastPrice",
        "exitPrice",
        "stopLossPrice",
        "takeProfitPrice",
    }
)


def check_tier_rows(rows: object, where: str) -> None:
    """Refuse unknown keys in a list of ccxt tier rows (their shapes are checked by the table)."""
    if isinstance(rows, Sequence) and not isinstance(rows, (str, bytes)):
        for i, row in enumerate(rows):
            if isinstance(row, Mapping):
                check_keys(row, TIER_ROW_FIELDS, f"{where}[{i}]", ignored=CCXT_TIER_EXTRAS)


@dataclass(frozen=True, slots=True)
class PositionInput:
    """One validated position of the request."""

    symbol: str
    sign: int
    contracts: Decimal
    contract_size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    margin_mode: str
    leverage: Decimal
    #: The isolated wallet (margin assigned to the position); zero for a cross position.
    isolated_wallet: Decimal
    table: TierTable
    #: ``asOf`` of the bundled snapshot the table came from; None for a table given in the input.
    bundled_as_of: str | None
    #: ``long`` or ``short`` in a hedged request (each side its own position); None in one-way.
    position_side: str | None = None


@dataclass(frozen=True, slots=True)
class CalcInput:
    """A validated ``guardbot calc`` request."""

    profile: Profile
    maker_fee: Decimal
    taker_fee: Decimal
    wallet: Decimal
    positions: tuple[PositionInput, ...]
    hedged: bool = False


@dataclass(frozen=True, slots=True)
class CalcResult:
    input: CalcInput
    positions: list[PositionView]
    account: AccountView

    def to_json(self) -> dict[str, object]:
        return {
            "positions": [view.to_json() for view in self.positions],
            "account": self.account.to_json(),
        }


def run_calc(obj: object, *, bundled: BundledLoader = load_bundled) -> dict[str, object]:
    """The output object of ``guardbot calc`` for the decoded input ``obj``."""
    return compute(parse_calc_input(obj, bundled=bundled)).to_json()


def compute(request: CalcInput) -> CalcResult:
    """Run the core snapshot over a validated request."""
    with decimal_context():
        positions = []
        for p in request.positions:
            pos = Position(
                p.symbol,
                p.table,
                p.margin_mode,
                p.leverage,
                p.contract_size,
                position_side=p.position_side,
            )
            pos.set_size(p.sign, p.contracts, p.entry_price)
            pos.isolated_wallet = p.isolated_wallet
            positions.append(pos)
        marks = [p.mark_price for p in request.positions]
        views, account = snapshot(
            request.profile,
            request.taker_fee,
            request.wallet,
            positions,
            marks,
            hedged=request.hedged,
        )
    return CalcResult(request, views, account)


def parse_calc_input(obj: object, *, bundled: BundledLoader = load_bundled) -> CalcInput:
    """Validate the decoded input object of ``guardbot calc``.

    ``bundled`` loads the bundled tier snapshot of a profile; it is called only when a position's
    symbol has no table in ``tiers``.
    """
    if not isinstance(obj, Mapping):
        raise InputError("input", f"must be a JSON object, got {shown(obj)}")
    if not obj:
        raise InputError("input", "is empty: give at least positions (docs/contracts.md §1)")
    check_keys(obj, _TOP_FIELDS)
    with decimal_context():
        raw_profile = obj.get("profile")
        profile = get_profile("binance" if raw_profile is None else raw_profile, "profile")
        maker, taker = _parse_fees(obj.get("fees"))
        hedged = _parse_position_mode(obj.get("positionMode"))
        tables = _parse_tiers(obj.get("tiers"), profile)
        positions = _parse_positions(obj, profile, tables, bundled, hedged)
        has_cross = any(p.margin_mode == "cross" for p in positions)
        wallet = _parse_wallet(obj.get("account"), has_cross)
    return CalcInput(profile, maker, taker, wallet, positions, hedged)


def _parse_position_mode(raw: object) -> bool:
    """``positionMode``: ``oneway`` (the default) or ``hedged``; True when hedged."""
    if raw is None or raw == "oneway":
        return False
    if raw == "hedged":
        return True
    raise InputError("positionMode", f"must be oneway or hedged, got {shown(raw)}")


# --- sections ---------------------------------------------------------------------------------


def _parse_fees(raw: object) -> tuple[Decimal, Decimal]:
    if raw is None:
        return ZERO, ZERO
    if not isinstance(raw, Mapping):
        raise InputError(
            "fees",
            f'must be an object like {{"maker": 0.0002, "taker": 0.0005}}, got {shown(raw)}',
        )
    check_keys(raw, ("maker", "taker"), "fees")
    rates = []
    for key in ("maker", "taker"):
        rate = _number(raw, key, "fees", default=ZERO)
        if not ZERO <= rate < ONE:
            raise InputError(f"fees.{key}", f"must be >= 0 and < 1, got {shown(raw[key])}")
        rates.append(rate)
    return rates[0], rates[1]


def _parse_tiers(raw: object, profile: Profile) -> dict[str, TierTable]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError("tiers", f"must be an object of symbol -> tier list, got {shown(raw)}")
    tables = {}
    for symbol, rows in raw.items():
        where = f"tiers[{json.dumps(symbol)}]"
        if not _SYMBOL.fullmatch(symbol):
            raise InputError(where, _symbol_message(symbol))
        check_tier_rows(rows, where)
        try:
            table = TierTable.from_ccxt(symbol, rows, derive_cum=profile.deducts_cum)
        except InputError as exc:
            raise exc.under(where) from None
        tables[symbol] = table
    return tables


def _parse_positions(
    obj: Mapping[str, object],
    profile: Profile,
    tables: Mapping[str, TierTable],
    bundled: BundledLoader,
    hedged: bool,
) -> tuple[PositionInput, ...]:
    raw = obj.get("positions")
    if raw is None:
        raise InputError("positions", "is required (a list of positions)")
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise InputError("positions", f"must be a list, got {shown(raw)}")
    resolver = _TableResolver(profile, tables, bundled)
    seen: dict[str, PositionInput] = {}
    result = []
    for i, item in enumerate(raw):
        where = f"positions[{i}]"
        position = _parse_position(item, where, resolver, seen, hedged)
        other = seen.get(position.symbol)
        if other is not None and (other.margin_mode, other.leverage) != (
            position.margin_mode,
            position.leverage,
        ):
            raise InputError(
                where,
                f"both sides of {position.symbol} have the margin mode and leverage of the"
                f" symbol ({other.margin_mode}, {other.leverage}); got {position.margin_mode},"
                f" {position.leverage}",
            )
        seen.setdefault(position.symbol, position)
        if hedged:
            seen[f"{position.symbol}#{position.position_side}"] = position
        result.append(position)
    return tuple(result)


def _parse_position(
    raw: object,
    where: str,
    resolver: _TableResolver,
    seen: Mapping[str, PositionInput],
    hedged: bool,
) -> PositionInput:
    if not isinstance(raw, Mapping):
        raise InputError(where, f"must be an object, got {shown(raw)}")
    check_keys(raw, _POSITION_FIELDS, where, ignored=CCXT_POSITION_OUTPUTS)
    flag = raw.get("hedged")
    if flag is not None and flag is not hedged:
        mode = "hedged" if hedged else "oneway"
        raise InputError(
            f"{where}.hedged",
            f"must be {str(hedged).lower()} with positionMode {mode!r}, got {shown(flag)}"
            + ("" if hedged else ' (give "positionMode": "hedged" for hedge-mode positions)'),
        )
    symbol = raw.get("symbol")
    if symbol is None:
        raise InputError(f"{where}.symbol", "is required")
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise InputError(f"{where}.symbol", _symbol_message(symbol))
    side = _choice(raw, "side", where, ("long", "short"))
    if not hedged and symbol in seen:
        raise InputError(
            f"{where}.symbol",
            f"duplicate position for {symbol} (one-way mode holds one position per symbol)",
        )
    if hedged and f"{symbol}#{side}" in seen:
        raise InputError(
            f"{where}.side",
            f"duplicate {side} position for {symbol} (hedge mode holds one position per side)",
        )
    table, default_size, as_of = resolver.resolve(symbol, f"{where}.symbol")

    contracts = _number(raw, "contracts", where, positive=True)
    contract_size = _number(raw, "contractSize", where, positive=True, default=default_size)
    entry = _number(raw, "entryPrice", where, positive=True)
    mark = _number(raw, "markPrice", where, positive=True)
    mode = _choice(raw, "marginMode", where, ("cross", "isolated"), default=_ccxt_mode(raw, where))

    leverage = _number(raw, "leverage", where)
    max_leverage = table.tiers[0].max_leverage
    if leverage < 1:
        raise InputError(f"{where}.leverage", f"must be >= 1, got {shown(raw['leverage'])}")
    if leverage > max_leverage:
        raise InputError(
            f"{where}.leverage",
            f"must be <= {max_leverage} (the max leverage of {symbol}), "
            f"got {shown(raw['leverage'])}",
        )

    isolated_wallet = ZERO
    if mode == "isolated":
        given = _isolated_wallet(raw, where)
        # Without it, the position holds what opening it at its leverage assigned
        # (docs/contracts.md §1).
        isolated_wallet = contracts * contract_size * entry / leverage if given is None else given
    return PositionInput(
        symbol=symbol,
        sign=1 if side == "long" else -1,
        contracts=contracts,
        contract_size=contract_size,
        entry_price=entry,
        mark_price=mark,
        margin_mode=mode,
        leverage=leverage,
        isolated_wallet=isolated_wallet,
        table=table,
        bundled_as_of=as_of,
        position_side=side if hedged else None,
    )


def _ccxt_mode(raw: Mapping[str, object], where: str) -> str:
    """The margin mode ccxt's ``isolated`` flag says (cross without it); it must agree with
    ``marginMode`` when both are given."""
    flag = raw.get("isolated")
    if flag is None:
        return "cross"
    if not isinstance(flag, bool):
        raise InputError(f"{where}.isolated", f"must be true or false, got {shown(flag)}")
    mode = "isolated" if flag else "cross"
    given = raw.get("marginMode")
    if given is not None and given != mode:
        raise InputError(
            f"{where}.isolated", f"is {shown(flag)} but marginMode is {shown(given)}; give one"
        )
    return mode


def _isolated_wallet(raw: Mapping[str, object], where: str) -> Decimal | None:
    """``collateral`` or its alias ``isolatedWallet``; both given must agree."""
    found = [key for key in ("collateral", "isolatedWallet") if raw.get(key) is not None]
    values = [_number(raw, key, where, positive=True) for key in found]
    if len(values) == 2 and values[0] != values[1]:
        raise InputError(
            f"{where}.isolatedWallet",
            f"conflicts with collateral ({shown(raw['collateral'])}); give one of them",
        )
    return values[0] if values else None


def _parse_wallet(raw: object, has_cross: bool) -> Decimal:
    if raw is None:
        if has_cross:
            raise InputError("account.wallet", "is required when a position is in cross mode")
        return ZERO
    if not isinstance(raw, Mapping):
        raise InputError("account", f'must be an object like {{"wallet": 10000}}, got {shown(raw)}')
    check_keys(raw, ("wallet",), "account")
    if raw.get("wallet") is None and has_cross:
        raise InputError("account.wallet", "is required when a position is in cross mode")
    wallet = _number(raw, "wallet", "account", default=ZERO)
    if wallet < 0:
        raise InputError("account.wallet", f"must be >= 0, got {shown(raw['wallet'])}")
    return wallet


class _TableResolver:
    """Finds a symbol's tier table: the input's ``tiers`` first, then the bundled snapshot."""

    def __init__(
        self, profile: Profile, tables: Mapping[str, TierTable], bundled: BundledLoader
    ) -> None:
        self._profile = profile
        self._tables = tables
        self._loader = bundled
        self._bundled: BundledTiers | None = None

    def resolve(self, symbol: str, field: str) -> tuple[TierTable, Decimal, str | None]:
        """(table, default contract size, bundled asOf or None)."""
        table = self._tables.get(symbol)
        if table is not None:
            return table, ONE, None
        name = self._profile.name
        if self._bundled is None:
            try:
                self._bundled = self._loader(name)
            except GuardbotError as exc:
                raise InputError(
                    field, f"no tier table for {symbol}: give one in tiers ({exc})"
                ) from None
        bundled = self._bundled
        table = bundled.tables.get(symbol)
        if table is None:
            raise InputError(
                field,
                f"no tier table for {symbol}: give one in tiers (the bundled {name} tiers "
                f"as of {bundled.as_of} do not list it)",
            )
        return table, bundled.contract_size(symbol), bundled.as_of


# --- field helpers ----------------------------------------------------------------------------


def _number(
    obj: Mapping[str, object],
    key: str,
    where: str,
    *,
    positive: bool = False,
    default: Decimal | None = None,
) -> Decimal:
    field = f"{where}.{key}"
    raw = obj.get(key)
    if raw is None:
        if default is not None:
            return default
        raise InputError(field, "is required" if key not in obj else "is required, got null")
    value = parse_decimal(raw, field)
    if positive and value <= 0:
        raise InputError(field, f"must be > 0, got {shown(raw)}")
    return value


def _choice(
    obj: Mapping[str, object],
    key: str,
    where: str,
    allowed: tuple[str, ...],
    *,
    default: str | None = None,
) -> str:
    field = f"{where}.{key}"
    raw = obj.get(key)
    if raw is None:
        if default is not None:
            return default
        raise InputError(field, "is required" if key not in obj else "is required, got null")
    if raw not in allowed:
        options = " or ".join(json.dumps(a) for a in allowed)
        raise InputError(field, f"must be {options}, got {shown(raw)}")
    return str(raw)


def _symbol_message(symbol: object) -> str:
    return f'must be a ccxt unified symbol like "BTC/USDT:USDT", got {shown(symbol)}'
