"""deploy/compose.yaml and compose.scale.yaml checked without Docker, and their monitoring profile
run for real: Prometheus (Debian package prometheus) with deploy/prometheus's scrape config,
pointed at a running daemon, and every query of the Grafana dashboard evaluated by it.

tests/deploy/compose.py checks a compose file as ``docker compose config`` does (interpolation
from deploy/env.example filled in, the Compose Specification's JSON schema, short syntaxes,
references); the tests here show that it refuses what compose refuses. The Prometheus tests skip
without the package, unless ``GUARDBOT_REQUIRE_PROMETHEUS=1`` (CI, which installs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import yaml

from guardbot.config import load_config
from guardbot.daemon.service import Daemon
from guardbot.metrics.prometheus import Metrics, MetricsServer
from tests.broker import Mosquitto, _free_port
from tests.daemon.test_daemon import SEED, EventFeed, write_config
from tests.deploy.compose import compose_problems, filled_in_env, load
from tests.deploy.test_monitoring import DASHBOARD

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
FILES = {
    "compose.yaml": DEPLOY / "prometheus" / "prometheus.yml",
    "compose.scale.yaml": DEPLOY / "prometheus" / "prometheus.scale.yml",
}
LIMIT = 30.0


# --- the checker refuses what docker compose refuses ----------------------------------------------


def mutated(tmp_path: Path, change: str, by: str) -> Path:
    """deploy/compose.yaml with one text change (checked with deploy/ as the project folder)."""
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert change in text, change
    path = tmp_path / "compose.yaml"
    path.write_text(text.replace(change, by, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "by", "problem"),
    [
        ("    environment:\n      GUARDBOT_METRICS", "    enviroment:\n      GUARDBOT_METRICS",
         "services.guardbot: 'enviroment' does not match any of the regexes"),
        ("services:\n", "servces:\n", "(top): 'servces' does not match any of the regexes"),
        ('"127.0.0.1:9108:9108"', '"127.0.0.1:91o8:9108"', "not [[IP:]HOST:]PORT"),
        ("guardbot-data:/var/lib/guardbot", "guardbot-dat:/var/lib/guardbot",
         "named volume 'guardbot-dat' is not declared"),
        ("stop_grace_period: 40s", "stop_grace_period: 40 seconds", "no duration"),
        ("restart: unless-stopped", "restart: sometimes", "unknown policy"),
        ("    depends_on:\n      - mosquitto\n    # /metrics",
         "    depends_on:\n      - prometheus\n    # /metrics", "which only the profiles"),
        ("name: guardbot", "name: GuardBot", "not a valid project name"),
        ("/mosquitto/config/acl:ro", "/mosquitto/config/acl:readonly", "unknown mode"),
        ('profiles: ["monitoring"]', "profiles: monitoring", "is not of type 'array'"),
    ],
)  # fmt: skip
def test_the_checker_refuses_what_compose_refuses(
    tmp_path: Path, change: str, by: str, problem: str
) -> None:
    path = mutated(tmp_path, change, by)
    problems = compose_problems(path, filled_in_env(DEPLOY / "compose.yaml"), DEPLOY)
    assert any(problem in p for p in problems), problems


def test_a_required_variable_left_empty_is_refused() -> None:
    env = filled_in_env(DEPLOY / "compose.yaml")
    assert compose_problems(DEPLOY / "compose.yaml", env) == []
    env["GUARDBOT_MQTT_PASSWORD"] = ""  # env.example copied but not filled in
    [problem] = compose_problems(DEPLOY / "compose.yaml", env)
    assert "required variable GUARDBOT_MQTT_PASSWORD is missing a value" in problem


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_variable_the_file_uses_is_in_env_example(name: str) -> None:
    text = (DEPLOY / name).read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([_A-Za-z][_A-Za-z0-9]*)", text))
    assert used <= set(filled_in_env(DEPLOY / name)), used - set(filled_in_env(DEPLOY / name))


# --- the monitoring profile -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FILES))
def test_prometheus_scrapes_each_daemon_where_it_listens(name: str) -> None:
    """Every target of the profile's scrape config is a daemon service of the same file, at the
    port its metrics listen on inside the container, on every interface; and each daemon is a
    target."""
    document = load(DEPLOY / name, filled_in_env(DEPLOY / name))
    services = document["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    mounted = f"./prometheus/{FILES[name].name}:/etc/prometheus/prometheus.yml:ro"
    assert mounted in prometheus["volumes"]
    config = yaml.safe_load(FILES[name].read_text(encoding="utf-8"))
    targets = [
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ]
    daemons = {
        n: s for n, s in services.items() if "GUARDBOT_METRICS_LISTEN" in s.get("environment", {})
    }
    assert sorted(targets) == sorted(
        f"{n}:{s['environment']['GUARDBOT_METRICS_LISTEN'].rsplit(':', 1)[1]}"
        for n, s in daemons.items()
    )
    for service_name, service in daemons.items():
        environment = {k: str(v) for k, v in service["environment"].items()}
        config_loaded = load_config(DEPLOY / "guardbot.toml", environment)
        assert config_loaded.metrics.enabled
        assert config_loaded.metrics.host == "0.0.0.0", service_name  # reachable from Prometheus
        # The host only sees it on its loopback, at the container's metrics port.
        [port] = service["ports"]
        assert port.startswith("127.0.0.1:") and port.endswith(f":{config_loaded.metrics.port}")
        assert "profiles" not in service  # a plain `up` starts the daemons


async def test_metrics_on_every_interface_answer() -> None:
    """The container's listen address, 0.0.0.0, binds and serves (here on a free port)."""
    async with (
        MetricsServer(Metrics(), "0.0.0.0", 0) as server,
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{server.port}/metrics") as response,
    ):
        assert response.status == 200
        assert "guardbot_build_info" in await response.text()


# --- a real Prometheus ----------------------------------------------------------------------------


def prometheus_binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed (Debian package prometheus)"
        if os.environ.get("GUARDBOT_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(reason + " and GUARDBOT_REQUIRE_PROMETHEUS=1")
        pytest.skip(reason)
    return found


@pytest.mark.parametrize("name", sorted(FILES))
def test_promtool_accepts_the_scrape_configs(name: str) -> None:
    promtool = prometheus_binary("promtool")
    done = subprocess.run(
        [promtool, "check", "config", str(FILES[name])], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_alerting_rules_of_docs_metrics(tmp_path: Path) -> None:
    promtool = prometheus_binary("promtool")
    text = (DEPLOY.parent / "docs" / "metrics.md").read_text(encoding="utf-8")
    [rules] = re.findall(r"## Example alerting rules\n\n```yaml\n(.*?)```", text, flags=re.S)
    path = tmp_path / "rules.yml"
    path.write_text(rules, encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def prometheus_bin() -> str:
    return prometheus_binary("prometheus")


class Prometheus:
    """``prometheus`` on a loopback port with ``config``, its data in ``directory``."""

    def __init__(self, binary: str, config: dict[str, Any], directory: Path) -> None:
        self.port = _free_port()
        path = directory / "prometheus.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.log = directory / "prometheus.log"
        self.argv = [
            binary,
            f"--config.file={path}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Prometheus:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _alive(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()

    async def ready(self, http: aiohttp.ClientSession) -> None:
        """Until ``/-/ready`` answers 200: before that the port may be closed, and once open the
        API answers 503 (text/plain "Service Unavailable") while the TSDB opens and the WAL is
        replayed, which takes seconds on a loaded machine. Bounded by :func:`until`."""

        async def answered() -> bool:
            try:
                async with http.get(f"{self.url}/-/ready") as response:
                    await response.read()
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                self._alive()
                return False

        await until(answered, "prometheus /-/ready")

    async def api(self, http: aiohttp.ClientSession, path: str, **params: str) -> Any:
        """The ``data`` of a successful API answer; None while Prometheus is not up (or not
        ready: 503) yet. An answer that is not ``success`` (a query Prometheus refuses) fails."""
        url = f"{self.url}/api/v1/{path}?{urlencode(params)}"
        try:
            async with http.get(url) as response:
                if response.status == 503:
                    await response.read()
                    return None
                body = await response.json()
        except aiohttp.ClientConnectionError:
            self._alive()
            return None
        assert body["status"] == "success", (params, body)
        return body["data"]


def loopback_scrape_config(name: str, target: str) -> dict[str, Any]:
    """The shipped scrape config with its targets on loopback and a 1 s interval."""
    config = yaml.safe_load(FILES[name].read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [target]
    return config


async def until(probe: Any, what: str = "", limit_s: float = LIMIT) -> Any:
    """``await probe()`` until it returns something truthy, every 0.1 s for at most ``limit_s``
    (the caller's timeout bounds the whole test too)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not (found := await probe()):
        assert loop.time() < deadline, f"timed out after {limit_s} s waiting for {what or probe}"
        await asyncio.sleep(0.1)
    return found


@pytest.fixture
def daemon_config(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Path]:
    yield write_config(tmp_path, mosquitto)


async def test_prometheus_scrapes_a_running_daemon_and_answers_the_dashboard(
    tmp_path: Path, daemon_config: Path, prometheus_bin: str
) -> None:
    config = load_config(daemon_config, {})
    feed = EventFeed()
    daemon = Daemon(config, feed_factory=lambda _c: feed, initial_commands=SEED)
    stop = asyncio.Event()
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    # each wait below is bounded by LIMIT; the test as a whole by three of them (a loaded machine
    # takes seconds to start Prometheus, then up to a scrape interval or two for each sample)
    async with asyncio.timeout(3 * LIMIT), aiohttp.ClientSession() as http:
        task = asyncio.create_task(daemon.run(stop))
        try:
            await daemon.ready.wait()
            await feed.pushed("60000", "59000", "58500")  # a position, alerts, margin ratios
            assert daemon.metrics_server is not None
            target = f"127.0.0.1:{daemon.metrics_server.port}"
            scrape = loopback_scrape_config("compose.yaml", target)
            with Prometheus(prometheus_bin, scrape, tmp_path) as prometheus:
                await prometheus.ready(http)

                async def scraped() -> Any:
                    data = await prometheus.api(http, "targets")
                    active = data["activeTargets"] if data else []
                    return [t for t in active if t["health"] == "up"]

                [up] = await until(scraped, "the target's health up")
                assert up["labels"]["job"] == "guardbot"
                assert up["scrapeUrl"] == f"http://{target}/metrics"

                async def query(expr: str) -> Any:
                    data = await prometheus.api(http, "query", query=expr)
                    return data["result"] if data else None

                # a sample of each once the target is up (the first scrape may still be on its
                # way into the head block)
                [build] = await until(lambda: query("guardbot_build_info"), "guardbot_build_info")
                assert build["metric"]["instance"] == target
                ratio = 'guardbot_margin_ratio{account="demo"}'
                ratios = await until(lambda: query(ratio), ratio)
                assert 0 < float(ratios[0]["value"][1]) < 1
                # Every query of the dashboard, with its variables at "all", is valid PromQL
                # over what the daemon exports; the plain gauges have data.
                exprs = [str(t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
                assert len(exprs) >= 20
                for expr in exprs:
                    expr = expr.replace("$job", ".*").replace("$instance", ".*")
                    # (an answer, empty or not: a refused query fails in api())
                    assert await until(
                        lambda e=expr: prometheus.api(http, "query", query=e), expr
                    ), expr
                for gauge in ("guardbot_outbox_depth", "guardbot_notify_backlog"):
                    assert await until(lambda g=gauge: query(g), gauge), gauge
        finally:
            stop.set()
            assert await task == 0
