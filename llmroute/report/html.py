"""`llmroute report --html FILE`: one self-contained HTML page.

Everything is inline — CSS in a <style> element, charts as SVG drawn here in Python — so the file
opens offline, can be mailed or archived, and loads nothing from the network (no JS libraries,
no fonts, no images)."""

from __future__ import annotations

from html import escape

from ..render import money
from . import Report, Row

_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
            "#ff9da7", "#9c755f", "#bab0ac")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.sub{color:#666;margin:0 0 16px}
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}tr.total td{font-weight:600;border-top:2px solid #888}
.budget{margin:12px 0;font-size:14px}.charts svg{display:block;margin:8px 0}
svg text{font-family:system-ui,Helvetica,Arial,sans-serif;font-size:11px;fill:#333}
"""


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def _table(report: Report) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in (
        report.by, "requests", "ok", "failed", "success %", "attempts", "input tokens",
        "output tokens", "cost USD", "mean latency ms", "p95 latency ms", "fallbacks", "cache hits",
        "cached input tokens"))

    def tr(row: Row, cls: str = "") -> str:
        cells = (row.key, row.requests, row.ok, row.failed, _fmt(row.success_pct, ".1f"),
                 row.attempts, f"{row.input_tokens:,}", f"{row.output_tokens:,}",
                 money(row.cost_usd),
                 _fmt(row.mean_latency_ms, ".0f"), _fmt(row.p95_latency_ms, ".0f"),
                 row.fallbacks, row.cache_hits, f"{row.cached_input_tokens:,}")
        tds = "".join(f"<td>{escape(str(c))}</td>" for c in cells)
        return f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>"

    body = "".join(tr(r) for r in report.rows) + tr(report.totals, "total")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def savings_html(report: Report) -> str:
    """What the providers' prompt caches saved: per target, its cached input tokens at the full
    input rate minus the cached rate; "n/a" where no cached rate is known for the target."""
    if not report.cache_savings:
        return '<p class="budget">Prompt caching: no cached input tokens in this window.</p>'
    known = [s.saved_usd for s in report.cache_savings if s.saved_usd is not None]
    unknown = len(known) < len(report.cache_savings)
    total = money(sum(known)) if known else "n/a"
    note = " (targets marked n/a have no known cached rate)" if unknown and known else ""
    rows = "".join(
        f"<tr><td>{escape(s.target)}</td><td>{s.cached_input_tokens:,}</td>"
        f"<td>{escape(money(s.saved_usd)) if s.saved_usd is not None else 'n/a'}</td></tr>"
        for s in report.cache_savings)
    return (f'<p class="budget">Prompt caching saved {escape(total)}{escape(note)}</p>'
            "<table><thead><tr><th>target</th><th>cached input tokens</th><th>saved USD</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def bar_chart_svg(items: list[tuple[str, float]], *, title: str, unit: str = "$",
                  width: int = 1000, height: int = 260, color: str = _PALETTE[0]) -> str:
    """Vertical bars, one per item, labels under every bar (thinned when crowded)."""
    pad_l, pad_b, pad_t = 60, 50, 28
    plot_w, plot_h = width - pad_l - 10, height - pad_b - pad_t
    top = max((v for _, v in items), default=0) or 1.0
    step = plot_w / max(len(items), 1)
    every = max(1, len(items) // 20)
    parts = [f'<svg width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="{pad_l}" y="16" style="font-size:13px;font-weight:600">{escape(title)}</text>',
             f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 10}" y2="{pad_t + plot_h}" stroke="#888"/>']
    for frac in (0.5, 1.0):
        y = pad_t + plot_h - frac * plot_h
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end">{_money(top * frac, unit)}</text>')
    for i, (name, value) in enumerate(items):
        h = plot_h * value / top
        x = pad_l + i * step + step * 0.1
        parts.append(f'<rect x="{x:.1f}" y="{pad_t + plot_h - h:.1f}" width="{step * 0.8:.1f}" '
                     f'height="{h:.1f}" fill="{color}"><title>{escape(name)}: {_money(value, unit)}</title></rect>')
        if i % every == 0:
            lx, ly = x + step * 0.4, pad_t + plot_h + 14
            parts.append(f'<text x="{lx:.1f}" y="{ly}" text-anchor="end" '
                         f'transform="rotate(-35 {lx:.1f} {ly})">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def grouped_bars_svg(rows: list[tuple[str, float, float]], *, title: str, width: int = 1000,
                     height: int = 280) -> str:
    """Two bars per provider: mean and p95 latency (ms)."""
    pad_l, pad_b, pad_t = 60, 40, 40
    plot_w, plot_h = width - pad_l - 10, height - pad_b - pad_t
    top = max((max(m, p) for _, m, p in rows), default=0) or 1.0
    step = plot_w / max(len(rows), 1)
    parts = [f'<svg width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}">',
             f'<text x="{pad_l}" y="16" style="font-size:13px;font-weight:600">{escape(title)}</text>',
             f'<rect x="{width - 200}" y="8" width="10" height="10" fill="{_PALETTE[0]}"/>'
             f'<text x="{width - 186}" y="17">mean</text>'
             f'<rect x="{width - 130}" y="8" width="10" height="10" fill="{_PALETTE[1]}"/>'
             f'<text x="{width - 116}" y="17">p95</text>',
             f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 10}" y2="{pad_t + plot_h}" stroke="#888"/>']
    for i, (name, mean, p95) in enumerate(rows):
        x0 = pad_l + i * step + step * 0.1
        for j, (value, color) in enumerate(((mean, _PALETTE[0]), (p95, _PALETTE[1]))):
            h = plot_h * value / top
            x = x0 + j * step * 0.4
            parts.append(f'<rect x="{x:.1f}" y="{pad_t + plot_h - h:.1f}" width="{step * 0.38:.1f}" '
                         f'height="{h:.1f}" fill="{color}"/>')
            parts.append(f'<text x="{x + step * 0.19:.1f}" y="{pad_t + plot_h - h - 4:.1f}" '
                         f'text-anchor="middle">{value:,.0f}</text>')
        parts.append(f'<text x="{x0 + step * 0.4:.1f}" y="{pad_t + plot_h + 16}" '
                     f'text-anchor="middle">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def pie_svg(items: list[tuple[str, float]], *, title: str, size: int = 260) -> str:
    """Share of cost per provider as a pie with a legend."""
    import math

    total = sum(v for _, v in items) or 1.0
    cx = cy = size / 2
    r = size / 2 - 10
    parts = [f'<svg width="{size + 320}" height="{size + 24}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<text x="0" y="14" style="font-size:13px;font-weight:600">{escape(title)}</text>',
             '<g transform="translate(0,24)">']
    angle = -math.pi / 2
    for i, (name, value) in enumerate(items):
        color = _PALETTE[i % len(_PALETTE)]
        share = value / total
        if share >= 0.9999:
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="{r}" fill="{color}"/>')
        elif share > 0:
            end = angle + 2 * math.pi * share
            x1, y1 = cx + r * math.cos(angle), cy + r * math.sin(angle)
            x2, y2 = cx + r * math.cos(end), cy + r * math.sin(end)
            large = 1 if share > 0.5 else 0
            parts.append(f'<path d="M{cx},{cy} L{x1:.2f},{y1:.2f} A{r},{r} 0 {large} 1 {x2:.2f},{y2:.2f} Z" '
                         f'fill="{color}" stroke="#fff"/>')
            angle = end
        ly = 20 + i * 20
        parts.append(f'<rect x="{size + 20}" y="{ly - 10}" width="12" height="12" fill="{color}"/>'
                     f'<text x="{size + 38}" y="{ly}">{escape(name)}: {money(value)} '
                     f'({100 * value / total:.1f}%)</text>')
    parts.append("</g></svg>")
    return "".join(parts)


def _money(value: float, unit: str) -> str:
    return money(value) if unit == "$" else f"{value:,.0f} {unit}"


def render_html(report: Report) -> str:
    """The whole report page."""
    w = report.window
    budget = "".join(f"<div>{escape(b.text())}</div>" for b in report.budget)
    providers = [(p.key, p.cost_usd) for p in report.providers]
    latency = [(p.key, p.mean_latency_ms or 0.0, p.p95_latency_ms or 0.0) for p in report.providers]
    charts = "".join((
        bar_chart_svg(list(report.daily_cost), title="Cost per day (USD)"),
        bar_chart_svg(providers, title="Cost per provider (USD)", color=_PALETTE[2], height=240),
        pie_svg(providers, title="Share of cost by provider"),
        grouped_bars_svg(latency, title="Latency per provider (ms): mean and p95"),
    ))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>llmroute report {w.start} to {w.end}</title><style>{_CSS}</style></head><body>"
        f"<h1>llmroute report</h1><p class=\"sub\">{w.start} to {w.end} ({escape(w.label)}), "
        f"by {escape(report.by)} &middot; {report.totals.requests:,} requests &middot; "
        f"{money(report.totals.cost_usd)}</p>"
        f"{_table(report)}<div class=\"budget\">{budget}</div>"
        f"<h2>Prompt caching</h2>{savings_html(report)}"
        f"<h2>Charts</h2><div class=\"charts\">{charts}</div></body></html>\n"
    )
