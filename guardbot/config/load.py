"""Loading: read the TOML file (or the embedded offline defaults), apply the environment
overrides, build and validate; every problem is reported at once, one per line.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from guardbot.config.build import build
from guardbot.config.env import apply_env
from guardbot.config.reader import Problems
from guardbot.config.sections import Config
from guardbot.errors import ConfigError

__all__ = ["DEFAULT_TOML", "load_config"]

#: What ``load_config(None)`` loads: an offline demo that needs no file, exchange or broker.
DEFAULT_TOML = """
[guardbot]
instance = "default"

[exchange]
id = "binanceusdm"
symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]

[feed]
mode = "sim"
sim_seed = 1
stale_after_s = 5

[accounts.demo]
wallet = 10000
default_margin_mode = "cross"
default_leverage = 10
maker_fee = 0.0002
taker_fee = 0.0005

[mqtt]
embedded_broker = "auto"
"""


def load_config(path: str | Path | None, env: Mapping[str, str] = os.environ) -> Config:
    """Read, override from ``env`` and validate a configuration; ``path=None``: the defaults.

    Raises :class:`ConfigError` listing every problem, one per line.
    """
    if path is None:
        source = "<defaults>"
        raw = tomllib.loads(DEFAULT_TOML)
    else:
        source = str(path)
        raw = _read(Path(path))
    problems: list[str] = []
    sources = apply_env(Config, raw, env, problems)
    collected = Problems(sources)
    collected.items.extend(problems)
    config = build(raw, env, collected)
    if collected.items:
        count = len(collected.items)
        header = f"invalid configuration {source} ({count} problem{'s' if count > 1 else ''}):"
        raise ConfigError("\n".join([header, *collected.items]))
    assert config is not None
    data_dir = config.guardbot.data_dir
    if path is not None and not data_dir.is_absolute() and "guardbot.data_dir" not in sources:
        # A relative data_dir in a file means beside the file, wherever the command runs from
        # (one from the environment stays relative to the working directory).
        section = dataclasses.replace(config.guardbot, data_dir=Path(path).parent / data_dir)
        config = dataclasses.replace(config, guardbot=section)
    return config


def _read(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        # The message ends with "(at line L, column C)".
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
