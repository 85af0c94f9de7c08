"""Client commands for a running daemon over MQTT: ``order``, ``cancel``, ``leverage``, ``status``.

``order``, ``cancel`` and ``leverage`` publish a control command (docs/contracts.md §2 shapes, plus
``requestId`` and ``token``) on ``<base>/cmd`` and wait for the daemon's reply on
``<base>/reply/<requestId>``; they subscribe to the reply topic *before* publishing, so a fast
reply cannot be missed. The token is read from the environment variable named by
``[control] token_env`` (default ``GUARDBOT_CONTROL_TOKEN``). ``status`` reads the retained
``<base>/status`` and ``<base>/accounts/+`` messages and prints them as tables.

Each command has ``add_<cmd>_arguments(parser)`` and ``run_<cmd>(args) -> int``. Exit status:
0 when the daemon accepted the command (or, for ``status``, a status was received); 1 when it
refused the command, no reply came within ``--timeout`` or the broker cannot be reached (one line
on stderr). Bad arguments and configurations raise :class:`~guardbot.errors.InputError` /
:class:`~guardbot.errors.ConfigError`, which the command line reports as exit 2, as for
``guardbot alerts``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TextIO

from guardbot.cli.alerts import (
    _ConnectFailed,
    _reason,
    _render_alert,
    broker_url,
    connected,
    payload_text,
)
from guardbot.core.commands import parse_command
from guardbot.core.num import fmt, parse_decimal
from guardbot.errors import ConfigError, InputError
from guardbot.formats.alert_text import people_number
from guardbot.formats.pretty import num, pct, price_at, price_places

if TYPE_CHECKING:
    import aiomqtt

    from guardbot.config import Config

__all__ = [
    "DEFAULT_TIMEOUT",
    "STATUS_QUIET_S",
    "Request",
    "add_cancel_arguments",
    "add_leverage_arguments",
    "add_order_arguments",
    "add_status_arguments",
    "cancel_requests",
    "leverage_requests",
    "order_requests",
    "render_status",
    "run_cancel",
    "run_leverage",
    "run_order",
    "run_status",
]

EXIT_OK = 0
EXIT_FAILURE = 1

#: Seconds to wait for the broker and the reply (``--timeout``).
DEFAULT_TIMEOUT = 10.0
#: ``status`` stops collecting retained messages after this long without a new one.
STATUS_QUIET_S = 0.3


# --- arguments ----------------------------------------------------------------------------------


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=None,
        help="TOML configuration: broker, topics, token_env (default: the embedded defaults)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_TIMEOUT,
        help=f"give up after SECONDS (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the raw JSON reply")


def _add_account(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--account", metavar="A", default=None, help="account id (default: the only account)"
    )


def add_order_arguments(parser: argparse.ArgumentParser) -> None:
    """``guardbot order SYMBOL SIDE AMOUNT [options]``."""
    parser.add_argument("symbol", metavar="SYMBOL", help="ccxt unified symbol, e.g. BTC/USDT:USDT")
    parser.add_argument("side", metavar="SIDE", choices=("buy", "sell"), help="buy or sell")
    parser.add_argument("amount", metavar="AMOUNT", help="size in contracts (exact decimal)")
    parser.add_argument(
        "--type",
        dest="order_type",
        choices=("market", "limit"),
        default=None,
        help="order type (default: limit with --price, otherwise market)",
    )
    parser.add_argument("--price", metavar="P", default=None, help="limit price")
    _add_account(parser)
    parser.add_argument("--reduce-only", action="store_true", help="may only reduce a position")
    parser.add_argument(
        "--position-side",
        choices=("long", "short"),
        default=None,
        help="the side of a hedged account the order opens (buy long) or reduces (sell long)",
    )
    parser.add_argument("--stop-loss", metavar="P", default=None, help="attached stop-loss price")
    parser.add_argument(
        "--widen-stop-loss",
        action="store_true",
        help="let --stop-loss replace the position's stop with a wider one"
        " (refused with STOP_LOSS_WOULD_WIDEN otherwise)",
    )
    parser.add_argument(
        "--take-profit", metavar="P", default=None, help="attached take-profit price"
    )
    parser.add_argument(
        "--leverage",
        metavar="L",
        default=None,
        help="send set_leverage for SYMBOL first (stops if it is refused)",
    )
    parser.add_argument(
        "--margin-mode",
        choices=("cross", "isolated"),
        default=None,
        help="send set_margin_mode for SYMBOL first (stops if it is refused)",
    )
    parser.add_argument(
        "--client-order-id", metavar="ID", default=None, help="order id (default: generated)"
    )
    _add_common(parser)


def add_cancel_arguments(parser: argparse.ArgumentParser) -> None:
    """``guardbot cancel ORDER_ID [--account A] [--symbol S]``."""
    parser.add_argument("order_id", metavar="ORDER_ID", help="the client order id to cancel")
    _add_account(parser)
    parser.add_argument(
        "--symbol", metavar="S", default=None, help="the order's symbol (informational)"
    )
    _add_common(parser)


def add_leverage_arguments(parser: argparse.ArgumentParser) -> None:
    """``guardbot leverage SYMBOL LEVERAGE [--account A]``."""
    parser.add_argument("symbol", metavar="SYMBOL", help="ccxt unified symbol")
    parser.add_argument("leverage", metavar="LEVERAGE", help="new leverage, >= 1")
    _add_account(parser)
    _add_common(parser)


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    """``guardbot status [-c FILE] [--json] [--timeout S]``."""
    _add_common(parser)


# --- building commands --------------------------------------------------------------------------


def _number(text: str | None, name: str) -> str | None:
    """An exact decimal string for the wire (never a float), or None; errors name the argument."""
    if text is None:
        return None
    return fmt(parse_decimal(text, name))


@dataclass(frozen=True, slots=True)
class Request:
    """One command to send (without ``requestId``/``token``); ``names`` maps the parser's field
    paths to the argument the user typed, for error messages."""

    body: dict[str, Any]
    names: Mapping[str, str]


def _checked(request: Request) -> Request:
    """Refuse locally what the daemon would refuse as ``bad_command`` (same parser)."""
    try:
        parse_command(request.body)
    except InputError as exc:
        raise InputError(request.names.get(exc.field, exc.field), exc.message) from None
    return request


def _with_account(body: dict[str, Any], account: str | None) -> dict[str, Any]:
    if account is not None:
        body["account"] = account
    return body


def order_requests(args: argparse.Namespace) -> list[Request]:
    """The commands ``guardbot order`` sends, in order: margin mode, leverage, then the order."""
    requests: list[Request] = []
    if args.margin_mode is not None:
        body = {"type": "set_margin_mode", "symbol": args.symbol, "marginMode": args.margin_mode}
        names = {"symbol": "SYMBOL", "account": "--account"}
        requests.append(Request(_with_account(body, args.account), names))
    leverage = _number(args.leverage, "--leverage")
    if leverage is not None:
        body = {"type": "set_leverage", "symbol": args.symbol, "leverage": leverage}
        names = {"symbol": "SYMBOL", "leverage": "--leverage", "account": "--account"}
        requests.append(Request(_with_account(body, args.account), names))
    price = _number(args.price, "--price")
    params: dict[str, Any] = {}
    if args.reduce_only:
        params["reduceOnly"] = True
    if args.position_side is not None:
        params["positionSide"] = args.position_side
    if args.widen_stop_loss:
        params["widenStopLoss"] = True
    for key, value, name in (
        ("stopLossPrice", args.stop_loss, "--stop-loss"),
        ("takeProfitPrice", args.take_profit, "--take-profit"),
    ):
        exact = _number(value, name)
        if exact is not None:
            params[key] = exact
    order: dict[str, Any] = {
        "type": "order",
        "id": args.client_order_id or f"cli-{uuid.uuid4().hex[:16]}",
        "symbol": args.symbol,
        "orderType": args.order_type or ("limit" if price is not None else "market"),
        "side": args.side,
        "amount": _number(args.amount, "AMOUNT"),
    }
    if price is not None:
        order["price"] = price
    if params:
        order["params"] = params
    names = {
        "id": "--client-order-id",
        "symbol": "SYMBOL",
        "amount": "AMOUNT",
        "price": "--price",
        "account": "--account",
        "params.stopLossPrice": "--stop-loss",
        "params.takeProfitPrice": "--take-profit",
    }
    requests.append(Request(_with_account(order, args.account), names))
    return [_checked(r) for r in requests]


def cancel_requests(args: argparse.Namespace) -> list[Request]:
    body: dict[str, Any] = {"type": "cancel", "id": args.order_id}
    if args.symbol is not None:
        body["symbol"] = args.symbol  # not used by the engine; kept for the journal's reader
    names = {"id": "ORDER_ID", "account": "--account"}
    return [_checked(Request(_with_account(body, args.account), names))]


def leverage_requests(args: argparse.Namespace) -> list[Request]:
    body = {
        "type": "set_leverage",
        "symbol": args.symbol,
        "leverage": _number(args.leverage, "LEVERAGE"),
    }
    names = {"symbol": "SYMBOL", "leverage": "LEVERAGE", "account": "--account"}
    return [_checked(Request(_with_account(body, args.account), names))]


# --- running ------------------------------------------------------------------------------------


def run_order(
    args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``guardbot order``: place an order (after the optional margin mode and leverage)."""
    return _run_requests("guardbot order", args, order_requests, out, err)


def run_cancel(
    args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``guardbot cancel``: cancel an open order by its client order id."""
    return _run_requests("guardbot cancel", args, cancel_requests, out, err)


def run_leverage(
    args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``guardbot leverage``: set a symbol's leverage."""
    return _run_requests("guardbot leverage", args, leverage_requests, out, err)


def _timeout(value: float) -> float:
    if not value > 0:  # also refuses NaN
        raise InputError("--timeout", f"must be a positive number of seconds, got {value}")
    return value


def _token(config: Config) -> str:
    token = config.control.token
    if token is None or not token.reveal():
        variable = config.control.token_env
        raise ConfigError(
            f"control token: environment variable {variable} is not set or empty "
            f"(set it to the daemon's control token)"
        )
    return token.reveal()


def _run_requests(
    command: str,
    args: argparse.Namespace,
    build: Callable[[argparse.Namespace], list[Request]],
    out: TextIO | None,
    err: TextIO | None,
) -> int:
    from guardbot.config import load_config

    timeout = _timeout(args.timeout)
    requests = build(args)  # argument errors before the configuration's
    config = load_config(args.config)
    token = _token(config)
    session = _Session(
        command, config, timeout, out or sys.stdout, err or sys.stderr, json_mode=args.json
    )
    session.source = _found(args)
    return asyncio.run(session.send([r.body for r in requests], token))


def _found(args: argparse.Namespace) -> str | None:
    """Which configuration file was found, when it was not given with -c (None otherwise)."""
    choice = getattr(args, "config_choice", None)
    if choice is None or choice.reason == "-c":
        return None
    return str(choice.describe())


class _Session:
    """One connection to the broker for one CLI invocation; reports failures on ``err``."""

    def __init__(
        self,
        command: str,
        config: Config,
        timeout: float,
        out: TextIO,
        err: TextIO,
        *,
        json_mode: bool,
    ) -> None:
        self.command = command
        self.config = config
        self.base = config.topic_base
        self.url = broker_url(config)
        self.timeout = timeout
        self.out = out
        self.err = err
        self.json_mode = json_mode
        self.connected = False
        #: The configuration file discovery chose (named when the broker or daemon is not
        #: where it says: the wrong file is a likely cause).
        self.source: str | None = None

    def fail(self, message: str) -> int:
        if self.source is not None and not message.startswith(("refused", "malformed")):
            message += f" [configuration: {self.source}]"
        self.err.write(f"{self.command}: {' '.join(message.splitlines())}\n")
        self.err.flush()
        return EXIT_FAILURE

    async def _connected(self, work: Callable[[aiomqtt.Client], Any]) -> Any:
        """Connect, run ``work(client)``, disconnect; raises ``_ConnectFailed``."""
        async with connected(self.config, role=self.command.split()[-1]) as client:
            self.connected = True
            return await work(client)

    async def send(self, bodies: Sequence[Mapping[str, Any]], token: str) -> int:
        """Send ``bodies`` one after the other; stop at the first refusal."""
        import aiomqtt

        async def work(client: aiomqtt.Client) -> int:
            for body in bodies:
                status = await self._request(client, body, token)
                if status != EXIT_OK:
                    return status
            return EXIT_OK

        try:
            async with asyncio.timeout(self.timeout):
                result: int = await self._connected(work)
                return result
        except TimeoutError:
            if not self.connected:
                return self.fail(f"cannot connect to {self.url}: timed out")
            return self.fail(
                f"no reply from the daemon within {self.timeout:g} s via {self.url} "
                f"(is it running with [control] enabled = true, under {self.base!r}?)"
            )
        except _ConnectFailed as exc:
            return self.fail(f"cannot connect to {self.url}: {_reason(exc.__cause__)}")
        except (aiomqtt.MqttError, OSError) as exc:
            return self.fail(f"connection to {self.url} lost: {_reason(exc)}")

    async def _request(self, client: aiomqtt.Client, body: Mapping[str, Any], token: str) -> int:
        from guardbot.mqtt.commands import reply_topic
        from guardbot.mqtt.topics import compact_json

        request_id = uuid.uuid4().hex
        topic = reply_topic(self.base, request_id)
        await client.subscribe(topic, qos=1)  # before publishing: the reply may come at once
        payload = compact_json({**body, "requestId": request_id, "token": token})
        await client.publish(f"{self.base}/cmd", payload, qos=1)
        async for message in client.messages:
            if message.topic.value == topic:
                await client.unsubscribe(topic)
                return self._show_reply(payload_text(message.payload))
        raise aiomqtt.MqttError("message stream ended")  # pragma: no cover - iterator raises

    def _show_reply(self, raw: str) -> int:
        try:
            reply = json.loads(raw, parse_float=Decimal)
        except (ValueError, RecursionError):
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            self.out.write(raw + "\n")
            return self.fail("malformed reply from the daemon")
        if self.json_mode:
            self.out.write(" ".join(raw.splitlines()) + "\n")
        else:
            self.out.write(_render_reply(reply))
        self.out.flush()
        if reply["ok"]:
            return EXIT_OK
        return self.fail(f"refused: {reply.get('code')}: {reply.get('reason')}")

    async def status(self) -> int:
        import aiomqtt

        async def work(client: aiomqtt.Client) -> tuple[Any, dict[str, Any]]:
            return await _collect(client, self.base, self.timeout)

        try:
            # The collection bounds itself by the timeout; this adds the connect time.
            async with asyncio.timeout(self.timeout + STATUS_QUIET_S):
                status, accounts = await self._connected(work)
        except TimeoutError:
            status, accounts = None, {}
        except _ConnectFailed as exc:
            return self.fail(f"cannot connect to {self.url}: {_reason(exc.__cause__)}")
        except (aiomqtt.MqttError, OSError) as exc:
            return self.fail(f"connection to {self.url} lost: {_reason(exc)}")
        if status is None:
            return self.fail(
                f"no status for {self.base!r} on {self.url} within {self.timeout:g} s "
                f"(has the daemon ever run with this instance?)"
            )
        if self.json_mode:
            line = json.dumps({"status": status, "accounts": accounts}, separators=(",", ":"))
            self.out.write(line + "\n")
        else:
            self.out.write(
                render_status(
                    status,
                    accounts,
                    int(time.time() * 1000),
                    stale_after_s=self.config.feed.stale_after_s,
                )
            )
        self.out.flush()
        return EXIT_OK


def _render_reply(reply: Mapping[str, Any]) -> str:
    head = "ok" if reply["ok"] else f"refused {reply.get('code')}: {reply.get('reason')}"
    lines = [f"{head} (request {reply.get('requestId')})"]
    events = reply.get("events")
    if isinstance(events, list):
        lines.extend("  " + _render_alert(json.dumps(e)) for e in events)
    return "\n".join(lines) + "\n"


# --- status -------------------------------------------------------------------------------------


def run_status(
    args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """``guardbot status``: print the daemon's retained status and account snapshots."""
    from guardbot.config import load_config

    timeout = _timeout(args.timeout)
    config = load_config(args.config)
    session = _Session(
        "guardbot status",
        config,
        timeout,
        out or sys.stdout,
        err or sys.stderr,
        json_mode=args.json,
    )
    session.source = _found(args)
    return asyncio.run(session.status())


async def _collect(client: aiomqtt.Client, base: str, timeout: float) -> tuple[Any, dict[str, Any]]:
    """Retained status and account snapshots, within ``timeout``: until the status came and no
    *retained* message for :data:`STATUS_QUIET_S` (the broker sends them right after the SUBACK).
    Live messages update what was collected but do not extend the wait, or a busy daemon
    (snapshots every second) would keep the command waiting until the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    quiet_at = loop.time() + STATUS_QUIET_S
    status_topic = f"{base}/status"
    accounts_prefix = f"{base}/accounts/"
    await client.subscribe([(status_topic, 1), (accounts_prefix + "+", 1)])
    status: Any = None
    accounts: dict[str, Any] = {}
    messages = aiter(client.messages)
    while (now := loop.time()) < deadline and (status is None or now < quiet_at):
        wait = deadline - now if status is None else min(deadline, quiet_at) - now
        try:
            async with asyncio.timeout(wait):
                message = await anext(messages)
        except TimeoutError:
            continue  # the loop condition decides
        if message.retain:
            quiet_at = loop.time() + STATUS_QUIET_S
        topic = message.topic.value
        decoded = _decode(payload_text(message.payload))
        if topic == status_topic:
            status = decoded if isinstance(decoded, dict) else {"state": "malformed"}
        elif topic.startswith(accounts_prefix) and decoded is not None:
            accounts[topic[len(accounts_prefix) :]] = decoded
    return status, accounts


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _dec(value: object) -> Decimal | None:
    """A wire number (decimal string or JSON number) as Decimal; None when absent or garbage."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _age(now_ms: int, ts: object) -> str:
    """The time since ``ts`` (epoch ms), or ``-`` without one."""
    if isinstance(ts, bool) or not isinstance(ts, int):
        return "-"
    return _duration(now_ms - ts)


def _duration(ms: int) -> str:
    """``1.2s`` / ``3m 04s`` / ``2h 05m``; a negative duration (clock skew) shows as 0."""
    seconds = max(0, ms) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    return [
        indent
        + "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip()
        for row in (headers, *rows)
    ]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def render_status(
    status: Mapping[str, Any],
    accounts: Mapping[str, Any],
    now_ms: int,
    *,
    stale_after_s: float | None = None,
) -> str:
    """The ``guardbot status`` tables; missing or malformed fields print as ``-``.

    Prices show at their market's decimals (from the prices it quoted), amounts without trailing
    zeros, money to the cent. A feed is ``fresh`` only if the daemon said so *and* its last tick
    is at most ``stale_after_s`` old now: the retained status may be minutes old.
    """
    state = status.get("state", "-")
    version = status.get("version") or "-"
    lines = [f"daemon   {state}  version {version}  status age {_age(now_ms, status.get('ts'))}"]
    feeds = _mapping(status.get("feeds"))
    if feeds:
        rows = []
        for symbol in sorted(feeds):
            feed = _mapping(feeds[symbol])
            rows.append(
                [symbol, _freshness(feed, now_ms, stale_after_s), _age(now_ms, feed.get("lastTs"))]
            )
        lines += ["", "feeds", *_table(["SYMBOL", "STATE", "LAST TICK AGE"], rows)]
    outbox = _mapping(status.get("outbox"))
    if outbox:
        oldest = outbox.get("oldestAgeMs")
        oldest_text = "-"
        if isinstance(oldest, int) and not isinstance(oldest, bool):
            oldest_text = _duration(oldest)
        lines += ["", f"outbox   depth {outbox.get('depth', '-')}  oldest {oldest_text}"]
    notify = _mapping(status.get("notify"))
    if notify:  # [notify] on: alerts not yet handed to the notification services
        lines.append(f"notify   backlog {notify.get('backlog', '-')}")
    lines += _render_accounts(accounts)
    return "\n".join(lines) + "\n"


def _freshness(feed: Mapping[str, Any], now_ms: int, stale_after_s: float | None) -> str:
    stale = feed.get("stale")
    if stale is True:
        return "stale"
    if stale is not False:
        return "-"
    last = feed.get("lastTs")
    if isinstance(last, bool) or not isinstance(last, int) or stale_after_s is None:
        return "fresh"
    # The daemon's "fresh" is as old as its retained status: judge the tick's age now.
    return "stale" if now_ms - last > stale_after_s * 1000 else "fresh"


def _price_places(accounts: Mapping[str, Any]) -> dict[str, int]:
    """Per symbol, the decimals its market quotes in: those of its mark prices (the exchange
    sends them at its tick size); without a position, those of its order prices. Entry prices
    are averages (and slippage) and liquidation prices computed: neither is a sample."""
    marks: dict[str, list[Decimal | None]] = {}
    orders: dict[str, list[Decimal | None]] = {}
    for snap in accounts.values():
        snap = _mapping(snap)
        for pos in _list(snap.get("positions")):
            marks.setdefault(str(pos.get("symbol") or "-"), []).append(_dec(pos.get("markPrice")))
        for order in _list(snap.get("openOrders")):
            found = orders.setdefault(str(order.get("symbol") or "-"), [])
            found += [_dec(order.get("price")), _dec(order.get("triggerPrice"))]
    return {
        symbol: price_places(marks.get(symbol) or orders.get(symbol) or [])
        for symbol in {*marks, *orders}
    }


def _list(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _render_accounts(accounts: Mapping[str, Any]) -> list[str]:
    if not accounts:
        return ["", "accounts: none published"]
    places = _price_places(accounts)
    account_rows: list[list[str]] = []
    position_rows: list[list[str]] = []
    order_rows: list[list[str]] = []
    # mirrored accounts (a real exchange account, read-only) get both liquidation prices
    any_mirror = any("mirror" in _mapping(accounts[n]) for n in accounts)
    for name in sorted(accounts):
        snap = _mapping(accounts[name])
        mirror = _mapping(snap.get("mirror")) if "mirror" in snap else None
        mirrored = _mapping(mirror.get("positions")) if mirror is not None else {}
        positions = [_mapping(p) for p in snap.get("positions") or [] if isinstance(p, Mapping)]
        total = _dec(_mapping(_mapping(snap.get("balance")).get("USDT")).get("total"))
        if total is None:
            total = _dec(snap.get("wallet"))
        pnl = [_dec(p.get("unrealizedPnl")) for p in positions]
        equity = (
            None if total is None else total + sum((x for x in pnl if x is not None), Decimal(0))
        )
        ratio = _dec(snap.get("marginRatio"))
        account_rows.append(
            [
                f"{name} (mirror)" if mirror is not None else name,
                num(_dec(snap.get("wallet")), 2),
                num(equity, 2),
                pct(ratio),
                str(snap.get("tradingState") or "-"),
            ]
        )
        marks: dict[str, Decimal] = {}
        for pos in positions:
            symbol = str(pos.get("symbol") or "-")
            at = places.get(symbol, 2)
            mark = _dec(pos.get("markPrice"))
            if mark is not None:
                marks[symbol] = mark
            liq = _dec(pos.get("liquidationPrice"))
            row = [
                name,
                symbol,
                str(pos.get("side") or "-"),
                people_number(_dec(pos.get("contracts"))),
                price_at(_dec(pos.get("entryPrice")), at),
                price_at(mark, at),
                price_at(liq, at),
                _distance(mark, liq),
            ]
            if any_mirror:
                theirs = _mapping(mirrored.get(symbol)).get("exchangeLiquidationPrice")
                row.append(price_at(_dec(theirs), at) if mirror is not None else "")
            position_rows.append(row)
        for order in _list(snap.get("openOrders")):
            order_rows.append(_order_row(name, order, marks, places))
    headers = ["ACCOUNT", "WALLET", "EQUITY", "MARGIN RATIO", "STATE"]
    lines = ["", "accounts", *_table(headers, account_rows)]
    if position_rows:
        headers = ["ACCOUNT", "SYMBOL", "SIDE", "CONTRACTS", "ENTRY", "MARK", "LIQ PRICE", "DIST"]
        if any_mirror:
            headers.append("EXCHANGE LIQ")
        lines += ["", "positions", *_table(headers, position_rows)]
    if order_rows:
        headers = ["ACCOUNT", "ID", "SYMBOL", "KIND", "SIDE", "AMOUNT", "TRIGGER", "PRICE", "DIST"]
        lines += ["", "open orders (guardbot cancel ID)", *_table(headers, order_rows)]
    else:
        lines += ["", "open orders: none"]
    return lines


def _distance(mark: Decimal | None, price: Decimal | None) -> str:
    """How far ``price`` is from the mark, in % of the mark."""
    if mark is None or price is None or mark <= 0:
        return "-"
    return f"{num(abs(mark - price) / mark * 100, 2)}%"


def _order_row(
    account: str, order: Mapping[str, Any], marks: Mapping[str, Decimal], places: Mapping[str, int]
) -> list[str]:
    """One open order: a stop or take-profit (its trigger), a trailing stop, a resting limit."""
    symbol = str(order.get("symbol") or "-")
    at = places.get(symbol, 2)
    trigger = _dec(order.get("triggerPrice"))
    price = _dec(order.get("price"))
    kind = str(order.get("kind") or order.get("orderType") or "-")
    if order.get("trailingPercent") is not None:
        kind += f" {num(_dec(order.get('trailingPercent')), 2)}%"
    if order.get("reduceOnly") and not order.get("closePosition"):
        kind += " reduce-only"
    amount = "all" if order.get("closePosition") else people_number(_dec(order.get("amount")))
    watched = trigger if trigger is not None else price
    return [
        account,
        str(order.get("id") or "-"),
        symbol,
        kind,
        str(order.get("side") or "-"),
        amount,
        price_at(trigger, at),
        price_at(price, at) if price is not None else "market",
        _distance(marks.get(symbol), watched),
    ]
