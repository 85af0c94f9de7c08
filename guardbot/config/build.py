"""From the raw TOML tables to :class:`~guardbot.config.sections.Config`: each section is read
against its schema (:class:`~guardbot.config.reader.Table`); the checks that involve more than one
key, or the environment, live here, one function per section that has any.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from guardbot.config.reader import Problems, Table, describe
from guardbot.config.schema import Section, sections
from guardbot.config.secret import EXCHANGE_SECRET_ENV, Secret
from guardbot.config.sections import (
    AccountSection,
    Config,
    ControlSection,
    ExchangeSection,
    FeedSection,
    MetricsSection,
    MqttSection,
    NotifySection,
    StrategySection,
)
from guardbot.core.alerts import AlertConfig
from guardbot.core.commands import parse_command
from guardbot.core.events import ALERT_TYPES
from guardbot.core.guards import GuardConfig
from guardbot.core.keys import unknown_key
from guardbot.core.profiles import PROFILES, get_profile, profile_for_exchange
from guardbot.errors import ConfigError, GuardbotError, InputError
from guardbot.feeds.plugin import FeedPluginError, load_feed_plugin
from guardbot.feeds.venues import venue_for
from guardbot.formats.jsonio import loads_exact
from guardbot.mirror.venues import mirror_venue
from guardbot.mqtt.commands import ALLOWED_TYPES
from guardbot.runtime.net import is_loopback_host, parse_host_port
from guardbot.tiers.source import read_user_tiers

__all__ = ["build"]

#: Input kinds a ``[[seed]]`` table may hold: the ``.../cmd`` commands plus money moves (prices
#: come from the feed, never from the file).
SEED_KINDS = (*ALLOWED_TYPES, "deposit", "withdraw")
_SYMBOL = re.compile(r"[A-Za-z0-9._-]+/[A-Za-z0-9._-]+:[A-Za-z0-9._-]+\Z")
_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")

#: What a section builder gets: the table read so far, its values by field name, the other
#: sections built before it, the environment. It returns the section, or None when it is unusable.
_Builder = Callable[[Table, dict[str, Any], dict[str, Any], Mapping[str, str]], Any]


def build(raw: dict[str, Any], env: Mapping[str, str], p: Problems) -> Config | None:
    """The configuration from ``raw`` (overrides applied), or None when ``p`` holds problems."""
    known = [s.name for s in sections(Config)]
    for key in raw:
        if key not in known:
            p.add(key, unknown_key(key, known))
    built: dict[str, Any] = {}
    usable = True
    for sec in sections(Config):
        value = _section(sec, raw, env, p, built)
        if value is None and not sec.info.optional:
            usable = False
            continue
        built[sec.name] = value
    if p.items or not usable:
        return None
    return Config(**built)


def _section(
    sec: Section, raw: dict[str, Any], env: Mapping[str, str], p: Problems, built: dict[str, Any]
) -> Any:
    if sec.name == "seed":
        return _seed(raw.get("seed"), p)
    if sec.name == "accounts":
        return _named(sec, raw.get(sec.name), p, env, built)
    if sec.info.optional and sec.name not in raw:
        return None
    assert sec.cls is not None
    table = Table(raw.get(sec.name), sec.name, p, sec.cls)
    values = table.values()
    custom = _BUILDERS.get(sec.name)
    if custom is not None:
        return custom(table, values, built, env)
    if any(f.required and f.attr not in values for f in table.fields.values()):
        return None
    try:
        return sec.cls(**values)
    except InputError as exc:
        p.add_input(exc, sec.name)
        return None


def _named(
    sec: Section, raw: object, p: Problems, env: Mapping[str, str], built: dict[str, Any]
) -> dict[str, Any]:
    """``[accounts.<name>]`` tables; a mirror account's venue and keys are checked here."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        p.add(sec.name, f"must be a table of [{sec.name}.<name>] tables, got {describe(raw)}")
        return {}
    assert sec.cls is not None
    out: dict[str, Any] = {}
    for name, spec in raw.items():
        where = f"{sec.name}.{name}"
        if not _NAME.match(name):
            p.add(where, "account name must be letters, digits, _ or - (it goes into MQTT topics)")
        values = Table(spec, where, p, sec.cls).values()
        for symbol in values.get("symbols") or {}:
            if not _SYMBOL.match(symbol):
                p.add(
                    f'{where}.symbols["{symbol}"]',
                    f"must be a ccxt unified symbol like 'BTC/USDT:USDT', got {symbol!r}",
                )
        account = sec.cls(**values)
        if getattr(account, "mirror", False):
            account = _mirror_account(account, where, p, env, built.get("exchange"))
        out[name] = account
    return out


_WHAT_KEY = {
    "api_key_env": "API key",
    "secret_env": "API secret",
    "password_env": "API passphrase",
}


def _mirror_account(
    account: AccountSection,
    where: str,
    p: Problems,
    env: Mapping[str, str],
    exchange: ExchangeSection | None,
) -> AccountSection:
    """A mirror account: the exchange must have mirror support, its keys must be set."""
    needs_password = False
    if exchange is not None:
        try:
            needs_password = mirror_venue(exchange.id, where=f"{where}.mirror").needs_password
        except ConfigError as exc:
            p.add(f"{where}.mirror", str(exc).split(": ", 1)[-1])
    found: dict[str, Secret | None] = {}
    for attr, required in (
        ("api_key_env", True),
        ("secret_env", True),
        ("password_env", needs_password),
    ):
        var = getattr(account, attr)
        value = env.get(var)
        if required and not value:
            p.add(
                f"{where}.{attr}",
                f"the environment variable {var} is not set (the mirror account's "
                f"{_WHAT_KEY[attr]}; a read-only key will do)",
            )
        found[attr] = Secret(value) if value else None
    return dataclasses.replace(
        account,
        api_key=found["api_key_env"],
        secret=found["secret_env"],
        password=found["password_env"],
    )


def _exchange(
    t: Table, v: dict[str, Any], built: dict[str, Any], env: Mapping[str, str]
) -> ExchangeSection | None:
    symbols: tuple[str, ...] = v["symbols"]
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
    profile = None
    name = t.raw.get("profile")
    if isinstance(name, str):
        try:
            profile = get_profile(name, t.where("profile"))
        except InputError as exc:
            t.problems.add(exc.field, exc.message)
    elif not t.has("profile"):
        profile = profile_for_exchange(v["id"])
        if profile is None:
            t.problems.add(
                t.where("profile"),
                f"required: no built-in profile for exchange {v['id']!r}; "
                f"choose one of {', '.join(sorted(PROFILES))}",
            )
    if profile is not None and v["profile_options"]:
        try:
            profile = profile.with_options(v["profile_options"], t.where("profile_options"))
        except InputError as exc:
            t.problems.add(exc.field, exc.message)
    if v["tiers_file"] == Path():
        v["tiers_file"] = None  # tiers_file = "" means none
    if profile is not None and v["tiers_file"] is not None:
        try:
            read_user_tiers(v["tiers_file"], profile.name)
        except GuardbotError as exc:
            t.problems.add(t.where("tiers_file"), str(exc))
    for key, var in EXCHANGE_SECRET_ENV.items():
        if key in v["ccxt"]:
            t.problems.add(
                f"{t.where('ccxt')}.{key}",
                f"secrets are not read from the file; set {var} in the environment "
                f"(credentials: {', '.join(EXCHANGE_SECRET_ENV.values())})",
            )
    if profile is None:
        return None

    def secret(var: str) -> Secret | None:
        return Secret(env[var]) if env.get(var) else None

    return ExchangeSection(
        **{**v, "profile": profile},
        api_key=secret(EXCHANGE_SECRET_ENV["apiKey"]),
        secret=secret(EXCHANGE_SECRET_ENV["secret"]),
        password=secret(EXCHANGE_SECRET_ENV["password"]),
    )


def _feed(
    t: Table, v: dict[str, Any], built: dict[str, Any], env: Mapping[str, str]
) -> FeedSection:
    if v["mode"] == "replay" and not t.has("replay_file"):
        t.problems.add(t.where("replay_file"), 'required when feed.mode is "replay"')
    if v["replay_file"] == Path():
        v["replay_file"] = None  # replay_file = "" means none
    if v["mode"] == "plugin":
        if not v["plugin"]:
            t.problems.add(t.where("plugin"), 'required when feed.mode is "plugin"')
        else:
            try:
                load_feed_plugin(v["plugin"])
            except FeedPluginError as exc:
                t.problems.add(t.where("plugin"), str(exc))
    exchange = built.get("exchange")
    if v["mode"] == "ccxt" and isinstance(exchange, ExchangeSection):
        missing = venue_for(exchange.id).missing
        if missing:
            t.problems.add("exchange.id", f"{exchange.id!r} cannot be followed live: {missing}")
    return FeedSection(**v)


def _guards(
    t: Table, v: dict[str, Any], built: dict[str, Any], env: Mapping[str, str]
) -> GuardConfig | None:
    exchange: ExchangeSection | None = built.get("exchange")
    for symbol in v["max_leverage_per_symbol"]:
        if exchange is not None and symbol not in exchange.symbols:
            where = f'{t.where("max_leverage_per_symbol")}["{symbol}"]'
            t.problems.add(where, "not one of exchange.symbols")
    try:
        return GuardConfig(**v)
    except InputError as exc:  # pragma: no cover - every rule is checked by the reader
        t.problems.add_input(exc, t.path)
        return None


def _alerts(
    t: Table, v: dict[str, Any], built: dict[str, Any], env: Mapping[str, str]
) -> AlertConfig | None:
    try:
        return AlertConfig(**v)
    except InputError as exc:
        t.problems.add_input(exc, t.path)
        return None


def _mqtt(
    t: Table, v: dict[str, Any], built: dict[str, Any], env: Mapping[str, str]
) -> MqttSection | None:
    url = v["url"]
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    bad_url = parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1
    if bad_url:
        t.problems.add(t.where("url"), f"must be mqtt://host[:port] or mqtts://..., got {url!r}")
    prefix = v["topic_prefix"]
    if not prefix or "+" in prefix or "#" in prefix or prefix.strip("/") != prefix:
        t.problems.add(
            t.where("topic_prefix"),
            f"must be a non-empty topic without wildcards or outer slashes, got {prefix!r}",
        )
    hostname = parts.hostname or ""
    if v["embedded_broker"] == "always" and not bad_url and not is_loopback_host(hostname):
        t.problems.add(
            t.where("embedded_broker"),
            f'"always" needs a loopback mqtt.url (the embedded broker binds to loopback), '
            f"got host {parts.hostname!r}",
        )
    password_env = v["password_env"]
    password = None
    if password_env is not None:
        if env.get(password_env):
            password = Secret(env[password_env])
        else:
            t.problems.add(
                t.where("password_env"), f"environment variable {password_env} is not set"
            )
    if v["tls_ca"] is not None and not bad_url and parts.scheme != "mqtts":
        t.problems.add(t.where("tls_ca"), "set, but mqtt.url is not mqtts://")
    if v["tls_ca"] == Path():
        v["tls_ca"] = None
    return None if bad_url else MqttSection(**v, password=password)


def _control(
    t: Table, v: dict[str, Any], built: dict[str, Any], env: Mapping[str, str]
) -> ControlSection:
    token_env = v["token_env"]
    token = Secret(env[token_env]) if env.get(token_env) else None
    if v["enabled"] and token is None:
        t.problems.add(
            t.where("token_env"),
            f"control is enabled but environment variable {token_env} is not set or empty",
        )
    return ControlSection(**v, token=token)


def _strategy(
    t: Table, v: dict[str, Any], built: dict[str, Any], env: Mapping[str, str]
) -> StrategySection | None:
    if not t.has("path"):
        t.problems.add(t.where("path"), 'required in [strategy] ("file.py:Class")')
    return StrategySection(**v) if "path" in v else None


def _metrics(
    t: Table, v: dict[str, Any], built: dict[str, Any], env: Mapping[str, str]
) -> MetricsSection:
    listen = v["listen"]
    try:
        parse_host_port(listen, key=t.where("listen"), example="127.0.0.1:9108")
    except ConfigError:
        t.problems.add(
            t.where("listen"),
            f"must be host:port like 127.0.0.1:9108 or [::1]:9108, got {listen!r}",
        )
        v["listen"] = "127.0.0.1:9108"
    return MetricsSection(**v)


def _notify(
    t: Table, v: dict[str, Any], built: dict[str, Any], env: Mapping[str, str]
) -> NotifySection:
    unknown = [kind for kind in v["types"] if kind not in ALERT_TYPES]
    if unknown:
        t.problems.add(
            t.where("types"),
            f"unknown alert type {unknown[0]!r}; known: {', '.join(sorted(ALERT_TYPES))}",
        )
    urls_env = v["urls_env"]
    urls = None
    if urls_env is not None:
        if env.get(urls_env, "").strip():
            urls = Secret(env[urls_env])
        else:
            t.problems.add(t.where("urls_env"), f"environment variable {urls_env} is not set")
    return NotifySection(**v, urls=urls)


def _seed(raw: object, p: Problems) -> tuple[dict[str, Any], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        p.add("seed", f"must be an array of [[seed]] tables, got {describe(raw)}")
        return ()
    commands: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where = f"seed[{i}]"
        kind = item.get("type")
        if kind not in SEED_KINDS:
            p.add(f"{where}.type", f"must be one of {', '.join(SEED_KINDS)}, got {kind!r}")
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


_BUILDERS: dict[str, _Builder] = {
    "exchange": _exchange,
    "feed": _feed,
    "guards": _guards,
    "alerts": _alerts,
    "mqtt": _mqtt,
    "control": _control,
    "strategy": _strategy,
    "metrics": _metrics,
    "notify": _notify,
}
