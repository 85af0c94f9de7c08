"""Historical Binance tier tables shared by the tests (copied from the project's design notes).

They are fixtures, not today's tiers: (cap in USDT, maintenance margin rate, max leverage),
contiguous from 0.
"""

from __future__ import annotations

BTC_TIERS = [
    (50_000, "0.004", 125),
    (250_000, "0.005", 100),
    (1_000_000, "0.01", 50),
    (10_000_000, "0.025", 20),
    (20_000_000, "0.05", 10),
    (50_000_000, "0.1", 5),
    (100_000_000, "0.125", 4),
    (200_000_000, "0.15", 3),
    (300_000_000, "0.25", 2),
    (500_000_000, "0.5", 1),
]
ETH_TIERS = [
    (10_000, "0.005", 100),
    (100_000, "0.0065", 75),
    (500_000, "0.01", 50),
    (1_000_000, "0.02", 25),
    (2_000_000, "0.05", 10),
    (5_000_000, "0.1", 5),
    (10_000_000, "0.125", 4),
    (20_000_000, "0.15", 3),
    (50_000_000, "0.25", 2),
]


def ccxt_rows(spec: list[tuple[int, str, int]]) -> list[dict[str, object]]:
    """ccxt unified leverage-tier rows (without maintenanceAmount: the engine derives it)."""
    rows: list[dict[str, object]] = []
    floor = 0
    for i, (cap, mmr, lev) in enumerate(spec, start=1):
        rows.append(
            {
                "tier": i,
                "minNotional": floor,
                "maxNotional": cap,
                "maintenanceMarginRate": mmr,
                "maxLeverage": lev,
            }
        )
        floor = cap
    return rows
