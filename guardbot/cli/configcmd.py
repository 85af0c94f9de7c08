"""``guardbot config check [-c FILE]``: validate the configuration a command would use and print
it as in force (defaults and environment overrides applied, secrets as set / not set).

Exit 0 when valid; 2 with one problem per line (unknown keys with a did-you-mean) otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys

from guardbot.config import load_config
from guardbot.config.discover import ConfigChoice, find_config
from guardbot.config.render import effective_config

__all__ = ["add_arguments", "run_config"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="validate the configuration and print it as in force (secrets hidden)",
        description="Validate the configuration (found as guardbot run finds it without -c) "
        "and print the effective values; exit 2 listing every problem, one per line.",
    )
    check.add_argument(
        "-c", "--config", metavar="FILE", default=None, help="TOML configuration to check"
    )


def run_config(args: argparse.Namespace) -> int:
    choice: ConfigChoice = getattr(args, "config_choice", None) or find_config(args.config)
    config = load_config(choice.path)  # ConfigError: the caller prints it, one per line, exit 2
    sys.stdout.write(f"configuration: {choice.describe()}: valid\n\n")
    sys.stdout.write(effective_config(config, choice.describe(), os.environ))
    return 0
