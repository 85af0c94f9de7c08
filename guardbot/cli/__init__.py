"""Command-line front ends: one module per ``guardbot`` sub-command, thin.

Each module parses its arguments, calls the layers below and prints. ``main`` dispatches and
imports only the module of the command that runs, so ``guardbot calc --help`` stays fast.

May import: ``guardbot.daemon``, the adapters, ``guardbot.formats``, ``guardbot.runtime``,
``guardbot.core``. Nothing below imports from here.
"""

from guardbot.cli.main import main

__all__ = ["main"]
