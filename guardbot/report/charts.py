"""The report's PNG charts, drawn with matplotlib's Agg canvas (no pyplot, no GUI backend).

Every chart is ``WIDTH`` x ``HEIGHT`` pixels at ``DPI``, drawn under matplotlib's default style
(whatever the user's matplotlibrc says) and saved without the ``Software`` metadata entry, so the
same run gives the same PNG bytes on the same matplotlib and fonts. Times are UTC.

Long series are reduced to at most ``MAX_POINTS`` points each (:func:`downsample`) keeping every
bucket's first, last, minimum and maximum and its first gap, so spikes and gaps survive and a
million-sample run draws as fast as a short one.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.dates as mdates
import matplotlib.style as mstyle
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from guardbot.report.rundir import Marker, RunData

__all__ = ["DPI", "HEIGHT", "MAX_MARKERS", "MAX_POINTS", "WIDTH", "Chart", "downsample", "draw_all"]

WIDTH, HEIGHT, DPI = 1200, 500, 100
MAX_POINTS = 5_000  # per plotted series
MAX_MARKERS = 2_000  # per marker kind and chart; evenly thinned beyond
MAX_LABELLED = 12  # series with their own legend entry; the rest are grey, unlabelled
MAX_LABELLED_ACCOUNTS = 8  # equity chart: two entries each (equity, wallet)
LEGEND_X = 0.80  # the legend column starts here (fraction of the width)
# A sampled value holds until the next sample: steps, not slopes that would invent prices.
STEPS = "steps-post"
RATIO_CEILING = 3.0  # the margin-ratio axis stops here (ratios explode as the balance nears 0)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Entry / exit / stop / alert / liquidation: a shape and a colour each, so they stay apart in
# greyscale print and for colour-blind readers.
MARKER_STYLE: dict[str, tuple[str, str, float, str, int]] = {
    # kind: (marker, colour, size in points², legend label, z-order)
    "entry": ("^", "#2ca02c", 70.0, "entry fill", 4),
    "exit": ("v", "#1f77b4", 70.0, "exit fill", 4),
    # hollow and larger: a stop and the fill it causes share time and price
    "stop": ("D", "#ff7f0e", 150.0, "stop triggered", 3),
    "alert": ("o", "#ffd700", 60.0, "margin alert", 3),
    "liquidation": ("X", "#d62728", 140.0, "liquidation", 5),
}


@dataclass(frozen=True, slots=True)
class Chart:
    """A written chart: file name (relative to the report), title, and notes for the page."""

    file: str
    title: str
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------- data


def downsample(
    x: IntArray, y: FloatArray, max_points: int = MAX_POINTS
) -> tuple[IntArray, FloatArray]:
    """At most ``max_points`` of (``x``, ``y``), keeping each bucket's extremes, ends and gaps.

    The series is cut into ``max_points // 5`` buckets of consecutive points; from each the
    first, last, minimum and maximum points are kept (so no spike disappears) and, when the
    bucket holds NaN, its first NaN (so a gap still breaks the line).
    """
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 5)
    size = -(-n // buckets)
    pad = buckets * size - n
    padded = np.concatenate([y, np.full(pad, np.nan)]).reshape(buckets, size)
    nan = np.isnan(padded)
    real = np.zeros_like(nan)
    real.reshape(-1)[:n] = True
    nan &= real  # padding is not a gap
    base = np.arange(buckets) * size
    low = np.argmin(np.where(nan, np.inf, padded), axis=1)
    high = np.argmax(np.where(nan, -np.inf, padded), axis=1)
    first_gap = np.argmax(nan, axis=1)
    has_gap = nan.any(axis=1)
    keep = np.concatenate(
        [
            base,
            np.minimum(base + size - 1, n - 1),
            base + low,
            base + high,
            (base + first_gap)[has_gap],
        ]
    )
    keep = np.unique(keep[keep < n])
    return x[keep], y[keep]


def _times(ts: IntArray) -> npt.NDArray[np.datetime64]:
    return ts.astype("datetime64[ms]")


def _values(column: array[float]) -> FloatArray:
    return np.frombuffer(column, dtype=np.float64) if len(column) else np.empty(0)


def _thin(markers: Sequence[Marker], limit: int) -> list[Marker]:
    if len(markers) <= limit:
        return list(markers)
    step = len(markers) / limit
    return [markers[int(i * step)] for i in range(limit)]


# ---------------------------------------------------------------------------------------- drawing


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    # Fixed margins rather than constrained layout: the layout pass costs a second full draw
    # of every chart, and the legend always has the same column on the right.
    fig.subplots_adjust(left=0.075, right=LEGEND_X - 0.01, bottom=0.11, top=0.92)
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _time_axis(ax: Axes) -> None:
    # matplotlib's stubs leave these two constructors unannotated
    locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlabel("time (UTC)")


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Figure, out_dir: Path, name: str) -> None:
    # "Software" carries the matplotlib version and is the only varying metadata of a PNG;
    # without it the bytes depend on the drawing alone.
    fig.savefig(out_dir / name, dpi=DPI, format="png", metadata={"Software": None})


def _legend(fig: Figure, ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(
            handles, labels, loc="upper left", bbox_to_anchor=(LEGEND_X, 0.92), fontsize="small"
        )


def _sampling_note(ts: IntArray) -> list[str]:
    if len(ts) <= MAX_POINTS:
        return []
    return [f"{len(ts):,} samples drawn as at most {MAX_POINTS:,} points a line, extremes kept"]


def _with_events(
    ts: IntArray, values: FloatArray, events: list[tuple[int, float]]
) -> tuple[IntArray, FloatArray]:
    """The sampled series with the values known at events inserted in time order; an event
    goes before a sample of the same time (the sample is taken after the tick's events: after
    a liquidation, for one)."""
    if not events:
        return ts, values
    ex = np.array([t for t, _ in events], dtype=np.int64)
    ey = np.array([v for _, v in events], dtype=np.float64)
    x = np.concatenate([ex, ts])
    y = np.concatenate([ey, values])
    order = np.argsort(x, kind="stable")  # stable: events first among equal times
    return x[order], y[order]


def _ranked(series: dict[str, FloatArray]) -> list[str]:
    """Series names, the ones reaching the highest values first (the riskiest ratios)."""

    def peak(name: str) -> float:
        values = series[name]
        finite = values[np.isfinite(values)]
        return float(finite.max()) if finite.size else -math.inf

    return sorted(series, key=lambda name: (-peak(name), name))


def equity_chart(data: RunData, ts: IntArray, out_dir: Path) -> Chart:
    name, title = "equity.png", "Equity and wallet per account"
    fig, ax = _figure()
    ax.set_title(f"{title} (USDT)")
    notes = _sampling_note(ts)
    accounts = [a for a in data.accounts if a in data.equity or a in data.wallet]
    if not len(ts) or not accounts:
        _empty(ax, "no samples in samples.jsonl")
    else:
        colors = matplotlib.color_sequences["tab10"]
        for i, account in enumerate(accounts):
            labelled = i < MAX_LABELLED_ACCOUNTS
            color = colors[i % len(colors)] if labelled else "#999999"
            for column, style, what in (
                (data.equity.get(account), "-", "equity"),
                (data.wallet.get(account), "--", "wallet"),
            ):
                if column is None:
                    continue
                x, y = downsample(ts, _values(column))
                ax.plot(
                    _times(x),
                    y,
                    style,
                    color=color,
                    linewidth=1.4 if what == "equity" else 1.0,
                    drawstyle=STEPS,
                    label=f"{account} {what}" if labelled else None,
                )
        if len(accounts) > MAX_LABELLED_ACCOUNTS:
            notes.append(f"{len(accounts) - MAX_LABELLED_ACCOUNTS} more accounts drawn in grey")
        ax.set_ylabel("USDT")
        _time_axis(ax)
        _legend(fig, ax)
    _save(fig, out_dir, name)
    return Chart(name, title, tuple(notes))


def ratio_chart(data: RunData, ts: IntArray, out_dir: Path) -> Chart:
    name, title = "margin_ratio.png", "Margin ratio per account and isolated position"
    fig, ax = _figure()
    ax.set_title(f"{title} (1.0 = liquidation)")
    notes = _sampling_note(ts)
    series: dict[str, tuple[IntArray, FloatArray]] = {}
    for account in data.accounts:
        column = data.account_ratio.get(account)
        if column is not None:
            series[f"{account} (account)"] = _with_events(
                ts, _values(column), data.ratio_events.get(account, [])
            )
    for (account, symbol), column in sorted(data.position_ratio.items()):
        series[f"{account} {symbol} (isolated)"] = _with_events(
            ts, _values(column), data.ratio_events.get((account, symbol), [])
        )
    if any(data.ratio_events.values()):
        notes.append("ratios at alerts and liquidations drawn between the samples")
    if not len(ts) or not series:
        _empty(ax, "no margin ratios in samples.jsonl")
    else:
        colors = matplotlib.color_sequences["tab10"]
        peak = 0.0
        for i, label in enumerate(_ranked({k: v[1] for k, v in series.items()})):
            labelled = i < MAX_LABELLED
            x, y = downsample(*series[label])
            finite = y[np.isfinite(y)]
            if finite.size:
                peak = max(peak, float(finite.max()))
            ax.plot(
                _times(x),
                y,
                color=colors[i % len(colors)] if labelled else "#999999",
                linewidth=1.3 if labelled else 0.7,
                drawstyle=STEPS,
                label=label if labelled else None,
            )
        if len(series) > MAX_LABELLED:
            notes.append(
                f"{len(series) - MAX_LABELLED} lower-risk series drawn in grey without a label"
            )
        for level in data.alert_levels:
            ax.axhline(float(level), color="#ff7f0e", linestyle=":", linewidth=1.2)
            ax.annotate(
                f"alert {level}",
                (1.0, float(level)),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 2),
                textcoords="offset points",
                ha="right",
                fontsize="small",
                color="#ff7f0e",
            )
        ax.axhline(1.0, color="#d62728", linewidth=1.8, label="liquidation (1.0)")
        top = min(max(1.15, peak * 1.05), RATIO_CEILING)
        if peak > RATIO_CEILING:
            notes.append(f"ratios above {RATIO_CEILING} (peak {peak:.3g}) run off the chart")
        ax.set_ylim(0, top)
        ax.set_ylabel("margin ratio (maintenance / margin balance)")
        _time_axis(ax)
        _legend(fig, ax)
    _save(fig, out_dir, name)
    return Chart(name, title, tuple(notes))


def size_chart(data: RunData, ts: IntArray, out_dir: Path) -> Chart:
    name, title = "position_size.png", "Position size per account and symbol"
    fig, ax = _figure()
    ax.set_title(f"{title} (contracts; short below zero)")
    notes = _sampling_note(ts)
    series = {
        f"{account} {symbol}": _values(column)
        for (account, symbol), column in sorted(data.position_size.items())
    }
    if not len(ts) or not series:
        _empty(ax, "no positions in samples.jsonl")
    else:
        colors = matplotlib.color_sequences["tab10"]
        for i, label in enumerate(series):
            labelled = i < MAX_LABELLED
            values = np.nan_to_num(series[label], nan=0.0)  # no position: size 0
            x, y = downsample(ts, values)
            ax.plot(
                _times(x),
                y,
                color=colors[i % len(colors)] if labelled else "#999999",
                linewidth=1.3,
                drawstyle=STEPS,
                label=label if labelled else None,
            )
        if len(series) > MAX_LABELLED:
            notes.append(f"{len(series) - MAX_LABELLED} more positions drawn in grey")
        ax.axhline(0.0, color="#444444", linewidth=0.8)
        ax.set_ylabel("contracts")
        _time_axis(ax)
        _legend(fig, ax)
    _save(fig, out_dir, name)
    return Chart(name, title, tuple(notes))


def price_chart(
    data: RunData, ts: IntArray, symbol: str, markers: list[Marker], out_dir: Path, index: int
) -> Chart:
    slug = "".join(c if c.isalnum() else "-" for c in symbol).strip("-")
    name, title = f"price_{index:02d}_{slug}.png", f"{symbol} mark price"
    fig, ax = _figure()
    ax.set_title(
        f"{title} (USDT): fills, stops, alerts, liquidations, entry and liquidation prices"
    )
    notes = _sampling_note(ts)
    marks = _values(data.marks[symbol])
    valid = np.isfinite(marks)
    if not valid.any():
        _empty(ax, f"no mark prices of {symbol} in samples.jsonl")
        _save(fig, out_dir, name)
        return Chart(name, title)
    x, y = downsample(ts, marks)
    ax.plot(_times(x), y, color="#444444", linewidth=1.0, label="mark", drawstyle=STEPS)
    low, high = float(np.nanmin(marks)), float(np.nanmax(marks))
    span = max(high - low, abs(high) * 0.01)
    # the y range the price lines may widen: as far again as the marks' own range, so that a
    # liquidation price far away does not flatten the price path into a line
    floor, ceiling = low - span, high + span
    # what the y axis must show: the marks, the markers, and the price lines where in range
    shown_low, shown_high = low, high
    holders = sorted(key for key in data.position_size if key[1] == symbol)
    for n, key in enumerate(holders):
        account = key[0]
        labelled = n < MAX_LABELLED_ACCOUNTS
        for table, color, what in (
            (data.entry_price, "#2ca02c", "entry price"),
            (data.liquidation_price, "#d62728", "liquidation price"),
        ):
            column = table.get(key)
            if column is None:
                continue
            values = _values(column)
            if not np.isfinite(values).any():
                continue
            px, py = downsample(ts, values)
            ax.plot(
                _times(px),
                py,
                "--",
                color=color,
                linewidth=1.1,
                drawstyle=STEPS,
                label=f"{account} {what}" if labelled else None,
            )
            finite = values[np.isfinite(values)]
            inside = finite[(finite >= floor) & (finite <= ceiling)]
            if inside.size:
                shown_low = min(shown_low, float(inside.min()))
                shown_high = max(shown_high, float(inside.max()))
            beyond = finite[(finite < floor) | (finite > ceiling)]
            if beyond.size:
                notes.append(
                    f"{account} {what} partly off the chart"
                    f" ({float(beyond.min()):,.6g} .. {float(beyond.max()):,.6g})"
                )
    vx, vy = ts[valid], marks[valid]
    by_kind: dict[str, list[Marker]] = {kind: [] for kind in MARKER_STYLE}
    for marker in markers:
        if marker.kind in by_kind:
            by_kind[marker.kind].append(marker)
    for kind, group in by_kind.items():
        if not group:
            continue
        shown = _thin(group, MAX_MARKERS)
        mts = np.array([m.ts for m in shown], dtype=np.int64)
        # a marker without a price sits on the mark of its moment
        at_mark = np.interp(mts, vx, vy)
        prices = np.array(
            [m.price if m.price is not None else at_mark[i] for i, m in enumerate(shown)]
        )
        shape, color, size, label, zorder = MARKER_STYLE[kind]
        hollow = kind == "stop"
        count = (
            f"{len(group):,}" if len(shown) == len(group) else f"{len(shown):,} of {len(group):,}"
        )
        if len(shown) < len(group):
            notes.append(f"{label}: {len(shown):,} of {len(group):,} markers drawn")
        ax.scatter(
            _times(mts),
            prices,
            marker=shape,
            s=size,
            facecolors="none" if hollow else color,
            edgecolors=color if hollow else "black",
            linewidths=2.0 if hollow else 0.6,
            zorder=zorder,
            label=f"{label} ({count})",
        )
    ax.set_ylabel(f"{symbol} mark (USDT)")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    for marker in markers:
        if marker.price is not None and floor <= marker.price <= ceiling:
            shown_low = min(shown_low, marker.price)
            shown_high = max(shown_high, marker.price)
    pad = max(shown_high - shown_low, abs(shown_high) * 0.001) * 0.05
    ax.set_ylim(shown_low - pad, shown_high + pad)
    _time_axis(ax)
    _legend(fig, ax)
    _save(fig, out_dir, name)
    return Chart(name, title, tuple(notes))


def draw_all(data: RunData, out_dir: Path) -> list[Chart]:
    """Write every chart of ``data`` into ``out_dir``; return them in page order."""
    ts = np.frombuffer(data.ts, dtype=np.int64) if len(data.ts) else np.empty(0, np.int64)
    order = np.argsort(ts, kind="stable") if len(ts) else None
    if order is not None and not np.all(order[:-1] < order[1:]):
        # samples out of time order would draw lines back and forth: sort every column alike
        data = _reordered(data, order)
        ts = ts[order]
    markers: dict[str, list[Marker]] = {}
    for marker in data.markers:
        markers.setdefault(marker.symbol, []).append(marker)
    with mstyle.context("default"), matplotlib.rc_context({"timezone": "UTC"}):
        charts = [
            equity_chart(data, ts, out_dir),
            ratio_chart(data, ts, out_dir),
            size_chart(data, ts, out_dir),
        ]
        # symbols the run traded or alerted on first: those are the charts a reader wants
        symbols = sorted(data.symbols, key=lambda symbol: symbol not in markers)
        for i, symbol in enumerate(symbols):
            charts.append(price_chart(data, ts, symbol, markers.get(symbol, []), out_dir, i))
    return charts


def _reordered(data: RunData, order: IntArray) -> RunData:
    def take(column: array[float]) -> array[float]:
        return array("d", _values(column)[order].tobytes())

    data.ts = array("q", np.frombuffer(data.ts, dtype=np.int64)[order].tobytes())
    tables: tuple[dict[Any, array[float]], ...] = (
        data.marks,
        data.wallet,
        data.equity,
        data.account_ratio,
        data.position_ratio,
        data.entry_price,
        data.liquidation_price,
        data.position_size,
    )
    for table in tables:
        for key in table:
            table[key] = take(table[key])
    return data
