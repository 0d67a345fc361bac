"""Text renderings of a `Report`: table, CSV, JSON, Markdown, a cost-per-day bar chart and the
budget lines. Pure functions from a Report to a string, so the CLI only picks one. Tables are
laid out by `llmroute.render` (fitted to a terminal's width when given one); costs are printed
by `render.money`, except in CSV, which has every digit."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict

from ..render import Column, money, table
from . import Report, Row

HEADERS = ("requests", "ok", "failed", "success %", "attempts", "input tokens", "output tokens",
           "cost USD", "mean latency ms", "p95 latency ms", "fallbacks", "cache hits",
           "cached input tokens")
FORMATS = ("table", "csv", "json", "markdown")
_BLOCKS = " ▏▎▍▌▋▊▉█"
# On a narrow terminal: (short header, priority) of each column after the group key; the
# lowest priorities are dropped first (SPEC §10: a table fits an 80-column terminal).
_NARROW = (("reqs", 90), ("ok", 60), ("fail", 75), ("ok %", 80), ("tries", 55), ("in tok", 40),
           ("out tok", 39), ("cost", 85), ("mean ms", 45), ("p95 ms", 50), ("fallbk", 30),
           ("cached", 20), ("cch in", 10))  # cached input: shown wide or piped, dropped first


def _columns(by: str) -> list[Column]:
    return [Column(by, 100, elide=14),
            *(Column(h, priority, "right", short) for h, (short, priority) in zip(HEADERS, _NARROW))]


def _number(value: float) -> str:
    """A plain decimal for CSV: every digit a cost has (to 1e-10 dollars), no exponent."""
    text = f"{round(value, 10):.10f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _cells(row: Row, *, exact: bool = False) -> list:
    """A row's cells: for the eye (costs as `money`), or `exact` for CSV (costs in full)."""
    return [row.requests, row.ok, row.failed,
            "" if row.success_pct is None else f"{row.success_pct:.1f}", row.attempts,
            row.input_tokens, row.output_tokens,
            _number(row.cost_usd) if exact else money(row.cost_usd),
            "" if row.mean_latency_ms is None else f"{row.mean_latency_ms:.0f}",
            "" if row.p95_latency_ms is None else f"{row.p95_latency_ms:.0f}",
            row.fallbacks, row.cache_hits, row.cached_input_tokens]


def _grid(report: Report, *, exact: bool = False) -> tuple[list[str], list[list]]:
    headers = [report.by, *HEADERS]
    body = [[row.key, *_cells(row, exact=exact)] for row in (*report.rows, report.totals)]
    return headers, body


def render_table(report: Report, fmt: str = "table", width: int | None = None) -> str:
    """The table (`fmt` table or markdown) with a title line; budget lines are separate. With a
    `width` (a terminal's), columns are shortened or dropped until it fits (`render.fit_table`);
    None keeps every column."""
    _, body = _grid(report)
    title = f"Report {report.window.start} to {report.window.end} ({report.window.label}), by {report.by}"
    style = "markdown" if fmt == "markdown" else "simple"
    text = table(_columns(report.by), body, width, style)
    if fmt == "markdown":
        return f"**{title}**\n\n{text}\n"
    return f"{title}\n{text}\n"


# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(cell: str) -> str:
    """A text cell made safe to open in a spreadsheet: one that would start a formula gets a
    leading single quote, which the spreadsheet shows as text and `csv.reader` keeps."""
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def render_csv(report: Report) -> str:
    """CSV with the text cells (headers and the group key: a tag, route or model name from the
    ledger) escaped against formula injection; the number cells are written as they are, so a
    negative number stays a number."""
    headers, body = _grid(report, exact=True)
    rows = [[csv_text(h) for h in headers], *([csv_text(str(key)), *cells] for key, *cells in body)]
    # Written with a CRLF terminator, which makes the writer quote a field holding a lone CR
    # too (with "\n" it would not, and a reader would split the row there); each row then
    # ends in "\n" like the rest of the output.
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    lines = []
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow(row)
        lines.append(out.getvalue()[:-2] + "\n")
    return "".join(lines)


def render_json(report: Report) -> str:
    data = {
        "window": {"start": report.window.start.isoformat(), "end": report.window.end.isoformat(),
                   "label": report.window.label},
        "by": report.by,
        "rows": [asdict(r) for r in report.rows],
        "totals": asdict(report.totals),
        "daily_cost": [{"day": d, "cost_usd": round(c, 10)} for d, c in report.daily_cost],
        "budget": [{"period": b.period, "unit": b.unit, "scope": b.scope, "used": b.used,
                    "limit": b.limit, "pct": round(b.pct, 2), "text": b.text()}
                   for b in report.budget],
    }
    return json.dumps(data, indent=2) + "\n"


def render_budget(report: Report) -> str:
    return "".join(line.text() + "\n" for line in report.budget)


def render_chart(report: Report, width: int = 40) -> str:
    """Cost per day as horizontal bars of unicode blocks (eighths for the partial cell)."""
    if not report.daily_cost:
        return ""
    top = max(cost for _, cost in report.daily_cost)
    lines = ["Cost per day"]
    for day, cost in report.daily_cost:
        eighths = round(8 * width * cost / top) if top > 0 else 0
        bar = "█" * (eighths // 8) + (_BLOCKS[eighths % 8] if eighths % 8 else "")
        lines.append(f"{day} {bar:<{width}} {money(cost)}")
    return "\n".join(lines) + "\n"


def render(report: Report, fmt: str, *, chart: bool = False, width: int | None = None) -> str:
    """What `llmroute report` prints for `--format fmt` (plus `--chart`); `width` fits the table
    and markdown formats to a terminal (None: every column)."""
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    text = render_table(report, fmt, width)
    budget = render_budget(report)
    if budget:
        text += "\n" + budget
    if chart:
        text += "\n" + render_chart(report)
    return text
