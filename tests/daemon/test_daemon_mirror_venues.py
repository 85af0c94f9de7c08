"""Mirror accounts end to end on each further venue's real ccxt path: private stand-in ->
ccxt.pro -> daemon -> Mosquitto (what tests/daemon/test_daemon_mirror.py checks for Binance).

The daemon is configured as a user would (``[exchange] id``, ``[accounts.real] mirror = true``,
keys in the environment it is given, the stand-in's URLs in ``[exchange.ccxt]``). The private
stand-ins record every request: a read-only mirror sends nothing but GETs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from guardbot.config import load_config
from guardbot.daemon.service import Daemon
from tests.broker import Mosquitto
from tests.daemon.test_daemon import Subscriber
from tests.daemon.test_daemon_ccxt import _until, daemon_sections, toml_value
from tests.daemon.test_daemon_mirror import (
    alert_of,
    drift_alerted,
    hedged_mirror,
    imminent_not_liquidated,
    margin_alerts_match,
    mark,
    mark_until_imminent,
    rebuilt_from_the_exchange,
    reconciled_after_drop,
    secrets_kept,
    settled_after_wallet,
    severity_of,
    snapshot_has,
)
from tests.standin.private_venues import PRIVATE_VENUES, guardbot_env

pytestmark = pytest.mark.integration

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"

#: venue -> (private stand-in class, the environment holding its keys)
VENUES = {
    venue: (factory, guardbot_env(credentials))
    for venue, (factory, credentials) in PRIVATE_VENUES.items()
}
MIRROR = """
[accounts.real]
mirror = true
mirror_poll_s = 1
"""
OWN_VARIABLES = """api_key_env = "REAL_API_KEY"
secret_env = "REAL_SECRET"
password_env = "REAL_PASSWORD"
"""


@pytest_asyncio.fixture(params=sorted(VENUES))
async def standin(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    factory, _env = VENUES[request.param]
    async with factory((BTC, ETH), wallet="1000") as server:
        yield server


def write_config(tmp_path: Path, broker: Mosquitto, standin: Any, mirror: str = MIRROR) -> Path:
    ccxt_lines = "\n".join(
        f"{key} = {toml_value(value)}" for key, value in standin.ccxt_config().items()
    )
    path = tmp_path / "live.toml"
    # daemon_sections brings a paper account "main" too: paper and mirror side by side
    path.write_text(
        f"""
[guardbot]
instance = "live"
data_dir = "{tmp_path / "data"}"
log_format = "json"
log_level = "warning"

[exchange]
id = "{standin.exchange_id}"
symbols = ["{BTC}", "{ETH}"]

[exchange.ccxt]
enableRateLimit = false
{ccxt_lines}

{daemon_sections(broker)}
{mirror}
""",
        encoding="utf-8",
    )
    return path


def contracts(standin: Any, base: str) -> Decimal:
    return Decimal(base) / standin.contract_size(BTC)


@asynccontextmanager
async def running(
    tmp_path: Path,
    mosquitto: Mosquitto,
    standin: Any,
    env: dict[str, str] | None = None,
    mirror: str = MIRROR,
) -> AsyncIterator[tuple[Daemon, Subscriber]]:
    env = env if env is not None else VENUES[standin.exchange_id][1]
    config = load_config(write_config(tmp_path, mosquitto, standin, mirror), env)
    daemon = Daemon(config, snapshot_interval=0.1)
    stop = asyncio.Event()
    await quoted(standin)
    async with Subscriber(mosquitto, ["guardbot/live/#"]) as sub:
        task = asyncio.create_task(daemon.run(stop))
        try:
            await standin.wait_streaming([BTC, ETH], timeout=20)
            await quoted(standin)
            yield daemon, sub
        finally:
            stop.set()
            assert await task == 0


async def quoted(standin: Any) -> None:
    await standin.set_price(ETH, mark="3000", bid="2999.9", ask="3000.1", last="3000")
    await standin.set_price(BTC, mark="60000", bid="59999.9", ask="60000.1", last="60000")


async def test_mirror_end_to_end(
    tmp_path: Path, mosquitto: Mosquitto, standin: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    secrets = list(VENUES[standin.exchange_id][1].values())
    async with asyncio.timeout(120), running(tmp_path, mosquitto, standin) as (daemon, sub):
        (loop,) = daemon.mirrors
        await _until(
            lambda: loop.follower is not None and standin.open_private_sockets > 0, "stream"
        )
        await standin.wait_for(lambda: standin.private_subscriptions >= standin.private_channels)
        # 1. A position opened on the exchange appears in the retained snapshot within seconds.
        started = time.monotonic()
        await standin.set_position(BTC, contracts(standin, "0.5"), "60000", leverage=20)

        def has_btc(p: dict[str, Any]) -> bool:
            return any(q["symbol"] == BTC for q in p.get("positions", []))

        await sub.until(snapshot_has("real", has_btc))
        print(f"position on the exchange -> retained snapshot: {time.monotonic() - started:.2f} s")
        # contracts x contract size: 0.5 BTC at 60,000 whatever the venue counts in (Gate's and
        # MEXC's contracts are 0.0001 BTC)
        (btc,) = [q for q in sub.received[-1][1]["positions"] if q["symbol"] == BTC]
        assert Decimal(btc["contracts"]) * Decimal(btc["contractSize"]) == Decimal("0.5")
        assert Decimal(btc["notional"]) == 30000

        # 2. The mark falls: margin alerts whose liquidation price matches the exchange's within
        #    mirror_tolerance, then liquidation_imminent, and never a liquidation of guardbot's.
        theirs = standin.liquidation_price(BTC)
        assert theirs is not None
        with_theirs = snapshot_has(
            "real",
            lambda p: any(
                v.get("exchangeLiquidationPrice") is not None
                for v in p.get("mirror", {}).get("positions", {}).values()
            ),
        )
        # a venue without a position stream (MEXC) shows the position from REST, with the
        # exchange's liquidation price, in the very snapshot step 1 waited for
        if not any(with_theirs(t, p) for t, p in sub.received):
            await sub.until(with_theirs)
        await mark_until_imminent(daemon, standin, sub, range(59500, 40000, -250))
        margin_alerts_match(sub, theirs)
        imminent_not_liquidated(sub, theirs)
        assert daemon.engine.account("real").positions[BTC].contracts == contracts(standin, "0.5")

        # 3. An account update pushed by the exchange is reflected at once.
        await mark(standin, 60000)
        await standin.set_wallet("1500")
        await sub.until(snapshot_has("real", lambda p: Decimal(p["wallet"]) == 1500))
        # ... and once the positions are read again, the exchange's liquidation price for the
        # new wallet, within tolerance of guardbot's: no drift outstanding before step 4
        await settled_after_wallet(standin, sub, 1500)

        # 4. The exchange reports a liquidation price 10 % off: mirror_drift with both values.
        await drift_alerted(standin, sub, theirs)

        # 5. The private socket drops: a REST reconciliation follows the reconnect, and what the
        #    exchange did meanwhile arrives.
        await reconciled_after_drop(standin, sub, loop, contracts(standin, "2"))

        # 6. The position closes on the exchange (a stop): position_closed with its reason.
        await standin.wait_for(lambda: standin.open_private_sockets > 0, timeout=30)
        await _until(lambda: loop.follower is not None and loop.follower.connects >= 2, "resub")
        await standin.wait_for(
            lambda: standin.private_subscriptions >= 2 * standin.private_channels, timeout=30
        )
        # (MEXC: a liquidation, since its order push cannot tell a stop's order from a close)
        how, reason = (
            ("LIQUIDATION", "liquidation")
            if standin.exchange_id == "mexc"
            else ("STOP_MARKET", "stop_loss")
        )
        await standin.close_position(ETH, how=how)
        await sub.until(alert_of("position_closed"))
        (closed,) = [p for p in sub.alerts() if p["type"] == "position_closed"]
        assert (closed["symbol"], closed["side"], closed["reason"]) == (ETH, "short", reason)

        # 7. Commands that would change the mirror are refused by the engine.
        events = await daemon.control_command(
            {"type": "set_leverage", "account": "real", "symbol": BTC, "leverage": "5"}
        )
        assert [(e["type"], e["code"]) for e in events] == [("order_rejected", "MIRROR_READ_ONLY")]

    # Read-only: nothing but GETs reached the exchange.
    assert standin.writes() == []
    assert standin.unknown_paths == []
    assert standin.auth_failures == 0
    secrets_kept(capfd, tmp_path, sub, secrets)


async def test_liquidation_price_before_its_wallet_is_no_drift(
    tmp_path: Path, mosquitto: Mosquitto, standin: Any
) -> None:
    """The exchange's new liquidation price (for a new wallet) reaches guardbot before the new
    wallet: OKX and Bybit push positions and wallet in separate frames, and a REST read of the
    positions can fall between the change and its wallet frame. Made deterministic here: the
    wallet changes on the exchange unpushed, the follower reads the positions (new liquidation
    price, old wallet), then the wallet frame comes. A comparison of the two halves is not
    drift: no mirror_drift, then both figures agree."""
    await standin.set_position(BTC, contracts(standin, "0.5"), "60000", leverage=20, push=False)
    slow_poll = MIRROR.replace("mirror_poll_s = 1", "mirror_poll_s = 600")  # no REST between
    async with (
        asyncio.timeout(90),
        running(tmp_path, mosquitto, standin, mirror=slow_poll) as (daemon, sub),
    ):
        (loop,) = daemon.mirrors
        await settled_after_wallet(standin, sub, 1000)
        await standin.wait_for(lambda: standin.private_subscriptions >= standin.private_channels)
        follower = loop.follower
        assert follower is not None
        old = standin.liquidation_price(BTC)
        await standin.set_wallet("1500", push=False)
        new = standin.liquidation_price(BTC)
        assert abs(new - old) / 60000 > Decimal("0.005")  # beyond tolerance: 1.7 % of the mark
        await follower._positions_only()  # the positions frame: new liqPx, wallet still 1000

        def halves(p: dict[str, Any]) -> bool:
            view = p.get("mirror", {}).get("positions", {}).get(BTC) or {}
            theirs = view.get("exchangeLiquidationPrice")
            return Decimal(p["wallet"]) == 1000 and theirs is not None and Decimal(theirs) == new

        await sub.until(snapshot_has("real", halves))
        await standin.set_wallet("1500")  # the wallet frame
        await settled_after_wallet(standin, sub, 1500)
    assert not [p for p in sub.alerts() if p["type"] == "mirror_drift"]
    assert standin.writes() == []


async def test_wrong_keys_one_clear_error(
    tmp_path: Path, mosquitto: Mosquitto, standin: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """The account's own variables (a sub-account's keys): the feed runs without keys, so only
    the mirror meets the refusal. (With the default variables the feed's ``load_markets`` would
    meet it first on these venues: ccxt lists currencies through a signed call once a key is
    set, and the daemon stops on that, naming the exchange.)"""
    mirror = MIRROR + OWN_VARIABLES
    names = ("REAL_API_KEY", "REAL_SECRET", "REAL_PASSWORD")
    env = {name: f"wrong-{i}-4242" for i, name in enumerate(names)}
    async with (
        asyncio.timeout(60),
        running(tmp_path, mosquitto, standin, env, mirror) as (
            daemon,
            sub,
        ),
    ):
        await sub.until(alert_of("mirror_failed"))
        failures = standin.auth_failures
        await asyncio.sleep(2.5)  # two and a half mirror_poll_s: a retry would show
        assert standin.auth_failures == failures == 1
        assert daemon.status_info()["state"] in ("online", "degraded")
    (failed,) = [p for p in sub.alerts() if p["type"] == "mirror_failed"]
    assert failed["account"] == "real" and severity_of(sub, "mirror_failed") == "critical"
    assert "'real'" in failed["reason"] and "REAL_API_KEY" in failed["reason"]
    logs = capfd.readouterr()
    for secret in env.values():
        assert secret not in failed["reason"]
        assert secret not in logs.out and secret not in logs.err
    assert standin.writes() == []


async def test_hedge_mode_account_is_mirrored_in_hedge_mode(
    tmp_path: Path, mosquitto: Mosquitto, standin: Any
) -> None:
    await standin.set_position(BTC, contracts(standin, "0.5"), "60000", side="LONG", push=False)
    await standin.set_position(BTC, -contracts(standin, "0.2"), "61000", side="SHORT", push=False)
    async with asyncio.timeout(60), running(tmp_path, mosquitto, standin) as (daemon, sub):
        account = await hedged_mirror(daemon, sub)
        await _until(lambda: standin.open_private_sockets > 0, "the private stream")
        await standin.wait_for(lambda: standin.private_subscriptions >= standin.private_channels)
        # MEXC's order push does not say that a TP/SL placed the closing order: a manual close
        how, reason = (
            ("MARKET", "order")
            if standin.exchange_id == "mexc"
            else ("TAKE_PROFIT_MARKET", "take_profit")
        )
        await standin.close_position(BTC, side="SHORT", how=how)
        await sub.until(alert_of("position_closed"))
    (closed,) = [p for p in sub.alerts() if p["type"] == "position_closed"]
    assert (closed["side"], closed["reason"]) == ("short", reason)
    assert [p.side for p in account.positions.values()] == ["long"]
    assert standin.writes() == []


async def test_restart_rebuilds_from_the_exchange(
    tmp_path: Path, mosquitto: Mosquitto, standin: Any
) -> None:
    await standin.set_position(BTC, contracts(standin, "0.5"), "60000", push=False)
    async with asyncio.timeout(60), running(tmp_path, mosquitto, standin) as (daemon, sub):
        await sub.until(snapshot_has("real", lambda p: len(p.get("positions", [])) == 1))
    # Meanwhile, on the exchange: BTC closed, an ETH short opened.
    await standin.set_position(BTC, "0", "0", push=False)
    await standin.set_position(ETH, -contracts(standin, "2"), "3000", push=False)
    async with asyncio.timeout(60), running(tmp_path, mosquitto, standin) as (daemon, sub):
        await rebuilt_from_the_exchange(daemon, sub)
    (closed,) = [p for p in sub.alerts() if p["type"] == "position_closed"]
    assert (closed["symbol"], closed["reason"]) == (BTC, "unknown")
    assert standin.writes() == []


async def test_isolated_position_liquidation_price_matches(
    tmp_path: Path, mosquitto: Mosquitto, standin: Any
) -> None:
    """An isolated short: guardbot's liquidation price in the margin alerts is the exchange's
    (each venue's isolated rule: Bybit's frozen at entry, OKX's with the taker rate)."""
    await standin.set_position(
        BTC, -contracts(standin, "0.5"), "60000", margin="isolated", isolated_wallet="1500",
        leverage=20, push=False,
    )  # fmt: skip
    theirs = standin.liquidation_price(BTC)
    assert theirs is not None
    async with asyncio.timeout(90), running(tmp_path, mosquitto, standin) as (daemon, sub):
        await sub.until(snapshot_has("real", lambda p: bool(p.get("mirror", {}).get("positions"))))
        (position,) = daemon.engine.account("real").positions.values()
        assert (position.margin_mode, position.isolated_wallet) == ("isolated", 1500)
        await mark_until_imminent(daemon, standin, sub, range(60500, 70000, 250))
    margin = margin_alerts_match(sub, theirs)
    ours = margin[-1]["liquidationPrice"]
    print(f"{standin.exchange_id} isolated liquidation: guardbot {ours}, exchange {theirs}")
    assert not [p for p in sub.alerts() if p["type"] == "mirror_drift"]
    assert standin.writes() == []
