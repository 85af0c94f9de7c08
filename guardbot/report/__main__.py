"""``python -m guardbot.report RUN_DIR [--out DIR]``."""

import sys

from guardbot.report import main

sys.exit(main())
