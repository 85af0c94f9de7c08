"""The shipped deploy/mosquitto configuration and ACL, enforced by a real Mosquitto.

The broker runs deploy/mosquitto/mosquitto.conf with only the machine-specific lines rewritten
(listener on a free loopback port, file locations in the test's directory) and the shipped acl
file unchanged, with a password file made by ``mosquitto_passwd -b``.

Mosquitto drops an unauthorised PUBLISH silently (MQTT 3.1.1 has no negative PUBACK), so
"not delivered" cannot be shown by waiting. Each such test publishes the forbidden message at
QoS 1 and waits for its PUBACK — by then the broker has routed it, or not — and then has an
authorised client publish a sentinel to the same subscribers: the subscriber's first message
must be the sentinel. Every wait is bounded by ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from guardbot.cli.health import HealthReport, check_health
from guardbot.config import Config, load_config
from guardbot.store.journal import Journal
from tests.broker import Mosquitto, _find_binary

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
LIMIT = 10.0
USERS = ("guardbot", "alerts", "operator", "dashboard", "homeassistant")
CMD = "guardbot/main/cmd"
STATUS = "guardbot/main/status"
ALERT = "guardbot/main/alerts/critical/liquidation"


def _find_passwd_tool() -> str | None:
    found = shutil.which("mosquitto_passwd")
    if found:
        return found
    return "/usr/bin/mosquitto_passwd" if os.access("/usr/bin/mosquitto_passwd", os.X_OK) else None


def shipped_config(port: int, directory: Path) -> str:
    """deploy/mosquitto/mosquitto.conf with its host-specific lines pointed at ``directory``."""
    replacements = {
        "listener": f"listener {port} 127.0.0.1",
        "password_file": f"password_file {directory / 'passwd'}",
        "acl_file": f"acl_file {directory / 'acl'}",
        "persistence_location": f"persistence_location {directory}/",
    }
    seen: set[str] = set()
    lines = []
    for line in (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if key in replacements:
            seen.add(key)
            line = replacements[key]
        lines.append(line)
    missing = set(replacements) - seen
    assert not missing, f"deploy/mosquitto/mosquitto.conf lost {sorted(missing)}"
    # Started as root, mosquitto drops to the "mosquitto" user before it reads the password and
    # ACL files, and that user cannot enter pytest's private temporary directory. Not root:
    # the option is ignored.
    lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
    return "\n".join(lines) + "\n"


class SecuredMosquitto(Mosquitto):
    """A private broker running the shipped configuration, ACL and a fresh password file."""

    def __init__(
        self, binary: str, passwd_tool: str, directory: Path, *, sed: str | None = None
    ) -> None:
        super().__init__(binary, directory)
        self.passwords = {user: secrets.token_urlsafe(12) for user in USERS}
        passwd = directory / "passwd"
        for i, (user, password) in enumerate(self.passwords.items()):
            create = ["-c"] if i == 0 else []
            subprocess.run(
                [passwd_tool, *create, "-b", str(passwd), user, password],
                check=True,
                capture_output=True,
                timeout=LIMIT,
            )
        shutil.copyfile(DEPLOY / "acl", directory / "acl")
        if sed is not None:  # the ACL rewritten as deploy/README.md says
            subprocess.run(["sed", "-i", sed, str(directory / "acl")], check=True, timeout=LIMIT)
        self.config.write_text(shipped_config(self.port, directory), encoding="utf-8")

    def client(self, user: str | None, password: str | None = None) -> aiomqtt.Client:
        if user is not None and password is None:
            password = self.passwords[user]
        return aiomqtt.Client(
            self.host,
            self.port,
            identifier=f"{user or 'anonymous'}-{uuid.uuid4().hex[:8]}",
            username=user,
            password=password,
            timeout=LIMIT,
        )


def secured_broker(tmp_path: Path, sed: str | None = None) -> SecuredMosquitto:
    binary, tool = _find_binary(), _find_passwd_tool()
    if binary is None or tool is None:
        reason = "mosquitto or mosquitto_passwd not found (PATH, /usr/sbin, /usr/bin)"
        if os.environ.get("GUARDBOT_REQUIRE_MOSQUITTO") == "1":
            pytest.fail(reason + " and GUARDBOT_REQUIRE_MOSQUITTO=1")
        pytest.skip(reason)
    return SecuredMosquitto(binary, tool, tmp_path, sed=sed)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SecuredMosquitto]:
    secured = secured_broker(tmp_path)
    secured.start()
    try:
        yield secured
    finally:
        secured.stop()


def readme_acl_rewrite() -> tuple[str, str]:
    """deploy/README.md's sed expression for another discovery prefix, and that prefix."""
    text = (DEPLOY.parent / "README.md").read_text(encoding="utf-8")
    [(expression, prefix)] = re.findall(
        r"sed -i '(s#homeassistant/#([a-z]+)/#g)' mosquitto/acl", text
    )
    return expression, prefix


@pytest.fixture
def custom_prefix_broker(tmp_path: Path) -> Iterator[tuple[SecuredMosquitto, str]]:
    """The shipped broker with its ACL rewritten for another discovery prefix."""
    expression, prefix = readme_acl_rewrite()
    secured = secured_broker(tmp_path, sed=expression)
    secured.start()
    try:
        yield secured, prefix
    finally:
        secured.stop()


@asynccontextmanager
async def connected(
    broker: SecuredMosquitto, user: str, *topics: str
) -> AsyncIterator[aiomqtt.Client]:
    async with broker.client(user) as client:
        for topic in topics:
            await client.subscribe(topic, qos=1)
        yield client


async def first_message(client: aiomqtt.Client) -> tuple[str, str]:
    async with asyncio.timeout(LIMIT):
        message = await anext(aiter(client.messages))
    payload = message.payload
    assert isinstance(payload, bytes)
    return message.topic.value, payload.decode("utf-8")


# --- authentication ------------------------------------------------------------------------------


async def test_anonymous_connect_is_refused(broker: SecuredMosquitto) -> None:
    with pytest.raises(aiomqtt.MqttCodeError) as info:
        async with asyncio.timeout(LIMIT), broker.client(None):
            pass
    assert "authori" in str(info.value).lower()


async def test_wrong_password_is_refused(broker: SecuredMosquitto) -> None:
    with pytest.raises(aiomqtt.MqttCodeError) as info:
        async with asyncio.timeout(LIMIT), broker.client("operator", "not-the-password"):
            pass
    assert "authori" in str(info.value).lower()


async def test_every_user_can_log_in(broker: SecuredMosquitto) -> None:
    async with asyncio.timeout(LIMIT):
        for user in USERS:
            async with broker.client(user):
                pass


# --- what is delivered ---------------------------------------------------------------------------


async def test_guardbot_alerts_and_status_reach_the_alerts_user(broker: SecuredMosquitto) -> None:
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "alerts", "guardbot/+/alerts/#", "guardbot/+/status") as alerts,
        connected(broker, "guardbot") as daemon,
    ):
        await daemon.publish(ALERT, '{"type":"liquidation"}', qos=1)
        assert await first_message(alerts) == (ALERT, '{"type":"liquidation"}')
        await daemon.publish(STATUS, '{"state":"online"}', qos=1, retain=True)
        assert await first_message(alerts) == (STATUS, '{"state":"online"}')


async def test_operator_command_reaches_guardbot(broker: SecuredMosquitto) -> None:
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "guardbot", CMD) as daemon,
        connected(broker, "operator") as operator,
    ):
        await operator.publish(CMD, '{"cmd":"status"}', qos=1)
        assert await first_message(daemon) == (CMD, '{"cmd":"status"}')


async def test_guardbot_reads_its_status_for_the_health_check(broker: SecuredMosquitto) -> None:
    async with asyncio.timeout(LIMIT):
        async with broker.client("guardbot") as daemon:
            await daemon.publish(STATUS, '{"state":"online"}', qos=1, retain=True)
        async with connected(broker, "guardbot", "guardbot/main/status") as probe:
            assert await first_message(probe) == (STATUS, '{"state":"online"}')


async def test_tools_with_the_daemon_login_read_replies_and_accounts(
    broker: SecuredMosquitto,
) -> None:
    # `docker compose exec guardbot guardbot order|status` runs with the daemon's login: the
    # order's reply and the account snapshots must reach it, or the tool reports "no reply"
    # for an order that was carried out.
    reply = "guardbot/main/reply/r-1"
    account = "guardbot/main/accounts/demo"
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "guardbot", reply, "guardbot/main/accounts/#") as tool,
        connected(broker, "guardbot") as daemon,
    ):
        await daemon.publish(reply, '{"ok":true}', qos=1)
        assert await first_message(tool) == (reply, '{"ok":true}')
        await daemon.publish(account, '{"positions":[]}', qos=1)
        assert await first_message(tool) == (account, '{"positions":[]}')


async def test_operator_reads_everything(broker: SecuredMosquitto) -> None:
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "operator", "guardbot/#") as operator,
        connected(broker, "guardbot") as daemon,
    ):
        for topic in (ALERT, "guardbot/main/events/fill", "guardbot/main/accounts/demo"):
            await daemon.publish(topic, "x", qos=1)
            assert await first_message(operator) == (topic, "x")


# --- what is not delivered -----------------------------------------------------------------------


async def test_alerts_user_cannot_send_commands(broker: SecuredMosquitto) -> None:
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "guardbot", CMD) as daemon,
        connected(broker, "operator", "guardbot/#") as operator,
        connected(broker, "alerts") as alerts,
    ):
        await alerts.publish(CMD, "forged", qos=1)  # PUBACKed, then dropped by the ACL
        await operator.publish(CMD, "sentinel", qos=1)
        assert await first_message(daemon) == (CMD, "sentinel")
        assert await first_message(operator) == (CMD, "sentinel")


async def test_alerts_user_cannot_read_commands(broker: SecuredMosquitto) -> None:
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "alerts", CMD, "guardbot/#", STATUS) as alerts,
        connected(broker, "operator") as operator,
        connected(broker, "guardbot") as daemon,
    ):
        await operator.publish(CMD, '{"cmd":"halt","token":"t"}', qos=1)
        await daemon.publish(STATUS, "sentinel", qos=1)
        assert await first_message(alerts) == (STATUS, "sentinel")


async def test_alerts_user_cannot_forge_alerts_or_status(broker: SecuredMosquitto) -> None:
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "operator", "guardbot/#") as operator,
        connected(broker, "alerts") as alerts,
        connected(broker, "guardbot") as daemon,
    ):
        await alerts.publish(ALERT, "forged", qos=1)
        await alerts.publish(STATUS, "forged", qos=1, retain=True)
        await daemon.publish(ALERT, "sentinel", qos=1)
        assert await first_message(operator) == (ALERT, "sentinel")


async def test_operator_cannot_forge_the_status(broker: SecuredMosquitto) -> None:
    async with asyncio.timeout(LIMIT):
        async with connected(broker, "operator") as operator:
            await operator.publish(STATUS, '{"state":"online"}', qos=1, retain=True)
        async with connected(broker, "guardbot") as daemon:
            await daemon.publish("guardbot/main/alerts/info/x", "sentinel", qos=1, retain=True)
        # A retained forgery would be delivered on subscribe, before anything published later.
        async with connected(broker, "operator", STATUS, "guardbot/main/alerts/#") as reader:
            assert await first_message(reader) == ("guardbot/main/alerts/info/x", "sentinel")


# --- Home Assistant discovery and the read-only dashboard user -----------------------------------

DISCOVERY = "homeassistant/sensor/guardbot_main/demo_margin_ratio/config"
HA_STATE = "guardbot/main/ha/demo/margin_ratio"
ACCOUNT = "guardbot/main/accounts/demo"


async def test_dashboard_reads_accounts_states_and_discovery(broker: SecuredMosquitto) -> None:
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "dashboard", "guardbot/#", "homeassistant/#") as dashboard,
        connected(broker, "guardbot") as daemon,
    ):
        for topic in (ACCOUNT, STATUS, HA_STATE, DISCOVERY):
            await daemon.publish(topic, "x", qos=1)
            assert await first_message(dashboard) == (topic, "x")


async def test_dashboard_sees_no_commands_and_can_publish_nothing(
    broker: SecuredMosquitto,
) -> None:
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "dashboard", "guardbot/#", "homeassistant/#") as dashboard,
        connected(broker, "guardbot", CMD) as daemon,
        connected(broker, "operator") as operator,
    ):
        await operator.publish(CMD, '{"cmd":"halt","token":"t"}', qos=1)  # not for dashboards
        for topic in (CMD, STATUS, ACCOUNT, DISCOVERY, "homeassistant/status"):
            await dashboard.publish(topic, "forged", qos=1)  # PUBACKed, then dropped
        await daemon.publish(ACCOUNT, "sentinel", qos=1)
        assert await first_message(dashboard) == (ACCOUNT, "sentinel")
        assert await first_message(daemon) == (CMD, '{"cmd":"halt","token":"t"}')


async def test_daemon_writes_discovery_and_reads_the_birth_message(
    broker: SecuredMosquitto,
) -> None:
    async with (
        asyncio.timeout(LIMIT),
        connected(broker, "homeassistant", "homeassistant/#", "guardbot/+/ha/#") as ha,
        connected(broker, "guardbot", "homeassistant/status") as daemon,
    ):
        await daemon.publish(DISCOVERY, "{}", qos=1, retain=True)
        assert await first_message(ha) == (DISCOVERY, "{}")
        await daemon.publish(DISCOVERY, "", qos=1, retain=True)  # a removal: allowed too
        assert await first_message(ha) == (DISCOVERY, "")
        await ha.publish("homeassistant/status", "online", qos=1)
        assert await first_message(daemon) == ("homeassistant/status", "online")
        await ha.publish(HA_STATE, "forged", qos=1)  # Home Assistant cannot forge states
        await ha.publish(CMD, "forged", qos=1)
        await daemon.publish(HA_STATE, "81.2", qos=1)
        assert await first_message(ha) == ("homeassistant/status", "online")
        assert await first_message(ha) == (HA_STATE, "81.2")


# --- guardbot health under the shipped ACL -------------------------------------------------------


def health_config(broker: SecuredMosquitto, tmp_path: Path, password: str) -> Config:
    path = tmp_path / "guardbot.toml"
    path.write_text(
        f"""
[guardbot]
instance = "main"
data_dir = "{tmp_path / "data"}"

[feed]
mode = "sim"

[mqtt]
url = "mqtt://127.0.0.1:{broker.port}"
embedded_broker = "never"
username = "guardbot"
password_env = "GUARDBOT_TEST_MQTT_PASSWORD"
""",
        encoding="utf-8",
    )
    return load_config(path, {"GUARDBOT_TEST_MQTT_PASSWORD": password})


async def test_guardbot_health_with_the_daemon_credentials(
    broker: SecuredMosquitto, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    status = {
        "state": "online",
        "ts": int(time.time() * 1000),
        "version": "0.1.0",
        "feeds": {"BTC/USDT:USDT": {"stale": False, "lastTs": int(time.time() * 1000)}},
        "outbox": {"depth": 0, "oldestAgeMs": None},
    }
    async with asyncio.timeout(LIMIT):
        async with Journal.in_data_dir(tmp_path / "data", instance="main"):
            pass
        async with broker.client("guardbot") as daemon:
            await daemon.publish(STATUS, json.dumps(status), qos=1, retain=True)
        config = health_config(broker, tmp_path, broker.passwords["guardbot"])
        assert await check_health(config, timeout=5) == HealthReport(True, "healthy")
        wrong = health_config(broker, tmp_path, "not-the-password")
        report = await check_health(wrong, timeout=5)
    assert not report.healthy
    assert report.reason.startswith(f"cannot read the status from mqtt://127.0.0.1:{broker.port}")
    assert "authori" in report.reason.lower()


# --- another discovery prefix ---------------------------------------------------------------------


async def test_the_daemon_discovers_under_another_prefix_with_the_rewritten_acl(
    custom_prefix_broker: tuple[SecuredMosquitto, str], tmp_path: Path
) -> None:
    """A real daemon with ``discovery_prefix`` = the README's example, on the shipped broker
    whose ACL was rewritten by the README's sed line: Home Assistant (its own login) reads the
    configs and the states, and its birth message makes the daemon publish them again."""
    from guardbot.daemon.service import Daemon

    broker, prefix = custom_prefix_broker
    path = tmp_path / "guardbot.toml"
    path.write_text(
        f"""
[guardbot]
instance = "main"
data_dir = "{tmp_path / "data"}"
log_level = "warning"

[feed]
mode = "sim"

[accounts.demo]
wallet = 1000

[mqtt]
url = "mqtt://127.0.0.1:{broker.port}"
embedded_broker = "never"
username = "guardbot"
password_env = "GUARDBOT_TEST_MQTT_PASSWORD"

[metrics]
enabled = false

[homeassistant]
enabled = true
discovery_prefix = "{prefix}"
""",
        encoding="utf-8",
    )
    config = load_config(path, {"GUARDBOT_TEST_MQTT_PASSWORD": broker.passwords["guardbot"]})
    daemon = Daemon(config)
    stop = asyncio.Event()
    ratio_config = f"{prefix}/sensor/guardbot_main/demo_margin_ratio/config"
    async with asyncio.timeout(3 * LIMIT):
        task = asyncio.create_task(daemon.run(stop))
        try:
            async with connected(broker, "homeassistant", f"{prefix}/#") as ha:
                while True:  # the retained configs, in any order
                    topic, payload = await first_message(ha)
                    if topic == ratio_config and payload:
                        break
                state_topic = json.loads(payload)["state_topic"]
                await ha.subscribe(state_topic, qos=1)
                while True:
                    topic, value = await first_message(ha)
                    if topic == state_topic:
                        break
                float(value)  # a plain number
                await ha.publish(f"{prefix}/status", "online", qos=1)  # its birth message
                while True:  # published again after the birth message
                    topic, payload = await first_message(ha)
                    if topic == ratio_config and payload:
                        break
        finally:
            stop.set()
            assert await task == 0
