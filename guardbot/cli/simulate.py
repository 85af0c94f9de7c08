"""``guardbot simulate``: JSON Lines of ticks and commands in, JSON Lines of events out.

The same engine and guard policies as the daemon; deterministic (same input, same bytes out).
Bad input stops the run with an :class:`InputError` whose field starts with the line number.
"""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, TextIO, TypeVar

from guardbot.cli.calc import check_tier_rows
from guardbot.config.reader import read_table
from guardbot.config.sections import AccountSection
from guardbot.core.alerts import AlertConfig
from guardbot.core.commands import Command, TickCmd, parse_command
from guardbot.core.config import AccountConfig, EngineConfig, Fees
from guardbot.core.engine import Engine
from guardbot.core.events import Event, to_jsonable
from guardbot.core.guards import GuardConfig
from guardbot.core.keys import check_keys
from guardbot.core.num import decimal_context, parse_decimal
from guardbot.core.profiles import get_profile
from guardbot.core.tiers import TierTable
from guardbot.errors import InputError
from guardbot.formats.jsonio import loads_exact
from guardbot.formats.pretty import format_event
from guardbot.formats.ticklines import TickDecoder
from guardbot.tiers.source import load_bundled

__all__ = ["build_config", "run_simulate", "simulate_lines"]

#: 9999-12-31T23:59:59.999Z in milliseconds: later times cannot be shown as dates.
MAX_TS = 253_402_300_799_999

_CONFIG_KEYS = {
    "type",
    "profile",
    "profile_options",
    "tiers",
    "contractSizes",
    "fees",
    "accounts",
    "guards",
    "alerts",
    "trigger_price",
    "slippage_bps",
}


def _object(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(field, "must be an object")
    return value


def _unknown(obj: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    check_keys(obj, allowed, where)


def _opt_num(obj: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    if obj.get(key) is None:
        return None
    return parse_decimal(obj[key], f"{where}.{key}")


_Section = TypeVar("_Section")


def _core_section(raw: object, where: str, cls: type[_Section]) -> _Section:
    values = read_table(_object(raw or {}, where), where, cls)
    try:
        return cls(**values)
    except InputError as exc:  # a rule between keys (levels increasing, hysteresis below)
        raise exc.under(where) from None


def build_config(obj: Mapping[str, Any] | None) -> EngineConfig:
    """An :class:`EngineConfig` from the optional first ``config`` line (docs/contracts.md §2)."""
    obj = obj or {}
    _unknown(obj, _CONFIG_KEYS, "")
    profile = get_profile(obj.get("profile", "binance"))
    profile = profile.with_options(_object(obj.get("profile_options") or {}, "profile_options"))
    bundled = load_bundled(profile.name)
    tables: dict[str, TierTable] = dict(bundled.tables)
    sizes: dict[str, Decimal] = dict(bundled.contract_sizes)
    for symbol, rows in _object(obj.get("tiers") or {}, "tiers").items():
        check_tier_rows(rows, f'tiers["{symbol}"]')
        try:
            tables[symbol] = TierTable.from_ccxt(symbol, rows, derive_cum=profile.deducts_cum)
        except InputError as exc:
            raise exc.under(f'tiers["{symbol}"]') from None
    for symbol, size in _object(obj.get("contractSizes") or {}, "contractSizes").items():
        value = parse_decimal(size, f'contractSizes["{symbol}"]')
        if value <= 0:
            raise InputError(f'contractSizes["{symbol}"]', f"must be > 0, got {size}")
        sizes[symbol] = value
    fees_obj = _object(obj.get("fees") or {}, "fees")
    _unknown(fees_obj, {"maker", "taker"}, "fees")
    try:
        fees = Fees(
            maker=_opt_num(fees_obj, "maker", "fees") or Decimal(0),
            taker=_opt_num(fees_obj, "taker", "fees") or Decimal(0),
        )
    except InputError as exc:
        raise exc.under("fees") from None
    # accounts, guards and alerts: the keys, defaults and rules of the TOML sections of the same
    # names, read by the same reader (guardbot.config), first problem raised.
    accounts: dict[str, AccountConfig] = {}
    for account_id, raw in _object(obj.get("accounts") or {}, "accounts").items():
        where = f"accounts.{account_id}"
        account = AccountSection(**read_table(_object(raw or {}, where), where, AccountSection))
        own_fees = None
        if account.maker_fee is not None or account.taker_fee is not None:
            # A rate the account does not set is the config line's.
            maker, taker = account.maker_fee, account.taker_fee
            own_fees = Fees(
                fees.maker if maker is None else maker, fees.taker if taker is None else taker
            )
        accounts[str(account_id)] = dataclasses.replace(account.account_config(), fees=own_fees)
    guards = _core_section(obj.get("guards"), "guards", GuardConfig)
    alerts = _core_section(obj.get("alerts"), "alerts", AlertConfig)
    slippage = _opt_num(obj, "slippage_bps", "config")
    return EngineConfig(
        profile=profile,
        tiers=tables,
        contract_sizes=sizes,
        fees=fees,
        accounts=accounts,
        auto_create_accounts=not accounts,
        guards=guards,
        alerts=alerts,
        trigger_price=str(obj.get("trigger_price", "mark")),
        slippage_bps=slippage if slippage is not None else Decimal(0),
    )


def _parse_line(text: str, number: int) -> Mapping[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    obj = loads_exact(text, f"line {number}", lines=False)
    if not isinstance(obj, Mapping):
        raise InputError(f"line {number}", "must be a JSON object")
    return obj


def simulate_lines(lines: Iterable[str]) -> Iterator[Event]:
    """Run the engine over JSON Lines; yield events, then the ``final`` event."""
    try:
        yield from _simulate(lines)
    finally:
        gc.unfreeze()


def _simulate(lines: Iterable[str]) -> Iterator[Event]:
    engine: Engine | None = None
    commanded = False  # a command since the last tick line
    last_ts = 0
    # tick lines of the common shape skip the general parser and go to the engine as rows
    fast = TickDecoder(typed=True).fast_row
    for number, text in enumerate(lines, start=1):
        row = fast(text)
        if row is not None and last_ts <= row[0] <= MAX_TS:
            if engine is None:
                engine = Engine(build_config(None))
            if commanded:
                # what the commands built (accounts, positions, orders) lives on: out of the
                # collector's full walks, which visit every tracked object (with 99,000 open
                # positions they were a fifth of the ticks' time), as replay does after set-up
                gc.freeze()
                commanded = False
            last_ts = row[0]
            yield from engine.quote(*row)
            continue
        obj = _parse_line(text, number)
        if obj is None:
            continue
        where = f"line {number}"
        commanded = True
        try:
            if obj.get("type") == "config":
                if engine is not None:
                    raise InputError("type", "a config line must come first")
                engine = Engine(build_config(obj))
                continue
            if engine is None:
                engine = Engine(build_config(None))
            ts = _ts(obj, last_ts)
            command: Command = parse_command(obj)
            if isinstance(command, TickCmd) and ts is None:
                raise InputError("ts", "is required on a tick")
            if ts is not None:
                last_ts = ts
            yield from engine.apply(ts if ts is not None else last_ts, command)
        except InputError as exc:
            raise exc.under(where) from None
    if engine is None:  # not one line
        raise InputError("input", "is empty (expected JSON Lines, docs/contracts.md §2)")
    yield {
        "type": "final",
        "ts": last_ts,
        "accounts": {a.id: engine.state(a) for a in engine.iter_accounts()},
    }


def _ts(obj: Mapping[str, Any], last: int) -> int | None:
    raw = obj.get("ts")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, Decimal)):
        raise InputError("ts", f"must be an integer number of milliseconds, got {raw!r}")
    with decimal_context():
        value = Decimal(raw)
        if value != value.to_integral_value() or value < 0:
            raise InputError("ts", f"must be a whole number of milliseconds >= 0, got {raw}")
    ts = int(value)
    if ts > MAX_TS:
        raise InputError("ts", f"must be before the year 10000 ({MAX_TS}), got {raw}")
    if ts < last:
        raise InputError("ts", f"goes back in time ({ts} after {last})")
    return ts


def run_simulate(source: TextIO, out: TextIO, *, pretty: bool = False) -> None:
    """Read JSON Lines from ``source``; write events to ``out`` as JSON Lines or a readable log."""
    for event in simulate_lines(source):
        if pretty:
            out.write(format_event(event))
            out.write("\n")
        else:
            out.write(json.dumps(to_jsonable(event), separators=(",", ":")))
            out.write("\n")
