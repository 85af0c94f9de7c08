"""guardbot's own CPU per frame in the feed, per venue, without ccxt and the network in the figure.

``feed_cost.py`` compares whole processes, which on a loaded machine moves by more than the
difference it measures. This bench takes the part guardbot adds and times it alone:

1. **record**: each venue's stand-in (child process, as in ``feed_cost.py``) pushes
   ``--changes`` quote changes to the real ccxt.pro class; the streams guardbot plans
   (``plan_streams``) are awaited in a loop and every wake-up is kept: the stream's kind, what
   the watch call returned and ccxt's cache entries for the stream's symbols at that moment
   (entries are replaced, not changed, by ccxt, so keeping the references is a snapshot);
2. **replay**, in this process, CPU time only (``time.process_time``), best of ``--repeat``:
   the wake-ups through ``CcxtFeed._ingest`` with a consumer task taking every event from
   ``updates()``, one event-loop turn per wake-up as live; against the same loop without the
   feed. The difference, per frame the stand-in sent, is what guardbot adds.

    .venv/bin/python bench/feed_overhead.py                      # every venue, 2,000 changes
    .venv/bin/python bench/feed_overhead.py --venues mexc,gate --repeat 5

Every wait is bounded; the children are ended on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.feed_cost import SYMBOLS, VENUES  # noqa: E402

Wakeup = tuple[str, Any, dict[str, Any] | None, tuple[str, ...]]


async def record(venue: str, changes: int, pace_ms: float) -> tuple[list[Wakeup], int]:
    """The wake-ups of guardbot's planned streams while the stand-in pushes ``changes``."""
    import ccxt.pro

    from guardbot.feeds.ccxt_feed import _CACHE_ATTR, plan_streams
    from guardbot.feeds.venues import venue_for

    script = str(REPO / "bench" / "feed_cost.py")
    child = await asyncio.create_subprocess_exec(
        sys.executable, script, "serve", venue, str(changes), str(pace_ms),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None

    async def message() -> dict[str, Any]:
        line = await asyncio.wait_for(child.stdout.readline(), 120)  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"{venue} stand-in ended early")
        return dict(json.loads(line))

    wakeups: list[Wakeup] = []
    cls = getattr(ccxt.pro, venue)
    try:
        config = (await message())["config"]
        exchange, tickers = cls(json.loads(json.dumps(config))), cls(json.loads(json.dumps(config)))
        try:
            await exchange.load_markets()
            await tickers.load_markets()

            async def loop(stream: Any) -> None:
                owner = tickers if stream.kind == "ticker" else exchange
                while True:
                    try:
                        returned = await stream.call()
                    except Exception:  # NotSupported (MEXC's bid/ask) and the like: as dropped
                        return
                    cache = getattr(owner, _CACHE_ATTR[stream.kind], None)
                    snapshot = {s: cache.get(s) for s in stream.symbols} if cache else None
                    wakeups.append((stream.kind, returned, snapshot, stream.symbols))

            plan = plan_streams(exchange, tickers, SYMBOLS, venue_for(venue))
            tasks = [asyncio.create_task(loop(stream)) for stream in plan]
            subscribed = await message()
            if "subscribed" not in subscribed:
                raise RuntimeError(f"{venue}: {subscribed}")
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            started = await message()
            if "pumping" not in started:
                raise RuntimeError(f"{venue}: {started}")
            wakeups.clear()  # subscription snapshots are not part of the measured flow
            done = await message()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await asyncio.gather(exchange.close(), tickers.close(), return_exceptions=True)
        return wakeups, int(done["frames"])
    finally:
        child.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            child.terminate()
        await asyncio.wait_for(child.wait(), 10)


async def replay(venue: str, wakeups: list[Wakeup], with_feed: bool) -> float:
    """CPU seconds to hand ``wakeups`` one event-loop turn each to a stream task that, with the
    feed, ingests them, a consumer taking every event."""
    from guardbot.feeds.base import SymbolState
    from guardbot.feeds.ccxt_feed import CcxtFeed, _Symbol
    from guardbot.feeds.venues import venue_for

    class _NoExchange:
        id = venue
        has: ClassVar[dict[str, bool]] = {}

    feed = CcxtFeed(_NoExchange(), SYMBOLS, venue=venue_for(venue))
    feed._syms = {s: _Symbol(SymbolState(s), time.time()) for s in SYMBOLS}
    feed._books_live = any(kind == "book" for kind, *_rest in wakeups)
    inbox: asyncio.Queue[Wakeup | None] = asyncio.Queue()

    async def stream() -> None:  # stands for the feed's stream tasks, woken once per wake-up
        while (item := await inbox.get()) is not None:
            if with_feed:
                kind, returned, cache, symbols = item
                feed._ingest(kind, returned, cache, symbols)  # type: ignore[arg-type]

    async def consume() -> None:
        async for _event in feed.updates():
            pass

    tasks = [asyncio.create_task(stream()), asyncio.create_task(consume())]
    await asyncio.sleep(0)
    cpu0 = time.process_time()
    for item in wakeups:
        inbox.put_nowait(item)
        await asyncio.sleep(0)  # the stream task takes it
        await asyncio.sleep(0)  # the consumer takes the events
    inbox.put_nowait(None)
    await tasks[0]
    cpu = time.process_time() - cpu0
    tasks[1].cancel()
    await asyncio.gather(tasks[1], return_exceptions=True)
    return cpu


async def main(args: argparse.Namespace) -> int:
    for venue in args.venues.split(","):
        wakeups, frames = await record(venue, args.changes, args.pace_ms)
        base = min([await replay(venue, wakeups, False) for _ in range(args.repeat)])
        ours = min([await replay(venue, wakeups, True) for _ in range(args.repeat)])
        added = (ours - base) / frames * 1e6
        print(
            f"{venue:14s} frames {frames:6d}  wake-ups {len(wakeups):6d}   guardbot adds "
            f"{added:5.1f} us per frame ({added:5.1f} ms per 1,000)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", default=",".join(VENUES))
    parser.add_argument("--changes", type=int, default=2000, help="quote changes recorded")
    parser.add_argument("--pace-ms", type=float, default=1.0, help="pause after each change")
    parser.add_argument("--repeat", type=int, default=5, help="replays per side; the best")
    sys.exit(asyncio.run(main(parser.parse_args())))
