"""``bench/tier_snapshots.py live``: a venue's bundled file refreshed from the venue (issue 12).

Through the real ccxt path against the local stand-ins: the top symbols by the stand-in's 24 h
volumes are fetched, written into a copy of the venue's bundled file (a temp path; the bundled
files themselves are never written), the result parses with guardbot's loader, its tables are
the ones the daemon's fetch caches for the same venue, each refreshed symbol carries its own date
and source, and every other symbol's entry is left byte for byte as it was.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import ccxt
import pytest

from guardbot.core.profiles import profile_for_exchange
from guardbot.feeds.exchange import ccxt_factory
from guardbot.store.journal import Journal
from guardbot.tiers.fetch import ccxt_fetcher, resolve_tiers
from guardbot.tiers.source import load_bundled, read_bundled, snapshot_venue
from tests.standin.base import VenueStandin
from tests.standin.binance import StandinBinance
from tests.standin.bitget import StandinBitget
from tests.standin.bybit import StandinBybit
from tests.standin.gate import StandinGate
from tests.standin.kucoinfutures import StandinKucoinFutures
from tests.standin.mexc import StandinMexc
from tests.standin.okx import StandinOkx

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "tier_snapshots.py"
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
TIMEOUT = 30.0

#: A MEXC contract in CUSTOM risk-limit mode: ccxt alone gives one tier without bounds; the
#: refreshed file must hold these levels (guardbot.feeds.venues.mexc.tier_rows), in contracts.
MEXC_LEVELS = [
    {"imr": 0.004, "level": 1, "maxLeverage": 250, "maxVol": 30000, "mmr": 0.002},
    {"imr": 0.01, "level": 2, "maxLeverage": 100, "maxVol": 400000, "mmr": 0.006},
    {"imr": 0.04, "level": 3, "maxLeverage": 25, "maxVol": 3000000, "mmr": 0.025},
]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tier_snapshots", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TS = _script()


def _raw(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _by_volume(venue: VenueStandin, top: int) -> list[str]:
    """The stand-in's own ranking: 24 h quote volume (base volume x last), largest first."""
    quotes = sorted(venue.quotes.values(), key=lambda q: -Decimal(q.quote_volume()))
    return [q.symbol for q in quotes[:top]]


async def _daemon_tables(venue: VenueStandin, symbols: list[str], tmp: Path) -> Any:
    """What the daemon's tier fetch resolves (and caches) for ``symbols`` on the stand-in."""
    exchange_id = venue.exchange_id
    profile = profile_for_exchange(exchange_id)
    assert profile is not None
    fetch = ccxt_fetcher(ccxt_factory(exchange_id), venue.ccxt_config())
    async with Journal(tmp / "daemon.db") as journal:
        resolved = await resolve_tiers(
            exchange_id,
            symbols,
            journal,
            load_bundled(exchange_id),
            now_ms=1_800_000_000_000,
            fetch=fetch,
            derive_cum=profile.deducts_cum,
        )
        cached = {s: await journal.get_tiers(exchange_id, s) for s in symbols}
    assert resolved.warnings == [] and set(resolved.sources.values()) == {"exchange"}
    return resolved, cached


# (stand-in, its symbols, 24 h base volumes, --top): the volumes make the ranking differ from the
# listing order and from the prices' order. OKX: ccxt's baseVolume counts contracts there; ranked
# by it x last, BTC would lead (4,000,000 x 65,000 against 9,000,000 x 3,200), by the base amount
# (volCcy24h) x last ETH does.
CASES = [
    pytest.param(StandinOkx, {BTC: "40000", ETH: "900000"}, {}, 1, id="okx"),
    pytest.param(StandinBybit, {BTC: "10", ETH: "20000", SOL: "9000000"}, {}, 2, id="bybit"),
    pytest.param(StandinGate, {BTC: "50", ETH: "900000"}, {}, 1, id="gate"),
    pytest.param(StandinBitget, {BTC: "1", ETH: "500000"}, {}, 1, id="bitget"),
    pytest.param(
        StandinMexc, {BTC: "900000", ETH: "1000"}, {"risk_levels": {"BTC": MEXC_LEVELS}}, 1,
        id="mexc-custom-levels",
    ),
    pytest.param(StandinKucoinFutures, {BTC: "1000", ETH: "900000"}, {}, 2, id="kucoinfutures"),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "volumes", "kwargs", "top"), CASES)
async def test_top_symbols_are_merged_into_the_venues_file(
    tmp_path: Path, cls: Any, volumes: dict[str, str], kwargs: dict[str, Any], top: int
) -> None:
    venue_name = snapshot_venue(cls.exchange_id)
    bundled_path = TS.DATA / f"{venue_name}.json"
    bundled_bytes = bundled_path.read_bytes() if bundled_path.is_file() else None
    out = tmp_path / f"{venue_name}.json"
    async with asyncio.timeout(TIMEOUT), cls(tuple(volumes), **kwargs) as venue:
        for symbol, volume in volumes.items():
            venue.quotes[symbol].volume = volume
        expected = _by_volume(venue, top)
        target, written, failed = await TS.live_refresh(
            cls.exchange_id, top=top, out=out, ccxt_config=json.dumps(venue.ccxt_config())
        )
        assert (target, written, failed) == (out, expected, {})
        resolved, cached = await _daemon_tables(venue, expected, tmp_path)
        caps = {s: venue.tier_caps(s) for s in expected}
        sizes = {s: venue.contract_size(s) for s in expected}
        assert venue.unknown_paths == []

    profile = profile_for_exchange(cls.exchange_id)
    assert profile is not None
    snapshot = read_bundled(profile.name, out)  # the loader accepts the file as written
    new = _raw(out)
    for symbol in expected:
        # exactly the daemon's table and contract size (same calls, same normalisation)
        assert snapshot.tables[symbol].tiers == resolved.tables[symbol].tiers
        assert [t.cap for t in snapshot.tables[symbol].tiers] == caps[symbol]
        assert snapshot.contract_sizes[symbol] == sizes[symbol] == resolved.contract_sizes[symbol]
        rows = [{k: v for k, v in row.items() if k != "tier"} for row in new["tiers"][symbol]]
        assert [{k: Decimal(str(v)) for k, v in row.items()} for row in rows] == [
            {k: Decimal(v) for k, v in row.items()} for row in cached[symbol][1]
        ]
        source = snapshot.source_for(symbol)
        prefix = f"{cls.exchange_id} public API through ccxt {ccxt.__version__}, fetched "
        assert source.startswith(prefix)
        stamp = source.removeprefix(prefix).split(" ")[0]
        assert snapshot.as_of_for(symbol) == stamp[:10]  # today (UTC), the day it was fetched
        assert len(stamp) == 20 and stamp.endswith("Z")
    if cls is StandinMexc:
        assert [t.cap for t in snapshot.tables[BTC].tiers] == [30000, 400000, 3000000]

    # Everything else in the file is as it was: other symbols byte for byte (as JSON values),
    # the file's own date and source; the bundled file itself is not written.
    assert (bundled_path.read_bytes() if bundled_path.is_file() else None) == bundled_bytes
    if bundled_bytes is None:
        assert set(new["tiers"]) == set(expected)
        return
    old = json.loads(bundled_bytes)
    for key in ("profile", "exchange", "asOf", "source", "tierBasis"):
        assert new.get(key) == old.get(key)
    assert new["notes"].startswith(old["notes"]) and TS.LIVE_NOTE in new["notes"]
    kept = [s for s in old["tiers"] if s not in expected]
    assert kept, "the case must leave some bundled symbol alone"
    assert set(new["tiers"]) == set(old["tiers"]) | set(expected)
    for symbol in kept:
        assert new["tiers"][symbol] == old["tiers"][symbol]
        assert new["contractSize"].get(symbol) == old["contractSize"].get(symbol)
        assert new.get("symbols", {}).get(symbol) == old.get("symbols", {}).get(symbol)
    for symbol in set(old["contractSize"]) - set(expected):  # sizes without a table too (Gate)
        assert new["contractSize"][symbol] == old["contractSize"][symbol]


async def test_a_second_run_merges_into_the_first_ones_file(tmp_path: Path) -> None:
    out = tmp_path / "okx.json"
    async with asyncio.timeout(TIMEOUT), StandinOkx((BTC, ETH)) as venue:
        config = json.dumps(venue.ccxt_config())
        await TS.live_refresh("okx", symbols=[ETH], out=out, ccxt_config=config)
        first = _raw(out)
        _, written, _ = await TS.live_refresh("okx", symbols=[BTC], out=out, ccxt_config=config)
    assert written == [BTC]
    second = _raw(out)
    assert second["tiers"][ETH] == first["tiers"][ETH]
    assert second["symbols"][ETH] == first["symbols"][ETH]
    assert second["tiers"][BTC] != first["tiers"][BTC]  # the stand-in's table replaced it
    assert second["notes"].count(TS.LIVE_NOTE) == 1
    read_bundled("okx", out)


async def test_binance_brackets_with_keys_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARDBOT_EXCHANGE_API_KEY", "test-key")
    monkeypatch.setenv("GUARDBOT_EXCHANGE_SECRET", "test-secret")
    out = tmp_path / "binance.json"
    async with asyncio.timeout(TIMEOUT), StandinBinance((BTC, ETH)) as venue:
        _, written, failed = await TS.live_refresh(
            "binanceusdm", symbols=[ETH], out=out, ccxt_config=json.dumps(venue.ccxt_config())
        )
        brackets = venue.leverage_brackets
    assert (written, failed) == ([ETH], {})
    snapshot = read_bundled("binance", out)
    assert [int(t.cap) for t in snapshot.tables[ETH].tiers] == [row[1] for row in brackets]
    assert snapshot.source_for(ETH).startswith("binanceusdm signed API through ccxt ")
    assert snapshot.tables[BTC].tiers == load_bundled("binance").tables[BTC].tiers


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbols": ["DOGE/USDT:USDT"]}, "--symbols: not a USDT-settled linear perpetual"),
        ({"ccxt_config": "[1]"}, "--ccxt-config: must be a JSON object"),
        ({"top": 0}, "--top: must be >= 1"),
    ],
)
async def test_bad_input_is_refused_and_nothing_written(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    out = tmp_path / "okx.json"
    async with asyncio.timeout(TIMEOUT), StandinOkx((BTC, ETH)) as venue:
        kwargs.setdefault("ccxt_config", json.dumps(venue.ccxt_config()))
        with pytest.raises(TS.Refused, match=message):
            await TS.live_refresh("okx", out=out, **kwargs)
    assert not out.exists()


def test_the_command_refuses_binance_without_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDBOT_EXCHANGE_")}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "binance.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "live", "--exchange", "binanceusdm", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "GUARDBOT_EXCHANGE_API_KEY and GUARDBOT_EXCHANGE_SECRET" in done.stderr
    assert not out.exists()


async def test_the_command_end_to_end(tmp_path: Path) -> None:
    """The one command, as a process (argument parsing, asyncio.run, exit status, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDBOT_EXCHANGE_")}
    env["PYTHONPATH"] = str(ROOT)
    out = tmp_path / "okx.json"
    async with asyncio.timeout(120), StandinOkx((BTC, ETH)) as venue:
        venue.quotes[ETH].volume = "900000"
        args = ["live", "--exchange", "okx", "--top", "1", "--out", str(out)]
        args += ["--ccxt-config", json.dumps(venue.ccxt_config())]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert f"wrote {out}: 1 symbols refreshed: {ETH}" in stdout.decode()
    assert read_bundled("okx", out).as_of_for(ETH) == _raw(out)["symbols"][ETH]["asOf"]
