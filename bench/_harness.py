"""Shared plumbing of the daemon benchmarks (``daemon_latency.py``, ``soak.py``).

Everything runs on loopback: a private Mosquitto on a free port, the stand-in Binance exchange
(``tests/standin/binance.py``) inside the bench process, ``guardbot run`` as a subprocess. Every
child process is registered here and ended on exit (normal, error, Ctrl-C, SIGTERM; and by the
kernel with ``PR_SET_PDEATHSIG`` if the bench itself is killed). Every wait is bounded.

Run as a script, this module is the *bare ccxt consumer* of ``daemon_latency.py``::

    python bench/_harness.py bare-consumer CONFIG.json

It watches what the daemon's feed watches (``watch_mark_prices`` and ``watch_bids_asks`` on one
``ccxt.pro.binanceusdm``, ``watch_tickers`` on a second one), counts wake-ups and per-symbol
updates, and prints its counters as one JSON line on stdout on every SIGUSR1.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.standin

from tests.standin.binance import (  # noqa: E402
    EXCHANGE_INFO_SYMBOLS,
    UNIFIED_TO_ID,
    StandinBinance,
)

__all__ = [
    "REPO",
    "Broker",
    "Child",
    "Pacer",
    "Received",
    "StandinBinance",
    "Subscriber",
    "available_symbols",
    "bare_consumer_cmd",
    "daemon_toml",
    "free_port",
    "histogram_delta",
    "metric_sum",
    "percentile",
    "run_main",
    "scrape",
    "start_daemon",
    "wait_daemon_subscribed",
    "wait_until",
]

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto")
PYTHON = sys.executable
_PR_SET_PDEATHSIG = 1


# ------------------------------------------------------------------------------- small helpers


def free_port() -> int:
    """A free loopback TCP port (bound and released; the usual small race is accepted)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of an ascending sequence; NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def available_symbols(wanted: int | None) -> tuple[list[str], int]:
    """Up to ``wanted`` (None: all) unified symbols the stand-in can serve (it has exchangeInfo
    fixtures for only a few), and how many of ``wanted`` are missing."""
    served = [u for u, i in UNIFIED_TO_ID.items() if i in EXCHANGE_INFO_SYMBOLS]
    if wanted is None:
        return served, 0
    return served[:wanted], max(0, wanted - len(served))


async def wait_until(
    check: Callable[[], bool], what: str, *, timeout: float, poll: float = 0.05
) -> None:
    """Poll ``check`` until true; TimeoutError naming ``what`` after ``timeout`` seconds."""
    for _ in range(max(1, int(timeout / poll) + 1)):
        if check():
            return
        await asyncio.sleep(poll)
    if not check():
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class Pacer:
    """Slots at a fixed rate on ``time.perf_counter``: ``await pacer.next()`` sleeps until the
    next slot (no sleep when behind: a late sender catches up, so the mean rate holds)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.start = time.perf_counter()
        self.count = 0
        self.late = 0  # slots that were already past when asked for

    async def next(self) -> float:
        due = self.start + self.count * self.interval
        self.count += 1
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            self.late += 1
            if self.count % 64 == 0:
                await asyncio.sleep(0)  # never starve the loop when behind
        return due


# ------------------------------------------------------------------------------- child processes

_CHILDREN: list[Child] = []


def _pdeathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """A subprocess the bench owns: its own session (Ctrl-C reaches the bench only, which then
    stops children in order), SIGTERM to it if the bench dies, log to a file, psutil handle."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        stdout_pipe: bool = False,
    ) -> None:
        import psutil  # type: ignore[import-untyped,unused-ignore]

        self.name = name
        self.log = log
        self._log_file = log.open("ab")
        self.popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self._log_file,
            stderr=self._log_file,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_pdeathsig if sys.platform == "linux" else None,
        )
        self.pid = self.popen.pid
        self.ps = psutil.Process(self.pid)
        _CHILDREN.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far."""
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; returns the exit status."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(timeout=5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self._log_file.close()
        if self in _CHILDREN:
            _CHILDREN.remove(self)
        return self.popen.returncode

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"


def stop_all_children() -> None:
    """Stop every child still running, newest first (the daemon before its broker)."""
    for child in reversed(list(_CHILDREN)):
        with contextlib.suppress(Exception):
            child.stop(timeout=10)


atexit.register(stop_all_children)


class Broker:
    """A private Mosquitto on a free loopback port (no persistence, anonymous)."""

    host = "127.0.0.1"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.child: Child | None = None

    @staticmethod
    def binary() -> str:
        import shutil

        for candidate in MOSQUITTO_CANDIDATES:
            found = shutil.which(candidate) or (
                candidate if os.access(candidate, os.X_OK) else None
            )
            if found:
                return found
        raise SystemExit("mosquitto not found (PATH or /usr/sbin/mosquitto)")

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> Broker:
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n",
            encoding="utf-8",
        )
        self.child = Child(
            "mosquitto", [self.binary(), "-c", str(conf)], self.directory / "mosquitto.log"
        )
        deadline = time.monotonic() + 10
        for _ in range(500):
            if not self.child.alive():
                raise RuntimeError(f"mosquitto exited: {self.child.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen within 10 s: {self.child.log_tail()}")

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(timeout=5)


# ------------------------------------------------------------------------------- daemon config


def toml_value(value: Any) -> str:
    """A TOML inline value (strings, numbers, booleans, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Decimal)):
        return json.dumps(str(value)) if isinstance(value, str) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def toml_table(header: str, values: Mapping[str, Any]) -> str:
    lines = [f"[{header}]"] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def daemon_toml(
    *,
    instance: str,
    data_dir: Path,
    standin: StandinBinance,
    broker: Broker,
    symbols: Sequence[str],
    accounts: Mapping[str, Mapping[str, Any]],
    seed: Sequence[Mapping[str, Any]] = (),
    metrics_port: int | None = None,
    control: bool = False,
    guards: Mapping[str, Any] | None = None,
    stale_after_s: float = 10.0,
    store: Mapping[str, Any] | None = None,
) -> str:
    """A ``guardbot run`` configuration: ccxt feed on the stand-in, the private broker."""
    parts = [
        toml_table(
            "guardbot",
            {
                "instance": instance,
                "data_dir": str(data_dir),
                "log_format": "json",
                "log_level": "warning",
            },
        ),
        toml_table("exchange", {"id": "binanceusdm", "symbols": list(symbols)}),
        toml_table("exchange.ccxt", {"enableRateLimit": False, **standin.ccxt_config()}),
        toml_table("feed", {"mode": "ccxt", "stale_after_s": stale_after_s, "rest_poll_s": 2}),
    ]
    for name, values in accounts.items():
        parts.append(toml_table(f"accounts.{name}", values))
    parts.append(
        toml_table(
            "guards",
            dict(guards) if guards is not None else {"max_leverage": 50, "daily_loss_limit": 1e9},
        )
    )
    parts.append(toml_table("alerts", {"margin_ratio_levels": [0.5, 0.7, 0.8], "hysteresis": 0.05}))
    parts.append(
        toml_table(
            "mqtt",
            {"url": broker.url, "topic_prefix": "guardbot", "embedded_broker": "never", "qos": 1},
        )
    )
    if metrics_port is None:
        parts.append(toml_table("metrics", {"enabled": False}))
    else:
        parts.append(
            toml_table("metrics", {"enabled": True, "listen": f"127.0.0.1:{metrics_port}"})
        )
    parts.append(toml_table("control", {"enabled": control, "token_env": "GUARDBOT_CONTROL_TOKEN"}))
    if store:
        parts.append(toml_table("store", dict(store)))
    for command in seed:
        parts.append(toml_table("[seed]", command))
    return "\n".join(parts)


def start_daemon(
    config_text: str, workdir: Path, *, env_extra: Mapping[str, str] | None = None
) -> Child:
    """``python -m guardbot run -c <workdir>/guardbot.toml`` as a child process."""
    path = workdir / "guardbot.toml"
    path.write_text(config_text, encoding="utf-8")
    env = dict(os.environ)
    env.pop("GUARDBOT_CONTROL_TOKEN", None)
    env.update(env_extra or {})
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return Child(
        "guardbot",
        [PYTHON, "-m", "guardbot", "run", "-c", str(path)],
        workdir / "daemon.log",
        env=env,
    )


def feed_streams(standin: StandinBinance, symbols: Iterable[str]) -> list[tuple[str, ...]]:
    """For each symbol, the stream names (any one will do) of what the daemon's feed watches:
    mark prices, bids/asks and tickers."""
    out: list[tuple[str, ...]] = []
    for i in (standin.market_id(s).lower() for s in symbols):
        out += [(f"{i}@markPrice@1s", f"{i}@markPrice"), (f"{i}@bookTicker",), (f"{i}@ticker",)]
    return out


async def wait_daemon_subscribed(
    standin: StandinBinance,
    symbols: Sequence[str],
    child: Child,
    *,
    timeout: float = 60.0,
    before: Mapping[str, int] | None = None,
) -> None:
    """Until a client subscribed to the mark, bids/asks and ticker streams of every symbol (more
    often than ``before`` counted); fails fast if ``child`` exits meanwhile."""
    base = before or {}

    def subscribed() -> bool:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        return all(
            any(standin.subscriptions[s] > base.get(s, 0) for s in names)
            for names in feed_streams(standin, symbols)
        )

    await wait_until(subscribed, f"{child.name} to subscribe to its streams", timeout=timeout)


# ------------------------------------------------------------------------------- MQTT subscriber


@dataclass
class Received:
    t: float  # time.perf_counter() at receipt
    topic: str
    payload: Any  # decoded JSON, or None when not JSON


@dataclass
class Subscriber:
    """An aiomqtt client on the private broker that records every message with its receipt time
    (``time.perf_counter``); ``on_message`` is called for each one as well."""

    broker: Broker
    topics: Sequence[str]
    on_message: Callable[[Received], None] | None = None
    received: list[Received] = field(default_factory=list)
    keep: Callable[[str], bool] = lambda _topic: True
    _task: asyncio.Task[None] | None = None
    _client: Any = None

    async def __aenter__(self) -> Subscriber:
        import aiomqtt

        self._client = aiomqtt.Client(self.broker.host, self.broker.port)
        await self._client.__aenter__()
        for topic in self.topics:
            await self._client.subscribe(topic, qos=1)
        self._task = asyncio.create_task(self._loop(), name="bench:subscriber")
        return self

    async def _loop(self) -> None:
        async for message in self._client.messages:
            t = time.perf_counter()
            raw = message.payload
            try:
                payload = json.loads(raw) if isinstance(raw, (bytes, bytearray, str)) else None
            except ValueError:
                payload = None
            item = Received(t, str(message.topic), payload)
            if self.keep(item.topic):
                self.received.append(item)
            if self.on_message is not None:
                self.on_message(item)

    async def publish(self, topic: str, payload: str, qos: int = 1) -> None:
        await self._client.publish(topic, payload, qos=qos)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._client.__aexit__(None, None, None)


# ------------------------------------------------------------------------------- Prometheus


def _scrape_sync(port: int, timeout: float) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as resp:
        return str(resp.read().decode("utf-8"))


async def scrape(port: int, timeout: float = 5.0) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The daemon's /metrics as ``sample name -> [(labels, value)]``."""
    from prometheus_client.parser import text_string_to_metric_families

    text = await asyncio.to_thread(_scrape_sync, port, timeout)
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def metric_sum(
    metrics: Mapping[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
    return sum(
        v
        for lab, v in metrics.get(name, [])
        if all(lab.get(k) == want for k, want in labels.items())
    )


def histogram_delta(
    before: Mapping[str, list[tuple[dict[str, str], float]]],
    after: Mapping[str, list[tuple[dict[str, str], float]]],
    name: str,
    quantiles: Sequence[float] = (50, 90, 99),
) -> tuple[int, list[float]]:
    """Observations of histogram ``name`` between two scrapes, and for each quantile the upper
    bound (``le``) of the bucket it falls in (seconds; inf beyond the last bound)."""

    def buckets(m: Mapping[str, list[tuple[dict[str, str], float]]]) -> dict[float, float]:
        return {float(lab["le"]): v for lab, v in m.get(f"{name}_bucket", []) if "le" in lab}

    b0, b1 = buckets(before), buckets(after)
    bounds = sorted(b1)
    cumulative = [b1[le] - b0.get(le, 0.0) for le in bounds]
    total = int(cumulative[-1]) if cumulative else 0
    out = []
    for q in quantiles:
        rank = q / 100 * total
        out.append(
            next((le for le, c in zip(bounds, cumulative, strict=True) if c >= rank), math.inf)
        )
    return total, out


# ------------------------------------------------------------------------------- entry point


def run_main(main: Callable[[], Awaitable[int]]) -> int:
    """``asyncio.run`` with SIGTERM treated like Ctrl-C (the main task is cancelled, so every
    ``finally`` runs), and children stopped whatever happens."""

    async def wrapped() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await main()

    try:
        return asyncio.run(wrapped())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted: children stopped", file=sys.stderr)
        return 130
    finally:
        stop_all_children()


@contextlib.asynccontextmanager
async def workdir(keep: str | None, prefix: str) -> AsyncIterator[Path]:
    """``keep`` (a directory, created) or a temporary directory removed afterwards."""
    if keep:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


# ------------------------------------------------------------------------------- bare consumer


def bare_consumer_cmd(config_path: Path) -> list[str]:
    return [PYTHON, str(Path(__file__).resolve()), "bare-consumer", str(config_path)]


async def _bare_consumer(config_path: str) -> int:
    """Watch what the daemon's ExchangeFeed watches and count; see the module docstring."""
    import ccxt.pro

    spec = json.loads(Path(config_path).read_text(encoding="utf-8"))
    symbols: list[str] = spec["symbols"]
    options: dict[str, Any] = spec["ccxt"]
    ex = ccxt.pro.binanceusdm(json.loads(json.dumps(options)))
    tex = ccxt.pro.binanceusdm(json.loads(json.dumps(options)))
    counts: dict[str, int] = {"mark_wakeups": 0, "mark_updates": 0, "book_wakeups": 0}
    counts["ticker_wakeups"] = 0
    last: dict[str, Any] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: print(json.dumps(counts), flush=True))

    async def marks() -> None:
        while not stop.is_set():
            got = await ex.watch_mark_prices(symbols)
            counts["mark_wakeups"] += 1
            cache = ex.tickers
            for sym in symbols:
                entry = cache.get(sym) or got.get(sym)
                if entry is None:
                    continue
                key = (entry.get("timestamp"), entry.get("markPrice"))
                if last.get(sym) != key:
                    last[sym] = key
                    counts["mark_updates"] += 1

    async def books() -> None:
        while not stop.is_set():
            await ex.watch_bids_asks(symbols)
            counts["book_wakeups"] += 1

    async def tickers() -> None:
        while not stop.is_set():
            await tex.watch_tickers(symbols, {"name": "ticker"})
            counts["ticker_wakeups"] += 1

    try:
        await ex.load_markets()
        await tex.load_markets()
        tasks = [asyncio.create_task(f()) for f in (marks, books, tickers)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await asyncio.gather(ex.close(), tex.close(), return_exceptions=True)
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "bare-consumer":
        sys.exit(asyncio.run(_bare_consumer(sys.argv[2])))
    print(__doc__)
    sys.exit(2)
