"""Read a ``guardbot replay`` run directory: ``summary.json``, ``events.jsonl``, ``samples.jsonl``.

Only what the report shows is kept, so a long run fits in memory: the sample time series as
``array('d')`` columns (8 bytes a value; NaN where a series has no value at a sample) and the
events the report draws or tabulates (fills, guard events, the markers of the price charts).
Other event types are counted and otherwise ignored, so new event types do not break reports.

Every problem raises :class:`~guardbot.errors.InputError` with a one-line message that names the
file and, for JSON Lines, the line: ``run/events.jsonl: line 7: price: must be a decimal ...``.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from guardbot.core.num import ZERO
from guardbot.errors import InputError

__all__ = [
    "EVENTS",
    "SAMPLES",
    "SUMMARY",
    "Fill",
    "Marker",
    "Notable",
    "Refusals",
    "RunData",
    "Totals",
    "load_run",
]

SUMMARY = "summary.json"
EVENTS = "events.jsonl"
SAMPLES = "samples.jsonl"

#: The alert levels drawn when summary.json does not name them (the engine's defaults).
DEFAULT_ALERT_LEVELS = (Decimal("0.5"), Decimal("0.7"), Decimal("0.8"))

#: Event types listed in the report's guard-event table.
NOTABLE_TYPES = frozenset(
    {
        "margin_alert",
        "margin_recovered",
        "liquidation",
        "stop_triggered",
        "order_rejected",
        "trading_state",
    }
)

NAN = math.nan


@dataclass(frozen=True, slots=True)
class Fill:
    """One fill, values as the run wrote them (decimal strings), plus its role for a position."""

    ts: int
    account: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    order_id: str
    reduce_only: bool
    role: str  # "entry" (the position grew or opened) or "exit" (it shrank, closed or flipped)


@dataclass(frozen=True, slots=True)
class Marker:
    """A point on a price chart; ``price`` None means "at the mark of that moment"."""

    ts: int
    symbol: str
    price: float | None
    kind: str  # entry | exit | stop | alert | liquidation


@dataclass(frozen=True, slots=True)
class Notable:
    """A guard event for the report's table: when, who, what and a readable detail."""

    ts: int
    account: str
    type: str
    symbol: str
    detail: str


@dataclass(slots=True)
class Refusals:
    """Refused orders of one account, code and symbol: how many, when, and the first reason."""

    account: str
    code: str
    symbol: str
    count: int
    first_ts: int
    last_ts: int
    reason: str


@dataclass(slots=True)
class Totals:
    """Per-account sums over the events, to show next to (and check) summary.json."""

    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    liquidation_losses: Decimal = ZERO
    fills: int = 0


@dataclass(slots=True)
class RunData:
    run_dir: Path
    summary: Mapping[str, Any]
    alert_levels: list[Decimal]
    ts: array[int] = field(default_factory=lambda: array("q"))  # sample times, epoch ms
    marks: dict[str, array[float]] = field(default_factory=dict)  # symbol -> mark
    wallet: dict[str, array[float]] = field(default_factory=dict)  # account -> USDT
    equity: dict[str, array[float]] = field(default_factory=dict)  # account -> USDT
    account_ratio: dict[str, array[float]] = field(default_factory=dict)
    # (account, symbol) of isolated positions -> the position's margin ratio
    position_ratio: dict[tuple[str, str], array[float]] = field(default_factory=dict)
    # (account, symbol) -> entry price, liquidation price, signed size (contracts; short < 0)
    entry_price: dict[tuple[str, str], array[float]] = field(default_factory=dict)
    liquidation_price: dict[tuple[str, str], array[float]] = field(default_factory=dict)
    position_size: dict[tuple[str, str], array[float]] = field(default_factory=dict)
    # margin ratios known at events between the samples: alerts (the ratio that crossed a
    # level) and liquidations (1.0, the level they happen at); keyed like account_ratio
    # (account) or position_ratio ((account, symbol))
    ratio_events: dict[Any, list[tuple[int, float]]] = field(default_factory=dict)
    #: fills and, as role "liquidation", the closes of liquidated positions
    fills: list[Fill] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    notables: list[Notable] = field(default_factory=list)
    totals: dict[str, Totals] = field(default_factory=dict)
    event_counts: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    refusals: dict[tuple[str, str, str], Refusals] = field(default_factory=dict)
    event_lines: int = 0

    @property
    def symbols(self) -> list[str]:
        """Symbols with prices, in the order summary.json lists them, then the others sorted."""
        listed = [s for s in self.summary.get("symbols", []) if isinstance(s, str)]
        return [s for s in listed if s in self.marks] + sorted(set(self.marks) - set(listed))

    @property
    def accounts(self) -> list[str]:
        """Accounts of the summary, then any others seen in samples or events, sorted."""
        accounts = self.summary.get("accounts")
        listed = list(accounts) if isinstance(accounts, Mapping) else []
        seen = set(self.equity) | set(self.totals)
        return listed + sorted(seen - set(listed))


# ---------------------------------------------------------------------------------------- loading


def load_run(run_dir: Path) -> RunData:
    """Read the three files of ``run_dir``; raise InputError naming the file and line."""
    if not run_dir.is_dir():
        raise InputError(
            str(run_dir), "is not a directory (give the --out directory of guardbot replay)"
        )
    summary = _load_summary(run_dir / SUMMARY)
    data = RunData(run_dir, summary, _alert_levels(summary, run_dir / SUMMARY))
    _load_samples(run_dir / SAMPLES, data)
    _load_events(run_dir / EVENTS, data)
    return data


def _open_lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as file:
            yield from enumerate(file, start=1)
    except FileNotFoundError:
        raise InputError(
            str(path), "missing (is this the --out directory of guardbot replay?)"
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InputError(str(path), f"cannot be read: {exc.strerror or exc}") from None


def _load_summary(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            str(path), "missing (is this the --out directory of guardbot replay?)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot be read: {exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise InputError(str(path), f"must be a JSON object, got {_kind(obj)}")
    accounts = obj.get("accounts", {})
    if not isinstance(accounts, dict):
        raise InputError(f"{path}: accounts", f"must be an object, got {_kind(accounts)}")
    for name, acc in accounts.items():
        if not isinstance(acc, dict):
            raise InputError(f"{path}: accounts.{name}", f"must be an object, got {_kind(acc)}")
    refused = obj.get("refusedOrders", {})
    if not isinstance(refused, dict) or not all(_is_int(v) for v in refused.values()):
        raise InputError(f"{path}: refusedOrders", "must map codes to counts")
    for key in ("alerts", "liquidations", "trades", "ticks", "strategyErrors"):
        if key in obj and not _is_int(obj[key]):
            raise InputError(f"{path}: {key}", f"must be an integer, got {obj[key]!r:.40}")
    for key in ("startTs", "endTs"):
        if obj.get(key) is not None and not _is_int(obj[key]):
            raise InputError(f"{path}: {key}", f"must be epoch milliseconds, got {obj[key]!r:.40}")
    symbols = obj.get("symbols", [])
    if not isinstance(symbols, list):
        raise InputError(f"{path}: symbols", f"must be a list, got {_kind(symbols)}")
    return obj


def _alert_levels(summary: Mapping[str, Any], path: Path) -> list[Decimal]:
    raw = summary.get("alertLevels")
    if raw is None:
        return list(DEFAULT_ALERT_LEVELS)
    if not isinstance(raw, list):
        raise InputError(f"{path}: alertLevels", f"must be a list, got {_kind(raw)}")
    return [_decimal(v, f"alertLevels[{i}]", str(path)) for i, v in enumerate(raw)]


def _parse_line(text: str, path: Path, number: int) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {number}", f"invalid JSON: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: line {number}", f"must be a JSON object, got {_kind(obj)}")
    ts = obj.get("ts")
    if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
        raise InputError(
            f"{path}: line {number}: ts", f"must be epoch milliseconds >= 0, got {ts!r:.40}"
        )
    return obj


def _load_samples(path: Path, data: RunData) -> None:
    """Columns of the samples; a fast path per line, the checking path only to explain errors.

    Parsing dominates the cost of a report (about 25 µs of ``json.loads`` per 20-symbol line),
    so the fast path does no more than index, convert and append.
    """
    ts = data.ts
    marks, wallet, equity = data.marks, data.wallet, data.equity
    ratio, position_ratio = data.account_ratio, data.position_ratio
    entry, liquidation, size = data.entry_price, data.liquidation_price, data.position_size
    tables: tuple[dict[Any, array[float]], ...] = (
        marks,
        wallet,
        equity,
        ratio,
        position_ratio,
        entry,
        liquidation,
        size,
    )
    n = 0
    created = [0]  # columns so far: when a line appends to all, no padding is needed
    account_columns = ((wallet, "wallet"), (equity, "equity"), (ratio, "marginRatio"))
    to_float = float

    def column(table: dict[Any, array[float]], key: Any) -> array[float]:
        # a series first seen at sample n has NaN for the samples before it
        col = table[key] = array("d", [NAN]) * (n - 1)
        created[0] += 1
        return col

    for number, text in _open_lines(path):
        obj = _parse_line(text, path, number)
        if obj is None:
            continue
        n += 1
        ts.append(obj["ts"])
        appended = 0
        try:
            for symbol, quote in obj.get("prices", {}).items():
                value = quote.get("mark")
                col = marks.get(symbol)
                if col is None:
                    col = column(marks, symbol)
                col.append(NAN if value is None else to_float(value))
                appended += 1
            for name, acc in obj.get("accounts", {}).items():
                for table, key in account_columns:
                    value = acc.get(key)
                    col = table.get(name)
                    if col is None:
                        col = column(table, name)
                    col.append(NAN if value is None else to_float(value))
                appended += 3
                for symbol, pos in acc.get("positions", {}).items():
                    held_key = (name, symbol)
                    for held_table, field_name in (
                        (entry, "entryPrice"),
                        (liquidation, "liquidationPrice"),
                    ):
                        value = pos.get(field_name)
                        col = held_table.get(held_key)
                        if col is None:
                            col = column(held_table, held_key)
                        col.append(NAN if value is None else to_float(value))
                    value = pos.get("contracts")
                    col = size.get(held_key)
                    if col is None:
                        col = column(size, held_key)
                    amount = NAN if value is None else to_float(value)
                    col.append(-amount if pos.get("side") == "short" else amount)
                    appended += 3
                    if pos.get("marginMode") == "isolated":
                        value = pos.get("marginRatio")
                        col = position_ratio.get((name, symbol))
                        if col is None:
                            col = column(position_ratio, (name, symbol))
                        col.append(NAN if value is None else to_float(value))
                        appended += 1
        except (AttributeError, TypeError, ValueError) as exc:
            try:
                _check_sample(obj)
            except InputError as error:
                raise _at(error, f"{path}: line {number}") from None
            raise InputError(f"{path}: line {number}", f"invalid sample: {exc}") from None
        if appended < created[0]:
            for table in tables:
                for col in table.values():
                    if len(col) < n:
                        col.append(NAN)
    import numpy as np  # here: `guardbot report --help` and the cli parser need no numpy

    for table in tables:
        for col in table.values():
            values = np.frombuffer(col, dtype=np.float64)
            values[np.isinf(values)] = NAN  # float() takes "inf": not a plottable price


def _check_sample(obj: Mapping[str, Any]) -> None:
    """Raise the InputError that explains why a sample line is not usable."""
    prices = _mapping(obj.get("prices", {}), "prices")
    for symbol, quote in prices.items():
        quote = _mapping(quote, f"prices.{symbol}")
        _float(quote.get("mark"), f"prices.{symbol}.mark")
    accounts = _mapping(obj.get("accounts", {}), "accounts")
    for name, acc in accounts.items():
        where = f"accounts.{name}"
        acc = _mapping(acc, where)
        for key in ("wallet", "equity", "marginRatio"):
            _float(acc.get(key), f"{where}.{key}")
        positions = _mapping(acc.get("positions", {}), f"{where}.positions")
        for symbol, pos in positions.items():
            pos = _mapping(pos, f"{where}.positions.{symbol}")
            for key in ("marginRatio", "entryPrice", "liquidationPrice", "contracts"):
                _float(pos.get(key), f"{where}.positions.{symbol}.{key}")


def _load_events(path: Path, data: RunData) -> None:
    # signed position size per (account, symbol), from the fills, to tell entries from exits
    held: dict[tuple[str, str], Decimal] = {}
    for number, text in _open_lines(path):
        obj = _parse_line(text, path, number)
        if obj is None:
            continue
        data.event_lines += 1
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise InputError(f"{path}: line {number}: type", f"must be a string, got {kind!r:.40}")
        data.event_counts[kind] += 1
        try:
            _event(obj, kind, data, held)
        except InputError as exc:
            raise _at(exc, f"{path}: line {number}") from None


def _event(
    obj: dict[str, Any], kind: str, data: RunData, held: dict[tuple[str, str], Decimal]
) -> None:
    ts: int = obj["ts"]
    account = _text(obj.get("account"))
    totals = data.totals.setdefault(account, Totals()) if account else None
    if kind == "fill":
        symbol = _required_text(obj, "symbol")
        side = _required_text(obj, "side")
        amount = _decimal(obj.get("amount"), "amount")
        price = _decimal(obj.get("price"), "price")
        fee = _decimal_or_zero(obj.get("fee"), "fee")
        pnl = _decimal_or_zero(obj.get("realizedPnl"), "realizedPnl")
        reduce_only = obj.get("reduceOnly") is True
        key = (account, symbol)
        before = held.get(key, ZERO)
        after = _position_after(obj, before, side, amount)
        grew = (
            after != 0 and (before == 0 or (after > 0) == (before > 0)) and abs(after) > abs(before)
        )
        role = "entry" if (grew if "positionContracts" in obj else not reduce_only) else "exit"
        held[key] = after
        data.fills.append(
            Fill(
                ts,
                account,
                symbol,
                side,
                amount,
                price,
                fee,
                pnl,
                _text(obj.get("id", obj.get("orderId"))),
                reduce_only,
                role,
            )
        )
        data.markers.append(Marker(ts, symbol, float(price), role))
        if totals is not None:
            totals.fills += 1
            totals.fees += fee
            totals.realized_pnl += pnl
        return
    if kind == "funding":
        if totals is not None:
            totals.funding += _decimal_or_zero(obj.get("amount"), "amount")
        return
    if kind not in NOTABLE_TYPES:
        return
    symbol = _text(obj.get("symbol"))
    if kind == "order_rejected":
        code = _text(obj.get("code")) or "UNKNOWN"
        data.refused[code] += 1
        reason = _text(obj.get("reason"))
        group = data.refusals.get((account, code, symbol))
        if group is None:
            data.refusals[(account, code, symbol)] = Refusals(
                account, code, symbol, 1, ts, ts, reason
            )
        else:
            group.count += 1
            group.last_ts = ts
        return  # grouped by code and symbol: one row each, not one per refusal
    elif kind == "margin_alert":
        # an account-wide (cross) alert has no symbol: draw it on the chart of the symbol whose
        # liquidation is nearest, at that symbol's mark
        symbol = symbol or _text(obj.get("liquidationSymbol"))
        ratio = _decimal_or_none(obj.get("marginRatio"), "marginRatio")
        if ratio is not None:
            _ratio_point(data, obj, account, ts, float(ratio))
        threshold = _text(obj.get("threshold"))
        detail = " ".join(
            part
            for part in (
                _text(obj.get("severity")),
                f"level {threshold}" if threshold else "",
                f"ratio {_short(ratio, 4)}" if ratio is not None else "",
                _text(obj.get("scope")),
            )
            if part
        )
        if symbol:
            data.markers.append(Marker(ts, symbol, _optional_float(obj.get("markPrice")), "alert"))
    elif kind == "margin_recovered":
        ratio = _decimal_or_none(obj.get("marginRatio"), "marginRatio")
        if ratio is not None:
            _ratio_point(data, obj, account, ts, float(ratio))
        detail = f"ratio {_short(ratio, 4)}" if ratio is not None else ""
    elif kind == "liquidation":
        at = _decimal_or_none(obj.get("price"), "price")
        loss = _decimal_or_zero(obj.get("loss"), "loss")
        fee = _decimal_or_zero(obj.get("fee"), "fee")
        if totals is not None:
            totals.liquidation_losses += loss
        # the ratio reached the liquidation level (1.0) at this moment; the next sample shows
        # the account after the liquidation
        _ratio_point(data, obj, account, ts, 1.0)
        if symbol and at is not None:
            _liquidation_trade(data, obj, account, symbol, at, loss, fee, held)
        detail = " ".join(
            part
            for part in (
                _text(obj.get("side")),
                _text(obj.get("contracts")),
                f"at {_short(at, 8)}" if at is not None else "",
                f"loss {_short(loss, 8)} USDT",
                f"({_text(obj.get('scope'))})" if obj.get("scope") else "",
            )
            if part
        )
        if symbol:
            data.markers.append(
                Marker(ts, symbol, float(at) if at is not None else None, "liquidation")
            )
    elif kind == "stop_triggered":
        at = _decimal_or_none(obj.get("price"), "price")
        detail = " ".join(
            part
            for part in (
                _text(obj.get("kind")) or "stop",
                _text(obj.get("id")),
                f"trigger {_text(obj.get('triggerPrice'))}" if obj.get("triggerPrice") else "",
                f"at {_short(at, 8)}" if at is not None else "",
            )
            if part
        )
        if symbol:
            data.markers.append(Marker(ts, symbol, float(at) if at is not None else None, "stop"))
    else:  # trading_state
        detail = f"{_text(obj.get('state'))}: {_text(obj.get('reason'))}".strip(": ")
    data.notables.append(Notable(ts, account, kind, symbol, detail))


def _ratio_point(
    data: RunData, obj: Mapping[str, Any], account: str, ts: int, ratio: float
) -> None:
    """A margin ratio known at an event: the account's (cross) or an isolated position's."""
    symbol = _text(obj.get("symbol"))
    key: Any = account if obj.get("scope") == "account" or not symbol else (account, symbol)
    data.ratio_events.setdefault(key, []).append((ts, ratio))


def _liquidation_trade(
    data: RunData,
    obj: Mapping[str, Any],
    account: str,
    symbol: str,
    price: Decimal,
    loss: Decimal,
    fee: Decimal,
    held: dict[tuple[str, str], Decimal],
) -> None:
    """The close of a liquidated position, as a row of the trades table: the position's side
    closed at the liquidation price; ``loss`` (what the wallet lost) is the liquidation fee
    plus the position's loss at that price, so the row's PnL is ``fee - loss``."""
    contracts = _decimal_or_zero(obj.get("contracts"), "contracts")
    side = "sell" if obj.get("side") == "long" else "buy"
    held[(account, symbol)] = ZERO
    data.fills.append(
        Fill(
            obj["ts"],
            account,
            symbol,
            side,
            contracts,
            price,
            fee,
            fee - loss,
            "liquidation",
            True,
            "liquidation",
        )
    )


def _position_after(obj: Mapping[str, Any], before: Decimal, side: str, amount: Decimal) -> Decimal:
    """The signed position after a fill: from positionSide/positionContracts when present."""
    if "positionContracts" in obj:
        contracts = _decimal_or_zero(obj.get("positionContracts"), "positionContracts")
        side_after = obj.get("positionSide")
        return -contracts if side_after == "short" else contracts if side_after == "long" else ZERO
    return before + (amount if side == "buy" else -amount)


# ---------------------------------------------------------------------------------------- fields


def _at(exc: InputError, prefix: str) -> InputError:
    """``exc`` with the file and line in front: ``run/events.jsonl: line 7: price: ...``."""
    return InputError(f"{prefix}: {exc.field}" if exc.field else prefix, exc.message)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _required_text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(key, f"must be a non-empty string, got {value!r:.40}")
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise InputError(where, f"must be an object, got {_kind(value)}")
    return value


def _decimal(value: object, where: str, prefix: str = "") -> Decimal:
    """A decimal string (or JSON number) as an exact Decimal; anything else is an error."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            pass
        else:
            if result.is_finite():
                return result
    where = f"{prefix}: {where}" if prefix else where
    raise InputError(where, f"must be a decimal number, got {value!r:.40}")


def _decimal_or_zero(value: object, where: str) -> Decimal:
    return ZERO if value is None else _decimal(value, where)


def _decimal_or_none(value: object, where: str) -> Decimal | None:
    return None if value is None else _decimal(value, where)


def _float(value: object, where: str) -> float:
    """A sample value for plotting: null is NaN (a gap in the line)."""
    if value is None:
        return NAN
    if isinstance(value, str):
        try:
            result = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(result):
                return result
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise InputError(where, f"must be a decimal number or null, got {value!r:.40}")


def _optional_float(value: object) -> float | None:
    try:
        return None if value is None else float(_decimal(value, ""))
    except InputError:
        return None  # only the position of a marker: fall back to the mark of that moment


def _short(value: Decimal | None, places: int) -> str:
    """``value`` with at most ``places`` decimals (margin ratios come with 40 digits)."""
    if value is None:
        return ""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        value = value.quantize(Decimal(1).scaleb(-places))
    return f"{value:f}"
