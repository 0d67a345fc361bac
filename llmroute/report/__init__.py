"""Spend and performance reports from the ledger (SPEC §10), without click.

`make_window` turns the CLI's window flags into a run of local days; `build_report` folds the
ledger (through the incremental index, `index.py`, over the fold of `fold.py`) into a `Report`:
one `Row` per group, a totals row, the cost of every day of the window, per-provider figures and
the budget lines. `render.py` and `html.py` only format a `Report`.

The budget lines are not folded here: `budget_lines` reads them from the budget's spend index
(`budget/spend.py`), so a limit's figure is the same in `report` and `budget` — one rule of what
counts against a limit, one time zone, one window.

Requests are prompts (distinct `request_id`s) and count where they were answered; attempts,
tokens and cost where they were spent (see `fold.py`). Latency figures (mean, p95) cover every
record with a `latency_ms`, failed calls included, because a slow timeout is part of how a
provider performs. p95 is nearest-rank, exact up to 64 values per group and day, ~1% beyond and
never outside the least and greatest latency seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from ..errors import UsageError
from ..ledger.reader import ReadStats, Warn
from ..render import money
from .fold import (
    ATT, CACHED, COST, FALLBACK, LAT_N, LAT_US, N_COUNTERS, OK, REQ, TCACHED, TIN, TOUT,
    Aggregates, LatencyDigest, label,
)
from .index import load_aggregates, midnight_utc

if TYPE_CHECKING:
    from ..config.model import Config
    from ..paths import Paths

GROUPINGS = ("provider", "model", "target", "day", "route", "kind", "tag")
_COMBO_POS = {"kind": 0, "provider": 1, "model": 2, "target": 3, "route": 4}


@dataclass(frozen=True)
class Window:
    """Local days `start`..`end` (both included); `today` anchors the budget lines."""

    start: date
    end: date
    label: str
    today: date

    def days(self) -> list[date]:
        return [self.start + timedelta(n) for n in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class Row:
    key: str
    requests: int
    ok: int
    failed: int
    success_pct: float | None
    attempts: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    mean_latency_ms: float | None
    p95_latency_ms: float | None
    fallbacks: int
    cache_hits: int
    cached_input_tokens: int = 0  # input tokens a provider read from its prompt cache


@dataclass(frozen=True)
class CacheSaving:
    """What the provider's prompt cache saved on one target in the window: its cached input
    tokens at the full input rate minus the cached rate; `saved_usd` None when no cached rate
    is known for it (then it was charged the full input rate, and the saving is unknown)."""

    target: str
    cached_input_tokens: int
    saved_usd: float | None


@dataclass(frozen=True)
class BudgetLine:
    """One configured limit and what has been used against it: the figure `llmroute budget`
    shows, counted by the budget's own rule (`budget_lines`)."""

    period: str  # Daily | Weekly | Monthly
    unit: str  # usd | tokens
    used: float
    limit: float
    scope: str | None = None  # a provider's own limit; None for the global ones

    @property
    def pct(self) -> float:
        return 100.0 * self.used / self.limit if self.limit else 0.0

    def text(self) -> str:
        who = f"{self.scope} {self.period.lower()}" if self.scope else self.period
        if self.unit == "usd":
            return f"{who} budget: {money(self.used)} of {money(self.limit)} ({self.pct:.0f}%)"
        return f"{who} tokens: {self.used:,.0f} of {self.limit:,.0f} ({self.pct:.0f}%)"


@dataclass(frozen=True)
class Report:
    window: Window
    by: str
    rows: tuple[Row, ...]
    totals: Row
    daily_cost: tuple[tuple[str, float], ...]
    providers: tuple[Row, ...]
    budget: tuple[BudgetLine, ...]
    scan: ReadStats
    cache_savings: tuple[CacheSaving, ...] = ()


def resolve_tz(name: str) -> tzinfo | None:
    """The report's time zone: None means the machine's local zone (DST-aware)."""
    if not name or name == "local":
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r} in budget.timezone",
                         "use 'local' or an IANA name such as Europe/Berlin") from None


def local_today(now: datetime, tz: tzinfo | None) -> date:
    aware = now if now.tzinfo else now.replace(tzinfo=timezone.utc)
    return (aware.astimezone(tz) if tz is not None else aware.astimezone()).date()


def make_window(*, today: date, kind: str = "week", days: int | None = None,
                since: str | None = None, until: str | None = None) -> Window:
    """A window from the CLI flags. `kind` is today|week|month|days|since."""
    if kind == "today":
        return Window(today, today, "today", today)
    if kind == "week":
        return Window(today - timedelta(today.weekday()), today, "this week", today)
    if kind == "month":
        return Window(today.replace(day=1), today, "this month", today)
    if kind == "days":
        if days is None or days < 1:
            raise UsageError("--days needs a whole number of days, 1 or more")
        return Window(today - timedelta(days - 1), today, f"last {days} days", today)
    if kind == "since":
        start = _parse_date(since, "--since")
        end = _parse_date(until, "--until") if until else today
        if end < start:
            raise UsageError(f"--until {end} is before --since {start}")
        return Window(start, end, f"{start} to {end}", today)
    raise UsageError(f"unknown report window {kind!r}")


def _parse_date(text: str | None, flag: str) -> date:
    try:
        return date.fromisoformat(text or "")
    except ValueError:
        raise UsageError(f"{flag} needs a date as YYYY-MM-DD, not {text!r}") from None


def build_report(ledger_path: Path, window: Window, by: str, *, tz: tzinfo | None,
                 index_path: Path | None, warn: Warn, budget: Sequence[BudgetLine] = (),
                 workers: int | None = None,
                 saving_rate: Callable[[str], float | None] | None = None) -> Report:
    """Everything a rendering needs about `window`, grouped `by` one of GROUPINGS; `budget` is
    the budget lines to show under it (`budget_lines`). `saving_rate(target)` is USD per 1M
    tokens a cached input token saves on that target (`catalog.costs.cache_saving_rate`), or
    None when unknown; given, the report says what caching saved per target."""
    if by not in GROUPINGS:
        raise UsageError(f"--by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    outcome = load_aggregates(ledger_path, index_path, from_day=window.start.isoformat(), tz=tz,
                              warn=warn, workers=workers)
    aggs = outcome.aggregates
    names = [d.isoformat() for d in window.days()]
    per_day = _DaySums(aggs)
    rows = _group_rows(aggs, names, by, per_day)
    providers = rows if by == "provider" else _group_rows(aggs, names, "provider", per_day)
    totals = _make_row("TOTAL", per_day.over(names), _digest(aggs, names, "*", "*"))
    daily = tuple((d, per_day[d][COST] / 1e12) for d in names)
    savings = _cache_savings(aggs, names, saving_rate) if saving_rate is not None else ()
    return Report(window, by, rows, totals, daily, providers, tuple(budget), outcome.scan, savings)


def _cache_savings(aggs: Aggregates, names: list[str],
                   saving_rate: Callable[[str], float | None]) -> tuple[CacheSaving, ...]:
    """Cached input tokens per target over the window, each priced by `saving_rate`."""
    tokens: dict[str, int] = {}
    for day in names:
        agg = aggs.days.get(day)
        for combo, values in agg.counters.items() if agg else ():
            if values[TCACHED]:
                target = label(combo[_COMBO_POS["target"]])
                tokens[target] = tokens.get(target, 0) + values[TCACHED]
    out = []
    for target, count in sorted(tokens.items()):
        rate = saving_rate(target)
        out.append(CacheSaving(target, count, None if rate is None else round(count * rate / 1e6, 10)))
    return tuple(out)


_PERIODS = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly"}


def budget_lines(config: "Config", paths: "Paths", *, env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] | None = None,
                 warn: Callable[[str], None] | None = None) -> tuple[BudgetLine, ...]:
    """Each configured limit (global, then per provider) with what has been spent against it
    in its current window: read from the budget's own spend index, so the figure is the one
    `llmroute budget` shows and the guard enforces, counted by the one rule of what counts
    against a limit (`budget.spend.charged`: answered calls of every kind, not failed attempts
    or cache hits, no tokens of free targets) in the budget's time zone."""
    import time

    from ..budget.guard import guard_for

    guard = guard_for(config, paths, env=env, clock=clock or time.time, warn=warn)
    if guard is None:
        return ()
    return tuple(BudgetLine(_PERIODS[s.spec.kind], s.spec.unit, s.spent, s.spec.value, s.spec.scope)
                 for s in guard.snapshot().states)


class _DaySums(dict):
    """Each day's counters summed over its combinations, worked out once per day (the totals
    row, the daily costs and `--by day` all need them)."""

    def __init__(self, aggs: Aggregates):
        super().__init__()
        self.aggs = aggs

    def __missing__(self, day: str) -> list:
        agg = self.aggs.days.get(day)
        acc = self[day] = _column_sums(agg.counters.values() if agg else ())
        return acc

    def over(self, names: list[str]) -> list:
        return _column_sums(map(self.__getitem__, names))


def _column_sums(rows) -> list:
    columns = list(zip(*rows))
    return [sum(c) for c in columns] if columns else [0] * N_COUNTERS


def _group_rows(aggs: Aggregates, names: list[str], by: str, per_day: _DaySums) -> tuple[Row, ...]:
    if by == "day":
        return tuple(_make_row(d, per_day[d], _digest(aggs, [d], "*", "*"))
                     for d in names if per_day[d][ATT] or per_day[d][REQ])
    members: dict[str, list[list]] = {}
    keys_of: dict[tuple, tuple] = {}
    for day in names:
        agg = aggs.days.get(day)
        for combo, values in agg.counters.items() if agg else ():
            keys = keys_of.get(combo)
            if keys is None:
                keys = keys_of[combo] = _keys(by, combo)
            for key in keys:
                members.setdefault(key, []).append(values)
    rows = [_make_row(k, _column_sums(v), _digest(aggs, names, by, k)) for k, v in members.items()]
    return tuple(sorted(rows, key=lambda r: (-r.cost_usd, -r.requests, r.key)))


def _keys(by: str, combo: tuple) -> tuple[str, ...]:
    if by == "tag":
        return tuple(dict.fromkeys(combo[5] or ("(none)",)))
    return (label(combo[_COMBO_POS[by]]),)


def _digest(aggs: Aggregates, names: list[str], dim: str, value: str) -> LatencyDigest:
    merged = LatencyDigest()
    for day in names:
        agg = aggs.days.get(day)
        digest = agg.latency.get((dim, value)) if agg else None
        if digest is not None:
            merged.merge(digest)
    return merged


def _make_row(key: str, c: list, digest: LatencyDigest) -> Row:
    return Row(
        key=key, requests=c[REQ], ok=c[OK], failed=c[REQ] - c[OK],
        success_pct=100.0 * c[OK] / c[REQ] if c[REQ] else None, attempts=c[ATT],
        input_tokens=c[TIN], output_tokens=c[TOUT], cost_usd=round(c[COST] / 1e12, 10),
        mean_latency_ms=c[LAT_US] / c[LAT_N] / 1000 if c[LAT_N] else None,
        p95_latency_ms=digest.percentile(0.95), fallbacks=c[FALLBACK], cache_hits=c[CACHED],
        cached_input_tokens=c[TCACHED],
    )


__all__ = ["GROUPINGS", "BudgetLine", "CacheSaving", "Report", "Row", "Window", "budget_lines", "build_report",
           "local_today", "make_window", "midnight_utc", "resolve_tz"]
