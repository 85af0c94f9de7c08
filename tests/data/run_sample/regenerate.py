"""Regenerate this fixture run directory (events.jsonl, samples.jsonl, summary.json).

The run is the bundled demo story at a readable pace (one tick a minute): alice (cross, 1,500
USDT) buys 0.5 BTC with a stop-loss, bob (isolated, 1,000 USDT) shorts 4 ETH; bob's leverage
change is refused, alice pays funding, both cross the 0.5/0.7/0.8 alert levels, bob's isolated
short is liquidated and alice's stop-loss closes her long just before her liquidation price.

The engine itself produces the events and the samples, so the fixture is what ``guardbot
replay`` would write for this story (samples after every tick, in the RUN_DIR format). Run from
the repository root: ``.venv/bin/python tests/data/run_sample/regenerate.py``.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from guardbot.replay_cli import sample  # the line format guardbot replay writes
from guardbot.simulate import build_config

from guardbot.core.commands import TickCmd, parse_command
from guardbot.core.engine import Engine
from guardbot.core.events import to_jsonable
from guardbot.core.num import fmt

HERE = Path(__file__).resolve().parent
T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z
MINUTE = 60_000
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"

CONFIG: dict[str, Any] = {
    "type": "config",
    "profile": "binance",
    "fees": {"maker": "0.0002", "taker": "0.0005"},
    "accounts": {
        "alice": {"wallet": 1500, "default_margin_mode": "cross", "default_leverage": 25},
        "bob": {"wallet": 1000, "default_margin_mode": "isolated", "default_leverage": 25},
    },
    "guards": {"max_leverage": 50},
    "alerts": {"margin_ratio_levels": [0.5, 0.7, 0.8], "hysteresis": 0.05},
}

# (minute, BTC mark, ETH mark) waypoints; marks are interpolated linearly in between.
WAYPOINTS = [
    (0, 60000, 3000),
    (10, 59500, 3010),
    (20, 59000, 3050),
    (30, 58000, 3080),
    (38, 57450, 3096),
    (42, 57350, 3103),
    (46, 57310, 3105),
    (50, 57305, 3112),
    (52, 57300, 3090),
    (60, 57800, 3060),
]

COMMANDS: dict[int, list[dict[str, Any]]] = {
    2: [
        {
            "type": "order",
            "account": "alice",
            "id": "a-long",
            "symbol": BTC,
            "orderType": "market",
            "side": "buy",
            "amount": "0.5",
            "params": {"stopLossPrice": 57300, "takeProfitPrice": 63000},
        },
        {
            "type": "order",
            "account": "bob",
            "id": "b-short",
            "symbol": ETH,
            "orderType": "market",
            "side": "sell",
            "amount": 4,
        },
        {
            "type": "order",
            "account": "bob",
            "id": "b-tp",
            "symbol": ETH,
            "orderType": "limit",
            "side": "buy",
            "amount": 4,
            "price": 2900,
            "params": {"reduceOnly": True},
        },
        {"type": "set_leverage", "account": "bob", "symbol": ETH, "leverage": 100},
    ],
    16: [{"type": "funding", "symbol": BTC, "rate": "0.0001"}],
}


def marks(minute: int) -> tuple[Decimal, Decimal]:
    for (m0, b0, e0), (m1, b1, e1) in itertools.pairwise(WAYPOINTS):
        if m0 <= minute <= m1:
            f = Decimal(minute - m0) / Decimal(m1 - m0)
            return (Decimal(b0) + (b1 - b0) * f).quantize(Decimal("0.1")), (
                Decimal(e0) + (e1 - e0) * f
            ).quantize(Decimal("0.01"))
    raise AssertionError(minute)


def main() -> None:
    engine = Engine(build_config(CONFIG))
    events: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    equity_peak: dict[str, Decimal] = {}
    drawdown: dict[str, Decimal] = {}
    for minute in range(WAYPOINTS[-1][0] + 1):
        btc, eth = marks(minute)
        for k, (symbol, mark) in enumerate(((BTC, btc), (ETH, eth))):
            ts = T0 + minute * MINUTE + k * 500
            spread = mark / 100000
            tick = {
                "type": "tick",
                "symbol": symbol,
                "mark": mark,
                "last": mark,
                "bid": mark - spread,
                "ask": mark + spread,
            }
            command = parse_command(tick)
            assert isinstance(command, TickCmd)
            events += engine.apply(ts, command)
            samples.append(sample(engine, ts))
            for name, acc in samples[-1]["accounts"].items():
                equity = Decimal(acc["equity"])
                equity_peak[name] = max(equity_peak.get(name, equity), equity)
                drawdown[name] = max(drawdown.get(name, Decimal(0)), equity_peak[name] - equity)
        for obj in COMMANDS.get(minute, []):
            events += engine.apply(T0 + minute * MINUTE + 30_000, parse_command(obj))
    with (HERE / "events.jsonl").open("w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(to_jsonable(event), separators=(",", ":")) + "\n")
    with (HERE / "samples.jsonl").open("w", encoding="utf-8") as out:
        for s in samples:
            out.write(json.dumps(s, separators=(",", ":")) + "\n")
    refused = Counter(str(e["code"]) for e in events if e["type"] == "order_rejected")
    accounts = {}
    for account in engine.iter_accounts():
        ledger = account.ledger
        accounts[account.id] = {
            "startWallet": fmt(ledger.initial),
            "wallet": samples[-1]["accounts"][account.id]["wallet"],
            "equity": samples[-1]["accounts"][account.id]["equity"],
            "realizedPnl": fmt(ledger.realized_pnl),
            "fees": fmt(ledger.fees),
            "funding": fmt(ledger.funding),
            "maxDrawdown": fmt(drawdown[account.id]),
        }
    summary = {
        "ticks": len(samples),
        "symbols": [BTC, ETH],
        "startTs": samples[0]["ts"],
        "endTs": samples[-1]["ts"],
        "strategy": "examples/strategies/demo.py:Demo",
        "accounts": accounts,
        "alerts": sum(e["type"] == "margin_alert" for e in events),
        "liquidations": sum(e["type"] == "liquidation" for e in events),
        "refusedOrders": dict(sorted(refused.items())),
        "strategyErrors": 0,
        "trades": sum(e["type"] == "fill" for e in events),
        "alertLevels": ["0.5", "0.7", "0.8"],
    }
    (HERE / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"{len(events)} events, {len(samples)} samples: {dict(Counter(e['type'] for e in events))}"
    )


if __name__ == "__main__":
    main()
