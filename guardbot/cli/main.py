"""The ``guardbot`` command line: ``calc``, ``simulate``, ``run``, ``alerts``, the daemon clients
(``order``, ``cancel``, ``leverage``, ``status``, ``health``), ``record``, ``replay``, ``report``.

Error contract (docs/contracts.md): bad input never produces a traceback. It produces exit status 2
and exactly one line on stderr, ``guardbot <command>: <field>: <message>``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, NoReturn, Protocol, TextIO, cast

from guardbot import __version__
from guardbot.core.num import fmt
from guardbot.errors import ConfigError, GuardbotError
from guardbot.formats.jsonio import loads_exact

# The choices of guardbot.log_level (a test keeps them equal to guardbot.config's); not imported
# from there, so that `guardbot calc` does not load the configuration package.
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

if TYPE_CHECKING:
    from guardbot.cli.calc import CalcResult
    from guardbot.config.discover import ConfigChoice

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _UsageError(Exception):
    """A command-line usage problem, reported like any other bad input."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports usage errors as one line instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see {self.prog} --help)")


class _BadInput(Exception):
    """Input that could not be read or decoded; ``str()`` is the one-line report."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(_wanted(argv))
    command = "guardbot"
    try:
        try:
            args = parser.parse_args(argv)
        except _UsageError as exc:
            _report(command, str(exc))
            return EXIT_USAGE
        except SystemExit as exc:  # --help and --version exit through argparse
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        if args.command is None:
            names = ", ".join(["calc", "simulate", "run", "alerts", *_COMMANDS])
            _report(command, f"a command is required: {names} (guardbot --help)")
            return EXIT_USAGE
        command = f"guardbot {args.command}"
        try:
            with _log_level(args.log_level):
                _discover(args)
                return _dispatch(args)
        except ConfigError as exc:
            _report_config(command, exc)
            return EXIT_USAGE
        except (GuardbotError, _BadInput) as exc:
            _report(command, str(exc))
            return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


#: Commands that read the daemon's configuration: without -c they look for it (config/discover).
_DISCOVERING = {"run", "alerts", "order", "cancel", "leverage", "status", "health", "config"}
#: Options of the top-level parser that take a value (skipped when looking for the command).
_VALUED = {"--log-level"}
_LOG_LEVEL_ENV = "GUARDBOT_GUARDBOT_LOG_LEVEL"


def _wanted(argv: Sequence[str]) -> str | None:
    """The command word of ``argv``: its first word that is neither an option nor an option's
    value."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


@contextlib.contextmanager
def _log_level(level: str | None) -> Iterator[None]:
    """``--log-level`` is ``GUARDBOT_GUARDBOT_LOG_LEVEL`` for this command (so every command that
    loads the configuration honours it, and ``config check`` shows it)."""
    if level is None:
        yield
        return
    saved = os.environ.get(_LOG_LEVEL_ENV)
    os.environ[_LOG_LEVEL_ENV] = level
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(_LOG_LEVEL_ENV, None)
        else:
            os.environ[_LOG_LEVEL_ENV] = saved


def _discover(args: argparse.Namespace) -> None:
    """Without ``-c``: ``args.config`` becomes the discovered file (or None: the defaults);
    ``args.config_choice`` says which and why."""
    if args.command not in _DISCOVERING or not hasattr(args, "config"):
        return
    from guardbot.config.discover import find_config

    choice = find_config(args.config)
    args.config = None if choice.path is None else str(choice.path)
    args.config_choice = choice


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "calc":
        return _calc(args.file, pretty=args.pretty)
    if args.command == "run":
        return _run(args.config, args.strategy, getattr(args, "config_choice", None))
    if args.command in _COMMANDS:
        module, _add, run, _help, _description = _COMMANDS[args.command]
        status: int = getattr(importlib.import_module(module), run)(args)
        return status
    if args.command == "alerts":
        from guardbot.cli.alerts import run_alerts

        return run_alerts(args.config, json_mode=args.json, count=args.count, timeout=args.timeout)
    return _simulate(args.file, pretty=args.pretty)


def _build_parser(wanted: str | None = None, *, every: bool = False) -> _Parser:
    """The parser; the arguments of ``wanted``'s module only (``every``: of every command, for
    the shell completion)."""
    parser = _Parser(
        prog="guardbot",
        description="Shadow margin engine for USDT-margined perpetual futures.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"guardbot {__version__}")
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=None,
        help="override guardbot.log_level (the same as GUARDBOT_GUARDBOT_LOG_LEVEL)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    calc = commands.add_parser(
        "calc",
        help="margin snapshot of positions given as one JSON object",
        description="Read one JSON object (docs/contracts.md §1) and print the margin snapshot.",
    )
    simulate = commands.add_parser(
        "simulate",
        help="replay JSON Lines events through the engine",
        description="Read JSON Lines (docs/contracts.md §2) and print the resulting events.",
    )
    for sub in (calc, simulate):
        sub.add_argument(
            "file", nargs="?", default="-", metavar="FILE", help="input file, - for stdin"
        )
        sub.add_argument(
            "--pretty", action="store_true", help="print readable tables instead of JSON"
        )
    run = commands.add_parser(
        "run",
        help="run the daemon: feed, engine, journal, MQTT alerts",
        description="Run the guard daemon until SIGINT or SIGTERM.",
    )
    run.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=None,
        help="TOML configuration (default: $GUARDBOT_CONFIG, ./guardbot.toml, "
        "$XDG_CONFIG_HOME/guardbot/guardbot.toml, /etc/guardbot/guardbot.toml, else the "
        "embedded offline demo defaults)",
    )
    run.add_argument(
        "--strategy",
        metavar="FILE.py:Class",
        default=None,
        help="run this strategy on the paper exchange (overrides [strategy] path)",
    )
    alerts = commands.add_parser(
        "alerts",
        help="print the alerts and status a daemon publishes over MQTT",
        description="Subscribe to <prefix>/<instance>/alerts/# and .../status and print them.",
    )
    alerts.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=None,
        help="TOML configuration (broker, topics; found as for guardbot run without it)",
    )
    alerts.add_argument("--json", action="store_true", help="print raw payloads, one per line")
    alerts.add_argument(
        "--count", type=int, metavar="N", default=None, help="exit 0 after N alert messages"
    )
    alerts.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        default=None,
        help="exit after SECONDS (status 1 if --count was not reached)",
    )
    _add_commands(commands, wanted, every=every)
    for name, sub in commands.choices.items():
        if name in _DISCOVERING:
            _add_log_level(sub)
    return parser


def _add_log_level(parser: argparse.ArgumentParser) -> None:
    """``--log-level`` after the command too (``guardbot run --log-level debug``), down to its
    own subcommands (``config check``); not given there, it leaves the top-level one alone."""
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="override guardbot.log_level (as before the command)",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_log_level(child)


#: Commands implemented in their own modules: name -> (module, function adding the arguments,
#: function running it with the parsed arguments, help, description). Modules are imported only
#: for the command that runs (and for ``--help``), so ``calc`` does not pay for matplotlib.
_COMMANDS: dict[str, tuple[str, str, str, str, str]] = {
    "order": (
        "guardbot.cli.control",
        "add_order_arguments",
        "run_order",
        "place an order on a running daemon (MQTT control)",
        "Send an order command on <prefix>/<instance>/cmd and print the daemon's reply.",
    ),
    "cancel": (
        "guardbot.cli.control",
        "add_cancel_arguments",
        "run_cancel",
        "cancel an open order on a running daemon (MQTT control)",
        "Send a cancel command on <prefix>/<instance>/cmd and print the daemon's reply.",
    ),
    "leverage": (
        "guardbot.cli.control",
        "add_leverage_arguments",
        "run_leverage",
        "set a symbol's leverage on a running daemon (MQTT control)",
        "Send a set_leverage command on <prefix>/<instance>/cmd and print the daemon's reply.",
    ),
    "status": (
        "guardbot.cli.control",
        "add_status_arguments",
        "run_status",
        "print a running daemon's status, accounts and positions",
        "Read the retained <prefix>/<instance>/status and .../accounts/+ messages.",
    ),
    "record": (
        "guardbot.cli.record",
        "add_arguments",
        "run_record",
        "record live ticks to JSON Lines (.gz) in the replay format",
        "Record merged ticks from a ccxt.pro exchange until SIGINT/SIGTERM, --duration or --count.",
    ),
    "replay": (
        "guardbot.cli.replay",
        "add_arguments",
        "run_replay",
        "run a ccxt strategy over recorded ticks on the paper exchange, as fast as possible",
        "Deterministic dry run: the strategy trades on guardbot's paper exchange over a replay "
        "file; events, samples and a summary are written to RUN_DIR.",
    ),
    "report": (
        "guardbot.report",
        "add_arguments",
        "run_report",
        "write an HTML report with PNG charts of a replay run",
        "Equity, margin ratio against the alert levels, prices with entries, exits, stops, "
        "alerts and liquidations, and a table of trades and totals.",
    ),
    "init": (
        "guardbot.cli.init",
        "add_arguments",
        "run_init",
        "write a commented configuration file for a venue (never overwrites)",
        "Write a configuration with every key, its documentation and default, for the chosen "
        "venue; check it with guardbot config check.",
    ),
    "config": (
        "guardbot.cli.configcmd",
        "add_arguments",
        "run_config",
        "check the configuration and print it as in force (secrets hidden)",
        "guardbot config check [-c FILE]: validate the configuration guardbot would use and "
        "print the effective values, or every problem, one per line.",
    ),
    "completion": (
        "guardbot.cli.completion",
        "add_arguments",
        "run_completion",
        "print a bash or zsh completion script",
        "guardbot completion bash > ~/.local/share/bash-completion/completions/guardbot; "
        'guardbot completion zsh > "${fpath[1]}/_guardbot"',
    ),
    "health": (
        "guardbot.cli.health",
        "add_arguments",
        "run_health",
        "check a running daemon: exit 0 when healthy, 1 with the reason otherwise",
        "Healthy: status online and recent, feeds fresh, outbox below a threshold, database "
        "writable.",
    ),
}


def _add_commands(
    commands: argparse._SubParsersAction[_Parser], wanted: str | None, *, every: bool = False
) -> None:
    """Register every command; only ``wanted``'s module is imported to add its arguments (the
    others show in ``guardbot --help`` without paying for their imports)."""
    for name, (module, add, _run, help_text, description) in _COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=description)
        if name == wanted or every:
            getattr(importlib.import_module(module), add)(sub)


# --- calc ---------------------------------------------------------------------------------------


def _calc(file: str, *, pretty: bool) -> int:
    from guardbot.cli.calc import compute, parse_calc_input

    obj = _read_json(file)
    result = compute(parse_calc_input(obj))
    if pretty:
        sys.stdout.write(_render_calc(result))
    else:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    sys.stdout.flush()
    return EXIT_OK


def _read_json(file: str) -> object:
    name = "<stdin>" if file == "-" else file
    text = _read_text(file, name)
    if not text.strip():
        raise _BadInput(f"{name}: is empty (expected one JSON object, docs/contracts.md §1)")
    return loads_exact(text, name)


def _read_text(file: str, name: str) -> str:
    try:
        if file == "-":
            return sys.stdin.read()
        with open(file, encoding="utf-8") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise _BadInput(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _BadInput(f"{name}: cannot read ({reason})") from None


# --- simulate -----------------------------------------------------------------------------------


def _simulate(file: str, *, pretty: bool) -> int:
    run_simulate = _load_simulate()
    name = "<stdin>" if file == "-" else file
    try:
        source: TextIO = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise _BadInput(f"{name}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        run_simulate(source, sys.stdout, pretty=pretty)
    except UnicodeDecodeError as exc:
        raise _BadInput(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    finally:
        if source is not sys.stdin:
            source.close()
    sys.stdout.flush()
    return EXIT_OK


class _RunSimulate(Protocol):
    def __call__(self, source: TextIO, out: TextIO, *, pretty: bool) -> None: ...


def _load_simulate() -> _RunSimulate:
    # Imported by name: the simulator is a separate module that builds may lack.
    try:
        module = importlib.import_module("guardbot.cli.simulate")
    except ModuleNotFoundError as exc:
        if exc.name != "guardbot.cli.simulate":
            raise
        raise GuardbotError(
            "not available in this build (guardbot.cli.simulate is missing)"
        ) from None
    return cast(_RunSimulate, module.run_simulate)


# --- run ----------------------------------------------------------------------------------------


def _run(
    config_path: str | None, strategy: str | None = None, choice: ConfigChoice | None = None
) -> int:
    """Load the configuration (ConfigError: exit 2), run the daemon until SIGINT/SIGTERM."""
    import asyncio
    import signal

    from guardbot.config import load_config
    from guardbot.daemon.service import Daemon, guardbot_error
    from guardbot.runtime.logs import configure_logging

    config = load_config(config_path)
    if strategy is not None:
        import dataclasses

        from guardbot.config import StrategySection

        params = config.strategy.params if config.strategy is not None else {}
        config = dataclasses.replace(config, strategy=StrategySection(strategy, params))
    configure_logging(config.guardbot.log_format, config.guardbot.log_level)
    if choice is not None:
        import structlog

        structlog.get_logger("guardbot.cli").info(
            "configuration", file=str(choice.path or "<embedded defaults>"), why=choice.reason
        )
    # One daemon per process: the *_created samples would only double the series.
    import prometheus_client

    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            return await Daemon(config).run(stop)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    try:
        return asyncio.run(main())
    except BaseException as exc:
        error = guardbot_error(exc)
        if error is None:
            raise
        if isinstance(error, ConfigError):
            raise error from None
        _report("guardbot run", str(error))
        return EXIT_FAILURE


# --- pretty output ------------------------------------------------------------------------------


def _render_calc(result: CalcResult) -> str:
    """Readable tables of a calc result; numbers rounded for display only."""
    headers = (
        "SYMBOL", "SIDE", "MODE", "CONTRACTS", "ENTRY", "MARK", "UPNL", "IM", "MM",
        "RATIO", "LIQ PRICE", "DIST", "STATE",
    )  # fmt: skip
    rows = [
        (
            v.symbol,
            v.side,
            v.margin_mode,
            fmt(v.contracts),
            _price(v.entry_price),
            _price(v.mark_price),
            _money(v.unrealized_pnl),
            _money(v.initial_margin),
            _money(v.maintenance_margin),
            _percent(v.margin_ratio),
            _price(v.liquidation_price),
            _percent(None if v.distance_percent is None else v.distance_percent / 100),
            "LIQUIDATED" if v.liquidated else "ok",
        )
        for v in result.positions
    ]
    left = {0, 1, 2, 12}
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    request = result.input
    out = [
        f"profile {request.profile.name}, fees maker {fmt(request.maker_fee)} "
        f"taker {fmt(request.taker_fee)}",
        "",
    ]
    if rows:
        out.append(line(headers))
        out.extend(line(row) for row in rows)
    else:
        out.append("no positions")
    acc = result.account
    ratio = "n/a (margin balance <= 0)" if acc.margin_ratio is None else _percent(acc.margin_ratio)
    block = [
        ("wallet", _money(acc.wallet)),
        ("unrealized PnL", _money(acc.unrealized_pnl)),
        ("margin balance", _money(acc.margin_balance)),
        ("maintenance margin", _money(acc.maintenance_margin)),
        ("initial margin", _money(acc.initial_margin)),
        ("margin ratio", ratio),
        ("available balance", _money(acc.available_balance)),
        ("state", "LIQUIDATED" if acc.liquidated else "ok"),
    ]
    label_width = max(len(label) for label, _ in block)
    value_width = max(len(value) for _, value in block)
    out += ["", "account (cross)"]
    out += [f"  {label.ljust(label_width)}  {value.rjust(value_width)}" for label, value in block]
    bundled = sorted({(p.bundled_as_of, p.symbol) for p in request.positions if p.bundled_as_of})
    if bundled:
        symbols = ", ".join(symbol for _, symbol in bundled)
        dates = ", ".join(sorted({as_of for as_of, _ in bundled}))
        out += [
            "",
            f"note: bundled {request.profile.name} tiers as of {dates} used for {symbols}; "
            "live tables may differ",
        ]
    return "\n".join(out) + "\n"


def _money(value: Decimal) -> str:
    text = f"{value:,.2f}"
    return "0.00" if text == "-0.00" else text  # a short's zero PnL is -0


def _price(value: Decimal | None) -> str:
    """Six significant digits, at least two decimals: 29,000.00 / 12.3456 / 0.000123450."""
    if value is None:
        return "-"
    if value.is_zero():
        return "0.00"
    places = min(12, max(2, 6 - (value.adjusted() + 1)))
    return f"{value:,.{places}f}"


def _percent(ratio: Decimal | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio * 100:,.2f}%"


# --- plumbing -----------------------------------------------------------------------------------


def _report(command: str, message: str) -> None:
    """Write one line to stderr, whatever the message holds."""
    line = " ".join(message.splitlines()) if message else "error"
    sys.stderr.write(f"{command}: {line}\n")
    sys.stderr.flush()


def _report_config(command: str, error: ConfigError) -> None:
    """A configuration error: its first line after the command, then one problem per line."""
    first, *problems = str(error).splitlines() or ["invalid configuration"]
    sys.stderr.write(f"{command}: {first}\n" + "".join(f"  {p}\n" for p in problems))
    sys.stderr.flush()


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
