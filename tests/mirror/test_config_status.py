"""Mirror accounts in the configuration, the status table and the metrics."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from guardbot.cli.control import render_status
from guardbot.config import load_config
from guardbot.metrics.prometheus import Metrics, MirrorRow
from tests.config.test_config import problems, write

KEYS = {"GUARDBOT_EXCHANGE_API_KEY": "k-123456", "GUARDBOT_EXCHANGE_SECRET": "s-654321"}


def test_mirror_account_reads_its_keys_from_the_named_variables(tmp_path: Path) -> None:
    text = """
[exchange]
id = "binanceusdm"

[accounts.real]
mirror = true
mirror_poll_s = 10
mirror_tolerance = 0.01

[accounts.sub]
mirror = true
api_key_env = "SUB_KEY"
secret_env = "SUB_SECRET"

[accounts.paper]
wallet = 500
"""
    env = {**KEYS, "SUB_KEY": "sub-key-1", "SUB_SECRET": "sub-secret-1"}
    config = load_config(write(tmp_path, text), env)
    real, sub = config.accounts["real"], config.accounts["sub"]
    assert real.credentials() == {"apiKey": "k-123456", "secret": "s-654321"}
    assert sub.credentials() == {"apiKey": "sub-key-1", "secret": "sub-secret-1"}
    assert (real.mirror_poll_s, real.mirror_tolerance) == (10, Decimal("0.01"))
    assert "k-123456" not in repr(real) and "s-654321" not in repr(config)
    engine = config.engine_config({}, {})
    assert engine.accounts["real"].mirror and not engine.accounts["paper"].mirror
    assert engine.accounts["real"].mirror_tolerance == Decimal("0.01")


def test_missing_keys_name_the_account_and_the_variable(tmp_path: Path) -> None:
    found = problems(tmp_path, '[exchange]\nid = "binanceusdm"\n[accounts.real]\nmirror = true\n')
    assert found == [
        "accounts.real.api_key_env: the environment variable GUARDBOT_EXCHANGE_API_KEY is not "
        "set (the mirror account's API key; a read-only key will do)",
        "accounts.real.secret_env: the environment variable GUARDBOT_EXCHANGE_SECRET is not "
        "set (the mirror account's API secret; a read-only key will do)",
    ]


@pytest.mark.parametrize("venue", ["bitget", "okx"])
def test_a_passphrase_venue_needs_its_password_env(tmp_path: Path, venue: str) -> None:
    text = (
        f'[exchange]\nid = "{venue}"\nsymbols = ["BTC/USDT:USDT"]\n'
        '[accounts.real]\nmirror = true\npassword_env = "BG_PASS"\n'
    )
    assert problems(tmp_path, text, KEYS) == [
        "accounts.real.password_env: the environment variable BG_PASS is not set (the mirror "
        "account's API passphrase; a read-only key will do)"
    ]
    config = load_config(write(tmp_path, text), {**KEYS, "BG_PASS": "p-1"})
    assert config.accounts["real"].credentials()["password"] == "p-1"


@pytest.mark.parametrize(
    ("venue", "message"),
    [
        ("bitstamp", "ccxt cannot read positions on 'bitstamp'"),
        ("kucoinfutures", "mirror accounts are not supported on 'kucoinfutures' yet"),
    ],
)
def test_a_venue_without_mirror_support_is_refused_by_name(
    tmp_path: Path, venue: str, message: str
) -> None:
    text = f'[exchange]\nid = "{venue}"\nprofile = "binance"\n[accounts.real]\nmirror = true\n'
    found = problems(tmp_path, text, KEYS)
    assert any(line.startswith("accounts.real.mirror: ") and message in line for line in found)


def test_status_marks_mirrors_with_both_liquidation_prices() -> None:
    accounts = {
        "paper": {"wallet": "1000", "positions": []},
        "real": {
            "wallet": "1500",
            "positions": [
                {
                    "symbol": "BTC/USDT:USDT",
                    "side": "long",
                    "contracts": "0.5",
                    "entryPrice": "60000",
                    "markPrice": "59000",
                    "liquidationPrice": "57228.91",
                }
            ],
            "mirror": {
                "positions": {
                    "BTC/USDT:USDT": {
                        "liquidationPrice": "57228.91",
                        "exchangeLiquidationPrice": "57230.00",
                    }
                }
            },
        },
    }
    text = render_status({"state": "online"}, accounts, 0)
    assert "real (mirror)" in text and "paper (mirror)" not in text
    assert "EXCHANGE LIQ" in text
    row = next(line.split() for line in text.splitlines() if "BTC/USDT:USDT" in line)
    assert row[0] == "real" and row[-3:] == ["57,229", "3%", "57,230"]
    plain = render_status({"state": "online"}, {"paper": accounts["paper"]}, 0)
    assert "EXCHANGE LIQ" not in plain


def test_mirror_metrics_carry_both_prices_and_the_drift() -> None:
    metrics = Metrics(symbols=["BTC/USDT:USDT"])
    metrics.set_mirrors(
        [MirrorRow("real", "BTC/USDT:USDT", Decimal("57000"), Decimal("57100"), Decimal("-0.002"))]
    )
    text = generate_latest(metrics.registry).decode()
    exchange = 'source="exchange",symbol="BTC/USDT:USDT"} 57100.0'
    assert f'guardbot_mirror_liquidation_price{{account="real",{exchange}' in text
    drift = 'guardbot_mirror_liquidation_drift_ratio{account="real",symbol="BTC/USDT:USDT"}'
    assert f"{drift} -0.002" in text
    metrics.set_mirrors([])
    assert (
        "guardbot_mirror_liquidation_drift_ratio{" not in generate_latest(metrics.registry).decode()
    )
