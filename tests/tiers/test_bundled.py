"""The bundled tier snapshots (issue 12 ask 3): keyed by exchange, dated, sourced, valid tables,
the venue's largest USDT perpetuals, and the daemon's last resort when nothing else answers.

``COVERAGE`` is what each file claims; a venue below ten says so in its file's ``notes`` (what
is missing and where we looked) and in the README's venue table.
"""

from __future__ import annotations

import datetime
import itertools
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from guardbot.config import load_config
from guardbot.core.profiles import PROFILES
from guardbot.daemon.tier_tables import TierTables
from guardbot.errors import InputError
from guardbot.store.journal import Journal
from guardbot.tiers.source import load_bundled, parse_bundled, snapshot_venue

NOW = 1_800_000_000_000

#: venue -> (ccxt exchange id, symbols the bundled file must hold)
COVERAGE: dict[str, tuple[str, tuple[str, ...]]] = {
    "binance": (
        "binanceusdm",
        tuple(
            f"{b}/USDT:USDT"
            for b in [
                "BTC",
                "ETH",
                "SOL",
                "XRP",
                "DOGE",
                "BNB",
                "ADA",
                "LINK",
                "AVAX",
                "SUI",
                "LTC",
                "TRX",
            ]
        ),
    ),
    "bybit": ("bybit", ("BTC/USDT:USDT", "LTC/USDT:USDT")),
    "okx": (
        "okx",
        (
            "BTC/USDT:USDT",
            "ETH/USDT:USDT",
            "DOGE/USDT:USDT",
            "ADA/USDT:USDT",
            "XRP/USDT:USDT",
            "LTC/USDT:USDT",
            "TRX/USDT:USDT",
        ),
    ),
    "bitget": ("bitget", ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")),
    "gate": ("gate", ("BTC/USDT:USDT",)),
    "mexc": ("mexc", ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")),
}
#: venues whose file claims the ten largest USDT perpetuals
TEN_LARGEST = {"binance"}

DATA = resources.files("guardbot") / "data" / "tiers"
FILES = sorted(p.name.removesuffix(".json") for p in DATA.iterdir() if p.name.endswith(".json"))


def test_every_bundled_file_is_listed_here() -> None:
    assert set(FILES) == set(COVERAGE)
    assert all(venue in PROFILES for venue in FILES)


def _raw(venue: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{venue}.json").read_text("utf-8"))
    return data


def _date(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


@pytest.mark.parametrize("venue", FILES)
def test_bundled_file_parses_is_dated_and_names_its_source(venue: str) -> None:
    tiers = load_bundled(venue)
    exchange_id, symbols = COVERAGE[venue]
    assert tiers.profile == venue
    assert tiers.exchange == exchange_id and snapshot_venue(exchange_id) == venue
    assert load_bundled(exchange_id) is tiers  # keyed by the exchange id as well
    assert _date(tiers.as_of) <= datetime.date(2026, 12, 7)
    assert len(tiers.source) > 40 and tiers.notes
    for symbol in tiers.tables:
        assert _date(tiers.as_of_for(symbol))
        source = tiers.source_for(symbol)
        assert "http" in source or "github.com" in source, symbol
    assert set(symbols) <= set(tiers.tables)
    if venue in TEN_LARGEST:
        assert len(tiers.tables) >= 10
    else:  # a venue short of ten says what is missing
        assert "only" in tiers.notes and "found" in tiers.notes


@pytest.mark.parametrize("venue", FILES)
def test_bundled_tables_pass_the_tier_validation(venue: str) -> None:
    """No overlaps, increasing bounds, positive rates below 1, leverage >= 1 (the table
    constructor refuses the rest; checked again here on the raw rows)."""
    tiers = load_bundled(venue)
    raw = _raw(venue)
    for symbol, table in tiers.tables.items():
        rows = raw["tiers"][symbol]
        assert len(rows) == len(table.tiers) >= 1
        prev_cap = Decimal(0)
        for tier in table.tiers:
            assert tier.floor >= prev_cap, (symbol, tier)  # no overlap; gaps allowed (OKX)
            assert tier.cap > tier.floor
            assert Decimal(0) < tier.mmr < 1 and tier.max_leverage >= 1
            prev_cap = tier.cap
        mmrs = [t.mmr for t in table.tiers]
        assert mmrs == sorted(mmrs), symbol  # a larger position never needs a lower rate
        levs = [t.max_leverage for t in table.tiers]
        assert levs == sorted(levs, reverse=True), symbol
        if PROFILES[venue].tier_basis == "contracts":
            assert tiers.contract_sizes[symbol] > 0  # bounds in contracts mean nothing without
        assert tiers.contract_size(symbol) > 0


@pytest.mark.parametrize("venue", ["binance", "bybit"])
def test_published_deductions_are_continuous(venue: str) -> None:
    """Binance's cum and Bybit's mmDeduction: MM is continuous at every cap, i.e.
    ded_k = ded_{k-1} + cap_{k-1} x (mmr_k - mmr_{k-1}) holds for the recorded values."""
    for symbol, table in load_bundled(venue).tables.items():
        for prev, tier in zip(table.tiers, table.tiers[1:], strict=False):
            assert tier.cum == prev.cum + prev.cap * (tier.mmr - prev.mmr), (symbol, tier.number)


def _doc(**changes: object) -> dict[str, Any]:
    doc = _raw("bitget")
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (_doc(asOf="2025-13-01"), "asOf: must be a date"),
        (_doc(asOf="Sep 2025"), "asOf: must be a date"),
        (_doc(exchange="binanceusdm"), "exchange: 'binanceusdm' is not a 'bitget' venue"),
        (_doc(sources="x"), "sources: unknown key"),
        (_doc(symbols={"DOGE/USDT:USDT": {"asOf": "2025-01-01"}}), "has no table"),
        (_doc(symbols={"BTC/USDT:USDT": {"asof": "2025-01-01"}}), ".asof: unknown key"),
        (_doc(symbols={"BTC/USDT:USDT": {"asOf": "2025-1-1"}}), "asOf: must be a date"),
    ],
)
def test_bad_snapshot_metadata_is_refused(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_bundled("bitget", doc)
    assert fragment in str(caught.value)


def test_a_table_with_its_own_date_and_source() -> None:
    bitget = load_bundled("bitget")
    assert bitget.as_of_for("SOL/USDT:USDT") == "2025-09-12"
    assert "12560603837608" in bitget.source_for("SOL/USDT:USDT")
    assert bitget.as_of_for("BTC/USDT:USDT") == "2025-06-25"
    assert bitget.source_for("BTC/USDT:USDT") == bitget.source


def test_okx_eth_is_the_recorded_position_tier_table() -> None:
    """OKX ETH-USDT-SWAP, 99 tiers in contracts of 0.1 ETH (freqtrade's 2026-05-28 cache of
    position-tiers): tier 1 up to 5,000 contracts at 0.4 % and 100x, then 25,000-contract steps;
    the last up to 2,425,000 contracts at 48.75 % and 2x."""
    okx = load_bundled("okx")
    eth = okx.tables["ETH/USDT:USDT"].tiers
    assert okx.contract_size("ETH/USDT:USDT") == Decimal("0.1")
    assert okx.as_of_for("ETH/USDT:USDT") == "2026-05-28"
    assert "346d4b70dd15035b77c23d782edfdb3690f542ad" in okx.source_for("ETH/USDT:USDT")
    assert len(eth) == 99
    assert (eth[0].cap, eth[0].mmr, eth[0].max_leverage) == (5000, Decimal("0.004"), 100)
    assert (eth[1].cap, eth[1].mmr, eth[1].max_leverage) == (
        10000,
        Decimal("0.005"),
        Decimal("66.66"),
    )
    assert (eth[-1].cap, eth[-1].mmr, eth[-1].max_leverage) == (2425000, Decimal("0.4875"), 2)
    assert all(b.cap - a.cap == 25000 for a, b in itertools.pairwise(eth[2:]))
    assert okx.as_of_for("BTC/USDT:USDT") == "2026-09-18"
    doge = okx.tables["DOGE/USDT:USDT"].tiers
    assert okx.contract_size("DOGE/USDT:USDT") == 1000 and len(doge) == 93
    assert (doge[0].cap, doge[0].mmr, doge[0].max_leverage) == (1500, Decimal("0.0065"), 50)
    assert (doge[-1].cap, doge[-1].mmr, doge[-1].max_leverage) == (546000, Decimal("0.465"), 2)
    ada = okx.tables["ADA/USDT:USDT"].tiers
    assert okx.contract_size("ADA/USDT:USDT") == 100 and len(ada) == 93
    assert (ada[0].cap, ada[0].mmr, ada[0].max_leverage) == (2200, Decimal("0.01"), 50)
    assert (ada[-1].cap, ada[-1].mmr, ada[-1].max_leverage) == (910000, Decimal("0.48"), 2)
    xrp = okx.tables["XRP/USDT:USDT"].tiers
    assert okx.contract_size("XRP/USDT:USDT") == 100 and len(xrp) == 93
    assert (xrp[0].cap, xrp[0].mmr, xrp[0].max_leverage) == (2500, Decimal("0.0065"), 50)
    # tier 93 (up to 910,000 contracts) was missing until the table was compared row by row
    assert (xrp[-1].cap, xrp[-1].mmr, xrp[-1].max_leverage) == (910000, Decimal("0.465"), 2)
    ltc = okx.tables["LTC/USDT:USDT"].tiers
    assert okx.contract_size("LTC/USDT:USDT") == 1 and len(ltc) == 93
    assert (ltc[0].cap, ltc[0].mmr, ltc[0].max_leverage) == (500, Decimal("0.0065"), 50)
    assert (ltc[-1].cap, ltc[-1].mmr, ltc[-1].max_leverage) == (546000, Decimal("0.465"), 2)
    trx = okx.tables["TRX/USDT:USDT"].tiers
    assert okx.contract_size("TRX/USDT:USDT") == 1000 and len(trx) == 93
    assert (trx[0].cap, trx[0].mmr, trx[0].max_leverage) == (150, Decimal("0.0065"), 50)
    assert (trx[-1].cap, trx[-1].mmr, trx[-1].max_leverage) == (54600, Decimal("0.465"), 2)
    for symbol in (
        "ETH/USDT:USDT",
        "DOGE/USDT:USDT",
        "ADA/USDT:USDT",
        "XRP/USDT:USDT",
        "LTC/USDT:USDT",
        "TRX/USDT:USDT",
    ):
        assert "Every row was compared with the source" in okx.source_for(symbol), symbol
        # beyond the venue's last tier no leverage is allowed: such an order is refused
        table = okx.tables[symbol]
        assert table.max_leverage_for(table.max_value) >= 2
        assert table.max_leverage_for(table.max_value + 1) == 0


def test_gate_contract_sizes_are_the_recorded_quanto_multipliers() -> None:
    """Gate amounts are contracts of quanto_multiplier base units (ccxt's recorded gate markets,
    2026-06-01): bundled so an offline first start does not read a BTC_USDT contract as 1 BTC."""
    gate = load_bundled("gate")
    assert {s.split("/")[0]: gate.contract_size(s) for s in gate.contract_sizes} == {
        "BTC": Decimal("0.0001"),
        "ETH": Decimal("0.01"),
        "XRP": Decimal(10),
        "DOGE": Decimal(10),
        "ADA": Decimal(10),
        "LTC": Decimal("0.1"),
        "TRX": Decimal(100),
    }
    assert "200815e53da3081c16590525d8ec9c9783874bab" in gate.notes


def test_mexc_levels_are_the_recorded_custom_risk_limits() -> None:
    """MEXC's BTC_USDT riskLimitCustom as recorded on 2025-12-31 (gocryptotrader PR 1897): the
    first five levels in contracts of 0.0001 BTC, level 1 up to 50,000 contracts at 500x and
    0.1 %."""
    mexc = load_bundled("mexc")
    assert mexc.as_of == "2025-12-31" and "dbe544a516801ac478d9aca6e2319c3d7257c36b" in mexc.source
    btc = mexc.tables["BTC/USDT:USDT"].tiers
    assert [(t.cap, t.mmr, t.max_leverage) for t in btc] == [
        (Decimal(50000), Decimal("0.001"), Decimal(500)),
        (Decimal(120000), Decimal("0.004"), Decimal(200)),
        (Decimal(250000), Decimal("0.005"), Decimal(100)),
        (Decimal(2000000), Decimal("0.01"), Decimal(50)),
        (Decimal(8500000), Decimal("0.02"), Decimal(20)),
    ]
    assert mexc.contract_size("BTC/USDT:USDT") == Decimal("0.0001")
    assert mexc.contract_size("ETH/USDT:USDT") == Decimal("0.01")
    assert mexc.contract_size("SOL/USDT:USDT") == Decimal("0.1")
    assert all(t.cum == 0 for table in mexc.tables.values() for t in table.tiers)
    # the recorder keeps 5 items of a list: BTC and ETH may have more levels, the file says so
    assert "PARTIAL" in mexc.notes and "defaultDataSliceLimit = 5" in mexc.notes


# --- the daemon's last resort --------------------------------------------------------------------


async def _offline(symbols: Sequence[str]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    raise OSError("exchange unreachable")  # no live tiers


def _config(tmp_path: Path, exchange_id: str, symbols: Sequence[str]) -> Any:
    path = tmp_path / "guardbot.toml"
    path.write_text(
        f"""
[guardbot]
data_dir = "{tmp_path / "data"}"

[exchange]
id = "{exchange_id}"
symbols = {json.dumps(list(symbols))}

[feed]
mode = "ccxt"

[accounts.main]
wallet = 1000
default_margin_mode = "cross"
default_leverage = 5

[alerts]
margin_ratio_levels = [0.5, 0.7, 0.8]
hysteresis = 0.05

[mqtt]
url = "mqtt://127.0.0.1:1"
embedded_broker = "never"
""",
        encoding="utf-8",
    )
    (tmp_path / "data").mkdir(exist_ok=True)
    return load_config(path, {})


@pytest.mark.parametrize("venue", FILES)
async def test_daemon_without_live_tiers_or_cache_uses_the_bundled_tables(
    tmp_path: Path, venue: str
) -> None:
    exchange_id, _ = COVERAGE[venue]
    bundled = load_bundled(venue)
    symbols = sorted(bundled.tables)
    config = _config(tmp_path, exchange_id, symbols)
    tables = TierTables(config, fetcher=_offline)
    async with Journal(tmp_path / "j.db") as journal:  # empty: no cache
        engine, warnings = await tables.resolve_at_start(journal, NOW)
    assert tables.sources == {s: f"bundled {bundled.as_of_for(s)}" for s in symbols}
    assert len(warnings) == len(symbols)
    for symbol in symbols:
        assert engine.config.tiers[symbol].tiers == bundled.tables[symbol].tiers
        # Gate bundles no contract size (none published): the default 1 until fetched
        assert engine.config.contract_sizes.get(symbol, Decimal(1)) == bundled.contract_size(symbol)
