"""What the mirror knows about one exchange account, merged from REST answers and stream updates.

REST answers (positions, balance, open orders, leverage and margin mode) are complete: they
replace what the book holds. Stream updates are partial: Binance's ``ACCOUNT_UPDATE`` carries
size, entry, margin mode and the isolated wallet of the positions that changed, but no leverage
and no liquidation price. A position changed by the stream keeps its leverage and loses the
exchange's liquidation price (now stale) until the next REST answer, which the follower asks
for soon after (``needs_positions``).

Everything is converted once to exact Decimals (through ``str``) and handed on as an immutable
:class:`~guardbot.core.mirror.MirrorCmd` (:meth:`AccountBook.command`). No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from guardbot.core.mirror import MirrorClose, MirrorCmd, MirrorOrder, MirrorPosition
from guardbot.mirror.venues import MirrorVenue, to_decimal

__all__ = ["AccountBook"]

ZERO = Decimal(0)
Key = tuple[str, str]


@dataclass(slots=True)
class _Position:
    symbol: str
    side: str
    contracts: Decimal
    entry: Decimal
    margin_mode: str
    isolated_wallet: Decimal
    leverage: Decimal | None
    liquidation: Decimal | None
    hedged: bool

    def frozen(self) -> MirrorPosition:
        return MirrorPosition(
            symbol=self.symbol,
            side=self.side,
            contracts=self.contracts,
            entry_price=self.entry,
            # Leverage moves only the initial margin, never a liquidation price; until the first
            # REST answer names it (it does at start), 1 is the figure that hides nothing.
            leverage=self.leverage
            if self.leverage is not None and self.leverage >= 1
            else Decimal(1),
            margin_mode=self.margin_mode,
            isolated_wallet=self.isolated_wallet if self.margin_mode == "isolated" else ZERO,
            liquidation_price=self.liquidation,
            hedged=self.hedged,
        )


class AccountBook:
    """See the module docstring. ``ready`` once a complete REST picture has been applied."""

    def __init__(self, account: str, venue: MirrorVenue) -> None:
        self.account = account
        self.venue = venue
        self.ready = False
        self.wallet: Decimal | None = None
        self.hedged = False
        self.positions: dict[Key, _Position] = {}
        self.orders: dict[str, MirrorOrder] = {}
        self.settings: dict[str, tuple[Decimal | None, str | None]] = {}
        self.needs_positions = False  # a stream change left liquidation prices stale
        self._reasons: dict[Key, str] = {}  # closing orders seen, by (symbol, side they close)
        self._closes: list[MirrorClose] = []  # positions gone since the last command
        self._deferred: set[Key] = set()  # gone from REST, kept one more answer (apply_rest)

    # ---- REST --------------------------------------------------------------------------------
    def apply_rest(
        self,
        *,
        positions: Iterable[Mapping[str, Any]],
        balance: Mapping[str, Any] | None = None,
        orders: Iterable[Mapping[str, Any]] | None = None,
        settings: Mapping[str, tuple[Decimal | None, str | None]] | None = None,
        hedged: bool | None = None,
    ) -> None:
        """A REST picture; ``positions`` always, the rest when it was fetched this time."""
        if settings is not None:
            self.settings = dict(settings)
        if hedged is not None:
            self.hedged = hedged  # before the positions: a hedge-mode account's are hedged
        fresh: dict[Key, _Position] = {}
        for raw in positions:
            if not self.venue.in_scope(raw):
                continue
            pos = self._rest_position(raw)
            if pos is not None:
                fresh[(pos.symbol, pos.side)] = pos
        if balance is not None:
            wallet = self.venue.cross_wallet_with(balance, _isolated_margin(fresh.values()))
            if wallet is not None:
                self.wallet = wallet
        # A position REST no longer lists, with no closing order seen: the order's stream update
        # may be on its way (REST can read the account between the two frames Binance sends).
        # It is kept until the next REST answer, which then decides (reason or ``unknown``).
        deferred: set[Key] = set()
        for key in self.positions.keys() - fresh.keys():
            if key not in self._reasons and key not in self._deferred:
                fresh[key] = self.positions[key]
                deferred.add(key)
        self._deferred = deferred
        self._replace_positions(fresh)
        if hedged is not None:
            self.hedged = hedged
        elif any(p.hedged for p in fresh.values()):
            self.hedged = True
        if orders is not None:
            self.orders = {}
            for raw in orders:
                if not self.venue.in_scope(raw):
                    continue
                order = self._order(raw)
                if order is not None:
                    self.orders[order.id] = order
            # a complete picture: older closing orders explain nothing new (those of deferred
            # positions still may)
            self._reasons = {k: v for k, v in self._reasons.items() if k in deferred}
        self.needs_positions = bool(deferred)
        if self.wallet is not None and balance is not None and orders is not None:
            self.ready = True

    def _rest_position(self, raw: Mapping[str, Any]) -> _Position | None:
        raw = self.venue.position(raw)
        contracts = to_decimal(raw.get("contracts"))
        side = raw.get("side")
        symbol = raw.get("symbol")
        if not contracts or side not in ("long", "short") or not isinstance(symbol, str):
            return None
        leverage, mode = self.settings.get(symbol, (None, None))
        previous = self.positions.get((symbol, str(side)))
        margin_mode = mode or raw.get("marginMode") or (previous.margin_mode if previous else None)
        return _Position(
            symbol=symbol,
            side=str(side),
            contracts=abs(contracts),
            entry=to_decimal(raw.get("entryPrice")) or ZERO,
            margin_mode="isolated" if margin_mode == "isolated" else "cross",
            isolated_wallet=self.venue.isolated_wallet(raw),
            leverage=to_decimal(raw.get("leverage"))
            or leverage
            or (previous.leverage if previous else None),
            liquidation=_positive(raw.get("liquidationPrice")),
            # ccxt leaves ``hedged`` None where the venue's position does not say (MEXC)
            hedged=bool(raw.get("hedged")) if raw.get("hedged") is not None else self.hedged,
        )

    # ---- stream ------------------------------------------------------------------------------
    def apply_stream_positions(self, updates: Iterable[Mapping[str, Any]]) -> None:
        fresh = dict(self.positions)
        updates = [self.venue.position(raw) for raw in updates]
        if self.venue.stream_positions_complete:
            listed = {(raw.get("symbol"), raw.get("side")) for raw in updates}
            if self.positions.keys() - listed:
                self.needs_positions = True  # gone from a complete list: REST says why
        for raw in updates:
            symbol = raw.get("symbol")
            if not isinstance(symbol, str) or not self.venue.in_scope(raw):
                continue
            contracts = abs(to_decimal(raw.get("contracts")) or ZERO)
            side = raw.get("side")
            hedged = bool(raw.get("hedged"))
            if not contracts:
                # one-way mode reports a closed position with side 'both'
                sides = (side,) if hedged and side in ("long", "short") else ("long", "short")
                for s in sides:
                    fresh.pop((symbol, str(s)), None)
                continue
            if side not in ("long", "short"):
                continue
            key = (symbol, str(side))
            previous = fresh.get(key)
            if not hedged:  # one-way: a flip removes the other side
                fresh.pop((symbol, "short" if side == "long" else "long"), None)
            leverage, mode = self.settings.get(symbol, (None, None))
            entry = to_decimal(raw.get("entryPrice")) or ZERO
            mode = raw.get("marginMode") or mode or (previous.margin_mode if previous else None)
            isolated_wallet = self.venue.isolated_wallet(raw)
            unchanged = (
                previous is not None
                and previous.contracts == contracts
                and previous.entry == entry
                and previous.isolated_wallet == isolated_wallet
            )
            fresh[key] = _Position(
                symbol=symbol,
                side=str(side),
                contracts=contracts,
                entry=entry,
                margin_mode="isolated" if mode == "isolated" else "cross",
                isolated_wallet=isolated_wallet,
                leverage=previous.leverage if previous else leverage,
                liquidation=previous.liquidation if unchanged and previous else None,
                hedged=hedged,
            )
            if not unchanged:
                self.needs_positions = True
        self._replace_positions(fresh)
        if any(p.hedged for p in fresh.values()):
            self.hedged = True

    def apply_stream_balance(self, balance: Mapping[str, Any]) -> None:
        wallet = self.venue.cross_wallet_with(balance, _isolated_margin(self.positions.values()))
        if wallet is not None:
            if wallet != self.wallet:
                # a cross liquidation price moves with the wallet: the exchange's figure is
                # stale until the positions are fetched again (comparing with it would be drift
                # that is not there)
                for pos in self.positions.values():
                    if pos.margin_mode == "cross":
                        pos.liquidation = None
                self.needs_positions = True
            self.wallet = wallet

    def apply_stream_orders(self, updates: Iterable[Mapping[str, Any]]) -> None:
        for raw in updates:
            order_id = raw.get("id")
            if order_id is None or not self.venue.in_scope(raw):
                continue
            status = self.venue.order_status(raw)
            if status == "open":
                order = self._order(raw)
                if order is not None:
                    self.orders[order.id] = order
                continue
            self.orders.pop(str(order_id), None)
            filled = to_decimal(raw.get("filled")) or ZERO
            symbol = raw.get("symbol")
            if status != "closed" or not isinstance(symbol, str):
                continue
            # a filled order closed a position; a stop / take-profit that fired (some venues
            # report the trigger order apart from the order it placed, before it) tells why
            fired = filled <= 0 and self.venue.order_kind(raw) is not None
            if filled > 0 or fired:
                closes = self.venue.order_position_side(raw) or (
                    "long" if self.venue.order_side(raw) == "sell" else "short"
                )
                reason = self.venue.close_reason(raw)
                if reason == "order" and self._reasons.get((symbol, closes)) not in (None, "order"):
                    continue  # the order a fired stop placed says less than the stop did
                self._reasons[(symbol, closes)] = reason

    def _order(self, raw: Mapping[str, Any]) -> MirrorOrder | None:
        kind = self.venue.order_kind(raw)
        symbol, side = raw.get("symbol"), self.venue.order_side(raw)
        if kind is None or not isinstance(symbol, str) or side not in ("buy", "sell"):
            return None
        whole = self.venue.closes_whole_position(raw)
        trigger = next(
            (
                price
                for price in (
                    _positive(raw.get(k))
                    for k in ("triggerPrice", "stopLossPrice", "takeProfitPrice", "stopPrice")
                )
                if price is not None
            ),
            None,
        )
        return MirrorOrder(
            id=str(raw.get("id")),
            symbol=symbol,
            kind=kind,
            side=str(side),
            trigger_price=trigger,
            amount=None if whole else _positive(raw.get("amount")),
            position_side=self.venue.order_position_side(raw),
            reduce_only=self.venue.reduce_only(raw) or whole,
        )

    # ---- out ---------------------------------------------------------------------------------
    def _replace_positions(self, fresh: dict[Key, _Position]) -> None:
        for key in sorted(self.positions.keys() - fresh.keys()):
            reason = self._reasons.pop(key, "unknown")
            self._closes.append(MirrorClose(key[0], key[1], reason))
        self.positions = fresh

    def command(self, source: str) -> MirrorCmd | None:
        """The account as it stands; None until the first complete REST picture."""
        if not self.ready or self.wallet is None:
            return None
        closes, self._closes = tuple(self._closes), []
        return MirrorCmd(
            account=self.account,
            wallet=self.wallet,
            positions=tuple(self.positions[k].frozen() for k in sorted(self.positions)),
            orders=tuple(self.orders[k] for k in sorted(self.orders)),
            closes=closes,
            hedged=self.hedged,
            source=source,
        )


def _isolated_margin(positions: Iterable[_Position]) -> Decimal:
    return sum((p.isolated_wallet for p in positions if p.margin_mode == "isolated"), ZERO)


def _positive(value: object) -> Decimal | None:
    number = to_decimal(value)
    return number if number is not None and number > 0 else None
