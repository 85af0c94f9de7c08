"""``guardbot alerts`` as a subprocess against a private Mosquitto.

Readiness is a retained status message: the command subscribes to ``alerts/#`` and ``status`` in
one SUBSCRIBE, so once its status line appears on stdout the alert subscription is in place.
Every wait is bounded (``asyncio.timeout`` or a subprocess timeout); no blind sleeps.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest

from tests.broker import Mosquitto

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BASE = "guardbot/t1"
STATUS = '{"state":"online","ts":1700000000000,"version":"9.9.9"}'
LIMIT = 30.0

MARGIN_ALERT = {
    "type": "margin_alert",
    "ts": 1_700_000_001_000,
    "account": "demo",
    "symbol": "BTC/USDT:USDT",
    "severity": "critical",
    "marginRatio": "0.8512",
    "threshold": "0.8",
    "liquidationSymbol": "BTC/USDT:USDT",
    "liquidationPrice": "57321.5",
    "distancePercent": "1.2345",
    "alertId": "a-1",
}
BAD_NUMBER = '{"type":"margin_alert","marginRatio":"x"}'
LIQUIDATION = {
    "type": "liquidation",
    "ts": 1_700_000_002_000,
    "account": "demo",
    "scope": "cross",
    "symbol": "BTC/USDT:USDT",
    "side": "long",
    "contracts": "0.4",
    "price": "57000",
    "markPrice": "56990",
    "loss": "1000",
    "insuranceFundDelta": "3.5",
    "alertId": "a-2",
}


def write_config(tmp_path: Path, host: str, port: int) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(
        f"""
[guardbot]
instance = "t1"
data_dir = "{tmp_path / "data"}"

[mqtt]
url = "mqtt://{host}:{port}"
embedded_broker = "never"
""",
        encoding="utf-8",
    )
    return path


def compact(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


async def publish(broker: Mosquitto, *messages: tuple[str, str, bool]) -> None:
    async with aiomqtt.Client(broker.host, broker.port) as client:
        for topic, payload, retain in messages:
            await client.publish(topic, payload, qos=1, retain=retain)


@asynccontextmanager
async def alerts_process(config: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "guardbot",
        "alerts",
        "-c",
        str(config),
        *args,
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def next_line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    assert line, "the alerts process closed stdout early"
    return line.decode("utf-8").rstrip("\n")


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    assert proc.stdout is not None and proc.stderr is not None
    out, err = await asyncio.gather(proc.stdout.read(), proc.stderr.read())
    code = await proc.wait()
    return code, out.decode("utf-8"), err.decode("utf-8")


async def test_json_prints_raw_payloads_and_exits_after_count(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = write_config(tmp_path, mosquitto.host, mosquitto.port)
    first, second = compact(MARGIN_ALERT), compact(LIQUIDATION)
    async with asyncio.timeout(LIMIT):
        await publish(mosquitto, (f"{BASE}/status", STATUS, True))
        async with alerts_process(config, "--count", "2", "--json") as proc:
            assert await next_line(proc) == STATUS  # subscribed
            await publish(
                mosquitto,
                (f"{BASE}/alerts/critical/margin_alert", first, False),
                (f"{BASE}/events/margin_alert", first, False),  # not an alert topic: ignored
                (f"{BASE}/alerts/critical/liquidation", second, False),
            )
            code, out, err = await finish(proc)
    assert (code, err) == (0, "")
    assert out.splitlines() == [first, second]


async def test_readable_lines_and_malformed_payloads(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path, mosquitto.host, mosquitto.port)
    async with asyncio.timeout(LIMIT):
        await publish(mosquitto, (f"{BASE}/status", STATUS, True))
        async with alerts_process(config, "--count", "3") as proc:
            assert await next_line(proc) == "status: online (version 9.9.9)"
            await publish(
                mosquitto,
                (f"{BASE}/alerts/warning/margin_alert", "not json {", False),
                (f"{BASE}/alerts/critical/margin_alert", compact(MARGIN_ALERT), False),
                (f"{BASE}/alerts/info/margin_alert", BAD_NUMBER, False),
            )
            code, out, err = await finish(proc)
    assert (code, err) == (0, "")
    malformed, alert, bad_number = out.splitlines()
    assert malformed.startswith("WARNING ")
    assert "not json {" in malformed and "malformed payload" in malformed
    assert alert.startswith("CRITICAL ")
    assert "margin_alert" in alert and "BTC/USDT:USDT" in alert
    assert "margin ratio 85.12% >= 80%" in alert and "57,321.5" in alert
    assert bad_number.startswith("INFO ") and "malformed payload" in bad_number
    assert '"marginRatio":"x"' in bad_number


async def test_readable_line_is_the_alerts_text(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Payloads with ``text`` (every alert the daemon publishes) print that sentence."""
    config = write_config(tmp_path, mosquitto.host, mosquitto.port)
    sentence = "BTC/USDT:USDT long 0.3 @ 58,950: margin ratio 85 % (critical at 80 %)"
    async with asyncio.timeout(LIMIT):
        await publish(mosquitto, (f"{BASE}/status", STATUS, True))
        async with alerts_process(config, "--count", "1") as proc:
            assert await next_line(proc) == "status: online (version 9.9.9)"
            payload = compact({**MARGIN_ALERT, "text": sentence})
            await publish(mosquitto, (f"{BASE}/alerts/critical/margin_alert", payload, False))
            code, out, err = await finish(proc)
    assert (code, err) == (0, "")
    [line] = out.splitlines()
    assert line.startswith("CRITICAL ") and line.endswith(f"demo     margin_alert      {sentence}")


async def test_timeout_before_count_exits_1(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path, mosquitto.host, mosquitto.port)
    async with asyncio.timeout(LIMIT):
        await publish(mosquitto, (f"{BASE}/status", compact({"state": "offline"}), True))
        async with alerts_process(config, "--count", "5", "--timeout", "1") as proc:
            assert await next_line(proc) == "status: offline"
            code, out, err = await finish(proc)
    assert (code, out, err) == (1, "", "")


async def test_timeout_without_count_exits_0(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path, mosquitto.host, mosquitto.port)
    async with asyncio.timeout(LIMIT), alerts_process(config, "--timeout", "0.5") as proc:
        code, out, err = await finish(proc)
    assert (code, out, err) == (0, "", "")


async def test_ctrl_c_exits_130_quietly(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = write_config(tmp_path, mosquitto.host, mosquitto.port)
    async with asyncio.timeout(LIMIT):
        await publish(mosquitto, (f"{BASE}/status", STATUS, True))
        async with alerts_process(config) as proc:
            await next_line(proc)  # running, signal handler installed
            proc.send_signal(signal.SIGINT)
            code, out, err = await finish(proc)
    assert (code, out, err) == (130, "", "")


def test_unreachable_broker_exits_1_with_one_line(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    # The socket is closed (never listened): connecting to the port is refused.
    config = write_config(tmp_path, "127.0.0.1", port)
    done = subprocess.run(
        [sys.executable, "-m", "guardbot", "alerts", "-c", str(config), "--timeout", "20"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=LIMIT,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("guardbot alerts: ")
    assert f"mqtt://127.0.0.1:{port}" in lines[0]


def test_bad_count_is_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "127.0.0.1", 1)
    done = subprocess.run(
        [sys.executable, "-m", "guardbot", "alerts", "-c", str(config), "--count", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=LIMIT,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == "guardbot alerts: --count: must be a positive integer, got 0\n"
