"""``guardbot report RUN_DIR [--out DIR]``: an HTML report of a ``guardbot replay`` run.

Writes into ``DIR`` (default ``RUN_DIR/report``): ``report.html`` (inline CSS, no external
assets), the PNG charts it shows by relative path (``equity.png``, ``margin_ratio.png``,
``price_NN_<symbol>.png``) and ``trades.csv`` (every fill). The PNGs are files next to the page
rather than base64 inside it: the page stays small and quick to open for a long run, each chart
can be opened, diffed or pasted on its own, and byte-identical PNGs are easy to check. Copy the
directory, not only the page.

Bad input raises :class:`~guardbot.errors.InputError` whose one-line message names the file and
the line (``run/events.jsonl: line 7: price: must be a decimal number, got 'abc'``); the command
line turns it into exit status 2.

matplotlib is imported only when a report is built, so other commands do not pay for it.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from guardbot.errors import GuardbotError, InputError
from guardbot.report.rundir import RunData, load_run
from guardbot.runtime.extras import require_extra

__all__ = ["REPORT_FILE", "add_arguments", "build_report", "main", "run_report"]

REPORT_FILE = "report.html"
TRADES_FILE = "trades.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``RUN_DIR`` and ``--out`` to the ``report`` sub-command's parser."""
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        type=Path,
        help="a guardbot replay --out directory (summary.json, events.jsonl, samples.jsonl)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=None,
        help="where to write report.html, its PNG charts and trades.csv (default RUN_DIR/report)",
    )


def run_report(args: argparse.Namespace) -> int:
    """Build the report of ``args.run_dir``; print the page's path; return the exit status.

    Raises :class:`~guardbot.errors.InputError` for a bad run directory or output directory;
    the caller reports it as one line with exit status 2.
    """
    run_dir: Path = args.run_dir
    out_dir: Path = args.out if args.out is not None else run_dir / "report"
    page = build_report(run_dir, out_dir)
    print(page)
    return 0


def build_report(run_dir: Path, out_dir: Path) -> Path:
    """Read ``run_dir``, write the report into ``out_dir``; return the path of report.html."""
    require_extra("report", "guardbot report")
    data = load_run(Path(run_dir))
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out_dir}", f"cannot create the directory: {_why(exc)}") from None
    # imported here: matplotlib takes a noticeable fraction of a second to import
    from guardbot.report.charts import draw_all
    from guardbot.report.page import render_page, trades_csv

    try:
        charts = draw_all(data, out_dir)
        page = out_dir / REPORT_FILE
        (out_dir / TRADES_FILE).write_text(trades_csv(data.fills), encoding="utf-8")
        page.write_text(render_page(data, charts, drawdowns(data)), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {out_dir}", f"cannot write the report: {_why(exc)}") from None
    return page


def drawdowns(data: RunData) -> dict[str, tuple[float, float]]:
    """Per account, the largest fall of sampled equity from its running peak: USDT, fraction."""
    out: dict[str, tuple[float, float]] = {}
    for account, column in data.equity.items():
        peak, worst, worst_fraction = -math.inf, 0.0, 0.0
        for value in column:  # one pass in Python: fine next to the JSON parsing of samples
            if math.isnan(value):
                continue
            if value > peak:
                peak = value
            elif peak - value > worst:
                worst = peak - value
                worst_fraction = worst / peak if peak > 0 else 0.0
        if peak > -math.inf:
            out[account] = (worst, worst_fraction)
    return out


def _why(exc: OSError) -> str:
    return f"{exc.strerror} ({exc.filename})" if exc.strerror and exc.filename else str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m guardbot.report RUN_DIR [--out DIR]``: same as ``guardbot report``."""
    parser = argparse.ArgumentParser(prog="guardbot report", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_report(args)
    except GuardbotError as exc:
        print(f"guardbot report: {exc}", file=sys.stderr)
        return 2
