"""Text rendering shared by commands: plans, money, token counts, bars.

Pure functions from values to strings; whether colour is allowed is decided by the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .routing.plan import Plan

if TYPE_CHECKING:
    from .tokens import TokenCount
    from .types import Target


def money(value: float | None) -> str:
    if value is None:
        return "?"
    if value == 0:
        return "$0"
    if value < 0.01:
        return f"${value:.6f}".rstrip("0")
    return f"${value:,.2f}"


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
