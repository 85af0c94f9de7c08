"""Issue 11 item 7: an unreachable exchange says why at each backoff step (DNS, refused, TLS), at
info level, and ``guardbot_reconnects_total{component="feed"}`` counts the attempts.

The root-cause table is built from errors shaped the way ccxt 4.5.90 raises them (REST:
``raise ExchangeNotAvailable(details) from e``; websocket client: ``NetworkError(e)``); the
refused and TLS cases also run the real ccxt code path against loopback (a closed port, and an
``https`` URL at a plain-HTTP stand-in).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import ccxt
import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from guardbot.feeds.exchange import ExchangeFeed, ccxt_factory
from guardbot.metrics.prometheus import Metrics
from guardbot.runtime.causes import root_cause
from tests.standin.binance import StandinBinance

BTC = "BTC/USDT:USDT"


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


ROOT_CAUSES = [
    # (what ccxt raises, the cause)
    (
        _chained(
            ccxt.ExchangeNotAvailable("binanceusdm GET https://fapi.example/x"),
            socket.gaierror(-2, "Name or service not known"),
        ),
        "dns",
    ),
    (ccxt.NetworkError(ConnectionRefusedError(111, "Connect call failed")), "refused"),
    (
        _chained(
            ccxt.ExchangeNotAvailable("binanceusdm GET https://x"),
            ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed"),
        ),
        "tls",
    ),
    (ccxt.RequestTimeout("binanceusdm GET https://x timed out"), "timeout"),
    (ccxt.NetworkError(ConnectionResetError(104, "Connection reset by peer")), "reset"),
    # Only the text left (an error re-raised without its chain).
    (
        ccxt.ExchangeNotAvailable(
            "Cannot connect to host fapi.example:443 ssl:default [Name or service not known]"
        ),
        "dns",
    ),
    (ccxt.ExchangeNotAvailable("[Errno 111] Connection refused"), "refused"),
    (ccxt.ExchangeNotAvailable("binanceusdm 503 Service Unavailable"), "other"),
]


@pytest.mark.parametrize(("error", "kind"), ROOT_CAUSES)
def test_root_cause(error: BaseException, kind: str) -> None:
    cause = root_cause(error)
    assert cause.kind == kind, cause
    assert cause.detail


def _urls_at(config: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(config).replace(old, new))
    return result


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _fail_three_times(feed: ExchangeFeed) -> None:
    async with feed:
        async for _event in feed.updates():
            if feed.market_failures >= 3:
                return
        raise AssertionError("the feed ended")  # pragma: no cover


async def _run_unreachable(config: dict[str, Any]) -> tuple[list[dict[str, Any]], ExchangeFeed]:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        await asyncio.sleep(0)

    feed = ExchangeFeed(ccxt_factory("binanceusdm"), config, [BTC], sleep=sleep)
    with capture_logs() as logged:
        async with asyncio.timeout(30):
            # The markets never load: the feed yields one FeedStale, then keeps retrying.
            task = asyncio.create_task(_fail_three_times(feed))
            while feed.market_failures < 3:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    return [e for e in logged if e["event"] == "exchange unreachable; retrying"], feed


def _feed_reconnects(metrics: Metrics) -> float:
    for line in generate_latest(metrics.registry).decode().splitlines():
        if line.startswith('guardbot_reconnects_total{component="feed"}'):
            return float(line.split()[-1])
    raise AssertionError("no feed reconnect counter")  # pragma: no cover


@pytest.mark.integration
async def test_refused_exchange_logs_the_cause_at_each_step_and_counts_it(
    standin: StandinBinance,
) -> None:
    config = _urls_at(
        standin.ccxt_config(), f"{standin.host}:{standin.port}", f"127.0.0.1:{_closed_port()}"
    )
    lines, feed = await _run_unreachable(config)
    assert len(lines) >= 3
    assert {e["cause"] for e in lines} == {"refused"}
    assert lines[0]["log_level"] == "warning"  # the first says it loudly, then info per step
    assert {e["log_level"] for e in lines[1:]} == {"info"}
    assert [e["attempt"] for e in lines[:3]] == [1, 2, 3]
    metrics = Metrics(symbols=[BTC])
    metrics.sync_feed_status(feed.status())
    assert _feed_reconnects(metrics) == feed.market_failures >= 3


@pytest.mark.integration
async def test_tls_to_a_plain_server_logs_a_tls_cause(standin: StandinBinance) -> None:
    config = _urls_at(standin.ccxt_config(), "http://", "https://")
    lines, _feed = await _run_unreachable(config)
    assert lines and {e["cause"] for e in lines} == {"tls"}, lines[:1]


def test_metric_is_documented() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text("utf-8")
    assert 'component="feed"' in docs
