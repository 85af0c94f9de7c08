"""Write ``btc_eth_crash.jsonl``, the replay file of the strategy examples (deterministic).

BTC/USDT:USDT and ETH/USDT:USDT, one tick per symbol per second for 20 minutes
(2,400 lines): a quiet start, an ETH breakout (momentum.py enters), a choppy middle, then a
BTC sell-off of about 12 % in which overleveraged.py's averaging down is refused, margin-called
and liquidated. A seeded random walk on top of fixed drift phases; run it again and the bytes
are the same::

    python examples/ticks/generate.py [OUT]
"""

from __future__ import annotations

import json
import random
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

START_TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SECONDS = 1200

# (until second, drift per second in percent) for each symbol
PHASES = {
    "BTC/USDT:USDT": [(300, 0.0), (600, -0.004), (800, 0.002), (SECONDS, -0.03)],
    "ETH/USDT:USDT": [(240, 0.0), (420, 0.05), (700, 0.0), (SECONDS, -0.02)],
}
START = {"BTC/USDT:USDT": Decimal(60000), "ETH/USDT:USDT": Decimal(3000)}
TICK = {"BTC/USDT:USDT": Decimal("0.1"), "ETH/USDT:USDT": Decimal("0.01")}
NOISE = 0.03  # standard deviation of the per-second move, in percent


def _drift(symbol: str, second: int) -> float:
    for until, drift in PHASES[symbol]:
        if second < until:
            return drift
    return 0.0


def lines() -> list[str]:
    rng = random.Random(20260101)
    price = {s: float(p) for s, p in START.items()}
    out = []
    for second in range(SECONDS):
        for offset, symbol in enumerate(sorted(START)):
            move = _drift(symbol, second) + rng.gauss(0.0, NOISE)
            price[symbol] *= 1 + move / 100
            tick = TICK[symbol]
            mark = Decimal(repr(price[symbol])).quantize(tick, rounding=ROUND_HALF_EVEN)
            last = mark + tick * rng.choice((-1, 0, 1))
            row = {
                "ts": START_TS + second * 1000 + offset * 500,
                "symbol": symbol,
                "mark": str(mark),
                "last": str(last),
                "bid": str(last - tick),
                "ask": str(last + tick),
            }
            out.append(json.dumps(row, separators=(",", ":")))
    return out


def main() -> None:
    target = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("btc_eth_crash.jsonl")
    )
    target.write_text("\n".join(lines()) + "\n", encoding="utf-8", newline="\n")


if __name__ == "__main__":
    main()
