"""The typed configuration: one frozen dataclass per ``[section]``; each key is a
:func:`~guardbot.core.settings.setting` field holding its default, rules and documentation.

To add a key, add a field here (or to the core dataclass a section reuses: ``[guards]`` is
:class:`~guardbot.core.guards.GuardConfig`, ``[alerts]``
:class:`~guardbot.core.alerts.AlertConfig`).
To add a section, add its dataclass and a :func:`~guardbot.core.settings.section` field to
:class:`Config`; the loader, the environment overrides, ``guardbot init`` and ``guardbot config
check`` pick both up. Checks that involve more than one key live in :mod:`guardbot.config.build`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from guardbot.config.secret import Secret
from guardbot.core.alerts import AlertConfig
from guardbot.core.config import POSITION_MODES, AccountConfig, EngineConfig, Fees, SymbolDefaults
from guardbot.core.guards import GuardConfig
from guardbot.core.num import ZERO
from guardbot.core.profiles import PROFILES, Profile
from guardbot.core.settings import section, setting
from guardbot.core.tiers import TierTable
from guardbot.runtime.net import parse_host_port

__all__ = [
    "LOG_LEVELS",
    "AccountSection",
    "Config",
    "ControlSection",
    "ExchangeSection",
    "FeedSection",
    "GuardbotSection",
    "HomeAssistantSection",
    "MetricsSection",
    "MqttSection",
    "NotifySection",
    "StoreSection",
    "StrategySection",
]

#: A name that goes into MQTT topics and file names.
NAME_PATTERN = r"[A-Za-z0-9_-]+\Z"
ENV_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*\Z"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True, slots=True)
class GuardbotSection:
    instance: str = setting(
        "default",
        pattern=NAME_PATTERN,
        what="letters, digits, _ or - only",
        doc="Name of this daemon; part of every MQTT topic (<topic_prefix>/<instance>/...).",
    )
    data_dir: Path = setting(
        Path("./data"),
        doc="Directory of the SQLite database (journal, account state, outbox, tier cache); "
        "a relative path is relative to the configuration file's folder.",
    )
    log_format: str = setting(
        "auto",
        choices=("auto", "json", "console"),
        doc='Log output: "auto" (console on a terminal, JSON otherwise), "json" or "console".',
    )
    log_level: str = setting(
        "info", choices=LOG_LEVELS, lower=True, doc="debug, info, warning, error or critical."
    )


@dataclass(frozen=True, slots=True)
class ExchangeSection:
    id: str = setting("binanceusdm", doc="ccxt exchange id whose market data the daemon follows.")
    symbols: tuple[str, ...] = setting(
        ("BTC/USDT:USDT", "ETH/USDT:USDT"),
        doc="ccxt unified symbols of the perpetuals to watch (BASE/QUOTE:SETTLE).",
    )
    profile: Profile = setting(
        PROFILES["binance"],
        kind="str",
        example='"binance"',
        doc="Margin rules to reproduce: binance, bybit, okx, mexc, bitget, gate or generic. "
        "Defaults from the exchange id (generic is never chosen automatically).",
    )
    profile_options: dict[str, Any] = setting(
        factory=dict,
        example='{ liquidation_fee_rate = 0.01, mm_formula = "flat_tier" }',
        doc="Changes to single switches of the profile (docs/rules.md §10), e.g. for a venue "
        "on the generic profile; unknown switches and bad values are refused.",
    )
    tiers_file: Path | None = setting(
        None,
        example='"./tiers/coinex.json"',
        doc="Your own leverage-tier tables, in the bundled snapshot's JSON format (asOf, "
        "source, tiers, contractSize); used instead of the bundled snapshot.",
    )
    trigger_price: str = setting(
        "mark",
        choices=("mark", "last"),
        doc='Price that stops and trigger orders watch: "mark" or "last".',
    )
    slippage_bps: Decimal = setting(
        ZERO,
        ge=0,
        doc="Slippage charged against the taker on market and stop-market fills, in basis points.",
    )
    #: Passed to the ccxt constructor (never holds credentials).
    ccxt: dict[str, Any] = setting(
        factory=dict,
        example="{ enableRateLimit = true }",
        doc="Passed to the ccxt constructor and deep-merged with guardbot's own options. "
        "Never put apiKey / secret / password here: they come from the environment.",
    )
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
    mode: str = setting(
        "ccxt",
        choices=("ccxt", "replay", "sim", "plugin"),
        doc='Where prices come from: "ccxt" (live exchange), "replay" (a recorded file), "sim" '
        'or "plugin" (your own code, for venues outside ccxt).',
    )
    plugin: str | None = setting(
        None,
        example='"./myfeeds/coinex.py:make_feed"',
        doc='mode = "plugin": file.py:name of a factory(symbols, options) returning a feed, or an '
        "entry point name in the group guardbot.feeds.",
    )
    plugin_options: dict[str, Any] = setting(
        factory=dict,
        example='{ url = "wss://..." }',
        doc="Passed to the feed plugin's factory as its options.",
    )
    stale_after_s: float = setting(
        10.0,
        gt=0,
        doc="A symbol whose last price is older than this many seconds is reported stale.",
    )
    rest_poll_s: float = setting(
        2.0,
        gt=0,
        doc="Interval of the REST polling fallback when the websocket stream is unavailable, "
        "in seconds.",
    )
    replay_file: Path | None = setting(
        None,
        example='"./recordings/ticks.jsonl"',
        doc='Recorded ticks to play back; required when mode = "replay".',
    )
    speed: float = setting(1.0, gt=0, doc="Playback speed of replay and sim (1 = real time).")
    sim_seed: int = setting(0, doc='Seed of the simulated price walk (mode = "sim").')


@dataclass(frozen=True, slots=True)
class SymbolSection:
    """``[accounts.<name>.symbols."BTC/USDT:USDT"]``: one symbol's own settings."""

    margin_mode: str | None = setting(
        None,
        choices=("cross", "isolated"),
        example='"isolated"',
        doc='Margin mode of new positions in this symbol: "cross" or "isolated".',
    )
    leverage: Decimal | None = setting(
        None, ge=1, example="5", doc="Leverage of new positions in this symbol."
    )


@dataclass(frozen=True, slots=True)
class AccountSection:
    wallet: Decimal = setting(
        Decimal(10000), ge=0, doc="Starting wallet balance in the settle currency (USDT)."
    )
    default_margin_mode: str = setting(
        "cross",
        choices=("cross", "isolated"),
        doc='Margin mode of new positions: "cross" or "isolated".',
    )
    default_leverage: Decimal = setting(Decimal(10), ge=1, doc="Leverage of new positions.")
    maker_fee: Decimal | None = setting(
        None,
        ge=0,
        lt=1,
        example="0.0002",
        doc="Maker fee rate, a fraction in [0, 1): 0.0002 = 0.02 %.",
    )
    taker_fee: Decimal | None = setting(
        None,
        ge=0,
        lt=1,
        example="0.0005",
        doc="Taker fee rate, a fraction in [0, 1): 0.0005 = 0.05 %.",
    )
    position_mode: str = setting(
        "oneway",
        choices=POSITION_MODES,
        doc='"oneway" (one position per symbol) or "hedged" (a long and a short side per symbol,'
        " every order naming params.positionSide).",
    )
    mirror: bool = setting(
        False,
        doc="Mirror the real exchange account whose API keys are in the environment, read-only: "
        "its wallet, positions and stops replace this account's; wallet and the defaults do "
        "not apply; guardbot never sends it anything.",
    )
    api_key_env: str = setting(
        "GUARDBOT_EXCHANGE_API_KEY",
        pattern=r"[A-Za-z_][A-Za-z0-9_]*\Z",
        what="an environment variable name",
        doc="mirror: the environment variable holding the (read-only) API key.",
    )
    secret_env: str = setting(
        "GUARDBOT_EXCHANGE_SECRET",
        pattern=r"[A-Za-z_][A-Za-z0-9_]*\Z",
        what="an environment variable name",
        doc="mirror: the environment variable holding the API secret.",
    )
    password_env: str = setting(
        "GUARDBOT_EXCHANGE_PASSWORD",
        pattern=r"[A-Za-z_][A-Za-z0-9_]*\Z",
        what="an environment variable name",
        doc="mirror: the environment variable holding the API passphrase (venues that have one).",
    )
    mirror_poll_s: float = setting(
        30.0,
        gt=0,
        doc="mirror: seconds between REST reconciliations of the whole account (also done at "
        "start and after every reconnect of the private stream).",
    )
    mirror_tolerance: Decimal = setting(
        Decimal("0.005"),
        gt=0,
        lt=1,
        doc="mirror: liquidation price difference (guardbot's vs the exchange's), as a share of "
        "the mark price, above which mirror_drift is raised: 0.005 = 0.5 %.",
    )
    mirror_drift_confirm_s: Decimal = setting(
        Decimal(5),
        ge=0,
        doc="mirror: seconds (of input time) a liquidation price difference must stay beyond "
        "mirror_tolerance, at every comparison (each exchange report and each tick of the "
        "symbol), before mirror_drift is raised: the exchange's figure and the wallet it was "
        "computed from can arrive in separate frames, and a comparison between the two is "
        "not drift. 0 = at the first comparison.",
    )
    #: mirror: the credentials read from the environment (never from the file)
    api_key: Secret | None = None
    secret: Secret | None = None
    password: Secret | None = None

    def credentials(self) -> dict[str, str]:
        """The ccxt constructor credentials of a mirror account."""
        values = {"apiKey": self.api_key, "secret": self.secret, "password": self.password}
        return {key: value.reveal() for key, value in values.items() if value is not None}

    symbols: dict[str, SymbolSection] = setting(
        factory=dict,
        example='{ "BTC/USDT:USDT" = { margin_mode = "isolated", leverage = 5 } }',
        doc="Per-symbol margin mode and leverage of new positions, one table per symbol: "
        '[accounts.<name>.symbols."BTC/USDT:USDT"] margin_mode = "isolated", leverage = 5. '
        "Either key may be left out; symbols not listed use the defaults above.",
    )

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
            position_mode=self.position_mode,
            mirror=self.mirror,
            mirror_tolerance=self.mirror_tolerance,
            mirror_drift_confirm_s=self.mirror_drift_confirm_s,
            symbols={
                symbol: SymbolDefaults(own.margin_mode, own.leverage)
                for symbol, own in self.symbols.items()
            },
        )


@dataclass(frozen=True, slots=True)
class MqttSection:
    url: str = setting(
        "mqtt://127.0.0.1:1883",
        doc="Broker URL: mqtt://host[:port] or mqtts://host[:port] (TLS).",
    )
    topic_prefix: str = setting(
        "guardbot", doc="First part of every topic: <topic_prefix>/<instance>/..."
    )
    embedded_broker: str = setting(
        "auto",
        choices=("auto", "always", "never"),
        doc='"auto": start an embedded loopback broker when nothing listens on a loopback url; '
        '"always": always start it; "never": only connect to url.',
    )
    username: str | None = setting(
        None, example='"guardbot"', doc="Broker user name (omit for anonymous)."
    )
    password_env: str | None = setting(
        None,
        pattern=ENV_NAME_PATTERN,
        what="an environment variable name",
        example='"GUARDBOT_MQTT_PASSWORD"',
        doc="Name of the environment variable holding the broker password (the password itself "
        "never goes in this file).",
    )
    password: Secret | None = None
    tls_ca: Path | None = setting(
        None,
        example='"/etc/guardbot/ca.pem"',
        doc="mqtts:// always means TLS with certificate and host name checks, against the "
        "system's CAs (SSL_CERT_FILE is honoured); tls_ca names a CA file to trust instead "
        "(a private CA).",
    )
    qos: int = setting(
        1,
        choices=(0, 1, 2),
        doc="QoS of every message the daemon publishes: 1 (at least once: a row leaves the "
        "outbox after the broker's PUBACK), 2 (exactly once to the broker) or 0 (at most once: "
        "a row counts as sent once written to the socket, so a connection lost then loses it).",
    )

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
    enabled: bool = setting(
        False, doc="Accept commands on <topic_prefix>/<instance>/cmd. Off by default."
    )
    token_env: str = setting(
        "GUARDBOT_CONTROL_TOKEN",
        pattern=ENV_NAME_PATTERN,
        what="an environment variable name",
        doc="Environment variable holding the token every command must carry (required when "
        "enabled).",
    )
    token: Secret | None = None


@dataclass(frozen=True, slots=True)
class MetricsSection:
    enabled: bool = setting(
        True,
        doc="Prometheus exposition at http://<listen>/metrics (docs/metrics.md lists every "
        "metric).",
    )
    listen: str = setting(
        "127.0.0.1:9108", doc="host:port; loopback by default. Port 0 picks a free port."
    )

    @property
    def host(self) -> str:
        return parse_host_port(self.listen, key="metrics.listen", example="127.0.0.1:9108")[0]

    @property
    def port(self) -> int:
        return parse_host_port(self.listen, key="metrics.listen", example="127.0.0.1:9108")[1]


#: Alert severities, least urgent first (``[notify] min_severity``).
SEVERITIES = ("info", "warning", "margin_call", "critical")


@dataclass(frozen=True, slots=True)
class HomeAssistantSection:
    enabled: bool = setting(
        False,
        doc="Publish Home Assistant MQTT discovery configs (margin ratio, equity, available, "
        "liquidation price and distance per position, feed health, alerts as events).",
    )
    discovery_prefix: str = setting(
        "homeassistant",
        pattern=r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\Z",
        what="a topic without wildcards",
        doc="Home Assistant's MQTT discovery prefix (its own setting of the same name).",
    )


@dataclass(frozen=True, slots=True)
class NotifySection:
    urls_env: str | None = setting(
        None,
        pattern=ENV_NAME_PATTERN,
        what="an environment variable name",
        example='"GUARDBOT_NOTIFY_URLS"',
        doc="Environment variable holding the apprise URLs to notify (ntfy://, tgram://, "
        "discord://, pover://, mailto://, json://...; space or comma separated: they carry "
        "tokens, so never in this file). Unset: no notifications. Needs the notify extra.",
    )
    min_severity: str = setting(
        "warning",
        choices=SEVERITIES,
        doc="Least severe alert to notify: info, warning, margin_call or critical.",
    )
    types: tuple[str, ...] = setting(
        (),
        example='["margin_alert", "liquidation"]',
        doc="Alert types to notify (empty: every type at or above min_severity).",
    )
    coalesce_s: int = setting(
        60,
        ge=0,
        doc="Repeats of one alert (account, symbol, type, severity) within this many seconds "
        "are sent as one message that says how many. 0: every alert on its own.",
    )
    urls: Secret | None = None


@dataclass(frozen=True, slots=True)
class StoreSection:
    checkpoint_interval_s: float = setting(
        300.0,
        ge=1,
        doc="Seconds between checkpoints of the engine state in the database (also written at "
        "a clean stop); start-up loads the newest one and re-applies only later inputs.",
    )
    retention_days: float = setting(
        30.0,
        gt=0,
        doc="Inputs older than this and older than the newest checkpoint are pruned; the "
        "alerts and events history is kept this many days.",
    )


@dataclass(frozen=True, slots=True)
class StrategySection:
    path: str = setting(
        pattern=r".+\.py:[A-Za-z_][A-Za-z0-9_]*\Z",
        what='"file.py:Class"',
        example='"strategies/grid.py:Grid"',
        doc='Optional user strategy: "file.py:Class".',
    )
    params: dict[str, Any] = setting(
        factory=dict, example="{ step = 0.01 }", doc="The parameters passed to the strategy."
    )
    #: Stop the daemon at the strategy's first exception (default: log, count, go on).
    stop_on_error: bool = setting(
        False,
        doc="Stop the daemon at the strategy's first exception (default: log, count, go on).",
    )

    @property
    def file(self) -> str:
        return self.path.rsplit(":", 1)[0]

    @property
    def class_name(self) -> str:
        return self.path.rsplit(":", 1)[1]


@dataclass(frozen=True, slots=True)
class Config:
    guardbot: GuardbotSection = section(GuardbotSection, doc="This daemon: name, data, logs.")
    exchange: ExchangeSection = section(
        ExchangeSection, doc="The exchange whose prices and margin rules guardbot follows."
    )
    feed: FeedSection = section(FeedSection, doc="Where prices come from.")
    accounts: dict[str, AccountSection] = section(
        dict,
        each=AccountSection,
        doc="One [accounts.<name>] table per account guardbot keeps (the name goes into MQTT "
        "topics). Without any, accounts are created on their first command.",
    )
    guards: GuardConfig = section(
        GuardConfig, doc="Policies checked before an order reaches the book."
    )
    alerts: AlertConfig = section(AlertConfig, doc="The margin-ratio alert ladder.")
    mqtt: MqttSection = section(MqttSection, doc="The broker that carries alerts and commands.")
    control: ControlSection = section(ControlSection, doc="Commands over MQTT.")
    strategy: StrategySection | None = section(
        doc="A user strategy run on the paper exchange.", optional=True
    )
    metrics: MetricsSection = section(MetricsSection, doc="Prometheus metrics.")
    store: StoreSection = section(
        StoreSection, doc="The database: checkpoints and how long history is kept."
    )
    homeassistant: HomeAssistantSection = section(
        HomeAssistantSection, doc="Home Assistant MQTT discovery."
    )
    notify: NotifySection = section(
        NotifySection, doc="Alerts to phones and chats through apprise."
    )
    #: Commands applied once, when the database is empty (``[[seed]]`` tables: the ``order``,
    #: ``set_leverage``, ... lines of ``simulate``), e.g. the demo's positions and stops.
    seed: tuple[dict[str, Any], ...] = section(
        tuple,
        doc="Commands applied once, on the first start (empty database), when every symbol has "
        "a price: the order, cancel, set_leverage, set_margin_mode, add_margin, reduce_margin, "
        "deposit and withdraw lines of `guardbot simulate`, one [[seed]] table each.",
    )

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
