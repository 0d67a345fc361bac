"""Routing rules (SPEC §2.4): the first rule whose `when` conditions all hold decides `then`.

Pure functions over a `RuleContext` snapshot of the request: the caller supplies the clock
(already converted to the budget timezone) and the budget usage, so matching is deterministic
and testable without sleeping or touching the ledger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Sequence

from ..config.model import WEEKDAYS, Rule, RuleWhen


@dataclass(frozen=True)
class RuleContext:
    """What rules can see about one request.

    `now` is timezone-aware, in the budget timezone (hours/weekdays are judged there);
    `budget_used` is the 0-1 fraction of the tightest budget window, None without a budget."""

    prompt: str
    tokens: int
    tags: frozenset[str]
    now: datetime
    budget_used: float | None = None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    """Rule regexes are few and fixed per config: compile each once per process."""
    return re.compile(pattern)


def parse_hours(spec: str) -> tuple[int, int]:
    """`"9-17"` -> (9, 17). Raises ValueError on anything else (config validation uses this)."""
    start_text, sep, end_text = spec.replace(" ", "").partition("-")
    if not sep or not start_text.isdigit() or not end_text.isdigit():
        raise ValueError(f"hours must look like '9-17', got {spec!r}")
    start, end = int(start_text), int(end_text)
    if not (0 <= start <= 24 and 0 <= end <= 24):
        raise ValueError(f"hours must be between 0 and 24, got {spec!r}")
    return start % 24, end % 24


def hour_in_range(hour: int, spec: str) -> bool:
    """`start <= hour < end`; wraps past midnight when start > end ("22-07" = 22:00-06:59);
    start == end means all day."""
    start, end = parse_hours(spec)
    if start == end:
        return True
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end


def weekday_name(now: datetime) -> str:
    return WEEKDAYS[now.weekday()]


def _conditions(when: RuleWhen, ctx: RuleContext) -> list[bool | None]:
    """Verdicts of the cheap conditions, None for those the rule does not set. The costlier
    `regex` and `has_code` are checked afterwards, only when these all pass."""
    return [
        None if when.min_tokens is None else ctx.tokens >= when.min_tokens,
        None if when.max_tokens is None else ctx.tokens <= when.max_tokens,
        None if when.tag is None else when.tag in ctx.tags,
        None if when.hours is None else hour_in_range(ctx.now.hour, when.hours),
        None if when.weekdays is None
        else weekday_name(ctx.now) in {d.lower()[:3] for d in when.weekdays},
        None if when.budget_used_over is None
        else ctx.budget_used is not None and ctx.budget_used > when.budget_used_over,
    ]


def rule_matches(rule: Rule, ctx: RuleContext) -> bool:
    """True when every condition the rule sets holds (a rule with no conditions always holds)."""
    if any(verdict is False for verdict in _conditions(rule.when, ctx)):
        return False
    when = rule.when
    if when.regex is not None and not _compiled(when.regex).search(ctx.prompt):
        return False
    if when.has_code is not None and _has_code(ctx.prompt) != when.has_code:
        return False
    return True


def match_rule(rules: Sequence[Rule], ctx: RuleContext) -> Rule | None:
    """The first rule, in config order, whose conditions all hold; None if none does."""
    for rule in rules:
        if rule_matches(rule, ctx):
            return rule
    return None


def _describe_when(when: RuleWhen) -> str:
    parts = []
    if when.min_tokens is not None:
        parts.append(f"min_tokens {when.min_tokens}")
    if when.max_tokens is not None:
        parts.append(f"max_tokens {when.max_tokens}")
    if when.regex is not None:
        parts.append(f'regex "{when.regex}"')
    if when.has_code is not None:
        parts.append(f"has_code {'true' if when.has_code else 'false'}")
    if when.tag is not None:
        parts.append(f"tag {when.tag}")
    if when.hours is not None:
        parts.append(f"hours {when.hours}")
    if when.weekdays is not None:
        parts.append(f"weekdays {','.join(when.weekdays)}")
    if when.budget_used_over is not None:
        parts.append(f"budget_used_over {when.budget_used_over:g}")
    return ", ".join(parts) or "always"


def describe_rule(rule: Rule) -> str:
    """One line for `--explain`: `rule #2 (regex "(?i)\\bprove\\b") → tier large`.

    Numbered from 1 in config order (`Rule.index` is 0-based)."""
    then = rule.then
    actions = [
        f"{name} {value}"
        for name, value in (("route", then.route), ("strategy", then.strategy),
                            ("tier", then.tier), ("model", then.model))
        if value is not None
    ]
    return f"rule #{rule.index + 1} ({_describe_when(rule.when)}) → {', '.join(actions) or 'no change'}"


def _has_code(text: str) -> bool:
    from .difficulty import has_code  # compiled only when a rule asks about code

    return has_code(text)
