"""``guardbot record --exchange <venue>`` writes the same tick format on every venue: the real
ccxt.pro class of each venue against its stand-in, then the file replays as ticks with mark and
bid/ask."""

from __future__ import annotations

import asyncio
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest

from guardbot.cli.record import run_record
from tests.standin.bitget import StandinBitget
from tests.standin.bybit import StandinBybit
from tests.standin.gate import StandinGate
from tests.standin.kucoinfutures import StandinKucoinFutures
from tests.standin.mexc import StandinMexc
from tests.standin.okx import StandinOkx
from tests.standin.test_record import assert_gzip_complete, parse, read_back
from tests.standin.test_record import restore_logging as restore_logging  # the fixture

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
VENUES = {
    "bybit": StandinBybit,
    "okx": StandinOkx,
    "mexc": StandinMexc,
    "bitget": StandinBitget,
    "gate": StandinGate,
    "kucoinfutures": StandinKucoinFutures,
}


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("name", sorted(VENUES))
async def test_record_writes_the_same_tick_format_on_every_venue(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.jsonl.gz"
    async with VENUES[name]([BTC]) as venue:
        # the quote a subscription snapshot carries (no subscriber yet: nothing is sent)
        await venue.set_price(BTC, mark=60000, bid=59999, ask=60001, last=60000)
        args = parse(
            "--exchange", venue.exchange_id, "--symbols", BTC, "--out", str(path),
            "--count", "6", "--ccxt-config", json.dumps(venue.ccxt_config()),
        )  # fmt: skip
        err = io.StringIO()
        async with asyncio.timeout(30):
            thread = asyncio.ensure_future(asyncio.to_thread(run_record, args, err=err))
            # subscribed (or already done: subscription snapshots may give the 3 ticks)
            wanted = set(venue.stream_topics(BTC))
            for _ in range(400):  # bounded
                if thread.done() or wanted <= venue.subscribed_topics():
                    break
                await asyncio.wait([thread], timeout=0.05)
            for i in range(60):  # bounded: each change yields at least one tick
                if thread.done():
                    break
                mark = 60000 + i
                await venue.set_price(BTC, mark=mark, bid=mark - 1, ask=mark + 1, last=mark)
                await asyncio.wait([thread], timeout=0.2)
            status = await thread
    lines = err.getvalue().splitlines()
    assert status == 0, lines
    assert_gzip_complete(path)
    ticks = [tick for _ts, tick in await read_back(path)]
    assert len(ticks) == 6 and all(t.symbol == BTC for t in ticks)
    # every tick has a mark we sent; mark and bid/ask come from different streams on some
    # venues, so the first ticks may precede the first bid/ask, and a quote may be a frame apart
    assert all(Decimal(60000) <= t.mark < Decimal(60060) for t in ticks)
    quoted = [t for t in ticks if t.bid is not None and t.ask is not None]
    assert quoted and all(t.bid < t.ask for t in quoted)  # type: ignore[operator]
