"""The daemon's configuration: a TOML file validated into frozen typed objects
(docs/architecture.md §7).

:func:`load_config` reads the file (or the embedded offline defaults), applies ``GUARDBOT_*``
environment overrides, checks every key and raises one :class:`~guardbot.errors.ConfigError`
listing every problem, one per line, as ``<key path>: <what is wrong>``.

Secrets never come from the file: exchange credentials, the MQTT password and the control token
are read from environment variables into :class:`Secret`, whose ``repr`` hides the value.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from guardbot.core.alerts import AlertConfig
from guardbot.core.commands import parse_command
from guardbot.core.config import AccountConfig, EngineConfig, Fees
from guardbot.core.guards import GuardConfig
from guardbot.core.num import ZERO, parse_decimal
from guardbot.core.profiles import PROFILES, Profile, get_profile, profile_for_exchange
from guardbot.core.tiers import TierTable
from guardbot.errors import ConfigError, InputError
from guardbot.formats.jsonio import loads_exact
from guardbot.mqtt.commands import ALLOWED_TYPES

__all__ = [
    "DEFAULT_TOML",
    "ENV_PREFIX",
    "EXCHANGE_SECRET_ENV",
    "AccountSection",
    "Config",
    "ControlSection",
    "ExchangeSection",
    "FeedSection",
    "GuardbotSection",
    "MetricsSection",
    "MqttSection",
    "Secret",
    "StrategySection",
    "load_config",
]

ENV_PREFIX = "GUARDBOT_"

#: ccxt constructor key -> the environment variable that supplies it.
EXCHANGE_SECRET_ENV: Mapping[str, str] = {
    "apiKey": "GUARDBOT_EXCHANGE_API_KEY",
    "secret": "GUARDBOT_EXCHANGE_SECRET",
    "password": "GUARDBOT_EXCHANGE_PASSWORD",
}

#: What ``load_config(None)`` loads: an offline demo that needs no file, exchange or broker.
DEFAULT_TOML = """
[guardbot]
instance = "default"

[exchange]
id = "binanceusdm"
symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]

[feed]
mode = "sim"
sim_seed = 1
stale_after_s = 5

[accounts.demo]
wallet = 10000
default_margin_mode = "cross"
default_leverage = 10
maker_fee = 0.0002
taker_fee = 0.0005

[mqtt]
embedded_broker = "auto"
"""


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


# ---------------------------------------------------------------------------------------------
# The typed sections


@dataclass(frozen=True, slots=True)
class GuardbotSection:
    instance: str = "default"
    data_dir: Path = Path("./data")
    log_format: str = "auto"
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class ExchangeSection:
    id: str = "binanceusdm"
    symbols: tuple[str, ...] = ("BTC/USDT:USDT", "ETH/USDT:USDT")
    profile: Profile = PROFILES["binance"]
    trigger_price: str = "mark"
    slippage_bps: Decimal = ZERO
    #: Passed to the ccxt constructor (never holds credentials).
    ccxt: dict[str, Any] = field(default_factory=dict)
    api_key: Secret | None = None
    secret: Secret | None = None
    password: Secret | None = None

    def ccxt_options(self) -> dict[str, Any]:
        """The ccxt constructor arguments with the credentials from the environment added."""
        options = dict(self.ccxt)
        credentials = {"apiKey": self.api_key, "secret": self.secret, "password": self.password}
        for key, value in credentials.items():
            if value is not None:
                options[key] = value.reveal()
        return options


@dataclass(frozen=True, slots=True)
class FeedSection:
    mode: str = "ccxt"
    stale_after_s: float = 10.0
    rest_poll_s: float = 2.0
    replay_file: Path | None = None
    speed: float = 1.0
    sim_seed: int = 0


@dataclass(frozen=True, slots=True)
class AccountSection:
    wallet: Decimal = Decimal(10000)
    default_margin_mode: str = "cross"
    default_leverage: Decimal = Decimal(10)
    maker_fee: Decimal | None = None
    taker_fee: Decimal | None = None

    @property
    def fees(self) -> Fees | None:
        """The account's own fees, or None when it sets neither rate (the engine's fees)."""
        if self.maker_fee is None and self.taker_fee is None:
            return None
        return Fees(self.maker_fee or ZERO, self.taker_fee or ZERO)

    def account_config(self) -> AccountConfig:
        return AccountConfig(
            wallet=self.wallet,
            default_margin_mode=self.default_margin_mode,
            default_leverage=self.default_leverage,
            fees=self.fees,
        )


@dataclass(frozen=True, slots=True)
class MqttSection:
    url: str = "mqtt://127.0.0.1:1883"
    topic_prefix: str = "guardbot"
    embedded_broker: str = "auto"
    username: str | None = None
    password_env: str | None = None
    password: Secret | None = None
    tls_ca: Path | None = None
    qos: int = 1

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)


@dataclass(frozen=True, slots=True)
class ControlSection:
    enabled: bool = False
    token_env: str = "GUARDBOT_CONTROL_TOKEN"
    token: Secret | None = None


@dataclass(frozen=True, slots=True)
class MetricsSection:
    enabled: bool = True
    listen: str = "127.0.0.1:9108"

    @property
    def host(self) -> str:
        return _split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return _split_listen(self.listen)[1]


def _split_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class StrategySection:
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    #: Stop the daemon at the strategy's first exception (default: log, count, go on).
    stop_on_error: bool = False

    @property
    def file(self) -> str:
        return self.path.rsplit(":", 1)[0]

    @property
    def class_name(self) -> str:
        return self.path.rsplit(":", 1)[1]


@dataclass(frozen=True, slots=True)
class Config:
    guardbot: GuardbotSection = field(default_factory=GuardbotSection)
    exchange: ExchangeSection = field(default_factory=ExchangeSection)
    feed: FeedSection = field(default_factory=FeedSection)
    accounts: dict[str, AccountSection] = field(default_factory=dict)
    guards: GuardConfig = field(default_factory=GuardConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    mqtt: MqttSection = field(default_factory=MqttSection)
    control: ControlSection = field(default_factory=ControlSection)
    strategy: StrategySection | None = None
    metrics: MetricsSection = field(default_factory=MetricsSection)
    #: Commands applied once, when the database is empty (``[[seed]]`` tables: the ``order``,
    #: ``set_leverage``, ... lines of ``simulate``), e.g. the demo's positions and stops.
    seed: tuple[dict[str, Any], ...] = ()

    @property
    def topic_base(self) -> str:
        """``<topic_prefix>/<instance>``, the root of every MQTT topic (docs/contracts.md §3)."""
        return f"{self.mqtt.topic_prefix}/{self.guardbot.instance}"

    def engine_config(
        self, tiers: Mapping[str, TierTable], contract_sizes: Mapping[str, Decimal]
    ) -> EngineConfig:
        """The engine's configuration; fees are the first account's, or zero without accounts."""
        accounts = {name: account.account_config() for name, account in self.accounts.items()}
        first = next(iter(accounts.values()), None)
        fees = first.fees if first is not None and first.fees is not None else Fees()
        return EngineConfig(
            profile=self.exchange.profile,
            tiers=tiers,
            contract_sizes=contract_sizes,
            fees=fees,
            accounts=accounts,
            auto_create_accounts=not accounts,
            guards=self.guards,
            alerts=self.alerts,
            trigger_price=self.exchange.trigger_price,
            slippage_bps=self.exchange.slippage_bps,
        )


# ---------------------------------------------------------------------------------------------
# Schema: the keys of each section and their kinds (drives unknown-key checks and env overrides)

_SCHEMA: dict[str, dict[str, str]] = {
    "guardbot": {"instance": "str", "data_dir": "str", "log_format": "str", "log_level": "str"},
    "exchange": {
        "id": "str",
        "symbols": "list",
        "profile": "str",
        "trigger_price": "str",
        "slippage_bps": "num",
        "ccxt": "table",
    },
    "feed": {
        "mode": "str",
        "stale_after_s": "num",
        "rest_poll_s": "num",
        "replay_file": "str",
        "speed": "num",
        "sim_seed": "int",
    },
    "guards": {
        "max_leverage": "num",
        "max_leverage_per_symbol": "table",
        "require_stop_loss": "bool",
        "max_position_notional": "num",
        "max_account_exposure": "num",
        "daily_loss_limit": "num",
        "reduce_only_oversize": "str",
    },
    "alerts": {"margin_ratio_levels": "list", "hysteresis": "num"},
    "mqtt": {
        "url": "str",
        "topic_prefix": "str",
        "embedded_broker": "str",
        "username": "str",
        "password_env": "str",
        "tls_ca": "str",
        "qos": "int",
    },
    "control": {"enabled": "bool", "token_env": "str"},
    "metrics": {"enabled": "bool", "listen": "str"},
    "strategy": {"path": "str", "params": "table", "stop_on_error": "bool"},
}
_ACCOUNT_SCHEMA: dict[str, str] = {
    "wallet": "num",
    "default_margin_mode": "str",
    "default_leverage": "num",
    "maker_fee": "num",
    "taker_fee": "num",
}
_TOP_KEYS = (*_SCHEMA, "accounts", "seed")
#: Input kinds a ``[[seed]]`` table may hold: the ``.../cmd`` commands plus money moves (prices
#: come from the feed, never from the file).
_SEED_KINDS = (*ALLOWED_TYPES, "deposit", "withdraw")
_LISTEN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}\Z")

_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SYMBOL = re.compile(r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+:[A-Za-z0-9._-]+\Z")
_STRATEGY_PATH = re.compile(r".+\.py:[A-Za-z_][A-Za-z0-9_]*\Z")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class _Problems:
    """Collects ``<key path>: <message>`` lines; notes the variable a value came from."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.sources = sources
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        var = self.sources.get(path) or self.sources.get(path.split("[", 1)[0])
        self.items.append(f"{path}: {message}" + (f" (from {var})" if var else ""))

    def add_input(self, exc: InputError, prefix: str) -> None:
        err = exc.under(prefix)
        self.add(err.field, err.message)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _range(value: Decimal, ge: int | None, gt: int | None, lt: int | None) -> str | None:
    """The complaint about ``value`` against the bounds, or None when it is within them."""
    parts = []
    if ge is not None:
        parts.append(f">= {ge}")
    if gt is not None:
        parts.append(f"> {gt}")
    if lt is not None:
        parts.append(f"< {lt}")
    ok = (ge is None or value >= ge) and (gt is None or value > gt) and (lt is None or value < lt)
    return None if ok else f"must be {' and '.join(parts)}, got {value}"


class _Table:
    """One TOML table being read: typed getters that record problems and fall back to defaults."""

    def __init__(
        self, raw: object, path: str, problems: _Problems, known: Mapping[str, str]
    ) -> None:
        self.path = path
        self.problems = problems
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            problems.add(path, f"must be a table, got {_kind(raw)}")
            raw = {}
        self.raw: dict[str, Any] = raw
        for key in raw:
            if key not in known:
                self.problems.add(
                    self.where(key), f"unknown key (known: {', '.join(sorted(known))})"
                )

    def where(self, key: str) -> str:
        return f"{self.path}.{key}"

    def has(self, key: str) -> bool:
        return key in self.raw

    def string(
        self, key: str, default: str, *, choices: tuple[str, ...] = (), lower: bool = False
    ) -> str:
        value = self.opt_string(key, choices=choices, lower=lower)
        return default if value is None else value

    def opt_string(
        self, key: str, *, choices: tuple[str, ...] = (), lower: bool = False
    ) -> str | None:
        if key not in self.raw:
            return None
        value = self.raw[key]
        if not isinstance(value, str):
            self.problems.add(self.where(key), f"must be a string, got {_kind(value)}")
            return None
        if lower:
            value = value.lower()
        if choices and value not in choices:
            self.problems.add(
                self.where(key), f"must be one of {', '.join(choices)}, got {value!r}"
            )
            return None
        return value

    def matching(self, key: str, default: str | None, pattern: re.Pattern[str], what: str) -> Any:
        value = self.opt_string(key)
        if value is not None and not pattern.match(value):
            self.problems.add(self.where(key), f"must be {what}, got {value!r}")
            return default
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw.get(key, default)
        if not isinstance(value, bool):
            self.problems.add(self.where(key), f"must be true or false, got {_kind(value)}")
            return default
        return value

    def integer(self, key: str, default: int, *, choices: tuple[int, ...] = ()) -> int:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.add(self.where(key), f"must be an integer, got {_kind(value)}")
            return default
        if choices and value not in choices:
            allowed = ", ".join(map(str, choices))
            self.problems.add(self.where(key), f"must be one of {allowed}, got {value}")
            return default
        return value

    def number(
        self,
        key: str,
        default: Decimal,
        *,
        ge: int | None = None,
        gt: int | None = None,
        lt: int | None = None,
    ) -> Decimal:
        value = self.opt_number(key, ge=ge, gt=gt, lt=lt)
        return default if value is None else value

    def opt_number(
        self, key: str, *, ge: int | None = None, gt: int | None = None, lt: int | None = None
    ) -> Decimal | None:
        if key not in self.raw:
            return None
        return _decimal(self.raw[key], self.where(key), self.problems, ge, gt, lt)

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.add(self.where(key), f"must be a list of strings, got {_kind(value)}")
            return default
        return tuple(value)

    def table(self, key: str) -> dict[str, Any]:
        value = self.raw.get(key, {})
        if not isinstance(value, dict):
            self.problems.add(self.where(key), f"must be a table, got {_kind(value)}")
            return {}
        return value


def _decimal(
    value: object,
    where: str,
    problems: _Problems,
    ge: int | None = None,
    gt: int | None = None,
    lt: int | None = None,
) -> Decimal | None:
    # TOML ints and floats go through str, so 0.1 is Decimal("0.1"), not the binary float.
    text = str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        number = parse_decimal(text, where)
    except InputError as exc:
        problems.add(exc.field, exc.message)
        return None
    complaint = _range(number, ge, gt, lt)
    if complaint:
        problems.add(where, complaint)
        return None
    return number


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path | None, env: Mapping[str, str] = os.environ) -> Config:
    """Read, override from ``env`` and validate a configuration; ``path=None``: the defaults.

    Raises :class:`ConfigError` listing every problem, one per line.
    """
    if path is None:
        source = "<defaults>"
        raw = tomllib.loads(DEFAULT_TOML)
    else:
        source = str(path)
        raw = _read(Path(path))
    problems: list[str] = []
    sources = _apply_env(raw, env, problems)
    collected = _Problems(sources)
    collected.items.extend(problems)
    config = _build(raw, env, collected)
    if collected.items:
        count = len(collected.items)
        header = f"invalid configuration {source} ({count} problem{'s' if count > 1 else ''}):"
        raise ConfigError("\n".join([header, *collected.items]))
    assert config is not None
    return config


def _read(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # The message ends with "(at line L, column C)".
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _env_name(*parts: str) -> str:
    return ENV_PREFIX + "_".join(p.upper() for p in parts)


def _parse_bool(text: str) -> bool | None:
    lowered = text.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def _apply_env(raw: dict[str, Any], env: Mapping[str, str], problems: list[str]) -> dict[str, str]:
    """Put ``GUARDBOT_<SECTION>_<KEY>`` values into ``raw``; return key path -> variable name."""
    targets: dict[str, tuple[str, ...]] = {}
    for section, keys in _SCHEMA.items():
        for key in keys:
            targets[_env_name(section, key)] = (section, key)
    accounts = raw.get("accounts")
    if isinstance(accounts, dict):
        for name in accounts:
            for key in _ACCOUNT_SCHEMA:
                targets[_env_name("accounts", name, key)] = ("accounts", name, key)

    # Secrets and the variables named by token_env / password_env are not overrides.
    exempt = set(EXCHANGE_SECRET_ENV.values())
    named = (("control", "token_env", "GUARDBOT_CONTROL_TOKEN"), ("mqtt", "password_env", None))
    for section, key, default in named:
        table = raw.get(section)
        name = env.get(_env_name(section, key))
        if name is None:
            name = table.get(key, default) if isinstance(table, dict) else default
        if isinstance(name, str):
            exempt.add(name)
    prefixes = tuple(_env_name(s) + "_" for s in _TOP_KEYS)

    sources: dict[str, str] = {}
    for var in sorted(env):
        if not var.startswith(prefixes) or var in exempt:
            continue
        text = env[var]
        target = targets.get(var)
        if target is None:
            if var.startswith(_env_name("accounts") + "_"):
                hint = "GUARDBOT_ACCOUNTS_<NAME>_<KEY> for an account defined in the file"
                problems.append(f"{var}: matches no configuration key (use {hint})")
            else:
                problems.append(f"{var}: matches no configuration key")
            continue
        kind = (_SCHEMA[target[0]] if len(target) == 2 else _ACCOUNT_SCHEMA)[target[-1]]
        value: Any
        if kind == "table":
            problems.append(f"{var}: {'.'.join(target)} is a table; set it in the file")
            continue
        if kind == "bool":
            value = _parse_bool(text)
            if value is None:
                problems.append(f"{var}: must be one of true, false, 1, 0, yes, no, got {text!r}")
                continue
        elif kind == "int":
            try:
                value = int(text.strip())
            except ValueError:
                problems.append(f"{var}: must be an integer, got {text!r}")
                continue
        elif kind == "list":
            value = [part.strip() for part in text.split(",") if part.strip()]
        else:  # str, and num: parsed (and reported with the variable's name) by the reader
            value = text.strip() if kind == "num" else text
        node = raw
        for part in target[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break  # the file has a non-table here; the reader reports it
            node = child
        else:
            node[target[-1]] = value
            sources[".".join(target)] = var
    return sources


def _build(raw: dict[str, Any], env: Mapping[str, str], p: _Problems) -> Config | None:
    for key in raw:
        if key not in _TOP_KEYS:
            p.add(key, f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    guardbot = _guardbot(_Table(raw.get("guardbot"), "guardbot", p, _SCHEMA["guardbot"]))
    exchange = _exchange(_Table(raw.get("exchange"), "exchange", p, _SCHEMA["exchange"]), env)
    feed = _feed(_Table(raw.get("feed"), "feed", p, _SCHEMA["feed"]))
    accounts = _accounts(raw.get("accounts"), p)
    guards = _guards(_Table(raw.get("guards"), "guards", p, _SCHEMA["guards"]), exchange)
    alerts = _alerts(_Table(raw.get("alerts"), "alerts", p, _SCHEMA["alerts"]))
    mqtt = _mqtt(_Table(raw.get("mqtt"), "mqtt", p, _SCHEMA["mqtt"]), env)
    control = _control(_Table(raw.get("control"), "control", p, _SCHEMA["control"]), env)
    strategy = None
    if "strategy" in raw:
        strategy = _strategy(_Table(raw["strategy"], "strategy", p, _SCHEMA["strategy"]))
    metrics = _metrics(_Table(raw.get("metrics"), "metrics", p, _SCHEMA["metrics"]))
    seed = _seed(raw.get("seed"), p)
    if p.items or exchange is None or guards is None or alerts is None or mqtt is None:
        return None
    return Config(
        guardbot,
        exchange,
        feed,
        accounts,
        guards,
        alerts,
        mqtt,
        control,
        strategy,
        metrics,
        seed,
    )


def _guardbot(t: _Table) -> GuardbotSection:
    return GuardbotSection(
        instance=t.matching("instance", "default", _NAME, "letters, digits, _ or - only"),
        data_dir=Path(t.string("data_dir", "./data")),
        log_format=t.string("log_format", "auto", choices=("auto", "json", "console")),
        log_level=t.string("log_level", "info", choices=_LOG_LEVELS, lower=True),
    )


def _exchange(t: _Table, env: Mapping[str, str]) -> ExchangeSection | None:
    exchange_id = t.string("id", "binanceusdm")
    symbols = t.strings("symbols", ("BTC/USDT:USDT", "ETH/USDT:USDT"))
    if not symbols:
        t.problems.add(t.where("symbols"), "must hold at least one symbol")
    for i, symbol in enumerate(symbols):
        if not _SYMBOL.match(symbol):
            t.problems.add(
                f"{t.where('symbols')}[{i}]",
                f"must be a ccxt unified symbol like 'BTC/USDT:USDT', got {symbol!r}",
            )
        elif symbol in symbols[:i]:
            t.problems.add(f"{t.where('symbols')}[{i}]", f"duplicate symbol {symbol!r}")
    profile: Profile | None
    name = t.opt_string("profile")
    if name is not None:
        try:
            profile = get_profile(name, t.where("profile"))
        except InputError as exc:
            t.problems.add(exc.field, exc.message)
            profile = None
    elif not t.has("profile"):
        profile = profile_for_exchange(exchange_id)
        if profile is None:
            t.problems.add(
                t.where("profile"),
                f"required: no built-in profile for exchange {exchange_id!r}; "
                f"choose one of {', '.join(sorted(PROFILES))}",
            )
    else:
        profile = None  # a non-string profile, already reported
    ccxt = t.table("ccxt")
    for key, var in EXCHANGE_SECRET_ENV.items():
        if key in ccxt:
            t.problems.add(
                f"{t.where('ccxt')}.{key}",
                f"secrets are not read from the file; set {var} in the environment "
                f"(credentials: {', '.join(EXCHANGE_SECRET_ENV.values())})",
            )

    def secret(var: str) -> Secret | None:
        return Secret(env[var]) if env.get(var) else None

    section = ExchangeSection(
        id=exchange_id,
        symbols=symbols,
        profile=profile or PROFILES["binance"],
        trigger_price=t.string("trigger_price", "mark", choices=("mark", "last")),
        slippage_bps=t.number("slippage_bps", ZERO, ge=0),
        ccxt=ccxt,
        api_key=secret(EXCHANGE_SECRET_ENV["apiKey"]),
        secret=secret(EXCHANGE_SECRET_ENV["secret"]),
        password=secret(EXCHANGE_SECRET_ENV["password"]),
    )
    return section if profile is not None else None


def _feed(t: _Table) -> FeedSection:
    mode = t.string("mode", "ccxt", choices=("ccxt", "replay", "sim"))
    replay_file = t.opt_string("replay_file")
    if mode == "replay" and replay_file is None and not t.has("replay_file"):
        t.problems.add(t.where("replay_file"), 'required when feed.mode is "replay"')
    return FeedSection(
        mode=mode,
        stale_after_s=float(t.number("stale_after_s", Decimal(10), gt=0)),
        rest_poll_s=float(t.number("rest_poll_s", Decimal(2), gt=0)),
        replay_file=Path(replay_file) if replay_file else None,
        speed=float(t.number("speed", Decimal(1), gt=0)),
        sim_seed=t.integer("sim_seed", 0),
    )


def _accounts(raw: object, p: _Problems) -> dict[str, AccountSection]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        p.add("accounts", f"must be a table of [accounts.<name>] tables, got {_kind(raw)}")
        return {}
    accounts: dict[str, AccountSection] = {}
    for name, spec in raw.items():
        where = f"accounts.{name}"
        if not _NAME.match(name):
            p.add(where, "account name must be letters, digits, _ or - (it goes into MQTT topics)")
        t = _Table(spec, where, p, _ACCOUNT_SCHEMA)
        accounts[name] = AccountSection(
            wallet=t.number("wallet", Decimal(10000), ge=0),
            default_margin_mode=t.string(
                "default_margin_mode", "cross", choices=("cross", "isolated")
            ),
            default_leverage=t.number("default_leverage", Decimal(10), ge=1),
            maker_fee=t.opt_number("maker_fee", ge=0, lt=1),
            taker_fee=t.opt_number("taker_fee", ge=0, lt=1),
        )
    return accounts


def _guards(t: _Table, exchange: ExchangeSection | None) -> GuardConfig | None:
    caps: dict[str, Decimal] = {}
    for symbol, cap in t.table("max_leverage_per_symbol").items():
        where = f'{t.where("max_leverage_per_symbol")}["{symbol}"]'
        if exchange is not None and symbol not in exchange.symbols:
            t.problems.add(where, "not one of exchange.symbols")
        value = _decimal(cap, where, t.problems, ge=1)
        if value is not None:
            caps[symbol] = value
    try:
        return GuardConfig(
            max_leverage=t.opt_number("max_leverage", ge=1),
            max_leverage_per_symbol=caps,
            require_stop_loss=t.boolean("require_stop_loss", False),
            max_position_notional=t.opt_number("max_position_notional", gt=0),
            max_account_exposure=t.opt_number("max_account_exposure", gt=0),
            daily_loss_limit=t.opt_number("daily_loss_limit", gt=0),
            reduce_only_oversize=t.opt_string("reduce_only_oversize", choices=("trim", "reject")),
        )
    except InputError as exc:  # pragma: no cover - every rule is checked above
        t.problems.add_input(exc, t.path)
        return None


def _alerts(t: _Table) -> AlertConfig | None:
    defaults = AlertConfig()
    levels = defaults.levels
    if t.has("margin_ratio_levels"):
        raw = t.raw["margin_ratio_levels"]
        where = t.where("margin_ratio_levels")
        if not isinstance(raw, list):
            t.problems.add(where, f"must be a list of ratios, got {_kind(raw)}")
            return None
        parsed = [_decimal(v, f"{where}[{i}]", t.problems, gt=0) for i, v in enumerate(raw)]
        if any(v is None for v in parsed):
            return None
        levels = tuple(v for v in parsed if v is not None)
    hysteresis = t.opt_number("hysteresis", ge=0)
    try:
        return AlertConfig(levels, defaults.hysteresis if hysteresis is None else hysteresis)
    except InputError as exc:
        t.problems.add_input(exc, t.path)
        return None


def _mqtt(t: _Table, env: Mapping[str, str]) -> MqttSection | None:
    url = t.string("url", "mqtt://127.0.0.1:1883")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    bad_url = parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1
    if bad_url:
        t.problems.add(t.where("url"), f"must be mqtt://host[:port] or mqtts://..., got {url!r}")
    prefix = t.string("topic_prefix", "guardbot")
    if not prefix or "+" in prefix or "#" in prefix or prefix.strip("/") != prefix:
        t.problems.add(
            t.where("topic_prefix"),
            f"must be a non-empty topic without wildcards or outer slashes, got {prefix!r}",
        )
    embedded = t.string("embedded_broker", "auto", choices=("auto", "always", "never"))
    if embedded == "always" and not bad_url and parts.hostname not in _LOOPBACK:
        t.problems.add(
            t.where("embedded_broker"),
            f'"always" needs a loopback mqtt.url (the embedded broker binds to loopback), '
            f"got host {parts.hostname!r}",
        )
    password_env = t.matching("password_env", None, _ENV_NAME, "an environment variable name")
    password = None
    if password_env is not None:
        if env.get(password_env):
            password = Secret(env[password_env])
        else:
            t.problems.add(
                t.where("password_env"), f"environment variable {password_env} is not set"
            )
    tls_ca = t.opt_string("tls_ca")
    if tls_ca is not None and not bad_url and parts.scheme != "mqtts":
        t.problems.add(t.where("tls_ca"), "set, but mqtt.url is not mqtts://")
    section = MqttSection(
        url=url,
        topic_prefix=prefix,
        embedded_broker=embedded,
        username=t.opt_string("username"),
        password_env=password_env,
        password=password,
        tls_ca=Path(tls_ca) if tls_ca else None,
        qos=t.integer("qos", 1, choices=(0, 1, 2)),
    )
    return None if bad_url else section


def _control(t: _Table, env: Mapping[str, str]) -> ControlSection:
    enabled = t.boolean("enabled", False)
    token_env = t.matching(
        "token_env", "GUARDBOT_CONTROL_TOKEN", _ENV_NAME, "an environment variable name"
    )
    token = Secret(env[token_env]) if env.get(token_env) else None
    if enabled and token is None:
        t.problems.add(
            t.where("token_env"),
            f"control is enabled but environment variable {token_env} is not set or empty",
        )
    return ControlSection(enabled=enabled, token_env=token_env, token=token)


def _strategy(t: _Table) -> StrategySection | None:
    if not t.has("path"):
        t.problems.add(t.where("path"), 'required in [strategy] ("file.py:Class")')
        return None
    path = t.matching("path", None, _STRATEGY_PATH, '"file.py:Class"')
    params = t.table("params")
    stop_on_error = t.boolean("stop_on_error", False)
    return StrategySection(path, params, stop_on_error) if path is not None else None


def _metrics(t: _Table) -> MetricsSection:
    listen = t.string("listen", "127.0.0.1:9108")
    if not _LISTEN.match(listen) or not 0 <= _split_listen(listen)[1] <= 65535:
        t.problems.add(
            t.where("listen"),
            f"must be host:port like 127.0.0.1:9108 or [::1]:9108, got {listen!r}",
        )
        listen = "127.0.0.1:9108"
    return MetricsSection(enabled=t.boolean("enabled", True), listen=listen)


def _seed(raw: object, p: _Problems) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        p.add("seed", f"must be an array of [[seed]] tables, got {_kind(raw)}")
        return ()
    commands: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where = f"seed[{i}]"
        kind = item.get("type")
        if kind not in _SEED_KINDS:
            p.add(f"{where}.type", f"must be one of {', '.join(_SEED_KINDS)}, got {kind!r}")
            continue
        # TOML floats are binary: read the table back through JSON as exact Decimals.
        obj = loads_exact(json.dumps(item, default=str), where)
        assert isinstance(obj, dict)
        try:
            parse_command(obj)
        except InputError as exc:
            p.add_input(exc, where)
            continue
        commands.append(obj)
    return tuple(commands)
