"""``python -m guardbot``: the command line."""

from guardbot.cli import main

raise SystemExit(main())
