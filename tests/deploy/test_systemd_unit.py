"""deploy/guardbot.service: the keys the daemon relies on, and systemd's own verdict on the file.

``systemd-analyze verify`` fails (exit 1) when an ``ExecStart=`` binary does not exist, and only
warns — exit 0 — about unknown keys or keys in the wrong section. So the unit is verified as a
copy whose ``ExecStart=`` names an executable that exists here, and any diagnostic that names
the unit file counts as a failure. Without systemd-analyze those tests skip, unless
``GUARDBOT_REQUIRE_SYSTEMD=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from guardbot.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "guardbot.service"
EXEC_START = "/opt/guardbot/venv/bin/guardbot"
LIMIT = 60.0

Unit = dict[str, list[tuple[str, str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> (key, value) in order; keys may repeat (configparser cannot do that)."""
    sections: Unit = {}
    current: list[tuple[str, str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"key outside a section: {line!r}"
        assert not line.endswith("\\"), "no continuation lines, please: keep keys greppable"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def values(unit: Unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: Unit, section: str, key: str) -> str:
    found = values(unit, section, key)
    assert len(found) == 1, f"[{section}] {key}= appears {len(found)} times"
    return found[0]


# --- the contract with the daemon ----------------------------------------------------------------


def test_notify_and_watchdog(unit: Unit) -> None:
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    assert one(unit, "Service", "WatchdogSec") == "30"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert int(one(unit, "Service", "RestartSec")) > 0
    # Watchdog restarts during a long exchange outage must never exhaust a start limit.
    assert one(unit, "Unit", "StartLimitIntervalSec") == "0"
    # ...but a configuration error (exit 2, see guardbot.cli.main) is not retried.
    assert one(unit, "Service", "RestartPreventExitStatus") == "2"
    # A clean stop (drain, offline, last ticks) needs longer than the daemon's drain timeout.
    assert int(one(unit, "Service", "TimeoutStopSec")) >= 10


def test_user_state_and_configuration(unit: Unit) -> None:
    assert one(unit, "Service", "User") == "guardbot"
    assert one(unit, "Service", "Group") == "guardbot"
    assert values(unit, "Service", "DynamicUser") == []
    assert one(unit, "Service", "StateDirectory") == "guardbot"
    assert one(unit, "Service", "ConfigurationDirectory") == "guardbot"
    assert one(unit, "Service", "EnvironmentFile") == "-/etc/guardbot/guardbot.env"
    environment = dict(v.split("=", 1) for v in values(unit, "Service", "Environment"))
    # StateDirectory=guardbot is /var/lib/guardbot: the data_dir the daemon must use.
    assert environment["GUARDBOT_GUARDBOT_DATA_DIR"] == "/var/lib/guardbot"
    assert environment["GUARDBOT_GUARDBOT_LOG_FORMAT"] == "json"


def test_exec_start(unit: Unit) -> None:
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv == [EXEC_START, "run", "-c", "/etc/guardbot/guardbot.toml"]


def test_hardening(unit: Unit) -> None:
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
    }
    for key, value in expected.items():
        assert one(unit, "Service", key) == value, key
    # It would break cffi/ctypes callbacks (W^X); see the comment in the unit.
    assert values(unit, "Service", "MemoryDenyWriteExecute") == []


def test_unit_environment_gives_the_daemon_its_data_dir(unit: Unit) -> None:
    environment = dict(v.split("=", 1) for v in values(unit, "Service", "Environment"))
    env = {k: v for k, v in environment.items() if k.startswith("GUARDBOT_")}
    env["GUARDBOT_MQTT_PASSWORD"] = "x"  # what the env file supplies
    config = load_config(DEPLOY / "guardbot.toml", env)
    assert config.guardbot.data_dir == Path("/var/lib/guardbot")
    assert config.guardbot.log_format == "json"


# --- systemd's verdict -----------------------------------------------------------------------


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        reason = "systemd-analyze not found (Debian package: systemd)"
        if os.environ.get("GUARDBOT_REQUIRE_SYSTEMD") == "1":
            pytest.fail(reason + " and GUARDBOT_REQUIRE_SYSTEMD=1")
        pytest.skip(reason)
    return found


def an_existing_executable() -> str:
    beside = Path(sys.executable).parent / "guardbot"
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("guardbot") or sys.executable


def unit_copy(tmp_path: Path, *, exec_start: str | None = None, extra: str = "") -> Path:
    text = UNIT.read_text(encoding="utf-8")
    if exec_start is not None:
        assert f"ExecStart={EXEC_START} " in text
        text = text.replace(f"ExecStart={EXEC_START} ", f"ExecStart={exec_start} ")
    if extra:
        text = text.replace("[Service]\n", f"[Service]\n{extra}\n", 1)
    path = tmp_path / "guardbot.service"
    path.write_text(text, encoding="utf-8")
    return path


def verify(path: Path) -> tuple[int, list[str]]:
    """systemd-analyze verify: exit status and the diagnostics that concern this unit."""
    done = subprocess.run(
        [systemd_analyze(), "verify", "--man=false", str(path)],
        capture_output=True,
        text=True,
        timeout=LIMIT,
        check=False,
    )
    # Other units on the machine may draw warnings of their own; only ours count.
    ours = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if path.name in line or str(path) in line
    ]
    return done.returncode, ours


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    code, diagnostics = verify(unit_copy(tmp_path, exec_start=an_existing_executable()))
    assert (code, diagnostics) == (0, [])


def test_verify_would_catch_a_misplaced_key(tmp_path: Path) -> None:
    # Proves the check above is not vacuous: such keys are only warnings (exit 0).
    path = unit_copy(
        tmp_path, exec_start=an_existing_executable(), extra="StartLimitIntervalSec=300"
    )
    code, diagnostics = verify(path)
    assert code == 0
    assert any("Unknown key 'StartLimitIntervalSec'" in line for line in diagnostics)


def test_verify_fails_on_a_missing_executable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-venv" / "bin" / "guardbot"
    code, diagnostics = verify(unit_copy(tmp_path, exec_start=str(missing)))
    assert code != 0
    assert any("is not executable" in line for line in diagnostics)


def test_security_exposure_stays_low(tmp_path: Path) -> None:
    path = unit_copy(tmp_path, exec_start=an_existing_executable())
    # systemd's exposure score, 0 (locked down) to 10 (none); --threshold is in tenths.
    done = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--threshold=20", str(path)],
        capture_output=True,
        text=True,
        timeout=LIMIT,
        check=False,
    )
    overall = [line for line in done.stdout.splitlines() if "Overall exposure" in line]
    assert done.returncode == 0, overall or done.stderr
