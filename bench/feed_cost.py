"""Feed CPU per 1,000 websocket frames, per venue: guardbot's feed against a bare ccxt consumer.

For each venue a stand-in (``tests/standin/<venue>.py``) runs in a child process on loopback and,
once both consumers' streams are subscribed, pushes ``--changes`` quote changes (mark, bid/ask,
last) alternating BTC/USDT:USDT and ETH/USDT:USDT, paced by ``--pace-ms``. This process runs, one
after the other on fresh stand-ins:

* **bare**: the same ccxt.pro streams guardbot plans for the venue (``plan_streams``: same
  methods, same exchange instances), each awaited in a loop and its return dropped;
* **guardbot**: ``CcxtFeed`` on those instances, every event taken from ``updates()``.

and reports this process's CPU time (user + system, ``time.process_time``) while the frames flow,
per 1,000 frames the stand-in sent. The stand-in starts pushing once the feed's start-up REST
work is over (its first funding poll, which waits for ccxt's rate limiter after
``load_markets``; the limiter wakes every millisecond meanwhile): a one-off cost at start, not
per frame. The stand-in's own CPU is in the child, not counted. Both
sides pay ccxt's parsing; the ratio is what guardbot adds (merging, validation, Decimal, events).

    .venv/bin/python bench/feed_cost.py                       # every venue, 4,000 changes
    .venv/bin/python bench/feed_cost.py --venues bybit,okx --changes 2000
    .venv/bin/python bench/feed_cost.py --venues mexc,gate --repeat 3   # best of 3 per side

Every wait is bounded; the children are ended on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SYMBOLS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
VENUES = ("binanceusdm", "bybit", "okx", "mexc", "bitget", "gate", "kucoinfutures")


def _standin(venue: str) -> Any:
    if venue == "binanceusdm":
        from tests.standin.binance import StandinBinance

        return StandinBinance(SYMBOLS)
    module = __import__(f"tests.standin.{venue}", fromlist=["_"])
    names = [n for n in dir(module) if n.startswith("Standin")]
    return getattr(module, names[0])(SYMBOLS)


def _topics(standin: Any) -> set[str]:
    if hasattr(standin, "stream_topics"):
        return {t for s in SYMBOLS for t in standin.stream_topics(s)}
    ids = [standin.market_id(s).lower() for s in SYMBOLS]  # Binance's stand-in
    return {f"{i}@{name}" for i in ids for name in ("markPrice@1s", "bookTicker", "ticker")}


def _subscribed(standin: Any) -> set[str]:
    if hasattr(standin, "subscribed_topics"):
        return set(standin.subscribed_topics())
    return set(standin.subscribed_streams())


async def serve(venue: str, changes: int, pace_ms: float) -> None:
    """Child: start the stand-in, say its config, pump ``changes`` once subscribed, say frames."""
    async with _standin(venue) as standin:
        print(json.dumps({"config": standin.ccxt_config()}), flush=True)
        wanted = _topics(standin)
        for _ in range(3000):  # bounded: 30 s
            if wanted <= _subscribed(standin):
                break
            await asyncio.sleep(0.01)
        else:
            print(json.dumps({"error": f"not subscribed: {sorted(wanted - _subscribed(standin))}"}))
            return
        await asyncio.sleep(0.2)  # subscription snapshots settle before the clock starts
        print(json.dumps({"subscribed": True}), flush=True)
        loop = asyncio.get_running_loop()
        # until the consumer says go: its start-up (guardbot's first funding poll) is over
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), 120)
        print(json.dumps({"pumping": True}), flush=True)
        before = sum(standin.frames_sent.values())
        for i in range(changes):
            symbol = SYMBOLS[i % 2]
            base = 60000 if symbol.startswith("BTC") else 3000
            price = base + (i % 200) * (1 if base > 5000 else 0.01)
            await standin.set_price(symbol, mark=price, bid=price - 1, ask=price + 1, last=price)
            await asyncio.sleep(pace_ms / 1000)
        await asyncio.sleep(0.5)  # the last frames reach the consumer
        frames = sum(standin.frames_sent.values()) - before
        print(json.dumps({"done": True, "frames": frames}), flush=True)
        reader = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader, 10)  # until the parent is done with us


async def _consume(venue: str, mode: str, changes: int, pace_ms: float) -> dict[str, float]:
    import ccxt.pro

    from guardbot.feeds.ccxt_feed import CcxtFeed, plan_streams
    from guardbot.feeds.venues import venue_for

    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "serve", venue, str(changes), str(pace_ms),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None

    async def message() -> dict[str, Any]:
        line = await asyncio.wait_for(child.stdout.readline(), 120)  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"{venue} stand-in ended early")
        return dict(json.loads(line))

    cls = getattr(ccxt.pro, venue)
    try:
        config = (await message())["config"]
        exchange, tickers = cls(json.loads(json.dumps(config))), cls(json.loads(json.dumps(config)))
        try:
            await exchange.load_markets()
            await tickers.load_markets()
            quirks = venue_for(venue)
            tasks: list[asyncio.Task[None]] = []
            if mode == "bare":
                for stream in plan_streams(exchange, tickers, SYMBOLS, quirks):
                    tasks.append(asyncio.create_task(_drain(stream.call)))
            else:
                feed = CcxtFeed(exchange, SYMBOLS, ticker_exchange=tickers, venue=quirks)
                await feed.__aenter__()
                tasks.append(asyncio.create_task(_events(feed)))
            subscribed = await message()
            if "subscribed" not in subscribed:
                raise RuntimeError(f"{venue}: {subscribed}")
            if mode != "bare":
                await _started(feed, exchange)
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            started = await message()
            if "pumping" not in started:
                raise RuntimeError(f"{venue}: {started}")
            cpu0, wall0 = time.process_time(), time.perf_counter()
            done = await message()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if mode != "bare":
                await feed.__aexit__(None, None, None)
        finally:
            await asyncio.gather(exchange.close(), tickers.close(), return_exceptions=True)
        frames = int(done["frames"])
        return {"frames": frames, "cpu_ms_per_1000": cpu * 1000 / frames * 1000, "wall_s": wall}
    finally:
        child.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            child.terminate()
        await asyncio.wait_for(child.wait(), 10)


async def _started(feed: Any, exchange: Any) -> None:
    """Until the feed's start-up REST work is over: its first funding poll made and ccxt's rate
    limiter idle. ccxt's limiter wakes every millisecond while a request waits for its turn
    (after ``load_markets`` the first poll waits seconds); that start-up cost is not per frame."""
    idle = 0
    for _ in range(3000):  # bounded: 30 s
        polled = feed.status()["funding_polls"] >= 1 or feed._funding_rest() is None
        throttler = getattr(exchange, "throttler", None)
        idle = idle + 1 if polled and not getattr(throttler, "running", False) else 0
        if idle >= 30:  # idle for 0.3 s: the poll's request went through, none is waiting
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("the feed's first funding poll did not finish in 30 s")


async def _drain(call: Callable[[], Awaitable[Any]]) -> None:
    while True:
        try:
            await call()
        except Exception:  # a bare consumer retries whatever fails, like the feed does
            await asyncio.sleep(0.05)


async def _events(feed: Any) -> None:
    async for _event in feed.updates():
        pass


async def main(args: argparse.Namespace) -> int:
    rows = []
    for venue in args.venues.split(","):
        # best of --repeat runs per side, alternating: on a shared machine the least disturbed
        # run is the closest to the cost itself
        bares, runs = [], []
        for _ in range(args.repeat):
            bares.append(await _consume(venue, "bare", args.changes, args.pace_ms))
            runs.append(await _consume(venue, "guardbot", args.changes, args.pace_ms))
        bare = min(bares, key=lambda r: r["cpu_ms_per_1000"])
        ours = min(runs, key=lambda r: r["cpu_ms_per_1000"])
        ratio = ours["cpu_ms_per_1000"] / bare["cpu_ms_per_1000"]
        rows.append((venue, bare, ours, ratio))
        print(
            f"{venue:12s} frames {bare['frames']:6d} / {ours['frames']:6d}   "
            f"bare {bare['cpu_ms_per_1000']:7.1f} ms   guardbot {ours['cpu_ms_per_1000']:7.1f} ms"
            f"   per 1,000 frames   ratio {ratio:4.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", default=",".join(VENUES))
    parser.add_argument("--changes", type=int, default=4000, help="quote changes pushed per run")
    parser.add_argument("--pace-ms", type=float, default=1.0, help="pause after each change")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the best is shown")
    sys.exit(asyncio.run(main(parser.parse_args())))
