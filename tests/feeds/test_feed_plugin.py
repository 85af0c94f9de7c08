"""``[feed] mode = "plugin"``: prices from a user's own code (a venue outside ccxt)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from guardbot.config import load_config
from guardbot.daemon.feed_loop import default_feed
from guardbot.errors import ConfigError
from guardbot.feeds.base import TickUpdate

PLUGIN = '''
from decimal import Decimal
from guardbot.core.commands import TickCmd
from guardbot.feeds.base import TickUpdate


class CoinexLike:
    """What a user's feed for a venue outside ccxt looks like: ticks from their own client."""

    def __init__(self, symbols, options):
        self.symbols, self.start = symbols, Decimal(str(options["start"]))

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return None

    async def updates(self):
        for i in range(3):
            for symbol in self.symbols:
                mark = self.start + i
                yield TickUpdate(1_000 + i, TickCmd(symbol, mark, bid=mark - 1, ask=mark + 1))


def make_feed(symbols, options):
    return CoinexLike(symbols, options)
'''


def write(tmp_path: Path, feed_lines: str) -> Path:
    path = tmp_path / "guardbot.toml"
    path.write_text(
        '[exchange]\nid = "coinex"\nprofile = "generic"\nsymbols = ["BTC/USDT:USDT"]\n'
        f"[feed]\n{feed_lines}\n",
        encoding="utf-8",
    )
    return path


def test_a_plugin_feeds_ticks(tmp_path: Path) -> None:
    plugin = tmp_path / "coinex_feed.py"
    plugin.write_text(PLUGIN, encoding="utf-8")
    config = load_config(
        write(tmp_path, f'mode = "plugin"\nplugin = "{plugin}:make_feed"\n'
                        "plugin_options = { start = 60000 }"),
        {},
    )  # fmt: skip

    async def run() -> list[TickUpdate]:
        async with default_feed(config) as feed:
            return [u async for u in feed.updates() if isinstance(u, TickUpdate)]

    ticks = asyncio.run(run())
    assert [str(t.tick.mark) for t in ticks] == ["60000", "60001", "60002"]
    assert ticks[0].tick.symbol == "BTC/USDT:USDT" and str(ticks[0].tick.ask) == "60001"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ('mode = "plugin"', 'feed.plugin: required when feed.mode is "plugin"'),
        ('mode = "plugin"\nplugin = "nope.py:make"', "feed.plugin: feed plugin 'nope.py:make'"),
        ('mode = "plugin"\nplugin = "no_such_plugin"', "in group guardbot.feeds"),
    ],
)
def test_a_bad_plugin_is_refused_at_load(tmp_path: Path, lines: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, lines), {})
    assert expected in str(caught.value)
