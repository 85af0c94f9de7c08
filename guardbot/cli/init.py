"""``guardbot init [PATH] [--venue ID]``: write a commented configuration for a venue.

Every key appears with its documentation and default (from the schema, so a new key shows up
without touching this command). An existing file is never overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from guardbot.config.render import VENUES, commented_config
from guardbot.errors import InputError

__all__ = ["add_arguments", "run_init"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default="guardbot.toml",
        metavar="PATH",
        help="where to write it (default ./guardbot.toml, the first place guardbot run looks "
        "after $GUARDBOT_CONFIG)",
    )
    parser.add_argument(
        "--venue",
        choices=VENUES,
        default=VENUES[0],
        help=f"the exchange to follow (ccxt id; default {VENUES[0]})",
    )


def run_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    text = commented_config(args.venue)
    try:
        if path.parent != Path():
            path.parent.mkdir(parents=True, exist_ok=True)
        # "x": refuse to overwrite, atomically (no check-then-write race).
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise InputError(
            str(path), "exists; not overwritten (remove it or give another PATH)"
        ) from None
    except OSError as exc:
        raise InputError(str(path), f"cannot write: {exc.strerror or exc}") from None
    os.chmod(path, 0o600)  # it names the variables that hold the secrets; keep it private
    sys.stdout.write(
        f"wrote {path} for {args.venue}; check it with: guardbot config check -c {path}\n"
    )
    return 0
