"""``mqtts://`` means TLS for every client guardbot builds, with the system's CAs by default.

A test CA is made here; the daemon (a real ``guardbot run`` process) trusts it only through the
standard ``SSL_CERT_FILE`` variable, with no ``tls_ca`` in its configuration: the path a user with
a publicly signed broker certificate takes. Before the one client factory, that path connected
without TLS at all. Against a TLS-only Mosquitto the daemon logs in (username and password),
publishes its status and account snapshot; against a plaintext listener the same URL fails with
an error that says what to check, and a recording relay in front of that listener shows that not
one byte of MQTT (no CONNECT, no password, no topic) crossed the wire in clear.
"""

from __future__ import annotations

import asyncio
import datetime
import getpass
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from guardbot.mqtt.client import BrokerSettings, ConnectError, connection
from tests.broker import Mosquitto, _binary_or_skip, _free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LIMIT = 30.0
PASSWORD = "tls-test-secret-4711"


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_pki(directory: Path) -> Pki:
    """A CA and a server certificate for ``localhost`` (only) signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("guardbot test CA"))
        .issuer_name(_name("guardbot test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


class TlsMosquitto(Mosquitto):
    """The conftest broker with a TLS-only listener and a password file (user ``guardbot``)."""

    host = "localhost"

    def __init__(self, binary: str, directory: Path, pki: Pki) -> None:
        super().__init__(binary, directory)
        passwd = directory / "passwd"
        passwd.write_text("", encoding="utf-8")
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwd), "guardbot", PASSWORD],
            check=True,
            capture_output=True,
        )
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"cafile {pki.ca}\ncertfile {pki.cert}\nkeyfile {pki.key}\n"
            "tls_version tlsv1.2\n"
            f"allow_anonymous false\npassword_file {passwd}\n"
            f"persistence false\nuser {getpass.getuser()}\n",
            encoding="utf-8",
        )


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    directory.mkdir()
    return make_pki(directory)


@pytest.fixture
def tls_mosquitto(tmp_path: Path, pki: Pki) -> Iterator[TlsMosquitto]:
    if subprocess.run(["which", "mosquitto_passwd"], capture_output=True).returncode != 0:
        pytest.skip("mosquitto_passwd not found")
    directory = tmp_path / "tls-broker"
    directory.mkdir()
    broker = TlsMosquitto(_binary_or_skip(), directory, pki)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "guardbot.toml"
    path.write_text(
        f"""
[guardbot]
instance = "t1"
data_dir = "{tmp_path / "data"}"
log_format = "json"
log_level = "warning"

[exchange]
id = "binanceusdm"
symbols = ["BTC/USDT:USDT"]

[feed]
mode = "sim"
sim_seed = 1

[accounts.demo]
wallet = 1000

[mqtt]
url = "{url}"
embedded_broker = "never"
username = "guardbot"
password_env = "TEST_MQTT_PASSWORD"

[metrics]
enabled = false
""",
        encoding="utf-8",
    )
    return path


@asynccontextmanager
async def daemon(config: Path, ca: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """``guardbot run`` that trusts ``ca`` through SSL_CERT_FILE only; stopped with SIGTERM."""
    env = {
        **os.environ,
        "SSL_CERT_FILE": str(ca),
        "SSL_CERT_DIR": str(ca.parent / "no-such-dir"),  # the system store must not help
        "TEST_MQTT_PASSWORD": PASSWORD,
        "PYTHONPATH": str(REPO),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "guardbot", "run", "-c", str(config),
        cwd=REPO, env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def test_mqtts_without_tls_ca_uses_the_system_cas(
    tmp_path: Path, pki: Pki, tls_mosquitto: TlsMosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"mqtts://localhost:{tls_mosquitto.port}"
    config = write_config(tmp_path, url)
    # This process's watcher also trusts the CA through SSL_CERT_FILE only.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    settings = BrokerSettings(
        "localhost", tls_mosquitto.port, tls=True, username="guardbot", password=PASSWORD
    )
    async with asyncio.timeout(LIMIT):
        async with connection(settings, role="test") as watcher:
            await watcher.subscribe("guardbot/t1/#", qos=1)
            async with daemon(config, pki.ca) as process:
                seen: dict[str, object] = {}
                async for message in watcher.messages:
                    body = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                    seen[message.topic.value] = body
                    if "guardbot/t1/accounts/demo" in seen and any(
                        isinstance(v, dict) and v.get("state") == "online" for v in seen.values()
                    ):
                        break
                # The tools build their clients with the same factory: same TLS, same CAs.
                status = await tool(config, pki.ca, "status")
                health = await tool(config, pki.ca, "health", "--timeout", "10")
                alerts = await tool(config, pki.ca, "alerts", "--timeout", "1", "--json")
                process.terminate()
                assert await process.wait() == 0
    account = seen["guardbot/t1/accounts/demo"]
    assert isinstance(account, dict) and account["account"] == "demo"
    assert status[0] == 0 and "demo" in status[1], status
    assert health == (0, "healthy\n", ""), health
    assert alerts[0] == 0 and '"state":"online"' in alerts[1], alerts


async def tool(config: Path, ca: Path, *args: str) -> tuple[int, str, str]:
    """``guardbot <args> -c config`` trusting ``ca`` through SSL_CERT_FILE only."""
    env = {
        **os.environ,
        "SSL_CERT_FILE": str(ca),
        "SSL_CERT_DIR": str(ca.parent / "no-such-dir"),
        "TEST_MQTT_PASSWORD": PASSWORD,
        "PYTHONPATH": str(REPO),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "guardbot", args[0], "-c", str(config), *args[1:],
        cwd=REPO, env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_wrong_password_over_tls_is_refused_with_a_clear_error(
    pki: Pki, tls_mosquitto: TlsMosquitto
) -> None:
    settings = BrokerSettings(
        "localhost", tls_mosquitto.port, tls=True, tls_ca=str(pki.ca), username="guardbot",
        password="wrong",
    )  # fmt: skip
    async with asyncio.timeout(LIMIT):
        with pytest.raises(ConnectError) as raised:
            async with connection(settings, role="test"):
                pass
    assert str(raised.value).startswith(f"cannot connect to {settings.url}: ")
    assert "TLS:" not in raised.value.reason  # TLS worked: the broker refused the login


async def test_host_name_verification_is_on(pki: Pki, tls_mosquitto: TlsMosquitto) -> None:
    """The certificate names ``localhost`` only: the same listener reached as 127.0.0.1, with a
    trusted CA, is refused (a CA-signed certificate for another host must not do)."""
    settings = BrokerSettings(
        "127.0.0.1", tls_mosquitto.port, tls=True, tls_ca=str(pki.ca), username="guardbot",
        password=PASSWORD,
    )  # fmt: skip
    async with asyncio.timeout(LIMIT):
        with pytest.raises(ConnectError, match=r"mismatch|doesn't match"):
            async with connection(settings, role="test"):
                pass


class Relay:
    """A TCP relay to ``target`` that records every byte the client sends."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.sent = bytearray()
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, record: bool) -> None:
            try:
                while data := await src.read(65536):
                    if record:
                        self.sent += data
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))


async def test_mqtts_to_a_plaintext_listener_fails_and_sends_nothing_in_clear(
    tmp_path: Path, pki: Pki, mosquitto: Mosquitto
) -> None:
    async with Relay(mosquitto.port) as relay:
        config = write_config(tmp_path, f"mqtts://localhost:{relay.port}")
        async with (
            asyncio.timeout(LIMIT),
            aiomqtt.Client(mosquitto.host, mosquitto.port, identifier="spy") as spy,
        ):
            await spy.subscribe("#", qos=1)
            async with daemon(config, pki.ca) as process:
                assert process.stderr is not None
                error = ""
                while "mqtt connection lost" not in error:
                    line = await process.stderr.readline()
                    assert line, "the daemon ended without reporting the failed connection"
                    error = line.decode()
                # A second try, to be sure the retry does not fall back to plain MQTT.
                while relay.connections < 2:
                    line = await process.stderr.readline()
                    assert line
                process.terminate()
                await process.wait()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    message = await anext(aiter(spy.messages))
                    pytest.fail(f"published in clear: {message.topic.value}")
    assert f"cannot connect to mqtts://localhost:{relay.port}" in error
    assert "TLS: is the listener" in error
    assert relay.sent[:1] == b"\x16"  # a TLS handshake record, not an MQTT CONNECT (0x10)
    assert b"MQTT" not in relay.sent and b"guardbot" not in relay.sent
    assert PASSWORD.encode() not in relay.sent
    assert "guardbot-t1" not in mosquitto.log.read_text(encoding="utf-8", errors="replace")


def test_a_missing_tls_ca_file_is_named() -> None:
    settings = BrokerSettings("localhost", _free_port(), tls=True, tls_ca="/nonexistent/ca.pem")
    with pytest.raises(ConnectError, match=r"mqtt.tls_ca: /nonexistent/ca.pem"):
        from guardbot.mqtt.client import tls_context

        tls_context(settings)
