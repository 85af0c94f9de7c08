"""``python -m guardbot``: the command line."""

from guardbot.cli.main import main

raise SystemExit(main())
