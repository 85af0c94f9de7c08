"""The README's "Home Assistant", "Notifications" and "Monitoring" sections: each one's config, as
printed, loads through the config loader and does what the section says (issue 15, "Done
means"). The same snippets drive the end-to-end tests in tests/daemon/test_integrations.py.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from guardbot.config import Config, load_config
from guardbot.notify.sender import AppriseSender, split_urls
from tests.readme import README, blocks


def load(tmp_path: Path, snippet: str, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "guardbot.toml"
    path.write_text(snippet, encoding="utf-8")
    return load_config(path, env or {})


def exported(heading: str) -> dict[str, str]:
    """The ``export NAME="value"`` lines of the section's sh blocks."""
    found: dict[str, str] = {}
    for block in blocks(heading, "sh"):
        for line in block.splitlines():
            if line.startswith("export "):
                [assignment] = shlex.split(line.split("#", 1)[0])[1:]
                name, _, value = assignment.partition("=")
                found[name] = value
    return found


def test_home_assistant(tmp_path: Path) -> None:
    [snippet] = blocks("Home Assistant", "toml")
    config = load(tmp_path, snippet)
    assert config.homeassistant.enabled is True
    assert config.homeassistant.discovery_prefix == "homeassistant"  # as the section says


def test_notifications(tmp_path: Path) -> None:
    [snippet] = blocks("Notifications", "toml")
    env = exported("Notifications")
    assert list(env) == ["GUARDBOT_NOTIFY_URLS"]
    # The README's placeholders, filled in as a user would.
    urls = env["GUARDBOT_NOTIFY_URLS"].replace("<bot token>", "123456789:AAExampleToken")
    urls = urls.replace("<chat id>", "-1001234567890")
    assert "<" not in urls
    config = load(tmp_path, snippet, {"GUARDBOT_NOTIFY_URLS": urls})
    assert config.notify.urls is not None
    assert config.notify.min_severity == "warning"  # the default the section names
    assert config.notify.coalesce_s == 60
    sender = AppriseSender(split_urls(config.notify.urls.reveal()))
    assert sender.targets == ["ntfy://…", "tgram://…"]


def test_notifications_urls_variable_is_not_read_as_an_override(tmp_path: Path) -> None:
    """GUARDBOT_NOTIFY_URLS looks like the override of a key notify.urls: it must be read as
    the secret urls_env names, and be harmless (empty or not) when nothing names it."""
    assert load(tmp_path, "", {"GUARDBOT_NOTIFY_URLS": ""}).notify.urls is None
    assert load(tmp_path, "", {"GUARDBOT_NOTIFY_URLS": "ntfy://x"}).notify.urls is None


def test_monitoring(tmp_path: Path) -> None:
    [snippet] = blocks("Monitoring", "toml")
    config = load(tmp_path, snippet)
    default = load(tmp_path, "")
    assert config.metrics == default.metrics  # "the default"
    assert config.metrics.enabled and (config.metrics.host, config.metrics.port) == (
        "127.0.0.1",
        9108,
    )
    text = README.read_text(encoding="utf-8")
    assert f"curl -s 127.0.0.1:{config.metrics.port}/metrics" in text


@pytest.mark.parametrize("heading", ["Home Assistant", "Notifications", "Monitoring"])
def test_each_section_has_one_short_config(heading: str) -> None:
    [snippet] = blocks(heading, "toml")
    lines = [x for x in snippet.splitlines() if x.strip() and not x.lstrip().startswith("#")]
    assert len(lines) <= 3, lines
    tomllib.loads(snippet)


def test_every_toml_block_in_the_readme_parses() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"^```toml\n(.*?)^```", text, flags=re.M | re.S)
    assert len(found) >= 4
    for block in found:
        tomllib.loads(block)
