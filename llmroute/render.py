"""Text rendering shared by commands: plans, money, token counts, bars.

Pure functions from values to strings; whether colour is allowed is decided by the caller.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import TYPE_CHECKING

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


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


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
