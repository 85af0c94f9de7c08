"""guardbot.metrics.prometheus: values set through the Metrics methods, scraped over HTTP."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from guardbot import __version__
from guardbot.errors import ConfigError
from guardbot.metrics.prometheus import (
    DEFAULT_LISTEN,
    LISTEN_KEY,
    MarginRow,
    Metrics,
    MetricsServer,
    engine_liquidation_rows,
    engine_margin_rows,
    format_listen,
    is_loopback,
    parse_listen,
)
from tests.core.enginekit import BTC, ETH, Sim

SYMBOL = "BTC/USDT:USDT"


# -- helpers ------------------------------------------------------------------------------------


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(text: str, name: str, **labels: str) -> float:
    """The one sample ``name`` with exactly ``labels``; fails if absent."""
    found = [s.value for s in samples(text) if s.name == name and s.labels == labels]
    assert len(found) == 1, (name, labels, [s for s in samples(text) if s.name == name])
    return found[0]


def series(text: str, name: str) -> list[dict[str, str]]:
    return [s.labels for s in samples(text) if s.name == name]


@pytest.fixture
async def server() -> AsyncIterator[MetricsServer]:
    async with MetricsServer(Metrics(symbols=[SYMBOL]), "127.0.0.1", 0) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def scrape(http: aiohttp.ClientSession, srv: MetricsServer) -> str:
    async with http.get(srv.url) as response:
        assert response.status == 200
        return await response.text()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Something already listening on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock
    finally:
        sock.close()


# -- scraping -----------------------------------------------------------------------------------


async def test_scrape_ticks_lag_and_engine_histogram(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    m = server.metrics
    for _ in range(3):
        m.tick_received(SYMBOL)
    m.tick_applied(SYMBOL, 0.00003, lag_seconds=0.25)  # le=5e-05
    m.tick_applied(SYMBOL, 0.0003, lag_seconds=0.125)  # le=0.0005
    m.tick_applied("ETH/USDT:USDT", 0.2)  # beyond 100 ms: +Inf only, no lag known
    m.tick_dropped(SYMBOL, "non_positive")
    m.tick_dropped(SYMBOL, "time_back", 2)

    text = await scrape(http, server)

    assert value(text, "guardbot_ticks_received_total", symbol=SYMBOL) == 3
    assert value(text, "guardbot_ticks_applied_total", symbol=SYMBOL) == 2
    assert value(text, "guardbot_ticks_applied_total", symbol="ETH/USDT:USDT") == 1
    assert value(text, "guardbot_ticks_received_total", symbol="ETH/USDT:USDT") == 0
    assert value(text, "guardbot_feed_lag_seconds", symbol=SYMBOL) == 0.125  # the latest
    assert {"symbol": "ETH/USDT:USDT"} not in series(text, "guardbot_feed_lag_seconds")
    assert value(text, "guardbot_ticks_dropped_total", symbol=SYMBOL, reason="non_positive") == 1
    assert value(text, "guardbot_ticks_dropped_total", symbol=SYMBOL, reason="time_back") == 2

    bucket = "guardbot_engine_tick_seconds_bucket"
    assert value(text, bucket, le="5e-05") == 1
    assert value(text, bucket, le="0.00025") == 1
    assert value(text, bucket, le="0.0005") == 2
    assert value(text, bucket, le="0.1") == 2
    assert value(text, bucket, le="+Inf") == 3
    assert value(text, "guardbot_engine_tick_seconds_count") == 3
    assert value(text, "guardbot_engine_tick_seconds_sum") == pytest.approx(0.20033)
    les = [s["le"] for s in series(text, bucket)]
    assert les[0] == "5e-05" and les[-2:] == ["0.1", "+Inf"]


async def test_engine_bucket_bounds_are_inclusive(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    server.metrics.tick_applied(SYMBOL, 0.0001)  # exactly on a bound: counted in le="0.0001"
    text = await scrape(http, server)
    assert value(text, "guardbot_engine_tick_seconds_bucket", le="5e-05") == 0
    assert value(text, "guardbot_engine_tick_seconds_bucket", le="0.0001") == 1


async def test_initial_series_build_info_and_process_metrics(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    text = await scrape(http, server)
    assert value(text, "guardbot_build_info", version=__version__) == 1
    assert value(text, "guardbot_ticks_received_total", symbol=SYMBOL) == 0
    assert value(text, "guardbot_feed_stale", symbol=SYMBOL) == 0
    assert value(text, "guardbot_reconnects_total", component="feed") == 0
    assert value(text, "guardbot_reconnects_total", component="mqtt") == 0
    assert value(text, "guardbot_mqtt_connected") == 0
    assert value(text, "guardbot_outbox_depth") == 0
    names = {s.name for s in samples(text)}
    assert "python_info" in names
    if "process_resident_memory_bytes" in names:  # the process collector reads /proc (Linux)
        assert value(text, "process_resident_memory_bytes") > 0
        assert "process_cpu_seconds_total" in names
        assert value(text, "process_open_fds") > 0


async def test_gauges_connections_and_outbox(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    m = server.metrics
    m.set_feed_stale(SYMBOL, True)
    m.set_feed_stale("ETH/USDT:USDT", False)
    m.set_mqtt_connected(True)
    m.reconnected("mqtt")
    m.reconnected("feed", 2)
    m.set_outbox(7, 12.5)
    text = await scrape(http, server)
    assert value(text, "guardbot_feed_stale", symbol=SYMBOL) == 1
    assert value(text, "guardbot_feed_stale", symbol="ETH/USDT:USDT") == 0
    assert value(text, "guardbot_mqtt_connected") == 1
    assert value(text, "guardbot_reconnects_total", component="mqtt") == 1
    assert value(text, "guardbot_reconnects_total", component="feed") == 2
    assert value(text, "guardbot_outbox_depth") == 7
    assert value(text, "guardbot_outbox_oldest_unsent_age_seconds") == 12.5

    m.set_outbox(0, None)
    m.set_feed_stale(SYMBOL, False)
    text = await scrape(http, server)
    assert value(text, "guardbot_outbox_depth") == 0
    assert value(text, "guardbot_outbox_oldest_unsent_age_seconds") == 0
    assert value(text, "guardbot_feed_stale", symbol=SYMBOL) == 0


async def test_sync_mirrors_cumulative_totals(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    m = server.metrics
    m.sync_reconnects("feed", 3)
    m.sync_reconnects("feed", 3)  # unchanged: nothing added
    m.sync_reconnects("feed", 5)
    m.sync_dropped(SYMBOL, {"non_numeric": 2})
    m.sync_dropped(SYMBOL, {"non_numeric": 4, "time_back": 1})
    text = await scrape(http, server)
    assert value(text, "guardbot_reconnects_total", component="feed") == 5
    assert value(text, "guardbot_ticks_dropped_total", symbol=SYMBOL, reason="non_numeric") == 4
    assert value(text, "guardbot_ticks_dropped_total", symbol=SYMBOL, reason="time_back") == 1

    m.sync_reconnects("feed", 1)  # a new feed object counts from 0 again: its 1 is new
    text = await scrape(http, server)
    assert value(text, "guardbot_reconnects_total", component="feed") == 6


async def test_sync_feed_status_reads_the_ccxt_feed_snapshot(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    m = server.metrics
    m.sync_feed_status({})  # a feed without a status: nothing happens
    status = {
        "mode": "ws",
        "reconnects": 2,
        "backlog": 7,
        "symbols": {
            SYMBOL: {"stale": False, "dropped": {"non_finite": 1}},
            ETH: {"stale": True, "dropped": {}},
        },
        "dropped": {"non_finite": 1},  # the sum over symbols: not counted twice
    }
    m.sync_feed_status(status)
    m.sync_feed_status(status)
    text = await scrape(http, server)
    assert value(text, "guardbot_reconnects_total", component="feed") == 2
    assert value(text, "guardbot_feed_backlog") == 7
    assert value(text, "guardbot_ticks_dropped_total", symbol=SYMBOL, reason="non_finite") == 1
    assert series(text, "guardbot_ticks_dropped_total") == [
        {"symbol": SYMBOL, "reason": "non_finite"}
    ]


async def test_alert_liquidation_and_refusal_counts_from_event_dicts(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    server.metrics.events(
        [
            {"type": "margin_alert", "account": "a", "severity": "warning", "level": "0.5"},
            {"type": "margin_alert", "account": "a", "severity": "critical", "level": "0.8"},
            {"type": "margin_alert", "account": "b", "severity": "critical", "level": "0.8"},
            {"type": "liquidation", "account": "b", "scope": "position", "symbol": ETH},
            {"type": "liquidation", "account": "b", "scope": "account", "symbol": BTC},
            {"type": "order_rejected", "account": "a", "code": "MARGIN_INSUFFICIENT"},
            {"type": "order_rejected", "account": "a", "code": "MARGIN_INSUFFICIENT"},
            {"type": "feed_stale", "account": None, "symbol": BTC},
            {"type": "fill", "account": "a"},  # not an alert: not counted
            {"type": "order_accepted", "account": "a"},
        ]
    )
    server.metrics.alert("margin_recovered", "info")
    text = await scrape(http, server)
    alerts = "guardbot_alerts_total"
    assert value(text, alerts, type="margin_alert", severity="warning") == 1
    assert value(text, alerts, type="margin_alert", severity="critical") == 2
    assert value(text, alerts, type="liquidation", severity="critical") == 2
    assert value(text, alerts, type="order_rejected", severity="warning") == 2
    assert value(text, alerts, type="feed_stale", severity="warning") == 1
    assert value(text, alerts, type="margin_recovered", severity="info") == 1
    assert {s["type"] for s in series(text, alerts)} == {
        "margin_alert",
        "liquidation",
        "order_rejected",
        "feed_stale",
        "margin_recovered",
    }
    liq = "guardbot_liquidations_total"
    assert value(text, liq, account="b", scope="position") == 1
    assert value(text, liq, account="b", scope="account") == 1
    assert value(text, "guardbot_orders_refused_total", code="MARGIN_INSUFFICIENT") == 2


async def test_accounts_replace_the_set_and_drop_closed_positions(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    m = server.metrics
    m.set_accounts(
        [
            MarginRow("a", None, Decimal("0.25")),
            ("b", None, Decimal(0)),
            ("b", ETH, Decimal("0.75")),
            ("c", BTC, None),  # no collateral left
        ],
        {"a": 2, "b": 1, "c": 1},
    )
    text = await scrape(http, server)
    ratio = "guardbot_margin_ratio"
    assert value(text, ratio, account="a", symbol="") == 0.25
    assert value(text, ratio, account="b", symbol="") == 0
    assert value(text, ratio, account="b", symbol=ETH) == 0.75
    assert value(text, ratio, account="c", symbol=BTC) == math.inf
    assert value(text, "guardbot_open_positions", account="a") == 2

    m.set_accounts([("a", None, Decimal("0.5"))], {"a": 0})
    text = await scrape(http, server)
    assert series(text, ratio) == [{"account": "a", "symbol": ""}]
    assert value(text, ratio, account="a", symbol="") == 0.5
    assert series(text, "guardbot_open_positions") == [{"account": "a"}]
    assert value(text, "guardbot_open_positions", account="a") == 0


def test_engine_margin_rows_and_events_from_a_real_engine() -> None:
    sim = Sim(
        accounts={
            "x": {"wallet": "10000", "default_margin_mode": "cross", "default_leverage": "10"},
            "iso": {"wallet": "10000", "default_margin_mode": "isolated", "default_leverage": "20"},
        }
    )
    sim.tick(30000)
    sim.tick(2000, symbol=ETH)
    sim.order("o1", "buy", "0.1", account="x")
    sim.order("o2", "sell", 1, symbol=ETH, account="iso")
    sim.order("o3", "buy", 1, account="x", reduceOnly=True)  # would increase: refused

    rows, counts = engine_margin_rows(sim.engine)
    assert counts == {"iso": 1, "x": 1}
    assert [(r.account, r.symbol) for r in rows] == [("iso", None), ("iso", ETH), ("x", None)]
    iso_ratio = rows[1].margin_ratio
    assert iso_ratio is not None and Decimal(0) < iso_ratio < 1
    assert rows[0].margin_ratio == 0  # no cross position

    distances = {
        (r.account, r.symbol, r.side): r.distance for r in engine_liquidation_rows(sim.engine)
    }
    assert set(distances) == {("iso", ETH, "short"), ("x", BTC, "long")}
    iso = sim.engine.views(sim.engine.accounts["iso"])[0][0]
    assert iso.liquidation_price is not None
    assert distances["iso", ETH, "short"] == (iso.liquidation_price - 2000) / 2000  # 20x: ~5 %
    before = Metrics(process_collector=False)
    before.set_liquidation_distances(engine_liquidation_rows(sim.engine))
    text = generate_latest(before.registry).decode()
    gauge = "guardbot_liquidation_distance_ratio"
    assert value(text, gauge, account="iso", symbol=ETH, side="short") == pytest.approx(
        float(distances["iso", ETH, "short"])
    )

    sim.tick(2200, symbol=ETH)  # +10 % against a 20x short: the isolated position is liquidated
    before.set_liquidation_distances(engine_liquidation_rows(sim.engine))
    text = generate_latest(before.registry).decode()
    assert {"account": "iso", "symbol": ETH, "side": "short"} not in series(text, gauge)
    metrics = Metrics(process_collector=False)
    metrics.events(sim.events)
    metrics.set_accounts(*engine_margin_rows(sim.engine))
    text = generate_latest(metrics.registry).decode()
    assert value(text, "guardbot_liquidations_total", account="iso", scope="position") == 1
    assert value(text, "guardbot_orders_refused_total", code="REDUCE_ONLY_WOULD_INCREASE_POSITION")
    assert value(text, "guardbot_open_positions", account="iso") == 0
    assert {"account": "iso", "symbol": ETH} not in series(text, "guardbot_margin_ratio")


async def test_tick_to_publish_counts_the_first_ack_of_a_step_only(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    m = server.metrics
    m.publish_expected(7, 100.0)
    m.publish_expected(7, 100.5)  # the first receive time stays
    m.publish_expected(8, 100.0)
    assert m.publish_acked(7, 100.003) == pytest.approx(0.003)
    assert m.publish_acked(7, 100.004) is None  # a later message of the same step
    assert m.publish_acked(99, 101.0) is None  # never expected (e.g. from before a restart)
    assert m.publish_acked(8, 102.0) == pytest.approx(2.0)
    m.published(7.0)
    text = await scrape(http, server)
    bucket = "guardbot_tick_to_publish_seconds_bucket"
    assert value(text, bucket, le="0.001") == 0
    assert value(text, bucket, le="0.005") == 1
    assert value(text, bucket, le="2.5") == 2
    assert value(text, bucket, le="5.0") == 2
    assert value(text, bucket, le="+Inf") == 3
    assert value(text, "guardbot_tick_to_publish_seconds_count") == 3


def test_pending_publish_is_bounded() -> None:
    m = Metrics(process_collector=False, max_pending_publish=3)
    for seq in range(5):
        m.publish_expected(seq, float(seq))
    assert m.publish_acked(0, 10.0) is None  # evicted, the oldest first
    assert m.publish_acked(1, 10.0) is None
    assert m.publish_acked(4, 10.0) == 6.0
    with pytest.raises(ValueError, match="max_pending_publish"):
        Metrics(max_pending_publish=0)


async def test_refresh_hooks_run_before_each_scrape(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    m = server.metrics
    depth = [3]

    async def outbox() -> None:
        await asyncio.sleep(0)
        m.set_outbox(depth[0], 1.0)

    m.add_refresh_hook(outbox)
    m.add_refresh_hook(lambda: m.set_mqtt_connected(True))
    text = await scrape(http, server)
    assert value(text, "guardbot_outbox_depth") == 3
    assert value(text, "guardbot_mqtt_connected") == 1
    depth[0] = 0
    assert value(await scrape(http, server), "guardbot_outbox_depth") == 0


async def test_a_failing_or_hanging_hook_leaves_the_rest_of_the_scrape(
    http: aiohttp.ClientSession,
) -> None:
    m = Metrics(process_collector=False)
    never = asyncio.Event()

    def broken() -> None:
        raise OSError("journal gone")

    async def hangs() -> None:
        await never.wait()

    m.add_refresh_hook(broken)
    m.add_refresh_hook(hangs)
    m.add_refresh_hook(lambda: m.set_outbox(5, 2.0))
    async with MetricsServer(m, "127.0.0.1", 0, refresh_timeout=0.05) as srv:
        text = await scrape(http, srv)
    assert value(text, "guardbot_metrics_refresh_errors_total") == 2
    assert value(text, "guardbot_outbox_depth") == 5


def test_registries_are_per_instance() -> None:
    one, two = Metrics(symbols=[SYMBOL]), Metrics(symbols=[SYMBOL])
    one.tick_received(SYMBOL)
    received = "guardbot_ticks_received_total"
    assert value(generate_latest(one.registry).decode(), received, symbol=SYMBOL) == 1
    assert value(generate_latest(two.registry).decode(), received, symbol=SYMBOL) == 0
    assert "guardbot_" not in generate_latest(REGISTRY).decode()


# -- HTTP ---------------------------------------------------------------------------------------


async def test_content_type_is_negotiated(
    server: MetricsServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url) as response:
        assert response.headers["Content-Type"] == CONTENT_TYPE_PLAIN_0_0_4
    async with http.get(server.url, headers={"Accept": "text/plain; version=1.0.0"}) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=1.0.0")
    openmetrics = "application/openmetrics-text; version=1.0.0"
    async with http.get(server.url, headers={"Accept": openmetrics}) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await response.text()).endswith("# EOF\n")


async def test_other_paths_and_methods(server: MetricsServer, http: aiohttp.ClientSession) -> None:
    base = f"http://127.0.0.1:{server.port}"
    for path in ("/", "/metric", "/metrics/x", "/favicon.ico"):
        async with http.get(base + path) as response:
            assert response.status == 404, path
    async with http.post(base + "/metrics") as response:
        assert response.status == 405
    async with http.head(base + "/metrics") as response:
        assert response.status == 200


async def test_port_zero_picks_a_free_port_and_close_releases_it() -> None:
    srv = MetricsServer(Metrics(process_collector=False), "127.0.0.1", 0)
    with pytest.raises(RuntimeError, match="not started"):
        _ = srv.port
    async with srv:
        port = srv.port
        assert port > 0
        assert srv.url == f"http://127.0.0.1:{port}/metrics"
        with pytest.raises(RuntimeError, match="already started"):
            await srv.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = srv.port
    # released: the same port can be bound again at once
    async with MetricsServer(Metrics(process_collector=False), "127.0.0.1", port) as again:
        assert again.port == port


async def test_port_in_use_is_a_config_error(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(ConfigError) as info:
        async with MetricsServer(Metrics(process_collector=False), "127.0.0.1", port):
            pytest.fail("bound a port in use")
    message = str(info.value)
    assert message.startswith(f"{LISTEN_KEY}: cannot listen on 127.0.0.1:{port}: ")
    assert "port 0" in message


async def test_two_servers_on_one_port(server: MetricsServer) -> None:
    with pytest.raises(ConfigError, match=r"metrics\.listen: cannot listen"):
        async with MetricsServer(Metrics(process_collector=False), "127.0.0.1", server.port):
            pytest.fail("bound a port in use")


async def test_unresolvable_host_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver answers "no such name" here: asking the real one would send a DNS query off
    # this machine (and hang for the resolver's timeout without a network).
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(ConfigError, match=r"metrics\.listen: cannot resolve"):
        async with MetricsServer(Metrics(process_collector=False), "no-such-host.invalid", 0):
            pytest.fail("resolved .invalid")


async def test_ipv6_loopback(http: aiohttp.ClientSession) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    async with MetricsServer(Metrics(process_collector=False), "::1", 0) as srv:
        assert srv.url == f"http://[::1]:{srv.port}/metrics"
        assert "guardbot_build_info" in await scrape(http, srv)


# -- the listen address -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        (DEFAULT_LISTEN, ("127.0.0.1", 9108)),
        ("[::1]:9108", ("::1", 9108)),
        ("0.0.0.0:9108", ("0.0.0.0", 9108)),
        ("[::]:80", ("::", 80)),
        ("localhost:0", ("localhost", 0)),
        ("metrics.internal-net.example:65535", ("metrics.internal-net.example", 65535)),
        ("  127.0.0.1:9108\n", ("127.0.0.1", 9108)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected
    assert parse_listen(format_listen(*expected)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("127.0.0.1", "has no port"),
        (":9108", "has no host"),
        ("::1:9108", r"brackets, e\.g\. \[::1\]:9108"),
        ("[::1]", r"the form \[ipv6\]:port"),
        ("[::1]9108", r"the form \[ipv6\]:port"),
        ("[127.0.0.1]:9108", "not an IPv6 address"),
        ("127.0.0.1:", "port '' is not a number"),
        ("127.0.0.1:http", "port 'http' is not a number"),
        ("127.0.0.1:65536", "port '65536' is not a number from 0 to 65535"),
        ("127.0.0.1:-1", "port '-1'"),
        ("http://127.0.0.1:9108", "no scheme or path"),
        ("127.0.0.1:9108/metrics", "no scheme or path"),
        ("bad_host:9108", "not an IP address or host name"),
        ("-x.example:9108", "not an IP address or host name"),
    ],
)
def test_parse_listen_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^metrics\.listen: .*{message}"):
        parse_listen(text)


def test_parse_listen_names_the_given_key() -> None:
    with pytest.raises(ConfigError, match=r"^prometheus\.listen: "):
        parse_listen("nope", key="prometheus.listen")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("metrics.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_every_guardbot_metric_is_documented() -> None:
    # docs/metrics.md is the operator's reference: a metric missing there is one nobody alerts on.
    docs = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text("utf-8")
    names: list[str] = []
    for family in Metrics(process_collector=False).registry.collect():
        for sample in family.samples:
            if sample.name.startswith("guardbot_") and not sample.name.endswith(
                ("_created", "_bucket", "_count", "_sum")
            ):
                names.append(sample.name)
        if family.type == "histogram" and family.name.startswith("guardbot_"):
            names.append(family.name)
    assert "guardbot_feed_backlog" in names and "guardbot_outbox_depth" in names
    missing = sorted({n for n in names if f"`{n}`" not in docs})
    assert missing == [], f"not in docs/metrics.md: {missing}"


def test_engine_margin_rows_keep_the_two_isolated_sides_of_a_hedged_symbol_apart() -> None:
    sim = Sim(wallet=10_000, mode="isolated", leverage=20, position_mode="hedged")
    sim.tick(30000)
    sim.order("l", "buy", "0.1", positionSide="long")
    sim.order("s", "sell", "0.1", positionSide="short")
    rows, counts = engine_margin_rows(sim.engine)
    assert counts == {"a": 2}
    assert [r.symbol for r in rows] == [None, f"{BTC}#long", f"{BTC}#short"]
