"""The report page: one HTML file with inline CSS that shows the charts and the tables.

Totals are shown as summary.json states them (exact decimal strings), next to the same sums
recomputed from events.jsonl; a disagreement is flagged rather than hidden, since it means the
run directory is incomplete or the replay miscounted. Nothing in the page depends on the clock.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any, TypeVar

from guardbot.core.num import fmt
from guardbot.report.charts import HEIGHT, WIDTH, Chart
from guardbot.report.rundir import Fill, Notable, Refusals, RunData, Totals

__all__ = ["MAX_ROWS", "render_page", "trades_csv"]

T = TypeVar("T")

MAX_ROWS = 1_000  # rows per table in the page; trades.csv has every fill

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1240px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; } .meta b { color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; font-family: ui-monospace, monospace; }
tr.bad td { background: #fde8e8; } .neg { color: #b00020; } .pos { color: #0a7a2f; }
.flag { color: #b00020; font-weight: bold; } .note { color: #666; font-size: 13px; }
figure { margin: 12px 0 24px; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.tile .v { font-size: 20px; font-weight: 600; } .tile .k { color: #555; font-size: 12px; }
"""


def utc(ts: object) -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM:SS.mmm`` UTC ('' when not a number)."""
    if not isinstance(ts, int) or isinstance(ts, bool):
        return ""
    moment = datetime.fromtimestamp(ts / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ts % 1000:03d}"


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _num(value: object, *, signed: bool = False) -> str:
    """A table cell for a number, exactly as given; red when negative if ``signed``."""
    text = _e(value)
    css = "num"
    if signed:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = Decimal(0)
        css += " neg" if number < 0 else " pos" if number > 0 else ""
    return f'<td class="{css}">{text}</td>'


def _same(stated: object, computed: Decimal) -> bool:
    try:
        return Decimal(str(stated)) == computed
    except InvalidOperation:
        return False


def _table(head: Sequence[str], rows: Iterable[str]) -> str:
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _tile(label: str, value: object, flag: bool = False) -> str:
    css = ' class="v flag"' if flag else ' class="v"'
    return f'<div class="tile"><div{css}>{_e(value)}</div><div class="k">{_e(label)}</div></div>'


def _accounts_table(data: RunData, drawdowns: Mapping[str, tuple[float, float]]) -> str:
    """Per account, the wallet reconciled: start + realized PnL - fees + funding - liquidation
    losses = end wallet, each term shown once; then equity, the max drawdown and the fills."""
    summary_accounts = data.summary.get("accounts", {})
    rows = []
    mismatches: list[str] = []
    for account in data.accounts:
        stated: Mapping[str, Any] = summary_accounts.get(account, {})
        computed = data.totals.get(account, Totals())
        cells = [f"<td>{_e(account)}</td>"]
        start = stated.get("startWallet")
        cells.append(_num(start))
        terms: dict[str, Decimal] = {}
        for key, value in (
            ("realizedPnl", computed.realized_pnl),
            ("fees", computed.fees),
            ("funding", computed.funding),
        ):
            shown = stated.get(key)
            if shown is None:  # not in the summary: the sum over the events
                shown = fmt(value)
            elif not _same(shown, value):
                mismatches.append(f"{account} {key}: summary {shown}, events {fmt(value)}")
            terms[key] = _decimal(shown, value)
            cells.append(_num(shown, signed=key != "fees"))
        cells.append(_num(fmt(computed.liquidation_losses)))
        wallet = stated.get("wallet")
        if start is None:
            cells.append(_num(""))
        else:
            end = (
                _decimal(start, Decimal(0))
                + terms["realizedPnl"]
                - terms["fees"]
                + terms["funding"]
                - computed.liquidation_losses
            )
            cells.append(_num(fmt(end)))
            if wallet is not None and not _same(wallet, end):
                mismatches.append(
                    f"{account} wallet: summary {wallet}, start and changes add up to {fmt(end)}"
                )
        cells.append(_num(wallet))
        cells.append(_num(stated.get("equity")))
        dd = drawdowns.get(account)
        stated_dd = stated.get("maxDrawdown")
        if stated_dd is None and dd is not None:
            stated_dd = f"{dd[0]:.2f}"
        cells.append(_num(stated_dd))
        cells.append(_num(f"{dd[1]:.1%}" if dd else ""))
        cells.append(_num(computed.fills))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = [
        "account",
        "start wallet",
        "realized PnL",
        "fees",
        "funding",
        "liquidation losses",
        "start + PnL - fees + funding - liquidation losses",
        "end wallet",
        "end equity",
        "max drawdown",
        "max drawdown (of the peak)",
        "fills",
    ]
    out = _table(head, rows)
    out += (
        '<p class="note">USDT. Start and end wallet, realized PnL (of the fills), fees, funding, '
        "end equity and max drawdown as summary.json states them; liquidation losses (what each "
        "liquidation took from the wallet: the position's loss at the liquidation price plus "
        "the liquidation fee) summed from events.jsonl. The two wallet columns must agree. The "
        "max drawdown is the largest fall of sampled equity from its running peak.</p>"
    )
    if mismatches:
        items = "".join(f"<li>{_e(m)}</li>" for m in mismatches)
        out += f'<p class="flag">summary.json disagrees with events.jsonl:</p><ul>{items}</ul>'
    return out


def _decimal(value: object, default: Decimal) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return default


def _run_tiles(data: RunData) -> str:
    s = data.summary
    counted = {
        "alerts": data.event_counts["margin_alert"],
        "liquidations": data.event_counts["liquidation"],
        "trades": data.event_counts["fill"],
    }
    tiles = []
    for key, label in (
        ("trades", "trades (fills)"),
        ("alerts", "margin alerts"),
        ("liquidations", "liquidations"),
    ):
        stated = s.get(key, counted[key])
        tiles.append(_tile(label, stated, stated != counted[key]))
    refused = s.get("refusedOrders") or dict(data.refused)
    tiles.append(_tile("refused orders", sum(refused.values())))
    tiles.append(
        _tile("strategy errors", s.get("strategyErrors", 0), bool(s.get("strategyErrors")))
    )
    out = f'<div class="tiles">{"".join(tiles)}</div>'
    rows = []
    for code in sorted(set(refused) | set(data.refused)):
        stated = refused.get(code, 0)
        bad = stated != data.refused.get(code, 0)
        rows.append(
            f"<tr{' class=bad' if bad else ''}><td>{_e(code)}</td>{_num(stated)}"
            f"{_num(data.refused.get(code, 0))}</tr>"
        )
    if rows:
        out += "<h3>Refused orders by code</h3>"
        out += _table(["code", "refused (summary)", "order_rejected events"], rows)
    flagged = [k for k in counted if s.get(k, counted[k]) != counted[k]]
    if flagged:
        out += (
            '<p class="flag">summary.json counts differ from events.jsonl for: '
            + _e(", ".join(f"{k} ({s[k]} vs {counted[k]} events)" for k in flagged))
            + "</p>"
        )
    return out


def _trade_row(f: Fill) -> str:
    return (
        "<tr>"
        f"<td>{utc(f.ts)}</td><td>{_e(f.account)}</td><td>{_e(f.symbol)}</td>"
        f"<td>{_e(f.side)}</td><td>{_e(f.role)}</td>"
        f"{_num(fmt(f.amount))}{_num(fmt(f.price))}{_num(fmt(f.fee))}"
        f"{_num(fmt(f.realized_pnl), signed=True)}"
        f"<td>{_e(f.order_id)}</td><td>{'yes' if f.reduce_only else ''}</td>"
        "</tr>"
    )


def _notable_row(n: Notable) -> str:
    return (
        f"<tr><td>{utc(n.ts)}</td><td>{_e(n.account)}</td><td>{_e(n.type)}</td>"
        f"<td>{_e(n.symbol)}</td><td>{_e(n.detail)}</td></tr>"
    )


def _refusal_row(g: Refusals) -> str:
    return (
        f"<tr><td>{_e(g.account)}</td><td>{_e(g.code)}</td><td>{_e(g.symbol)}</td>"
        f"{_num(g.count)}<td>{utc(g.first_ts)}</td><td>{utc(g.last_ts)}</td>"
        f"<td>{_e(g.reason)}</td></tr>"
    )


def _capped(
    items: Sequence[T], row: Callable[[T], str], what: str, columns: int, link: str = ""
) -> tuple[list[str], str]:
    """Rows of at most MAX_ROWS items: the first and the last halves, and a note about the rest
    (only the rows shown are formatted: a run may have millions of fills)."""
    if len(items) <= MAX_ROWS:
        return [row(item) for item in items], ""
    half = MAX_ROWS // 2
    skipped = len(items) - 2 * half
    gap = (
        f'<tr><td colspan="{columns}" class="note">… {skipped:,} {what} not shown{link} …</td></tr>'
    )
    rows = [row(item) for item in items[:half]] + [gap]
    rows += [row(item) for item in items[-half:]]
    return rows, f"first and last {half:,} of {len(items):,} shown"


def render_page(
    data: RunData, charts: Sequence[Chart], drawdowns: Mapping[str, tuple[float, float]]
) -> str:
    """The whole HTML page."""
    s = data.summary
    title = f"guardbot replay report: {data.run_dir.name}"
    symbols = data.symbols or [x for x in s.get("symbols", []) if isinstance(x, str)]
    meta = [
        ("strategy", s.get("strategy", "")),
        ("from", utc(s.get("startTs", data.ts[0] if data.ts else None))),
        ("to", utc(s.get("endTs", data.ts[-1] if data.ts else None))),
        ("ticks", f"{s['ticks']:,}" if isinstance(s.get("ticks"), int) else ""),
        ("samples", f"{len(data.ts):,}"),
        ("events", f"{data.event_lines:,}"),
        ("symbols", ", ".join(symbols)),
        ("alert levels", ", ".join(str(level) for level in data.alert_levels)),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        '<p class="meta">'
        + " · ".join(f"{_e(k)} <b>{_e(v)}</b>" for k, v in meta if v != "")
        + " · times in UTC</p>",
        "<h2>Totals</h2>",
        _run_tiles(data),
        "<h3>Per account (USDT)</h3>",
        _accounts_table(data, drawdowns),
        "<h2>Charts</h2>",
    ]
    for chart in charts:
        notes = "; ".join(chart.notes)
        parts.append(
            f'<figure><img src="{_e(chart.file)}" alt="{_e(chart.title)}" width="{WIDTH}" '
            f'height="{HEIGHT}"><figcaption>{_e(chart.title)}'
            f"{' (' + _e(notes) + ')' if notes else ''}</figcaption></figure>"
        )
    trades, note = _capped(data.fills, _trade_row, "trades", 11, ": see trades.csv")
    liquidated = sum(f.role == "liquidation" for f in data.fills)
    count = f"{len(data.fills) - liquidated:,} fills"
    if liquidated:
        count += f", {liquidated:,} liquidation{'s' if liquidated != 1 else ''}"
    parts.append(f"<h2>Trades ({count}{', ' + note if note else ''})</h2>")
    if data.fills:
        parts.append(
            _table(
                [
                    "time (UTC)",
                    "account",
                    "symbol",
                    "side",
                    "role",
                    "amount",
                    "price",
                    "fee (USDT)",
                    "realized PnL (USDT)",
                    "order",
                    "reduce-only",
                ],
                trades,
            )
        )
        parts.append(
            '<p class="note">Every fill: <a href="trades.csv">trades.csv</a>. A liquidation '
            "closes its position at the liquidation price (role liquidation): its fee is the "
            "liquidation fee, its PnL the position's loss at that price.</p>"
        )
    else:
        parts.append('<p class="note">No fills.</p>')
    shown, note = _capped(data.notables, _notable_row, "events", 5)
    parts.append(
        f"<h2>Guard events ({len(data.notables):,}{', ' + note if note else ''})</h2>"
        '<p class="note">Margin alerts and recoveries, liquidations, triggered stops and '
        "trading-state changes; refused orders are grouped below.</p>"
    )
    if shown:
        parts.append(_table(["time (UTC)", "account", "event", "symbol", "detail"], shown))
    if data.refusals:
        groups = sorted(data.refusals.values(), key=lambda g: (g.first_ts, g.account, g.code))
        total = sum(g.count for g in groups)
        parts.append(
            f"<h3>Refused orders by code and symbol ({total:,} in {len(groups):,} groups)</h3>"
        )
        parts.append(
            _table(
                ["account", "code", "symbol", "refused", "first (UTC)", "last (UTC)", "reason"],
                [_refusal_row(g) for g in groups],
            )
        )
        parts.append(
            '<p class="note">The reason of the first refusal of each group (amounts differ from '
            "one to the next).</p>"
        )
    counts = ", ".join(f"{k} {v:,}" for k, v in sorted(data.event_counts.items()))
    parts.append(f'<p class="note">Events by type: {_e(counts) or "none"}.</p>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def trades_csv(fills: Sequence[Fill]) -> str:
    """Every fill as CSV (exact decimal strings)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "ts",
            "time_utc",
            "account",
            "symbol",
            "side",
            "role",
            "amount",
            "price",
            "fee",
            "realizedPnl",
            "orderId",
            "reduceOnly",
        ]
    )
    for f in fills:
        writer.writerow(
            [
                f.ts,
                utc(f.ts),
                f.account,
                f.symbol,
                f.side,
                f.role,
                fmt(f.amount),
                fmt(f.price),
                fmt(f.fee),
                fmt(f.realized_pnl),
                f.order_id,
                "true" if f.reduce_only else "false",
            ]
        )
    return out.getvalue()
