"""deploy/Dockerfile, deploy/compose.yaml and the files they name agree with each other and with
guardbot itself: paths, ports, users, the health check's arguments, no secrets committed.

Building the image needs a Docker daemon, which tests do not assume. The compose file is checked
as ``docker compose config`` checks it (tests/deploy/compose.py: interpolation, the Compose
Specification's schema, short syntaxes, references), and by ``docker compose config`` itself
where the compose plugin is installed.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml  # PyYAML, installed with amqtt: a missing one must fail, not skip

from guardbot.cli.health import add_arguments
from guardbot.config import load_config
from tests.deploy.compose import assert_compose_accepts

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DATA_DIR = "/var/lib/guardbot"
CONFIG = "/etc/guardbot/guardbot.toml"


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        name, _, args = pending.partition(" ")
        instructions.append((name.upper(), args.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def runtime_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def mosquitto_conf() -> dict[str, str]:
    conf: dict[str, str] = {}
    for line in (DEPLOY / "mosquitto" / "mosquitto.conf").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf.setdefault(key, value.strip())
    return conf


# --- Dockerfile ----------------------------------------------------------------------------------


def test_base_image_and_non_root_user() -> None:
    instructions = dockerfile_instructions()
    args = dict(a.split("=", 1) for name, a in instructions if name == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    users = [a for name, a in runtime_stage() if name == "USER"]
    assert users == ["guardbot:guardbot"]


def test_data_volume_and_environment() -> None:
    stage = runtime_stage()
    assert ("VOLUME", f'["{DATA_DIR}"]') in stage
    env = " ".join(a for name, a in stage if name == "ENV")
    assert f"GUARDBOT_GUARDBOT_DATA_DIR={DATA_DIR}" in env.split()
    assert "GUARDBOT_GUARDBOT_LOG_FORMAT=json" in env.split()


def test_entrypoint_runs_the_shipped_configuration() -> None:
    stage = runtime_stage()
    assert ("COPY", f"deploy/guardbot.toml {CONFIG}") in stage
    assert ("ENTRYPOINT", '["guardbot"]') in stage
    assert ("CMD", f'["run", "-c", "{CONFIG}"]') in stage


def test_healthcheck_is_guardbot_health_with_valid_arguments() -> None:
    [check] = [a for name, a in runtime_stage() if name == "HEALTHCHECK"]
    options, _, command = check.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    words = shlex.split(command)
    assert words[:2] == ["guardbot", "health"]
    assert words[-3:] == ["||", "exit", "1"]  # Docker reserves exit status 2
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = parser.parse_args(words[2:-3])
    assert parsed.config == CONFIG
    # The check must end before Docker's own --timeout kills it.
    match = re.search(r"--timeout=(\d+)s", options)
    assert match is not None
    docker_timeout = int(match.group(1))
    assert parsed.timeout + 5 <= docker_timeout


def test_build_context_allows_what_the_build_copies() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for name, args in dockerfile_instructions():
        if name == "COPY" and not args.startswith("--from"):
            *sources, _destination = args.split()
            for source in (s.rstrip("/") for s in sources):
                assert source in allowed, f"COPY {source}: excluded by Dockerfile.dockerignore"
                assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"


# --- compose.yaml --------------------------------------------------------------------------------


def test_broker_uses_the_shipped_files() -> None:
    mosquitto = compose()["services"]["mosquitto"]
    assert mosquitto["image"] == "eclipse-mosquitto:2"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in mosquitto["volumes"]}
    conf = mosquitto_conf()
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./mosquitto/mosquitto.conf"
    # The files mosquitto.conf names are the ones compose mounts.
    assert mounts[conf["acl_file"]] == "./mosquitto/acl"
    assert mounts[conf["password_file"]] == "./mosquitto/passwd"
    assert conf["persistence_location"].rstrip("/") in mounts
    for source in mounts.values():
        if source.startswith("./") and not source.endswith("/passwd"):
            assert (DEPLOY / source).is_file(), source
    assert conf["allow_anonymous"] == "false"


def test_guardbot_points_at_the_broker_service() -> None:
    services = compose()["services"]
    guardbot = services["guardbot"]
    assert (REPO / guardbot["build"]["dockerfile"]) == DEPLOY / "Dockerfile"
    assert (DEPLOY / guardbot["build"]["context"]).resolve() == REPO
    env = guardbot["environment"]
    url = urlsplit(env["GUARDBOT_MQTT_URL"])
    assert url.hostname == "mosquitto" and url.hostname in services
    assert url.port == int(mosquitto_conf()["listener"])
    assert env["GUARDBOT_MQTT_USERNAME"] == "guardbot"
    assert f"guardbot-data:{DATA_DIR}" in guardbot["volumes"]


def test_no_secret_is_committed() -> None:
    env = compose()["services"]["guardbot"]["environment"]
    for key, value in env.items():
        if re.search(r"PASSWORD|TOKEN|SECRET|API_KEY", key):
            assert re.fullmatch(r"\$\{" + key + r"(:\?[^}]*|:-)\}", value), key
    example = (DEPLOY / "env.example").read_text(encoding="utf-8")
    for line in example.splitlines():
        if line and not line.startswith("#"):
            assert line.endswith("="), f"env.example must not hold a value: {line}"
    assert not (DEPLOY / "mosquitto" / "passwd").exists() or "/mosquitto/passwd" in (
        DEPLOY / ".gitignore"
    ).read_text(encoding="utf-8")


def test_shipped_configuration_loads_with_the_compose_environment() -> None:
    env = {
        key: value
        for key, value in compose()["services"]["guardbot"]["environment"].items()
        if not value.startswith("${")
    }
    env.update(
        {
            "GUARDBOT_MQTT_PASSWORD": "from-dot-env",
            "GUARDBOT_GUARDBOT_DATA_DIR": DATA_DIR,
            "GUARDBOT_GUARDBOT_LOG_FORMAT": "json",
        }
    )
    config = load_config(DEPLOY / "guardbot.toml", env)
    assert config.mqtt.url == "mqtt://mosquitto:1883"
    assert config.mqtt.username == "guardbot"
    assert config.mqtt.password is not None
    assert config.mqtt.embedded_broker == "never"
    assert config.guardbot.data_dir == Path(DATA_DIR)
    assert config.mqtt.topic_prefix == "guardbot"  # the prefix the ACL is written for


def uncommented(text: str, *tables: str) -> str:
    """``text`` with the commented-out ``# [table]`` blocks of ``tables`` uncommented (up to the
    next blank line), as the comments above them tell the operator to do."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("# [") and line[2:].strip() in {f"[{t}]" for t in tables}:
            inside = True
        elif not line.strip():
            inside = False
        lines.append(line[2:] if inside and line.startswith("# ") else line)
    return "\n".join(lines) + "\n"


def test_the_optional_tables_of_the_shipped_configuration_load(tmp_path: Path) -> None:
    """Uncommenting [notify] and [homeassistant] in deploy/guardbot.toml, with the variable the
    compose file passes on, gives notifications and discovery."""
    text = uncommented(
        (DEPLOY / "guardbot.toml").read_text(encoding="utf-8"), "notify", "homeassistant"
    )
    assert "\n[notify]\n" in text and "\n[homeassistant]\n" in text
    path = tmp_path / "guardbot.toml"
    path.write_text(text, encoding="utf-8")
    env = compose()["services"]["guardbot"]["environment"]
    assert env["GUARDBOT_NOTIFY_URLS"] == "${GUARDBOT_NOTIFY_URLS:-}"
    config = load_config(
        path, {"GUARDBOT_MQTT_PASSWORD": "x", "GUARDBOT_NOTIFY_URLS": "ntfy://guardbot-test"}
    )
    assert config.notify.urls is not None and config.notify.urls.reveal() == "ntfy://guardbot-test"
    assert config.homeassistant.enabled is True
    # Commented out, the same variable (compose passes it, maybe empty) is harmless.
    as_shipped = load_config(
        DEPLOY / "guardbot.toml", {"GUARDBOT_MQTT_PASSWORD": "x", "GUARDBOT_NOTIFY_URLS": ""}
    )
    assert as_shipped.notify.urls is None and not as_shipped.homeassistant.enabled


def test_docker_compose_config_accepts_the_file() -> None:
    assert_compose_accepts(DEPLOY / "compose.yaml")
