"""``guardbot calc`` (docs/contracts.md §1), the command line around it, and the bundled tiers."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import types
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import guardbot
from guardbot.cli.calc import parse_calc_input, run_calc
from guardbot.cli.main import main
from guardbot.core.num import decimal_context
from guardbot.core.profiles import PROFILES
from guardbot.core.tiers import TierTable
from guardbot.errors import GuardbotError, InputError
from guardbot.tiers.source import (
    BundledTiers,
    bundled_for,
    load_bundled,
    parse_bundled,
    read_bundled,
)

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"

#: The example input of docs/contracts.md §1, verbatim.
EXAMPLE = """{
  "profile": "binance",
  "tiers": {
    "BTC/USDT:USDT": [
      {"tier": 1, "minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004, "maxLeverage": 125},
      {"tier": 2, "minNotional": 50000, "maxNotional": 250000, "maintenanceMarginRate": 0.005, "maxLeverage": 100, "maintenanceAmount": 50}
    ]
  },
  "fees": {"maker": 0.0002, "taker": 0.0005},
  "account": {"wallet": 10000},
  "positions": [
    {"symbol": "BTC/USDT:USDT", "side": "long", "contracts": 0.5, "entryPrice": 30000,
     "markPrice": 29000, "marginMode": "cross", "leverage": 20},
    {"symbol": "ETH/USDT:USDT", "side": "short", "contracts": 10, "entryPrice": 2000,
     "markPrice": 2100, "marginMode": "isolated", "leverage": 10, "collateral": 2000}
  ]
}
"""  # noqa: E501

#: A self-contained request (every symbol has its table), for the error cases.
BTC_TIERS: list[dict[str, Any]] = [
    {"tier": 1, "minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004,
     "maxLeverage": 125},
    {"tier": 2, "minNotional": 50000, "maxNotional": 250000, "maintenanceMarginRate": 0.005,
     "maxLeverage": 100},
    {"tier": 3, "minNotional": 250000, "maxNotional": 1000000, "maintenanceMarginRate": 0.01,
     "maxLeverage": 50},
]  # fmt: skip
ETH_TIERS: list[dict[str, Any]] = [
    {"tier": 1, "minNotional": 0, "maxNotional": 10000, "maintenanceMarginRate": 0.005,
     "maxLeverage": 100},
    {"tier": 2, "minNotional": 10000, "maxNotional": 100000, "maintenanceMarginRate": 0.0065,
     "maxLeverage": 75},
]  # fmt: skip


def request() -> dict[str, Any]:
    return {
        "profile": "binance",
        "tiers": {BTC: [dict(row) for row in BTC_TIERS], ETH: [dict(row) for row in ETH_TIERS]},
        "account": {"wallet": 10000},
        "positions": [
            {"symbol": BTC, "side": "long", "contracts": 0.5, "entryPrice": 30000,
             "markPrice": 29000, "marginMode": "cross", "leverage": 20},
            {"symbol": ETH, "side": "short", "contracts": 10, "entryPrice": 2000,
             "markPrice": 2100, "marginMode": "isolated", "leverage": 10, "collateral": 2000},
        ],
    }  # fmt: skip


def no_bundled(profile: str) -> BundledTiers:
    raise AssertionError(f"the bundled {profile} tiers should not be needed")


def calc(obj: object, bundled: Callable[[str], BundledTiers] = no_bundled) -> dict[str, Any]:
    return run_calc(obj, bundled=bundled)


def run_main(
    capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:  # fmt: skip
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- the docs/contracts.md example ---------------------------------------------------------


def hand_computed() -> dict[str, Decimal]:
    """The example's numbers from the rules (docs/rules.md §1, §3.1, §2.3, §4.1, §5.1, §6)."""
    with decimal_context():
        q, ep, mp, lev, wallet = D("0.5"), D(30000), D(29000), D(20), D(10000)
        notional = q * mp  # 14500
        upnl = q * (mp - ep)  # -500
        im = notional / lev  # 725
        mm = notional * D("0.004") - 0  # tier 1 (14500 <= 50000): 58
        balance = wallet + upnl  # only cross position: 9500
        # Long, alone in cross: P = (WB + cum - Q*EP) / (Q*mmr - Q), tier 1 at P (5020 <= 50000).
        liq = (wallet + 0 - q * ep) / (q * D("0.004") - q)
        return {
            "notional": notional,
            "upnl": upnl,
            "im": im,
            "mm": mm,
            "balance": balance,
            "ratio": mm / balance,
            "available": wallet + upnl - im,  # 8775
            "liq": liq,
            "bankrupt": ep - wallet / q,  # 10000
            "eth_upnl": -10 * (D(2100) - D(2000)),  # -1000
            "eth_collateral": D(2000) - 1000,  # isolated wallet + uPnL
            "eth_bankrupt": D(2000) + D(2000) / 10,  # 2200
        }


def check_example_output(out: dict[str, Any]) -> None:
    want = hand_computed()
    btc, eth = out["positions"]
    assert btc["symbol"] == BTC and eth["symbol"] == ETH  # input order
    assert btc["side"] == "long" and btc["marginMode"] == "cross"
    assert btc["contracts"] == "0.5"
    assert btc["entryPrice"] == "30000" and btc["markPrice"] == "29000"
    assert btc["notional"] == "14500"
    assert btc["unrealizedPnl"] == "-500"
    assert btc["initialMargin"] == "725"
    assert btc["maintenanceMargin"] == "58"
    assert btc["maintenanceMarginRate"] == "0.004"
    assert btc["leverage"] == "20"
    assert D(btc["collateral"]) == want["balance"]  # cross: the account's margin balance
    assert D(btc["marginRatio"]) == want["ratio"]
    assert D(btc["liquidationPrice"]) == want["liq"]
    assert D(btc["bankruptcyPrice"]) == want["bankrupt"]
    assert btc["liquidated"] is False

    assert eth["side"] == "short" and eth["marginMode"] == "isolated"
    assert eth["notional"] == "21000"
    assert eth["initialMargin"] == "2100"
    assert D(eth["unrealizedPnl"]) == want["eth_upnl"]
    assert D(eth["collateral"]) == want["eth_collateral"]
    assert D(eth["bankruptcyPrice"]) == want["eth_bankrupt"]
    with decimal_context():
        assert D(eth["marginRatio"]) == D(eth["maintenanceMargin"]) / want["eth_collateral"]
    assert eth["liquidated"] is False

    account = out["account"]
    assert account["wallet"] == "10000"
    assert D(account["marginBalance"]) == want["balance"] == 9500
    assert account["maintenanceMargin"] == "58"
    assert account["initialMargin"] == "725"
    assert D(account["marginRatio"]) == want["ratio"]
    assert D(account["availableBalance"]) == want["available"] == 8775
    assert account["liquidated"] is False


def test_interfaces_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "example.json"
    path.write_text(EXAMPLE, encoding="utf-8")
    code, out, err = run_main(capsys, "calc", str(path))
    assert (code, err) == (0, "")
    parsed = json.loads(out)
    check_example_output(parsed)
    assert out == json.dumps(parsed, indent=2) + "\n"


def test_interfaces_example_in_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "example.json"
    path.write_text(EXAMPLE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "guardbot", "calc", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    check_example_output(json.loads(done.stdout))


def test_bad_input_in_a_subprocess(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"positions": [{"symbol": "BTC/USDT:USDT", "entryPrice": NaN}]}')
    done = subprocess.run(
        [sys.executable, "-m", "guardbot", "calc", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("guardbot calc: positions[0].")


def test_reads_stdin_by_default_and_for_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps(request())
    outputs = []
    for argv in (["calc"], ["calc", "-"]):
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        code, out, err = run_main(capsys, *argv)
        assert (code, err) == (0, "")
        outputs.append(out)
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0]) == calc(request())


def test_pretty_prints_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request()), encoding="utf-8")
    code, out, err = run_main(capsys, "calc", str(path), "--pretty")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("SYMBOL"))
    for column in ("SIDE", "MODE", "CONTRACTS", "ENTRY", "MARK", "UPNL", "IM", "MM", "RATIO"):
        assert column in header
    assert "LIQ PRICE" in header and "DIST" in header
    btc = next(line for line in lines if line.startswith(BTC)).split()
    assert btc[:4] == [BTC, "long", "cross", "0.5"]
    assert "-500.00" in btc and "725.00" in btc and "58.00" in btc
    assert "0.61%" in btc  # 58 / 9500
    assert "10,040.16" in btc  # the liquidation price, rounded for display
    assert "65.38%" in btc  # distance from the mark 29000
    assert "account (cross)" in lines
    assert any(line.split()[:2] == ["margin", "balance"] and "9,500.00" in line for line in lines)
    assert not any("Traceback" in line for line in lines)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run_main(capsys, "--version")
    assert code == 0
    assert out.strip() == f"guardbot {guardbot.__version__}"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ((), "a command is required"),
        (("frobnicate",), "invalid choice"),
        (("calc", "--bogus"), "unrecognized arguments: --bogus"),
        (("calc", "a.json", "b.json"), "unrecognized arguments: b.json"),
    ],
)
def test_usage_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], fragment: str
) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("guardbot: ")
    assert fragment in err


# --- bad input: exit 2, one line naming the field ----------------------------------------------


def edit(change: Callable[[dict[str, Any]], object]) -> str:
    obj = request()
    change(obj)
    return json.dumps(obj)


def pos0(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda obj: obj["positions"][0].__setitem__(key, value)


def pos1(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda obj: obj["positions"][1].__setitem__(key, value)


def misspell_entry(obj: dict[str, Any]) -> None:
    obj["positions"][1]["entryprice"] = obj["positions"][1].pop("entryPrice")


BAD_INPUTS: list[Any] = [
    pytest.param(
        edit(pos0("entryPrice", 1)).replace('"entryPrice": 1', '"entryPrice": NaN'),
        "positions[0].entryPrice: must be a finite number, got NaN",
        id="nan",
    ),
    pytest.param(
        edit(pos0("markPrice", 1)).replace('"markPrice": 1', '"markPrice": Infinity'),
        "positions[0].markPrice: must be a finite number",
        id="infinity",
    ),
    pytest.param(
        edit(lambda o: o["account"].__setitem__("wallet", 1)).replace(
            '"wallet": 1', '"wallet": -Infinity'
        ),
        "account.wallet: must be a finite number",
        id="minus-infinity",
    ),
    pytest.param(
        edit(pos1("entryPrice", "-5")),
        'positions[1].entryPrice: must be > 0, got "-5"',
        id="negative-entry-string",
    ),
    pytest.param(
        edit(pos0("contracts", 0)), "positions[0].contracts: must be > 0, got 0", id="zero"
    ),
    pytest.param(edit(pos0("leverage", 0)), "positions[0].leverage: must be >= 1", id="leverage-0"),
    pytest.param(
        edit(pos0("leverage", 200)),
        f"positions[0].leverage: must be <= 125 (the max leverage of {BTC}), got 200",
        id="leverage-above-max",
    ),
    pytest.param(
        edit(pos0("symbol", "XYZ/USDT:USDT")),
        "positions[0].symbol: no tier table for XYZ/USDT:USDT",
        id="unknown-symbol",
    ),
    pytest.param(
        edit(pos0("symbol", "BTCUSDT")),
        'positions[0].symbol: must be a ccxt unified symbol like "BTC/USDT:USDT", got "BTCUSDT"',
        id="not-unified-symbol",
    ),
    pytest.param(
        edit(lambda o: o.__setitem__("profile", "kraken")), "profile: must be one of", id="profile"
    ),
    pytest.param(
        edit(pos0("side", "up")),
        'positions[0].side: must be "long" or "short", got "up"',
        id="side",
    ),
    pytest.param(
        edit(lambda o: o["positions"][0].pop("markPrice")),
        "positions[0].markPrice: is required",
        id="missing-mark",
    ),
    pytest.param(
        edit(misspell_entry),
        "positions[1].entryprice: unknown key (known: collateral, contractSize, contracts, "
        "entryPrice, hedged, isolated, isolatedWallet, leverage, marginMode, markPrice, side, "
        "symbol); did you mean 'entryPrice'?",
        id="misspelled-key",
    ),
    # Issue 11: unknown keys were ignored (a cross position computed, the bundled tiers used).
    pytest.param(
        edit(pos0("marginMod", "isolated")),
        "positions[0].marginMod: unknown key (known: collateral,",
        id="unknown-position-key",
    ),
    pytest.param(
        edit(lambda o: o.__setitem__("tier", o["tiers"])),
        "tier: unknown key (known: account, fees, positionMode, positions, profile, tiers); "
        "did you mean 'tiers'?",
        id="unknown-top-key",
    ),
    pytest.param(
        edit(lambda o: o.__setitem__("fees", {"maker": 0, "taker_fee": 0.001})),
        "fees.taker_fee: unknown key (known: maker, taker); did you mean 'taker'?",
        id="unknown-fee-key",
    ),
    pytest.param(
        edit(lambda o: o["account"].__setitem__("balance", 5)),
        "account.balance: unknown key (known: wallet)",
        id="unknown-account-key",
    ),
    pytest.param(
        edit(lambda o: next(iter(o["tiers"].values()))[0].__setitem__("mmr", 0.1)),
        'tiers["BTC/USDT:USDT"][0].mmr: unknown key (known: maintenanceAmount,',
        id="unknown-tier-key",
    ),
    pytest.param(
        edit(pos0("positionMargin", 100)),
        "positions[0].positionMargin: unknown key",
        id="ccxt-position-margin-is-not-ignored",
    ),
    pytest.param(
        edit(pos0("hedged", True)),
        "positions[0].hedged: must be false with positionMode 'oneway', got true",
        id="hedged",
    ),
    pytest.param(
        edit(pos0("isolated", True)),
        'positions[0].isolated: is true but marginMode is "cross"; give one',
        id="isolated-conflicts",
    ),
    pytest.param("{}", "input: is empty", id="empty-object"),
    pytest.param(" \n", "input.json: is empty (expected one JSON object", id="blank-file"),
    pytest.param(
        edit(pos0("isolated", "yes")),
        'positions[0].isolated: must be true or false, got "yes"',
        id="isolated-type",
    ),
    pytest.param(
        '{"positions": [\n  {"symbol": "BTC/USDT:USDT",}\n]}',
        "invalid JSON at line 2 column 30: Expecting property name",
        id="malformed",
    ),
    pytest.param("", "input.json: is empty (expected one JSON object", id="empty-file"),
    pytest.param(
        json.dumps([request()]), "input: must be a JSON object, got a list", id="top-list"
    ),
    pytest.param(
        edit(lambda o: o["tiers"][BTC][1].__setitem__("minNotional", 40000)),
        f'tiers["{BTC}"][1].minNotional: overlaps the previous tier: must be >= its '
        "maxNotional (50000), got 40000",
        id="tiers-overlap",
    ),
    pytest.param(
        edit(lambda o: o["tiers"][BTC][0].__setitem__("maxNotional", "NaN")),
        f'tiers["{BTC}"][0].maxNotional: must be a finite number',
        id="tiers-nan",
    ),
    pytest.param(
        edit(lambda o: o["tiers"].__setitem__("BTCUSDT", BTC_TIERS)),
        'tiers["BTCUSDT"]: must be a ccxt unified symbol',
        id="tiers-symbol",
    ),
    pytest.param(
        edit(pos1("collateral", -100)),
        "positions[1].collateral: must be > 0, got -100",
        id="collateral",
    ),
    pytest.param(
        edit(pos1("isolatedWallet", 1999)),
        "positions[1].isolatedWallet: conflicts with collateral (2000)",
        id="collateral-conflict",
    ),
    pytest.param(
        edit(pos0("contracts", True)),
        "positions[0].contracts: must be a number, got true",
        id="bool",
    ),
    pytest.param(
        edit(pos0("contracts", [1])), "positions[0].contracts: must be a number", id="list-amount"
    ),
    pytest.param(
        edit(pos0("entryPrice", "1e400")), "positions[0].entryPrice: is out of range", id="huge"
    ),
    pytest.param(
        edit(pos0("contracts", "1e-400")), "positions[0].contracts: is out of range", id="tiny"
    ),
    pytest.param(
        edit(pos1("symbol", BTC)),
        f"positions[1].symbol: duplicate position for {BTC} "
        "(one-way mode holds one position per symbol)",
        id="duplicate-symbol",
    ),
    pytest.param(
        edit(pos0("marginMode", "portfolio")),
        'positions[0].marginMode: must be "cross" or "isolated", got "portfolio"',
        id="margin-mode",
    ),
    pytest.param(
        edit(lambda o: o.__setitem__("fees", {"taker": 1})),
        "fees.taker: must be >= 0 and < 1, got 1",
        id="fee-one",
    ),
    pytest.param(
        edit(lambda o: o.__setitem__("fees", {"maker": "-0.0001"})),
        "fees.maker: must be >= 0 and < 1",
        id="fee-negative",
    ),
    pytest.param(
        edit(lambda o: o.__setitem__("fees", 0.1)), "fees: must be an object", id="fees-type"
    ),
    pytest.param(
        edit(lambda o: o["account"].__setitem__("wallet", -1)),
        "account.wallet: must be >= 0, got -1",
        id="wallet-negative",
    ),
    pytest.param(
        edit(lambda o: o.pop("account")),
        "account.wallet: is required when a position is in cross mode",
        id="wallet-missing",
    ),
    pytest.param(
        edit(lambda o: o.__setitem__("positions", {"0": {}})),
        "positions: must be a list",
        id="positions-type",
    ),
    pytest.param(
        edit(lambda o: o.pop("positions")), "positions: is required", id="positions-missing"
    ),
    pytest.param(
        edit(lambda o: o["positions"].append("BTC")),
        "positions[2]: must be an object",
        id="position-type",
    ),
    pytest.param(
        edit(pos0("side", "lo\nng")),
        r'positions[0].side: must be "long" or "short", got "lo\nng"',
        id="newline",
    ),
    pytest.param(
        '{"profile": "binance", "profile": "okx"}',
        'invalid JSON: duplicate key "profile"',
        id="dup-key",
    ),
    pytest.param("[" * 100000 + "]" * 100000, "invalid JSON", id="deep-nesting"),
    pytest.param('{"x": ' + "9" * 5000 + "}", "invalid JSON", id="long-integer"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_INPUTS)
def test_bad_input_is_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = tmp_path / "input.json"
    path.write_text(text, encoding="utf-8")
    code, out, err = run_main(capsys, "calc", str(path))
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert err.startswith("guardbot calc: ")
    assert expected in err, err
    if "invalid JSON" in expected:
        assert str(path) in err  # the field of a decoding error is the file


def test_ccxt_position_fields_calc_computes_itself_are_accepted_and_ignored() -> None:
    """The output of ccxt's fetch_positions can be given as it is: the fields calc computes
    (notional, liquidationPrice, ...) are listed pass-through names, not unknown keys."""
    plain = run_calc(request())
    obj = request()
    obj["positions"][0].update(
        {"id": None, "info": {"x": 1}, "timestamp": 1, "datetime": "x", "notional": 1,
         "unrealizedPnl": 5, "liquidationPrice": 1, "marginRatio": 0.9, "hedged": False,
         "isolated": False, "percentage": 3, "lastPrice": 1}
    )  # fmt: skip
    next(iter(obj["tiers"].values()))[0].update({"symbol": BTC, "currency": "USDT", "info": {}})
    assert run_calc(obj) == plain


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    code, out, err = run_main(capsys, "calc", str(missing))
    assert (code, out) == (2, "")
    assert err == f"guardbot calc: {missing}: cannot read (No such file or directory)\n"


def test_directory_and_non_utf8_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_main(capsys, "calc", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and str(tmp_path) in err
    binary = tmp_path / "latin1.json"
    binary.write_bytes(b'{"profile": "\xe9"}')
    code, _out, err = run_main(capsys, "calc", str(binary))
    assert code == 2 and err.count("\n") == 1 and "not UTF-8" in err


# --- main: pipes and interrupts --------------------------------------------------------------


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


class _Interrupting(io.StringIO):
    def read(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_broken_pipe_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request()), encoding="utf-8")
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    code = main(["calc", str(path)])
    assert code == 1
    assert capsys.readouterr().err == ""


def test_keyboard_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", _Interrupting())
    assert main(["calc", "-"]) == 130
    assert "Traceback" not in capsys.readouterr().err


# --- simulate plumbing (the simulator itself is tested with its module) ----------------------


def fake_simulate(
    monkeypatch: pytest.MonkeyPatch, body: Callable[[TextIO, TextIO], None]
) -> list[bool]:
    calls: list[bool] = []

    def run_simulate(source: TextIO, out: TextIO, *, pretty: bool) -> None:
        calls.append(pretty)
        body(source, out)

    module = types.ModuleType("guardbot.cli.simulate")
    module.run_simulate = run_simulate  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "guardbot.cli.simulate", module)
    return calls


def test_simulate_passes_the_file_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def upper(source: TextIO, out: TextIO) -> None:
        out.write(source.read().upper())

    calls = fake_simulate(monkeypatch, upper)
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "tick"}\n', encoding="utf-8")
    code, out, err = run_main(capsys, "simulate", str(path), "--pretty")
    assert (code, out, err) == (0, '{"TYPE": "TICK"}\n', "")
    assert calls == [True]


def test_simulate_input_error_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(source: TextIO, out: TextIO) -> None:
        raise InputError("line 3", "ticks must carry a mark")

    fake_simulate(monkeypatch, fail)
    path = tmp_path / "events.jsonl"
    path.write_text("{}\n", encoding="utf-8")
    code, out, err = run_main(capsys, "simulate", str(path))
    assert (code, out) == (2, "")
    assert err == "guardbot simulate: line 3: ticks must carry a mark\n"
    code, out, err = run_main(capsys, "simulate", str(tmp_path / "missing.jsonl"))
    assert code == 2 and err.count("\n") == 1 and "cannot read" in err


# --- run_calc semantics ----------------------------------------------------------------------


def test_output_is_exact_decimal_strings() -> None:
    obj = request()
    obj["positions"] = [
        {"symbol": BTC, "side": "long", "contracts": "3", "entryPrice": "0.1",
         "markPrice": 0.3, "leverage": 1}
    ]  # fmt: skip
    [pos] = calc(obj)["positions"]
    assert pos["notional"] == "0.9"
    assert pos["unrealizedPnl"] == "0.6"  # 3 x (0.3 - 0.1), no float artefacts


def test_long_json_numbers_keep_every_digit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = json.dumps(request()).replace(
        '"entryPrice": 30000', '"entryPrice": 30000.1234567890123456789'
    )
    path = tmp_path / "request.json"
    path.write_text(text, encoding="utf-8")
    code, out, _err = run_main(capsys, "calc", str(path))
    assert code == 0
    assert json.loads(out)["positions"][0]["entryPrice"] == "30000.1234567890123456789"


def test_ccxt_position_dicts_are_accepted() -> None:
    """Unknown keys are ignored and null optional fields take their defaults."""
    obj = request()
    obj["positions"][0] |= {
        "info": {"symbol": "BTCUSDT"}, "id": None, "timestamp": 1700000000000,
        "datetime": None, "notional": 14500.0, "hedged": False, "contractSize": None,
        "initialMargin": 725.0, "maintenanceMarginPercentage": 0.004, "percentage": None,
        "lastPrice": None, "stopLossPrice": None, "collateral": -123,  # ignored for cross
    }  # fmt: skip
    obj["positions"][1]["marginMode"] = "isolated"
    assert calc(obj) == calc(request())


def test_isolated_collateral_defaults_to_entry_margin() -> None:
    obj = request()
    del obj["positions"][1]["collateral"]
    eth = calc(obj)["positions"][1]
    assert eth["isolatedWallet"] == "2000"  # 10 x 2000 / 10
    obj["positions"][1]["leverage"] = 8
    assert calc(obj)["positions"][1]["isolatedWallet"] == "2500"


def test_isolated_wallet_alias() -> None:
    obj = request()
    obj["positions"][1]["isolatedWallet"] = obj["positions"][1].pop("collateral")
    assert calc(obj) == calc(request())
    obj["positions"][1]["collateral"] = "2000.0"  # both given and equal: fine
    assert calc(obj) == calc(request())


def test_account_may_be_omitted_when_every_position_is_isolated() -> None:
    obj = request()
    del obj["account"]
    obj["positions"][0] |= {"marginMode": "isolated"}
    out = calc(obj)
    assert out["account"]["wallet"] == "0"
    assert out["account"]["marginRatio"] == "0"  # no cross position
    assert out["account"]["liquidated"] is False


def test_no_positions() -> None:
    out = calc({"account": {"wallet": "5"}, "positions": []})
    assert out["positions"] == []
    assert out["account"]["marginBalance"] == "5"


def test_profile_defaults_to_binance_and_fees_to_zero() -> None:
    obj = request()
    del obj["profile"]
    parsed = parse_calc_input(obj, bundled=no_bundled)
    assert parsed.profile.name == "binance"
    assert (parsed.maker_fee, parsed.taker_fee) == (D(0), D(0))
    assert parsed.positions[0].contract_size == 1


def test_maintenance_amount_is_derived_for_binance() -> None:
    obj = request()
    obj["positions"][0] |= {"contracts": 2, "markPrice": 29000}  # 58,000: tier 2, cum 50
    btc = calc(obj)["positions"][0]
    assert btc["maintenanceMarginRate"] == "0.005"
    assert btc["maintenanceMargin"] == "240"  # 58000 x 0.5% - 50


def test_okx_uses_contract_tiers_and_no_deduction() -> None:
    obj = request()
    obj["profile"] = "okx"
    obj["fees"] = {"taker": "0.0005"}
    obj["tiers"][BTC] = [
        {"minNotional": 0, "maxNotional": 1000, "maintenanceMarginRate": "0.004",
         "maxLeverage": 100, "maintenanceAmount": 999},
        {"minNotional": 1000, "maxNotional": 5000, "maintenanceMarginRate": "0.005",
         "maxLeverage": 50, "maintenanceAmount": 999},
    ]  # fmt: skip
    obj["positions"][0] |= {"contracts": 1500, "contractSize": "0.01"}  # 15 BTC, tier 2
    btc = calc(obj)["positions"][0]
    assert btc["notional"] == "435000"  # 1500 x 0.01 x 29000
    assert btc["maintenanceMarginRate"] == "0.005"
    assert btc["maintenanceMargin"] == "2175"  # flat: 435000 x 0.5%, the 999 is not used


def test_decimal_tier_numbers_from_ccxt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ccxt reports ``tier`` as a float (``1.0``); such a table must be accepted.

    JSON is read exactly, so ``1.0`` reaches TierTable.from_ccxt as ``Decimal("1.0")``.
    """
    obj = request()
    for i, row in enumerate(obj["tiers"][BTC]):
        row["tier"] = float(i + 1)
    path = tmp_path / "request.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    code, out, err = run_main(capsys, "calc", str(path))
    assert (code, err) == (0, "")
    assert json.loads(out) == calc(request())


# --- bundled tiers -----------------------------------------------------------------------------


def bundled_doc(profile: str = "binance", **changes: object) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "profile": profile,
        "asOf": "2024-01-02",
        "source": "test fixture",
        "notes": "made up",
        "tierBasis": PROFILES[profile].tier_basis,
        "contractSize": {BTC: "0.01" if profile == "okx" else 1},
        "tiers": {BTC: [dict(row, maintenanceAmount=row["tier"]) for row in BTC_TIERS]},
    }
    doc.update(changes)
    return doc


def test_read_bundled_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "binance.json"
    path.write_text(json.dumps(bundled_doc()), encoding="utf-8")
    tiers = read_bundled("binance", path)
    assert (tiers.profile, tiers.as_of, tiers.source) == ("binance", "2024-01-02", "test fixture")
    assert isinstance(tiers.tables[BTC], TierTable)
    assert [t.cum for t in tiers.tables[BTC].tiers] == [1, 2, 3]  # given amounts are kept
    assert tiers.contract_size(BTC) == 1
    assert tiers.contract_size(ETH) == 1  # not listed
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiers.as_of = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        tiers.tables[ETH] = tiers.tables[BTC]  # type: ignore[index]


def test_okx_bundled_tiers_have_no_deduction_and_a_contract_size() -> None:
    tiers = parse_bundled("okx", bundled_doc("okx"))
    assert {t.cum for t in tiers.tables[BTC].tiers} == {D(0)}
    assert tiers.contract_size(BTC) == D("0.01")


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (bundled_doc(profile="okx"), "profile: must be 'binance'"),
        (bundled_doc(tierBasis="contracts"), "tierBasis"),
        (bundled_doc(asOf=None), "asOf: must be a non-empty string"),
        (bundled_doc(tiers={}), "tiers: must be a non-empty object"),
        (bundled_doc(contractSize={BTC: 0}), f'contractSize["{BTC}"]: must be > 0'),
        (
            bundled_doc(tiers={BTC: [BTC_TIERS[1], dict(BTC_TIERS[0])]}),
            f'tiers["{BTC}"][1].minNotional: overlaps the previous tier',
        ),
    ],
)
def test_bad_bundled_files_are_refused(tmp_path: Path, doc: dict[str, Any], fragment: str) -> None:
    path = tmp_path / "binance.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(GuardbotError) as caught:
        read_bundled("binance", path)
    assert "bundled tiers binance.json" in str(caught.value)
    assert fragment in str(caught.value)


def test_missing_or_broken_bundled_file(tmp_path: Path) -> None:
    with pytest.raises(GuardbotError, match="not found"):
        read_bundled("binance", tmp_path / "binance.json")
    (tmp_path / "binance.json").write_text("{", encoding="utf-8")
    with pytest.raises(GuardbotError, match="invalid JSON at line 1 column 2"):
        read_bundled("binance", tmp_path / "binance.json")
    with pytest.raises(GuardbotError, match="unknown profile"):
        load_bundled("kraken")


def test_bundled_fallback_for_symbols_without_tiers() -> None:
    fixture = parse_bundled("binance", bundled_doc())
    asked: list[str] = []

    def loader(profile: str) -> BundledTiers:
        asked.append(profile)
        return fixture

    obj = request()
    del obj["tiers"][BTC]
    parsed = parse_calc_input(obj, bundled=loader)
    assert asked == ["binance"]  # loaded once, only because BTC has no table in the input
    assert parsed.positions[0].table is fixture.tables[BTC]
    assert parsed.positions[0].bundled_as_of == "2024-01-02"
    assert parsed.positions[1].bundled_as_of is None


def test_bundled_contract_size_is_the_okx_default() -> None:
    fixture = parse_bundled("okx", bundled_doc("okx"))
    obj = request()
    obj["profile"] = "okx"
    del obj["tiers"][BTC]
    obj["positions"][0]["contracts"] = 50
    out = calc(obj, bundled=lambda profile: fixture)
    assert out["positions"][0]["contractSize"] == "0.01"
    assert out["positions"][0]["notional"] == "14500"  # 50 x 0.01 x 29000
    obj["positions"][0]["contractSize"] = 1  # an explicit size wins
    assert calc(obj, bundled=lambda profile: fixture)["positions"][0]["notional"] == "1450000"


def test_unknown_symbol_names_the_bundled_snapshot() -> None:
    fixture = parse_bundled("binance", bundled_doc())
    obj = request()
    obj["positions"][0]["symbol"] = "DOGE/USDT:USDT"
    with pytest.raises(InputError) as caught:
        calc(obj, bundled=lambda profile: fixture)
    assert caught.value.field == "positions[0].symbol"
    assert "DOGE/USDT:USDT" in caught.value.message
    assert "2024-01-02" in caught.value.message


def test_missing_bundled_file_is_an_input_error_on_the_symbol() -> None:
    def missing(profile: str) -> BundledTiers:
        raise GuardbotError(f"bundled tiers {profile}.json: not found in this installation")

    obj = request()
    del obj["tiers"][ETH]
    with pytest.raises(InputError) as caught:
        calc(obj, bundled=missing)
    assert caught.value.field == "positions[1].symbol"
    assert "not found" in caught.value.message


SHIPPED = ("binance", "bybit", "okx", "bitget", "gate", "mexc")


@pytest.mark.parametrize("profile", SHIPPED)
def test_packaged_snapshots_load(profile: str) -> None:
    tiers = load_bundled(profile)
    assert tiers is load_bundled(profile)  # cached
    assert tiers.profile == profile and tiers.as_of and tiers.source
    assert BTC in tiers.tables
    assert tiers.contract_size(BTC) > 0


@pytest.mark.parametrize(
    ("exchange_id", "venue"),
    [("binanceusdm", "binance"), ("okex5", "okx"), ("gateio", "gate"), ("BYBIT", "bybit")],
)
def test_snapshots_are_keyed_by_exchange(exchange_id: str, venue: str) -> None:
    assert load_bundled(exchange_id) is load_bundled(venue)
    # whatever profile runs on the venue (a user's profile = "generic" on binanceusdm)
    assert bundled_for(exchange_id, "generic") is load_bundled(venue)


def test_a_venue_outside_ccxt_uses_its_profile_snapshot() -> None:
    assert bundled_for("coinex", "generic").tables == {}
    assert bundled_for("coinex", "bybit") is load_bundled("bybit")


@pytest.mark.parametrize("venue", sorted(set(PROFILES) - set(SHIPPED)))
def test_venues_without_a_published_table_ship_an_empty_snapshot(venue: str) -> None:
    tiers = load_bundled(venue)
    assert tiers.profile == venue and not tiers.tables and tiers.as_of == ""


# --- robustness ----------------------------------------------------------------------------------

_ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["1e999999", "-0", "1e-30", "okx", "bybit", "isolated", "short", "66.66"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_EDIT_PATHS: list[tuple[str | int, ...]] = [
    ("profile",),
    ("fees",),
    ("fees", "taker"),
    ("account",),
    ("account", "wallet"),
    ("positions",),
    ("tiers",),
    ("tiers", BTC),
    ("tiers", BTC, 0, "maxNotional"),
    ("tiers", BTC, 1, "minNotional"),
    ("tiers", BTC, 1, "maintenanceMarginRate"),
    ("tiers", BTC, 0, "maxLeverage"),
    ("tiers", BTC, 1, "maintenanceAmount"),
    *[
        ("positions", i, key)
        for i in (0, 1)
        for key in (
            "symbol", "side", "contracts", "contractSize", "entryPrice", "markPrice",
            "marginMode", "leverage", "collateral", "isolatedWallet",
        )
    ],
]  # fmt: skip


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(st.tuples(st.sampled_from(_EDIT_PATHS), _ODD_VALUES), max_size=3))
def test_odd_values_give_an_answer_or_an_input_error(
    edits: list[tuple[tuple[str | int, ...], object]],
) -> None:
    """Whatever lands in a field, run_calc answers or raises a GuardbotError, nothing else."""
    obj: Any = request()
    for path, value in edits:
        target = obj
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    try:
        out = calc(obj, bundled=lambda profile: parse_bundled(profile, bundled_doc(profile)))
    except GuardbotError:
        return
    json.dumps(out)  # only JSON types in the output
