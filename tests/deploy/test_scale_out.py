"""Outgrowing one machine: deploy/guardbot@.service and deploy/compose.scale.yaml.

The template unit must stay the single-instance unit with the instance name put in (same
hardening, watchdog, restart policy), and systemd must accept an instance of it. The compose
example must give each daemon its own instance name, data volume and metrics port, load the
shipped configuration for each with its environment, and be scraped by Prometheus.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from guardbot.config import load_config
from tests.deploy.compose import assert_compose_accepts
from tests.deploy.test_systemd_unit import (
    EXEC_START,
    an_existing_executable,
    parse_unit,
    verify,
)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TEMPLATE = DEPLOY / "guardbot@.service"
#: The keys the template changes: everything else is the single unit's, byte for byte.
PER_INSTANCE = {
    "Description",
    "StateDirectory",
    "WorkingDirectory",
    "Environment",
    "EnvironmentFile",
    "ExecStart",
}


def test_the_template_is_the_unit_with_the_instance_put_in() -> None:
    single = parse_unit((DEPLOY / "guardbot.service").read_text(encoding="utf-8"))
    template = parse_unit(TEMPLATE.read_text(encoding="utf-8"))
    assert set(single) == set(template)
    for section in single:
        same = [(k, v) for k, v in single[section] if k not in PER_INSTANCE]
        assert [(k, v) for k, v in template[section] if k not in PER_INSTANCE] == same, section
    service = dict(template["Service"])
    assert service["ExecStart"] == f"{EXEC_START} run -c /etc/guardbot/%i.toml"
    assert service["StateDirectory"] == "guardbot/%i"
    assert service["WorkingDirectory"] == "/var/lib/guardbot/%i"
    environment = [v for k, v in template["Service"] if k == "Environment"]
    assert "GUARDBOT_GUARDBOT_DATA_DIR=/var/lib/guardbot/%i" in environment
    assert "GUARDBOT_GUARDBOT_INSTANCE=%i" in environment
    files = [v for k, v in template["Service"] if k == "EnvironmentFile"]
    assert files == ["-/etc/guardbot/guardbot.env", "-/etc/guardbot/%i.env"]  # own one wins


def test_systemd_accepts_an_instance_of_the_template(tmp_path: Path) -> None:
    text = TEMPLATE.read_text(encoding="utf-8").replace(
        f"ExecStart={EXEC_START} ", f"ExecStart={an_existing_executable()} "
    )
    path = tmp_path / "guardbot@binance.service"
    path.write_text(text, encoding="utf-8")
    code, diagnostics = verify(path)
    assert (code, diagnostics) == (0, [])


def scale() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.scale.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def daemons() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in scale()["services"].items()
        if name.startswith("guardbot-")
    }


def test_each_daemon_has_its_own_instance_data_and_metrics_port() -> None:
    found = daemons()
    assert len(found) >= 2
    instances = [s["environment"]["GUARDBOT_GUARDBOT_INSTANCE"] for s in found.values()]
    volumes = [s["volumes"][0].split(":")[0] for s in found.values()]
    host_ports = [s["ports"][0].rsplit(":", 1)[0] for s in found.values()]
    for values in (instances, volumes, host_ports):
        assert len(set(values)) == len(values), values
    for name, service in found.items():
        assert service["volumes"][0].endswith(":/var/lib/guardbot")
        assert service["ports"][0].startswith("127.0.0.1:")
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        assert name == f"guardbot-{service['environment']['GUARDBOT_GUARDBOT_INSTANCE']}"
        for key, value in service["environment"].items():
            if re.search(r"PASSWORD|TOKEN|SECRET|API_KEY", key):
                assert str(value).startswith("${"), key  # from deploy/.env, never committed


@pytest.mark.parametrize("service", sorted(daemons()))
def test_the_shipped_configuration_loads_for_each_daemon(service: str) -> None:
    environment = daemons()[service]["environment"]
    env = {k: str(v) for k, v in environment.items() if not str(v).startswith("${")}
    env["GUARDBOT_MQTT_PASSWORD"] = "from-dot-env"
    config = load_config(DEPLOY / "guardbot.toml", env)
    assert config.guardbot.instance == environment["GUARDBOT_GUARDBOT_INSTANCE"]
    assert config.exchange.id == environment["GUARDBOT_EXCHANGE_ID"]
    assert config.topic_base == f"guardbot/{config.guardbot.instance}"  # the ACL's guardbot/+/
    assert config.metrics.port == 9108


def test_prometheus_scrapes_every_daemon() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.scale.yml").read_text())
    [job] = config["scrape_configs"]
    targets = job["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{name}:9108" for name in daemons())
    prometheus = scale()["services"]["prometheus"]
    assert (
        "./prometheus/prometheus.scale.yml:/etc/prometheus/prometheus.yml:ro"
        in (prometheus["volumes"])
    )


def test_docker_compose_config_accepts_the_scale_out_file() -> None:
    assert_compose_accepts(DEPLOY / "compose.scale.yaml")
