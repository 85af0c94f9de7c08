"""Tests of guardbot.config: loading, validation, environment overrides and secrets."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest

from guardbot.config import Config, Secret, load_config
from guardbot.core.config import AccountConfig, EngineConfig, Fees
from guardbot.core.profiles import PROFILES
from guardbot.core.settings import setting
from guardbot.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "guardbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    """The problem lines of the ConfigError that loading ``text`` raises."""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env or {})
    lines = str(info.value).splitlines()
    assert lines[0].startswith("invalid configuration ")
    return lines[1:]


def test_defaults_load_without_a_file() -> None:
    config = load_config(None, {})
    assert isinstance(config, Config)
    assert config.feed.mode == "sim"
    assert config.guardbot.instance == "default"
    assert config.exchange.profile is PROFILES["binance"]
    assert config.mqtt.url == "mqtt://127.0.0.1:1883"
    assert config.mqtt.embedded_broker == "auto"
    assert config.mqtt.qos == 1
    assert config.control.enabled is False
    assert config.control.token_env == "GUARDBOT_CONTROL_TOKEN"
    assert config.strategy is None
    assert list(config.accounts) == ["demo"]
    assert config.topic_base == "guardbot/default"


def test_empty_file_gets_key_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), {})
    assert config.feed.mode == "ccxt"
    assert config.feed.stale_after_s == 10
    assert config.feed.rest_poll_s == 2
    # Relative to the file's folder (issue 15), not to the working directory.
    assert config.guardbot.data_dir == tmp_path / "data"
    assert config.exchange.id == "binanceusdm"
    assert config.accounts == {}
    assert config.alerts.levels == (Decimal("0.5"), Decimal("0.7"), Decimal("0.8"))
    assert config.alerts.hysteresis == Decimal("0.05")


def test_shipped_live_file_loads() -> None:
    config = load_config(CONFIG_DIR / "guardbot.toml", {})
    assert config.exchange.id == "binanceusdm"
    assert config.exchange.symbols == ("BTC/USDT:USDT", "ETH/USDT:USDT")
    assert config.feed.mode == "ccxt"
    main = config.accounts["main"]
    assert main.wallet == Decimal(10000)
    assert main.default_margin_mode == "cross"
    assert main.default_leverage == Decimal(10)
    assert (main.maker_fee, main.taker_fee) == (Decimal("0.0002"), Decimal("0.0005"))
    assert config.guards.max_leverage == Decimal(20)
    assert config.guards.daily_loss_limit == Decimal(500)
    assert config.guards.close_only_stops is True
    assert config.mqtt.embedded_broker == "auto"
    assert config.control.enabled is False


def test_shipped_demo_file_loads() -> None:
    config = load_config(CONFIG_DIR / "demo.toml", {})
    assert config.feed.mode == "sim"
    assert isinstance(config.feed.sim_seed, int)
    assert config.feed.stale_after_s < 10
    assert "demo" in config.accounts
    assert config.mqtt.embedded_broker == "auto"


def test_numbers_are_exact_decimals(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "[accounts.a]\nwallet = 100.1\nmaker_fee = 0.0001\ntaker_fee = '0.0004'\n"
            "[exchange]\nslippage_bps = 1\n[alerts]\nmargin_ratio_levels = [0.3, 0.9]\n",
        ),
        {},
    )
    account = config.accounts["a"]
    assert account.wallet == Decimal("100.1")
    assert str(account.maker_fee) == "0.0001"
    assert account.taker_fee == Decimal("0.0004")
    assert config.exchange.slippage_bps == Decimal(1)
    assert config.alerts.levels == (Decimal("0.3"), Decimal("0.9"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[guards]\nmax_leverage = 0", "guards.max_leverage: must be >= 1, got 0"),
        ("[accounts.main]\nwallet = -5", "accounts.main.wallet: must be >= 0, got -5"),
        ("[accounts.main]\ndefault_leverage = 0.5", "accounts.main.default_leverage: must be >= 1"),
        ("[accounts.main]\nmaker_fee = 1", "accounts.main.maker_fee: must be >= 0 and < 1, got 1"),
        (
            "[accounts.main]\ndefault_margin_mode = 'portfolio'",
            "accounts.main.default_margin_mode: must be one of cross, isolated",
        ),
        ("[accounts.'a b']\n", "accounts.a b: account name must be"),
        ("[guardbot]\ninstance = 'my bot'", "guardbot.instance: must be letters, digits"),
        ("[guardbot]\nlog_format = 'xml'", "guardbot.log_format: must be one of auto, json"),
        ("[guardbot]\nlog_level = 'loud'", "guardbot.log_level: must be one of debug"),
        ("[exchange]\nsymbols = ['BTCUSDT']", "exchange.symbols[0]: must be a ccxt unified symbol"),
        ("[exchange]\nsymbols = []", "exchange.symbols: must hold at least one symbol"),
        ("[exchange]\nid = 'kraken'", "exchange.profile: required: no built-in profile"),
        (
            "[exchange]\nprofile = 'ftx'",
            "exchange.profile: must be one of binance, bitget, bybit, gate, generic, kucoinfutures,"
            " mexc, okx",
        ),
        (
            "[exchange]\ntrigger_price = 'index'",
            "exchange.trigger_price: must be one of mark, last",
        ),
        ("[exchange]\nslippage_bps = -1", "exchange.slippage_bps: must be >= 0, got -1"),
        ("[exchange.ccxt]\napiKey = 'k'", "exchange.ccxt.apiKey: secrets are not read from the"),
        ("[feed]\nmode = 'live'", "feed.mode: must be one of ccxt, replay, sim"),
        ("[feed]\nstale_after_s = 0", "feed.stale_after_s: must be > 0, got 0"),
        ("[feed]\nrest_poll_s = -1", "feed.rest_poll_s: must be > 0, got -1"),
        ("[feed]\nspeed = 0", "feed.speed: must be > 0, got 0"),
        ("[feed]\nmode = 'replay'", 'feed.replay_file: required when feed.mode is "replay"'),
        ("[feed]\nsim_seed = 1.5", "feed.sim_seed: must be an integer, got a number"),
        ("[guards]\nrequire_stop_loss = 'yes'", "guards.require_stop_loss: must be true or false"),
        ("[guards]\ndaily_loss_limit = 0", "guards.daily_loss_limit: must be > 0, got 0"),
        (
            "[guards.max_leverage_per_symbol]\n'BTC/USDT:USDT' = 0",
            'guards.max_leverage_per_symbol["BTC/USDT:USDT"]: must be >= 1, got 0',
        ),
        (
            "[guards.max_leverage_per_symbol]\n'XRP/USDT:USDT' = 5",
            'guards.max_leverage_per_symbol["XRP/USDT:USDT"]: not one of exchange.symbols',
        ),
        ("[guards]\nreduce_only_oversize = 'clip'", "guards.reduce_only_oversize: must be one of"),
        ("[guards]\nmax_leverage = 'ten'", 'guards.max_leverage: must be a number, got "ten"'),
        ("[alerts]\nmargin_ratio_levels = [0.5, 1.5]", "alerts.margin_ratio_levels[1]: must be"),
        (
            "[alerts]\nmargin_ratio_levels = [0.7, 0.5]",
            "alerts.margin_ratio_levels: must be strictly increasing",
        ),
        ("[alerts]\nhysteresis = 0.6", "alerts.hysteresis: must be >= 0 and below the first"),
        ("[mqtt]\nurl = 'http://x'", "mqtt.url: must be mqtt://host[:port] or mqtts://"),
        ("[mqtt]\nqos = 3", "mqtt.qos: must be one of 0, 1, 2, got 3"),
        ("[mqtt]\nqos = true", "mqtt.qos: must be an integer, got a boolean"),
        ("[mqtt]\nembedded_broker = 'maybe'", "mqtt.embedded_broker: must be one of auto"),
        ("[mqtt]\ntopic_prefix = 'a/#'", "mqtt.topic_prefix: must be a non-empty topic"),
        ("[mqtt]\npassword_env = 'MQTT_PW'", "mqtt.password_env: environment variable MQTT_PW"),
        ("[mqtt]\npassword = 'hunter2'", "mqtt.password: unknown key"),
        ("[mqtt]\ntls_ca = 'ca.pem'", "mqtt.tls_ca: set, but mqtt.url is not mqtts://"),
        (
            "[mqtt]\nurl = 'mqtt://broker.example:1883'\nembedded_broker = 'always'",
            'mqtt.embedded_broker: "always" needs a loopback mqtt.url',
        ),
        ("[control]\nenabled = true", "control.token_env: control is enabled but environment"),
        ("[control]\nenabled = 'on'", "control.enabled: must be true or false, got a string"),
        ("[strategy]\nparams = {}", 'strategy.path: required in [strategy] ("file.py:Class")'),
        ("[strategy]\npath = 'grid.py'", 'strategy.path: must be "file.py:Class"'),
        ("feed = 3", "feed: must be a table, got a number"),
        ("[accounts]\nmain = 5", "accounts.main: must be a table, got a number"),
    ],
)
def test_validation_error_names_the_key_path(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(line.startswith(expected) for line in found), found


def test_every_problem_is_listed_each_on_its_own_line(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "[guards]\nmax_leverage = 0\ndaily_loss_limit = -1\n"
        "[accounts.main]\nwallet = -5\n[exchange]\nsymbolz = []\n[mqtt]\nqos = 5\n",
    )
    assert found == [
        "exchange.symbolz: unknown key "
        "(known: ccxt, id, profile, profile_options, slippage_bps, symbols, tiers_file, "
        "trigger_price); did you mean 'symbols'?",
        "accounts.main.wallet: must be >= 0, got -5",
        "guards.max_leverage: must be >= 1, got 0",
        "guards.daily_loss_limit: must be > 0, got -1",
        "mqtt.qos: must be one of 0, 1, 2, got 5",
    ]


def test_unknown_keys_and_sections(tmp_path: Path) -> None:
    found = problems(tmp_path, "[exchange]\nsymbolz = []\n[exchanges]\nid = 'x'\n")
    assert found[0] == (
        "exchanges: unknown key (known: accounts, alerts, control, exchange, feed, guardbot, "
        "guards, homeassistant, metrics, mqtt, notify, seed, store, strategy); "
        "did you mean 'exchange'?"
    )
    assert found[1].startswith("exchange.symbolz: unknown key (known: ccxt, id, profile,")
    assert problems(tmp_path, "[accounts.main]\nwalet = 1\n")[0].startswith(
        "accounts.main.walet: unknown key (known: api_key_env, default_leverage,"
    )


def test_exchange_secrets_in_file_point_to_the_env_vars(tmp_path: Path) -> None:
    found = problems(tmp_path, "[exchange.ccxt]\nsecret = 's'\npassword = 'p'\n")
    assert len(found) == 2
    assert found[0].startswith("exchange.ccxt.secret: secrets are not read from the file; ")
    assert "GUARDBOT_EXCHANGE_SECRET" in found[0]
    for var in ("GUARDBOT_EXCHANGE_API_KEY", "GUARDBOT_EXCHANGE_PASSWORD"):
        assert var in found[1]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read the configuration file"):
        load_config(path, {})


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "[guards]\nmax_leverage = 20\ndaily_loss_limit = = 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "line 3, column" in message


def test_ccxt_table_is_kept_as_a_plain_dict(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path, "[exchange.ccxt]\nenableRateLimit = true\n[exchange.ccxt.options]\na = 1\n"
        ),
        {},
    )
    assert config.exchange.ccxt == {"enableRateLimit": True, "options": {"a": 1}}


def test_env_overrides_number_bool_string_and_list(tmp_path: Path) -> None:
    path = write(tmp_path, "[guards]\nmax_leverage = 20\n[accounts.main]\nwallet = 1\n")
    env = {
        "GUARDBOT_GUARDS_MAX_LEVERAGE": "12.5",
        "GUARDBOT_GUARDS_REQUIRE_STOP_LOSS": "Yes",
        "GUARDBOT_MQTT_URL": "mqtts://broker.example:8883",
        "GUARDBOT_GUARDBOT_LOG_LEVEL": "DEBUG",
        "GUARDBOT_FEED_MODE": "sim",
        "GUARDBOT_FEED_SIM_SEED": "7",
        "GUARDBOT_MQTT_QOS": "2",
        "GUARDBOT_EXCHANGE_SYMBOLS": "BTC/USDT:USDT, SOL/USDT:USDT",
        "GUARDBOT_ACCOUNTS_MAIN_WALLET": "2500",
        "GUARDBOT_CONTROL_ENABLED": "0",
        "GUARDBOT_HOME": "/elsewhere",  # not an override: no section named HOME
        "OTHER": "x",
    }
    config = load_config(path, env)
    assert config.guards.max_leverage == Decimal("12.5")
    assert config.guards.require_stop_loss is True
    assert config.mqtt.url == "mqtts://broker.example:8883"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == ("broker.example", 8883, True)
    assert config.guardbot.log_level == "debug"
    assert config.feed.mode == "sim"
    assert config.feed.sim_seed == 7
    assert config.mqtt.qos == 2
    assert config.exchange.symbols == ("BTC/USDT:USDT", "SOL/USDT:USDT")
    assert config.accounts["main"].wallet == Decimal(2500)
    assert config.control.enabled is False


@pytest.mark.parametrize("text", ["true", "FALSE", "1", "0", "yes", "No"])
def test_env_bools_are_strict(text: str) -> None:
    config = load_config(None, {"GUARDBOT_GUARDS_REQUIRE_STOP_LOSS": text})
    assert config.guards.require_stop_loss is (text.lower() in ("true", "1", "yes"))


def test_env_bad_values_name_the_variable(tmp_path: Path) -> None:
    env = {
        "GUARDBOT_GUARDS_REQUIRE_STOP_LOSS": "maybe",
        "GUARDBOT_MQTT_QOS": "high",
        "GUARDBOT_GUARDS_MAX_LEVERAGE": "0",
        "GUARDBOT_ACCOUNTS_MAIN_WALLET": "lots",
    }
    found = problems(tmp_path, "[accounts.main]\n", env)
    assert found == [
        "GUARDBOT_GUARDS_REQUIRE_STOP_LOSS: must be one of true, false, 1, 0, yes, no, got 'maybe'",
        "GUARDBOT_MQTT_QOS: must be an integer, got 'high'",
        'accounts.main.wallet: must be a number, got "lots" (from GUARDBOT_ACCOUNTS_MAIN_WALLET)',
        "guards.max_leverage: must be >= 1, got 0 (from GUARDBOT_GUARDS_MAX_LEVERAGE)",
    ]


def test_unknown_override_variables_are_problems_but_secrets_are_not(tmp_path: Path) -> None:
    env = {
        "GUARDBOT_EXCHANGE_SYMBOLZ": "x",
        "GUARDBOT_ACCOUNTS_OTHER_WALLET": "5",
        "GUARDBOT_EXCHANGE_CCXT": "{}",
        # Secrets and the variables named by token_env / password_env are not overrides.
        "GUARDBOT_EXCHANGE_API_KEY": "k",
        "GUARDBOT_EXCHANGE_SECRET": "s",
        "GUARDBOT_EXCHANGE_PASSWORD": "p",
        "GUARDBOT_CONTROL_TOKEN": "t",
        "GUARDBOT_MQTT_PASS": "pw",
    }
    found = problems(tmp_path, "[mqtt]\npassword_env = 'GUARDBOT_MQTT_PASS'\n", env)
    assert len(found) == 3
    assert found[0].startswith("GUARDBOT_ACCOUNTS_OTHER_WALLET: matches no configuration key")
    assert found[1] == "GUARDBOT_EXCHANGE_CCXT: exchange.ccxt is a table; set it in the file"
    assert found[2] == "GUARDBOT_EXCHANGE_SYMBOLZ: matches no configuration key"


def test_secrets_come_from_env_and_never_show_in_repr(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[mqtt]\nusername = 'bot'\npassword_env = 'MQTT_PW'\n"
        "[control]\nenabled = true\ntoken_env = 'CTRL_TOKEN'\n",
    )
    env = {
        "MQTT_PW": "mqtt-pw-value",
        "CTRL_TOKEN": "control-token-value",
        "GUARDBOT_EXCHANGE_API_KEY": "api-key-value",
        "GUARDBOT_EXCHANGE_SECRET": "secret-value",
        "GUARDBOT_EXCHANGE_PASSWORD": "password-value",
    }
    config = load_config(path, env)
    assert config.mqtt.password is not None and config.mqtt.password.reveal() == "mqtt-pw-value"
    assert config.control.token is not None
    assert config.control.token.reveal() == "control-token-value"
    assert config.exchange.api_key == Secret("api-key-value")
    options = config.exchange.ccxt_options()
    assert options["apiKey"] == "api-key-value"
    assert options["secret"] == "secret-value"
    assert options["password"] == "password-value"
    assert "apiKey" not in config.exchange.ccxt
    shown = repr(config) + str(config)
    for value in env.values():
        assert value not in shown
    assert "Secret('**********')" in shown


def test_secret_type() -> None:
    secret = Secret("abc")
    assert repr(secret) == str(secret) == "Secret('**********')"
    assert f"{secret}" == "Secret('**********')"
    assert secret.reveal() == "abc"


def test_control_token_must_be_non_empty() -> None:
    env = {"GUARDBOT_CONTROL_ENABLED": "true", "GUARDBOT_CONTROL_TOKEN": ""}
    with pytest.raises(ConfigError, match=r"control\.token_env: control is enabled"):
        load_config(None, env)
    config = load_config(None, {**env, "GUARDBOT_CONTROL_TOKEN": "t0k"})
    assert config.control.enabled is True
    assert config.control.token == Secret("t0k")


def test_config_objects_are_frozen() -> None:
    config = load_config(None, {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.feed = config.feed  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mqtt.url = "mqtt://x"  # type: ignore[misc]


def test_strategy_section(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, "[strategy]\npath = 'strats/grid.py:Grid'\n[strategy.params]\nstep = 1\n"),
        {},
    )
    assert config.strategy is not None
    assert (config.strategy.file, config.strategy.class_name) == ("strats/grid.py", "Grid")
    assert config.strategy.params == {"step": 1}


def test_engine_config_is_built_from_the_sections() -> None:
    config = load_config(CONFIG_DIR / "guardbot.toml", {"GUARDBOT_EXCHANGE_SLIPPAGE_BPS": "3"})
    engine = config.engine_config({}, {"BTC/USDT:USDT": Decimal(1)})
    assert isinstance(engine, EngineConfig)
    assert engine.profile is PROFILES["binance"]
    assert engine.fees == Fees(Decimal("0.0002"), Decimal("0.0005"))
    assert engine.accounts == {
        "main": AccountConfig(
            wallet=Decimal(10000),
            default_margin_mode="cross",
            default_leverage=Decimal(10),
            fees=Fees(Decimal("0.0002"), Decimal("0.0005")),
        )
    }
    assert engine.auto_create_accounts is False
    assert engine.guards is config.guards
    assert engine.alerts is config.alerts
    assert engine.trigger_price == "mark"
    assert engine.slippage_bps == Decimal(3)
    assert engine.contract_sizes == {"BTC/USDT:USDT": Decimal(1)}


def test_engine_config_without_accounts_has_zero_fees(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[exchange]\nid = 'bybit'\n"), {})
    engine = config.engine_config({}, {})
    assert engine.fees == Fees()
    assert engine.auto_create_accounts is True
    assert engine.profile is PROFILES["bybit"]


def test_seed_commands_are_validated_and_exact(tmp_path: Path) -> None:
    path = tmp_path / "seed.toml"
    path.write_text(
        """
[[seed]]
type = "order"
account = "main"
id = "s1"
symbol = "BTC/USDT:USDT"
side = "buy"
orderType = "market"
amount = 0.1

[[seed]]
type = "tick"
symbol = "BTC/USDT:USDT"
mark = 1

[[seed]]
type = "order"
account = "main"
id = "s2"
orderType = "market"
symbol = "BTC/USDT:USDT"
side = "sideways"
amount = 1
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    lines = str(info.value).splitlines()[1:]
    assert lines[0].startswith("seed[1].type: must be one of order, cancel,")
    assert lines[1].startswith("seed[2].side")
    assert len(lines) == 2


def test_seed_and_metrics_defaults(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(
        """
[metrics]
listen = "[::1]:9200"

[[seed]]
type = "deposit"
account = "main"
amount = 0.1
""",
        encoding="utf-8",
    )
    config = load_config(path, env={})
    assert config.metrics.enabled and (config.metrics.host, config.metrics.port) == ("::1", 9200)
    assert config.seed == ({"type": "deposit", "account": "main", "amount": Decimal("0.1")},)
    assert load_config(None, env={}).metrics.listen == "127.0.0.1:9108"


def test_metrics_listen_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[metrics]\nlisten = "localhost"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"metrics.listen: must be host:port"):
        load_config(path, env={})


def test_every_key_is_declared_once_on_its_field_with_its_documentation() -> None:
    from guardbot.config.schema import keys, sections

    secrets = {"api_key", "secret", "password", "token", "urls"}
    seen = 0
    for sec in sections(Config):
        if sec.cls is None:
            continue
        declared = {f.attr for f in keys(sec.cls)}
        others = {f.name for f in dataclasses.fields(sec.cls)} - declared
        assert others <= secrets, (sec.name, others)  # every other field is a key
        for f in keys(sec.cls):
            assert f.key.doc.strip(), f"{sec.name}.{f.name} has no documentation"
            seen += 1
    assert seen >= 35


def test_cli_prints_config_problems_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from guardbot.cli.main import main

    path = write(tmp_path, "[guards]\nmax_leverage = 0\n[accounts.main]\nwalet = 1\n")
    assert main(["run", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    # Issue 11: the problems were joined into one long line.
    assert err.splitlines() == [
        f"guardbot run: invalid configuration {path} (2 problems):",
        "  accounts.main.walet: unknown key (known: api_key_env, default_leverage, "
        "default_margin_mode, maker_fee, mirror, mirror_drift_confirm_s, mirror_poll_s, "
        "mirror_tolerance, "
        "password_env, position_mode, secret_env, symbols, taker_fee, wallet); did you mean "
        "'wallet'?",
        "  guards.max_leverage: must be >= 1, got 0",
    ]


def test_notify_section(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text(
        '[notify]\nurls_env = "NOTIFY_URLS"\ntypes = ["liquidation"]\ncoalesce_s = 5\n',
        encoding="utf-8",
    )
    config = load_config(path, env={"NOTIFY_URLS": "json://127.0.0.1:9/x"})
    assert config.notify.urls is not None and config.notify.urls.reveal() == "json://127.0.0.1:9/x"
    assert "127.0.0.1" not in repr(config.notify)  # the URLs carry tokens
    assert (config.notify.min_severity, config.notify.types, config.notify.coalesce_s) == (
        "warning",
        ("liquidation",),
        5,
    )
    assert load_config(None, env={}).notify.urls is None  # off by default
    assert problems(tmp_path, '[notify]\nurls_env = "NOPE_UNSET"\n') == [
        "notify.urls_env: environment variable NOPE_UNSET is not set"
    ]
    assert problems(tmp_path, '[notify]\ntypes = ["margin_alrt"]\n')[0].startswith(
        "notify.types: unknown alert type 'margin_alrt'; known: checkpoint, feed_recovered, "
    )
    assert problems(tmp_path, '[notify]\nmin_severity = "loud"\n') == [
        "notify.min_severity: must be one of info, warning, margin_call, critical, got 'loud'"
    ]


def test_homeassistant_section(tmp_path: Path) -> None:
    config = load_config(None, env={})
    assert (config.homeassistant.enabled, config.homeassistant.discovery_prefix) == (
        False,
        "homeassistant",
    )
    found = problems(tmp_path, '[homeassistant]\nenabled = true\ndiscovery_prefix = "ha/#"\n')
    assert found and found[0].startswith("homeassistant.discovery_prefix: must be")


@dataclasses.dataclass(frozen=True)
class PerSymbol:
    leverage: Decimal = setting(ge=1, doc="leverage")
    margin_mode: str = setting("cross", choices=("cross", "isolated"), doc="mode")


@dataclasses.dataclass(frozen=True)
class Outer:
    symbols: dict[str, PerSymbol] = setting(factory=dict, doc="per symbol")


def test_a_key_can_hold_named_tables_of_its_own_keys() -> None:
    """For per-symbol settings: a ``dict[str, <dataclass>]`` key reads each named table against
    the dataclass's own keys, with the same messages (the venues work adds such keys)."""
    from guardbot.config.reader import Problems, Table

    problems = Problems({})
    raw = {
        "symbols": {
            "BTC/USDT:USDT": {"leverage": 20, "margin_mode": "isolated"},
            "ETH/USDT:USDT": {"leverag": 5},
            "x": {"leverage": 0},
        }
    }
    values = Table(raw, "accounts.main", problems, Outer).values()
    assert values["symbols"] == {"BTC/USDT:USDT": PerSymbol(Decimal(20), "isolated")}
    assert problems.items == [
        'accounts.main.symbols["ETH/USDT:USDT"].leverag: unknown key (known: leverage, '
        "margin_mode); did you mean 'leverage'?",
        'accounts.main.symbols["ETH/USDT:USDT"].leverage: required',
        "accounts.main.symbols.x.leverage: must be >= 1, got 0",
    ]


def test_close_only_stops_can_be_turned_off(tmp_path: Path) -> None:
    # issue 11 item 4: on by default; off gives the venue's plain stop orders
    off = load_config(write(tmp_path, "[guards]\nclose_only_stops = false\n"), {})
    assert off.guards.close_only_stops is False
    with pytest.raises(ConfigError, match=r"guards\.close_only_stops"):
        load_config(write(tmp_path, '[guards]\nclose_only_stops = "no"\n'), {})


def test_a_venue_ccxt_lacks_data_for_is_refused_live_naming_the_data(tmp_path: Path) -> None:
    """Hyperliquid: ccxt 4.5.90 has no leverage tiers and no best bid/ask for it."""
    live = problems(tmp_path, '[exchange]\nid = "hyperliquid"\nprofile = "generic"\n')
    assert any(
        line.startswith("exchange.id: 'hyperliquid' cannot be followed live")
        and "no leverage tiers" in line
        and "no best bid/ask" in line
        and "tiers_file" in line
        for line in live
    ), live
    replayed = load_config(
        write(
            tmp_path,
            '[exchange]\nid = "hyperliquid"\nprofile = "generic"\n'
            '[feed]\nmode = "replay"\nreplay_file = "ticks.jsonl"\n',
        ),
        {},
    )
    assert replayed.exchange.profile.name == "generic"


@pytest.mark.parametrize("venue", ["bybit", "okx", "mexc", "bitget", "gate", "kucoinfutures"])
def test_every_venue_example_loads_with_its_own_profile(venue: str) -> None:
    config = load_config(CONFIG_DIR / f"{venue}.toml", {})
    assert config.exchange.id == venue and config.exchange.profile.name == venue
    assert config.feed.mode == "ccxt"


def test_the_readme_coinex_example_loads(tmp_path: Path) -> None:
    """README 'A venue outside ccxt': the generic profile on a replay file."""
    readme = (CONFIG_DIR.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index('id = "coinex"')
    block = readme[readme.rindex("```toml", 0, start) + len("```toml") : readme.index("```", start)]
    tiers = tmp_path / "tiers" / "coinex.json"
    tiers.parent.mkdir()
    tiers.write_text(json.dumps(COINEX_TIERS), encoding="utf-8")
    block = block.replace('"./tiers/coinex.json"', json.dumps(str(tiers)))
    config = load_config(write(tmp_path, block), {})
    assert config.exchange.profile.name == "generic" and config.feed.mode == "replay"
    # the margin-mode switch with a position open that CoinEx and Bitunix's app allow
    assert config.exchange.profile.margin_mode_switch == "with_position"


SYMBOL_TABLES = """
[accounts.main]
default_margin_mode = "cross"
default_leverage = 10

[accounts.main.symbols."ETH/USDT:USDT"]
margin_mode = "isolated"
leverage = 5

[accounts.main.symbols."SOL/USDT:USDT"]
leverage = 3
"""


def test_per_symbol_margin_mode_and_leverage_is_one_table(tmp_path: Path) -> None:
    """Issue 12 item 5: "cross for the hedged pairs, isolated for the speculative ones"."""
    from guardbot.core.state import default_settings

    config = load_config(write(tmp_path, SYMBOL_TABLES), {})
    engine = config.engine_config({}, {})
    account = engine.accounts["main"]
    got = {
        s: (d.margin_mode, d.leverage)
        for s in ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
        for d in [default_settings(engine, account, s)]
    }
    assert got == {
        "BTC/USDT:USDT": ("cross", Decimal(10)),  # not listed: the defaults
        "ETH/USDT:USDT": ("isolated", Decimal(5)),
        "SOL/USDT:USDT": ("cross", Decimal(3)),  # only leverage given
    }


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('margin_mode = "hedged"', 'accounts.main.symbols["ETH/USDT:USDT"].margin_mode: must be'),
        ("leverage = 0", 'accounts.main.symbols["ETH/USDT:USDT"].leverage: must be >= 1'),
        ("leverage = true", 'accounts.main.symbols["ETH/USDT:USDT"].leverage: must be'),
        ("levrage = 5", 'accounts.main.symbols["ETH/USDT:USDT"].levrage: unknown key'),
    ],
)
def test_per_symbol_settings_refuse_bad_values_naming_the_key(
    tmp_path: Path, table: str, expected: str
) -> None:
    text = f'[accounts.main]\n[accounts.main.symbols."ETH/USDT:USDT"]\n{table}\n'
    found = problems(tmp_path, text)
    assert any(line.startswith(expected) for line in found), found


def test_per_symbol_settings_refuse_a_non_unified_symbol(tmp_path: Path) -> None:
    found = problems(tmp_path, "[accounts.main.symbols.BTCUSDT]\nleverage = 5\n")
    assert any(
        line.startswith('accounts.main.symbols["BTCUSDT"]: must be a ccxt') for line in found
    )


COINEX_TIERS = {
    "asOf": "2026-01-01",
    "source": "the user's own copy of the venue's tier page",
    "tiers": {
        "BTC/USDT:USDT": [
            {"minNotional": 0, "maxNotional": 100000, "maintenanceMarginRate": 0.005,
             "maxLeverage": 100},
            {"minNotional": 100000, "maxNotional": 1000000, "maintenanceMarginRate": 0.01,
             "maxLeverage": 50},
        ]
    },
    "contractSize": {"BTC/USDT:USDT": 1},
}  # fmt: skip


def test_generic_venue_takes_profile_options_and_a_tiers_file(tmp_path: Path) -> None:
    """A venue outside ccxt (CoinEx): the generic profile with the user's switches and tiers."""
    tiers = tmp_path / "coinex.json"
    tiers.write_text(json.dumps(COINEX_TIERS), encoding="utf-8")
    text = (
        '[exchange]\nid = "coinex"\nprofile = "generic"\nsymbols = ["BTC/USDT:USDT"]\n'
        f'tiers_file = "{tiers}"\n'
        'profile_options = { liquidation_fee_rate = 0.01, reduce_only_excess = "reject" }\n'
        '[feed]\nmode = "replay"\nreplay_file = "ticks.jsonl"\n'
    )
    config = load_config(write(tmp_path, text), {})
    profile = config.exchange.profile
    assert profile.name == "generic" and profile.liquidation_fee_rate == Decimal("0.01")
    assert profile.reduce_only_excess == "reject"
    from guardbot.daemon.tier_tables import TierTables

    tables = TierTables(config)
    assert tables.bundled.as_of == "2026-01-01"
    assert [t.cap for t in tables.bundled.tables["BTC/USDT:USDT"].tiers] == [100000, 1000000]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('profile_options = { mm_formula = "cubic" }', "exchange.profile_options.mm_formula:"),
        ("profile_options = { fee = 1 }", "exchange.profile_options.fee: unknown key"),
        ('tiers_file = "missing.json"', "exchange.tiers_file: missing.json: cannot be read"),
    ],
)
def test_generic_venue_options_are_refused_naming_the_key(
    tmp_path: Path, line: str, expected: str
) -> None:
    found = problems(tmp_path, f'[exchange]\nid = "coinex"\nprofile = "generic"\n{line}\n')
    assert any(line.startswith(expected) for line in found), found


def test_a_tiers_file_with_an_overlap_is_refused_naming_the_row(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(COINEX_TIERS))
    bad["tiers"]["BTC/USDT:USDT"][1]["minNotional"] = 50000
    tiers = tmp_path / "bad.json"
    tiers.write_text(json.dumps(bad), encoding="utf-8")
    found = problems(
        tmp_path, f'[exchange]\nid = "coinex"\nprofile = "generic"\ntiers_file = "{tiers}"\n'
    )
    assert any(
        'tiers["BTC/USDT:USDT"][1].minNotional: overlaps the previous tier' in line
        for line in found
    ), found
