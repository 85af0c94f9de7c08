"""``guardbot simulate [FILE|-] [--pretty]`` through the command line (docs/contracts.md §2).

In-process ``main([...])`` with capsys and temporary files, plus one real subprocess
(``python -m guardbot simulate -`` over stdin) to prove the console entry works.

Error contract: bad input never produces a traceback; it produces exit status 2 and exactly one
line on stderr, ``guardbot simulate: line N.<field>: <message>``.

Observed behaviour on bad input (documented by ``test_events_before_a_bad_line_are_still_written``):
``simulate`` streams, so the events of the lines before the bad one are already on stdout, each
a complete JSON line; nothing after the bad line is processed and no ``final`` line is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guardbot.cli.main import main
from tests.tiertables import BTC_TIERS, ETH_TIERS, ccxt_rows

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"


CONFIG: dict[str, Any] = {
    "type": "config",
    "profile": "binance",
    "tiers": {BTC: ccxt_rows(BTC_TIERS), ETH: ccxt_rows(ETH_TIERS)},
    "fees": {"maker": "0.0002", "taker": "0.0005"},
    "accounts": {"a": {"wallet": 10000, "default_margin_mode": "cross", "default_leverage": 10}},
}


def jsonl(*objs: object) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


def run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str
) -> tuple[int, str, str]:
    path = tmp_path / "input.jsonl"
    path.write_text(text, encoding="utf-8")
    status = main(["simulate", str(path), *args])
    out, err = capsys.readouterr()
    return status, out, err


def events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line, parse_float=Decimal) for line in out.splitlines()]


# ------------------------------------------------------------------------------ happy path

TICK_1 = {"type": "tick", "ts": 1000, "symbol": BTC, "mark": 30000, "bid": 29990, "ask": 30010}
BUY_SL_TP = {
    "type": "order",
    "ts": 2000,
    "account": "a",
    "id": "o1",
    "symbol": BTC,
    "orderType": "market",
    "side": "buy",
    "amount": "0.1",
    "params": {"stopLossPrice": 29000, "takeProfitPrice": 32000},
}
TICK_2 = {"type": "tick", "ts": 3000, "symbol": BTC, "mark": 29500, "bid": 29490, "ask": 29510}
TICK_3 = {"type": "tick", "ts": 4000, "symbol": BTC, "mark": 28900, "bid": 28890, "ask": 28910}
HAPPY = jsonl(CONFIG, TICK_1, BUY_SL_TP, TICK_2, TICK_3)


def test_happy_path_fill_stop_loss_and_final_wallet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A market buy of 0.1 BTC takes the ask (30010) and pays the taker fee; the attached
    stop-loss at 29000 fires when the mark reaches 28900 and closes at that mark (§9.2: the
    trigger-source price, no slippage configured); the take-profit is cancelled.

    By hand: fee 0.1*30010*0.0005 = 1.5005; realized 0.1*(28900-30010) = -111; closing fee
    0.1*28900*0.0005 = 1.445; wallet 10000 - 1.5005 - 111 - 1.445 = 9886.0545."""
    status, out, err = run(tmp_path, capsys, HAPPY)
    assert status == 0
    assert err == ""
    evs = events(out)
    kinds = [e["type"] for e in evs]
    assert kinds == [
        "order_accepted",  # o1
        "fill",  # o1 at the ask
        "order_accepted",  # o1-sl
        "order_accepted",  # o1-tp
        "stop_triggered",  # o1-sl at mark 28900
        "fill",  # the stop closes the position
        "order_cancelled",  # o1-tp: position closed
        "final",
    ]
    for e in evs[:-1]:
        assert e["account"] == "a"
    assert [e["ts"] for e in evs] == [2000, 2000, 2000, 2000, 4000, 4000, 4000, 4000]

    opened = evs[1]
    assert opened["id"] == "o1"
    assert opened["side"] == "buy"
    assert opened["price"] == "30010"
    assert Decimal(opened["amount"]) == Decimal("0.1")
    assert Decimal(opened["fee"]) == Decimal("1.5005")
    assert Decimal(opened["realizedPnl"]) == 0
    assert opened["reduceOnly"] is False
    assert opened["liquidity"] == "taker"

    sl, tp = evs[2], evs[3]
    assert (sl["kind"], Decimal(sl["triggerPrice"]), sl["side"]) == ("stop_loss", 29000, "sell")
    assert (tp["kind"], Decimal(tp["triggerPrice"]), tp["side"]) == ("take_profit", 32000, "sell")
    assert sl["reduceOnly"] is True and tp["reduceOnly"] is True

    stop = evs[4]
    assert stop["id"] == sl["id"]
    assert stop["kind"] == "stop_loss"
    assert Decimal(stop["triggerPrice"]) == 29000
    assert Decimal(stop["price"]) == 28900

    closed = evs[5]
    assert closed["id"] == sl["id"]
    assert closed["side"] == "sell"
    assert Decimal(closed["amount"]) == Decimal("0.1")
    assert Decimal(closed["price"]) == 28900
    assert Decimal(closed["fee"]) == Decimal("1.445")
    assert Decimal(closed["realizedPnl"]) == -111
    assert closed["reduceOnly"] is True

    assert evs[6]["id"] == tp["id"]

    final = evs[-1]
    assert final["ts"] == 4000
    account = final["accounts"]["a"]
    assert Decimal(account["wallet"]) == Decimal("9886.0545")
    assert Decimal(account["balance"]["USDT"]["total"]) == Decimal("9886.0545")
    assert Decimal(account["insuranceFund"]) == 0
    assert account["positions"] == []
    assert account["openOrders"] == []
    assert account["tradingState"] == "active"


def test_take_profit_on_a_short(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The mirror case: a short's take-profit sits below and is a buy. Sell 2 ETH at the bid
    1999, TP 1900, mark 1890: realized 2*(1999-1890) = 218, fees 2*1999*0.0005 = 1.999 and
    2*1890*0.0005 = 1.89, wallet 10000 + 218 - 1.999 - 1.89 = 10214.111."""
    text = jsonl(
        CONFIG,
        {"type": "tick", "ts": 1, "symbol": ETH, "mark": 2000, "bid": 1999, "ask": 2001},
        {"type": "order", "ts": 2, "account": "a", "id": "s", "symbol": ETH,
         "orderType": "market", "side": "sell", "amount": 2,
         "params": {"stopLossPrice": 2100, "takeProfitPrice": 1900}},
        {"type": "tick", "ts": 3, "symbol": ETH, "mark": 1890},
    )  # fmt: skip
    status, out, _ = run(tmp_path, capsys, text)
    assert status == 0
    evs = events(out)
    stop = next(e for e in evs if e["type"] == "stop_triggered")
    assert (stop["kind"], stop["side"], Decimal(stop["price"])) == ("take_profit", "buy", 1890)
    fills = [e for e in evs if e["type"] == "fill"]
    assert [(f["side"], Decimal(f["price"])) for f in fills] == [("sell", 1999), ("buy", 1890)]
    assert Decimal(fills[1]["realizedPnl"]) == 218
    assert Decimal(evs[-1]["accounts"]["a"]["wallet"]) == Decimal("10214.111")


def test_pretty_output_is_human_text_and_ends_with_the_final_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(tmp_path, capsys, HAPPY, "--pretty")
    assert status == 0
    assert err == ""
    lines = [line for line in out.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.startswith("final state"))
    event_lines, final_lines = lines[:start], lines[start:]
    assert len(event_lines) == 7  # one per event, as in the JSON run
    for line in event_lines:
        assert "{" not in line and "}" not in line, line
        assert '"' not in line, line
    for kind in ("order_accepted", "fill", "stop_triggered", "order_cancelled"):
        assert any(kind in line for line in event_lines), kind
    assert any("stop_loss" in line and "28,900" in line for line in event_lines)
    assert final_lines[0] == "final state"
    account_line = next(line for line in final_lines if "account a" in line)
    assert "9,886.0545" in account_line
    assert "{" not in "".join(final_lines)


def test_stdin_and_file_give_the_same_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    _, from_file, _ = run(tmp_path, capsys, HAPPY)
    monkeypatch.setattr(sys, "stdin", io.StringIO(HAPPY))
    assert main(["simulate", "-"]) == 0
    from_stdin, err = capsys.readouterr()
    assert err == ""
    assert from_stdin == from_file
    monkeypatch.setattr(sys, "stdin", io.StringIO(HAPPY))
    assert main(["simulate"]) == 0  # FILE defaults to -
    assert capsys.readouterr().out == from_file


def test_console_entry_over_stdin_in_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "guardbot", "simulate", "-"],
        input=HAPPY,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 8
    final = json.loads(lines[-1])
    assert final["type"] == "final"
    assert Decimal(final["accounts"]["a"]["wallet"]) == Decimal("9886.0545")


# ------------------------------------------------------------------------------ empty and blank


@pytest.mark.parametrize("text", ["", "\n  \n\n"])
def test_empty_input_says_it_is_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    # Issue 11: an empty input printed a lone final line, as if a run had happened.
    status, out, err = run(tmp_path, capsys, text)
    assert status == 2
    assert out == ""
    assert err == "guardbot simulate: input: is empty (expected JSON Lines, docs/contracts.md §2)\n"


def test_blank_lines_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, plain, _ = run(tmp_path, capsys, HAPPY)
    spaced = "\n" + "\n   \n".join(HAPPY.splitlines()) + "\n\t\n\n"
    status, out, err = run(tmp_path, capsys, spaced)
    assert status == 0
    assert err == ""
    assert out == plain


def test_blank_lines_still_count_in_error_line_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = jsonl(CONFIG, "", "   ", {"type": "tick", "ts": 1, "symbol": BTC, "mark": "NaN"})
    status, _, err = run(tmp_path, capsys, text)
    assert status == 2
    assert err.startswith("guardbot simulate: line 4.mark:"), err


# ------------------------------------------------------------------------------ bad input

TICK = {"type": "tick", "ts": 1000, "symbol": BTC, "mark": 30000}
ORDER = {"type": "order", "ts": 2000, "account": "a", "id": "o1", "symbol": BTC,
         "orderType": "market", "side": "buy", "amount": 1}  # fmt: skip


def order(**changes: object) -> str:
    obj = {**ORDER, **changes}
    return json.dumps(obj)


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


# tier 2 overlaps tier 1 (a step between tiers would be valid: OKX publishes them so)
BAD_TIERS = [
    {"minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004, "maxLeverage": 125},
    {"minNotional": 40000, "maxNotional": 250000, "maintenanceMarginRate": 0.005,
     "maxLeverage": 100},
]  # fmt: skip

#: (id, input lines, the field path the one stderr line must name, a word of the message)
BAD_CASES: list[tuple[str, list[object], str, str]] = [
    (
        "nan-mark",
        [CONFIG, '{"type": "tick", "ts": 1000, "symbol": "BTC/USDT:USDT", "mark": NaN}'],
        "line 2.mark",
        "finite",
    ),
    ("infinity-amount", [CONFIG, TICK, order().replace('"amount": 1', '"amount": Infinity')],
     "line 3.amount", "finite"),
    ("negative-amount", [CONFIG, TICK, order(amount=-1)], "line 3.amount", "> 0"),
    ("zero-amount", [CONFIG, TICK, order(amount="0")], "line 3.amount", "> 0"),
    ("unknown-type", [CONFIG, TICK, {"type": "teleport", "ts": 2000}], "line 3.type", "unknown"),
    (
        "leverage-0",
        [CONFIG, TICK, {"type": "set_leverage", "ts": 2000, "account": "a", "symbol": BTC,
                        "leverage": 0}],
        "line 3.leverage",
        "must be >= 1, got 0",
    ),
    # Issue 11: 0 said "> 0" and 0.5 said ">= 1"; both now say the rule that holds.
    (
        "leverage-half",
        [CONFIG, TICK, {"type": "set_leverage", "ts": 2000, "account": "a", "symbol": BTC,
                        "leverage": 0.5}],
        "line 3.leverage",
        "must be >= 1, got 0.5",
    ),
    ("bad-json-line-3", [CONFIG, TICK, '{"type": "tick", "ts":', TICK], "line 3", "JSON"),
    ("missing-symbol", [CONFIG, TICK, without(ORDER, "symbol")], "line 3.symbol", "required"),
    ("missing-ts-on-tick", [CONFIG, without(TICK, "ts")], "line 2.ts", "required"),
    ("ts-back-in-time", [CONFIG, TICK, {**TICK, "ts": 999}], "line 3.ts", "back"),
    ("config-not-first", [TICK, CONFIG], "line 2.type", "config"),
    ("unknown-profile", [{**CONFIG, "profile": "ftx"}], "line 1.profile", "ftx"),
    (
        "tiers-overlapping",
        [{**CONFIG, "tiers": {BTC: BAD_TIERS}}],
        'line 1.tiers["BTC/USDT:USDT"][1].minNotional',
        "50000",
    ),
    ("amount-true", [CONFIG, TICK, order(amount=True)], "line 3.amount", "true"),
    ("line-is-a-list", [CONFIG, TICK, [ORDER]], "line 3", "object"),
    ("line-is-a-string", [CONFIG, '"tick"'], "line 2", "object"),
    ("amount-string-nan", [CONFIG, TICK, order(amount="NaN")], "line 3.amount", "finite"),
    ("side-unknown", [CONFIG, TICK, order(side="long")], "line 3.side", "long"),
    ("limit-without-price", [CONFIG, TICK, order(orderType="limit")], "line 3.price", "required"),
    ("ts-not-integer", [CONFIG, {**TICK, "ts": "1000"}], "line 2.ts", "milliseconds"),
    ("negative-wallet", [{**CONFIG, "accounts": {"a": {"wallet": -1}}}],
     "line 1.accounts.a.wallet", ">= 0"),
    ("unknown-account", [CONFIG, TICK, order(account="zz")], "line 3.account", "zz"),
    (
        "reduce-only-not-bool",
        [CONFIG, TICK, order(params={"reduceOnly": "yes"})],
        "line 3.params.reduceOnly",
        "true or false",
    ),
    # Issue 11: unknown keys were ignored (an order without its stop, a new position instead of
    # a reduction). Each is refused naming the key, its path and the closest known key.
    ("stop-loss-typo", [CONFIG, TICK, order(params={"stopLosPrice": 29000})],
     "line 3.params.stopLosPrice", "did you mean 'stopLossPrice'?"),
    ("reduce-only-case", [CONFIG, TICK, order(params={"reduceonly": True})],
     "line 3.params.reduceonly", "did you mean 'reduceOnly'?"),
    ("working-type-not-pass-through", [CONFIG, TICK, order(params={"workingType": "MARK_PRICE"})],
     "line 3.params.workingType", "unknown key"),
    ("order-key-typo", [CONFIG, TICK, {**ORDER, "ammount": 1}], "line 3.ammount",
     "did you mean 'amount'?"),
    ("tick-key-typo", [CONFIG, {**TICK, "bidd": 1}], "line 2.bidd", "did you mean 'bid'?"),
    ("cancel-key", [CONFIG, TICK, {"type": "cancel", "ts": 2000, "account": "a", "id": "o1",
                                   "symbol": BTC}],
     "line 3.symbol", "known: account, id, ts, type"),
    ("config-key-typo", [{**CONFIG, "tier": {}}], "line 1.tier", "did you mean 'tiers'?"),
    ("config-guard-typo", [{**CONFIG, "guards": {"max_leverag": 5}}], "line 1.guards.max_leverag",
     "did you mean 'max_leverage'?"),
    # The config line's accounts/guards/alerts are read by the TOML sections' reader: the same
    # keys, defaults, rules and messages (one definition per key).
    ("config-account-mode", [{**CONFIG, "accounts": {"a": {"default_margin_mode": "portfolio"}}}],
     "line 1.accounts.a.default_margin_mode", "must be one of cross, isolated"),
    ("config-account-leverage", [{**CONFIG, "accounts": {"a": {"default_leverage": "0.5"}}}],
     "line 1.accounts.a.default_leverage", "must be >= 1, got 0.5"),
    ("config-guard-cap", [{**CONFIG, "guards": {"max_leverage_per_symbol": {BTC: 0}}}],
     f'line 1.guards.max_leverage_per_symbol["{BTC}"]', "must be >= 1, got 0"),
    ("config-guard-oversize", [{**CONFIG, "guards": {"reduce_only_oversize": "clip"}}],
     "line 1.guards.reduce_only_oversize", "must be one of trim, reject, got 'clip'"),
    ("config-alert-order", [{**CONFIG, "alerts": {"margin_ratio_levels": [0.7, 0.5]}}],
     "line 1.alerts.margin_ratio_levels", "strictly increasing"),
    ("config-alert-list", [{**CONFIG, "alerts": {"margin_ratio_levels": 0.5}}],
     "line 1.alerts.margin_ratio_levels", "must be a list of ratios"),
    ("profile-option-typo", [{**CONFIG, "profile_options": {"reduce_only_exces": "trim"}}],
     "line 1.profile_options.reduce_only_exces", "did you mean 'reduce_only_excess'?"),
    ("config-tier-row-key", [{**CONFIG, "tiers": {BTC: [{**BAD_TIERS[0], "mmr": 1}]}}],
     'line 1.tiers["BTC/USDT:USDT"][0].mmr', "unknown key"),
]  # fmt: skip


def test_config_line_nulls_mean_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, plain, _ = run(tmp_path, capsys, jsonl(CONFIG, TICK, order()))
    nulls = {**CONFIG, "guards": {"max_leverage": None}, "alerts": {"hysteresis": None}}
    status, out, err = run(tmp_path, capsys, jsonl(nulls, TICK, order()))
    assert (status, err) == (0, "")
    assert out == plain


def test_listed_ccxt_pass_through_params_are_accepted_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, plain, _ = run(tmp_path, capsys, jsonl(CONFIG, TICK, order()))
    passing = {"newOrderRespType": "RESULT", "selfTradePreventionMode": "NONE"}
    status, out, err = run(tmp_path, capsys, jsonl(CONFIG, TICK, order(params=passing)))
    assert (status, err) == (0, "")
    assert out == plain


def assert_one_line_error(status: int, err: str, field: str, word: str) -> str:
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert err.endswith("\n")
    line = lines[0]
    assert line.startswith(f"guardbot simulate: {field}:"), line
    assert word in line.split(f"{field}:", 1)[1], line
    return line


@pytest.mark.parametrize(
    ("lines", "field", "word"),
    [pytest.param(lines, field, word, id=name) for name, lines, field, word in BAD_CASES],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lines: list[object],
    field: str,
    word: str,
) -> None:
    status, out, err = run(tmp_path, capsys, jsonl(*lines))
    assert_one_line_error(status, err, field, word)
    assert "Traceback" not in out
    for line in out.splitlines():  # what was written before the bad line is complete JSON
        assert json.loads(line)["type"] != "final"


def test_events_before_a_bad_line_are_still_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """simulate streams: the events of lines 2-3 are on stdout when line 4 is refused; line 5
    is never run and no final line is written."""
    text = jsonl(
        CONFIG,
        {"type": "deposit", "ts": 1, "account": "a", "amount": 5},
        {"type": "withdraw", "ts": 2, "account": "a", "amount": 3},
        {"type": "tick", "ts": 3, "symbol": BTC, "mark": -1},
        {"type": "deposit", "ts": 4, "account": "a", "amount": 7},
    )
    status, out, err = run(tmp_path, capsys, text)
    assert_one_line_error(status, err, "line 4.mark", "> 0")
    evs = events(out)
    assert [(e["type"], e["ts"], e["amount"], e["wallet"]) for e in evs] == [
        ("balance_changed", 1, "5", "10005"),
        ("balance_changed", 2, "-3", "10002"),
    ]


def test_pretty_run_also_keeps_the_output_before_a_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = jsonl(CONFIG, {"type": "deposit", "ts": 1, "account": "a", "amount": 5}, "[1]")
    status, out, err = run(tmp_path, capsys, text, "--pretty")
    assert_one_line_error(status, err, "line 3", "object")
    assert len(out.splitlines()) == 1
    assert "balance_changed" in out and "10,005" in out


def test_missing_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["simulate", str(tmp_path / "nope.jsonl")])
    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and "nope.jsonl" in err and "Traceback" not in err


def test_non_utf8_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "binary.jsonl"
    path.write_bytes(b'{"type": "deposit", "ts": 1, "amount": 1}\n\xff\xfe\n')
    status = main(["simulate", str(path)])
    _, err = capsys.readouterr()
    assert status == 2
    assert len(err.splitlines()) == 1 and "UTF-8" in err and "Traceback" not in err


def test_bad_json_error_points_into_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'{"type": "tick", "ts":' is 22 characters long, so the value is missing at column 23;
    the error must point there, not at a position in the text after the line's newline."""
    status, _, err = run(tmp_path, capsys, jsonl(CONFIG, TICK, '{"type": "tick", "ts":'))
    line = assert_one_line_error(status, err, "line 3", "JSON")
    assert "column 23" in line, line


def test_huge_amount_is_refused_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A finite but absurd amount ("1e999999999" is a valid decimal string) must be refused as
    bad input or rejected as an order, never crash: the engine's arithmetic context traps
    Overflow and the decimal.Overflow escapes as a traceback with exit status 1."""
    status, out, err = run(tmp_path, capsys, jsonl(CONFIG, TICK, order(amount="1e999999999")))
    assert "Traceback" not in err
    if status == 2:
        assert_one_line_error(status, err, "line 3.amount", "")
    else:
        assert status == 0, err
        rejected = [e for e in events(out) if e["type"] == "order_rejected"]
        assert rejected and rejected[0]["id"] == "o1"


@pytest.mark.parametrize("ts", [253402300800000, 99999999999999999])
def test_pretty_with_a_far_future_ts_does_not_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ts: int
) -> None:
    """The JSON run accepts ts 253402300800000 (year 10000) and beyond; --pretty formats ts as
    a UTC date and datetime raises ValueError ("year 10000 is out of range"), which escapes as
    a traceback with exit status 1. Either the ts is refused as bad input (exit 2, one line
    naming ts) or it is shown."""
    text = jsonl(CONFIG, {"type": "deposit", "ts": ts, "account": "a", "amount": 1})
    status, _, _ = run(tmp_path, capsys, text)
    status_pretty, out, err = run(tmp_path, capsys, text, "--pretty")
    assert "Traceback" not in err
    if status_pretty == 2:
        assert_one_line_error(status_pretty, err, "line 2.ts", "")
    else:
        assert status_pretty == 0, err
        assert status == 0
        assert "balance_changed" in out


README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_error_example_is_what_the_program_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 11: the README showed "line 3: amount:", the program prints "line 3.amount:".
    _, _, err = run(tmp_path, capsys, jsonl(CONFIG, TICK, order(amount=-1)))
    assert err == "guardbot simulate: line 3.amount: must be > 0, got -1\n"
    assert f"`{err.strip()}`" in README.read_text(encoding="utf-8")


def test_readme_report_path_is_where_the_report_goes() -> None:
    from guardbot.report import REPORT_FILE

    # `guardbot report RUN_DIR` writes RUN_DIR/report/report.html (the README said RUN_DIR/...).
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert f"# runs/overleveraged/report/{REPORT_FILE}" in text


def test_upper_case_order_type_and_side_are_accepted_as_ccxt_venues_accept_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, plain, _ = run(tmp_path, capsys, jsonl(CONFIG, TICK, order()))
    shouted = order(orderType="MARKET", side="BUY")
    status, out, err = run(tmp_path, capsys, jsonl(CONFIG, TICK, shouted))
    assert (status, err) == (0, "")
    assert out == plain  # reported in ccxt's unified lower case
    status, _, err = run(tmp_path, capsys, jsonl(CONFIG, TICK, order(orderType="STOP")))
    assert status == 2 and "orderType" in err
