"""Text rendering shared by commands: plans, money, token counts, bars.

Pure functions from values to strings; whether colour is allowed is decided by the caller.
"""

from __future__ import annotations

import math
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

if TYPE_CHECKING:
    from .routing.plan import Plan
    from .tokens import TokenCount
    from .types import Target


def money(value: float | None) -> str:
    """Dollars as people read them: cents from $1 up (`$1.23`, `$1,234.56`), and at least three
    significant digits below, so a small cost never prints as `$0.00` (`$0.50`, `$0.0123`,
    `$0.0000258`). Exactly zero is `$0`."""
    if value is None:
        return "?"
    if value != value or value in (float("inf"), float("-inf")):
        return f"${value}"
    if value == 0:
        return "$0"
    sign, size = ("-" if value < 0 else ""), abs(value)
    if round(size, 2) >= 1:
        return f"{sign}${size:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(size)))
    text = f"{size:.{decimals}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{sign}${whole}.{fraction}"


def tokens(value: float | None) -> str:
    if value is None:
        return "?"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}K"
    return str(int(value))


def bar(fraction: float, width: int = 10, full: str = "█", empty: str = "▒") -> str:
    filled = max(0, min(width, round(fraction * width)))
    return full * filled + empty * (width - filled)


def render_plan(plan: Plan, count: TokenCount | None = None, estimate: int | None = None,
                counted_for: Target | None = None) -> str:
    """The `--explain` text: why this order, and why each excluded target is out. With `count`
    (the exact input count for `counted_for`, the first candidate), it is shown with its source
    next to the fast `estimate`."""
    lines = []
    if plan.difficulty is not None:
        features = ", ".join(f"{name} {value:+.2f}" for name, value in plan.difficulty_features[:5])
        lines.append(f"difficulty: {plan.difficulty:.2f}" + (f"  ({features})" if features else ""))
    if count is None:
        lines.append(f"estimated input: ~{plan.estimated_input_tokens} tokens")
    else:
        lines.append(input_tokens_line(count, estimate, counted_for))
    lines.append(f"rule: {plan.rule or 'none matched'}")
    lines.append(f"route: {plan.route or '(all targets)'}   strategy: {plan.strategy}")
    lines.append("candidates:")
    if not plan.candidates:
        lines.append("  (none)")
    for index, candidate in enumerate(plan.candidates, 1):
        cost = money(candidate.est_cost_usd) if candidate.est_cost_usd is not None else "cost unknown"
        lines.append(f"  {index}. {candidate.target.id:<40} worst case {cost:<12} {candidate.reason}")
        if candidate.expected_quality is not None:
            lines.append(f"     expected quality {candidate.expected_quality:.2f} "
                         f"({candidate.evidence} verdict(s) for this prompt's model)")
    if plan.excluded:
        lines.append("excluded:")
        for exclusion in plan.excluded:
            lines.append(f"  - {exclusion.target.id:<40} {exclusion.reason}")
    for note in plan.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def input_tokens_line(count: TokenCount, estimate: int | None, target: Target | None = None) -> str:
    """e.g. `input tokens: 1234 (tiktoken:o200k_base, for openai/gpt-4o); fast estimate ~1200`."""
    if not count.exact:
        how = f"estimate: {count.note}" if count.note else "estimate"
    elif count.approximate and target is not None:
        how = f"{count.source}, standing in for {target.id}'s own tokenizer"
    else:
        how = count.source + (f", for {target.id}" if target is not None else "")
    line = f"input tokens: {count.label} ({how})"
    return line + (f"; fast estimate ~{estimate}" if estimate is not None and count.exact else "")


# --- tables that fit the terminal (SPEC §10, §11) ---------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_BREAKS = re.compile(r"[\r\n\t\v\f]+")
ELLIPSIS = "…"


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal: colour codes take none, East Asian wide and full-width
    characters two, combining marks and format characters none."""
    text = _ANSI.sub("", text)
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def elide(text: str, width: int) -> str:
    """`text` cut to at most `width` columns, ending in `…` when something was cut."""
    if display_width(text) <= width:
        return text
    if width <= 0:
        return ""
    text = _ANSI.sub("", text)
    kept, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        kept.append(ch)
        used += w
    return "".join(kept) + ELLIPSIS


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def table_width(env: Mapping[str, str], *, wide: bool = False, stream=None) -> int | None:
    """How wide a table may be on `stream` (default stdout): None (every column, whole cells)
    with `--wide` or when the output is not a terminal (a pipe or a file keeps everything);
    else the terminal's width — `COLUMNS` when set, else what the terminal reports, else 80."""
    import sys

    stream = sys.stdout if stream is None else stream
    if wide or not is_terminal(stream):
        return None
    columns = str(env.get("COLUMNS", "")).strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


@dataclass(frozen=True)
class Column:
    """One table column. `priority`: the columns that do not fit are dropped lowest first (ties:
    the rightmost first). `short`: a shorter header used before anything is dropped. `elide`:
    when > 0 the cells may be cut with `…` down to that many columns (long text: error messages,
    answers, names) before columns are dropped for them."""

    header: str
    priority: int = 0
    align: str = "left"  # left | right
    short: str | None = None
    elide: int = 0


def _overhead(style: str, count: int) -> int:
    """Columns a table of `count` columns spends on separators and borders."""
    return 3 * count + 1 if style == "markdown" else 2 * max(count - 1, 0)


def _clean(cell, style: str) -> str:
    text = _BREAKS.sub(" ", "" if cell is None else str(cell))
    return text.replace("|", "\\|") if style == "markdown" else text


def fit_table(columns: Sequence[Column], rows: Sequence[Sequence], width: int | None,
              style: str = "simple") -> tuple[list[Column], list[list[str]]]:
    """The columns to show and their cells so that the table (`style` simple or markdown) is at
    most `width` columns wide; everything when `width` is None. In order, while it is too wide:
    short headers; long-text columns cut down to their `elide` width; the lowest-priority
    columns dropped; finally the last column left is cut to fit. Space left over goes back to
    the cut columns, a column at a time to the narrowest, so each gets a fair share."""
    cells = [[_clean(cell, style) for cell in row] for row in rows]
    columns = list(columns)
    if width is None or not columns:
        return columns, cells
    least = 3 if style == "markdown" else 1

    def natural(cols: list[Column]) -> list[int]:
        return [max([least, display_width(c.header)] + [display_width(r[i]) for r in cells])
                for i, c in enumerate(cols)]

    def total(keep: list[int], widths: list[int]) -> int:
        return sum(widths[i] for i in keep) + _overhead(style, len(keep))

    keep = list(range(len(columns)))
    full = natural(columns)
    if total(keep, full) <= width:
        return columns, cells
    columns = [Column(c.short or c.header, c.priority, c.align, None, c.elide) for c in columns]
    full = natural(columns)
    if total(keep, full) <= width:
        return columns, cells
    floor = [min(full[i], max(c.elide, least, display_width(c.header))) if c.elide else full[i]
             for i, c in enumerate(columns)]
    by_priority = sorted(keep, key=lambda i: (columns[i].priority, -i))
    while len(keep) > 1 and total(keep, floor) > width:
        keep.remove(by_priority.pop(0))
    widths = list(floor)
    spare = width - total(keep, widths)
    wanting = [i for i in keep if widths[i] < full[i]]
    while spare > 0 and wanting:  # the narrowest cut column grows first: a fair share each
        i = min(wanting, key=lambda i: (widths[i], -columns[i].priority, i))
        widths[i] += 1
        spare -= 1
        if widths[i] >= full[i]:
            wanting.remove(i)
    if spare < 0:  # one column left, still too wide: cut it
        only = keep[0]
        widths[only] = max(least, width - _overhead(style, 1))
    shown = [Column(elide(columns[i].header, widths[i]), columns[i].priority, columns[i].align,
                    None, columns[i].elide) for i in keep]
    body = [[elide(row[i], widths[i]) for i in keep] for row in cells]
    return shown, body


def _pad(text: str, width: int, align: str) -> str:
    gap = " " * max(0, width - display_width(text))
    return gap + text if align == "right" else text + gap


def format_table(columns: Sequence[Column], rows: Sequence[Sequence[str]], style: str = "simple") -> str:
    """A plain (`simple`: headers, a dashed rule, rows, two spaces between columns) or Markdown
    (`markdown`: a pipe table with alignment colons) table, padded by display width."""
    least = 3 if style == "markdown" else 1
    widths = [max([least, display_width(c.header)] + [display_width(r[i]) for r in rows])
              for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        padded = [_pad(cell, w, c.align) for cell, w, c in zip(cells, widths, columns)]
        if style == "markdown":
            return "| " + " | ".join(padded) + " |"
        return "  ".join(padded).rstrip()

    if style == "markdown":
        rule = "|" + "|".join(("-" * (w + 1) + ":") if c.align == "right" else (":" + "-" * (w + 1))
                              for w, c in zip(widths, columns)) + "|"
    else:
        rule = "  ".join("-" * w for w in widths)
    return "\n".join([line([c.header for c in columns]), rule, *(line(row) for row in rows)])


def table(columns: Sequence[Column], rows: Sequence[Sequence], width: int | None = None,
          style: str = "simple") -> str:
    """`rows` under `columns`, fitted to `width` (None: every column, whole cells)."""
    shown, body = fit_table(columns, rows, width, style)
    return format_table(shown, body, style)
