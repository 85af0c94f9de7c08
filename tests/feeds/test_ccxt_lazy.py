"""Issue 16 ask 5: the daemon imports only the ccxt exchange modules it uses.

Each check runs in a fresh interpreter (this test process has imported all of ccxt already): the
daemon's own feed (``default_feed`` of a ``[feed] mode = "ccxt"`` configuration) is built
against the Binance USDⓈ-M stand-in, loads its markets and yields its first tick, through the
real ccxt.pro code path; then ``sys.modules`` must hold the exchange modules of
``binanceusdm`` and of the ``binance`` classes it derives from, and no other exchange's.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from guardbot.runtime.ccxt_lazy import LazyPackage
from tests.daemon.test_daemon_ccxt import exchange_toml
from tests.standin.binance import StandinBinance

REPO = Path(__file__).resolve().parents[2]

#: Run in a fresh interpreter with the configuration's path: the daemon's feed to its first tick,
#: then the exchange modules in ``sys.modules`` (``ccxt[.async_support|.pro|.abstract].<name>``,
#: not base modules or dependencies).
_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, re, sys

    from guardbot.config import load_config
    from guardbot.daemon.feed_loop import default_feed
    from guardbot.feeds.base import TickUpdate

    async def main() -> None:
        feed = default_feed(load_config(sys.argv[1], {}))
        async with feed:
            async for item in feed.updates():
                if isinstance(item, TickUpdate):
                    break
        pattern = re.compile(r"^ccxt(\\.async_support|\\.pro|\\.abstract)?\\.([a-z0-9]+)$")
        skip = {"base", "static_dependencies", "async_support", "pro", "abstract"}
        exchanges = sorted(
            m for m in sys.modules if (g := pattern.match(m)) and g.group(2) not in skip
        )
        print(json.dumps({"exchanges": exchanges, "modules": len(sys.modules)}))

    asyncio.run(main())
    """
)


async def _run(standin: StandinBinance, config: Path, *prelude: str) -> dict[str, object]:
    script = "\n".join(prelude) + "\n" + _SCRIPT
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(config), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    done = asyncio.ensure_future(child.communicate())
    await standin.wait_subscribed("btcusdt@markPrice@1s", timeout=60)
    for n in range(600):  # a price until the feed has yielded its first tick (bounded)
        await standin.set_price("BTC/USDT:USDT", mark=str(60000 + n), bid="59999", ask="60001")
        await asyncio.wait([done], timeout=0.1)
        if done.done():
            break
    out, err = await asyncio.wait_for(done, 60)
    assert child.returncode == 0, err.decode()[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


@pytest.mark.integration
async def test_the_daemons_feed_loads_only_its_exchange_modules(
    tmp_path: Path, standin: StandinBinance
) -> None:
    config = tmp_path / "feed.toml"
    config.write_text(
        exchange_toml(standin) + '\n[feed]\nmode = "ccxt"\n[accounts.main]\nwallet = 1000\n',
        encoding="utf-8",
    )
    lazy = await _run(standin, config)
    assert lazy["exchanges"] == [
        "ccxt.abstract.binance",
        "ccxt.abstract.binanceusdm",
        "ccxt.async_support.binance",
        "ccxt.async_support.binanceusdm",
        "ccxt.pro.binance",
        "ccxt.pro.binanceusdm",
    ]
    # The same feed with ccxt imported whole first (as before the loader): every exchange.
    eager = await _run(standin, config, "import ccxt.pro")
    exchanges = eager["exchanges"]
    assert isinstance(exchanges, list) and len(exchanges) > 200
    modules = eager["modules"]
    assert isinstance(modules, int) and isinstance(lazy["modules"], int)
    assert lazy["modules"] < modules


def test_the_lazy_packages_hold_what_ccxt_s_own_do() -> None:
    """What the loader leaves out of the ``__init__`` modules comes back on first use, with the
    meaning ccxt gives it (run in a fresh interpreter: here ccxt is imported whole already)."""
    script = textwrap.dedent(
        """
        import json
        from guardbot.runtime.ccxt_lazy import install
        install()
        import ccxt, ccxt.async_support, ccxt.pro
        from ccxt.base.errors import NetworkError
        okx = ccxt.pro.okx
        print(json.dumps({
            "types": [type(m).__name__ for m in (ccxt, ccxt.async_support, ccxt.pro)],
            "okx": [c.__module__ for c in okx.__mro__[:3]],
            "errors": ccxt.NetworkError is NetworkError,
            "exchanges": [len(ccxt.exchanges), len(ccxt.pro.exchanges)],
            "version": ccxt.__version__ == ccxt.pro.__version__,
            "unknown": getattr(ccxt.pro, "no_such_exchange", None) is None,
            "sync": ccxt.binance.__module__,
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found["types"] == [LazyPackage.__name__] * 3
    assert found["okx"] == [
        "ccxt.pro.okx",
        "ccxt.async_support.okx",
        "ccxt.async_support.base.exchange",
    ]
    assert found["errors"] is True and found["version"] is True and found["unknown"] is True
    assert found["exchanges"][0] > 100 and found["exchanges"][1] > 50
    assert found["sync"] == "ccxt.binance"
