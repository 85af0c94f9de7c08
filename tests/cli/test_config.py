"""Config habits (issue 15 ask 5): discovery without -c, data_dir beside the file, ``guardbot
init``, ``guardbot config check``, ``-V``, ``--log-level`` and the shell completion."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import guardbot
from guardbot.cli.main import LOG_LEVELS, main
from guardbot.config import load_config
from guardbot.config.discover import find_config
from guardbot.config.render import VENUES
from guardbot.config.schema import keys, sections
from guardbot.config.sections import LOG_LEVELS as CONFIG_LOG_LEVELS
from guardbot.config.sections import Config
from guardbot.errors import ConfigError


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# --- discovery -----------------------------------------------------------------------------------


def test_discovery_order(tmp_path: Path) -> None:
    cwd, xdg, home = tmp_path / "cwd", tmp_path / "xdg", tmp_path / "home"
    for folder in (cwd, xdg / "guardbot", home / ".config" / "guardbot"):
        folder.mkdir(parents=True)
    named = tmp_path / "named.toml"
    named.write_text("", encoding="utf-8")
    env = {"XDG_CONFIG_HOME": str(xdg), "HOME": str(home)}

    def chosen(env: dict[str, str]) -> tuple[Path | None, str]:
        choice = find_config(None, env, cwd)
        return choice.path, choice.reason

    assert chosen(env)[0] in (None, Path("/etc/guardbot/guardbot.toml"))
    (home / ".config" / "guardbot" / "guardbot.toml").write_text("", encoding="utf-8")
    assert chosen({"HOME": str(home)}) == (
        home / ".config" / "guardbot" / "guardbot.toml",
        "found in ~/.config/guardbot",
    )
    (xdg / "guardbot" / "guardbot.toml").write_text("", encoding="utf-8")
    assert chosen(env) == (xdg / "guardbot" / "guardbot.toml", "found in $XDG_CONFIG_HOME/guardbot")
    (cwd / "guardbot.toml").write_text("", encoding="utf-8")
    assert chosen(env) == (cwd / "guardbot.toml", "found in ./guardbot.toml")
    assert chosen({**env, "GUARDBOT_CONFIG": str(named)}) == (named, "$GUARDBOT_CONFIG")
    explicit = find_config("x.toml", {**env, "GUARDBOT_CONFIG": str(named)}, cwd)
    assert (explicit.path, explicit.reason) == (Path("x.toml"), "-c")
    # A typo in $GUARDBOT_CONFIG must not fall through to another file.
    with pytest.raises(ConfigError, match=r"GUARDBOT_CONFIG=.*nope\.toml: no such file"):
        find_config(None, {**env, "GUARDBOT_CONFIG": str(tmp_path / "nope.toml")}, cwd)


def test_commands_find_the_config_and_say_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "guardbot.toml"
    path.write_text("[guardbot]\ninstance = 'found'\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GUARDBOT_CONFIG", raising=False)
    status, out, _ = run(capsys, "config", "check")
    assert status == 0
    assert out.startswith(f"configuration: {path} (found in ./guardbot.toml): valid\n")
    assert 'instance = "found"' in out
    monkeypatch.setenv("GUARDBOT_CONFIG", str(tmp_path / "missing.toml"))
    status, _, err = run(capsys, "status")
    assert status == 2 and "GUARDBOT_CONFIG=" in err and "no such file" in err


def test_relative_data_dir_is_beside_the_file_and_env_is_not(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "g.toml"
    path.write_text("[guardbot]\ndata_dir = 'state'\n", encoding="utf-8")
    assert load_config(path, {}).guardbot.data_dir == folder / "state"
    env = {"GUARDBOT_GUARDBOT_DATA_DIR": "here"}
    assert load_config(path, env).guardbot.data_dir == Path("here")
    path.write_text("[guardbot]\ndata_dir = '/abs/state'\n", encoding="utf-8")
    assert load_config(path, {}).guardbot.data_dir == Path("/abs/state")


def test_demo_database_stays_in_the_repository_data_folder() -> None:
    root = Path(__file__).resolve().parents[2]
    data_dir = load_config(root / "config" / "demo.toml", {}).guardbot.data_dir
    assert data_dir.resolve() == (root / "data" / "demo").resolve()  # the README's data/demo/


# --- init ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("venue", VENUES)
def test_init_writes_a_commented_config_that_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str
) -> None:
    path = tmp_path / "sub" / "guardbot.toml"
    status, out, _ = run(capsys, "init", str(path), "--venue", venue)
    assert status == 0 and str(path) in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    config = load_config(path, {})
    assert config.exchange.id == venue
    assert config.exchange.symbols == ("BTC/USDT:USDT", "ETH/USDT:USDT")
    # Every key of every section is in the file, with its documentation (one definition).
    for sec in sections(Config):
        if sec.cls is None:
            continue
        for f in keys(sec.cls):
            assert f"{f.name} = " in text, (sec.name, f.name)
            assert f.key.doc.split()[0] in text
    status, out, _ = run(capsys, "config", "check", "-c", str(path))
    assert status == 0, out


def test_init_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "guardbot.toml"
    path.write_text("# mine\n", encoding="utf-8")
    status, out, err = run(capsys, "init", str(path))
    assert status == 2 and out == ""
    assert err == (
        f"guardbot init: {path}: exists; not overwritten (remove it or give another PATH)\n"
    )
    assert path.read_text(encoding="utf-8") == "# mine\n"


# --- config check --------------------------------------------------------------------------------


def test_config_check_hides_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "g.toml"
    path.write_text(
        "[mqtt]\nusername = 'bot'\npassword_env = 'MQTT_PW'\n[control]\nenabled = true\n",
        encoding="utf-8",
    )
    secrets = {
        "MQTT_PW": "mqtt-pw-value",
        "GUARDBOT_CONTROL_TOKEN": "token-value",
        "GUARDBOT_EXCHANGE_API_KEY": "api-key-value",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GUARDBOT_EXCHANGE_SECRET", raising=False)
    status, out, _ = run(capsys, "config", "check", "-c", str(path))
    assert status == 0
    for value in secrets.values():
        assert value not in out
    assert "# password: set (hidden), from MQTT_PW" in out
    assert "# token: set (hidden), from GUARDBOT_CONTROL_TOKEN" in out
    assert "# api_key: set (hidden), from GUARDBOT_EXCHANGE_API_KEY" in out
    assert "# secret: not set, from GUARDBOT_EXCHANGE_SECRET" in out


def test_config_check_lists_every_problem_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "g.toml"
    path.write_text("[feed]\nstale_after = 5\n[mqtt]\nqos = 3\n", encoding="utf-8")
    status, out, err = run(capsys, "config", "check", "-c", str(path))
    assert (status, out) == (2, "")
    assert err.splitlines() == [
        f"guardbot config: invalid configuration {path} (2 problems):",
        "  feed.stale_after: unknown key (known: mode, plugin, plugin_options, replay_file, "
        "rest_poll_s, sim_seed, speed, stale_after_s); did you mean 'stale_after_s'?",
        "  mqtt.qos: must be one of 0, 1, 2, got 3",
    ]


# --- flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_flags(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    assert run(capsys, flag) == (0, f"guardbot {guardbot.__version__}\n", "")


def test_log_level_overrides_the_config_for_one_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GUARDBOT_GUARDBOT_LOG_LEVEL", raising=False)
    path = tmp_path / "g.toml"
    path.write_text("[guardbot]\nlog_level = 'warning'\n", encoding="utf-8")
    status, out, _ = run(capsys, "--log-level", "debug", "config", "check", "-c", str(path))
    assert status == 0 and 'log_level = "debug"' in out
    assert "GUARDBOT_GUARDBOT_LOG_LEVEL" not in os.environ
    status, _, err = run(capsys, "--log-level", "loud", "config", "check")
    assert status == 2 and "--log-level" in err
    assert LOG_LEVELS == CONFIG_LOG_LEVELS


@pytest.mark.parametrize(
    "argv",
    [
        ["config", "check", "--log-level", "error"],
        ["config", "--log-level", "error", "check"],
        ["--log-level", "debug", "config", "check", "--log-level", "error"],  # the last one wins
    ],
)
def test_log_level_after_the_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    """Where users put it by habit: after the command (guardbot run --log-level debug)."""
    monkeypatch.delenv("GUARDBOT_GUARDBOT_LOG_LEVEL", raising=False)
    path = tmp_path / "g.toml"
    path.write_text("[guardbot]\nlog_level = 'warning'\n", encoding="utf-8")
    status, out, _ = run(capsys, *argv, "-c", str(path))
    assert status == 0 and 'log_level = "error"' in out
    status, _, err = run(capsys, "status", "--log-level", "loud")
    assert status == 2 and "--log-level" in err
    assert run(capsys, "run", "--help")[1].count("--log-level") >= 1


def test_config_readme_lists_every_key_as_declared(tmp_path: Path) -> None:
    from guardbot.config.render import update_reference

    readme = Path(__file__).resolve().parents[2] / "config" / "README.md"
    copy = tmp_path / "README.md"
    copy.write_text(readme.read_text(encoding="utf-8"), encoding="utf-8")
    assert not update_reference(copy), (
        "config/README.md's key table is out of date: python -m guardbot.config.render "
        "config/README.md"
    )


def test_deploy_readme_operator_config_loads(tmp_path: Path) -> None:
    """deploy/README.md's configuration for running the tools from the host as the operator."""
    readme = Path(__file__).resolve().parents[2] / "deploy" / "README.md"
    text = readme.read_text(encoding="utf-8")
    body = text.split("guardbot.toml <<'TOML'\n", 1)[1].split("\nTOML\n", 1)[0]
    path = tmp_path / "guardbot.toml"
    path.write_text(body, encoding="utf-8")
    env = {"GUARDBOT_OPERATOR_PASSWORD": "pw", "GUARDBOT_CONTROL_TOKEN": "t"}
    config = load_config(path, env)
    assert (config.mqtt.username, config.mqtt.host, config.mqtt.port) == (
        "operator",
        "127.0.0.1",
        1883,
    )
    assert config.mqtt.password is not None and config.control.token is not None
    # The tools look at the topics of the daemon the deploy files run.
    daemon = load_config(readme.parent / "guardbot.toml", {"GUARDBOT_MQTT_PASSWORD": "pw"})
    assert config.topic_base == daemon.topic_base == "guardbot/main"


def test_a_client_that_cannot_connect_names_the_found_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path / "found.toml"
    path.write_text(f"[mqtt]\nurl = 'mqtt://127.0.0.1:{port}'\n", encoding="utf-8")
    monkeypatch.setenv("GUARDBOT_CONFIG", str(path))
    status, _, err = run(capsys, "status", "--timeout", "5")
    assert status == 1
    assert err.startswith(f"guardbot status: cannot connect to mqtt://127.0.0.1:{port}")
    assert err.endswith(f" [configuration: {path} ($GUARDBOT_CONFIG)]\n")
