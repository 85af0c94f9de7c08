"""The Grafana dashboard, its provisioning and the Prometheus scrape config in deploy/.

The dashboard may only chart metrics the daemon exports: every ``guardbot_*``/``process_*``
name in a query must be a series name of :class:`~guardbot.metrics.prometheus.Metrics`'
registry (counters with ``_total``, histograms with ``_bucket``/``_sum``/``_count``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from guardbot.metrics.prometheus import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "guardbot.json"
_NAME = re.compile(r"\b((?:guardbot|process)_[a-z0-9_]+)\b")


def exported_names() -> set[str]:
    """Every series name the daemon's registry can expose."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        elif family.type == "info":
            names.add(f"{family.name}_info")
        else:
            names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def queries(dashboard: dict[str, Any]) -> list[str]:
    found = [
        str(target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    found += [str(v["query"]) for v in dashboard["templating"]["list"] if "query" in v]
    return found


def test_the_dashboard_charts_only_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = queries(dashboard)
    assert len(exprs) >= 15
    used = {name for expr in exprs for name in _NAME.findall(expr)}
    missing = sorted(used - exported_names())
    assert missing == [], f"the dashboard queries metrics the daemon does not export: {missing}"
    # What issue 15 asks the dashboard to show.
    for wanted in (
        "guardbot_margin_ratio",
        "guardbot_liquidation_distance_ratio",
        "guardbot_alerts_total",
        "guardbot_feed_stale",
        "guardbot_feed_lag_seconds",
        "guardbot_engine_tick_seconds_bucket",
        "guardbot_tick_to_publish_seconds_bucket",
        "guardbot_outbox_depth",
        "guardbot_notify_backlog",
    ):
        assert wanted in used, wanted


def test_the_check_can_fail() -> None:
    assert "guardbot_margin_ratios" not in exported_names()
    assert "guardbot_alerts" not in exported_names()  # a counter needs its _total


def test_panels_use_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    source = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )
    [datasource] = source["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    uids = {
        str(item["datasource"]["uid"])
        for panel in dashboard["panels"]
        for item in [panel, *panel.get("targets", [])]
        if "datasource" in item
    }
    assert uids == {datasource["uid"]}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_compose_monitoring_profile() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"], name
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"])
    for name in ("guardbot", "mosquitto"):
        assert "profiles" not in services[name]  # a plain `up` still starts them
    mounts = services["grafana"]["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "guardbot.yaml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert (
        "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in (services["prometheus"]["volumes"])
    )


def test_prometheus_scrapes_the_daemon_where_it_listens() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    listen = compose["services"]["guardbot"]["environment"]["GUARDBOT_METRICS_LISTEN"]
    port = listen.rsplit(":", 1)[1]
    assert not listen.startswith("127.") and not listen.startswith("[::1]")  # reachable
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"guardbot:{port}"]
